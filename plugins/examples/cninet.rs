//! cninet: a network driver that delegates to the CNI plugins of Debian's
//! containernetworking-plugins (/usr/lib/cni). A network is a CNI `bridge`
//! network (`cni-` and the network ID; `-o bridge=NAME` to choose); a join
//! runs the `bridge` plugin with `static` IPAM on the address berth gave
//! the endpoint, then `tuning` to give the interface the endpoint's MAC; a
//! leave runs them with DEL. The CNI plugins make the interface inside the
//! sandbox themselves, so the join names no interface for the engine to
//! move. State: one JSON file per network and endpoint in the home.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_plugin::error::{DriverError, Result};
use berth_plugin::network::*;
use berth_plugin::Served;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where Debian installs the CNI plugins.
const CNI_PATH: &str = "/usr/lib/cni";
/// berth's join options: the interface's name and whether it routes.
const IFNAME_OPTION: &str = "com.berth.ifname";
const DEFAULT_ROUTE_OPTION: &str = "com.berth.default-route";

#[derive(Serialize, Deserialize)]
struct Network {
    bridge: String,
    /// The gateway, `ADDR/PREFIX`.
    gateway: String,
}

#[derive(Serialize, Deserialize)]
struct Endpoint {
    network: String,
    address: String,
    mac: String,
    /// Set while joined: the sandbox and the interface's name there.
    #[serde(default)]
    sandbox: String,
    #[serde(default)]
    ifname: String,
    #[serde(default)]
    routed: bool,
}

struct Cni {
    home: PathBuf,
}

fn driver_error(what: String) -> DriverError {
    DriverError::Driver(what)
}

fn not_found(kind: &'static str, name: &str) -> DriverError {
    DriverError::NotFound { kind, name: name.into() }
}

impl Cni {
    fn open(home: &Path) -> Result<Cni> {
        for d in ["networks", "endpoints"] {
            let p = home.join(d);
            std::fs::create_dir_all(&p).map_err(|e| DriverError::io("create", &p, e))?;
        }
        Ok(Cni { home: home.to_path_buf() })
    }

    fn file(&self, kind: &str, id: &str) -> Result<PathBuf> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(DriverError::InvalidArgument {
                what: format!("{kind} ID {id:?}"),
                reason: "not a plain name".into(),
            });
        }
        Ok(self.home.join(kind).join(format!("{id}.json")))
    }

    fn load<T: for<'de> Deserialize<'de>>(&self, kind: &'static str, id: &str) -> Result<T> {
        let f = self.file(kind, id)?;
        let text = std::fs::read(&f).map_err(|_| not_found(kind, id))?;
        serde_json::from_slice(&text).map_err(|e| driver_error(format!("{}: {e}", f.display())))
    }

    /// Written whole and renamed into place.
    fn store<T: Serialize>(&self, kind: &str, id: &str, value: &T) -> Result<()> {
        let f = self.file(kind, id)?;
        let tmp = f.with_extension("tmp");
        let bytes = serde_json::to_vec(value).map_err(|e| driver_error(e.to_string()))?;
        std::fs::write(&tmp, bytes).map_err(|e| DriverError::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &f).map_err(|e| DriverError::io("rename", &tmp, e))
    }

    fn forget(&self, kind: &str, id: &str) -> Result<()> {
        match std::fs::remove_file(self.file(kind, id)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::io("remove", self.file(kind, id)?, e)),
            _ => Ok(()),
        }
    }

    /// The network's CNI configuration for one endpoint.
    fn config(&self, network_id: &str, net: &Network, ep: &Endpoint) -> Value {
        let gateway = net.gateway.split('/').next().unwrap_or_default();
        let routes = if ep.routed { json!([{ "dst": "0.0.0.0/0" }]) } else { json!([]) };
        json!({
            "cniVersion": "1.0.0",
            "name": format!("berth-{network_id}"),
            "type": "bridge",
            "bridge": net.bridge,
            "isGateway": true,
            "ipMasq": false,
            "ipam": { "type": "static", "addresses": [{ "address": ep.address, "gateway": gateway }], "routes": routes },
        })
    }
}

/// Runs CNI plugin `kind` with `command` for `ep` and its configuration;
/// the plugin's result (ADD) or nothing (DEL).
fn cni(kind: &str, command: &str, endpoint_id: &str, ep: &Endpoint, config: &Value) -> Result<Value> {
    let program = Path::new(CNI_PATH).join(kind);
    let mut child = Command::new(&program)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", endpoint_id)
        .env("CNI_NETNS", &ep.sandbox)
        .env("CNI_IFNAME", &ep.ifname)
        .env("CNI_PATH", CNI_PATH)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            driver_error(format!(
                "run {}: {e} (is containernetworking-plugins installed?)",
                program.display()
            ))
        })?;
    let sent = child.stdin.take().map(|mut i| i.write_all(config.to_string().as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| driver_error(format!("wait for {}: {e}", program.display())))?;
    if let Some(Err(e)) = sent {
        return Err(driver_error(format!("write to {}: {e}", program.display())));
    }
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if !out.status.success() {
        let why = answer["msg"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string());
        return Err(driver_error(format!("CNI {kind} {command}: {why}")));
    }
    Ok(answer)
}

