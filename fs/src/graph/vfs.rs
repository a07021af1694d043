//! The `vfs` graph driver: every layer a full copy of its parent plus its
//! own changes. Slow and large, but it works on any filesystem, without
//! mounts or privileges beyond owning the files.
//!
//! `<home>/<id>/diff` is the layer's complete tree; `get` returns it as it
//! is. Layers are applied onto it with [`WhiteoutFormat::Remove`], so
//! deletions delete.
//!
//! [`WhiteoutFormat::Remove`]: crate::layer::whiteout::WhiteoutFormat::Remove

use std::path::PathBuf;

use berth_plugin::error::{DriverError, Result};
use berth_plugin::graph::CreateRequest;
use berth_plugin::GraphDriver;

use super::{existing, remove_layer, valid_id, Uses};

use crate::copy::copy_tree;

/// The name users give with `--storage-driver vfs`.
pub const NAME: &str = "vfs";

pub struct VfsDriver {
    home: PathBuf,
    /// The layers in use, so none is removed under its users.
    uses: Uses,
}

impl VfsDriver {
    pub fn new(home: impl Into<PathBuf>) -> Result<VfsDriver> {
        let home = home.into();
        crate::private_home(&home)?;
        Ok(VfsDriver {
            home,
            uses: Uses::default(),
        })
    }

    /// The layer's complete tree.
    pub fn diff_dir(&self, id: &str) -> PathBuf {
        self.home.join(id).join("diff")
    }
}

impl GraphDriver for VfsDriver {
    fn create(&self, req: &CreateRequest) -> Result<()> {
        valid_id(&req.id)?;
        let dir = self.home.join(&req.id);
        if dir.exists() {
            return Err(DriverError::Conflict {
                kind: "layer",
                name: req.id.clone(),
                reason: "already exists".into(),
            });
        }
        let partial = self.home.join(format!(".{}.partial", req.id));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(|e| DriverError::io("create", &partial, e))?;
        let result = if req.parent.is_empty() {
            std::fs::create_dir(partial.join("diff")).map_err(|e| DriverError::io("create", &partial, e))
        } else {
            valid_id(&req.parent)?;
            if !self.exists(&req.parent) {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(DriverError::NotFound {
                    kind: "parent layer",
                    name: req.parent.clone(),
                });
            }
            copy_tree(&self.diff_dir(&req.parent), &partial.join("diff"))
                .map_err(|e| DriverError::io("copy parent layer", self.diff_dir(&req.parent), e))
        };
        result
            .and_then(|_| std::fs::rename(&partial, &dir).map_err(|e| DriverError::io("create layer", &dir, e)))
            .inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&partial);
            })
    }

    fn create_read_write(&self, req: &CreateRequest) -> Result<()> {
        self.create(req)
    }

    fn remove(&self, id: &str) -> Result<()> {
        remove_layer(&self.uses, id, &self.home.join(id))
    }

    fn get(&self, id: &str, _mount_label: &str) -> Result<PathBuf> {
        existing(id, self.exists(id))?;
        self.uses.get(id, || Ok(self.diff_dir(id)))
    }

    fn put(&self, id: &str) -> Result<()> {
        self.uses.put(id, |_| Ok(()))
    }

    fn exists(&self, id: &str) -> bool {
        valid_id(id).is_ok() && self.diff_dir(id).is_dir()
    }

    fn status(&self) -> Vec<(String, String)> {
        vec![("Root Dir".into(), self.home.display().to_string())]
    }

    fn apply_diff(&self, id: &str, tarball: &mut dyn std::io::Read) -> Result<berth_plugin::graph::Applied> {
        existing(id, self.exists(id))?;
        // Onto the copy of the parent, deleting what the whiteouts name;
        // a failure leaves the layer half applied, for the caller to remove.
        let applied = crate::layer::apply::apply_onto(tarball, &self.diff_dir(id), crate::layer::whiteout::WhiteoutFormat::Remove)
            .map_err(|e| DriverError::Driver(e.to_string()))?;
        Ok(berth_plugin::graph::Applied {
            diff_id: applied.diff_id.to_string(),
            size: applied.size,
        })
    }

    fn cleanup(&self) -> Result<()> {
        self.uses.drain();
        Ok(())
    }
}
