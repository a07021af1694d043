//! berth-fs: storage for berth: the content-addressed blob store, layers
//! (apply and diff of OCI layer tarballs, whiteouts), and the storage and
//! volume drivers behind [`berth_plugin::GraphDriver`] and
//! [`berth_plugin::VolumeDriver`].
//!
//! This crate never depends on the engine: the engine calls
//! [`register_builtin`] to put its drivers in the registry.

pub mod atomic;
pub mod blob;
pub mod copy;
pub mod digest;
pub mod fuse;
pub mod graph;
pub mod layer;
pub mod union;
pub mod volume;

use std::path::Path;
use std::sync::Arc;

use berth_plugin::{Registry, Transport};

/// Creates a driver's home directory, open to root alone: layers keep
/// set-id files and capabilities, and volumes hold containers' data, so
/// no local user may walk in (and run or read them from there).
pub(crate) fn private_home(home: &Path) -> berth_plugin::error::Result<()> {
    use berth_plugin::error::DriverError;
    std::fs::create_dir_all(home).map_err(|e| DriverError::io("create", home, e))?;
    std::fs::set_permissions(home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).map_err(|e| DriverError::io("chmod", home, e))
}

/// A berth program: beside the running binary when installed together,
/// else found in PATH.
pub fn program(name: &str) -> std::path::PathBuf {
    let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join(name)));
    match beside {
        Some(p) if p.is_file() => p,
        _ => name.into(),
    }
}

/// The berth-unionfs program (see [`program`]).
pub fn unionfs_program() -> std::path::PathBuf {
    program("berth-unionfs")
}

/// Registers every built-in storage and volume driver, each keeping its
/// data in a folder of its own name under `data_root`.
pub fn register_builtin(registry: &mut Registry, data_root: &Path) -> berth_plugin::error::Result<()> {
    let overlay = graph::overlay::OverlayDriver::new(data_root.join(graph::overlay::NAME))?;
    registry.register_graph(graph::overlay::NAME, Arc::new(overlay), Transport::Builtin)?;
    let unionfs = graph::overlay::Mounter::Fuse(unionfs_program());
    let fuse = graph::overlay::OverlayDriver::with_mounter(data_root.join(graph::overlay::FUSE_NAME), unionfs)?;
    registry.register_graph(graph::overlay::FUSE_NAME, Arc::new(fuse), Transport::Builtin)?;
    let vfs = graph::vfs::VfsDriver::new(data_root.join(graph::vfs::NAME))?;
    registry.register_graph(graph::vfs::NAME, Arc::new(vfs), Transport::Builtin)?;
    let local = volume::local::LocalDriver::new(data_root.join("volumes").join(volume::local::NAME))?;
    registry.register_volume(volume::local::NAME, Arc::new(local), Transport::Builtin)?;
    Ok(())
}
