//! `type: cgroup` mounts: the container's view of /sys/fs/cgroup.
//!
//! On cgroup v2 a cgroup2 filesystem; on v1 a tmpfs holding one mount per
//! host hierarchy (and the host's symlinks for co-mounted controllers).
//! With a cgroup namespace the kernel roots each mount at the container's
//! cgroup; without one, the container's own cgroup directory is bind-mounted.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::mount::Options;
use super::paths::remount_readonly;
use super::resolve::open_in_root;
use crate::runtime::error::InitError;

/// Where hosts mount their cgroup filesystems.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
use crate::sys::proc_fd_path;

/// One cgroup filesystem of the host to reproduce in the container.
struct HostCgroupMount {
    mount_point: PathBuf,
    fstype: &'static str,
    /// The mount data: the v1 controllers ("cpu,cpuacct", "name=systemd").
    subsystems: String,
}

fn host_mounts() -> Result<Vec<HostCgroupMount>, String> {
    let m = crate::runtime::cgroups::mountinfo::read().map_err(|e| e.to_string())?;
    let mut out: Vec<HostCgroupMount> =
        m.v1.into_iter()
            .map(|h| HostCgroupMount {
                mount_point: h.mount_point,
                fstype: "cgroup",
                subsystems: h.controllers.join(","),
            })
            .collect();
    // On a hybrid host the empty cgroup2 beside v1 stays out of the
    // container's view, as with runc; on a pure v2 host it is the view.
    if let Some(u) = m.unified.filter(|u| u == Path::new(CGROUP_ROOT)) {
        out.push(HostCgroupMount {
            mount_point: u,
            fstype: "cgroup2",
            subsystems: String::new(),
        });
    }
    Ok(out)
}

/// Which cgroup the container sees and whether it has its own cgroup
/// namespace.
pub struct CgroupView<'a> {
    pub path: &'a Path,
    pub new_namespace: bool,
}

fn fail(dest: &Path, e: impl std::fmt::Display) -> InitError {
    InitError::new("mount cgroup", Some(dest), e)
}

/// Mounts the container's cgroup view at `dest`, found at `rel` under
/// `root_fd`.
pub fn mount_cgroups(dest: &Path, root_fd: &OwnedFd, rel_dest: &Path, opts: &Options, view: &CgroupView) -> Result<(), InitError> {
    let (cgroup_path, new_cgroupns) = (view.path, view.new_namespace);
    let target = open_in_root(root_fd, rel_dest, libc::O_PATH).map_err(|e| fail(dest, e))?;
    let host = host_mounts().map_err(|e| fail(dest, e))?;
    let base = opts.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let target_path = proc_fd_path(&target);
    let rel = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    if let Some(unified) = host
        .iter()
        .find(|m| m.fstype == "cgroup2" && m.mount_point == Path::new(CGROUP_ROOT))
    {
        return mount_one(
            unified,
            &target_path,
            rel,
            base | if ro { MsFlags::MS_RDONLY } else { MsFlags::empty() },
            new_cgroupns,
        )
        .map_err(|e| fail(dest, e));
    }
    mount(Some("tmpfs"), &target_path, Some("tmpfs"), base, Some("mode=755")).map_err(|e| fail(dest, format!("tmpfs: {e}")))?;
    // The fd names the covered directory: reopen through the new tmpfs.
    let dir = open_in_root(root_fd, rel_dest, libc::O_PATH | libc::O_DIRECTORY).map_err(|e| fail(dest, e))?;
    let dir_path = proc_fd_path(&dir);
    for m in host.iter().filter(|m| m.mount_point.parent() == Some(Path::new(CGROUP_ROOT))) {
        let Some(name) = m.mount_point.file_name() else { continue };
        let sub = dir_path.join(name);
        std::fs::create_dir(&sub).map_err(|e| fail(&dest.join(name), e))?;
        mount_one(
            m,
            &sub,
            rel,
            base | if ro { MsFlags::MS_RDONLY } else { MsFlags::empty() },
            new_cgroupns,
        )
        .map_err(|e| fail(&dest.join(name), e))?;
    }
    // Co-mounted controllers appear under several names (cpu -> cpu,cpuacct).
    if let Ok(entries) = std::fs::read_dir(CGROUP_ROOT) {
        for e in entries.flatten() {
            if let Ok(link) = std::fs::read_link(e.path()) {
                let _ = std::os::unix::fs::symlink(link, dir_path.join(e.file_name()));
            }
        }
    }
    // As with runc, `ro` applies to the hierarchies; the tmpfs holding
    // them stays writable (it holds nothing of the host's).
    Ok(())
}

fn mount_one(m: &HostCgroupMount, target: &Path, rel: &Path, flags: MsFlags, new_cgroupns: bool) -> nix::Result<()> {
    if new_cgroupns {
        let data = (m.fstype == "cgroup").then_some(m.subsystems.as_str());
        mount(Some(m.fstype), target, Some(m.fstype), flags, data)
    } else {
        let src = m.mount_point.join(rel);
        mount(Some(&src), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)?;
        if flags.contains(MsFlags::MS_RDONLY) {
            remount_readonly(target)?;
        }
        Ok(())
    }
}
