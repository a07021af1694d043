//! Docker's plugin protocol spoken over any transport: [`serve_volume`]
//! answers a `/VolumeDriver.*` (or `/Plugin.Activate`) message with a
//! driver (the plugin's side), and [`RemoteVolume`] is a `VolumeDriver`
//! that sends those messages through a `call` function (the engine's side:
//! a loaded shared object, or HTTP on a UNIX socket). Errors travel as
//! Docker's `{"Err": "..."}`.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{DriverError, Result};
use crate::volume::{CreateRequest, MountRequest, Scope, Volume, VolumeDriver};

/// The `Name` of most volume requests.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameRequest {
    name: String,
}

fn reply(r: Result<Value>) -> Vec<u8> {
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

/// The response of `driver` to `method` with `request`.
pub fn serve_volume(driver: &dyn VolumeDriver, method: &str, request: &[u8]) -> Vec<u8> {
    let path = |p: PathBuf| json!({ "Mountpoint": p.display().to_string() });
    reply((|| -> Result<Value> {
        Ok(match method {
            "/Plugin.Activate" => json!({ "Implements": ["VolumeDriver"] }),
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
            other => {
                return Err(DriverError::InvalidArgument {
                    what: "method".into(),
                    reason: format!("{other} is not a VolumeDriver method"),
                })
            }
        })
    })())
}

/// A volume driver reached by messages: `call(method, request)` returns
/// the response's bytes or the transport's failure.
pub struct RemoteVolume<F> {
    call: F,
}

impl<F: Fn(&str, &[u8]) -> Result<Vec<u8>> + Send + Sync> RemoteVolume<F> {
    pub fn new(call: F) -> RemoteVolume<F> {
        RemoteVolume { call }
    }

    /// Sends `body` as `method`; the response, or its `Err` as an error.
    fn send(&self, method: &str, body: Value) -> Result<Value> {
        let raw = (self.call)(method, body.to_string().as_bytes())?;
        let v: Value =
            serde_json::from_slice(&raw).map_err(|e| DriverError::Driver(format!("{method}: the plugin answered malformed JSON: {e}")))?;
        match v["Err"].as_str().filter(|e| !e.is_empty()) {
            Some(e) => Err(DriverError::Driver(e.to_string())),
            None => Ok(v),
        }
    }

    fn field<T: serde::de::DeserializeOwned>(method: &str, v: &Value, key: &str) -> Result<T> {
        serde_json::from_value(v[key].clone()).map_err(|e| DriverError::Driver(format!("{method}: the plugin's {key} is not valid: {e}")))
    }
}

impl<F: Fn(&str, &[u8]) -> Result<Vec<u8>> + Send + Sync> VolumeDriver for RemoteVolume<F> {
    fn create(&self, req: &CreateRequest) -> Result<()> {
        self.send("/VolumeDriver.Create", json!(req)).map(drop)
    }
    fn remove(&self, name: &str) -> Result<()> {
        self.send("/VolumeDriver.Remove", json!({ "Name": name })).map(drop)
    }
    fn mount(&self, req: &MountRequest) -> Result<PathBuf> {
        let m = "/VolumeDriver.Mount";
        Self::field(m, &self.send(m, json!(req))?, "Mountpoint")
    }
    fn unmount(&self, req: &MountRequest) -> Result<()> {
        self.send("/VolumeDriver.Unmount", json!(req)).map(drop)
    }
    fn path(&self, name: &str) -> Result<PathBuf> {
        let m = "/VolumeDriver.Path";
        Self::field(m, &self.send(m, json!({ "Name": name }))?, "Mountpoint")
    }
    fn get(&self, name: &str) -> Result<Volume> {
        let m = "/VolumeDriver.Get";
        Self::field(m, &self.send(m, json!({ "Name": name }))?, "Volume")
    }
    fn list(&self) -> Result<Vec<Volume>> {
        let m = "/VolumeDriver.List";
        Self::field(m, &self.send(m, json!({}))?, "Volumes")
    }
    fn scope(&self) -> Scope {
        self.send("/VolumeDriver.Capabilities", json!({}))
            .ok()
            .and_then(|v| serde_json::from_value(v["Capabilities"]["Scope"].clone()).ok())
            .unwrap_or(Scope::Local)
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
        let remote = RemoteVolume::new(|m: &str, r: &[u8]| Ok(serve_volume(&served, m, r)));
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
        let activate: Value = serde_json::from_slice(&serve_volume(&served, "/Plugin.Activate", b"{}")).unwrap();
        assert_eq!(activate["Implements"], json!(["VolumeDriver"]));
        let bad: Value = serde_json::from_slice(&serve_volume(&served, "/VolumeDriver.Create", b"{not json")).unwrap();
        assert!(bad["Err"].as_str().unwrap().contains("Create request"), "{bad}");
        // A plugin answering garbage is an error, not a crash.
        let broken = RemoteVolume::new(|_: &str, _: &[u8]| Ok(b"<html>".to_vec()));
        assert!(broken.list().unwrap_err().to_string().contains("malformed JSON"));
    }
}
