//! Containers as berthd keeps them: one [`Record`] per container in
//! `<data root>/containers/<id>/config.v2.json`, written atomically on
//! every change, beside the container's log, its exit record and the
//! files bind-mounted into it (hostname, hosts, resolv.conf).
//!
//! This module owns the records, names and states ([`Containers`]) and
//! the OCI configuration built from a record ([`spec`]). Running one is
//! the daemon's work (`daemon/containers.rs`), through the monitor.

pub mod archive;
pub mod names;
pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A container's state, as Docker's `State` object.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    /// created, running, paused, restarting, removing, exited or dead.
    pub status: String,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
}

impl State {
    pub fn running(&self) -> bool {
        matches!(self.status.as_str(), "running" | "paused")
    }
}

/// A volume or bind mounted into the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// bind, volume or tmpfs.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The volume's name (volumes only).
    #[serde(default)]
    pub name: String,
    /// The host path (binds), filled in for volumes when mounted.
    #[serde(default)]
    pub source: String,
    pub destination: String,
    #[serde(default)]
    pub driver: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    /// tmpfs options (`size=64m,mode=1777`), or bind propagation.
    #[serde(default)]
    pub options: String,
    /// An anonymous volume, removed with the container by `rm -v`.
    #[serde(default)]
    pub anonymous: bool,
}

/// The monitor of a running container, told from a reused pid by its
/// start time.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct MonitorRef {
    pub pid: i32,
    pub start_time: u64,
}

impl MonitorRef {
    pub fn of(pid: i32) -> Option<MonitorRef> {
        crate::sys::process_start_time(pid)
            .ok()
            .map(|start_time| MonitorRef { pid, start_time })
    }

    pub fn alive(&self) -> bool {
        crate::sys::process_state(self.pid).is_ok_and(|(state, start)| start == self.start_time && state != 'Z')
    }
}

/// Everything berthd knows of one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    /// The image's ID (`sha256:...`).
    pub image: String,
    /// Docker's `Config`, with the image's configuration merged in.
    pub config: Value,
    /// Docker's `HostConfig`, as given.
    pub host_config: Value,
    pub state: State,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    #[serde(default)]
    pub monitor: Option<MonitorRef>,
    /// Stopped by `stop`/`kill` (or never started): `unless-stopped`
    /// and `always` leave it so.
    #[serde(default)]
    pub manually_stopped: bool,
    #[serde(default)]
    pub has_been_started: bool,
    /// The image's top layer (the container's layer's parent).
    #[serde(default)]
    pub parent_layer: String,
    /// Its networks by name: asked for at create, joined while running.
    #[serde(default)]
    pub networks: BTreeMap<String, crate::network::Endpoint>,
    /// Its published ports while running.
    #[serde(default)]
    pub ports: Vec<crate::network::Published>,
    /// Its way out through the gateway bridge while running, when its
    /// networks (overlays) give it no default route.
    #[serde(default)]
    pub gateway_endpoint: Option<crate::network::Endpoint>,
}

impl Record {
    pub fn tty(&self) -> bool {
        self.config["Tty"].as_bool().unwrap_or(false)
    }

    /// `Path` and `Args` as Docker reports them: the first word of
    /// entrypoint + cmd and the rest.
    pub fn command(&self) -> Vec<String> {
        let words = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let mut out = words(&self.config["Entrypoint"]);
        out.extend(words(&self.config["Cmd"]));
        out
    }

    /// The short ID Docker uses for hostnames and listings.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// One container in memory: its record and who waits on it.
pub struct Entry {
    record: Mutex<Record>,
    /// Bumped on every change; waiters watch it.
    pub changed: tokio::sync::watch::Sender<u64>,
    /// Attach requests that came before start, connected by start before
    /// the container's process runs, so they see all of its output.
    pub pending_attach: Mutex<Vec<(u8, tokio::sync::oneshot::Sender<std::os::unix::net::UnixStream>)>>,
    /// Exits seen since berthd started, for `wait?condition=next-exit`.
    pub exits: std::sync::atomic::AtomicU64,
    pub removed: std::sync::atomic::AtomicBool,
    /// Serializes start, stop and remove of this container.
    pub op: tokio::sync::Mutex<()>,
}

impl Entry {
    pub fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> Record {
        self.record().clone()
    }

    /// Tells waiters something changed.
    pub fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

/// What went wrong, with the status Docker gives it.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, ContainerError>;

/// Every container of the daemon.
pub struct Containers {
    dir: PathBuf,
    by_id: Mutex<BTreeMap<String, Arc<Entry>>>,
}

impl Containers {
    /// Opens `<data root>/containers`, loading every record there.
    pub fn open(data_root: &Path) -> std::io::Result<Containers> {
        let dir = data_root.join("containers");
        std::fs::create_dir_all(&dir)?;
        let mut by_id = BTreeMap::new();
        for e in std::fs::read_dir(&dir)?.flatten() {
            let path = e.path().join("config.v2.json");
            // A directory without a record is a create that did not finish.
            let Ok(text) = std::fs::read(&path) else {
                let _ = std::fs::remove_dir_all(e.path());
                continue;
            };
            match serde_json::from_slice::<Record>(&text) {
                Ok(r) => {
                    by_id.insert(r.id.clone(), Arc::new(entry(r)));
                }
                Err(err) => eprintln!("berthd: skipping {}: {err}", path.display()),
            }
        }
        Ok(Containers {
            dir,
            by_id: Mutex::new(by_id),
        })
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory of a container's files.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.map().values().cloned().collect()
    }

