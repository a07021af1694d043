//! Device access rules: the default set every container gets, the order in
//! which they combine with the spec's rules, their checked form, and how
//! they are enforced — by the v1 devices controller, or on v2 by an eBPF
//! program that [`program`] assembles and [`bpf`] loads and attaches.
//!
//! # Meaning of an ordered rule list
//!
//! Each access (read, write, mknod) is decided on its own by the last rule
//! that matches the device and names that access; no matching rule means
//! deny. A request for several accesses passes only if each one is allowed.
//! A rule of type `a` matches every device whatever its major and minor,
//! as the v1 kernel reads it.

pub(crate) mod bpf;
pub(crate) mod program;

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::{cgroupfs, CgroupError};

/// Access bits, as `struct bpf_cgroup_dev_ctx` carries them
/// (`BPF_DEVCG_ACC_*` in linux/bpf.h).
pub(crate) const ACCESS_MKNOD: u32 = 1;
pub(crate) const ACCESS_READ: u32 = 2;
pub(crate) const ACCESS_WRITE: u32 = 4;
pub(crate) const ACCESS_ALL: u32 = ACCESS_MKNOD | ACCESS_READ | ACCESS_WRITE;

/// Which devices a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceKind {
    All,
    Block,
    Char,
}

/// One checked device rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    pub(crate) allow: bool,
    pub(crate) kind: DeviceKind,
    /// `None` is the wildcard `*`.
    pub(crate) major: Option<u32>,
    pub(crate) minor: Option<u32>,
    /// `ACCESS_*` bits.
    pub(crate) access: u32,
}

const fn allow(kind: DeviceKind, major: Option<u32>, minor: Option<u32>, access: u32) -> DeviceRule {
    DeviceRule {
        allow: true,
        kind,
        major,
        minor,
        access,
    }
}

/// Denies every access to every device; the first rule of every list.
const DENY_ALL: DeviceRule = DeviceRule {
    allow: false,
    kind: DeviceKind::All,
    major: None,
    minor: None,
    access: ACCESS_ALL,
};

/// The devices every container may use: OCI runtime-spec config-linux.md
/// "Default Devices" (null, zero, full, random, urandom, tty, console,
/// ptmx) plus the pseudo-terminals under /dev/pts, and mknod of any device
/// node (creating a node grants no access to the device behind it).
const DEFAULT_ALLOWED: [DeviceRule; 11] = [
    allow(DeviceKind::Char, Some(1), Some(3), ACCESS_ALL), // /dev/null
    allow(DeviceKind::Char, Some(1), Some(5), ACCESS_ALL), // /dev/zero
    allow(DeviceKind::Char, Some(1), Some(7), ACCESS_ALL), // /dev/full
    allow(DeviceKind::Char, Some(1), Some(8), ACCESS_ALL), // /dev/random
    allow(DeviceKind::Char, Some(1), Some(9), ACCESS_ALL), // /dev/urandom
    allow(DeviceKind::Char, Some(5), Some(0), ACCESS_ALL), // /dev/tty
    allow(DeviceKind::Char, Some(5), Some(1), ACCESS_ALL), // /dev/console
    allow(DeviceKind::Char, Some(5), Some(2), ACCESS_ALL), // /dev/ptmx
    allow(DeviceKind::Char, Some(136), None, ACCESS_ALL),  // /dev/pts/*
    allow(DeviceKind::Char, None, None, ACCESS_MKNOD),     // mknod c *:*
    allow(DeviceKind::Block, None, None, ACCESS_MKNOD),    // mknod b *:*
];

/// The default device rules: deny everything, then allow the default
/// devices.
///
/// [`super::Cgroup::create`] applies deny-all, then the spec's rules, then
/// the allows of this list. The allows come last, as runc appends its own,
/// because specs written for runc (containerd's, Docker's) start with their
/// own deny-all and rely on the runtime to allow /dev/null and friends
/// afterwards; put first, they would be wiped by that deny-all. The price,
/// the same as with runc, is that a spec cannot deny a default device.
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    std::iter::once(DENY_ALL).chain(DEFAULT_ALLOWED).map(|r| r.to_oci()).collect()
}

/// The rules a container's cgroup enforces: deny-all, the spec's rules in
/// order, the default allows (see [`default_device_rules`]).
pub(crate) fn effective_rules(spec: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    let mut rules = vec![DENY_ALL];
    for rule in spec {
        rules.push(DeviceRule::from_oci(rule)?);
    }
    rules.extend(DEFAULT_ALLOWED);
    Ok(rules)
}

fn invalid(rule: &LinuxDeviceCgroup, reason: &str) -> CgroupError {
    CgroupError::InvalidResource {
        resource: "devices",
        reason: format!("rule {:?}: {reason}", rule.to_string()),
    }
}

/// An OCI major or minor: absent or -1 is the wildcard.
fn device_number(rule: &LinuxDeviceCgroup, n: Option<i64>) -> Result<Option<u32>, CgroupError> {
    match n {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| invalid(rule, "major and minor must be device numbers or -1")),
    }
}

