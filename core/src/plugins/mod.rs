//! Driver plugins, found where an administrator puts them and registered
//! next to the built-in drivers:
//! - shared objects (`*.so`) in berth's plugin directories, loaded at
//!   start ([`shared_object`]);
//! - Docker's legacy plugins: a `NAME.sock` in /run/docker/plugins, or a
//!   `NAME.spec` / `NAME.json` in /etc/docker/plugins or
//!   /usr/lib/docker/plugins naming an address, activated with
//!   `/Plugin.Activate` the first time their name is asked for, as Docker
//!   does, and spoken to over HTTP (`berth_plugin::http`).
//!
//! Directories given with `--plugin-dir` are searched for all of these.
//! What could not be loaded or activated is kept as a [`Fault`], shown by
//! `berth plugin ls`. A plugin can be disabled (its drivers taken out of
//! the registry, a shared object unloaded) and enabled again; disabled
//! plugins are remembered in `HOME/.disabled.json` across restarts.

pub mod check;
pub mod shared_object;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_plugin::http::{Address, Client};
use berth_plugin::protocol::Remote;
use berth_plugin::{Interface, Registry, Transport};
use serde_json::{json, Value};

use shared_object::SharedObject;

/// Where berth looks for shared-object plugins.
pub const BERTH_PLUGIN_DIR: &str = "/usr/lib/berth/plugins";
/// Where Docker's legacy plugins put their sockets.
pub const DOCKER_SOCKET_DIR: &str = "/run/docker/plugins";
/// Where Docker's legacy plugins are described by `.spec` / `.json` files.
pub const DOCKER_SPEC_DIRS: [&str; 2] = ["/etc/docker/plugins", "/usr/lib/docker/plugins"];
/// How long a plugin call may take: Docker's plugin client allows 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How berthd finds and calls plugins.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Searched before the standard directories (`--plugin-dir`).
    pub dirs: Vec<PathBuf>,
    /// The bound on every plugin call (`--plugin-timeout`).
    pub timeout: Duration,
    /// Under which each plugin gets a home directory, `HOME/NAME`.
    pub home: PathBuf,
}

impl Settings {
    pub fn new(data_root: &Path) -> Settings {
        Settings {
            dirs: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            home: data_root.join("plugins"),
        }
    }

    fn so_dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().cloned().chain([PathBuf::from(BERTH_PLUGIN_DIR)]).collect()
    }

    fn socket_dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().cloned().chain([PathBuf::from(DOCKER_SOCKET_DIR)]).collect()
    }

    fn spec_dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().cloned().chain(DOCKER_SPEC_DIRS.map(PathBuf::from)).collect()
    }
}

/// A plugin that is there but could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub name: String,
    /// The file it was found as.
    pub path: PathBuf,
    pub error: String,
}

/// The plugins berthd knows beyond its built-in drivers.
pub struct Plugins {
    settings: Settings,
    faults: Mutex<BTreeMap<String, Fault>>,
    /// Disabled plugins: name to what they were (`so:PATH` or `http:ADDRESS`).
    disabled: Mutex<BTreeMap<String, String>>,
}

/// Why a plugin could not be disabled or enabled.
#[derive(Debug, thiserror::Error)]
pub enum Toggle {
    #[error("no plugin {0:?}")]
    NoSuch(String),
    #[error("{0} is a built-in driver: it cannot be disabled")]
    Builtin(String),
    #[error("plugin {name} is in use by {users} (force to disable it anyway)")]
    InUse { name: String, users: String },
    #[error("{0}")]
    Failed(String),
}

/// Docker's name for a plugin file: the file name without its extension.
fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Registers `remote` under each of `interfaces`; a name already taken for
/// an interface is an error unless it is this plugin's (two lookups racing).
fn register(registry: &Registry, remote: Arc<Remote>, interfaces: &[String], transport: Transport) -> Result<(), String> {
    let name = remote.name().to_string();
    let mut known = 0;
    // What this call registered, taken out again if a later one fails.
    let mut made: Vec<Interface> = Vec::new();
    for i in interfaces {
        // Other interfaces (authz, logging) are not berth's to use.
        let Some(interface) = Interface::from_protocol_name(i) else {
            continue;
        };
        let r = match interface {
            Interface::VolumeDriver => registry.register_volume(&name, remote.clone(), transport.clone()),
            Interface::NetworkDriver => registry.register_network(&name, remote.clone(), transport.clone()),
            Interface::IpamDriver => registry.register_ipam(&name, remote.clone(), transport.clone()),
            Interface::GraphDriver => registry.register_graph(&name, remote.clone(), transport.clone()),
        };
        known += 1;
        match r {
            Ok(()) => made.push(interface),
            Err(e) => {
                let same = registry
                    .list()
                    .iter()
                    .any(|d| d.name == name && d.interface == interface && d.transport == transport);
                if !same {
                    for m in made {
                        registry.unregister_interface(m, &name);
                    }
                    return Err(e.to_string());
                }
            }
        }
    }
    if known == 0 {
        return Err(format!(
            "implements {}, none of VolumeDriver, NetworkDriver, IpamDriver, GraphDriver",
            if interfaces.is_empty() {
                "nothing".to_string()
            } else {
                interfaces.join(", ")
            }
        ));
    }
    Ok(())
}

