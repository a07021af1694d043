//! Whiteouts: how a layer says "this name is deleted" or "this directory
//! hides everything below it".
//!
//! In a layer tarball (OCI image-spec layer.md) a deletion is an empty file
//! `.wh.NAME` and an opaque directory holds `.wh..wh..opq`. On disk, in
//! kernel overlayfs' format, a deletion is a 0:0 character device named
//! NAME and an opaque directory carries the `trusted.overlay.opaque` xattr.
//! Where device nodes cannot be made (no CAP_MKNOD) the tarball form is
//! kept on disk instead, and readers accept both.

use std::io;
use std::path::Path;

/// Prefix of a whiteout file in a layer tarball (OCI image-spec layer.md).
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker in a layer tarball.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// xattr marking an opaque directory in an overlayfs upper
/// (Documentation/filesystems/overlayfs.rst).
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Prefix of every xattr overlayfs keeps for itself.
pub const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// How whiteouts are written to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutFormat {
    /// 0:0 character devices and the opaque xattr (kernel overlayfs).
    Overlay,
    /// `.wh.` files, as in the tarball (rootless fallback).
    Files,
    /// No whiteouts on disk: what they name is deleted, for a layer
    /// applied onto a full copy of its parent (the `vfs` driver).
    Remove,
}

impl WhiteoutFormat {
    /// Overlay when this process can make a 0:0 character device in `dir`
    /// and set trusted xattrs there, else Files.
    pub fn detect(dir: &Path) -> WhiteoutFormat {
        let probe = dir.join(format!(".berth-whiteout-probe-{}", std::process::id()));
        let ok = make_whiteout(&probe).is_ok() && xattr::set(&probe, OVERLAY_OPAQUE_XATTR, b"y").is_ok();
        let _ = std::fs::remove_file(&probe);
        if ok {
            WhiteoutFormat::Overlay
        } else {
            WhiteoutFormat::Files
        }
    }
}

/// Creates an overlayfs whiteout (a 0:0 character device) at `path`.
pub fn make_whiteout(path: &Path) -> io::Result<()> {
    nix::sys::stat::mknod(path, nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0).map_err(io::Error::from)
}

/// Whether `meta` describes an overlayfs whiteout.
pub fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory at `path` is marked opaque by the xattr.
pub fn is_opaque(path: &Path) -> bool {
    matches!(xattr::get(path, OVERLAY_OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
}
