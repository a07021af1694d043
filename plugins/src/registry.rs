//! The driver registry: every graph, volume and network driver by name.
//!
//! Built-in drivers (`berth-fs`, `berth-net`) and loaded plugins register here
//! alike; the engine looks drivers up by the name a user gives
//! (`--storage-driver`, `volume create -d`, `network create -d`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{DriverError, Result};
use crate::{GraphDriver, NetworkDriver, VolumeDriver};

/// How the engine reaches a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Compiled into berth.
    Builtin,
    /// A shared object loaded from a plugin directory.
    SharedObject(std::path::PathBuf),
    /// A Docker-style plugin speaking HTTP on a UNIX socket.
    Http(std::path::PathBuf),
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Builtin => f.write_str("builtin"),
            Transport::SharedObject(p) => write!(f, "so:{}", p.display()),
            Transport::Http(p) => write!(f, "http:{}", p.display()),
        }
    }
}

/// The interfaces of Docker's plugin protocol a driver implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Interface {
    GraphDriver,
    VolumeDriver,
    NetworkDriver,
}

impl Interface {
    /// The name `/Plugin.Activate` uses for the interface.
    pub fn protocol_name(self) -> &'static str {
        match self {
            Interface::GraphDriver => "GraphDriver",
            Interface::VolumeDriver => "VolumeDriver",
            Interface::NetworkDriver => "NetworkDriver",
        }
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

/// Drivers by interface and name. Names are unique per interface.
#[derive(Default)]
pub struct Registry {
    graph: BTreeMap<String, Entry<dyn GraphDriver>>,
    volume: BTreeMap<String, Entry<dyn VolumeDriver>>,
    network: BTreeMap<String, Entry<dyn NetworkDriver>>,
}

fn insert<T: ?Sized>(
    map: &mut BTreeMap<String, Entry<T>>,
    kind: &'static str,
    name: &str,
    driver: Arc<T>,
    transport: Transport,
) -> Result<()> {
    if name.is_empty() || name.contains(['/', ' ']) {
        return Err(DriverError::InvalidArgument {
            what: format!("{kind} driver name {name:?}"),
            reason: "must be non-empty, without '/' or spaces".into(),
        });
    }
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

fn lookup<T: ?Sized>(map: &BTreeMap<String, Entry<T>>, kind: &'static str, name: &str) -> Result<Arc<T>> {
    map.get(name).map(|e| Arc::clone(&e.driver)).ok_or_else(|| DriverError::NotFound {
        kind,
        name: name.to_string(),
    })
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register_graph(&mut self, name: &str, driver: Arc<dyn GraphDriver>, transport: Transport) -> Result<()> {
        insert(&mut self.graph, "graph driver", name, driver, transport)
    }

    pub fn register_volume(&mut self, name: &str, driver: Arc<dyn VolumeDriver>, transport: Transport) -> Result<()> {
        insert(&mut self.volume, "volume driver", name, driver, transport)
    }

    pub fn register_network(&mut self, name: &str, driver: Arc<dyn NetworkDriver>, transport: Transport) -> Result<()> {
        insert(&mut self.network, "network driver", name, driver, transport)
    }

    pub fn graph(&self, name: &str) -> Result<Arc<dyn GraphDriver>> {
        lookup(&self.graph, "graph driver", name)
    }

    pub fn volume(&self, name: &str) -> Result<Arc<dyn VolumeDriver>> {
        lookup(&self.volume, "volume driver", name)
    }

    pub fn network(&self, name: &str) -> Result<Arc<dyn NetworkDriver>> {
        lookup(&self.network, "network driver", name)
    }

    /// Every driver, ordered by interface then name.
    pub fn list(&self) -> Vec<DriverInfo> {
        fn infos<T: ?Sized>(map: &BTreeMap<String, Entry<T>>, interface: Interface) -> impl Iterator<Item = DriverInfo> + '_ {
            map.iter().map(move |(name, e)| DriverInfo {
                name: name.clone(),
                interface,
                transport: e.transport.clone(),
            })
        }
        infos(&self.graph, Interface::GraphDriver)
            .chain(infos(&self.volume, Interface::VolumeDriver))
            .chain(infos(&self.network, Interface::NetworkDriver))
            .collect()
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
        let mut r = Registry::new();
        r.register_network("null", Arc::new(Null), Transport::Builtin).unwrap();
        assert!(r.network("null").is_ok());
        assert!(matches!(r.network("nope"), Err(DriverError::NotFound { .. })));
        let dup = r.register_network("null", Arc::new(Null), Transport::Builtin);
        assert!(matches!(dup, Err(DriverError::Conflict { .. })));
        assert!(r.register_network("a/b", Arc::new(Null), Transport::Builtin).is_err());
        let l = r.list();
        assert_eq!(l.len(), 1);
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
