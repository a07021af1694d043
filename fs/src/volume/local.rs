//! The `local` volume driver, as Docker's: each volume a directory
//! `<home>/<name>/_data` with its options in `<home>/<name>/opts.json`
//! (written atomically). With `type`, `device` and `o` options the volume
//! is a mount of that filesystem on `_data` (tmpfs, a bind of a host
//! directory with `o=bind`, or any device), made when the first container
//! mounts it and undone when the last one unmounts.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use berth_plugin::error::{DriverError, Result};
use berth_plugin::volume::{CreateRequest, MountRequest, Volume, VolumeDriver};

pub const NAME: &str = "local";

/// The options `local` understands (`docker volume create --opt`).
const OPTIONS: [&str; 3] = ["type", "device", "o"];

pub struct LocalDriver {
    home: PathBuf,
    /// Containers holding each mounted volume.
    mounts: Mutex<HashMap<String, Vec<String>>>,
}

fn not_found(name: &str) -> DriverError {
    DriverError::NotFound {
        kind: "volume",
        name: name.to_string(),
    }
}

/// mount(2) flags and data from a local volume's `o` option.
fn mount_options(o: &str) -> (nix::mount::MsFlags, String) {
    use nix::mount::MsFlags;
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "ro" => flags |= MsFlags::MS_RDONLY,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

impl LocalDriver {
    pub fn new(home: PathBuf) -> Result<LocalDriver> {
        crate::private_home(&home)?;
        Ok(LocalDriver {
            home,
            mounts: Mutex::new(HashMap::new()),
        })
    }

    fn dir(&self, name: &str) -> Result<PathBuf> {
        if !super::valid_name(name) {
            return Err(DriverError::InvalidArgument {
                what: format!("volume name {name:?}"),
                reason: "names are [a-zA-Z0-9][a-zA-Z0-9_.-]+".into(),
            });
        }
        Ok(self.home.join(name))
    }

    fn data(&self, name: &str) -> Result<PathBuf> {
        Ok(self.dir(name)?.join("_data"))
    }

    fn options(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let path = self.dir(name)?.join("opts.json");
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| DriverError::Driver(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.data(name)?.is_dir() {
                    Ok(BTreeMap::new())
                } else {
                    Err(not_found(name))
                }
            }
            Err(e) => Err(DriverError::io("read", path, e)),
        }
    }

    fn mounts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<String>>> {
        self.mounts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl VolumeDriver for LocalDriver {
    fn create(&self, req: &CreateRequest) -> Result<()> {
        let dir = self.dir(&req.name)?;
        if let Some(bad) = req.opts.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
            return Err(DriverError::InvalidArgument {
                what: format!("option {bad:?}"),
                reason: "the local driver takes type, device and o".into(),
            });
        }
        if req.opts.contains_key("type") != req.opts.contains_key("device") {
            return Err(DriverError::InvalidArgument {
                what: "options".into(),
                reason: "type and device go together".into(),
            });
        }
        if dir.join("_data").is_dir() {
            // Idempotent for the same options, as Docker's.
            return if self.options(&req.name)? == req.opts {
                Ok(())
            } else {
                Err(DriverError::Conflict {
                    kind: "volume",
                    name: req.name.clone(),
                    reason: "exists with other options".into(),
                })
            };
        }
        // Made aside and renamed in: a crash leaves no half volume.
        let staging = self.home.join(format!(".{}.creating", req.name));
        let _ = std::fs::remove_dir_all(&staging);
        let made = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(staging.join("_data"))?;
            let json = serde_json::to_vec(&req.opts).map_err(std::io::Error::other)?;
            crate::atomic::write(&staging.join("opts.json"), &json)?;
            std::fs::rename(&staging, &dir)
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(DriverError::io("create volume", &dir, e));
        }
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<()> {
        let dir = self.dir(name)?;
        self.options(name)?;
        if self.mounts().get(name).is_some_and(|m| !m.is_empty()) {
            return Err(DriverError::Conflict {
                kind: "volume",
                name: name.to_string(),
                reason: "volume is in use".into(),
            });
        }
        // Renamed away first: a crash mid-removal leaves no half volume
        // under the name.
        let doomed = self.home.join(format!(".{name}.removing"));
        std::fs::rename(&dir, &doomed).map_err(|e| DriverError::io("remove volume", &dir, e))?;
        std::fs::remove_dir_all(&doomed).map_err(|e| DriverError::io("remove volume", &doomed, e))
    }

    fn mount(&self, req: &MountRequest) -> Result<PathBuf> {
        let opts = self.options(&req.name)?;
        let data = self.data(&req.name)?;
        let mut mounts = self.mounts();
        let users = mounts.entry(req.name.clone()).or_default();
        if users.is_empty() {
            if let (Some(fstype), Some(device)) = (opts.get("type"), opts.get("device")) {
                let (flags, extra) = mount_options(opts.get("o").map(String::as_str).unwrap_or(""));
                let fstype = (fstype != "none").then_some(fstype.as_str());
                nix::mount::mount(
                    Some(device.as_str()),
                    &data,
                    fstype,
                    flags,
                    (!extra.is_empty()).then_some(extra.as_str()),
                )
                .map_err(|e| DriverError::io("mount volume", &data, e.into()))?;
                use nix::mount::MsFlags;
                if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
                    // A bind ignores MS_RDONLY until it is remounted.
                    let keep = flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
                    let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | keep;
                    if let Err(e) = nix::mount::mount(None::<&str>, &data, None::<&str>, remount, None::<&str>) {
                        let _ = nix::mount::umount2(&data, nix::mount::MntFlags::MNT_DETACH);
                        return Err(DriverError::io("mount volume read-only", &data, e.into()));
                    }
                }
            }
        }
        users.push(req.id.clone());
        Ok(data)
    }

    fn unmount(&self, req: &MountRequest) -> Result<()> {
        let opts = self.options(&req.name)?;
        let data = self.data(&req.name)?;
        let mut mounts = self.mounts();
        let users = mounts.entry(req.name.clone()).or_default();
        let Some(at) = users.iter().position(|u| *u == req.id) else {
            return Err(DriverError::Conflict {
                kind: "volume",
                name: req.name.clone(),
                reason: format!("not mounted by {}", req.id),
            });
        };
        users.remove(at);
        if users.is_empty() && opts.contains_key("type") {
            nix::mount::umount2(&data, nix::mount::MntFlags::MNT_DETACH).map_err(|e| DriverError::io("unmount volume", &data, e.into()))?;
        }
        Ok(())
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        self.options(name)?;
        self.data(name)
    }

    fn get(&self, name: &str) -> Result<Volume> {
        let opts = self.options(name)?;
        let mut status = BTreeMap::new();
        if !opts.is_empty() {
            status.insert("Options".to_string(), serde_json::json!(opts));
        }
        Ok(Volume {
            name: name.to_string(),
            mountpoint: self.data(name)?.display().to_string(),
            status,
        })
    }

    fn list(&self) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.home).map_err(|e| DriverError::io("list volumes", &self.home, e))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Staging and removal leftovers start with a dot; never volumes.
            if super::valid_name(&name) && e.path().join("_data").is_dir() {
                out.push(self.get(&name)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, opts: &[(&str, &str)]) -> CreateRequest {
        CreateRequest {
            name: name.into(),
            opts: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn create_is_idempotent_and_remove_refuses_a_volume_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let d = LocalDriver::new(dir.path().to_path_buf()).unwrap();
        d.create(&req("data", &[])).unwrap();
        d.create(&req("data", &[])).unwrap();
        assert!(matches!(d.create(&req("data", &[("o", "x")])), Err(DriverError::Conflict { .. })));
        assert!(matches!(d.create(&req("bad/name", &[])), Err(DriverError::InvalidArgument { .. })));
        assert!(matches!(
            d.create(&req("t", &[("type", "tmpfs")])),
            Err(DriverError::InvalidArgument { .. })
        ));
        let m = MountRequest {
            name: "data".into(),
            id: "c1".into(),
        };
        let path = d.mount(&m).unwrap();
        std::fs::write(path.join("f"), "kept").unwrap();
        assert!(matches!(d.remove("data"), Err(DriverError::Conflict { .. })));
        d.unmount(&m).unwrap();
        assert!(d.unmount(&m).is_err(), "every mount pairs with one unmount");
        assert_eq!(d.list().unwrap().iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["data"]);
        assert_eq!(std::fs::read_to_string(d.path("data").unwrap().join("f")).unwrap(), "kept");
        d.remove("data").unwrap();
        assert!(matches!(d.get("data"), Err(DriverError::NotFound { .. })));
        assert!(d.list().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left behind");
    }
}
