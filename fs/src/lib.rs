//! berth-fs: storage drivers behind [`berth_plugin::GraphDriver`] and
//! [`berth_plugin::VolumeDriver`].
//!
//! This crate will hold the layer store, the FUSE union filesystem and the
//! graph and volume drivers (see issue 3 and docs/architecture.md). It never
//! depends on the engine: the engine calls [`register_builtin`].

use berth_plugin::Registry;

/// Registers every built-in storage and volume driver. None exist yet; the
/// engine calls this so drivers appear as soon as they are written.
pub fn register_builtin(_registry: &mut Registry) -> berth_plugin::error::Result<()> {
    Ok(())
}
