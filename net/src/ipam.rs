//! Address management for networks (Docker's IPAM): a subnet per network
//! (asked for, or the next free one of the default pools), its gateway,
//! an optional range that addresses are handed out from, and the
//! addresses in use, all kept in one state file written atomically on
//! every change.
//!
//! The default pools are Docker's: 172.17.0.0/16 through 172.31.0.0/16,
//! then 192.168.0.0/16 in /20s. IPv6 subnets are used where asked for
//! (`--subnet`); none is picked on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// What went wrong, in words a user can act on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("invalid subnet {0:?}: give an address and a prefix length, as 10.1.0.0/24")]
    BadSubnet(String),
    #[error("invalid address {0:?}")]
    BadAddress(String),
    #[error("subnet {asked} overlaps with {existing}, used by network {network}")]
    Overlap { asked: String, existing: String, network: String },
    #[error("{what} {addr} is not in subnet {subnet}")]
    Outside { what: &'static str, addr: String, subnet: String },
    #[error("address {0} is already in use")]
    InUse(String),
    #[error("no free addresses left in {0}")]
    Exhausted(String),
    #[error("no free subnet left in the default address pools")]
    NoPool,
    #[error("no address pool {0}")]
    NoSuchPool(String),
    #[error("ipam state {path}: {message}")]
    State { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, IpamError>;

/// A subnet: an address and a prefix length, IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    pub addr: IpAddr,
    pub prefix: u8,
}

fn bits(a: IpAddr) -> (u128, u8) {
    match a {
        IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    }
}

fn addr(v: u128, width: u8) -> IpAddr {
    if width == 32 {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

impl Subnet {
    /// `10.1.0.0/24` or `fd00::/64`; host bits are cleared.
    pub fn parse(s: &str) -> Result<Subnet> {
        let bad = || IpamError::BadSubnet(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let a: IpAddr = a.parse().map_err(|_| bad())?;
        let p: u8 = p.parse().map_err(|_| bad())?;
        let (_, width) = bits(a);
        if p > width {
            return Err(bad());
        }
        Ok(Subnet { addr: a, prefix: p }.network_only())
    }

    fn width(&self) -> u8 {
        bits(self.addr).1
    }

    fn mask(&self) -> u128 {
        let w = self.width();
        let host_bits = u32::from(w - self.prefix);
        let all = if w == 32 { u128::from(u32::MAX) } else { u128::MAX };
        if host_bits >= 128 {
            0
        } else {
            all & !((1u128 << host_bits) - 1)
        }
    }

    fn network_only(self) -> Subnet {
        let (v, w) = bits(self.addr);
        Subnet {
            addr: addr(v & self.mask(), w),
            prefix: self.prefix,
        }
    }

    /// First and last address as numbers.
    fn span(&self) -> (u128, u128) {
        let (v, _) = bits(self.addr);
        (
            v,
            v | !self.mask() & if self.width() == 32 { u128::from(u32::MAX) } else { u128::MAX },
        )
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        let (v, w) = bits(a);
        let (lo, hi) = self.span();
        w == self.width() && v >= lo && v <= hi
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let ((a, b), (c, d)) = (self.span(), other.span());
        self.width() == other.width() && a <= d && c <= b
    }

    /// How many addresses it spans (saturating for the widest IPv6 ones).
    pub fn size(&self) -> u128 {
        let (lo, hi) = self.span();
        (hi - lo).saturating_add(1)
    }

    /// The `n`th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let (lo, hi) = self.span();
        lo.checked_add(n).filter(|v| *v <= hi).map(|v| addr(v, self.width()))
    }

    pub fn is_v6(&self) -> bool {
        self.width() == 128
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Subnet, D::Error> {
        let s = String::deserialize(d)?;
        Subnet::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One network's addresses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pool {
    pub network: String,
    pub subnet: Subnet,
    pub gateway: IpAddr,
    /// Where addresses are handed out from (`--ip-range`), else the subnet.
    pub range: Option<Subnet>,
    pub allocated: BTreeSet<IpAddr>,
}

/// What a network asks for.
#[derive(Debug, Clone, Default)]
pub struct PoolRequest<'a> {
    pub network: &'a str,
    pub subnet: Option<&'a str>,
    pub ip_range: Option<&'a str>,
    pub gateway: Option<&'a str>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// By subnet.
    pools: BTreeMap<String, Pool>,
}

/// The address pools of one daemon.
pub struct Ipam {
    path: PathBuf,
    state: Mutex<State>,
}

/// Docker's default address pools: (base, pool prefix, subnet prefix).
const DEFAULT_POOLS: [(&str, u8, u8); 2] = [("172.17.0.0", 12, 16), ("192.168.0.0", 16, 20)];

fn default_subnets() -> impl Iterator<Item = Subnet> {
    DEFAULT_POOLS.iter().flat_map(|(base, pool, size)| {
        let start = bits(base.parse::<IpAddr>().expect("a valid built-in pool")).0;
        let (lo, hi) = Subnet::parse(&format!("{base}/{pool}")).expect("a valid built-in pool").span();
        // 172.17.0.0 within 172.16.0.0/12: the pool starts there.
        let lo = lo.max(start);
        let step = 1u128 << (32 - u32::from(*size));
        (0..)
            .map(move |i| lo + i * step)
            .take_while(move |v| *v <= hi)
            .map(move |v| Subnet {
                addr: addr(v, 32),
                prefix: *size,
            })
    })
}

fn parse_ip(s: &str) -> Result<IpAddr> {
    s.parse().map_err(|_| IpamError::BadAddress(s.to_string()))
}

impl Ipam {
    /// Opens (or starts) the state in `path`.
    pub fn open(path: &Path) -> Result<Ipam> {
        let state = match std::fs::read(path) {
            Ok(text) => serde_json::from_slice(&text).map_err(|e| IpamError::State {
                path: path.into(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => {
                return Err(IpamError::State {
                    path: path.into(),
                    message: e.to_string(),
                })
            }
        };
        Ok(Ipam {
            path: path.to_path_buf(),
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, s: &State) -> Result<()> {
        let text = serde_json::to_vec_pretty(s).map_err(|e| IpamError::State {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        berth_fs::atomic::write(&self.path, &text).map_err(|e| IpamError::State {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    /// A subnet for a network: the one asked for if it overlaps no other,
    /// else the first free default pool; its gateway (asked for, else the
    /// first address) is taken.
    pub fn request_pool(&self, req: &PoolRequest) -> Result<Pool> {
        let mut s = self.state();
        let overlap = |subnet: &Subnet, s: &State| s.pools.values().find(|p| p.subnet.overlaps(subnet)).cloned();
        let subnet = match req.subnet {
            Some(text) => {
                let subnet = Subnet::parse(text)?;
                if let Some(p) = overlap(&subnet, &s) {
                    return Err(IpamError::Overlap {
                        asked: subnet.to_string(),
                        existing: p.subnet.to_string(),
                        network: p.network,
                    });
                }
                subnet
            }
            None => default_subnets().find(|c| overlap(c, &s).is_none()).ok_or(IpamError::NoPool)?,
        };
        let range = req.ip_range.map(Subnet::parse).transpose()?;
        if let Some(r) = range {
            if !subnet.contains(r.addr) || !subnet.contains(r.nth(r.span().1 - r.span().0).unwrap_or(r.addr)) {
                return Err(IpamError::Outside {
                    what: "ip-range",
                    addr: r.to_string(),
                    subnet: subnet.to_string(),
                });
            }
        }
        let gateway = match req.gateway {
            Some(g) => {
                let g = parse_ip(g)?;
                if !subnet.contains(g) {
                    return Err(IpamError::Outside {
                        what: "gateway",
                        addr: g.to_string(),
                        subnet: subnet.to_string(),
                    });
                }
                g
            }
            None => subnet.nth(1).ok_or_else(|| IpamError::Exhausted(subnet.to_string()))?,
        };
        let pool = Pool {
            network: req.network.to_string(),
            subnet,
            gateway,
            range,
            allocated: BTreeSet::from([gateway]),
        };
        s.pools.insert(subnet.to_string(), pool.clone());
        self.save(&s)?;
        Ok(pool)
    }

    /// An address of `subnet`'s pool: `want` if free, else the lowest free
    /// one of the range (never the network, broadcast or gateway address).
    pub fn request_address(&self, subnet: &Subnet, want: Option<&str>) -> Result<IpAddr> {
        let mut s = self.state();
        let pool = s
            .pools
            .get_mut(&subnet.to_string())
            .ok_or_else(|| IpamError::NoSuchPool(subnet.to_string()))?;
        let (lo, hi) = pool.subnet.span();
        let usable = |v: u128| v != lo && (pool.subnet.is_v6() || v != hi);
        let ip = match want {
            Some(w) => {
                let ip = parse_ip(w)?;
                if !pool.subnet.contains(ip) {
                    return Err(IpamError::Outside {
                        what: "address",
                        addr: ip.to_string(),
                        subnet: pool.subnet.to_string(),
                    });
                }
                if pool.allocated.contains(&ip) || !usable(bits(ip).0) {
                    return Err(IpamError::InUse(ip.to_string()));
                }
                ip
            }
            None => {
                let from = pool.range.unwrap_or(pool.subnet);
                let (a, b) = from.span();
                (a..=b)
                    .filter(|v| usable(*v))
                    .map(|v| addr(v, from.width()))
                    .find(|ip| !pool.allocated.contains(ip))
                    .ok_or_else(|| IpamError::Exhausted(from.to_string()))?
            }
        };
        pool.allocated.insert(ip);
        self.save(&s)?;
        Ok(ip)
    }

    /// Gives an address back; one not held is fine.
    pub fn release_address(&self, subnet: &Subnet, ip: IpAddr) -> Result<()> {
        let mut s = self.state();
        if let Some(pool) = s.pools.get_mut(&subnet.to_string()) {
            if ip != pool.gateway && pool.allocated.remove(&ip) {
                self.save(&s)?;
            }
        }
        Ok(())
    }

    /// Gives a network's subnet back with everything in it.
    pub fn release_pool(&self, subnet: &Subnet) -> Result<()> {
        let mut s = self.state();
        if s.pools.remove(&subnet.to_string()).is_some() {
            self.save(&s)?;
        }
        Ok(())
    }

    pub fn pools(&self) -> Vec<Pool> {
        self.state().pools.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipam() -> (tempfile::TempDir, Ipam) {
        let dir = tempfile::tempdir().unwrap();
        let i = Ipam::open(&dir.path().join("ipam.json")).unwrap();
        (dir, i)
    }

    fn req<'a>(network: &'a str, subnet: Option<&'a str>) -> PoolRequest<'a> {
        PoolRequest {
            network,
            subnet,
            ..Default::default()
        }
    }

    #[test]
    fn subnets_parse_and_compare() {
        let s = Subnet::parse("10.1.2.3/24").unwrap();
        assert_eq!(s.to_string(), "10.1.2.0/24");
        assert!(s.contains("10.1.2.255".parse().unwrap()) && !s.contains("10.1.3.0".parse().unwrap()));
        assert!(s.overlaps(&Subnet::parse("10.1.0.0/16").unwrap()));
        assert!(!s.overlaps(&Subnet::parse("10.1.3.0/24").unwrap()));
        assert!(!s.overlaps(&Subnet::parse("fd00::/8").unwrap()));
        let v6 = Subnet::parse("fd00:1::5/64").unwrap();
        assert_eq!(v6.to_string(), "fd00:1::/64");
        assert_eq!(v6.nth(1).unwrap().to_string(), "fd00:1::1");
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/8", "fd00::/129"] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pools_come_from_the_defaults_and_never_overlap() {
        let (_d, i) = ipam();
        assert_eq!(
            i.request_pool(&req("bridge", Some("172.17.0.0/16"))).unwrap().gateway.to_string(),
            "172.17.0.1"
        );
        let next = i.request_pool(&req("one", None)).unwrap();
        assert_eq!(next.subnet.to_string(), "172.18.0.0/16");
        let e = i.request_pool(&req("two", Some("172.18.5.0/24"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "subnet 172.18.5.0/24 overlaps with 172.18.0.0/16, used by network one"
        );
        for _ in 19..=31 {
            i.request_pool(&req("more", None)).unwrap();
        }
        assert_eq!(i.request_pool(&req("past", None)).unwrap().subnet.to_string(), "192.168.0.0/20");
        i.release_pool(&next.subnet).unwrap();
        assert_eq!(i.request_pool(&req("again", None)).unwrap().subnet.to_string(), "172.18.0.0/16");
    }

    #[test]
    fn addresses_are_handed_out_requested_released_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ipam.json");
        let i = Ipam::open(&path).unwrap();
        let p = i
            .request_pool(&PoolRequest {
                network: "n",
                subnet: Some("10.9.0.0/29"),
                ip_range: Some("10.9.0.4/30"),
                gateway: Some("10.9.0.6"),
            })
            .unwrap();
        assert_eq!(p.gateway.to_string(), "10.9.0.6");
        assert_eq!(i.request_address(&p.subnet, None).unwrap().to_string(), "10.9.0.4");
        assert_eq!(i.request_address(&p.subnet, None).unwrap().to_string(), "10.9.0.5");
        // .6 is the gateway, .7 the broadcast address.
        assert_eq!(
            i.request_address(&p.subnet, None).unwrap_err(),
            IpamError::Exhausted("10.9.0.4/30".into())
        );
        assert_eq!(i.request_address(&p.subnet, Some("10.9.0.2")).unwrap().to_string(), "10.9.0.2");
        assert_eq!(
            i.request_address(&p.subnet, Some("10.9.0.2")).unwrap_err(),
            IpamError::InUse("10.9.0.2".into())
        );
        assert!(matches!(
            i.request_address(&p.subnet, Some("10.8.0.2")),
            Err(IpamError::Outside { .. })
        ));
        assert!(matches!(i.request_address(&p.subnet, Some("10.9.0.0")), Err(IpamError::InUse(_))));
        i.release_address(&p.subnet, "10.9.0.4".parse().unwrap()).unwrap();
        drop(i);
        let i = Ipam::open(&path).unwrap();
        assert_eq!(
            i.request_address(&p.subnet, None).unwrap().to_string(),
            "10.9.0.4",
            "state survives reopening"
        );
        assert!(matches!(
            i.request_pool(&PoolRequest {
                network: "m",
                subnet: Some("10.10.0.0/24"),
                gateway: Some("10.11.0.1"),
                ip_range: None
            }),
            Err(IpamError::Outside { what: "gateway", .. })
        ));
        let v6 = i.request_pool(&req("six", Some("fd00:beef::/120"))).unwrap();
        assert_eq!(i.request_address(&v6.subnet, None).unwrap().to_string(), "fd00:beef::2");
    }
}
