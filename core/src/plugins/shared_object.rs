//! Plugins loaded in-process: a shared object exporting berth's plugin ABI
//! (`berth_plugin::abi`), opened with libloading. Loading checks the ABI
//! version before anything else; every call runs on a worker thread and is
//! bounded by a timeout, so a plugin that hangs costs its caller an error
//! and one stuck thread, never berthd. Dropping the last handle unloads
//! the object once no call is running in it.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_plugin::abi::{Descriptor, EntryFn, ABI_VERSION, ENTRY_SYMBOL};
use berth_plugin::error::DriverError;

/// Why a shared object is not a plugin berth can use.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("load plugin {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: libloading::Error,
    },
    #[error("{path} is not a berth plugin: it exports no berth_plugin_entry symbol")]
    NoEntry { path: PathBuf },
    #[error(
        "plugin {path} was built for plugin ABI version {found}; this berth speaks version {ABI_VERSION}: rebuild it against this berth's berth-plugin crate"
    )]
    AbiVersion { path: PathBuf, found: u32 },
    #[error("plugin {path}: {reason}")]
    Descriptor { path: PathBuf, reason: String },
}

/// The library and its descriptor, kept alive by whoever may still call in.
struct Library {
    descriptor: *const Descriptor,
    _library: libloading::Library,
}

// SAFETY: the descriptor points into the library, which lives as long as
// this value; the ABI requires its functions to be callable from any
// thread, concurrently.
unsafe impl Send for Library {}
// SAFETY: as above.
unsafe impl Sync for Library {}

impl Library {
    fn call(&self, method: &str, request: &[u8]) -> Vec<u8> {
        // SAFETY: the descriptor is valid while the library is loaded (it
        // is, `self` holds it); the pointers and lengths describe live
        // slices; the answer is copied out and given back to the plugin's
        // own `free`, as the ABI asks.
        unsafe {
            let d = &*self.descriptor;
            let b = (d.call)(method.as_ptr(), method.len(), request.as_ptr(), request.len());
            let out = if b.ptr.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(b.ptr, b.len).to_vec()
            };
            (d.free)(b);
            out
        }
    }
}

/// A thread that runs calls into the library, one at a time.
struct Worker {
    jobs: mpsc::Sender<(String, Vec<u8>)>,
    answers: mpsc::Receiver<Vec<u8>>,
}

impl Worker {
    fn spawn(library: Arc<Library>, name: &str) -> std::io::Result<Worker> {
        let (jobs, job_rx) = mpsc::channel::<(String, Vec<u8>)>();
        let (answer_tx, answers) = mpsc::channel();
        std::thread::Builder::new().name(format!("plugin {name}")).spawn(move || {
            for (method, request) in job_rx {
                if answer_tx.send(library.call(&method, &request)).is_err() {
                    break;
                }
            }
        })?;
        Ok(Worker { jobs, answers })
    }
}

/// A loaded plugin.
pub struct SharedObject {
    pub path: PathBuf,
    pub name: String,
    /// Docker's interface names, as the descriptor lists them.
    pub interfaces: Vec<String>,
    library: Arc<Library>,
    idle: Mutex<Vec<Worker>>,
    timeout: Duration,
}

impl SharedObject {
    /// Loads `path` and reads its descriptor; each call may take `timeout`.
    pub fn open(path: &Path, timeout: Duration) -> Result<SharedObject, LoadError> {
        let path = path.to_path_buf();
        // SAFETY: loading runs the object's initialisers: berth loads only
        // from the plugin directories an administrator fills, as any
        // engine loads its plugins.
        let library = unsafe { libloading::Library::new(&path) }.map_err(|source| LoadError::Open {
            path: path.clone(),
            source,
        })?;
        // SAFETY: the symbol's type is the ABI's entry type; it is called
        // while the library is loaded.
        let descriptor = unsafe {
            let entry = library
                .get::<EntryFn>(ENTRY_SYMBOL)
                .map_err(|_| LoadError::NoEntry { path: path.clone() })?;
            entry()
        };
        let bad = |reason: &str| LoadError::Descriptor {
            path: path.clone(),
            reason: reason.to_string(),
        };
        if descriptor.is_null() {
            return Err(bad("its entry returned no descriptor"));
        }
        // SAFETY: non-null; `abi_version` is the first field in every
        // version of the ABI, so it can be read before the rest is trusted.
        let found = unsafe { (*descriptor).abi_version };
        if found != ABI_VERSION {
            return Err(LoadError::AbiVersion { path, found });
        }
        // SAFETY: the version matches, so the descriptor has this layout;
        // its strings are static and NUL-terminated.
        let text = |p: *const std::os::raw::c_char| -> Option<String> {
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        };
        // SAFETY: as above.
        let (name, interfaces) = unsafe { (text((*descriptor).name), text((*descriptor).interfaces)) };
        let name = name.filter(|n| !n.is_empty()).ok_or_else(|| bad("its descriptor has no name"))?;
        // The name becomes a directory under the plugins' home.
        if name.starts_with('.') || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            return Err(bad(&format!("its name {name:?} is not [a-zA-Z0-9][a-zA-Z0-9_.-]*")));
        }
        let interfaces: Vec<String> = interfaces
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_string)
            .collect();
        if interfaces.is_empty() {
            return Err(bad("its descriptor names no interface"));
        }
        Ok(SharedObject {
            path,
            name,
            interfaces,
            library: Arc::new(Library {
                descriptor,
                _library: library,
            }),
            idle: Mutex::new(Vec::new()),
            timeout,
        })
    }

    /// The plugin's answer to `method` with `request`, within the timeout.
    pub fn call(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, DriverError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let worker = match pooled {
            Some(w) => w,
            None => Worker::spawn(Arc::clone(&self.library), &self.name)
                .map_err(|e| DriverError::Driver(format!("plugin {}: start a call thread: {e}", self.name)))?,
        };
        let gone = || DriverError::Driver(format!("plugin {}: its call thread ended during {method}", self.name));
        worker.jobs.send((method.to_string(), request.to_vec())).map_err(|_| gone())?;
        match worker.answers.recv_timeout(self.timeout) {
            Ok(answer) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(worker);
                }
                Ok(answer)
            }
            // The worker is dropped: it ends once the plugin returns, and
            // the library stays loaded until then.
            Err(RecvTimeoutError::Timeout) => Err(DriverError::Driver(format!(
                "plugin {} did not answer {method} within {:?} (the call is abandoned)",
                self.name, self.timeout
            ))),
            Err(RecvTimeoutError::Disconnected) => Err(gone()),
        }
    }
}
