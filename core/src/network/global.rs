//! What global-scope (overlay) networks keep in the cluster store, so every
//! berthd sharing it sees one set of them: the network records, their
//! subnets and addresses (taken with create-if-absent transactions, so
//! two hosts never hand out one address), and the names of the
//! containers on them for the embedded DNS of every host.

use std::net::IpAddr;

use berth_net::etcd::Etcd;
use berth_net::ipam::Subnet;
use serde::{Deserialize, Serialize};

use super::{internal, Network, NetworkError, Result};

const RECORDS: &str = "/berth/networks/";
const SUBNETS: &str = "/berth/ipam/subnets/";
const ADDRESSES: &str = "/berth/ipam/addresses/";
const NAMES: &str = "/berth/dns/";
/// Where global networks get subnets when none is asked for (Docker's
/// overlay default, 10.0.0.0/8 in /24s).
const POOL: (u32, u8) = (0x0a00_0000, 24);

fn store(e: std::io::Error) -> NetworkError {
    NetworkError::Internal(format!("cluster store: {e}"))
}

/// A container's names on a network, as every host's DNS answers them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Names {
    pub names: Vec<String>,
    pub addresses: Vec<IpAddr>,
}

/// The cluster store, as the engine uses it.
pub struct Shared {
    etcd: Etcd,
}

impl Shared {
    pub fn new(url: &str) -> Result<Shared> {
        Ok(Shared {
            etcd: Etcd::new(url).map_err(|e| NetworkError::Invalid(format!("--cluster-store {url}: {e}")))?,
        })
    }

    pub fn records(&self) -> Result<Vec<Network>> {
        let mut out = Vec::new();
        for (key, raw) in self.etcd.list(RECORDS).map_err(store)? {
            let n: Network = serde_json::from_slice(&raw).map_err(|e| internal(format!("{key}: {e}")))?;
            out.push(n);
        }
        Ok(out)
    }

    pub fn save(&self, n: &Network) -> Result<()> {
        let text = serde_json::to_vec(n).map_err(internal)?;
        self.etcd.put(&format!("{RECORDS}{}", n.id), &text).map_err(store)
    }

    /// Forgets network `id`: its record, subnets, addresses and names.
    pub fn remove(&self, n: &Network) -> Result<()> {
        for c in &n.ipam {
            self.etcd.delete(&subnet_key(&c.subnet)).map_err(store)?;
        }
        self.etcd.delete_prefix(&format!("{ADDRESSES}{}/", n.id)).map_err(store)?;
        self.etcd.delete_prefix(&format!("{NAMES}{}/", n.id)).map_err(store)?;
        self.etcd.delete(&format!("{RECORDS}{}", n.id)).map_err(store)
    }

    /// A subnet for network `id`: `asked` if no global network holds one
    /// that overlaps it (nor `local`, the host's own), else the first free
    /// /24 of 10.0.0.0/8.
    pub fn request_subnet(&self, id: &str, asked: Option<&str>, local: &[Subnet]) -> Result<Subnet> {
        let taken: Vec<(Subnet, String)> = self
            .etcd
            .list(SUBNETS)
            .map_err(store)?
            .into_iter()
            .filter_map(|(k, v)| {
                let s = Subnet::parse(&k.trim_start_matches(SUBNETS).replace('_', "/")).ok()?;
                Some((s, String::from_utf8_lossy(&v).into_owned()))
            })
            .collect();
        let clash = |s: &Subnet| {
            taken
                .iter()
                .find(|(t, _)| t.overlaps(s))
                .map(|(t, owner)| format!("{t}, used by network {owner}"))
                .or_else(|| local.iter().find(|t| t.overlaps(s)).map(|t| format!("{t}, used on this host")))
        };
        let candidates: Vec<Subnet> = match asked {
            Some(a) => vec![Subnet::parse(a).map_err(|e| NetworkError::Invalid(e.to_string()))?],
            None => (0..=255u32)
                .filter_map(|n| Subnet::parse(&format!("{}/{}", std::net::Ipv4Addr::from(POOL.0 + (n << 8)), POOL.1)).ok())
                .collect(),
        };
        for s in candidates {
            if let Some(c) = clash(&s) {
                if asked.is_some() {
                    return Err(NetworkError::Conflict(format!("subnet {s} overlaps with {c}")));
                }
                continue;
            }
            if self.etcd.create(&subnet_key(&s.to_string()), id.as_bytes()).map_err(store)? {
                return Ok(s);
            }
        }
        Err(NetworkError::Invalid(
            "no free subnet left in 10.0.0.0/8 for global networks".into(),
        ))
    }

    pub fn release_subnet(&self, s: &Subnet) -> Result<()> {
        self.etcd.delete(&subnet_key(&s.to_string())).map_err(store)
    }

    /// Takes `want` (or the lowest free address of `range`, never the
    /// network, broadcast or `gateway` address) on network `id`.
    pub fn request_address(
        &self,
        id: &str,
        subnet: &Subnet,
        range: Option<Subnet>,
        gateway: IpAddr,
        want: Option<IpAddr>,
        holder: &str,
    ) -> Result<IpAddr> {
        let key = |ip: IpAddr| format!("{ADDRESSES}{id}/{ip}");
        let first = subnet.nth(0);
        let last = subnet.nth(subnet.size() - 1);
        let usable = |ip: IpAddr| Some(ip) != first && Some(ip) != last && ip != gateway;
        if let Some(ip) = want {
            if !subnet.contains(ip) {
                return Err(NetworkError::Invalid(format!("address {ip} is not in subnet {subnet}")));
            }
            if !usable(ip) || !self.etcd.create(&key(ip), holder.as_bytes()).map_err(store)? {
                return Err(NetworkError::Conflict(format!("address {ip} is already in use")));
            }
            return Ok(ip);
        }
        let from = range.unwrap_or(*subnet);
        for n in 0..from.size() {
            let Some(ip) = from.nth(n) else { break };
            if usable(ip) && self.etcd.create(&key(ip), holder.as_bytes()).map_err(store)? {
                return Ok(ip);
            }
        }
        Err(NetworkError::Invalid(format!("no free addresses left in {from}")))
    }

    pub fn release_address(&self, id: &str, ip: IpAddr) -> Result<()> {
        self.etcd.delete(&format!("{ADDRESSES}{id}/{ip}")).map_err(store)
    }

    pub fn set_names(&self, network: &str, endpoint: &str, names: &Names) -> Result<()> {
        let text = serde_json::to_vec(names).map_err(internal)?;
        self.etcd.put(&format!("{NAMES}{network}/{endpoint}"), &text).map_err(store)
    }

    pub fn forget_names(&self, network: &str, endpoint: &str) -> Result<()> {
        self.etcd.delete(&format!("{NAMES}{network}/{endpoint}")).map_err(store)
    }

    /// Every container's names on network `id`, on every host.
    pub fn names(&self, network: &str) -> Result<Vec<Names>> {
        Ok(self
            .etcd
            .list(&format!("{NAMES}{network}/"))
            .map_err(store)?
            .into_iter()
            .filter_map(|(_, raw)| serde_json::from_slice(&raw).ok())
            .collect())
    }
}

fn subnet_key(subnet: &str) -> String {
    format!("{SUBNETS}{}", subnet.replace('/', "_"))
}
