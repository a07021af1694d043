//! The `overlay` and `fuse-union` graph drivers: layers stacked by kernel
//! overlayfs or by berth-unionfs, on the same on-disk layout (an upper
//! written by one mounts under the other).
//!
//! `<home>/<id>/diff` holds the layer's files, `<home>/<id>/lower` the
//! diff directories of its parents (nearest first), and a mounted layer
//! appears at `<home>/<id>/merged`, with `<home>/<id>/work` as overlayfs'
//! work directory for writable layers. Mounts are counted: each `get` is
//! paired with a `put`, and the last `put` unmounts.

use std::path::PathBuf;

use berth_plugin::error::{DriverError, Result};
use berth_plugin::graph::CreateRequest;
use berth_plugin::GraphDriver;

use super::{existing, remove_layer, valid_id, Uses};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// The name users give with `--storage-driver overlay`.
pub const NAME: &str = "overlay";
/// The name of the same layout mounted by berth-unionfs.
pub const FUSE_NAME: &str = "fuse-union";

/// What stacks the layers.
#[derive(Debug, Clone)]
pub enum Mounter {
    /// Kernel overlayfs.
    Kernel,
    /// berth-unionfs, run from this program path.
    Fuse(PathBuf),
}

pub struct OverlayDriver {
    home: PathBuf,
    mounter: Mounter,
    /// The layers currently mounted.
    uses: Uses,
}

impl OverlayDriver {
    /// A driver keeping its layers under `home`.
    pub fn new(home: impl Into<PathBuf>) -> Result<OverlayDriver> {
        Self::with_mounter(home, Mounter::Kernel)
    }

    /// A driver whose layers are mounted by `mounter`.
    pub fn with_mounter(home: impl Into<PathBuf>, mounter: Mounter) -> Result<OverlayDriver> {
        let home = home.into();
        crate::private_home(&home)?;
        Ok(OverlayDriver {
            home,
            mounter,
            uses: Uses::default(),
        })
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.home.join(id)
    }

    /// Where layer `id`'s own files live (apply layer tarballs here).
    pub fn diff_dir(&self, id: &str) -> PathBuf {
        self.dir(id).join("diff")
    }

    fn lowers(&self, id: &str) -> Result<Vec<PathBuf>> {
        let file = self.dir(id).join("lower");
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(text.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(DriverError::io("read", &file, e)),
        }
    }

    fn create_layer(&self, req: &CreateRequest, writable: bool) -> Result<()> {
        valid_id(&req.id)?;
        let dir = self.dir(&req.id);
        if dir.exists() {
            return Err(DriverError::Conflict {
                kind: "layer",
                name: req.id.clone(),
                reason: "already exists".into(),
            });
        }
        let mut lowers = Vec::new();
        if !req.parent.is_empty() {
            valid_id(&req.parent)?;
            if !self.exists(&req.parent) {
                return Err(DriverError::NotFound {
                    kind: "parent layer",
                    name: req.parent.clone(),
                });
            }
            lowers.push(self.diff_dir(&req.parent));
            lowers.extend(self.lowers(&req.parent)?);
        }
        let partial = self.home.join(format!(".{}.partial", req.id));
        let _ = std::fs::remove_dir_all(&partial);
        let build = || -> std::io::Result<()> {
            std::fs::create_dir_all(partial.join("diff"))?;
            if writable {
                std::fs::create_dir_all(partial.join("work"))?;
            }
            let text: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
            std::fs::write(partial.join("lower"), text.join(":"))?;
            std::fs::rename(&partial, &dir)
        };
        build().map_err(|e| {
            let _ = std::fs::remove_dir_all(&partial);
            DriverError::io("create layer", &dir, e)
        })
    }

