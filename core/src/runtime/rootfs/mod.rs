//! The container's root filesystem: propagation, the config's mounts,
//! devices, pivot_root, and the masked and read-only paths.
//!
//! Every path inside the rootfs is resolved by [`resolve`] and opened with
//! openat2(RESOLVE_IN_ROOT); mounts target `/proc/self/fd/N` of the opened
//! destination, never a path string the rootfs could redirect.

pub mod cgroup_mount;
pub mod device;
pub mod mount;
pub mod paths;
pub mod resolve;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount as mount2, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;

use crate::runtime::error::InitError;
use crate::sys;

/// What the rootfs set-up needs to know besides the spec.
pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub in_userns: bool,
    /// The container's cgroup path (for bind-mounting its cgroup when the
    /// container has no cgroup namespace).
    pub cgroup_path: &'a Path,
    pub new_cgroupns: bool,
}

fn err(step: &str, path: &Path, e: impl std::fmt::Display) -> InitError {
    InitError::new(step, Some(path), e)
}

/// Sets the mount propagation of the container's mount namespace
/// (rootfsPropagation, default rslave so nothing leaks back to the host),
/// makes the rootfs a mount point, then mounts the config's mounts and
/// creates devices. Runs in the container's mount namespace, before
/// pivot_root.
pub fn prepare(ctx: &RootfsContext) -> Result<(), InitError> {
    let linux = ctx.spec.linux().as_ref();
    let requested = linux.and_then(|l| l.rootfs_propagation().as_deref()).filter(|p| !p.is_empty());
    let initial = match requested.map(|p| {
        mount::propagation_flag(p).ok_or_else(|| err("rootfs propagation", Path::new("/"), format!("unknown rootfsPropagation {p:?}")))
    }) {
        Some(f) => f?,
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    // Shared propagation would make pivot_root fail; it is applied after the pivot.
    let initial = if initial.contains(MsFlags::MS_SHARED) {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    } else {
        initial
    };
    mount2(None::<&str>, "/", None::<&str>, initial, None::<&str>).map_err(|e| err("rootfs propagation", Path::new("/"), e))?;
    mount2(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| err("bind rootfs", ctx.rootfs, e))?;

    let root_fd =
        sys::openat2(libc::AT_FDCWD, ctx.rootfs, libc::O_PATH | libc::O_DIRECTORY, 0, 0).map_err(|e| err("open rootfs", ctx.rootfs, e))?;
    let mounts = ctx.spec.mounts().as_deref().unwrap_or_default();
    let cgroup = cgroup_mount::CgroupView {
        path: ctx.cgroup_path,
        new_namespace: ctx.new_cgroupns,
    };
    for m in mounts {
        mount::mount_entry(ctx.rootfs, &root_fd, ctx.bundle, m, &cgroup)?;
    }
    // As runc: the default devices go into /dev unless /dev is bound from
    // elsewhere (a host /dev must never be touched).
    let dev_is_bound = mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o == "bind" || o == "rbind"))
    });
    let devices = linux.and_then(|l| l.devices().as_deref()).unwrap_or_default();
    device::create_devices(ctx.rootfs, &root_fd, devices, !dev_is_bound, ctx.in_userns)?;
    if !dev_is_bound && mounts.iter().any(|m| m.destination() == Path::new("/dev/pts")) {
        device::symlink_in_root(ctx.rootfs, &root_fd, Path::new("/dev/ptmx"), Path::new("pts/ptmx"))?;
    }
    Ok(())
}

