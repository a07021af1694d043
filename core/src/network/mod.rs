//! Networks as berthd keeps them: one [`Network`] record per network in
//! `<data root>/networks/<id>.json` (written atomically), the address
//! pools of all of them ([`berth_net::ipam`], in `networks/ipam.json`),
//! and the work of putting a container on a network: an address, the
//! driver's endpoint and join, and berth's nftables table made to say
//! what every network and published port needs ([`Networks::sync_firewall`]).
//!
//! The links themselves are the drivers' (`berth-net`); the container's
//! side of it (which networks, which ports) lives in its record as
//! [`Endpoint`]s and [`Published`] ports. Name resolution inside
//! containers is [`dns`].

pub mod dns;
pub mod global;
pub mod ports;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_net::ipam::{Ipam, PoolRequest, Subnet};
use berth_plugin::Registry;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The networks every daemon has, as Docker's: (name, driver).
pub const PREDEFINED: [(&str, &str); 3] = [("bridge", "bridge"), ("host", "host"), ("none", "null")];
/// The default bridge's Linux bridge and subnet (Docker's are docker0 on
/// the same subnet).
pub const DEFAULT_BRIDGE: &str = "berth0";
pub const DEFAULT_SUBNET: &str = "172.17.0.0/16";
/// The gateway bridge of containers on overlays only (Docker's name).
pub const GATEWAY_BRIDGE: &str = "docker_gwbridge";

/// What went wrong, with the HTTP status the API answers it with.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    /// Something else not found, said in full.
    #[error("{0}")]
    NoSuch(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, NetworkError>;

fn internal(e: impl std::fmt::Display) -> NetworkError {
    NetworkError::Internal(e.to_string())
}

fn from_ipam(e: berth_net::ipam::IpamError) -> NetworkError {
    use berth_net::ipam::IpamError::*;
    match e {
        Overlap { .. } | InUse(_) => NetworkError::Conflict(e.to_string()),
        State { .. } => NetworkError::Internal(e.to_string()),
        _ => NetworkError::Invalid(e.to_string()),
    }
}

fn from_driver(e: berth_plugin::DriverError) -> NetworkError {
    use berth_plugin::DriverError::*;
    match e {
        NotFound { .. } => NetworkError::NoSuch(e.to_string()),
        Conflict { .. } => NetworkError::Conflict(e.to_string()),
        InvalidArgument { .. } => NetworkError::Invalid(e.to_string()),
        _ => NetworkError::Internal(e.to_string()),
    }
}

/// One subnet of a network (`IPAM.Config[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    #[serde(default)]
    pub subnet: String,
    #[serde(default, rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(default)]
    pub gateway: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auxiliary_addresses: BTreeMap<String, String>,
}

/// A network, as kept on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    pub ipam: Vec<IpamConfig>,
    pub internal: bool,
    pub attachable: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The Linux bridge (bridge driver only).
    #[serde(default)]
    pub bridge: String,
    /// `local`, or `global`: kept in the cluster store, seen by every host.
    #[serde(default = "local_scope")]
    pub scope: String,
    /// Who hands out its addresses: `default` (berth's own) or an IPAM
    /// driver's name (a plugin's).
    #[serde(default = "default_ipam", rename = "IPAMDriver")]
    pub ipam_driver: String,
    /// With an IPAM driver: the pool ID it gave, by subnet.
    #[serde(default, rename = "IPAMPools")]
    pub ipam_pools: BTreeMap<String, String>,
}

/// The name of berth's own address management.
pub const DEFAULT_IPAM: &str = "default";

fn default_ipam() -> String {
    DEFAULT_IPAM.into()
}

/// Docker's request option marking the gateway's address.
const GATEWAY_REQUEST: (&str, &str) = ("RequestAddressType", "com.docker.network.gateway");

fn local_scope() -> String {
    "local".into()
}

impl Network {
    pub fn predefined(&self) -> bool {
        PREDEFINED.iter().any(|(n, _)| *n == self.name)
    }

    /// Whether containers on it get an interface and an address.
    pub fn has_addresses(&self) -> bool {
        !matches!(self.driver.as_str(), "host" | "null")
    }

    /// User-defined networks have embedded DNS (the default bridge
    /// has not, as in Docker).
    pub fn has_dns(&self) -> bool {
        self.has_addresses() && !self.predefined()
    }