    /// A container by full ID, name (with or without `/`) or unique ID
    /// prefix, as Docker resolves them.
    pub fn find(&self, key: &str) -> Result<Arc<Entry>> {
        let map = self.map();
        if let Some(e) = map.get(key) {
            return Ok(e.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(e) = map.values().find(|e| e.record().name == name) {
            return Ok(e.clone());
        }
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<_> = map.range(key.to_string()..).take_while(|(id, _)| id.starts_with(key)).collect();
            match hits.len() {
                1 => return Ok(hits[0].1.clone()),
                0 => {}
                _ => return Err(ContainerError::Invalid(format!("multiple IDs found with provided prefix: {key}"))),
            }
        }
        Err(ContainerError::NotFound(key.to_string()))
    }

    /// The container holding `name`, if any.
    pub fn by_name(&self, name: &str) -> Option<Arc<Entry>> {
        self.map().values().find(|e| e.record().name == name).cloned()
    }

    /// Adds a new container; its name must be free.
    pub fn add(&self, r: Record) -> Result<Arc<Entry>> {
        let mut map = self.map();
        if let Some(other) = map.values().find(|e| e.record().name == r.name) {
            return Err(name_conflict(&r.name, &other.record().id));
        }
        std::fs::create_dir_all(self.dir(&r.id))
            .map_err(|e| ContainerError::Internal(format!("create {}: {e}", self.dir(&r.id).display())))?;
        self.write(&r)?;
        let e = Arc::new(entry(r));
        map.insert(e.record().id.clone(), e.clone());
        Ok(e)
    }

    /// Renames a container; the new name must be free.
    pub fn rename(&self, e: &Entry, name: &str) -> Result<()> {
        let map = self.map();
        if let Some(other) = map.values().find(|o| o.record().name == name) {
            return Err(name_conflict(name, &other.record().id));
        }
        drop(map);
        self.update(e, |r| r.name = name.to_string())
    }

    /// Changes a record and writes it.
    pub fn update(&self, e: &Entry, change: impl FnOnce(&mut Record)) -> Result<()> {
        let mut r = e.record();
        change(&mut r);
        let result = self.write(&r);
        drop(r);
        e.notify();
        result
    }

    fn write(&self, r: &Record) -> Result<()> {
        let path = self.dir(&r.id).join("config.v2.json");
        let text = serde_json::to_vec_pretty(r).map_err(|e| ContainerError::Internal(e.to_string()))?;
        berth_fs::atomic::write(&path, &text).map_err(|e| ContainerError::Internal(format!("write {}: {e}", path.display())))
    }

    /// Forgets a container and removes its files.
    pub fn remove(&self, id: &str) -> Result<()> {
        let e = self.map().remove(id);
        // The record goes first, so a crash leaves no half container, and
        // once it is gone so is the container, whatever is left of its files.
        let dir = self.dir(id);
        let _ = std::fs::remove_file(dir.join("config.v2.json"));
        let result = std::fs::remove_dir_all(&dir).map_err(|err| ContainerError::Internal(format!("remove {}: {err}", dir.display())));
        if let Some(e) = e {
            // Attach requests waiting for a start that will not come end.
            e.pending_attach.lock().unwrap_or_else(|p| p.into_inner()).clear();
            e.removed.store(true, std::sync::atomic::Ordering::SeqCst);
            e.notify();
        }
        result
    }
}

fn entry(r: Record) -> Entry {
    Entry {
        record: Mutex::new(r),
        changed: tokio::sync::watch::channel(0).0,
        pending_attach: Mutex::new(Vec::new()),
        exits: Default::default(),
        removed: Default::default(),
        op: tokio::sync::Mutex::new(()),
    }
}

fn name_conflict(name: &str, id: &str) -> ContainerError {
    ContainerError::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

/// A new container ID: 32 random bytes in hex, as Docker's.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    hex::encode(bytes)
}

/// Checks a name as Docker does: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> Result<&str> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(n)
    } else {
        Err(ContainerError::Invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str) -> Record {
        Record {
            id: id.to_string(),
            name: name.to_string(),
            created: String::new(),
            image: String::new(),
            config: Value::Null,
            host_config: Value::Null,
            state: State::default(),
            restart_count: 0,
            mounts: vec![],
            monitor: None,
            manually_stopped: false,
            has_been_started: false,
            parent_layer: String::new(),
            networks: Default::default(),
            ports: vec![],
            gateway_endpoint: None,
        }
    }

    #[test]
    fn containers_are_found_by_id_name_and_prefix_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let c = Containers::open(dir.path()).unwrap();
        c.add(record(&format!("abc{}", "0".repeat(61)), "web")).unwrap();
        c.add(record(&format!("abd{}", "0".repeat(61)), "db")).unwrap();
        assert!(matches!(c.add(record(&"f".repeat(64), "web")), Err(ContainerError::Conflict(m)) if m.contains("/web")));
        assert_eq!(c.find("/web").unwrap().record().name, "web");
        assert_eq!(c.find("abc").unwrap().record().name, "web");
        assert!(matches!(c.find("ab"), Err(ContainerError::Invalid(_))));
        assert!(matches!(c.find("nope"), Err(ContainerError::NotFound(_))));
        let web = c.find("web").unwrap();
        c.rename(&web, "front").unwrap();
        assert!(c.rename(&web, "db").is_err());
        drop(c);
        let c = Containers::open(dir.path()).unwrap();
        assert_eq!(c.find("front").unwrap().record().id, format!("abc{}", "0".repeat(61)));
        c.remove(&format!("abc{}", "0".repeat(61))).unwrap();
        assert!(c.find("front").is_err());
        assert_eq!(c.all().len(), 1);
    }

    #[test]
    fn names_and_ids() {
        assert_eq!(valid_name("/my-app.1").unwrap(), "my-app.1");
        for bad in ["", "a", "-x", "a b", "a/b"] {
            assert!(valid_name(bad).is_err(), "{bad}");
        }
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert_ne!(id, new_id());
    }
}
