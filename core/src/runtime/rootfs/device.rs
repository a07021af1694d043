//! Device nodes in the container's /dev: the OCI default set, the
//! config's `linux.devices`, and the standard /dev symlinks.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::resolve::{ensure_in_root, open_in_root, resolve, Kind};
use crate::runtime::error::InitError;
use crate::sys::proc_fd_path;

/// The devices every container gets (OCI runtime-spec config-linux.md,
/// "Default Devices"): (path, major, minor).
pub const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The symlinks of a standard /dev (runtime-spec "Default Devices" and
/// what runc creates).
const DEV_SYMLINKS: [(&str, &str); 5] = [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/core", "/proc/kcore"),
];

struct Node {
    path: PathBuf,
    kind: libc::mode_t,
    major: u64,
    minor: u64,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
}

fn fail(path: &Path, e: impl std::fmt::Display) -> InitError {
    InitError::new("devices", Some(path), e)
}

/// Creates the default devices (when `with_defaults`, i.e. /dev is a
/// fresh mount) and the config's devices. In a user namespace, where
/// mknod is refused, the host's node is bind-mounted instead.
pub fn create_devices(
    root: &Path,
    root_fd: &OwnedFd,
    devices: &[LinuxDevice],
    with_defaults: bool,
    in_userns: bool,
) -> Result<(), InitError> {
    let mut nodes = Vec::new();
    if with_defaults {
        for (p, major, minor) in DEFAULT_DEVICES {
            nodes.push(Node {
                path: p.into(),
                kind: libc::S_IFCHR,
                major,
                minor,
                mode: 0o666,
                uid: None,
                gid: None,
            });
        }
    }
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => return Err(fail(d.path(), "device type 'a' is only valid in cgroup rules")),
        };
        nodes.retain(|n| n.path != *d.path());
        nodes.push(Node {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid(),
            gid: d.gid(),
        });
    }
    for n in &nodes {
        if !n.path.starts_with("/dev") {
            return Err(fail(&n.path, "devices must be under /dev"));
        }
        if in_userns {
            bind_host_node(root, root_fd, n)?;
        } else {
            make_node(root, root_fd, n)?;
        }
    }
    if with_defaults {
        for (link, target) in DEV_SYMLINKS {
            // /dev/core only where the kernel has a /proc/kcore to point at.
            if target == "/proc/kcore" && !Path::new(target).exists() {
                continue;
            }
            symlink_in_root(root, root_fd, Path::new(link), Path::new(target))?;
        }
    }
    Ok(())
}

fn make_node(root: &Path, root_fd: &OwnedFd, n: &Node) -> Result<(), InitError> {
    let rel = resolve(root, &n.path).map_err(|e| fail(&n.path, e))?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel.file_name().ok_or_else(|| fail(&n.path, "not a file name"))?;
    let parent_fd = ensure_in_root(root, root_fd, &Path::new("/").join(parent), Kind::Dir).map_err(|e| fail(&n.path, e))?;
    let dir = open_in_root(root_fd, parent, libc::O_DIRECTORY | libc::O_RDONLY).map_err(|e| fail(&n.path, e))?;
    drop(parent_fd);
    let dev = libc::makedev(n.major as u32, n.minor as u32);
    let cname = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(name)).map_err(|e| fail(&n.path, e))?;
    use std::os::fd::AsRawFd;
    // SAFETY: valid dir fd and C string; mknodat creates one node.
    if unsafe { libc::mknodat(dir.as_raw_fd(), cname.as_ptr(), n.kind | (n.mode & 0o7777), dev) } < 0 {
        let e = std::io::Error::last_os_error();
        // An existing node (from the image) is kept, as runc does; nothing
        // trusts it (masks use the host's /dev/null).
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            return Ok(());
        }
        return Err(fail(&n.path, format!("mknod: {e}")));
    }
    let node = open_in_root(root_fd, &rel, libc::O_PATH).map_err(|e| fail(&n.path, e))?;
    let p = proc_fd_path(&node);
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(n.mode & 0o7777))
        .map_err(|e| fail(&n.path, format!("chmod: {e}")))?;
    if n.uid.is_some() || n.gid.is_some() {
        std::os::unix::fs::chown(&p, n.uid, n.gid).map_err(|e| fail(&n.path, format!("chown: {e}")))?;
    }
    Ok(())
}

fn bind_host_node(root: &Path, root_fd: &OwnedFd, n: &Node) -> Result<(), InitError> {
    let target = ensure_in_root(root, root_fd, &n.path, Kind::File).map_err(|e| fail(&n.path, e))?;
    mount(Some(&n.path), &proc_fd_path(&target), None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| fail(&n.path, format!("bind host device: {e}")))
}

/// Creates a symlink at `link` inside the rootfs (replacing nothing).
pub fn symlink_in_root(root: &Path, root_fd: &OwnedFd, link: &Path, target: &Path) -> Result<(), InitError> {
    let rel = resolve(root, link).map_err(|e| fail(link, e))?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel.file_name().ok_or_else(|| fail(link, "not a file name"))?;
    let dir = open_in_root(root_fd, parent, libc::O_DIRECTORY | libc::O_RDONLY).map_err(|e| fail(link, e))?;
    match nix::unistd::symlinkat(target, Some(std::os::fd::AsRawFd::as_raw_fd(&dir)), name) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(fail(link, format!("symlink: {e}"))),
    }
}