    fn subnets(&self) -> impl Iterator<Item = Subnet> + '_ {
        self.ipam.iter().filter_map(|c| Subnet::parse(&c.subnet).ok())
    }

    /// Its first IPv4 subnet.
    pub fn subnet_v4(&self) -> Option<Subnet> {
        self.subnets().find(|s| !s.is_v6())
    }

    pub fn subnet_v6(&self) -> Option<Subnet> {
        self.subnets().find(|s| s.is_v6())
    }

    /// Docker's inspect and list form; `containers` from the records.
    pub fn to_api(&self, containers: Value) -> Value {
        json!({
            "Name": self.name, "Id": self.id, "Created": self.created, "Scope": self.scope, "Driver": self.driver,
            "EnableIPv6": self.enable_ipv6,
            "IPAM": { "Driver": self.ipam_driver, "Options": {}, "Config": self.ipam },
            "Internal": self.internal, "Attachable": self.attachable, "Ingress": false,
            "ConfigFrom": { "Network": "" }, "ConfigOnly": false,
            "Containers": containers, "Options": self.options, "Labels": self.labels,
        })
    }
}

/// A container's place on one network: what was asked at create and,
/// while it runs, what it got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`.
    #[serde(default, rename = "IPv4Requested")]
    pub ipv4_requested: String,
    #[serde(default, rename = "IPv6Requested")]
    pub ipv6_requested: String,
    /// Set while joined.
    #[serde(default, rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(default, rename = "IPAddress")]
    pub ip_address: String,
    #[serde(default, rename = "IPPrefixLen")]
    pub prefix: u8,
    #[serde(default, rename = "GlobalIPv6Address")]
    pub ipv6_address: String,
    #[serde(default, rename = "GlobalIPv6PrefixLen")]
    pub ipv6_prefix: u8,
    #[serde(default)]
    pub gateway: String,
    #[serde(default, rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(default)]
    pub mac_address: String,
    /// A remote driver's link moved into the sandbox at join, to give back
    /// at leave.
    #[serde(default, rename = "BerthMovedLink", skip_serializing_if = "Option::is_none")]
    pub moved: Option<MovedLink>,
}

/// A link a driver made, moved into a sandbox under another name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MovedLink {
    /// Its name where the driver made it.
    pub src: String,
    /// Its name in the sandbox.
    pub name: String,
}

impl Endpoint {
    pub fn joined(&self) -> bool {
        !self.endpoint_id.is_empty()
    }

    /// Forgets what a join gave (keeping what was asked).
    fn clear(&mut self) {
        *self = Endpoint {
            network_id: std::mem::take(&mut self.network_id),
            aliases: std::mem::take(&mut self.aliases),
            ipv4_requested: std::mem::take(&mut self.ipv4_requested),
            ipv6_requested: std::mem::take(&mut self.ipv6_requested),
            ..Default::default()
        };
    }
}

/// A published port of a running container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Published {
    /// `tcp` or `udp`.
    pub proto: String,
    pub container_port: u16,
    /// Empty: every address of the host.
    #[serde(default)]
    pub host_ip: String,
    pub host_port: u16,
    pub container_ip: String,
}

/// `POST /networks/create`'s body (Docker's NetworkCreateRequest).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    pub ipam: Option<IpamRequest>,
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamRequest {
    pub driver: String,
    pub config: Option<Vec<IpamConfig>>,
    pub options: Option<BTreeMap<String, String>>,
}

/// The daemon's networks.
pub struct Networks {
    dir: PathBuf,
    ipam: Ipam,
    records: Mutex<BTreeMap<String, Network>>,
    /// What the table says now (networks, ports), so an unchanged state
    /// costs nothing and a change of ports alone only changes elements.
    applied: Mutex<Option<(Vec<berth_net::firewall::NetworkRules>, Vec<berth_net::firewall::PortMapping>)>>,
    /// Held while host ports are chosen and recorded.
    ports: Mutex<()>,
    /// The cluster store of global networks, when berthd has one.
    shared: Option<global::Shared>,
}

/// A pool for `c` from an IPAM driver, and the gateway's address in it:
/// the network's IPAM entry, the pool ID, the gateway. Nothing is left
/// taken on failure.
fn remote_pool(
    ipam: &dyn berth_plugin::IpamDriver,
    c: &IpamConfig,
    options: &BTreeMap<String, String>,
) -> Result<(IpamConfig, String, String)> {
    use berth_plugin::ipam::{AddressRequest, PoolRequest as RemotePool};
    let pool = ipam
        .request_pool(&RemotePool {
            address_space: "LocalDefault".into(),
            pool: c.subnet.clone(),
            sub_pool: c.ip_range.clone(),
            options: options.clone(),
            v6: false,
        })
        .map_err(from_driver)?;
    let gateway = (|| {
        let subnet = Subnet::parse(&pool.pool).map_err(|e| internal(format!("the IPAM driver's pool {:?}: {e}", pool.pool)))?;
        let asked = AddressRequest {
            pool_id: pool.pool_id.clone(),
            address: c.gateway.clone(),
            options: BTreeMap::from([(GATEWAY_REQUEST.0.to_string(), GATEWAY_REQUEST.1.to_string())]),
        };
        let got = ipam.request_address(&asked).map_err(from_driver)?;
        match got.address.split('/').next().unwrap_or_default().parse::<IpAddr>() {
            Ok(ip) if subnet.contains(ip) => Ok((subnet, ip)),
            _ => {
                let _ = ipam.release_address(&pool.pool_id, got.address.split('/').next().unwrap_or_default());
                Err(internal(format!("the IPAM driver's gateway {:?} is not in {subnet}", got.address)))
            }
        }
    })();
    match gateway {
        Ok((subnet, gw)) => Ok((
            IpamConfig {
                subnet: subnet.to_string(),
                ip_range: c.ip_range.clone(),
                gateway: gw.to_string(),
                auxiliary_addresses: c.auxiliary_addresses.clone(),
            },
            pool.pool_id,
            gw.to_string(),
        )),
        Err(e) => {
            let _ = ipam.release_pool(&pool.pool_id);
            Err(e)
        }
    }
}

