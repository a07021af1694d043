//! Reading and checking a bundle's config.json, and the default spec that
//! `berth-runtime spec` writes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::{json, Value};

use super::error::{Result, RuntimeError};
use crate::security::apparmor;

/// A bundle's configuration, checked, with its rootfs made absolute.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
    /// config.json as read, to keep in the state directory.
    pub raw: Vec<u8>,
}

fn bad(path: &Path, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::Spec {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Loads and validates `<bundle>/config.json`.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(dir).map_err(|e| RuntimeError::io("resolve bundle", dir, e))?;
    let file = dir.join("config.json");
    let text = std::fs::read(&file).map_err(|e| RuntimeError::io("read", &file, e))?;
    let spec: Spec = serde_json::from_slice(&text).map_err(|e| bad(&file, format!("malformed config.json: {e}")))?;
    let rootfs = validate(&spec, &dir, &file)?;
    Ok(Bundle {
        dir,
        spec,
        rootfs,
        raw: text,
    })
}

/// Name of the copy of config.json kept in a container's state directory.
pub const SAVED_CONFIG: &str = "config.json";

/// The configuration a container was created with, from its state
/// directory: later commands (exec, start, delete) must not see edits to
/// the bundle.
pub fn load_saved(state_dir: &Path) -> Result<Spec> {
    let file = state_dir.join(SAVED_CONFIG);
    let text = std::fs::read(&file).map_err(|e| RuntimeError::io("read", &file, e))?;
    serde_json::from_slice(&text).map_err(|e| bad(&file, format!("corrupt saved config: {e}")))
}

/// Checks what the runtime needs before it creates anything; returns the
/// absolute rootfs path.
pub fn validate(spec: &Spec, dir: &Path, file: &Path) -> Result<PathBuf> {
    let root = spec.root().as_ref().ok_or_else(|| bad(file, "root is missing"))?;
    let rootfs = dir.join(root.path());
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(bad(file, format!("root.path {} is not a directory", rootfs.display()))),
        Err(e) => return Err(bad(file, format!("root.path {}: {e}", rootfs.display()))),
    }
    let process = spec.process().as_ref().ok_or_else(|| bad(file, "process is missing"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(bad(file, "process.args is empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(bad(file, format!("process.cwd {:?} is not absolute", process.cwd())));
    }
    if let Some(profile) = process.apparmor_profile().as_deref().filter(|p| !p.is_empty()) {
        if !apparmor::enabled() {
            return Err(bad(
                file,
                format!(
                    "process.apparmorProfile {profile:?} is set but this kernel has no AppArmor enabled ({})",
                    apparmor::ENABLED_FILE
                ),
            ));
        }
    }
    let linux = spec.linux().as_ref().ok_or_else(|| bad(file, "linux is missing"))?;
    let mut seen = HashSet::new();
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    for ns in namespaces {
        if !seen.insert(ns.typ()) {
            return Err(bad(file, format!("namespace {} is listed twice", ns.typ())));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(bad(file, format!("namespace {} path {} is not absolute", ns.typ(), p.display())));
            }
        }
    }
    if !namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Mount && n.path().is_none())
    {
        return Err(bad(
            file,
            "the container needs a new mount namespace: add {\"type\": \"mount\"} to linux.namespaces",
        ));
    }
    let new_uts = namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::Uts);
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !new_uts {
        return Err(bad(file, "hostname is set but the container has no UTS namespace"));
    }
    let has_user_ns = namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::User);
    if has_user_ns
        && linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
        && namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none())
    {
        return Err(bad(file, "a new user namespace needs linux.uidMappings and linux.gidMappings"));
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if !m.destination().is_absolute() {
            return Err(bad(
                file,
                format!("mount destination {} is not absolute", m.destination().display()),
            ));
        }
    }
    Ok(rootfs)
}

/// The default config.json, as `runc spec` writes it: a read-only rootfs,
/// `sh` as the process, the standard mounts, new namespaces, masked and
/// read-only /proc paths.
pub fn default_spec() -> Value {
    json!({
        "ociVersion": super::state::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("config.json"), default_spec().to_string()).unwrap();
        let b = load_bundle(dir.path()).unwrap();
        assert_eq!(b.rootfs, dir.path().join("rootfs"));
    }

    #[test]
    fn bad_configs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), default_spec().to_string()).unwrap();
        let e = load_bundle(dir.path()).err().unwrap().to_string();
        assert!(e.contains("root.path") && e.contains("rootfs"), "{e}");

        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let e = load_bundle(dir.path()).err().unwrap().to_string();
        assert!(e.contains("malformed config.json"), "{e}");

        let mut v = default_spec();
        v["linux"]["namespaces"] = json!([{"type": "bogus"}]);
        std::fs::write(dir.path().join("config.json"), v.to_string()).unwrap();
        let e = load_bundle(dir.path()).err().unwrap().to_string();
        assert!(e.contains("bogus"), "{e}");
    }
}