    fn mount_layer(&self, id: &str) -> Result<PathBuf> {
        let lowers = self.lowers(id)?;
        let diff = self.diff_dir(id);
        if lowers.is_empty() {
            // A base layer needs no overlay: its files are the view.
            return Ok(diff);
        }
        let merged = self.dir(id).join("merged");
        std::fs::create_dir_all(&merged).map_err(|e| DriverError::io("create", &merged, e))?;
        match std::fs::metadata(&merged).and_then(|m| Ok((m, std::fs::metadata(self.dir(id))?))) {
            // Still mounted from before the engine restarted (a running
            // container's root): taken over as it is.
            Ok((m, parent)) if std::os::unix::fs::MetadataExt::dev(&m) != std::os::unix::fs::MetadataExt::dev(&parent) => {
                return Ok(merged)
            }
            Ok(_) => {}
            // A FUSE mount whose server died: cleared, then mounted anew.
            Err(_) => {
                let _ = umount2(&merged, MntFlags::MNT_DETACH);
            }
        }
        let work = self.dir(id).join("work");
        let lower_list = |dirs: &[PathBuf]| dirs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
        let data = if work.is_dir() {
            format!(
                "lowerdir={},upperdir={},workdir={}",
                lower_list(&lowers),
                diff.display(),
                work.display()
            )
        } else {
            // Read-only: the layer itself is the topmost lower.
            let mut all = vec![diff.clone()];
            all.extend(lowers);
            format!("lowerdir={}", lower_list(&all))
        };
        match &self.mounter {
            Mounter::Kernel => mount(Some("overlay"), &merged, Some("overlay"), MsFlags::empty(), Some(data.as_str()))
                .map_err(|e| DriverError::io("mount overlay", &merged, e.into()))?,
            Mounter::Fuse(program) => {
                let out = std::process::Command::new(program)
                    .arg("-o")
                    .arg(&data)
                    .arg(&merged)
                    .output()
                    .map_err(|e| DriverError::io("run", program, e))?;
                if !out.status.success() {
                    return Err(DriverError::Driver(format!(
                        "{} {}: {}",
                        program.display(),
                        merged.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
            }
        }
        Ok(merged)
    }
}

impl GraphDriver for OverlayDriver {
    fn create(&self, req: &CreateRequest) -> Result<()> {
        self.create_layer(req, false)
    }

    fn create_read_write(&self, req: &CreateRequest) -> Result<()> {
        self.create_layer(req, true)
    }

    fn remove(&self, id: &str) -> Result<()> {
        remove_layer(&self.uses, id, &self.dir(id))
    }

    fn get(&self, id: &str, _mount_label: &str) -> Result<PathBuf> {
        existing(id, self.exists(id))?;
        self.uses.get(id, || self.mount_layer(id))
    }

    fn put(&self, id: &str) -> Result<()> {
        let diff = self.diff_dir(id);
        self.uses.put(id, |view| {
            // A base layer is its own view: nothing was mounted.
            if view != diff {
                umount2(view, MntFlags::MNT_DETACH).map_err(|e| DriverError::io("unmount", view, e.into()))?;
            }
            Ok(())
        })
    }

    fn exists(&self, id: &str) -> bool {
        valid_id(id).is_ok() && self.diff_dir(id).is_dir()
    }

    fn status(&self) -> Vec<(String, String)> {
        let layers = std::fs::read_dir(&self.home)
            .map(|d| d.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
            .unwrap_or(0);
        vec![
            ("Root Dir".into(), self.home.display().to_string()),
            ("Layers".into(), layers.to_string()),
        ]
    }

    fn apply_diff(&self, id: &str, tarball: &mut dyn std::io::Read) -> Result<berth_plugin::graph::Applied> {
        existing(id, self.exists(id))?;
        // Unpacked beside the empty diff directory and renamed over it: a
        // failure leaves the layer as it was.
        let diff = self.diff_dir(id);
        let whiteouts = crate::layer::whiteout::WhiteoutFormat::detect(&self.home);
        let staged = self.dir(id).join("diff.applying");
        let _ = std::fs::remove_dir_all(&staged);
        let applied = crate::layer::apply::apply_layer(tarball, &staged, whiteouts).map_err(|e| DriverError::Driver(e.to_string()))?;
        // rename(2) replaces an empty directory in one step.
        let swap = std::fs::rename(&staged, &diff);
        if let Err(e) = swap {
            let _ = std::fs::remove_dir_all(&staged);
            let _ = std::fs::create_dir(&diff);
            return Err(DriverError::io("apply layer", &diff, e));
        }
        Ok(berth_plugin::graph::Applied {
            diff_id: applied.diff_id.to_string(),
            size: applied.size,
        })
    }

    fn cleanup(&self) -> Result<()> {
        for view in self.uses.drain() {
            if view.ends_with("merged") {
                let _ = umount2(&view, MntFlags::MNT_DETACH);
            }
        }
        Ok(())
    }
}
