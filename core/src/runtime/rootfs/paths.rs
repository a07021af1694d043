//! Masked and read-only paths, applied after pivot_root: a masked file is
//! covered by /dev/null, a masked directory by an empty read-only tmpfs,
//! and a read-only path is bind-mounted onto itself and remounted read-only.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::resolve::{open_in_root, resolve};
use crate::runtime::error::InitError;
use crate::sys::proc_fd_path;

fn open_existing(root_fd: &OwnedFd, path: &Path, step: &str) -> Result<Option<OwnedFd>, InitError> {
    let rel = resolve(Path::new("/"), path).map_err(|e| InitError::new(step, Some(path), e))?;
    match open_in_root(root_fd, &rel, libc::O_PATH | libc::O_NOFOLLOW) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(InitError::new(step, Some(path), e)),
    }
}

/// Hides `path` from the container (a file under `dev_null`, a directory
/// under an empty read-only tmpfs). Paths that do not exist are skipped.
pub fn mask(root_fd: &OwnedFd, path: &Path, dev_null: &OwnedFd) -> Result<(), InitError> {
    let step = "masked path";
    let Some(fd) = open_existing(root_fd, path, step)? else {
        return Ok(());
    };
    let target = proc_fd_path(&fd);
    let is_dir = std::fs::metadata(&target).map(|m| m.is_dir()).unwrap_or(false);
    let r = if is_dir {
        mount(Some("tmpfs"), &target, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0,mode=0555"))
    } else {
        mount(Some(&proc_fd_path(dev_null)), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
    };
    r.map_err(|e| InitError::new(step, Some(path), e))
}

/// Makes `path` read-only for the container. Paths that do not exist are
/// skipped.
pub fn make_readonly(root_fd: &OwnedFd, path: &Path) -> Result<(), InitError> {
    let step = "read-only path";
    let Some(fd) = open_existing(root_fd, path, step)? else {
        return Ok(());
    };
    let target = proc_fd_path(&fd);
    mount(
        Some(&target),
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| InitError::new(step, Some(path), e))?;
    // Reopen: the old fd names the covered dentry, not the new bind mount.
    let Some(fd) = open_existing(root_fd, path, step)? else {
        return Ok(());
    };
    remount_readonly(&proc_fd_path(&fd)).map_err(|e| InitError::new(step, Some(path), e))
}

/// Remounts the bind mount at `target` read-only, keeping its other
/// per-mount flags (a locked flag cannot be cleared in a user namespace).
pub fn remount_readonly(target: &Path) -> nix::Result<()> {
    let st = nix::sys::statvfs::statvfs(target)?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    use nix::sys::statvfs::FsFlags;
    for (f, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.flags().contains(f) {
            flags |= m;
        }
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
}
