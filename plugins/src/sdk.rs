//! The driver SDK: [`Served`] makes a [`Plugin`] out of drivers written
//! against the interface traits, for [`export_plugin!`](crate::export_plugin)
//! (a shared object berth loads) or [`crate::http::serve`] (a Docker-style
//! plugin on a UNIX socket).
//!
//! ```no_run
//! # use berth_plugin::{volume::*, error::Result, sdk::Served};
//! # use std::path::{Path, PathBuf};
//! struct Dirs(PathBuf);
//! # impl VolumeDriver for Dirs {
//! #   fn create(&self, _: &CreateRequest) -> Result<()> { Ok(()) }
//! #   fn remove(&self, _: &str) -> Result<()> { Ok(()) }
//! #   fn mount(&self, r: &MountRequest) -> Result<PathBuf> { Ok(self.0.join(&r.name)) }
//! #   fn unmount(&self, _: &MountRequest) -> Result<()> { Ok(()) }
//! #   fn path(&self, n: &str) -> Result<PathBuf> { Ok(self.0.join(n)) }
//! #   fn get(&self, n: &str) -> Result<Volume> { Err(berth_plugin::DriverError::NotFound { kind: "volume", name: n.into() }) }
//! #   fn list(&self) -> Result<Vec<Volume>> { Ok(vec![]) }
//! # }
//! berth_plugin::export_plugin!(Served::new("dirs").volume(|home: &Path| Ok(Dirs(home.to_path_buf()))));
//! ```
//!
//! The engine activates a plugin once, before any other call, with
//! `/Plugin.Activate` and `{"Home": DIR}`: a directory of the plugin's own
//! for its state, which the drivers are built with. A call arriving first
//! (a Docker engine sends no home) activates with `$BERTH_PLUGIN_HOME`, or
//! `/var/lib/berth/plugins/NAME`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::json;

use crate::abi::Plugin;
use crate::error::{DriverError, Result};
use crate::graph::GraphDriver;
use crate::ipam::IpamDriver;
use crate::network::NetworkDriver;
use crate::protocol::{reply, serve_graph, serve_ipam, serve_network, serve_volume};
use crate::volume::VolumeDriver;

type Factory<T> = Box<dyn Fn(&Path) -> Result<Box<T>> + Send + Sync>;

/// The drivers of an activated plugin.
#[derive(Default)]
struct Drivers {
    volume: Option<Box<dyn VolumeDriver>>,
    network: Option<Box<dyn NetworkDriver>>,
    ipam: Option<Box<dyn IpamDriver>>,
    graph: Option<Box<dyn GraphDriver>>,
}

/// A plugin made of drivers, one per interface at most, each built at
/// activation from the plugin's home directory.
pub struct Served {
    name: &'static str,
    volume: Option<Factory<dyn VolumeDriver>>,
    network: Option<Factory<dyn NetworkDriver>>,
    ipam: Option<Factory<dyn IpamDriver>>,
    graph: Option<Factory<dyn GraphDriver>>,
    /// The drivers, once an activation built them.
    activated: OnceLock<Drivers>,
    /// The home the last activation asked for (a failed one is tried
    /// again with it), and the lock that keeps activations one at a time.
    home: std::sync::Mutex<Option<PathBuf>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Activate {
    #[serde(default)]
    home: Option<PathBuf>,
}

impl Served {
    pub fn new(name: &'static str) -> Served {
        Served {
            name,
            volume: None,
            network: None,
            ipam: None,
            graph: None,
            activated: OnceLock::new(),
            home: std::sync::Mutex::new(None),
        }
    }

    /// Serves the `VolumeDriver` interface with what `make` builds.
    pub fn volume<D: VolumeDriver + 'static>(mut self, make: impl Fn(&Path) -> Result<D> + Send + Sync + 'static) -> Served {
        self.volume = Some(Box::new(move |home| Ok(Box::new(make(home)?) as Box<dyn VolumeDriver>)));
        self
    }

