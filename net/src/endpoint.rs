//! What the drivers share about an endpoint's interface: the address and
//! MAC text of the plugin protocol, Docker's MAC derivation, configuring
//! the interface once it is inside the sandbox, and the state file each
//! driver keeps its networks and endpoints in.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use berth_plugin::error::{DriverError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::netlink::Netlink;

pub(crate) fn driver_err(e: std::io::Error) -> DriverError {
    DriverError::Driver(e.to_string())
}

pub(crate) fn invalid(what: &str, reason: impl Into<String>) -> DriverError {
    DriverError::InvalidArgument {
        what: what.to_string(),
        reason: reason.into(),
    }
}

/// `02:42:` and the IPv4 address, as Docker derives a container's MAC.
pub fn mac_of(ip: IpAddr) -> String {
    let o = match ip {
        IpAddr::V4(v) => v.octets(),
        IpAddr::V6(v) => {
            let o = v.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

pub(crate) fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<u8> = s.split(':').filter_map(|p| u8::from_str_radix(p, 16).ok()).collect();
    parts
        .try_into()
        .map_err(|_| invalid("mac address", format!("{s:?} is not six hex bytes")))
}

pub(crate) fn parse_cidr(s: &str) -> Result<(IpAddr, u8)> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| invalid("address", format!("{s:?} needs a prefix length")))?;
    let a: IpAddr = a.parse().map_err(|_| invalid("address", format!("{s:?}")))?;
    let p: u8 = p.parse().map_err(|_| invalid("address", format!("{s:?}")))?;
    Ok((a, p))
}

/// Finishes an interface already moved into the sandbox at `sandbox`:
/// its MAC, up, its address (`ADDR/PREFIX`) and, when asked, the
/// default route through `gateway`.
pub(crate) fn configure(sandbox: &Path, ifname: &str, mac: &str, address: &str, gateway: Option<IpAddr>) -> std::io::Result<()> {
    let other = |e: DriverError| std::io::Error::other(e.to_string());
    let mut inner = Netlink::in_namespace(sandbox)?;
    let (ip, prefix) = parse_cidr(address).map_err(other)?;
    inner.set_link(ifname, None, Some(parse_mac(mac).map_err(other)?), true)?;
    inner.add_address(ifname, ip, prefix)?;
    if let Some(gw) = gateway {
        inner.add_default_route(gw)?;
    }
    Ok(())
}

/// Adds an IPv6 address (`ADDR/PREFIX`) to an interface already set up
/// by [`configure`], and when asked the IPv6 default route.
pub(crate) fn configure_v6(sandbox: &Path, ifname: &str, address: &str, gateway: Option<IpAddr>) -> std::io::Result<()> {
    let other = |e: DriverError| std::io::Error::other(e.to_string());
    let mut inner = Netlink::in_namespace(sandbox)?;
    let (ip, prefix) = parse_cidr(address).map_err(other)?;
    inner.add_address(ifname, ip, prefix)?;
    if let Some(gw) = gateway {
        inner.add_default_route(gw)?;
    }
    Ok(())
}

/// An interface a driver made outside the sandbox (Docker's remote
/// network drivers answer a join with its name) and what it gets inside.
#[derive(Debug, Clone, Default)]
pub struct Adoption<'a> {
    /// The link's name where the driver made it (this namespace).
    pub src: &'a str,
    /// Its name in the sandbox.
    pub ifname: &'a str,
    pub mac: &'a str,
    /// `ADDR/PREFIX`.
    pub address: &'a str,
    pub address6: Option<&'a str>,
    /// The default routes to add, when the endpoint gives them.
    pub gateway: Option<IpAddr>,
    pub gateway6: Option<IpAddr>,
    pub routes: &'a [berth_plugin::network::StaticRoute],
}

/// Does for a remote driver's join what Docker's engine does: moves the
/// link into the sandbox at `sandbox` under its name there, then sets its
/// MAC, addresses, routes and the default routes.
pub fn adopt(sandbox: &Path, a: &Adoption) -> std::io::Result<()> {
    let ns = std::fs::File::open(sandbox)?;
    Netlink::new()?.move_link(a.src, std::os::fd::AsRawFd::as_raw_fd(&ns), a.ifname)?;
    let set_up = set_up_adopted(sandbox, a);
    if set_up.is_err() {
        // Not left behind under the container's interface name.
        let _ = Netlink::in_namespace(sandbox).and_then(|mut n| n.delete_link(a.ifname));
    }
    set_up
}