impl DeviceRule {
    /// Checks an OCI rule. No type means `a`; no access (or an empty one)
    /// means `rwm`.
    pub(crate) fn from_oci(rule: &LinuxDeviceCgroup) -> Result<Self, CgroupError> {
        let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DeviceKind::All,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::P => return Err(invalid(rule, "FIFOs are not subject to the device cgroup")),
        };
        let mut access = 0;
        for c in rule.access().as_deref().unwrap_or("").chars() {
            access |= match c {
                'r' => ACCESS_READ,
                'w' => ACCESS_WRITE,
                'm' => ACCESS_MKNOD,
                _ => return Err(invalid(rule, "access is a combination of r, w and m")),
            };
        }
        Ok(DeviceRule {
            allow: rule.allow(),
            kind,
            major: device_number(rule, rule.major())?,
            minor: device_number(rule, rule.minor())?,
            access: if access == 0 { ACCESS_ALL } else { access },
        })
    }

    fn to_oci(self) -> LinuxDeviceCgroup {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(self.allow)
            .set_typ(Some(match self.kind {
                DeviceKind::All => LinuxDeviceType::A,
                DeviceKind::Block => LinuxDeviceType::B,
                DeviceKind::Char => LinuxDeviceType::C,
            }))
            .set_major(self.major.map(i64::from))
            .set_minor(self.minor.map(i64::from))
            .set_access(Some(access_string(self.access)));
        rule
    }

    /// The line the v1 `devices.allow`/`devices.deny` files take,
    /// `c 1:3 rwm`.
    pub(crate) fn v1_line(&self) -> String {
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let kind = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Block => 'b',
            DeviceKind::Char => 'c',
        };
        format!(
            "{kind} {}:{} {}",
            number(self.major),
            number(self.minor),
            access_string(self.access)
        )
    }
}