    /// Serves the `NetworkDriver` interface with what `make` builds.
    pub fn network<D: NetworkDriver + 'static>(mut self, make: impl Fn(&Path) -> Result<D> + Send + Sync + 'static) -> Served {
        self.network = Some(Box::new(move |home| Ok(Box::new(make(home)?) as Box<dyn NetworkDriver>)));
        self
    }

    /// Serves the `IpamDriver` interface with what `make` builds.
    pub fn ipam<D: IpamDriver + 'static>(mut self, make: impl Fn(&Path) -> Result<D> + Send + Sync + 'static) -> Served {
        self.ipam = Some(Box::new(move |home| Ok(Box::new(make(home)?) as Box<dyn IpamDriver>)));
        self
    }

    /// Serves the `GraphDriver` interface with what `make` builds.
    pub fn graph<D: GraphDriver + 'static>(mut self, make: impl Fn(&Path) -> Result<D> + Send + Sync + 'static) -> Served {
        self.graph = Some(Box::new(move |home| Ok(Box::new(make(home)?) as Box<dyn GraphDriver>)));
        self
    }

    fn default_home(&self) -> PathBuf {
        std::env::var_os("BERTH_PLUGIN_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new("/var/lib/berth/plugins").join(self.name))
    }

    /// Builds the drivers with `home` (created if missing). Once built,
    /// later activations change nothing; a failed one is tried again by
    /// the next activation or call.
    pub fn activate(&self, home: &Path) -> Result<()> {
        let mut asked = self.home.lock().unwrap_or_else(|p| p.into_inner());
        *asked = Some(home.to_path_buf());
        if self.activated.get().is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(home).map_err(|e| DriverError::io("create plugin home", home, e))?;
        let drivers = Drivers {
            volume: self.volume.as_ref().map(|f| f(home)).transpose()?,
            network: self.network.as_ref().map(|f| f(home)).transpose()?,
            ipam: self.ipam.as_ref().map(|f| f(home)).transpose()?,
            graph: self.graph.as_ref().map(|f| f(home)).transpose()?,
        };
        let _ = self.activated.set(drivers);
        Ok(())
    }

    fn drivers(&self) -> Result<&Drivers> {
        if let Some(d) = self.activated.get() {
            return Ok(d);
        }
        let home = self.home.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.activate(&home.unwrap_or_else(|| self.default_home()))
            .map_err(|e| DriverError::Driver(format!("plugin {} failed to activate: {e}", self.name)))?;
        self.activated
            .get()
            .ok_or_else(|| DriverError::Driver(format!("plugin {} is not activated", self.name)))
    }

    fn answer(&self, method: &str, request: &[u8]) -> Result<serde_json::Value> {
        if method == "/Plugin.Activate" {
            let asked: Activate = if request.iter().all(u8::is_ascii_whitespace) {
                Activate::default()
            } else {
                serde_json::from_slice(request).map_err(|e| DriverError::InvalidArgument {
                    what: "/Plugin.Activate request".into(),
                    reason: e.to_string(),
                })?
            };
            self.activate(&asked.home.unwrap_or_else(|| self.default_home()))?;
            return Ok(json!({ "Implements": self.interfaces() }));
        }
        let d = self.drivers()?;
        let missing = |interface: &str| DriverError::InvalidArgument {
            what: "method".into(),
            reason: format!("{method}: plugin {} does not implement {interface}", self.name),
        };
        let (interface, _) = method.trim_start_matches('/').split_once('.').unwrap_or((method, ""));
        match interface {
            "VolumeDriver" => serve_volume(d.volume.as_deref().ok_or_else(|| missing(interface))?, method, request),
            "NetworkDriver" => serve_network(d.network.as_deref().ok_or_else(|| missing(interface))?, method, request),
            "IpamDriver" => serve_ipam(d.ipam.as_deref().ok_or_else(|| missing(interface))?, method, request),
            "GraphDriver" => serve_graph(d.graph.as_deref().ok_or_else(|| missing(interface))?, method, request),
            _ => Err(missing(interface)),
        }
    }
}