/// Moves link `name` out of the sandbox at `sandbox` into this process's
/// network namespace, renamed `src` (what [`adopt`] took in).
pub fn give_back(sandbox: &Path, name: &str, src: &str) -> std::io::Result<()> {
    let here = std::fs::File::open("/proc/self/ns/net")?;
    Netlink::in_namespace(sandbox)?.move_link(name, std::os::fd::AsRawFd::as_raw_fd(&here), src)
}

/// The interface's MAC, addresses and routes, once moved in.
fn set_up_adopted(sandbox: &Path, a: &Adoption) -> std::io::Result<()> {
    let other = |e: DriverError| std::io::Error::other(e.to_string());
    configure(sandbox, a.ifname, a.mac, a.address, a.gateway)?;
    if let Some(v6) = a.address6 {
        configure_v6(sandbox, a.ifname, v6, a.gateway6)?;
    }
    let mut inner = Netlink::in_namespace(sandbox)?;
    for r in a.routes {
        let dest = parse_cidr(&r.destination).map_err(other)?;
        // Docker's route types: 0 through a next hop, 1 on the link.
        let hop = match r.route_type {
            0 => Some(
                r.next_hop
                    .parse::<IpAddr>()
                    .map_err(|_| std::io::Error::other(format!("static route to {}: bad next hop {:?}", r.destination, r.next_hop)))?,
            ),
            _ => None,
        };
        inner.add_route(dest, hop, hop.is_none().then_some(a.ifname))?;
    }
    Ok(())
}

/// A netlink socket in the namespace pinned at `namespace`, or this
/// process's.
pub(crate) fn netlink_in(namespace: Option<&Path>) -> Result<Netlink> {
    match namespace {
        Some(p) => Netlink::in_namespace(p),
        None => Netlink::new(),
    }
    .map_err(driver_err)
}

/// The MAC an endpoint gets (the asked one, else Docker's from its IPv4
/// address) and what to answer CreateEndpoint with (the MAC, when the
/// driver chose it).
pub(crate) fn chosen_mac(asked: &berth_plugin::network::EndpointInterface) -> Result<(String, berth_plugin::network::EndpointInterface)> {
    let (ip, _) = parse_cidr(&asked.address)?;
    let mac = if asked.mac_address.is_empty() {
        mac_of(ip)
    } else {
        asked.mac_address.clone()
    };
    parse_mac(&mac)?;
    let answer = berth_plugin::network::EndpointInterface {
        mac_address: if asked.mac_address.is_empty() { mac.clone() } else { String::new() },
        ..Default::default()
    };
    Ok((mac, answer))
}

/// A random locally administered unicast MAC, for a bridge: a bridge
/// without an address of its own takes its lowest port's and changes it
/// as ports come and go, under the ARP caches of its containers.
pub(crate) fn random_mac() -> [u8; 6] {
    let mut mac = [0u8; 6];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut mac));
    mac[0] = (mac[0] & 0xfc) | 0x02;
    mac
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A driver's state, kept in one JSON file written atomically on change.
pub(crate) struct StateFile<T> {
    path: PathBuf,
    state: Mutex<T>,
}

impl<T: Serialize + DeserializeOwned + Default> StateFile<T> {
    /// Opens (or starts) `<home>/state.json`.
    pub(crate) fn open(home: &Path) -> Result<StateFile<T>> {
        std::fs::create_dir_all(home).map_err(|e| DriverError::io("create", home, e))?;
        let path = home.join("state.json");
        let state = match std::fs::read(&path) {
            Ok(t) => serde_json::from_slice(&t).map_err(|e| DriverError::Driver(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => T::default(),
            Err(e) => return Err(DriverError::io("read", &path, e)),
        };
        Ok(StateFile {
            path,
            state: Mutex::new(state),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn save(&self, s: &T) -> Result<()> {
        let text = serde_json::to_vec_pretty(s).map_err(|e| DriverError::Driver(e.to_string()))?;
        berth_fs::atomic::write(&self.path, &text).map_err(|e| DriverError::io("write", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn macs_derive_from_addresses() {
        assert_eq!(super::mac_of("172.17.0.2".parse().unwrap()), "02:42:ac:11:00:02");
        assert_eq!(super::parse_mac("02:42:ac:11:00:02").unwrap(), [2, 0x42, 0xac, 0x11, 0, 2]);
        assert!(super::parse_mac("02:42").is_err());
    }
}
