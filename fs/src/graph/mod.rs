//! Graph drivers: how layers become directories a container can use.
//!
//! One file per driver. Every driver keeps a layer's own files in
//! `<home>/<id>/diff` (in kernel overlayfs' upper format) so the layer
//! store's apply and diff work on any of them.

pub mod overlay;
pub mod vfs;

/// The graph driver the engine uses unless told otherwise: berth's own
/// FUSE union filesystem, which works wherever FUSE does.
pub const DEFAULT_GRAPH_DRIVER: &str = "fuse-union";

use berth_plugin::error::{DriverError, Result};

/// Checks a layer id: a plain name, not hidden (drivers keep their work
/// directories under dot names).
pub(crate) fn valid_id(id: &str) -> Result<()> {
    if id.is_empty() || id.contains('/') || id.starts_with('.') {
        return Err(DriverError::InvalidArgument {
            what: format!("layer id {id:?}"),
            reason: "must be a plain name, not starting with '.'".into(),
        });
    }
    Ok(())
}

/// Checks `id` and that the driver has the layer (`exists`), as every
/// call on an existing layer does first.
pub(crate) fn existing(id: &str, exists: bool) -> Result<()> {
    valid_id(id)?;
    if !exists {
        return Err(DriverError::NotFound {
            kind: "layer",
            name: id.to_string(),
        });
    }
    Ok(())
}

/// How many users hold each layer and where they see it: every `get`
/// pairs with one `put`, the first `get` makes the view and the last `put`
/// takes it down. Shared by the drivers so they count the same way.
#[derive(Default)]
pub(crate) struct Uses {
    held: std::sync::Mutex<std::collections::HashMap<String, (u32, std::path::PathBuf)>>,
}

impl Uses {
    fn held(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (u32, std::path::PathBuf)>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One more user of `id`; `make` builds the view for the first one.
    pub(crate) fn get(&self, id: &str, make: impl FnOnce() -> Result<std::path::PathBuf>) -> Result<std::path::PathBuf> {
        let mut held = self.held();
        if let Some((n, path)) = held.get_mut(id) {
            *n += 1;
            return Ok(path.clone());
        }
        let path = make()?;
        held.insert(id.to_string(), (1, path.clone()));
        Ok(path)
    }

    /// One user fewer; `unmake` takes the view down after the last one.
    pub(crate) fn put(&self, id: &str, unmake: impl FnOnce(&std::path::Path) -> Result<()>) -> Result<()> {
        let mut held = self.held();
        let Some((n, path)) = held.get_mut(id) else {
            return Err(DriverError::Conflict {
                kind: "layer",
                name: id.to_string(),
                reason: "is not in use".into(),
            });
        };
        *n -= 1;
        if *n == 0 {
            let path = path.clone();
            held.remove(id);
            unmake(&path)?;
        }
        Ok(())
    }

    pub(crate) fn in_use(&self, id: &str) -> bool {
        self.held().contains_key(id)
    }

    /// Forgets every user, returning each layer's view.
    pub(crate) fn drain(&self) -> Vec<std::path::PathBuf> {
        self.held().drain().map(|(_, (_, p))| p).collect()
    }
}

/// Removes layer directory `dir` of layer `id` unless the layer is in use;
/// removing a missing layer is fine.
pub(crate) fn remove_layer(uses: &Uses, id: &str, dir: &std::path::Path) -> Result<()> {
    valid_id(id)?;
    if uses.in_use(id) {
        return Err(DriverError::Conflict {
            kind: "layer",
            name: id.to_string(),
            reason: "is in use".into(),
        });
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::io("remove", dir, e)),
        _ => Ok(()),
    }
}