/// What `/Plugin.Activate` answered: the interfaces implemented.
fn implements(answer: &[u8]) -> Result<Vec<String>, String> {
    let v: Value = serde_json::from_slice(answer).map_err(|e| format!("/Plugin.Activate answered malformed JSON: {e}"))?;
    if let Some(e) = v["Err"].as_str().filter(|e| !e.is_empty()) {
        return Err(format!("/Plugin.Activate failed: {e}"));
    }
    v["Implements"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i.as_str().map(str::to_string)).collect())
        .ok_or_else(|| format!("/Plugin.Activate answered no Implements list: {v}"))
}

/// Loads the shared object at `path` and activates it with `home/NAME`:
/// the plugin, and a driver reaching it.
pub fn load_shared_object(path: &Path, settings: &Settings) -> Result<(Arc<SharedObject>, Arc<Remote>), String> {
    let so = Arc::new(SharedObject::open(path, settings.timeout).map_err(|e| e.to_string())?);
    let home = settings.home.join(&so.name);
    let answer = so
        .call("/Plugin.Activate", json!({ "Home": home }).to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let mut activated = implements(&answer)?;
    let mut described = so.interfaces.clone();
    activated.sort();
    described.sort();
    if activated != described {
        return Err(format!(
            "plugin {}: its descriptor names {} but /Plugin.Activate implements {}",
            so.name,
            described.join(","),
            activated.join(",")
        ));
    }
    let called = Arc::clone(&so);
    let remote = Arc::new(Remote::new(&so.name, Box::new(move |m, r| called.call(m, r))));
    Ok((so, remote))
}

/// Activates the Docker-style plugin at `address`: a driver reaching it
/// and the interfaces it implements.
pub fn activate_http(name: &str, address: Address, timeout: Duration) -> Result<(Arc<Remote>, Vec<String>), String> {
    let client = Arc::new(Client::new(address, timeout));
    let interfaces = implements(&client.call("/Plugin.Activate", b"{}").map_err(|e| e.to_string())?)?;
    let c = Arc::clone(&client);
    Ok((Arc::new(Remote::new(name, Box::new(move |m, r| c.call(m, r)))), interfaces))
}

/// Reads a `.spec` (an address) or `.json` (`{"Name", "Addr"}`) file.
pub fn read_spec(path: &Path) -> Result<Address, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let addr = if path.extension().is_some_and(|e| e == "json") {
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
        if v["TLSConfig"].is_object() && !v["TLSConfig"]["InsecureSkipVerify"].as_bool().unwrap_or(false) {
            return Err(format!("{}: plugins over TLS are not supported", path.display()));
        }
        v["Addr"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{}: no \"Addr\"", path.display()))?
    } else {
        text
    };
    Address::parse(&addr).map_err(|e| format!("{}: {e}", path.display()))
}

impl Plugins {
    pub fn new(settings: Settings) -> Plugins {
        let disabled = std::fs::read(disabled_file(&settings))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Plugins {
            settings,
            faults: Mutex::new(BTreeMap::new()),
            disabled: Mutex::new(disabled),
        }
    }

