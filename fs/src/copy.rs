//! Copying a directory tree with everything a layer carries: modes,
//! owners, times, xattrs, symlinks, devices, fifos and hard links.
//!
//! Used where a layer must become a full copy of another (the `vfs` graph
//! driver) and, later, for copy-up in the union filesystem.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::layer::apply::set_times;

/// Copies the tree at `from` to `to` (which must not exist).
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let mut links = HashMap::new();
    let meta = std::fs::symlink_metadata(from)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", from.display()),
        ));
    }
    std::fs::create_dir(to)?;
    copy_children(from, to, &mut links)?;
    copy_metadata(from, to, &meta)
}

fn copy_children(from: &Path, to: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if meta.nlink() > 1 && !ft.is_dir() {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                std::fs::hard_link(first, &dst)?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), dst.clone());
        }
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_children(&src, &dst, links)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let kind = nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
            nix::sys::stat::mknod(&dst, kind, nix::sys::stat::Mode::from_bits_truncate(0o600), meta.rdev())?;
        } else {
            // Sockets are not copied: they belong to a running process.
            continue;
        }
        copy_metadata(&src, &dst, &meta)?;
    }
    Ok(())
}

/// Owner, xattrs, mode (after the owner: chown clears set-id bits) and
/// times of `src` onto `dst`. overlayfs' own xattrs are not copied: an
/// opaque mark belongs to the layer it is in, and a copy (a copy-up, a
/// `vfs` layer) is a new place where it means something else.
pub fn copy_metadata(src: &Path, dst: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))?;
    match xattr::list(src) {
        Ok(names) => {
            for name in names.filter(|n| !n.to_string_lossy().starts_with(crate::layer::whiteout::OVERLAY_XATTR_PREFIX)) {
                if let Some(value) = xattr::get(src, &name)? {
                    xattr::set(dst, &name, &value)?;
                }
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {}
        Err(e) => return Err(e),
    }
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    set_times(dst, meta.mtime(), meta.mtime_nsec())
}
