//! The driver registry: every graph, volume and network driver by name.
//!
//! Built-in drivers (`berth-fs`, `berth-net`) and loaded plugins register here
//! alike; the engine looks drivers up by the name a user gives
//! (`--storage-driver`, `volume create -d`, `network create -d`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use crate::error::{DriverError, Result};
use crate::{GraphDriver, IpamDriver, NetworkDriver, VolumeDriver};

/// How the engine reaches a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Compiled into berth.
    Builtin,
    /// A shared object loaded from a plugin directory.
    SharedObject(std::path::PathBuf),
    /// A Docker-style plugin speaking HTTP at an address
    /// (`unix:///PATH` or `tcp://HOST:PORT`).
    Http(String),
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Builtin => f.write_str("builtin"),
            Transport::SharedObject(p) => write!(f, "so:{}", p.display()),
            Transport::Http(a) => write!(f, "http:{a}"),
        }
    }
}

/// The interfaces of Docker's plugin protocol a driver implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Interface {
    GraphDriver,
    VolumeDriver,
    NetworkDriver,
    IpamDriver,
}

impl Interface {
    /// The name `/Plugin.Activate` uses for the interface.
    pub fn protocol_name(self) -> &'static str {
        match self {
            Interface::GraphDriver => "GraphDriver",
            Interface::VolumeDriver => "VolumeDriver",
            Interface::NetworkDriver => "NetworkDriver",
            Interface::IpamDriver => "IpamDriver",
        }
    }

    /// The interface `/Plugin.Activate` names `name` (in any case, as
    /// Docker's `docker.volumedriver/1.0` writes it), if berth knows it.
    pub fn from_protocol_name(name: &str) -> Option<Interface> {
        [
            Interface::GraphDriver,
            Interface::VolumeDriver,
            Interface::NetworkDriver,
            Interface::IpamDriver,
        ]
        .into_iter()
        .find(|i| i.protocol_name().eq_ignore_ascii_case(name))
    }
}

/// One registered driver as `berth plugin ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverInfo {
    pub name: String,
    pub interface: Interface,
    pub transport: Transport,
}

struct Entry<T: ?Sized> {
    driver: Arc<T>,
    transport: Transport,
}

type Map<T> = RwLock<BTreeMap<String, Entry<T>>>;

/// Called with a name no driver has: may find a plugin of that name and
/// register it (Docker finds its legacy plugins as they are asked for);
/// an error says why a plugin that is there could not be used.
pub type Finder = Box<dyn Fn(&Registry, &str) -> std::result::Result<(), String> + Send + Sync>;

/// Drivers by interface and name. Names are unique per interface. Safe to
/// use from many threads: drivers come and go while the engine runs.
#[derive(Default)]
pub struct Registry {
    graph: Map<dyn GraphDriver>,
    volume: Map<dyn VolumeDriver>,
    network: Map<dyn NetworkDriver>,
    ipam: Map<dyn IpamDriver>,
    finder: RwLock<Option<Finder>>,
}

fn insert<T: ?Sized>(map: &Map<T>, kind: &'static str, name: &str, driver: Arc<T>, transport: Transport) -> Result<()> {
    if name.is_empty() || name.contains(['/', ' ']) {
        return Err(DriverError::InvalidArgument {
            what: format!("{kind} driver name {name:?}"),
            reason: "must be non-empty, without '/' or spaces".into(),
        });
    }
    let mut map = map.write().unwrap_or_else(|p| p.into_inner());
    if map.contains_key(name) {
        return Err(DriverError::Conflict {
            kind,
            name: name.to_string(),
            reason: "a driver with this name is already registered".into(),
        });
    }
    map.insert(name.to_string(), Entry { driver, transport });
    Ok(())
}