impl NetworkDriver for Cni {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: "local".into(),
            connectivity_scope: "local".into(),
        }
    }

    fn create_network(&self, req: &CreateNetworkRequest) -> Result<()> {
        let v4 = req.ipv4_data.first().ok_or_else(|| DriverError::InvalidArgument {
            what: "IPv4Data".into(),
            reason: "cninet needs an IPv4 pool".into(),
        })?;
        let mut bridge = format!("cni-{}", req.network_id.chars().take(10).collect::<String>());
        for (k, v) in &req.options {
            match (k.as_str(), v) {
                ("bridge", Value::String(name)) => bridge = name.clone(),
                // The engine's own options (labels, its generic map) ride along.
                (k, _) if k.starts_with("com.docker.") || k.starts_with("com.berth.") => {}
                _ => {
                    return Err(DriverError::InvalidArgument {
                        what: format!("option {k:?}"),
                        reason: "cninet takes bridge=NAME only".into(),
                    })
                }
            }
        }
        self.store(
            "networks",
            &req.network_id,
            &Network {
                bridge,
                gateway: v4.gateway.clone(),
            },
        )
    }

    fn delete_network(&self, network_id: &str) -> Result<()> {
        let net: Network = self.load("networks", network_id)?;
        // The bridge plugin makes the bridge on the first ADD and leaves it.
        let _ = Command::new("ip")
            .args(["link", "delete", &net.bridge])
            .stderr(Stdio::null())
            .status();
        self.forget("networks", network_id)
    }

    fn create_endpoint(&self, req: &CreateEndpointRequest) -> Result<Option<EndpointInterface>> {
        self.load::<Network>("networks", &req.network_id)?;
        let asked = req.interface.clone().unwrap_or_default();
        let ip: std::net::Ipv4Addr =
            asked
                .address
                .split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| DriverError::InvalidArgument {
                    what: "address".into(),
                    reason: format!("{:?} is not IPv4/PREFIX", asked.address),
                })?;
        let o = ip.octets();
        let mac = if asked.mac_address.is_empty() {
            format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
        } else {
            asked.mac_address.clone()
        };
        let ep = Endpoint {
            network: req.network_id.clone(),
            address: asked.address.clone(),
            mac: mac.clone(),
            sandbox: String::new(),
            ifname: String::new(),
            routed: false,
        };
        self.store("endpoints", &req.endpoint_id, &ep)?;
        let chosen = if asked.mac_address.is_empty() { mac } else { String::new() };
        Ok(Some(EndpointInterface {
            mac_address: chosen,
            ..Default::default()
        }))
    }

    fn delete_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        let ep: Endpoint = self.load("endpoints", endpoint_id)?;
        if ep.network != network_id {
            return Err(not_found("endpoint", endpoint_id));
        }
        self.forget("endpoints", endpoint_id)
    }

    fn join(&self, req: &JoinRequest) -> Result<JoinResponse> {
        let net: Network = self.load("networks", &req.network_id)?;
        let mut ep: Endpoint = self.load("endpoints", &req.endpoint_id)?;
        ep.sandbox = req.sandbox_key.clone();
        ep.ifname = req.options.get(IFNAME_OPTION).and_then(Value::as_str).unwrap_or("eth0").to_string();
        ep.routed = req.options.get(DEFAULT_ROUTE_OPTION).and_then(Value::as_bool).unwrap_or(true);
        let config = self.config(&req.network_id, &net, &ep);
        let result = cni("bridge", "ADD", &req.endpoint_id, &ep, &config)?;
        let tuning = json!({ "cniVersion": "1.0.0", "name": config["name"], "type": "tuning", "mac": ep.mac, "prevResult": result });
        if let Err(e) = cni("tuning", "ADD", &req.endpoint_id, &ep, &tuning) {
            let _ = cni("bridge", "DEL", &req.endpoint_id, &ep, &config);
            return Err(e);
        }
        self.store("endpoints", &req.endpoint_id, &ep)?;
        let gateway = net.gateway.split('/').next().unwrap_or_default().to_string();
        Ok(JoinResponse {
            gateway,
            ..Default::default()
        })
    }

    fn leave(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        let net: Network = self.load("networks", network_id)?;
        let mut ep: Endpoint = self.load("endpoints", endpoint_id)?;
        if ep.sandbox.is_empty() {
            return Err(DriverError::Conflict {
                kind: "endpoint",
                name: endpoint_id.into(),
                reason: "not joined".into(),
            });
        }
        let config = self.config(network_id, &net, &ep);
        cni("bridge", "DEL", endpoint_id, &ep, &config)?;
        ep.sandbox.clear();
        self.store("endpoints", endpoint_id, &ep)
    }
}

berth_plugin::export_plugin!(Served::new("cninet").network(Cni::open));