    fn disabled(&self) -> BTreeMap<String, String> {
        self.disabled.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Writes the disabled set atomically.
    fn save_disabled(&self, disabled: &BTreeMap<String, String>) -> Result<(), String> {
        let file = disabled_file(&self.settings);
        std::fs::create_dir_all(&self.settings.home)
            .and_then(|()| berth_fs::atomic::write(&file, &serde_json::to_vec(disabled).unwrap_or_default()))
            .map_err(|e| format!("record the disabled plugins in {}: {e}", file.display()))
    }

    /// Takes plugin `name` out: its drivers leave the registry, and a
    /// shared object is unloaded once its calls end. `users` are what
    /// still uses it; they stop the disabling unless `force`.
    pub fn disable(&self, registry: &Registry, name: &str, users: &[String], force: bool) -> Result<(), Toggle> {
        let transport = registry
            .list()
            .into_iter()
            .find(|d| d.name == name)
            .map(|d| d.transport)
            .ok_or_else(|| Toggle::NoSuch(name.to_string()))?;
        if transport == Transport::Builtin {
            return Err(Toggle::Builtin(name.to_string()));
        }
        if !users.is_empty() && !force {
            return Err(Toggle::InUse {
                name: name.to_string(),
                users: users.join(", "),
            });
        }
        // Held through the save: toggles one at a time, none lost.
        let mut held = self.disabled.lock().unwrap_or_else(|p| p.into_inner());
        let mut disabled = held.clone();
        disabled.insert(name.to_string(), transport.to_string());
        self.save_disabled(&disabled).map_err(Toggle::Failed)?;
        *held = disabled;
        registry.unregister(name);
        Ok(())
    }

    /// Brings a disabled plugin back: a shared object is loaded again, a
    /// Docker-style plugin is found again when next asked for.
    pub fn enable(&self, registry: &Registry, name: &str) -> Result<(), Toggle> {
        let mut held = self.disabled.lock().unwrap_or_else(|p| p.into_inner());
        let mut disabled = held.clone();
        let was = disabled
            .remove(name)
            .ok_or_else(|| Toggle::NoSuch(format!("{name} (not disabled)")))?;
        self.save_disabled(&disabled).map_err(Toggle::Failed)?;
        if let Some(path) = was.strip_prefix("so:") {
            let path = PathBuf::from(path);
            let loaded = load_shared_object(&path, &self.settings)
                .and_then(|(so, remote)| register(registry, remote, &so.interfaces, Transport::SharedObject(path)));
            if let Err(e) = loaded {
                // Still disabled, as the file says again.
                let _ = self.save_disabled(&held);
                return Err(Toggle::Failed(e));
            }
        }
        *held = disabled;
        Ok(())
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn fault(&self, name: &str, path: &Path, error: String) {
        eprintln!("berthd: plugin {name} ({}): {error}", path.display());
        if let Ok(mut f) = self.faults.lock() {
            f.insert(
                name.to_string(),
                Fault {
                    name: name.to_string(),
                    path: path.to_path_buf(),
                    error,
                },
            );
        }
    }

    fn clear_fault(&self, name: &str) {
        if let Ok(mut f) = self.faults.lock() {
            f.remove(name);
        }
    }

    /// What could not be loaded or activated.
    pub fn faults(&self) -> Vec<Fault> {
        self.faults.lock().map(|f| f.values().cloned().collect()).unwrap_or_default()
    }

    /// Every `*.so` in the plugin directories.
    pub fn shared_objects(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = Vec::new();
        for dir in self.settings.so_dirs() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut here: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "so") && p.is_file())
                .collect();
            here.sort();
            found.extend(here);
        }
        found
    }

    /// Loads every shared object into `registry`; one that fails is a
    /// fault, one disabled is left alone.
    pub fn load_all(&self, registry: &Registry) {
        let disabled = self.disabled();
        for path in self.shared_objects() {
            if disabled
                .values()
                .any(|w| w.strip_prefix("so:") == Some(path.to_string_lossy().as_ref()))
            {
                continue;
            }
            let made = load_shared_object(&path, &self.settings)
                .and_then(|(so, remote)| register(registry, remote, &so.interfaces, Transport::SharedObject(path.clone())).map(|_| so));
            match made {
                Ok(so) => self.clear_fault(&so.name),
                Err(e) => self.fault(&stem(&path), &path, e),
            }
        }
    }

    /// Docker's places for a plugin named `name`: the first that exists.
    pub fn locate(&self, name: &str) -> Option<PathBuf> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return None;
        }
        let sockets = self
            .settings
            .socket_dirs()
            .into_iter()
            .flat_map(|d| [d.join(format!("{name}.sock")), d.join(name).join(format!("{name}.sock"))]);
        let specs = self.settings.spec_dirs().into_iter().flat_map(|d| {
            ["spec", "json"]
                .into_iter()
                .flat_map(move |ext| [d.join(format!("{name}.{ext}")), d.join(name).join(format!("{name}.{ext}"))])
        });
        sockets.chain(specs).find(|p| p.exists())
    }

    /// Finds the Docker-style plugin `name`, activates it and registers it.
    /// Nothing found is no error (the name is simply unknown).
    pub fn find(&self, registry: &Registry, name: &str) -> Result<(), String> {
        if self.disabled().contains_key(name) {
            return Err(format!("plugin {name} is disabled (berth plugin enable {name})"));
        }
        let Some(path) = self.locate(name) else { return Ok(()) };
        let address = if path.extension().is_some_and(|e| e == "sock") {
            Address::Unix(path.clone())
        } else {
            read_spec(&path)?
        };
        let transport = Transport::Http(address.to_string());
        let made = activate_http(name, address, self.settings.timeout)
            .and_then(|(remote, interfaces)| register(registry, remote, &interfaces, transport));
        match made {
            Ok(()) => {
                self.clear_fault(name);
                Ok(())
            }
            Err(e) => {
                self.fault(name, &path, e.clone());
                Err(e)
            }
        }
    }

    /// The names of every Docker-style plugin in the directories.
    pub fn discovered(&self) -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        let dirs = self.settings.socket_dirs().into_iter().chain(self.settings.spec_dirs());
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                let p = e.path();
                let named = match p.extension().and_then(|x| x.to_str()) {
                    Some("sock" | "spec" | "json") => Some(stem(&p)),
                    _ if p.is_dir() => Some(stem(&p)).filter(|n| self.locate(n).is_some_and(|l| l.starts_with(&p))),
                    _ => None,
                };
                names.extend(named);
            }
        }
        names.into_iter().collect()
    }

    /// Docker's `GET /plugins` list: every driver (activating the
    /// Docker-style plugins found, as `docker plugin ls` shows what is
    /// installed) and every fault.
    pub fn list(&self, registry: &Registry) -> Vec<Value> {
        let disabled = self.disabled();
        let known: std::collections::BTreeSet<String> = registry.list().into_iter().map(|d| d.name).collect();
        for name in self.discovered() {
            if !known.contains(&name) && !disabled.contains_key(&name) {
                let _ = self.find(registry, &name);
            }
        }
        let mut by_name: BTreeMap<String, (Vec<&'static str>, String)> = BTreeMap::new();
        for d in registry.list() {
            let e = by_name
                .entry(d.name.clone())
                .or_insert_with(|| (Vec::new(), d.transport.to_string()));
            e.0.push(d.interface.protocol_name());
        }
        let mut out: Vec<Value> = by_name
            .into_iter()
            .map(|(name, (interfaces, transport))| plugin_json(&name, &interfaces, &transport, None))
            .collect();
        for (name, was) in disabled {
            let mut p = plugin_json(&name, &[], &was, None);
            p["Enabled"] = json!(false);
            p["Config"]["Description"] = json!(format!("disabled: {was}"));
            out.push(p);
        }
        for f in self.faults() {
            if !out.iter().any(|p| p["Name"] == f.name.as_str()) {
                out.push(plugin_json(&f.name, &[], &f.path.display().to_string(), Some(&f.error)));
            }
        }
        out
    }
}

