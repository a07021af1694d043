//! Container state under the runtime root: one directory per container
//! holding `state.json` (written atomically) and the start socket.
//!
//! The state survives the runtime process: every command re-reads it and
//! derives the live status from the init process and the cgroup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{Result, RuntimeError};
use crate::sys;

/// The OCI runtime-spec version the runtime reports.
pub const OCI_VERSION: &str = "1.0.2";
/// Default `--root`, as runc's /run/runc.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";
/// The socket the container's init listens on until `start`.
pub const START_SOCKET: &str = "start.sock";
const STATE_FILE: &str = "state.json";

/// What the runtime persists about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (clock ticks since boot), to detect pid reuse.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup path as the cgroup module resolved it.
    pub cgroup_path: PathBuf,
    /// Whether the container has its own user namespace (exec must join it).
    #[serde(default)]
    pub user_namespace: bool,
    /// What /proc/PID/exe of the init named while it waited for start; a
    /// different target means it has exec'd the container's process.
    #[serde(default)]
    pub init_exe: Option<PathBuf>,
}

/// The live status of a container, as runc reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a container id as runc does: no path separators, no dot names.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_string()))
    }
}

/// The runtime root directory (`--root`).
#[derive(Debug, Clone)]
pub struct Root {
    path: PathBuf,
}

impl Root {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Root { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Creates the directory of a new container; fails if it exists.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        std::fs::create_dir_all(&self.path).map_err(|e| RuntimeError::io("create runtime root", &self.path, e))?;
        let dir = self.container_dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(RuntimeError::Exists(id.to_string())),
            Err(e) => Err(RuntimeError::io("create state directory", dir, e)),
        }
    }

    /// Loads a container's state.
    pub fn load(&self, id: &str) -> Result<ContainerState> {
        validate_id(id)?;
        let file = self.container_dir(id).join(STATE_FILE);
        let text = match std::fs::read(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RuntimeError::NotFound(id.to_string())),
            Err(e) => return Err(RuntimeError::io("read state", file, e)),
        };
        serde_json::from_slice(&text).map_err(|e| RuntimeError::Spec {
            path: file,
            reason: format!("corrupt state file: {e}"),
        })
    }

    /// Writes a container's state atomically (write, fsync, rename).
    pub fn save(&self, state: &ContainerState) -> Result<()> {
        let dir = self.container_dir(&state.id);
        let data = serde_json::to_vec(state).map_err(|e| RuntimeError::Other(format!("encode state: {e}")))?;
        write_atomic(&dir.join(STATE_FILE), &data)
    }

    /// Every container id under the root.
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RuntimeError::io("read runtime root", &self.path, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Removes a container's directory.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError::io("remove state directory", dir, e)),
        }
    }
}

/// Writes `data` to `path` atomically (see [`berth_fs::atomic::write`]).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    berth_fs::atomic::write(path, data).map_err(|e| RuntimeError::io("write", path, e))
}

impl ContainerState {
    /// Whether the init process still exists (and is not a zombie).
    pub fn init_alive(&self) -> bool {
        match sys::process_state(self.pid) {
            Ok((state, start)) => start == self.pid_start_time && state != 'Z' && state != 'X',
            Err(_) => false,
        }
    }

    /// The live status: stopped once the init is gone; paused while its
    /// cgroup is frozen; created while it still waits on the start socket.
    pub fn status(&self, dir: &Path) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if matches!(
            crate::runtime::cgroups::Cgroup::open(&self.cgroup_path).and_then(|c| c.is_frozen()),
            Ok(true)
        ) {
            return Status::Paused;
        }
        // The start socket outlives a `start` that died after connecting: the
        // init's exe tells whether it has exec'd since.
        let waiting = self
            .init_exe
            .as_ref()
            .is_none_or(|exe| std::fs::read_link(format!("/proc/{}/exe", self.pid)).ok().as_ref() == Some(exe));
        if dir.join(START_SOCKET).exists() && waiting {
            return Status::Created;
        }
        Status::Running
    }

    /// The state JSON runc prints and hooks receive on stdin.
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": if status == Status::Stopped { 0 } else { self.pid },
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        v
    }
}

pub use crate::time::now_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_looks_right() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
        assert_eq!(&t[10..11], "T");
    }

    #[test]
    fn state_round_trip_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        assert!(matches!(root.load("x"), Err(RuntimeError::NotFound(_))));
        root.create_dir("x").unwrap();
        assert!(matches!(root.create_dir("x"), Err(RuntimeError::Exists(_))));
        let st = ContainerState {
            id: "x".into(),
            pid: 1,
            pid_start_time: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            annotations: HashMap::new(),
            cgroup_path: "/x".into(),
            user_namespace: false,
            init_exe: None,
        };
        root.save(&st).unwrap();
        assert_eq!(root.load("x").unwrap().bundle, PathBuf::from("/b"));
        assert_eq!(root.ids().unwrap(), vec!["x".to_string()]);
        root.remove("x").unwrap();
        assert!(root.ids().unwrap().is_empty());
    }
}
