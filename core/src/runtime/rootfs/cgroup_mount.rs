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
use crate::sys::proc_fd_path;

/// One cgroup mount of the host, from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCgroupMount {
    pub mount_point: PathBuf,
    pub fstype: String,
    /// Controllers and names from the super options ("cpu,cpuacct",
    /// "name=systemd"), without rw/ro.
    pub subsystems: String,
}

/// Parses the cgroup and cgroup2 mounts out of mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<HostCgroupMount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mount_point = left.split(' ').nth(4);
        let mut r = right.split(' ');
        let (fstype, _source, superopts) = (r.next(), r.next(), r.next());
        let (Some(mp), Some(fstype), Some(superopts)) = (mount_point, fstype, superopts) else {
            continue;
        };
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let subsystems = superopts
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro")
            .collect::<Vec<_>>()
            .join(",");
        out.push(HostCgroupMount {
            mount_point: PathBuf::from(mp.replace("\\040", " ")),
            fstype: fstype.to_string(),
            subsystems,
        });
    }
    out
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
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| fail(Path::new("/proc/self/mountinfo"), e))?;
    let host = parse_mountinfo(&text);
    let base = opts.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let target_path = proc_fd_path(&target);
    let rel = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    if let Some(unified) = host
        .iter()
        .find(|m| m.fstype == "cgroup2" && m.mount_point == Path::new("/sys/fs/cgroup"))
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
    for m in host.iter().filter(|m| m.mount_point.parent() == Some(Path::new("/sys/fs/cgroup"))) {
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
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            if let Ok(link) = std::fs::read_link(e.path()) {
                let _ = std::os::unix::fs::symlink(link, dir_path.join(e.file_name()));
            }
        }
    }
    if ro {
        remount_readonly(&dir_path).map_err(|e| fail(dest, format!("read-only: {e}")))?;
    }
    Ok(())
}

fn mount_one(m: &HostCgroupMount, target: &Path, rel: &Path, flags: MsFlags, new_cgroupns: bool) -> nix::Result<()> {
    if new_cgroupns {
        let data = (m.fstype == "cgroup").then_some(m.subsystems.as_str());
        mount(Some(m.fstype.as_str()), target, Some(m.fstype.as_str()), flags, data)
    } else {
        let src = m.mount_point.join(rel);
        mount(Some(&src), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)?;
        if flags.contains(MsFlags::MS_RDONLY) {
            remount_readonly(target)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hybrid_mountinfo() {
        let text = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].subsystems, "cpu");
        assert_eq!(m[1].subsystems, "name=systemd");
        assert_eq!(m[2].fstype, "cgroup2");
        assert_eq!(m[2].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
    }
}
