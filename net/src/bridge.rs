//! The `bridge` network driver: each network a Linux bridge holding its
//! gateway address; each endpoint a veth pair, one end on the bridge, the
//! other put straight into the container's namespace as `eth0` with its
//! MAC, address and default route (so `join` answers no interface for
//! the engine to move). Links are made over rtnetlink ([`crate::netlink`])
//! in the namespace the driver works in: the host's, or for tests one of
//! their own. State (networks and endpoints) is kept in `<home>/state.json`,
//! written atomically.
//!
//! NAT, isolation and port publishing are the engine's, through
//! [`crate::firewall`]: the driver only makes links and addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_plugin::error::{DriverError, Result};
use berth_plugin::network::*;
use berth_plugin::NetworkDriver;
use serde::{Deserialize, Serialize};

use crate::endpoint::{configure, configure_v6, driver_err, invalid, parse_cidr, StateFile};
use crate::netlink::Netlink;

pub use crate::endpoint::mac_of;

pub const NAME: &str = "bridge";

/// The option naming the Linux bridge (Docker's).
pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";
/// The option setting the MTU (Docker's).
pub const MTU_OPTION: &str = "com.docker.network.driver.mtu";
/// The option turning traffic between the network's containers off
/// (Docker's; the gateway bridge of overlays has it off).
pub const ICC_OPTION: &str = "com.docker.network.bridge.enable_icc";
/// Join option: the interface's name in the sandbox (default `eth0`).
pub const IFNAME_OPTION: &str = "com.berth.ifname";
/// Join option: `false` leaves the sandbox's default route alone (a
/// container's second network).
pub const DEFAULT_ROUTE_OPTION: &str = "com.berth.default-route";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Network {
    bridge: String,
    gateway: IpAddr,
    prefix: u8,
    /// The IPv6 gateway and prefix, on a network with an IPv6 subnet.
    #[serde(default)]
    gateway6: Option<(IpAddr, u8)>,
    mtu: Option<u32>,
    /// Containers may talk to each other (else their ports are isolated).
    #[serde(default = "yes")]
    icc: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Endpoint {
    network: String,
    /// `ADDR/PREFIX`.
    address: String,
    /// `ADDR/PREFIX`, or empty.
    #[serde(default)]
    address6: String,
    mac: String,
    /// The host end of the veth pair, once joined.
    host_if: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    networks: BTreeMap<String, Network>,
    endpoints: BTreeMap<String, Endpoint>,
}

pub struct BridgeDriver {
    state: StateFile<State>,
    /// The namespace links are made in; `None`: this process's.
    namespace: Option<PathBuf>,
}

impl BridgeDriver {
    /// A driver keeping its state under `home`, making links in the
    /// namespace pinned at `namespace` (`None`: the caller's).
    pub fn new(home: &Path, namespace: Option<PathBuf>) -> Result<BridgeDriver> {
        let driver = BridgeDriver {
            state: StateFile::open(home)?,
            namespace,
        };
        driver.restore()?;
        Ok(driver)
    }

    /// Makes the links agree with the state after a reboot or a crash:
    /// a network whose bridge is gone gets it again; an endpoint whose
    /// host link is gone (its sandbox went) is no longer joined.
    fn restore(&self) -> Result<()> {
        let mut s = self.state();
        if s.networks.is_empty() && s.endpoints.is_empty() {
            return Ok(());
        }
        let mut nl = self.netlink()?;
        let mut changed = false;
        for n in s.networks.values() {
            if nl.index(&n.bridge).is_err() {
                self.make_bridge(&mut nl, n)?;
            }
        }
        for e in s.endpoints.values_mut() {
            if e.host_if.as_ref().is_some_and(|h| nl.index(h).is_err()) {
                e.host_if = None;
                changed = true;
            }
        }
        if changed {
            self.save(&s)?;
        }
        Ok(())
    }

    /// The bridge of `n`, with its gateway address, up; forwarding on.
    fn make_bridge(&self, nl: &mut Netlink, n: &Network) -> Result<()> {
        nl.add_bridge(&n.bridge, n.mtu).map_err(driver_err)?;
        let made = nl
            .add_address(&n.bridge, n.gateway, n.prefix)
            .and_then(|_| match n.gateway6 {
                Some((g, p)) => nl.add_address(&n.bridge, g, p),
                None => Ok(()),
            })
            .and_then(|_| nl.set_link(&n.bridge, None, Some(crate::endpoint::random_mac()), true))
            .and_then(|_| {
                // Published ports reached on 127.0.0.1 are routed to the
                // bridge only with route_localnet; containers reach out
                // only with forwarding (both per namespace, as Docker sets).
                crate::netns::sysctl(
                    self.namespace.as_deref(),
                    &format!("net/ipv4/conf/{}/route_localnet", n.bridge),
                    "1",
                )?;
                crate::netns::sysctl(self.namespace.as_deref(), "net/ipv4/ip_forward", "1")?;
                if n.gateway6.is_some() {
                    crate::netns::sysctl(self.namespace.as_deref(), "net/ipv6/conf/all/forwarding", "1")?;
                }
                Ok(())
            });
        if let Err(e) = made {
            let _ = nl.delete_link(&n.bridge);
            return Err(driver_err(e));
        }
        Ok(())
    }

    /// The Linux bridge of network `network_id`.
    pub fn bridge_of(&self, network_id: &str) -> Option<String> {
        self.state().networks.get(network_id).map(|n| n.bridge.clone())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock()
    }

    fn save(&self, s: &State) -> Result<()> {
        self.state.save(s)
    }

    fn netlink(&self) -> Result<Netlink> {
        crate::endpoint::netlink_in(self.namespace.as_deref())
    }
}

impl NetworkDriver for BridgeDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: "local".into(),
            connectivity_scope: "local".into(),
        }
    }

    fn create_network(&self, req: &CreateNetworkRequest) -> Result<()> {
        let v4 = req
            .ipv4_data
            .first()
            .ok_or_else(|| invalid("IPv4Data", "a bridge network needs an IPv4 pool"))?;
        let (gateway, prefix) = parse_cidr(&v4.gateway)?;
        let gateway6 = req.ipv6_data.first().map(|v6| parse_cidr(&v6.gateway)).transpose()?;
        let bridge = match req.options.get(BRIDGE_NAME_OPTION).and_then(|v| v.as_str()) {
            Some(b) => b.to_string(),
            None => format!("br-{}", &req.network_id[..12.min(req.network_id.len())]),
        };
        if bridge.is_empty() || bridge.len() > 15 || bridge.contains('/') || bridge.contains(char::is_whitespace) {
            return Err(invalid(
                BRIDGE_NAME_OPTION,
                format!("{bridge:?} is not an interface name (at most 15 characters)"),
            ));
        }
        let mtu = match req.options.get(MTU_OPTION) {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(|s| s.parse().ok())
                    .or_else(|| v.as_u64().map(|n| n as u32))
                    .filter(|m: &u32| (68..=65535).contains(m))
                    .ok_or_else(|| invalid(MTU_OPTION, format!("{v} is not an MTU between 68 and 65535")))?,
            ),
        };
        let mut s = self.state();
        if let Some((id, _)) = s.networks.iter().find(|(_, n)| n.bridge == bridge) {
            return Err(DriverError::Conflict {
                kind: "bridge",
                name: bridge.clone(),
                reason: format!("already used by network {id}"),
            });
        }
        let icc = !matches!(req.options.get(ICC_OPTION).and_then(|v| v.as_str()), Some("false"));
        let network = Network {
            bridge,
            gateway,
            prefix,
            gateway6,
            mtu,
            icc,
        };
        let mut nl = self.netlink()?;
        self.make_bridge(&mut nl, &network)?;
        s.networks.insert(req.network_id.clone(), network);
        self.save(&s)
    }

    fn delete_network(&self, network_id: &str) -> Result<()> {
        let mut s = self.state();
        let n = s.networks.get(network_id).cloned().ok_or_else(|| DriverError::NotFound {
            kind: "network",
            name: network_id.into(),
        })?;
        if let Some((id, _)) = s.endpoints.iter().find(|(_, e)| e.network == network_id && e.host_if.is_some()) {
            return Err(DriverError::Conflict {
                kind: "network",
                name: network_id.into(),
                reason: format!("endpoint {id} is still on it"),
            });
        }
        // Endpoints made but never joined (a start cut short by a crash)
        // go with their network.
        s.endpoints.retain(|_, e| e.network != network_id);
        self.netlink()?.delete_link(&n.bridge).map_err(driver_err)?;
        s.networks.remove(network_id);
        self.save(&s)
    }

    fn create_endpoint(&self, req: &CreateEndpointRequest) -> Result<Option<EndpointInterface>> {
        let mut s = self.state();
        if !s.networks.contains_key(&req.network_id) {
            return Err(DriverError::NotFound {
                kind: "network",
                name: req.network_id.clone(),
            });
        }
        let asked = req.interface.clone().unwrap_or_default();
        let (mac, answer) = crate::endpoint::chosen_mac(&asked)?;
        s.endpoints.insert(
            req.endpoint_id.clone(),
            Endpoint {
                network: req.network_id.clone(),
                address: asked.address.clone(),
                address6: asked.address_ipv6.clone(),
                mac,
                host_if: None,
            },
        );
        self.save(&s)?;
        Ok(Some(answer))
    }

    fn delete_endpoint(&self, _network_id: &str, endpoint_id: &str) -> Result<()> {
        let mut s = self.state();
        if s.endpoints.remove(endpoint_id).is_some() {
            self.save(&s)?;
        }
        Ok(())
    }

    fn join(&self, req: &JoinRequest) -> Result<JoinResponse> {
        let mut s = self.state();
        let ep = s.endpoints.get(&req.endpoint_id).cloned().ok_or_else(|| DriverError::NotFound {
            kind: "endpoint",
            name: req.endpoint_id.clone(),
        })?;
        let net = s.networks.get(&ep.network).cloned().ok_or_else(|| DriverError::NotFound {
            kind: "network",
            name: ep.network.clone(),
        })?;
        let ifname = req
            .options
            .get(IFNAME_OPTION)
            .and_then(|v| v.as_str())
            .unwrap_or("eth0")
            .to_string();
        let default_route = req.options.get(DEFAULT_ROUTE_OPTION).and_then(|v| v.as_bool()).unwrap_or(true);
        let host_if = format!("vb{}", &req.endpoint_id[..12.min(req.endpoint_id.len())]);
        let sandbox = std::fs::File::open(&req.sandbox_key).map_err(|e| DriverError::io("open", &req.sandbox_key, e))?;
        let mut nl = self.netlink()?;
        nl.add_veth(&host_if, &ifname, net.mtu, Some(std::os::fd::AsRawFd::as_raw_fd(&sandbox)))
            .map_err(driver_err)?;
        let placed = nl
            .index(&net.bridge)
            .and_then(|bridge| nl.set_link(&host_if, Some(bridge), None, true))
            .and_then(|_| if net.icc { Ok(()) } else { nl.isolate_port(&host_if) })
            .and_then(|_| {
                let sandbox = Path::new(&req.sandbox_key);
                configure(sandbox, &ifname, &ep.mac, &ep.address, default_route.then_some(net.gateway))?;
                match net.gateway6.filter(|_| !ep.address6.is_empty()) {
                    Some((gw6, _)) => configure_v6(sandbox, &ifname, &ep.address6, default_route.then_some(gw6)),
                    None => Ok(()),
                }
            });
        if let Err(e) = placed {
            let _ = nl.delete_link(&host_if);
            return Err(driver_err(e));
        }
        if let Some(e) = s.endpoints.get_mut(&req.endpoint_id) {
            e.host_if = Some(host_if);
        }
        self.save(&s)?;
        Ok(JoinResponse {
            gateway: net.gateway.to_string(),
            gateway_ipv6: net.gateway6.map(|(g, _)| g.to_string()).unwrap_or_default(),
            ..Default::default()
        })
    }

    fn leave(&self, _network_id: &str, endpoint_id: &str) -> Result<()> {
        let mut s = self.state();
        let Some(host_if) = s.endpoints.get(endpoint_id).and_then(|e| e.host_if.clone()) else {
            return Ok(());
        };
        // The container's end goes with it.
        self.netlink()?.delete_link(&host_if).map_err(driver_err)?;
        if let Some(e) = s.endpoints.get_mut(endpoint_id) {
            e.host_if = None;
        }
        self.save(&s)
    }
}