fn access_string(access: u32) -> String {
    [(ACCESS_READ, 'r'), (ACCESS_WRITE, 'w'), (ACCESS_MKNOD, 'm')]
        .iter()
        .filter(|(bit, _)| access & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// Writes `rules` in order to the v1 devices cgroup `dir`.
pub(crate) fn apply_v1(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    for rule in rules {
        let file = if rule.allow { "devices.allow" } else { "devices.deny" };
        cgroupfs::write(&dir.join(file), &rule.v1_line())?;
    }
    Ok(())
}

/// Enforces `rules` on the v2 cgroup `dir` with a device program.
pub(crate) fn apply_v2(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let program = program::assemble(rules);
    let loaded = bpf::load(&program).map_err(|(source, log)| CgroupError::Bpf {
        op: "load device program",
        path: dir.to_path_buf(),
        source,
        log,
    })?;
    bpf::attach(&loaded, dir).map_err(|source| CgroupError::Bpf {
        op: "attach device program",
        path: dir.to_path_buf(),
        source,
        log: String::new(),
    })
}

/// The reference meaning of a rule list (see the module docs), for tests of
/// the program and of the kernel's enforcement.
#[cfg(test)]
pub(crate) fn permits(rules: &[DeviceRule], kind: DeviceKind, major: u32, minor: u32, access: u32) -> bool {
    let matches = |r: &DeviceRule| {
        r.kind == DeviceKind::All
            || (r.kind == kind && (r.major.is_none() || r.major == Some(major)) && (r.minor.is_none() || r.minor == Some(minor)))
    };
    [ACCESS_MKNOD, ACCESS_READ, ACCESS_WRITE]
        .into_iter()
        .filter(|bit| access & bit != 0)
        .all(|bit| {
            rules
                .iter()
                .rev()
                .find(|r| matches(r) && r.access & bit != 0)
                .is_some_and(|r| r.allow)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::cgroups::mountinfo;
    use crate::runtime::cgroups::testing::{require_root, unique_name, Child, Cleanup};

    fn oci(allow: bool, typ: Option<LinuxDeviceType>, major: Option<i64>, minor: Option<i64>, access: &str) -> LinuxDeviceCgroup {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(allow)
            .set_typ(typ)
            .set_major(major)
            .set_minor(minor)
            .set_access(Some(access.to_string()));
        rule
    }

    #[test]
    fn default_rules_deny_then_allow_the_standard_devices() {
        let rules = default_device_rules();
        let lines: Vec<String> = rules.iter().map(|r| DeviceRule::from_oci(r).unwrap().v1_line()).collect();
        assert_eq!(
            lines,
            [
                "a *:* rwm",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm",
                "c 136:* rwm",
                "c *:* m",
                "b *:* m"
            ]
        );
        assert!(!rules[0].allow() && rules[1..].iter().all(|r| r.allow()));
    }

    #[test]
    fn oci_rules_are_checked_and_rendered() {
        let r = |rule: LinuxDeviceCgroup| DeviceRule::from_oci(&rule).map(|r| r.v1_line());
        assert_eq!(r(oci(true, Some(LinuxDeviceType::C), Some(1), Some(3), "rw")).unwrap(), "c 1:3 rw");
        assert_eq!(r(oci(true, Some(LinuxDeviceType::U), Some(4), None, "mr")).unwrap(), "c 4:* rm");
        assert_eq!(r(oci(false, None, None, None, "")).unwrap(), "a *:* rwm");
        assert_eq!(r(oci(true, Some(LinuxDeviceType::B), Some(8), Some(-1), "m")).unwrap(), "b 8:* m");
        assert!(r(oci(true, Some(LinuxDeviceType::P), None, None, "r")).is_err());
        assert!(r(oci(true, Some(LinuxDeviceType::C), Some(-2), None, "r")).is_err());
        assert!(r(oci(true, Some(LinuxDeviceType::C), Some(1 << 33), None, "r")).is_err());
        assert!(r(oci(true, Some(LinuxDeviceType::C), Some(1), Some(3), "rx")).is_err());
    }

    #[test]
    fn defaults_survive_a_spec_that_starts_with_deny_all() {
        let spec = [
            oci(false, None, None, None, "rwm"),
            oci(true, Some(LinuxDeviceType::C), Some(10), Some(200), "rwm"),
            oci(false, Some(LinuxDeviceType::C), Some(1), Some(3), "w"),
        ];
        let rules = effective_rules(&spec).unwrap();
        assert!(
            permits(&rules, DeviceKind::Char, 1, 3, ACCESS_READ | ACCESS_WRITE),
            "defaults come last"
        );
        assert!(permits(&rules, DeviceKind::Char, 10, 200, ACCESS_READ));
        assert!(permits(&rules, DeviceKind::Block, 8, 0, ACCESS_MKNOD));
        assert!(!permits(&rules, DeviceKind::Block, 8, 0, ACCESS_READ));
        assert!(!permits(&rules, DeviceKind::Char, 1, 11, ACCESS_READ));
    }

    #[test]
    fn each_access_is_decided_by_the_last_rule_naming_it() {
        let rules = [
            DENY_ALL,
            allow(DeviceKind::Char, Some(1), Some(3), ACCESS_READ),
            allow(DeviceKind::Char, Some(1), None, ACCESS_WRITE),
            DeviceRule {
                allow: false,
                ..allow(DeviceKind::Char, Some(1), Some(5), ACCESS_WRITE)
            },
        ];
        assert!(permits(&rules, DeviceKind::Char, 1, 3, ACCESS_READ | ACCESS_WRITE));
        assert!(!permits(&rules, DeviceKind::Char, 1, 3, ACCESS_MKNOD));
        assert!(!permits(&rules, DeviceKind::Char, 1, 5, ACCESS_WRITE));
        assert!(!permits(&rules, DeviceKind::Char, 1, 5, ACCESS_READ));
        assert!(permits(&rules, DeviceKind::Char, 1, 9, ACCESS_WRITE));
        assert!(!permits(&rules, DeviceKind::Block, 1, 3, ACCESS_READ));
    }

    /// Allows /dev/null, denies everything else.
    fn null_only() -> [DeviceRule; 2] {
        [DENY_ALL, allow(DeviceKind::Char, Some(1), Some(3), ACCESS_ALL)]
    }

    /// Moves a child into the cgroup directories `dirs`, lets it open
    /// /dev/null and `other`, and checks that only /dev/null opened.
    fn assert_only_null_opens(dirs: &[&Path], other: &'static std::ffi::CStr) {
        let mut child = Child::fork_probe(other);
        for dir in dirs {
            cgroupfs::write(&dir.join("cgroup.procs"), &child.pid().to_string()).unwrap();
        }
        let outcome = child.release_and_wait();
        assert_eq!(Child::probe_outcome(outcome), ("opened", "EPERM"), "/dev/null then {other:?}");
    }

    #[test]
    fn v2_program_enforces_rules_in_the_kernel() {
        if !require_root("v2_program_enforces_rules_in_the_kernel") {
            return;
        }
        let Some(unified) = mountinfo::read().unwrap().unified else {
            eprintln!("v2_program_enforces_rules_in_the_kernel: not applicable, no cgroup2 mount");
            return;
        };
        let dir = unified.join(unique_name("devices-v2"));
        let _cleanup = Cleanup::new(vec![dir.clone()]);
        std::fs::create_dir(&dir).unwrap();
        apply_v2(&dir, &null_only()).unwrap();
        assert_only_null_opens(&[&dir], c"/dev/zero");
    }

    #[test]
    fn v1_devices_controller_enforces_rules() {
        if !require_root("v1_devices_controller_enforces_rules") {
            return;
        }
        let hierarchies = mountinfo::read().unwrap().v1;
        let Some(devices) = mountinfo::find(&hierarchies, "devices") else {
            eprintln!("v1_devices_controller_enforces_rules: not applicable, no v1 devices hierarchy");
            return;
        };
        let dir = devices.mount_point.join(unique_name("devices-v1"));
        let _cleanup = Cleanup::new(vec![dir.clone()]);
        std::fs::create_dir(&dir).unwrap();
        apply_v1(&dir, &null_only()).unwrap();
        let list = std::fs::read_to_string(dir.join("devices.list")).unwrap();
        assert_eq!(list.trim(), "c 1:3 rwm");
        assert_only_null_opens(&[&dir], c"/dev/zero");
    }
}
