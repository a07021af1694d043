//! dirvol: the smallest useful volume plugin. Each volume is a directory
//! under the plugin's home; mounts are counted per container, and a volume
//! in use cannot be removed.
//!
//! Build: `cargo build -p berth-plugin --example dirvol`, then copy
//! `target/debug/examples/libdirvol.so` into a plugin directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_plugin::error::{DriverError, Result};
use berth_plugin::volume::{CreateRequest, MountRequest, Volume, VolumeDriver};
use berth_plugin::Served;

struct Dirs {
    root: PathBuf,
    /// Per volume, the containers that have it mounted.
    users: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl Dirs {
    fn open(home: &Path) -> Result<Dirs> {
        let root = home.join("volumes");
        std::fs::create_dir_all(&root).map_err(|e| DriverError::io("create", &root, e))?;
        Ok(Dirs {
            root,
            users: Mutex::new(BTreeMap::new()),
        })
    }

    /// The volume's directory, if it exists.
    fn dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.root.join(name);
        if name.is_empty() || name.contains('/') || name.starts_with('.') || !dir.is_dir() {
            return Err(DriverError::NotFound {
                kind: "volume",
                name: name.into(),
            });
        }
        Ok(dir)
    }
}

impl VolumeDriver for Dirs {
    fn create(&self, req: &CreateRequest) -> Result<()> {
        if let Some(k) = req.opts.keys().next() {
            return Err(DriverError::InvalidArgument {
                what: format!("option {k:?}"),
                reason: "dirvol takes no options".into(),
            });
        }
        if req.name.is_empty() || req.name.contains('/') || req.name.starts_with('.') {
            return Err(DriverError::InvalidArgument {
                what: format!("volume name {:?}", req.name),
                reason: "not a file name".into(),
            });
        }
        let dir = self.root.join(&req.name);
        std::fs::create_dir_all(&dir).map_err(|e| DriverError::io("create", &dir, e))
    }

    fn remove(&self, name: &str) -> Result<()> {
        let dir = self.dir(name)?;
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if users.get(name).is_some_and(|u| !u.is_empty()) {
            return Err(DriverError::Conflict {
                kind: "volume",
                name: name.into(),
                reason: "in use".into(),
            });
        }
        std::fs::remove_dir_all(&dir).map_err(|e| DriverError::io("remove", &dir, e))
    }

    fn mount(&self, req: &MountRequest) -> Result<PathBuf> {
        let dir = self.dir(&req.name)?;
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users.entry(req.name.clone()).or_default().insert(req.id.clone());
        Ok(dir)
    }

    fn unmount(&self, req: &MountRequest) -> Result<()> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        match users.get_mut(&req.name).map(|u| u.remove(&req.id)) {
            Some(true) => Ok(()),
            _ => Err(DriverError::NotFound {
                kind: "mount of volume",
                name: format!("{} by {}", req.name, req.id),
            }),
        }
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        self.dir(name)
    }

    fn get(&self, name: &str) -> Result<Volume> {
        let dir = self.dir(name)?;
        Ok(Volume {
            name: name.into(),
            mountpoint: dir.display().to_string(),
            status: BTreeMap::new(),
        })
    }

    fn list(&self) -> Result<Vec<Volume>> {
        let entries = std::fs::read_dir(&self.root).map_err(|e| DriverError::io("read", &self.root, e))?;
        let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names.iter().map(|n| self.get(n)).collect()
    }
}

berth_plugin::export_plugin!(Served::new("dirvol").volume(Dirs::open));
