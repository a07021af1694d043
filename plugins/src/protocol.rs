//! Docker's plugin protocol spoken over any transport: `serve_*` answer a
//! `/VolumeDriver.*`, `/NetworkDriver.*` or `/IpamDriver.*` message with a
//! driver (the plugin's side), and [`Remote`] is a driver of every
//! interface that sends those messages through a `call` function (the
//! engine's side: a loaded shared object, or HTTP on a UNIX socket).
//! Errors travel as Docker's `{"Err": "..."}`.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{DriverError, Result};
use crate::graph::{Applied, CreateRequest as LayerRequest, GraphDriver};
use crate::ipam::{self, AddressRequest, AddressSpaces, IpamDriver, Pool, PoolRequest};
use crate::network::{self, CreateEndpointRequest, CreateNetworkRequest, EndpointInterface, JoinRequest, JoinResponse, NetworkDriver};
use crate::volume::{CreateRequest, MountRequest, Scope, Volume, VolumeDriver};

/// The `Name` of most volume requests.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameRequest {
    name: String,
}

/// The `NetworkID` (and `EndpointID`) of most network requests.
#[derive(Deserialize)]
struct NetworkRequest {
    #[serde(rename = "NetworkID")]
    network_id: String,
    #[serde(default, rename = "EndpointID")]
    endpoint_id: String,
}

/// The `PoolID` (and `Address`) of IPAM releases.
#[derive(Deserialize)]
struct PoolRelease {
    #[serde(rename = "PoolID")]
    pool_id: String,
    #[serde(default, rename = "Address")]
    address: String,
}

/// The response bytes: the value with `"Err": ""`, or the error.
pub fn reply(r: Result<Value>) -> Vec<u8> {
    match r {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.entry("Err").or_insert(json!(""));
            }
            v.to_string().into_bytes()
        }
        Err(e) => json!({ "Err": e.to_string() }).to_string().into_bytes(),
    }
}

fn parse<'a, T: Deserialize<'a>>(method: &str, request: &'a [u8]) -> Result<T> {
    serde_json::from_slice(request).map_err(|e| DriverError::InvalidArgument {
        what: format!("{method} request"),
        reason: e.to_string(),
    })
}

fn not_a_method(interface: &str, method: &str) -> DriverError {
    DriverError::InvalidArgument {
        what: "method".into(),
        reason: format!("{method} is not a {interface} method"),
    }
}

/// The response of a volume driver to `method` with `request`.
pub fn serve_volume(driver: &dyn VolumeDriver, method: &str, request: &[u8]) -> Result<Value> {
    let path = |p: PathBuf| json!({ "Mountpoint": p.display().to_string() });
    Ok(match method {
        "/VolumeDriver.Create" => {
            driver.create(&parse::<CreateRequest>(method, request)?)?;
            json!({})
        }
        "/VolumeDriver.Remove" => {
            driver.remove(&parse::<NameRequest>(method, request)?.name)?;
            json!({})
        }
        "/VolumeDriver.Mount" => path(driver.mount(&parse::<MountRequest>(method, request)?)?),
        "/VolumeDriver.Unmount" => {
            driver.unmount(&parse::<MountRequest>(method, request)?)?;
            json!({})
        }
        "/VolumeDriver.Path" => path(driver.path(&parse::<NameRequest>(method, request)?.name)?),
        "/VolumeDriver.Get" => json!({ "Volume": driver.get(&parse::<NameRequest>(method, request)?.name)? }),
        "/VolumeDriver.List" => json!({ "Volumes": driver.list()? }),
        "/VolumeDriver.Capabilities" => json!({ "Capabilities": { "Scope": driver.scope() } }),
        other => return Err(not_a_method("VolumeDriver", other)),
    })
}

