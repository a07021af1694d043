//! Graph drivers: how layers become directories a container can use.
//!
//! One file per driver. Every driver keeps a layer's own files in
//! `<home>/<id>/diff` (in kernel overlayfs' upper format) so the layer
//! store's apply and diff work on any of them.

pub mod overlay;
pub mod vfs;

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
