//! Finding the cgroup filesystems in `/proc/self/mountinfo`: every v1
//! hierarchy (by the controllers in its super options, so co-mounted
//! `cpu,cpuacct` and named hierarchies such as `name=systemd` are found
//! whatever their mount point is called) and the unified cgroup2 mount.

use std::collections::HashMap;
use std::path::PathBuf;

use super::CgroupError;

pub(crate) const MOUNTINFO: &str = "/proc/self/mountinfo";

/// A mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    pub(crate) mount_point: PathBuf,
    /// Its super options except `rw`/`ro`: the controllers (`cpu`,
    /// `cpuacct`, `name=systemd`) and flags such as `noprefix`, which no
    /// lookup asks for.
    pub(crate) controllers: Vec<String>,
}

impl Hierarchy {
    pub(crate) fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The cgroup filesystems mounted in our mount namespace.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CgroupMounts {
    /// One entry per v1 hierarchy, even when it is mounted several times.
    pub(crate) v1: Vec<Hierarchy>,
    /// The cgroup2 mount (on hybrid hosts, the empty one beside v1).
    pub(crate) unified: Option<PathBuf>,
}

/// Reads our mount table.
pub(crate) fn read() -> Result<CgroupMounts, CgroupError> {
    let text = std::fs::read_to_string(MOUNTINFO).map_err(|source| CgroupError::Io {
        op: "read",
        path: PathBuf::from(MOUNTINFO),
        source,
    })?;
    Ok(parse(&text))
}

/// One line of mountinfo, the fields we use.
struct Mount<'a> {
    device: &'a str,
    root: String,
    mount_point: PathBuf,
    fs_type: &'a str,
    super_options: &'a str,
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`:
/// six fields, optional fields up to `-`, then type, source, super options.
fn parse_line(line: &str) -> Option<Mount<'_>> {
    let mut fields = line.split(' ');
    let device = fields.nth(2)?;
    let root = unescape(fields.next()?);
    let mount_point = PathBuf::from(unescape(fields.next()?));
    let mut after_separator = fields.skip(1).skip_while(|f| *f != "-").skip(1);
    let fs_type = after_separator.next()?;
    let super_options = after_separator.nth(1)?;
    Some(Mount {
        device,
        root,
        mount_point,
        fs_type,
        super_options,
    })
}

/// Parses mountinfo text. A hierarchy mounted twice is listed once, at a
/// mount of its root when there is one.
pub(crate) fn parse(text: &str) -> CgroupMounts {
    let mut mounts = CgroupMounts::default();
    let mut unified_at_root = false;
    let mut v1_by_device: HashMap<&str, (usize, bool)> = HashMap::new();
    for mount in text.lines().filter_map(parse_line) {
        let at_root = mount.root == "/";
        match mount.fs_type {
            "cgroup2" if mounts.unified.is_none() || (at_root && !unified_at_root) => {
                mounts.unified = Some(mount.mount_point);
                unified_at_root = at_root;
            }
            "cgroup" => {
                let hierarchy = Hierarchy {
                    mount_point: mount.mount_point,
                    controllers: mount
                        .super_options
                        .split(',')
                        .filter(|o| *o != "rw" && *o != "ro")
                        .map(str::to_string)
                        .collect(),
                };
                match v1_by_device.get(mount.device) {
                    None => {
                        v1_by_device.insert(mount.device, (mounts.v1.len(), at_root));
                        mounts.v1.push(hierarchy);
                    }
                    Some(&(index, false)) if at_root => {
                        mounts.v1[index] = hierarchy;
                        v1_by_device.insert(mount.device, (index, true));
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }
    mounts
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for `\`).
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_string();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
                out.push(value as u8);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The v1 hierarchy that has `controller`, if one is mounted.
#[cfg(test)]
pub(crate) fn find<'a>(hierarchies: &'a [Hierarchy], controller: &str) -> Option<&'a Hierarchy> {
    hierarchies.iter().find(|h| h.has(controller))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const HYBRID: &str = "\
24 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/net_cls,net_prio rw,relatime - cgroup cgroup rw,net_cls,net_prio
90 80 0:32 /docker/abc /mnt/mem\\040x rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn finds_hierarchies_by_their_controllers() {
        let mounts = parse(HYBRID);
        assert_eq!(mounts.unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(mounts.v1.len(), 4, "{:?}", mounts.v1);
        let cpu = find(&mounts.v1, "cpu").unwrap();
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert!(cpu.has("cpuacct"));
        let systemd = find(&mounts.v1, "name=systemd").unwrap();
        assert_eq!(systemd.mount_point, Path::new("/sys/fs/cgroup/systemd"));
        assert!(find(&mounts.v1, "net_prio").is_some());
        assert!(find(&mounts.v1, "pids").is_none());
        assert!(find(&mounts.v1, "rw").is_none());
    }

    #[test]
    fn a_hierarchy_mounted_twice_is_listed_once_preferring_its_root() {
        let sub_first = "\
90 80 0:32 /docker/abc /mnt/mem\\040x rw,relatime - cgroup cgroup rw,memory
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";
        let mounts = parse(sub_first);
        assert_eq!(mounts.v1.len(), 1);
        assert_eq!(mounts.v1[0].mount_point, Path::new("/sys/fs/cgroup/memory"));

        let only_sub = "90 80 0:32 /docker/abc /mnt/mem\\040x rw,relatime - cgroup cgroup rw,memory\n";
        assert_eq!(parse(only_sub).v1[0].mount_point, Path::new("/mnt/mem x"));
    }

    #[test]
    fn pure_v2_and_optional_fields() {
        let v2 = "\
29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
        let mounts = parse(v2);
        assert!(mounts.v1.is_empty());
        assert_eq!(mounts.unified, Some(PathBuf::from("/sys/fs/cgroup")));
        assert_eq!(parse("garbage\n\n1 2 3\n"), CgroupMounts::default());
    }

    #[test]
    fn unescapes_octal_only() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/a\\9x\\"), "/a\\9x\\");
    }

    #[test]
    fn reads_this_host() {
        read().unwrap();
    }
}