/// The response of a network driver to `method` with `request`.
pub fn serve_network(driver: &dyn NetworkDriver, method: &str, request: &[u8]) -> Result<Value> {
    let ids = || parse::<NetworkRequest>(method, request);
    Ok(match method {
        "/NetworkDriver.GetCapabilities" => json!(driver.capabilities()),
        "/NetworkDriver.CreateNetwork" => {
            driver.create_network(&parse::<CreateNetworkRequest>(method, request)?)?;
            json!({})
        }
        "/NetworkDriver.DeleteNetwork" => {
            driver.delete_network(&ids()?.network_id)?;
            json!({})
        }
        "/NetworkDriver.CreateEndpoint" => match driver.create_endpoint(&parse::<CreateEndpointRequest>(method, request)?)? {
            Some(i) => json!({ "Interface": i }),
            None => json!({}),
        },
        "/NetworkDriver.DeleteEndpoint" => {
            let r = ids()?;
            driver.delete_endpoint(&r.network_id, &r.endpoint_id)?;
            json!({})
        }
        "/NetworkDriver.Join" => json!(driver.join(&parse::<JoinRequest>(method, request)?)?),
        "/NetworkDriver.Leave" => {
            let r = ids()?;
            driver.leave(&r.network_id, &r.endpoint_id)?;
            json!({})
        }
        // What Docker's engine also sends; berth's drivers have nothing to
        // do for them.
        "/NetworkDriver.EndpointOperInfo" => json!({ "Value": {} }),
        "/NetworkDriver.DiscoverNew"
        | "/NetworkDriver.DiscoverDelete"
        | "/NetworkDriver.ProgramExternalConnectivity"
        | "/NetworkDriver.RevokeExternalConnectivity" => json!({}),
        other => return Err(not_a_method("NetworkDriver", other)),
    })
}

/// The response of an IPAM driver to `method` with `request`.
pub fn serve_ipam(driver: &dyn IpamDriver, method: &str, request: &[u8]) -> Result<Value> {
    let release = || parse::<PoolRelease>(method, request);
    Ok(match method {
        "/IpamDriver.GetCapabilities" => json!(driver.capabilities()),
        "/IpamDriver.GetDefaultAddressSpaces" => json!(driver.default_address_spaces()?),
        "/IpamDriver.RequestPool" => json!(driver.request_pool(&parse::<PoolRequest>(method, request)?)?),
        "/IpamDriver.ReleasePool" => {
            driver.release_pool(&release()?.pool_id)?;
            json!({})
        }
        "/IpamDriver.RequestAddress" => json!(driver.request_address(&parse::<AddressRequest>(method, request)?)?),
        "/IpamDriver.ReleaseAddress" => {
            let r = release()?;
            driver.release_address(&r.pool_id, &r.address)?;
            json!({})
        }
        other => return Err(not_a_method("IpamDriver", other)),
    })
}

/// The `ID` of most graph-driver requests.
#[derive(Deserialize)]
struct LayerId {
    #[serde(rename = "ID")]
    id: String,
    #[serde(default, rename = "MountLabel")]
    mount_label: String,
}

/// The method of Docker's `ApplyDiff`, which carries the layer in its
/// query (`?id=ID&parent=PARENT`) and the tarball as the body.
pub const APPLY_DIFF: &str = "/GraphDriver.ApplyDiff";

/// The layer ID in an `ApplyDiff` method's query.
fn apply_diff_id(method: &str) -> Option<String> {
    let query = method.strip_prefix(APPLY_DIFF)?.strip_prefix('?')?;
    query.split('&').find_map(|kv| kv.strip_prefix("id=")).map(str::to_string)
}

/// The response of a graph driver to `method` with `request`. Docker's
/// graph-driver plugin protocol, with one addition: `ApplyDiff` answers
/// the layer's `DiffID` beside its `Size`.
pub fn serve_graph(driver: &dyn GraphDriver, method: &str, request: &[u8]) -> Result<Value> {
    if method.starts_with(APPLY_DIFF) {
        let id = apply_diff_id(method).ok_or_else(|| DriverError::InvalidArgument {
            what: "method".into(),
            reason: format!("{method}: ApplyDiff names its layer as ?id=ID"),
        })?;
        let mut tarball = request;
        let applied = driver.apply_diff(&id, &mut tarball)?;
        return Ok(json!({ "Size": applied.size, "DiffID": applied.diff_id }));
    }
    let id = || parse::<LayerId>(method, request);
    Ok(match method {
        "/GraphDriver.Init" | "/GraphDriver.Capabilities" => json!({ "Capabilities": { "ReproducesExactDiffs": false } }),
        "/GraphDriver.Create" => {
            driver.create(&parse::<LayerRequest>(method, request)?)?;
            json!({})
        }
        "/GraphDriver.CreateReadWrite" => {
            driver.create_read_write(&parse::<LayerRequest>(method, request)?)?;
            json!({})
        }
        "/GraphDriver.Remove" => {
            driver.remove(&id()?.id)?;
            json!({})
        }
        "/GraphDriver.Get" => {
            let r = id()?;
            json!({ "Dir": driver.get(&r.id, &r.mount_label)?.display().to_string() })
        }
        "/GraphDriver.Put" => {
            driver.put(&id()?.id)?;
            json!({})
        }
        "/GraphDriver.Exists" => json!({ "Exists": driver.exists(&id()?.id) }),
        "/GraphDriver.Status" => json!({ "Status": driver.status() }),
        "/GraphDriver.GetMetadata" => json!({ "Metadata": {} }),
        "/GraphDriver.Cleanup" => {
            driver.cleanup()?;
            json!({})
        }
        other => return Err(not_a_method("GraphDriver", other)),
    })
}