fn disabled_file(settings: &Settings) -> PathBuf {
    settings.home.join(".disabled.json")
}

/// One plugin in the shape of Docker's `Plugin` object, with berth's
/// `Transport` (and `Error`, for a fault) beside it.
fn plugin_json(name: &str, interfaces: &[&str], transport: &str, error: Option<&str>) -> Value {
    // Docker writes an interface type as one string: docker.volumedriver/1.0.
    let types: Vec<String> = interfaces
        .iter()
        .map(|i| format!("docker.{}/1.0", i.to_ascii_lowercase()))
        .collect();
    json!({
        "Id": name,
        "Name": name,
        "Enabled": error.is_none(),
        "Settings": { "Mounts": [], "Env": [], "Args": [], "Devices": [] },
        "PluginReference": "",
        "Config": {
            "Description": error.map(|e| format!("failed: {e}")).unwrap_or_else(|| transport.to_string()),
            "Interface": { "Types": types, "Socket": "" },
        },
        "Transport": transport,
        "Error": error.unwrap_or(""),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_locations_and_spec_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::new(dir.path());
        s.dirs.push(dir.path().to_path_buf());
        let p = Plugins::new(s);
        std::fs::write(dir.path().join("a.spec"), "unix:///run/a.sock\n").unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("b/b.json"), r#"{"Name":"b","Addr":"tcp://127.0.0.1:9"}"#).unwrap();
        std::fs::write(
            dir.path().join("c.json"),
            r#"{"Name":"c","Addr":"tcp://127.0.0.1:9","TLSConfig":{}}"#,
        )
        .unwrap();
        assert_eq!(p.locate("a"), Some(dir.path().join("a.spec")));
        assert_eq!(p.locate("b"), Some(dir.path().join("b/b.json")));
        assert_eq!(p.locate("../a"), None);
        assert_eq!(read_spec(&dir.path().join("a.spec")).unwrap(), Address::Unix("/run/a.sock".into()));
        assert_eq!(read_spec(&dir.path().join("b/b.json")).unwrap(), Address::Tcp("127.0.0.1:9".into()));
        assert!(read_spec(&dir.path().join("c.json")).unwrap_err().contains("TLS"));
        assert_eq!(p.discovered(), vec!["a", "b", "c"]);
        let r = Registry::new();
        let e = p.find(&r, "a").unwrap_err();
        assert!(e.contains("/run/a.sock"), "{e}");
        assert_eq!(p.faults().len(), 1);
        assert_eq!(p.find(&r, "none"), Ok(()), "an unknown name is no fault");
    }
}