impl Plugin for Served {
    fn name(&self) -> &'static str {
        self.name
    }

    fn interfaces(&self) -> Vec<&'static str> {
        [
            (self.volume.is_some(), "VolumeDriver"),
            (self.network.is_some(), "NetworkDriver"),
            (self.ipam.is_some(), "IpamDriver"),
            (self.graph.is_some(), "GraphDriver"),
        ]
        .into_iter()
        .filter_map(|(has, name)| has.then_some(name))
        .collect()
    }

    fn call(&self, method: &str, request: &[u8]) -> Vec<u8> {
        reply(self.answer(method, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{CreateRequest, MountRequest, Volume};

    struct Dirs(PathBuf);

    impl VolumeDriver for Dirs {
        fn create(&self, req: &CreateRequest) -> Result<()> {
            std::fs::create_dir_all(self.0.join(&req.name)).map_err(|e| DriverError::io("create", &self.0, e))
        }
        fn remove(&self, _: &str) -> Result<()> {
            Ok(())
        }
        fn mount(&self, r: &MountRequest) -> Result<PathBuf> {
            Ok(self.0.join(&r.name))
        }
        fn unmount(&self, _: &MountRequest) -> Result<()> {
            Ok(())
        }
        fn path(&self, n: &str) -> Result<PathBuf> {
            Ok(self.0.join(n))
        }
        fn get(&self, n: &str) -> Result<Volume> {
            Err(DriverError::NotFound {
                kind: "volume",
                name: n.into(),
            })
        }
        fn list(&self) -> Result<Vec<Volume>> {
            Ok(vec![])
        }
    }

    fn call(p: &Served, method: &str, body: serde_json::Value) -> serde_json::Value {
        serde_json::from_slice(&p.call(method, body.to_string().as_bytes())).unwrap()
    }

    #[test]
    fn activation_builds_the_drivers_in_the_home_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let p = Served::new("dirs").volume(|home: &Path| Ok(Dirs(home.to_path_buf())));
        let a = call(&p, "/Plugin.Activate", json!({ "Home": home }));
        assert_eq!(a, json!({ "Implements": ["VolumeDriver"], "Err": "" }));
        let c = call(&p, "/VolumeDriver.Create", json!({ "Name": "v" }));
        assert_eq!(c["Err"], "");
        assert!(home.join("v").is_dir(), "the driver works in the home given at activation");
        let n = call(&p, "/NetworkDriver.Join", json!({}));
        assert!(n["Err"].as_str().unwrap().contains("does not implement NetworkDriver"), "{n}");
        let g = call(&p, "/VolumeDriver.Get", json!({ "Name": "nope" }));
        assert!(g["Err"].as_str().unwrap().contains("not found"), "{g}");
    }

    #[test]
    fn a_failed_activation_is_reported_and_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        // The factory fails until its home has a file named ready.
        let p = Served::new("late").volume(|home: &Path| -> Result<Dirs> {
            if home.join("ready").exists() {
                Ok(Dirs(home.to_path_buf()))
            } else {
                Err(DriverError::Driver("no disk".into()))
            }
        });
        let a = call(&p, "/Plugin.Activate", json!({ "Home": home }));
        assert_eq!(a["Err"], "no disk");
        let l = call(&p, "/VolumeDriver.List", json!({}));
        assert!(l["Err"].as_str().unwrap().contains("failed to activate: no disk"), "{l}");
        std::fs::write(home.join("ready"), "").unwrap();
        let l = call(&p, "/VolumeDriver.List", json!({}));
        assert_eq!(l["Err"], "", "tried again in the home last asked for: {l}");
    }
}

#[cfg(test)]
mod docs {
    /// docs/plugins.md shows the example plugin whole, as it compiles.
    #[test]
    fn the_guide_carries_the_example_that_compiles() {
        let guide = include_str!("../../docs/plugins.md");
        let example = include_str!("../examples/dirvol.rs");
        assert!(
            guide.contains(&format!("```rust\n{example}```")),
            "docs/plugins.md must contain plugins/examples/dirvol.rs verbatim"
        );
    }
}