fn get<T: ?Sized>(map: &Map<T>, name: &str) -> Option<Arc<T>> {
    map.read()
        .unwrap_or_else(|p| p.into_inner())
        .get(name)
        .map(|e| Arc::clone(&e.driver))
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets what is asked for names no driver has.
    pub fn set_finder(&self, finder: Finder) {
        *self.finder.write().unwrap_or_else(|p| p.into_inner()) = Some(finder);
    }

    /// The driver `name` of `map`, asking the finder once when it is missing.
    fn lookup<T: ?Sized>(&self, map: &Map<T>, kind: &'static str, name: &str) -> Result<Arc<T>> {
        if let Some(d) = get(map, name) {
            return Ok(d);
        }
        if let Some(find) = self.finder.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if let Err(e) = find(self, name) {
                return Err(DriverError::Driver(format!("{kind} {name:?}: {e}")));
            }
        }
        get(map, name).ok_or_else(|| DriverError::NotFound {
            kind,
            name: name.to_string(),
        })
    }

    pub fn register_graph(&self, name: &str, driver: Arc<dyn GraphDriver>, transport: Transport) -> Result<()> {
        insert(&self.graph, "graph driver", name, driver, transport)
    }

    pub fn register_volume(&self, name: &str, driver: Arc<dyn VolumeDriver>, transport: Transport) -> Result<()> {
        insert(&self.volume, "volume driver", name, driver, transport)
    }

    pub fn register_network(&self, name: &str, driver: Arc<dyn NetworkDriver>, transport: Transport) -> Result<()> {
        insert(&self.network, "network driver", name, driver, transport)
    }

    pub fn register_ipam(&self, name: &str, driver: Arc<dyn IpamDriver>, transport: Transport) -> Result<()> {
        insert(&self.ipam, "IPAM driver", name, driver, transport)
    }

    pub fn graph(&self, name: &str) -> Result<Arc<dyn GraphDriver>> {
        self.lookup(&self.graph, "graph driver", name)
    }

    pub fn volume(&self, name: &str) -> Result<Arc<dyn VolumeDriver>> {
        self.lookup(&self.volume, "volume driver", name)
    }

    pub fn network(&self, name: &str) -> Result<Arc<dyn NetworkDriver>> {
        self.lookup(&self.network, "network driver", name)
    }

    pub fn ipam(&self, name: &str) -> Result<Arc<dyn IpamDriver>> {
        self.lookup(&self.ipam, "IPAM driver", name)
    }

    /// Takes the driver `name` of one interface out.
    pub fn unregister_interface(&self, interface: Interface, name: &str) -> bool {
        fn take<T: ?Sized>(map: &Map<T>, name: &str) -> bool {
            map.write().unwrap_or_else(|p| p.into_inner()).remove(name).is_some()
        }
        match interface {
            Interface::GraphDriver => take(&self.graph, name),
            Interface::VolumeDriver => take(&self.volume, name),
            Interface::NetworkDriver => take(&self.network, name),
            Interface::IpamDriver => take(&self.ipam, name),
        }
    }

    /// Takes every driver named `name` out (a plugin being unloaded); calls
    /// already holding one finish with it. Returns how many went.
    pub fn unregister(&self, name: &str) -> usize {
        fn take<T: ?Sized>(map: &Map<T>, name: &str) -> usize {
            usize::from(map.write().unwrap_or_else(|p| p.into_inner()).remove(name).is_some())
        }
        take(&self.graph, name) + take(&self.volume, name) + take(&self.network, name) + take(&self.ipam, name)
    }

    /// Every driver, ordered by interface then name.
    pub fn list(&self) -> Vec<DriverInfo> {
        fn infos<T: ?Sized>(map: &Map<T>, interface: Interface) -> Vec<DriverInfo> {
            map.read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(name, e)| DriverInfo {
                    name: name.clone(),
                    interface,
                    transport: e.transport.clone(),
                })
                .collect()
        }
        let mut all = infos(&self.graph, Interface::GraphDriver);
        all.extend(infos(&self.volume, Interface::VolumeDriver));
        all.extend(infos(&self.network, Interface::NetworkDriver));
        all.extend(infos(&self.ipam, Interface::IpamDriver));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::*;

    struct Null;
    impl NetworkDriver for Null {
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                scope: "local".into(),
                connectivity_scope: String::new(),
            }
        }
        fn create_network(&self, _: &CreateNetworkRequest) -> Result<()> {
            Ok(())
        }
        fn delete_network(&self, _: &str) -> Result<()> {
            Ok(())
        }
        fn create_endpoint(&self, _: &CreateEndpointRequest) -> Result<Option<EndpointInterface>> {
            Ok(None)
        }
        fn delete_endpoint(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        fn join(&self, _: &JoinRequest) -> Result<JoinResponse> {
            Ok(JoinResponse::default())
        }
        fn leave(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn register_lookup_and_conflict() {
        let r = Registry::new();
        r.register_network("null", Arc::new(Null), Transport::Builtin).unwrap();
        assert!(r.network("null").is_ok());
        assert!(matches!(r.network("nope"), Err(DriverError::NotFound { .. })));
        let dup = r.register_network("null", Arc::new(Null), Transport::Builtin);
        assert!(matches!(dup, Err(DriverError::Conflict { .. })));
        assert!(r.register_network("a/b", Arc::new(Null), Transport::Builtin).is_err());
        let l = r.list();
        assert_eq!(l.len(), 1);
        let found = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let f = Arc::clone(&found);
        r.set_finder(Box::new(move |r: &Registry, name: &str| {
            f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match name {
                "late" => r
                    .register_network("late", Arc::new(Null), Transport::Http("unix:///run/late.sock".into()))
                    .map_err(|e| e.to_string()),
                "broken" => Err("did not answer".into()),
                _ => Ok(()),
            }
        }));
        assert!(r.network("late").is_ok(), "the finder registers what it finds");
        assert!(r.network("late").is_ok());
        assert!(r.network("never").is_err());
        let e = r.network("broken").err().unwrap().to_string();
        assert!(e.contains("\"broken\": did not answer"), "{e}");
        assert_eq!(found.load(std::sync::atomic::Ordering::SeqCst), 3, "asked only for missing names");
        assert_eq!(r.unregister("late"), 1);
        assert_eq!(r.list().len(), 1);
        assert_eq!(l[0].interface, Interface::NetworkDriver);
        assert_eq!(l[0].transport.to_string(), "builtin");
    }

    #[test]
    fn protocol_json_names() {
        let req: JoinRequest =
            serde_json::from_str(r#"{"NetworkID":"n","EndpointID":"e","SandboxKey":"/var/run/netns/x","Options":{}}"#).unwrap();
        assert_eq!(req.sandbox_key, "/var/run/netns/x");
        let v = serde_json::to_value(crate::volume::MountRequest {
            name: "v".into(),
            id: "c".into(),
        })
        .unwrap();
        assert_eq!(v, serde_json::json!({"Name":"v","ID":"c"}));
    }
}
