//! berth-fs: storage for berth: the content-addressed blob store, layers
//! (apply and diff of OCI layer tarballs, whiteouts), and the storage and
//! volume drivers behind [`berth_plugin::GraphDriver`] and
//! [`berth_plugin::VolumeDriver`].
//!
//! This crate never depends on the engine: the engine calls
//! [`register_builtin`] to put its drivers in the registry.

pub mod blob;
pub mod digest;
pub mod layer;

use berth_plugin::Registry;

/// Registers every built-in storage and volume driver. None exist yet; the
/// engine calls this so drivers appear as soon as they are written.
pub fn register_builtin(_registry: &mut Registry) -> berth_plugin::error::Result<()> {
    Ok(())
}