/// Makes the rootfs the root of the mount namespace and detaches the old
/// root, so nothing of the host stays reachable.
pub fn pivot(rootfs: &Path) -> Result<(), InitError> {
    let step = "pivot_root";
    let old =
        sys::openat2(libc::AT_FDCWD, Path::new("/"), libc::O_DIRECTORY | libc::O_RDONLY, 0, 0).map_err(|e| err(step, Path::new("/"), e))?;
    let new = sys::openat2(libc::AT_FDCWD, rootfs, libc::O_DIRECTORY | libc::O_RDONLY, 0, 0).map_err(|e| err(step, rootfs, e))?;
    nix::unistd::fchdir(new.as_raw_fd()).map_err(|e| err(step, rootfs, e))?;
    // pivot_root(".", ".") stacks the old root on top of the new one at
    // "."; detaching "." afterwards drops the old root.
    sys::pivot_root(Path::new("."), Path::new(".")).map_err(|e| err(step, rootfs, e))?;
    nix::unistd::fchdir(old.as_raw_fd()).map_err(|e| err(step, Path::new("/"), e))?;
    mount2(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)
        .map_err(|e| err(step, Path::new("old root"), e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| err(step, Path::new("old root"), e))?;
    nix::unistd::chdir("/").map_err(|e| err(step, Path::new("/"), e))?;
    Ok(())
}

/// The container's /dev/null, opened without following any symlink and
/// checked to be the 1:3 character device: it is what masked files are
/// covered with, and a /dev/null that points elsewhere would bind that
/// elsewhere over them (CVE-2025-31133).
fn open_dev_null(root_fd: &OwnedFd) -> Result<OwnedFd, InitError> {
    let null = Path::new("/dev/null");
    let fd = sys::openat2(
        root_fd.as_raw_fd(),
        Path::new("dev/null"),
        libc::O_PATH | libc::O_NOFOLLOW,
        0,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS,
    )
    .map_err(|e| err("masked path", null, e))?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|e| err("masked path", null, e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        return Err(err(
            "masked path",
            null,
            "the container's /dev/null is not the 1:3 character device",
        ));
    }
    Ok(fd)
}

/// Fails unless `/proc` in the container is a real procfs: sysctls and
/// masks must not land on a filesystem the rootfs put there.
fn check_procfs() -> Result<(), InitError> {
    let proc_dir = Path::new("/proc");
    match nix::sys::statfs::statfs(proc_dir) {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC => Ok(()),
        Ok(_) => Err(err("procfs", proc_dir, "/proc in the container is not procfs")),
        Err(e) => Err(err("procfs", proc_dir, e)),
    }
}

/// After pivot_root: sysctls, masked and read-only paths, the read-only
/// root, and shared propagation if asked.
pub fn finish(spec: &Spec) -> Result<(), InitError> {
    let linux = spec.linux().as_ref();
    let needs_proc = linux.is_some_and(|l| l.sysctl().as_ref().is_some_and(|s| !s.is_empty()));
    if needs_proc {
        check_procfs()?;
    }
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        for (key, value) in sysctl {
            let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
            if key.contains("..") || key.contains('/') {
                return Err(err("sysctl", &path, "invalid key"));
            }
            std::fs::write(&path, value.as_bytes()).map_err(|e| err("sysctl", &path, e))?;
        }
    }
    let root_fd = sys::openat2(libc::AT_FDCWD, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY, 0, 0)
        .map_err(|e| err("open root", Path::new("/"), e))?;
    let masked = linux.and_then(|l| l.masked_paths().as_deref()).unwrap_or_default();
    if !masked.is_empty() {
        let dev_null = open_dev_null(&root_fd)?;
        for p in masked {
            paths::mask(&root_fd, Path::new(p), &dev_null)?;
        }
    }
    for p in linux.and_then(|l| l.readonly_paths().as_deref()).unwrap_or_default() {
        paths::make_readonly(&root_fd, Path::new(p))?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        paths::remount_readonly(Path::new("/")).map_err(|e| err("read-only root", Path::new("/"), e))?;
    }
    if let Some(p) = linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        if let Some(f) = mount::propagation_flag(p).filter(|f| f.contains(MsFlags::MS_SHARED)) {
            mount2(None::<&str>, "/", None::<&str>, f, None::<&str>).map_err(|e| err("rootfs propagation", Path::new("/"), e))?;
        }
    }
    Ok(())
}
