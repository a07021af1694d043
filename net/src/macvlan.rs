//! The `macvlan` network driver: each endpoint a macvlan link on the
//! network's parent interface (`-o parent=IF`), made straight inside the
//! container's namespace, so containers appear on the parent's segment
//! with MACs of their own. Modes as the kernel's: bridge (the default),
//! private, vepa and passthru (`-o macvlan_mode=`). `parent=IF.VLAN`
//! makes the 802.1q subinterface when it is missing and removes it with
//! the network. The gateway is the segment's router, not the host's.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_plugin::error::{DriverError, Result};
use berth_plugin::network::*;
use berth_plugin::NetworkDriver;
use serde::{Deserialize, Serialize};

use crate::bridge::{DEFAULT_ROUTE_OPTION, IFNAME_OPTION, MTU_OPTION};
use crate::endpoint::{configure, driver_err, invalid, parse_cidr, StateFile};
use crate::netlink::Netlink;

pub const NAME: &str = "macvlan";
pub const PARENT_OPTION: &str = "parent";
pub const MODE_OPTION: &str = "macvlan_mode";

/// The kernel's MACVLAN_MODE_* bit for a mode's name.
fn mode_bit(mode: &str) -> Option<u32> {
    match mode {
        "private" => Some(1),
        "vepa" => Some(2),
        "bridge" => Some(4),
        "passthru" => Some(8),
        _ => None,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Network {
    parent: String,
    mode: String,
    /// The VLAN subinterface this driver made (removed with the network).
    made_vlan: bool,
    gateway: IpAddr,
    mtu: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Endpoint {
    network: String,
    address: String,
    mac: String,
    /// Where it was joined: the sandbox and the interface's name there.
    joined: Option<(PathBuf, String)>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    networks: BTreeMap<String, Network>,
    endpoints: BTreeMap<String, Endpoint>,
}

pub struct MacvlanDriver {
    state: StateFile<State>,
    /// The namespace the parents live in; `None`: this process's.
    namespace: Option<PathBuf>,
}

impl MacvlanDriver {
    pub fn new(home: &Path, namespace: Option<PathBuf>) -> Result<MacvlanDriver> {
        let driver = MacvlanDriver {
            state: StateFile::open(home)?,
            namespace,
        };
        driver.restore()?;
        Ok(driver)
    }

    fn netlink(&self) -> Result<Netlink> {
        crate::endpoint::netlink_in(self.namespace.as_deref())
    }

    /// After a reboot: the VLAN subinterfaces it made come back; endpoints
    /// whose sandbox is gone are no longer joined.
    fn restore(&self) -> Result<()> {
        let mut s = self.state.lock();
        if s.networks.is_empty() {
            return Ok(());
        }
        let mut nl = self.netlink()?;
        for n in s.networks.values().filter(|n| n.made_vlan) {
            if nl.index(&n.parent).is_err() {
                if let Some((base, id)) = split_vlan(&n.parent) {
                    let _ = nl
                        .add_vlan(&n.parent, base, id)
                        .and_then(|_| nl.set_link(&n.parent, None, None, true));
                }
            }
        }
        let mut changed = false;
        for e in s.endpoints.values_mut() {
            if e.joined.as_ref().is_some_and(|(sandbox, _)| !sandbox.exists()) {
                e.joined = None;
                changed = true;
            }
        }
        if changed {
            self.state.save(&s)?;
        }
        Ok(())
    }
}

/// `eth0.30` → (`eth0`, 30).
fn split_vlan(parent: &str) -> Option<(&str, u16)> {
    let (base, id) = parent.rsplit_once('.')?;
    let id: u16 = id.parse().ok().filter(|v| (1..=4094).contains(v))?;
    Some((base, id))
}

fn option<'a>(req: &'a CreateNetworkRequest, key: &str) -> Option<&'a str> {
    req.options.get(key).and_then(|v| v.as_str()).filter(|s| !s.is_empty())
}

impl NetworkDriver for MacvlanDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: "local".into(),
            connectivity_scope: "global".into(),
        }
    }

    fn create_network(&self, req: &CreateNetworkRequest) -> Result<()> {
        let parent = option(req, PARENT_OPTION)
            .ok_or_else(|| invalid("-o parent", "a macvlan network needs a parent interface (-o parent=IF)"))?
            .to_string();
        if parent.len() > 15 || parent.contains('/') || parent.contains(char::is_whitespace) {
            return Err(invalid("-o parent", format!("{parent:?} is not an interface name")));
        }
        let mode = option(req, MODE_OPTION).unwrap_or("bridge").to_string();
        if mode_bit(&mode).is_none() {
            return Err(invalid(
                MODE_OPTION,
                format!("{mode:?} is not a macvlan mode (bridge, private, vepa or passthru)"),
            ));
        }
        let mtu = option(req, MTU_OPTION)
            .map(|m| m.parse::<u32>().map_err(|_| invalid(MTU_OPTION, format!("{m:?} is not an MTU"))))
            .transpose()?;
        let v4 = req
            .ipv4_data
            .first()
            .ok_or_else(|| invalid("IPv4Data", "a macvlan network needs an IPv4 pool"))?;
        let (gateway, _) = parse_cidr(&v4.gateway)?;
        let mut s = self.state.lock();
        if let Some((id, _)) = s.networks.iter().find(|(_, n)| n.parent == parent) {
            return Err(DriverError::Conflict {
                kind: "parent interface",
                name: parent,
                reason: format!("already used by network {id}"),
            });
        }
        let mut nl = self.netlink()?;
        let mut made_vlan = false;
        if nl.index(&parent).is_err() {
            let missing = || invalid("-o parent", format!("interface {parent} was not found on the host"));
            let (base, id) = split_vlan(&parent).ok_or_else(missing)?;
            nl.index(base).map_err(|_| missing())?;
            nl.add_vlan(&parent, base, id).map_err(|e| match e.kind() {
                std::io::ErrorKind::Unsupported => DriverError::Driver(format!(
                    "create VLAN interface {parent}: this kernel has no 802.1q VLAN support (CONFIG_VLAN_8021Q)"
                )),
                _ => driver_err(e),
            })?;
            made_vlan = true;
        }
        if let Err(e) = nl.set_link(&parent, None, None, true) {
            if made_vlan {
                let _ = nl.delete_link(&parent);
            }
            return Err(driver_err(e));
        }
        s.networks.insert(
            req.network_id.clone(),
            Network {
                parent,
                mode,
                made_vlan,
                gateway,
                mtu,
            },
        );
        self.state.save(&s)
    }

    fn delete_network(&self, network_id: &str) -> Result<()> {
        let mut s = self.state.lock();
        let n = s.networks.get(network_id).cloned().ok_or_else(|| DriverError::NotFound {
            kind: "network",
            name: network_id.into(),
        })?;
        if let Some((id, _)) = s.endpoints.iter().find(|(_, e)| e.network == network_id && e.joined.is_some()) {
            return Err(DriverError::Conflict {
                kind: "network",
                name: network_id.into(),
                reason: format!("endpoint {id} is still on it"),
            });
        }
        // Endpoints made but never joined (a start cut short by a crash)
        // go with their network.
        s.endpoints.retain(|_, e| e.network != network_id);
        if n.made_vlan {
            self.netlink()?.delete_link(&n.parent).map_err(driver_err)?;
        }
        s.networks.remove(network_id);
        self.state.save(&s)
    }

    fn create_endpoint(&self, req: &CreateEndpointRequest) -> Result<Option<EndpointInterface>> {
        let mut s = self.state.lock();
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
                mac: mac.clone(),
                joined: None,
            },
        );
        self.state.save(&s)?;
        Ok(Some(answer))
    }

    fn delete_endpoint(&self, _network_id: &str, endpoint_id: &str) -> Result<()> {
        let mut s = self.state.lock();
        if s.endpoints.remove(endpoint_id).is_some() {
            self.state.save(&s)?;
        }
        Ok(())
    }

    fn join(&self, req: &JoinRequest) -> Result<JoinResponse> {
        let mut s = self.state.lock();
        let ep = s.endpoints.get(&req.endpoint_id).cloned().ok_or_else(|| DriverError::NotFound {
            kind: "endpoint",
            name: req.endpoint_id.clone(),
        })?;
        let net = s.networks.get(&ep.network).cloned().ok_or_else(|| DriverError::NotFound {
            kind: "network",
            name: ep.network.clone(),
        })?;
        if net.mode == "passthru" && s.endpoints.values().any(|e| e.network == ep.network && e.joined.is_some()) {
            return Err(DriverError::Conflict {
                kind: "network",
                name: ep.network.clone(),
                reason: "a passthru macvlan network takes one container at a time".into(),
            });
        }
        let ifname = req
            .options
            .get(IFNAME_OPTION)
            .and_then(|v| v.as_str())
            .unwrap_or("eth0")
            .to_string();
        let default_route = req.options.get(DEFAULT_ROUTE_OPTION).and_then(|v| v.as_bool()).unwrap_or(true);
        let sandbox = PathBuf::from(&req.sandbox_key);
        let ns = std::fs::File::open(&sandbox).map_err(|e| DriverError::io("open", &sandbox, e))?;
        let mode = mode_bit(&net.mode).unwrap_or(4);
        self.netlink()?
            .add_macvlan(&ifname, &net.parent, mode, net.mtu, Some(std::os::fd::AsRawFd::as_raw_fd(&ns)))
            .map_err(driver_err)?;
        if let Err(e) = configure(&sandbox, &ifname, &ep.mac, &ep.address, default_route.then_some(net.gateway)) {
            if let Ok(mut inner) = Netlink::in_namespace(&sandbox) {
                let _ = inner.delete_link(&ifname);
            }
            return Err(driver_err(e));
        }
        if let Some(e) = s.endpoints.get_mut(&req.endpoint_id) {
            e.joined = Some((sandbox, ifname));
        }
        self.state.save(&s)?;
        Ok(JoinResponse {
            gateway: net.gateway.to_string(),
            ..Default::default()
        })
    }

    fn leave(&self, _network_id: &str, endpoint_id: &str) -> Result<()> {
        let mut s = self.state.lock();
        let Some((sandbox, ifname)) = s.endpoints.get(endpoint_id).and_then(|e| e.joined.clone()) else {
            return Ok(());
        };
        // A sandbox already gone took the link with it.
        if sandbox.exists() {
            if let Ok(mut inner) = Netlink::in_namespace(&sandbox) {
                inner.delete_link(&ifname).map_err(driver_err)?;
            }
        }
        if let Some(e) = s.endpoints.get_mut(endpoint_id) {
            e.joined = None;
        }
        self.state.save(&s)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn vlan_parents_and_modes_parse() {
        assert_eq!(super::split_vlan("eth0.30"), Some(("eth0", 30)));
        assert_eq!(super::split_vlan("eth0.5000"), None);
        assert_eq!(super::split_vlan("eth0"), None);
        assert_eq!(super::mode_bit("passthru"), Some(8));
        assert_eq!(super::mode_bit("source"), None);
    }
}