/// How a [`Remote`] reaches its plugin: the response bytes to a method and
/// its request, or the transport's failure.
pub type Call = Box<dyn Fn(&str, &[u8]) -> Result<Vec<u8>> + Send + Sync>;

/// A plugin reached by messages, as a driver of every interface (the
/// engine registers it under those the plugin implements).
pub struct Remote {
    name: String,
    call: Call,
}

impl Remote {
    pub fn new(name: &str, call: Call) -> Remote {
        Remote {
            name: name.to_string(),
            call,
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `body` as `method`; the response, or its `Err` as an error.
    pub fn send(&self, method: &str, body: Value) -> Result<Value> {
        self.send_bytes(method, body.to_string().as_bytes())
    }

    /// Sends `body` as it is (ApplyDiff's tarball); the response, or its
    /// `Err` as an error.
    fn send_bytes(&self, method: &str, body: &[u8]) -> Result<Value> {
        let raw = (self.call)(method, body)?;
        let v: Value = serde_json::from_slice(&raw)
            .map_err(|e| DriverError::Driver(format!("plugin {}: {method}: answered malformed JSON: {e}", self.name)))?;
        if !v.is_object() {
            return Err(DriverError::Driver(format!(
                "plugin {}: {method}: answered {v}, not an object",
                self.name
            )));
        }
        match v["Err"].as_str().filter(|e| !e.is_empty()) {
            Some(e) => Err(DriverError::Driver(format!("plugin {}: {e}", self.name))),
            None => Ok(v),
        }
    }

    fn field<T: DeserializeOwned>(&self, method: &str, v: Value, key: Option<&str>) -> Result<T> {
        let part = match key {
            Some(k) => v[k].clone(),
            None => v,
        };
        serde_json::from_value(part).map_err(|e| {
            DriverError::Driver(format!(
                "plugin {}: {method}: the answer's {} is not valid: {e}",
                self.name,
                key.unwrap_or("body")
            ))
        })
    }

    /// Sends `body` as `method` and reads the answer (or its `key`) as `T`.
    fn ask<T: DeserializeOwned>(&self, method: &str, body: Value, key: Option<&str>) -> Result<T> {
        let v = self.send(method, body)?;
        self.field(method, v, key)
    }
}

impl VolumeDriver for Remote {
    fn create(&self, req: &CreateRequest) -> Result<()> {
        self.send("/VolumeDriver.Create", json!(req)).map(drop)
    }
    fn remove(&self, name: &str) -> Result<()> {
        self.send("/VolumeDriver.Remove", json!({ "Name": name })).map(drop)
    }
    fn mount(&self, req: &MountRequest) -> Result<PathBuf> {
        self.ask("/VolumeDriver.Mount", json!(req), Some("Mountpoint"))
    }
    fn unmount(&self, req: &MountRequest) -> Result<()> {
        self.send("/VolumeDriver.Unmount", json!(req)).map(drop)
    }
    fn path(&self, name: &str) -> Result<PathBuf> {
        self.ask("/VolumeDriver.Path", json!({ "Name": name }), Some("Mountpoint"))
    }
    fn get(&self, name: &str) -> Result<Volume> {
        self.ask("/VolumeDriver.Get", json!({ "Name": name }), Some("Volume"))
    }
    fn list(&self) -> Result<Vec<Volume>> {
        self.ask("/VolumeDriver.List", json!({}), Some("Volumes"))
    }
    fn scope(&self) -> Scope {
        self.send("/VolumeDriver.Capabilities", json!({}))
            .ok()
            .and_then(|v| serde_json::from_value(v["Capabilities"]["Scope"].clone()).ok())
            .unwrap_or(Scope::Local)
    }
}

impl NetworkDriver for Remote {
    fn capabilities(&self) -> network::Capabilities {
        self.ask("/NetworkDriver.GetCapabilities", json!({}), None)
            .unwrap_or(network::Capabilities {
                scope: "local".into(),
                connectivity_scope: String::new(),
            })
    }
    fn create_network(&self, req: &CreateNetworkRequest) -> Result<()> {
        self.send("/NetworkDriver.CreateNetwork", json!(req)).map(drop)
    }
    fn delete_network(&self, network_id: &str) -> Result<()> {
        self.send("/NetworkDriver.DeleteNetwork", json!({ "NetworkID": network_id }))
            .map(drop)
    }
    fn create_endpoint(&self, req: &CreateEndpointRequest) -> Result<Option<EndpointInterface>> {
        self.ask("/NetworkDriver.CreateEndpoint", json!(req), Some("Interface"))
    }
    fn delete_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        let body = json!({ "NetworkID": network_id, "EndpointID": endpoint_id });
        self.send("/NetworkDriver.DeleteEndpoint", body).map(drop)
    }
    fn join(&self, req: &JoinRequest) -> Result<JoinResponse> {
        self.ask("/NetworkDriver.Join", json!(req), None)
    }
    fn leave(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        let body = json!({ "NetworkID": network_id, "EndpointID": endpoint_id });
        self.send("/NetworkDriver.Leave", body).map(drop)
    }
}

impl GraphDriver for Remote {
    fn create(&self, req: &LayerRequest) -> Result<()> {
        self.send("/GraphDriver.Create", json!(req)).map(drop)
    }
    fn create_read_write(&self, req: &LayerRequest) -> Result<()> {
        self.send("/GraphDriver.CreateReadWrite", json!(req)).map(drop)
    }
    fn remove(&self, id: &str) -> Result<()> {
        self.send("/GraphDriver.Remove", json!({ "ID": id })).map(drop)
    }
    fn get(&self, id: &str, mount_label: &str) -> Result<PathBuf> {
        self.ask("/GraphDriver.Get", json!({ "ID": id, "MountLabel": mount_label }), Some("Dir"))
    }
    fn put(&self, id: &str) -> Result<()> {
        self.send("/GraphDriver.Put", json!({ "ID": id })).map(drop)
    }
    fn exists(&self, id: &str) -> bool {
        self.ask("/GraphDriver.Exists", json!({ "ID": id }), Some("Exists"))
            .unwrap_or(false)
    }
    fn status(&self) -> Vec<(String, String)> {
        self.ask("/GraphDriver.Status", json!({}), Some("Status")).unwrap_or_default()
    }
    fn cleanup(&self) -> Result<()> {
        self.send("/GraphDriver.Cleanup", json!({})).map(drop)
    }
    fn apply_diff(&self, id: &str, tarball: &mut dyn std::io::Read) -> Result<Applied> {
        let mut body = Vec::new();
        tarball
            .read_to_end(&mut body)
            .map_err(|e| DriverError::io("read the layer for", id, e))?;
        let v = self.send_bytes(&format!("{APPLY_DIFF}?id={id}"), &body)?;
        match (v["DiffID"].as_str(), v["Size"].as_u64()) {
            (Some(d), Some(size)) => Ok(Applied {
                diff_id: d.to_string(),
                size,
            }),
            _ => Err(DriverError::Driver(format!(
                "plugin {}: {APPLY_DIFF} answered {v}: berth needs the layer's DiffID and Size",
                self.name
            ))),
        }
    }
}

impl IpamDriver for Remote {
    fn capabilities(&self) -> ipam::Capabilities {
        self.ask("/IpamDriver.GetCapabilities", json!({}), None).unwrap_or_default()
    }
    fn default_address_spaces(&self) -> Result<AddressSpaces> {
        self.ask("/IpamDriver.GetDefaultAddressSpaces", json!({}), None)
    }
    fn request_pool(&self, req: &PoolRequest) -> Result<Pool> {
        self.ask("/IpamDriver.RequestPool", json!(req), None)
    }
    fn release_pool(&self, pool_id: &str) -> Result<()> {
        self.send("/IpamDriver.ReleasePool", json!({ "PoolID": pool_id })).map(drop)
    }
    fn request_address(&self, req: &AddressRequest) -> Result<ipam::Address> {
        self.ask("/IpamDriver.RequestAddress", json!(req), None)
    }
    fn release_address(&self, pool_id: &str, address: &str) -> Result<()> {
        self.send("/IpamDriver.ReleaseAddress", json!({ "PoolID": pool_id, "Address": address }))
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    /// Volumes in memory, mounted under /mnt/NAME.
    #[derive(Default)]
    struct Memory(Mutex<BTreeMap<String, u32>>);

    impl VolumeDriver for Memory {
        fn create(&self, req: &CreateRequest) -> Result<()> {
            self.0.lock().unwrap().entry(req.name.clone()).or_insert(0);
            Ok(())
        }
        fn remove(&self, name: &str) -> Result<()> {
            let mut m = self.0.lock().unwrap();
            match m.get(name) {
                Some(0) => {
                    m.remove(name);
                    Ok(())
                }
                Some(_) => Err(DriverError::Conflict {
                    kind: "volume",
                    name: name.into(),
                    reason: "in use".into(),
                }),
                None => Err(DriverError::NotFound {
                    kind: "volume",
                    name: name.into(),
                }),
            }
        }
        fn mount(&self, req: &MountRequest) -> Result<PathBuf> {
            *self.0.lock().unwrap().get_mut(&req.name).ok_or(DriverError::NotFound {
                kind: "volume",
                name: req.name.clone(),
            })? += 1;
            Ok(PathBuf::from("/mnt").join(&req.name))
        }
        fn unmount(&self, req: &MountRequest) -> Result<()> {
            if let Some(n) = self.0.lock().unwrap().get_mut(&req.name) {
                *n = n.saturating_sub(1);
            }
            Ok(())
        }
        fn path(&self, name: &str) -> Result<PathBuf> {
            Ok(PathBuf::from("/mnt").join(name))
        }
        fn get(&self, name: &str) -> Result<Volume> {
            self.0
                .lock()
                .unwrap()
                .get(name)
                .map(|_| Volume {
                    name: name.into(),
                    mountpoint: String::new(),
                    status: BTreeMap::new(),
                })
                .ok_or(DriverError::NotFound {
                    kind: "volume",
                    name: name.into(),
                })
        }
        fn list(&self) -> Result<Vec<Volume>> {
            let names: Vec<String> = self.0.lock().unwrap().keys().cloned().collect();
            names.iter().map(|n| self.get(n)).collect()
        }
    }

    #[test]
    fn a_driver_served_and_reached_through_messages_behaves_as_itself() {
        let served = Memory::default();
        let served = std::sync::Arc::new(served);
        let s = std::sync::Arc::clone(&served);
        let remote = Remote::new(
            "memory",
            Box::new(move |m: &str, r: &[u8]| Ok(reply(serve_volume(s.as_ref(), m, r)))),
        );
        let remote: &dyn VolumeDriver = &remote;
        remote
            .create(&CreateRequest {
                name: "v".into(),
                opts: BTreeMap::new(),
            })
            .unwrap();
        let req = MountRequest {
            name: "v".into(),
            id: "c1".into(),
        };
        assert_eq!(remote.mount(&req).unwrap(), PathBuf::from("/mnt/v"));
        let e = remote.remove("v").unwrap_err().to_string();
        assert!(e.contains("in use"), "the driver's error travels: {e}");
        remote.unmount(&req).unwrap();
        assert_eq!(remote.list().unwrap().len(), 1);
        assert_eq!(remote.get("v").unwrap().name, "v");
        assert!(remote.get("nope").is_err());
        remote.remove("v").unwrap();
        assert!(remote.list().unwrap().is_empty());
        assert_eq!(remote.scope(), Scope::Local);
        let bad: Value = serde_json::from_slice(&reply(serve_volume(served.as_ref(), "/VolumeDriver.Create", b"{not json"))).unwrap();
        assert!(bad["Err"].as_str().unwrap().contains("Create request"), "{bad}");
        assert!(serve_volume(served.as_ref(), "/VolumeDriver.Nope", b"{}").is_err());
        // A plugin answering garbage is an error, not a crash.
        let broken = Remote::new("broken", Box::new(|_: &str, _: &[u8]| Ok(b"<html>".to_vec())));
        assert!(VolumeDriver::list(&broken).unwrap_err().to_string().contains("malformed JSON"));
        let wrong = Remote::new("wrong", Box::new(|_: &str, _: &[u8]| Ok(br#"{"Volumes": 3}"#.to_vec())));
        assert!(VolumeDriver::list(&wrong).unwrap_err().to_string().contains("Volumes is not valid"));
    }
}

#[cfg(test)]
mod network_tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::network::{Capabilities, InterfaceName};

    /// Answers joins with a fixed interface; refuses unknown networks.
    struct Fixed;

    impl NetworkDriver for Fixed {
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                scope: "global".into(),
                connectivity_scope: "global".into(),
            }
        }
        fn create_network(&self, req: &CreateNetworkRequest) -> Result<()> {
            if req.ipv4_data.first().map(|d| d.pool.as_str()) == Some("10.9.0.0/24") {
                Ok(())
            } else {
                Err(DriverError::InvalidArgument {
                    what: "pool".into(),
                    reason: "only 10.9.0.0/24".into(),
                })
            }
        }
        fn delete_network(&self, _: &str) -> Result<()> {
            Ok(())
        }
        fn create_endpoint(&self, req: &CreateEndpointRequest) -> Result<Option<EndpointInterface>> {
            Ok(Some(EndpointInterface {
                mac_address: format!("02:00:00:00:00:{:02x}", req.endpoint_id.len()),
                ..Default::default()
            }))
        }
        fn delete_endpoint(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        fn join(&self, req: &JoinRequest) -> Result<JoinResponse> {
            Ok(JoinResponse {
                interface_name: Some(InterfaceName {
                    src_name: format!("veth{}", req.endpoint_id),
                    dst_prefix: "eth".into(),
                }),
                gateway: "10.9.0.1".into(),
                ..Default::default()
            })
        }
        fn leave(&self, network_id: &str, _: &str) -> Result<()> {
            Err(DriverError::NotFound {
                kind: "network",
                name: network_id.into(),
            })
        }
    }

    #[test]
    fn a_network_driver_through_messages() {
        let remote = Remote::new("fixed", Box::new(|m: &str, r: &[u8]| Ok(reply(serve_network(&Fixed, m, r)))));
        assert_eq!(NetworkDriver::capabilities(&remote).scope, "global");
        let mut req = CreateNetworkRequest {
            network_id: "n".into(),
            ipv4_data: vec![crate::network::IpamData {
                pool: "10.9.0.0/24".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        remote.create_network(&req).unwrap();
        req.ipv4_data[0].pool = "10.8.0.0/24".into();
        assert!(remote.create_network(&req).unwrap_err().to_string().contains("only 10.9.0.0/24"));
        let ep = CreateEndpointRequest {
            network_id: "n".into(),
            endpoint_id: "abc".into(),
            interface: None,
            options: BTreeMap::new(),
        };
        assert_eq!(remote.create_endpoint(&ep).unwrap().unwrap().mac_address, "02:00:00:00:00:03");
        let joined = remote
            .join(&JoinRequest {
                network_id: "n".into(),
                endpoint_id: "abc".into(),
                sandbox_key: "/run/netns/x".into(),
                options: BTreeMap::new(),
            })
            .unwrap();
        assert_eq!(joined.interface_name.unwrap().src_name, "vethabc");
        assert_eq!(joined.gateway, "10.9.0.1");
        assert!(remote.leave("n", "abc").unwrap_err().to_string().contains("not found"));
        remote.delete_endpoint("n", "abc").unwrap();
        let info: Value = serde_json::from_slice(&reply(serve_network(&Fixed, "/NetworkDriver.EndpointOperInfo", b"{}"))).unwrap();
        assert_eq!(info["Err"], "");
    }
}
