//! The mounts of config.json: option parsing and mounting each entry onto
//! its destination inside the rootfs, by fd.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use super::resolve::{ensure_in_root, open_in_root, resolve, Kind};
use crate::runtime::error::InitError;
use crate::sys::proc_fd_path;

/// A mount's options split the way mount(2) wants them.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub flags: MsFlags,
    /// Propagation changes, applied by separate mount calls.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options passed as mount data.
    pub data: String,
    pub bind: bool,
}

/// Parses OCI mount options (mount(8) names) into flags and data.
pub fn parse_options(options: &[String]) -> Options {
    let mut o = Options {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
        bind: false,
    };
    let mut data = Vec::new();
    for opt in options {
        let (set, clear): (MsFlags, MsFlags) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => {
                o.bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                o.bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            p @ ("private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable") => {
                o.propagation.push(propagation_flag(p).unwrap_or(MsFlags::empty()));
                continue;
            }
            // Options other runtimes understand that change nothing here.
            "tmpcopyup" | "defaults" => continue,
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
    }
    o.data = data.join(",");
    o
}

/// The mount(2) flag for a propagation name (`rslave`, `shared`, ...).
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    let (rec, base) = match name.strip_prefix('r') {
        Some(b) if !b.is_empty() => (true, b),
        _ => (false, name),
    };
    let f = match base {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(if rec { f | MsFlags::MS_REC } else { f })
}

/// Flags that a bind mount only honours on a remount.
fn bind_remount_flags(flags: MsFlags) -> MsFlags {
    flags
        & (MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC
            | MsFlags::MS_NOATIME
            | MsFlags::MS_NODIRATIME
            | MsFlags::MS_RELATIME
            | MsFlags::MS_STRICTATIME)
}

/// Files under /proc that may be covered (what lxcfs and runc allow):
/// anything else under /proc could hide what the runtime itself writes.
const PROC_OVERRIDES: [&str; 10] = [
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/net/dev",
    "proc/sys/kernel/ns_last_pid",
];

/// Refuses a mount that would cover procfs (a destination that resolves to
/// /proc, other than procfs itself, or under /proc, other than the files
/// of [`PROC_OVERRIDES`]).
fn check_proc_destination(root: &Path, dest: &Path, typ: &str) -> Result<(), InitError> {
    let rel = resolve(root, dest).map_err(|e| fail("mount", dest, e))?;
    let refused = if rel == Path::new("proc") {
        typ != "proc"
    } else {
        rel.starts_with("proc") && !PROC_OVERRIDES.iter().any(|p| rel == Path::new(p))
    };
    if refused {
        return Err(fail(
            "mount",
            dest,
            format!("{typ} mount onto /{} would cover procfs", rel.display()),
        ));
    }
    Ok(())
}

fn fail(step: &str, path: &Path, e: impl std::fmt::Display) -> InitError {
    InitError::new(step, Some(path), e)
}

/// Mounts one config.json entry into the rootfs. `bundle` anchors relative
/// bind sources; `cgroup` says how `type: cgroup` mounts look.
pub fn mount_entry(
    root: &Path,
    root_fd: &OwnedFd,
    bundle: &Path,
    m: &Mount,
    cgroup: &super::cgroup_mount::CgroupView,
) -> Result<(), InitError> {
    let dest = m.destination();
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or(if opts.bind { "bind" } else { "" });
    let is_bind = opts.bind || typ == "bind";
    let step = "mount";
    check_proc_destination(root, dest, typ)?;
    if is_bind {
        let src = m.source().as_ref().ok_or_else(|| fail(step, dest, "bind mount without a source"))?;
        let src: PathBuf = if src.is_absolute() { src.clone() } else { bundle.join(src) };
        let meta = std::fs::metadata(&src).map_err(|e| fail(step, &src, format!("bind source: {e}")))?;
        let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
        let target = ensure_in_root(root, root_fd, dest, kind).map_err(|e| fail(step, dest, e))?;
        let rec = opts.flags & MsFlags::MS_REC;
        mount(
            Some(&src),
            &proc_fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND | rec,
            None::<&str>,
        )
        .map_err(|e| fail(step, dest, format!("bind {}: {e}", src.display())))?;
        let extra = bind_remount_flags(opts.flags);
        if !extra.is_empty() {
            // The fd still names the covered directory: reopen to reach the new mount.
            let rel = resolve(root, dest).map_err(|e| fail(step, dest, e))?;
            let mounted = open_in_root(root_fd, &rel, libc::O_PATH).map_err(|e| fail(step, dest, e))?;
            mount(
                None::<&str>,
                &proc_fd_path(&mounted),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rec | extra,
                None::<&str>,
            )
            .map_err(|e| fail(step, dest, format!("remount bind with {extra:?}: {e}")))?;
        }
    } else if typ == "cgroup" || typ == "cgroup2" {
        ensure_in_root(root, root_fd, dest, Kind::Dir).map_err(|e| fail(step, dest, e))?;
        let rel = resolve(root, dest).map_err(|e| fail(step, dest, e))?;
        super::cgroup_mount::mount_cgroups(dest, root_fd, &rel, &opts, cgroup)?;
    } else {
        let target = ensure_in_root(root, root_fd, dest, Kind::Dir).map_err(|e| fail(step, dest, e))?;
        let source = m.source().as_ref().map(|s| s.as_os_str()).unwrap_or(typ.as_ref());
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        let mut flags = opts.flags;
        mount(Some(source), &proc_fd_path(&target), Some(typ), flags, data)
            .or_else(|e| {
                // devpts/mqueue/sysfs may refuse flags the host's instance
                // forbids; runc retries without data-less surprises the same way.
                if e == nix::errno::Errno::EINVAL && flags.contains(MsFlags::MS_RDONLY) && typ == "sysfs" {
                    flags.remove(MsFlags::MS_RDONLY);
                    mount(Some(source), &proc_fd_path(&target), Some(typ), flags, data)
                } else {
                    Err(e)
                }
            })
            .map_err(|e| fail(step, dest, format!("{typ}: {e}")))?;
    }
    if !opts.propagation.is_empty() {
        let rel = resolve(root, dest).map_err(|e| fail(step, dest, e))?;
        let mounted = open_in_root(root_fd, &rel, libc::O_PATH).map_err(|e| fail(step, dest, e))?;
        for p in &opts.propagation {
            mount(None::<&str>, &proc_fd_path(&mounted), None::<&str>, *p, None::<&str>).map_err(|e| fail("mount propagation", dest, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let o = parse_options(&s(&["nosuid", "noexec", "mode=755", "size=65536k", "ro", "rw"]));
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(o.data, "mode=755,size=65536k");
        let o = parse_options(&s(&["rbind", "ro", "rslave"]));
        assert!(o.bind && o.flags.contains(MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(propagation_flag("private"), Some(MsFlags::MS_PRIVATE));
        assert_eq!(propagation_flag("rw"), None);
    }
}