/// Gives an IPAM driver's pool back, with its gateway address.
fn release_remote(ipam: &dyn berth_plugin::IpamDriver, pool: &str, gateway: &str) {
    if let Err(e) = ipam.release_address(pool, gateway) {
        eprintln!("berthd: release gateway {gateway} of pool {pool}: {e}");
    }
    if let Err(e) = ipam.release_pool(pool) {
        eprintln!("berthd: release pool {pool}: {e}");
    }
}

/// Checks a network name as Docker does: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn valid_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok =
        chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(NetworkError::Invalid(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

impl Networks {
    /// Loads the networks under `data_root` and makes the predefined ones
    /// (bridge, host, none) that are missing.
    pub fn open(data_root: &Path, registry: &Registry, cluster: Option<&berth_net::overlay::Cluster>) -> Result<Networks> {
        let dir = data_root.join("networks");
        std::fs::create_dir_all(&dir).map_err(|e| internal(format!("create {}: {e}", dir.display())))?;
        let ipam = Ipam::open(&dir.join("ipam.json")).map_err(from_ipam)?;
        let mut records = BTreeMap::new();
        for e in std::fs::read_dir(&dir).map_err(internal)?.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") && p.file_name().is_some_and(|n| n != "ipam.json") {
                let text = std::fs::read(&p).map_err(|e| internal(format!("read {}: {e}", p.display())))?;
                let n: Network = serde_json::from_slice(&text).map_err(|e| internal(format!("{}: {e}", p.display())))?;
                records.insert(n.id.clone(), n);
            }
        }
        let networks = Networks {
            dir,
            ipam,
            records: Mutex::new(records),
            applied: Mutex::new(None),
            ports: Mutex::new(()),
            shared: cluster.map(|c| global::Shared::new(&c.store)).transpose()?,
        };
        for (name, driver) in PREDEFINED {
            if networks.find(name).is_err() {
                let mut req = CreateRequest {
                    name: name.to_string(),
                    driver: driver.to_string(),
                    ..Default::default()
                };
                if driver == "bridge" {
                    req.options = Some(BTreeMap::from([
                        (berth_net::bridge::BRIDGE_NAME_OPTION.to_string(), DEFAULT_BRIDGE.to_string()),
                        ("com.docker.network.bridge.default_bridge".to_string(), "true".to_string()),
                    ]));
                    req.ipam = Some(IpamRequest {
                        config: Some(vec![IpamConfig {
                            subnet: DEFAULT_SUBNET.to_string(),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    });
                }
                networks.make(registry, req, true)?;
            }
        }
        Ok(networks)
    }

    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Network>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, n: &Network) -> Result<()> {
        let text = serde_json::to_vec_pretty(n).map_err(internal)?;
        berth_fs::atomic::write(&self.dir.join(format!("{}.json", n.id)), &text).map_err(internal)
    }

    /// This host's networks and the cluster's global ones (those only
    /// while the store answers).
    pub fn all(&self) -> Vec<Network> {
        let mut out: Vec<Network> = self.records().values().cloned().collect();
        if let Some(shared) = &self.shared {
            match shared.records() {
                Ok(g) => out.extend(g),
                Err(e) => eprintln!("berthd: global networks: {e}"),
            }
        }
        out
    }

    /// A network by full ID, name, or unique ID prefix (Docker's order).
    pub fn find(&self, key: &str) -> Result<Network> {
        let r = self.all();
        if let Some(n) = r.iter().find(|n| n.id == key) {
            return Ok(n.clone());
        }
        if let Some(n) = r.iter().find(|n| n.name == key) {
            return Ok(n.clone());
        }
        let matches: Vec<&Network> = r.iter().filter(|n| !key.is_empty() && n.id.starts_with(key)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(NetworkError::NotFound(key.to_string())),
            _ => Err(NetworkError::Invalid(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                matches.len()
            ))),
        }
    }

    /// `network create`.
    pub fn create(&self, registry: &Registry, req: CreateRequest) -> Result<Network> {
        self.make(registry, req, false)
    }

    fn make(&self, registry: &Registry, req: CreateRequest, predefined: bool) -> Result<Network> {
        valid_name(&req.name)?;
        let driver_name = if req.driver.is_empty() {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        if !predefined {
            if PREDEFINED
                .iter()
                .any(|(n, d)| *n == req.name || (*d == driver_name && *d != "bridge"))
            {
                return Err(NetworkError::Forbidden(if PREDEFINED.iter().any(|(n, _)| *n == req.name) {
                    format!("{} is a pre-defined network and cannot be created", req.name)
                } else {
                    format!("only one instance of \"{driver_name}\" network is allowed")
                }));
            }
            if self.find(&req.name).is_ok_and(|n| n.name == req.name) {
                return Err(NetworkError::Conflict(format!("network with name {} already exists", req.name)));
            }
        }
        let driver = registry.network(&driver_name).map_err(|e| match e {
            berth_plugin::DriverError::NotFound { .. } => {
                NetworkError::NoSuch(format!("plugin \"{driver_name}\" not found (no such network driver)"))
            }
            other => NetworkError::NoSuch(other.to_string()),
        })?;
        let ipam_name = req
            .ipam
            .as_ref()
            .map(|i| i.driver.clone())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(default_ipam);
        let remote_ipam = match ipam_name.as_str() {
            DEFAULT_IPAM => None,
            name => Some(
                registry
                    .ipam(name)
                    .map_err(|e| NetworkError::NoSuch(format!("IPAM driver {name:?}: {e}")))?,
            ),
        };
        let global = driver.capabilities().scope == "global";
        if remote_ipam.is_some() && (global || req.enable_ipv6.unwrap_or(false)) {
            return Err(NetworkError::Invalid(format!(
                "IPAM driver {ipam_name:?} serves local IPv4 networks only here"
            )));
        }
        if global && req.enable_ipv6.unwrap_or(false) {
            return Err(NetworkError::Invalid(format!("IPv6 is not supported on {driver_name} networks")));
        }
        let shared = match (&self.shared, global) {
            (Some(s), true) => Some(s),
            (None, true) => {
                return Err(NetworkError::Invalid(format!(
                    "{driver_name} networks are global: start berthd with --cluster-store etcd://HOST:PORT and --cluster-advertise IP"
                )))
            }
            _ => None,
        };
        let id = crate::container::new_id();
        let mut net = Network {
            name: req.name.clone(),
            id: id.clone(),
            created: crate::time::now_rfc3339(),
            driver: driver_name.clone(),
            enable_ipv6: req.enable_ipv6.unwrap_or(false),
            ipam: vec![],
            internal: req.internal,
            attachable: req.attachable,
            options: req.options.clone().unwrap_or_default(),
            labels: req.labels.clone().unwrap_or_default(),
            bridge: String::new(),
            scope: if global { "global" } else { "local" }.into(),
            ipam_driver: ipam_name.clone(),
            ipam_pools: BTreeMap::new(),
        };
        let ipam_options = req.ipam.as_ref().and_then(|i| i.options.clone()).unwrap_or_default();
        let mut asked = req.ipam.and_then(|i| i.config).unwrap_or_default();
        if net.has_addresses() && !asked.iter().any(|c| Subnet::parse(&c.subnet).is_ok_and(|s| !s.is_v6())) {
            asked.insert(0, IpamConfig::default());
        }
        if !net.has_addresses() {
            asked.clear();
        }
        if asked.iter().any(|c| c.subnet.contains(':')) && !net.enable_ipv6 {
            return Err(NetworkError::Invalid(
                "an IPv6 subnet needs IPv6 enabled on the network (--ipv6)".into(),
            ));
        }
        let mut pools = Vec::new();
        // Pools an IPAM driver gave: (pool ID, gateway address).
        let remote_taken: std::cell::RefCell<Vec<(String, String)>> = Default::default();
        let undo = |pools: &[Subnet]| {
            if let Some(ipam) = &remote_ipam {
                for (pool, gateway) in remote_taken.borrow().iter() {
                    release_remote(ipam.as_ref(), pool, gateway);
                }
            }
            for p in pools {
                let _ = match shared {
                    Some(s) => s.release_subnet(p),
                    None => self.ipam.release_pool(p).map_err(from_ipam),
                };
            }
        };
        for c in &asked {
            if c.subnet.is_empty() && (!c.gateway.is_empty() || !c.ip_range.is_empty()) {
                undo(&pools);
                return Err(NetworkError::Invalid("a gateway or an ip-range needs a subnet (--subnet)".into()));
            }
            if let Some(ipam) = &remote_ipam {
                let (config, pool, gateway) = remote_pool(ipam.as_ref(), c, &ipam_options).inspect_err(|_| undo(&pools))?;
                remote_taken.borrow_mut().push((pool.clone(), gateway));
                net.ipam_pools.insert(config.subnet.clone(), pool);
                net.ipam.push(config);
                continue;
            }
            let asked_pool = PoolRequest {
                network: &req.name,
                subnet: Some(c.subnet.as_str()).filter(|s| !s.is_empty()),
                ip_range: Some(c.ip_range.as_str()).filter(|s| !s.is_empty()),
                gateway: Some(c.gateway.as_str()).filter(|s| !s.is_empty()),
            };
            let pool = match shared {
                Some(s) => self.global_pool(s, &id, &asked_pool),
                None => self.ipam.request_pool(&asked_pool).map_err(from_ipam),
            }
            .inspect_err(|_| undo(&pools))?;
            pools.push(pool.subnet);
            net.ipam.push(IpamConfig {
                subnet: pool.subnet.to_string(),
                ip_range: pool.range.map(|r| r.to_string()).unwrap_or_default(),
                gateway: pool.gateway.to_string(),
                auxiliary_addresses: c.auxiliary_addresses.clone(),
            });
        }
        if driver_name == berth_net::bridge::NAME {
            net.bridge = net
                .options
                .get(berth_net::bridge::BRIDGE_NAME_OPTION)
                .cloned()
                .unwrap_or_else(|| format!("br-{}", &id[..12]));
            if let Err(e) = berth_net::firewall::check_name(&net.bridge) {
                undo(&pools);
                return Err(NetworkError::Invalid(format!("bridge name: {e}")));
            }
            if let Some(other) = self.all().iter().find(|n| n.bridge == net.bridge) {
                undo(&pools);
                return Err(NetworkError::Conflict(format!(
                    "bridge {} is already used by network {}",
                    net.bridge, other.name
                )));
            }
        }
        let data = |v6: bool| -> Vec<berth_plugin::network::IpamData> {
            net.ipam
                .iter()
                .filter_map(|c| Some((c, Subnet::parse(&c.subnet).ok()?)))
                .filter(|(_, s)| s.is_v6() == v6)
                .map(|(c, s)| berth_plugin::network::IpamData {
                    address_space: "LocalDefault".into(),
                    pool: c.subnet.clone(),
                    gateway: format!("{}/{}", c.gateway, s.prefix),
                    aux_addresses: Default::default(),
                })
                .collect()
        };
        let mut options: BTreeMap<String, Value> = net.options.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        if !net.bridge.is_empty() {
            options.insert(berth_net::bridge::BRIDGE_NAME_OPTION.into(), json!(net.bridge));
        }
        let made = driver.create_network(&berth_plugin::network::CreateNetworkRequest {
            network_id: id.clone(),
            options,
            ipv4_data: data(false),
            ipv6_data: data(true),
        });
        if let Err(e) = made {
            undo(&pools);
            return Err(from_driver(e));
        }
        let saved = match shared {
            Some(s) => s.save(&net),
            None => self.save(&net),
        };
        if let Err(e) = saved {
            let _ = driver.delete_network(&id);
            undo(&pools);
            return Err(e);
        }
        if shared.is_none() {
            self.records().insert(id, net.clone());
        }
        Ok(net)
    }

    /// A global network's pool from the cluster store, checked as the
    /// local IPAM checks one (gateway and range inside the subnet).
    fn global_pool(&self, shared: &global::Shared, id: &str, req: &PoolRequest) -> Result<berth_net::ipam::Pool> {
        let local: Vec<Subnet> = self.ipam.pools().iter().map(|p| p.subnet).collect();
        let subnet = shared.request_subnet(id, req.subnet, &local)?;
        let checked = (|| {
            let inside = |what: &str, text: &str| -> Result<Subnet> {
                let s = Subnet::parse(text).map_err(from_ipam)?;
                if subnet.contains(s.addr) && s.prefix >= subnet.prefix {
                    Ok(s)
                } else {
                    Err(NetworkError::Invalid(format!("{what} {text} is not in subnet {subnet}")))
                }
            };
            let range = req.ip_range.map(|r| inside("ip-range", r)).transpose()?;
            let gateway = match req.gateway {
                Some(g) => inside("gateway", &format!("{g}/32"))?.addr,
                None => subnet.nth(1).ok_or_else(|| internal(format!("subnet {subnet} is too small")))?,
            };
            Ok(berth_net::ipam::Pool {
                network: req.network.to_string(),
                subnet,
                gateway,
                range,
                allocated: Default::default(),
            })
        })();
        if checked.is_err() {
            let _ = shared.release_subnet(&subnet);
        }
        checked
    }

    fn shared_for(&self, net: &Network) -> Option<&global::Shared> {
        self.shared.as_ref().filter(|_| net.scope == "global")
    }

    /// The host's gateway bridge (Docker's `docker_gwbridge`), made on
    /// first use: the way out for containers whose networks (overlays)
    /// give them none.
    pub fn gateway_bridge(&self, registry: &Registry) -> Result<Network> {
        if let Ok(n) = self.find(GATEWAY_BRIDGE) {
            return Ok(n);
        }
        let req = CreateRequest {
            name: GATEWAY_BRIDGE.into(),
            driver: berth_net::bridge::NAME.into(),
            // As Docker's: containers reach out through it, not each other.
            options: Some(BTreeMap::from([
                (berth_net::bridge::BRIDGE_NAME_OPTION.to_string(), GATEWAY_BRIDGE.to_string()),
                (berth_net::bridge::ICC_OPTION.to_string(), "false".to_string()),
            ])),
            ..Default::default()
        };
        match self.make(registry, req, false) {
            // Made meanwhile by another start.
            Err(NetworkError::Conflict(_)) => self.find(GATEWAY_BRIDGE),
            r => r,
        }
    }

    /// `network rm`: the caller has checked that no container is on it.
    pub fn remove(&self, registry: &Registry, key: &str) -> Result<Network> {
        let net = self.find(key)?;
        if net.predefined() {
            return Err(NetworkError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                net.name
            )));
        }
        // A driver refusing (endpoints elsewhere) keeps the network; one
        // gone or failing is reported and the network removed, as Docker does.
        match registry.network(&net.driver).map(|d| d.delete_network(&net.id)) {
            Ok(Ok(())) | Ok(Err(berth_plugin::DriverError::NotFound { .. })) => {}
            Ok(Err(e @ berth_plugin::DriverError::Conflict { .. })) => return Err(from_driver(e)),
            Ok(Err(e)) | Err(e) => eprintln!("berthd: remove network {}: driver {}: {e}", net.name, net.driver),
        }
        if let Some(shared) = self.shared_for(&net) {
            shared.remove(&net)?;
            return Ok(net);
        }
        if net.ipam_driver != DEFAULT_IPAM {
            match registry.ipam(&net.ipam_driver) {
                Ok(ipam) => {
                    for c in &net.ipam {
                        release_remote(ipam.as_ref(), net.ipam_pools.get(&c.subnet).map_or("", String::as_str), &c.gateway);
                    }
                }
                Err(e) => eprintln!(
                    "berthd: network {}: its pools stay with IPAM driver {}: {e}",
                    net.name, net.ipam_driver
                ),
            }
        } else {
            for s in net.subnets() {
                self.ipam.release_pool(&s).map_err(from_ipam)?;
            }
        }
        let file = self.dir.join(format!("{}.json", net.id));
        std::fs::remove_file(&file).map_err(|e| internal(format!("remove {}: {e}", file.display())))?;
        self.records().remove(&net.id);
        Ok(net)
    }

    /// Puts a container's namespace (`sandbox`) on `net` as interface
    /// `ifname`: an address, the driver's endpoint, its join. `ep` is
    /// filled in with what it got; on failure nothing is left taken.
    pub fn join(
        &self,
        registry: &Registry,
        net: &Network,
        ep: &mut Endpoint,
        sandbox: &Path,
        ifname: &str,
        default_route: bool,
    ) -> Result<()> {
        use berth_plugin::network::{CreateEndpointRequest, EndpointInterface, JoinRequest};
        if !net.has_addresses() {
            return Ok(());
        }
        let driver = registry.network(&net.driver).map_err(from_driver)?;
        let v4 = net
            .subnet_v4()
            .ok_or_else(|| internal(format!("network {} has no IPv4 subnet", net.name)))?;
        let endpoint_id = crate::container::new_id();
        let want = Some(ep.ipv4_requested.as_str()).filter(|s| !s.is_empty());
        let ip = match self.shared_for(net) {
            None if net.ipam_driver != DEFAULT_IPAM => {
                let ipam = registry.ipam(&net.ipam_driver).map_err(from_driver)?;
                let pool = net
                    .ipam_pools
                    .get(&v4.to_string())
                    .ok_or_else(|| internal(format!("network {} has no pool for {v4}", net.name)))?;
                let got = ipam
                    .request_address(&berth_plugin::ipam::AddressRequest {
                        pool_id: pool.clone(),
                        address: want.unwrap_or_default().to_string(),
                        options: BTreeMap::new(),
                    })
                    .map_err(from_driver)?;
                let ip = got.address.split('/').next().unwrap_or_default().parse::<IpAddr>();
                match ip {
                    Ok(ip) if v4.contains(ip) => ip,
                    _ => {
                        let _ = ipam.release_address(pool, got.address.split('/').next().unwrap_or_default());
                        return Err(internal(format!(
                            "IPAM driver {} answered address {:?}, not one of {v4}",
                            net.ipam_driver, got.address
                        )));
                    }
                }
            }
            Some(shared) => {
                let c = net.ipam.iter().find(|c| c.subnet == v4.to_string()).cloned().unwrap_or_default();
                let gateway: IpAddr = c.gateway.parse().map_err(internal)?;
                let range = Subnet::parse(&c.ip_range).ok();
                let want = want
                    .map(|w| {
                        w.parse::<IpAddr>()
                            .map_err(|_| NetworkError::Invalid(format!("invalid address {w:?}")))
                    })
                    .transpose()?;
                shared.request_address(&net.id, &v4, range, gateway, want, &endpoint_id)?
            }
            None => self.ipam.request_address(&v4, want).map_err(from_ipam)?,
        };
        let v6 = net.subnet_v6().filter(|_| net.enable_ipv6);
        let ip6 = match v6 {
            Some(s) => match self
                .ipam
                .request_address(&s, Some(ep.ipv6_requested.as_str()).filter(|s| !s.is_empty()))
            {
                Ok(a) => Some((s, a)),
                Err(e) => {
                    self.release_address(registry, net, &v4, ip);
                    return Err(from_ipam(e));
                }
            },
            None => None,
        };
        let release = || {
            self.release_address(registry, net, &v4, ip);
            if let Some((s, a)) = ip6 {
                let _ = self.ipam.release_address(&s, a);
            }
        };
        let made = driver.create_endpoint(&CreateEndpointRequest {
            network_id: net.id.clone(),
            endpoint_id: endpoint_id.clone(),
            interface: Some(EndpointInterface {
                address: format!("{ip}/{}", v4.prefix),
                address_ipv6: ip6.map(|(s, a)| format!("{a}/{}", s.prefix)).unwrap_or_default(),
                mac_address: String::new(),
            }),
            options: Default::default(),
        });
        let chosen = match made {
            Ok(c) => c.unwrap_or_default(),
            Err(e) => {
                release();
                return Err(from_driver(e));
            }
        };
        let options = BTreeMap::from([
            (berth_net::bridge::IFNAME_OPTION.to_string(), json!(ifname)),
            (berth_net::bridge::DEFAULT_ROUTE_OPTION.to_string(), json!(default_route)),
        ]);
        let joined = driver.join(&JoinRequest {
            network_id: net.id.clone(),
            endpoint_id: endpoint_id.clone(),
            sandbox_key: sandbox.display().to_string(),
            options,
        });
        let answer = match joined {
            Ok(a) => a,
            Err(e) => {
                let _ = driver.delete_endpoint(&net.id, &endpoint_id);
                release();
                return Err(from_driver(e));
            }
        };
        let mac = if chosen.mac_address.is_empty() {
            berth_net::bridge::mac_of(ip)
        } else {
            chosen.mac_address
        };
        // A remote driver makes the interface outside and names it; the
        // engine moves it in and sets it up, as Docker's does.
        if let Some(i) = answer.interface_name.as_ref().filter(|i| !i.src_name.is_empty()) {
            let address6 = ip6.map(|(s, a)| format!("{a}/{}", s.prefix));
            let adopted = berth_net::endpoint::adopt(
                sandbox,
                &berth_net::endpoint::Adoption {
                    src: &i.src_name,
                    ifname,
                    mac: &mac,
                    address: &format!("{ip}/{}", v4.prefix),
                    address6: address6.as_deref(),
                    gateway: answer.gateway.parse().ok().filter(|_| default_route),
                    gateway6: answer.gateway_ipv6.parse().ok().filter(|_| default_route),
                    routes: &answer.static_routes,
                },
            );
            if let Err(e) = adopted {
                let _ = driver.leave(&net.id, &endpoint_id);
                let _ = driver.delete_endpoint(&net.id, &endpoint_id);
                release();
                return Err(internal(format!(
                    "network {}: the driver's interface {}: {e}",
                    net.name, i.src_name
                )));
            }
            ep.moved = Some(MovedLink {
                src: i.src_name.clone(),
                name: ifname.to_string(),
            });
        }
        ep.endpoint_id = endpoint_id;
        ep.ip_address = ip.to_string();
        ep.prefix = v4.prefix;
        if let Some((s, a)) = ip6 {
            ep.ipv6_address = a.to_string();
            ep.ipv6_prefix = s.prefix;
        }
        ep.gateway = answer.gateway;
        ep.ipv6_gateway = answer.gateway_ipv6;
        ep.mac_address = mac;
        Ok(())
    }

    /// Takes a container off the network it joined; what went wrong is
    /// reported, and the rest still done. A link a remote driver made goes
    /// back out of `sandbox` (the container's namespace) first, under its
    /// own name, as Docker gives it back.
    pub fn leave(&self, registry: &Registry, ep: &mut Endpoint, sandbox: Option<&Path>) {
        if !ep.joined() {
            return;
        }
        if let (Some(l), Some(sb)) = (&ep.moved, sandbox) {
            if let Err(e) = berth_net::endpoint::give_back(sb, &l.name, &l.src) {
                eprintln!("berthd: give link {} back to its driver as {}: {e}", l.name, l.src);
            }
        }
        if let Ok(net) = self.find(&ep.network_id) {
            if let Ok(driver) = registry.network(&net.driver) {
                if let Err(e) = driver.leave(&net.id, &ep.endpoint_id) {
                    eprintln!("berthd: leave network {}: {e}", net.name);
                }
                if let Err(e) = driver.delete_endpoint(&net.id, &ep.endpoint_id) {
                    eprintln!("berthd: delete endpoint on {}: {e}", net.name);
                }
            }
            for (subnet, addr) in [(net.subnet_v4(), &ep.ip_address), (net.subnet_v6(), &ep.ipv6_address)] {
                if let (Some(s), Ok(a)) = (subnet, addr.parse::<IpAddr>()) {
                    self.release_address(registry, &net, &s, a);
                }
            }
            if let Some(shared) = self.shared_for(&net) {
                let _ = shared.forget_names(&net.id, &ep.endpoint_id);
            }
        }
        ep.clear();
    }

    fn release_address(&self, registry: &Registry, net: &Network, subnet: &Subnet, ip: IpAddr) {
        let released = match (self.shared_for(net), net.ipam_driver.as_str()) {
            (Some(shared), _) => shared.release_address(&net.id, ip),
            (None, DEFAULT_IPAM) => self.ipam.release_address(subnet, ip).map_err(from_ipam),
            (None, name) => registry.ipam(name).map_err(from_driver).and_then(|ipam| {
                let pool = net.ipam_pools.get(&subnet.to_string()).cloned().unwrap_or_default();
                ipam.release_address(&pool, &ip.to_string()).map_err(from_driver)
            }),
        };
        if let Err(e) = released {
            eprintln!("berthd: release {ip} on {}: {e}", net.name);
        }
    }

    /// Gives back this host's addresses that no endpoint holds (taken by
    /// a join that a crash cut short): `held` are those the container
    /// records name.
    pub fn release_unheld(&self, held: &std::collections::BTreeSet<IpAddr>) {
        for pool in self.ipam.pools() {
            for ip in pool.allocated.iter().filter(|ip| **ip != pool.gateway && !held.contains(*ip)) {
                match self.ipam.release_address(&pool.subnet, *ip) {
                    Ok(()) => eprintln!("berthd: released {ip} of {}, held by no container", pool.subnet),
                    Err(e) => eprintln!("berthd: release {ip}: {e}"),
                }
            }
        }
    }

    /// Tells every host's DNS the names of an endpoint on a global network
    /// (local networks' names come from this host's records).
    pub fn publish_names(&self, net: &Network, ep: &Endpoint, names: Vec<String>) -> Result<()> {
        let Some(shared) = self.shared_for(net) else { return Ok(()) };
        let addresses = [&ep.ip_address, &ep.ipv6_address].iter().filter_map(|a| a.parse().ok()).collect();
        shared.set_names(&net.id, &ep.endpoint_id, &global::Names { names, addresses })
    }

    /// Every container's names on a global network, on every host.
    pub fn global_names(&self, net: &Network) -> Vec<global::Names> {
        self.shared_for(net).and_then(|s| s.names(&net.id).ok()).unwrap_or_default()
    }

    /// Held while a container's host ports are chosen and recorded, so
    /// two starts cannot take one port.
    pub fn port_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes berth's nftables table say what the bridge networks and the
    /// published ports (read under the table's lock, so a later state is
    /// never overwritten by an earlier one) need; nothing is run when
    /// that has not changed.
    pub fn sync_firewall(&self, published: impl FnOnce() -> Vec<Published>) -> Result<()> {
        use berth_net::firewall::{NetworkRules, PortMapping};
        let networks: Vec<NetworkRules> = self
            .all()
            .iter()
            .filter(|n| !n.bridge.is_empty())
            .filter_map(|n| {
                Some(NetworkRules {
                    bridge: n.bridge.clone(),
                    subnet: n.subnet_v4()?.to_string(),
                    subnet6: n.subnet_v6().filter(|_| n.enable_ipv6).map(|s| s.to_string()),
                    internal: n.internal,
                })
            })
            .collect();
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let mut mappings = Vec::new();
        for p in published() {
            mappings.push(PortMapping {
                proto: p.proto,
                host_ip: Some(p.host_ip.as_str())
                    .filter(|h| !h.is_empty() && *h != "0.0.0.0")
                    .and_then(|h| h.parse().ok()),
                host_port: p.host_port,
                container_ip: p.container_ip.parse().map_err(internal)?,
                container_port: p.container_port,
            });
        }
        mappings.sort();
        let done = match applied.as_ref() {
            Some((nets, ports)) if *nets == networks && *ports == mappings => return Ok(()),
            Some((nets, ports)) if *nets == networks => berth_net::firewall::update_ports(None, ports, &mappings),
            _ => berth_net::firewall::apply(None, &networks, &mappings),
        };
        if let Err(e) = done {
            // What the table says is not known now: written whole next time.
            *applied = None;
            return Err(internal(format!("nftables: {e}")));
        }
        *applied = Some((networks, mappings));
        Ok(())
    }
}
