//! The `overlay` network driver: one layer-2 network across hosts, each
//! running its own berthd, carried in VXLAN. What every host must agree
//! on lives in etcd ([`crate::etcd`]): the network (its VNI and subnet)
//! and every endpoint (address, MAC and the VTEP address of its host).
//! On a host, a network with local containers is a bridge (`ov-*`) with a
//! VXLAN link (`vx-*`, no learning, ARP answered from its neighbour
//! table) on it; each container a veth pair on that bridge. For every
//! endpoint on another host a forwarding-database entry (its MAC is
//! behind that VTEP) and a neighbour entry (its IP is at that MAC) are
//! programmed on the VXLAN link, kept in step with etcd by a thread that
//! also removes the local devices of networks gone from etcd.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use berth_plugin::error::{DriverError, Result};
use berth_plugin::network::*;
use berth_plugin::NetworkDriver;
use serde::{Deserialize, Serialize};

use crate::bridge::IFNAME_OPTION;
use crate::endpoint::{configure, driver_err, invalid, parse_cidr, parse_mac, StateFile};
use crate::etcd::Etcd;
use crate::netlink::Netlink;

pub const NAME: &str = "overlay";
/// VXLAN's IANA port.
pub const VXLAN_PORT: u16 = 4789;
/// Room for VXLAN's 50 bytes under a 1500-byte underlay.
pub const MTU: u32 = 1450;
/// VNIs are handed out from here (Docker's first is 4097).
const FIRST_VNI: u32 = 4097;
/// How often remote endpoints are brought in step with etcd.
const SYNC_EVERY: Duration = Duration::from_millis(250);

const NETWORKS: &str = "/berth/overlay/networks/";
const VNIS: &str = "/berth/overlay/vni/";
const ENDPOINTS: &str = "/berth/overlay/endpoints/";

/// Where berthd finds the other hosts: the shared store and this host's
/// address on the underlay (its VTEP).
#[derive(Debug, Clone)]
pub struct Cluster {
    pub store: String,
    pub advertise: Ipv4Addr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SharedNetwork {
    vni: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SharedEndpoint {
    /// `ADDR/PREFIX`.
    address: String,
    mac: String,
    vtep: Ipv4Addr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LocalEndpoint {
    network: String,
    /// The host end of the veth pair, once joined.
    host_if: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LocalState {
    endpoints: BTreeMap<String, LocalEndpoint>,
}

/// A remote endpoint as programmed: its IP, MAC and VTEP.
type Remote = (IpAddr, [u8; 6], Ipv4Addr);

struct Inner {
    cluster: Option<(Etcd, Ipv4Addr)>,
    namespace: Option<PathBuf>,
    local: StateFile<LocalState>,
    /// Remote (IP, MAC, VTEP) entries programmed, by network.
    programmed: Mutex<BTreeMap<String, BTreeSet<Remote>>>,
    /// Held while a network's devices on this host are made or removed,
    /// so two joins (or a join and the sync) never undo each other.
    devices: Mutex<()>,
}

pub struct OverlayDriver {
    inner: Arc<Inner>,
}

fn short(id: &str) -> &str {
    &id[..10.min(id.len())]
}

fn bridge_name(net: &str) -> String {
    format!("ov-{}", short(net))
}

fn vxlan_name(net: &str) -> String {
    format!("vx-{}", short(net))
}

fn store_err(e: std::io::Error) -> DriverError {
    DriverError::Driver(format!("cluster store: {e}"))
}

impl Inner {
    fn etcd(&self) -> Result<(&Etcd, Ipv4Addr)> {
        self.cluster.as_ref().map(|(e, a)| (e, *a)).ok_or_else(|| {
            invalid(
                "driver overlay",
                "overlay networks need a cluster store: start berthd with --cluster-store etcd://HOST:PORT --cluster-advertise IP",
            )
        })
    }

    fn netlink(&self) -> Result<Netlink> {
        crate::endpoint::netlink_in(self.namespace.as_deref())
    }

    fn network(&self, id: &str) -> Result<SharedNetwork> {
        let (etcd, _) = self.etcd()?;
        let raw = etcd
            .get(&format!("{NETWORKS}{id}"))
            .map_err(store_err)?
            .ok_or_else(|| DriverError::NotFound {
                kind: "network",
                name: id.to_string(),
            })?;
        serde_json::from_slice(&raw).map_err(|e| DriverError::Driver(format!("network {id} in the cluster store: {e}")))
    }

    /// The network's bridge and VXLAN link on this host, made if missing.
    fn ensure_local(&self, id: &str) -> Result<()> {
        let _devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let net = self.network(id)?;
        let (_, vtep) = self.etcd()?;
        let mut nl = self.netlink()?;
        let (br, vx) = (bridge_name(id), vxlan_name(id));
        if nl.index(&br).is_ok() && nl.index(&vx).is_ok() {
            return Ok(());
        }
        let _ = nl.delete_link(&vx);
        let _ = nl.delete_link(&br);
        let made = nl
            .add_bridge(&br, Some(MTU))
            .and_then(|_| nl.add_vxlan(&vx, net.vni, vtep, VXLAN_PORT, Some(MTU)))
            .and_then(|_| nl.index(&br))
            .and_then(|b| nl.set_link(&vx, Some(b), None, true))
            .and_then(|_| nl.set_link(&br, None, Some(crate::endpoint::random_mac()), true));
        if let Err(e) = made {
            let _ = nl.delete_link(&vx);
            let _ = nl.delete_link(&br);
            return Err(driver_err(e));
        }
        self.programmed.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        Ok(())
    }

    fn remove_local(&self, id: &str) {
        let _devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(mut nl) = self.netlink() {
            let _ = nl.delete_link(&vxlan_name(id));
            let _ = nl.delete_link(&bridge_name(id));
        }
        self.programmed.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Programs network `id`'s remote endpoints on its VXLAN link, and
    /// unprograms those gone.
    fn sync_network(&self, id: &str) -> Result<()> {
        let (etcd, vtep) = self.etcd()?;
        let mut want = BTreeSet::new();
        for (_, raw) in etcd.list(&format!("{ENDPOINTS}{id}/")).map_err(store_err)? {
            let Ok(ep) = serde_json::from_slice::<SharedEndpoint>(&raw) else {
                continue;
            };
            if ep.vtep == vtep {
                continue;
            }
            if let (Ok((ip, _)), Ok(mac)) = (parse_cidr(&ep.address), parse_mac(&ep.mac)) {
                want.insert((ip, mac, ep.vtep));
            }
        }
        let mut programmed = self.programmed.lock().unwrap_or_else(|p| p.into_inner());
        let have = programmed.entry(id.to_string()).or_default();
        if *have == want {
            return Ok(());
        }
        let mut nl = self.netlink()?;
        let vx = vxlan_name(id);
        for (ip, mac, remote) in have.difference(&want) {
            let _ = nl.set_neighbour(&vx, *ip, *mac, false);
            let _ = nl.set_fdb(&vx, *mac, IpAddr::V4(*remote), false);
        }
        for (ip, mac, remote) in want.difference(have) {
            nl.set_fdb(&vx, *mac, IpAddr::V4(*remote), true).map_err(driver_err)?;
            nl.set_neighbour(&vx, *ip, *mac, true).map_err(driver_err)?;
        }
        *have = want;
        Ok(())
    }

    /// One pass: every network with devices here in step with etcd.
    fn sync(&self) {
        let Ok((etcd, _)) = self.etcd() else { return };
        let Ok(all) = etcd.list(NETWORKS) else { return };
        let ids: BTreeSet<String> = all.iter().map(|(k, _)| k.trim_start_matches(NETWORKS).to_string()).collect();
        let Ok(mut nl) = self.netlink() else { return };
        let local: Vec<String> = ids.iter().filter(|id| nl.index(&vxlan_name(id)).is_ok()).cloned().collect();
        for id in local {
            if let Err(e) = self.sync_network(&id) {
                eprintln!("berthd: overlay network {id}: {e}");
            }
        }
        // Networks removed on another host leave no devices here.
        let gone: Vec<String> = self
            .programmed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|id| !ids.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            // Asked again now: one created after the listing above stays.
            if etcd.get(&format!("{NETWORKS}{id}")).is_ok_and(|v| v.is_none()) {
                self.remove_local(&id);
            }
        }
    }
}

impl OverlayDriver {
    /// A driver keeping its local state under `home`; without `cluster`
    /// it refuses to create networks, saying what berthd needs.
    pub fn new(home: &Path, namespace: Option<PathBuf>, cluster: Option<&Cluster>) -> Result<OverlayDriver> {
        let cluster = match cluster {
            Some(c) => Some((Etcd::new(&c.store).map_err(store_err)?, c.advertise)),
            None => None,
        };
        let running = cluster.is_some();
        let inner = Arc::new(Inner {
            cluster,
            namespace,
            local: StateFile::open(home)?,
            programmed: Mutex::new(BTreeMap::new()),
            devices: Mutex::new(()),
        });
        if running {
            let weak: Weak<Inner> = Arc::downgrade(&inner);
            std::thread::Builder::new()
                .name("overlay-sync".into())
                .spawn(move || {
                    while let Some(inner) = weak.upgrade() {
                        inner.sync();
                        drop(inner);
                        std::thread::sleep(SYNC_EVERY);
                    }
                })
                .map_err(|e| DriverError::Driver(format!("start the overlay sync: {e}")))?;
        }
        Ok(OverlayDriver { inner })
    }
}

impl NetworkDriver for OverlayDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: "global".into(),
            connectivity_scope: "global".into(),
        }
    }

    fn create_network(&self, req: &CreateNetworkRequest) -> Result<()> {
        let (etcd, _) = self.inner.etcd()?;
        let mut vni = FIRST_VNI;
        while !etcd.create(&format!("{VNIS}{vni}"), req.network_id.as_bytes()).map_err(store_err)? {
            vni += 1;
            if vni >= 1 << 24 {
                return Err(DriverError::Driver("no VXLAN network identifier left".into()));
            }
        }
        let text = serde_json::to_vec(&SharedNetwork { vni }).map_err(|e| DriverError::Driver(e.to_string()))?;
        etcd.put(&format!("{NETWORKS}{}", req.network_id), &text).map_err(store_err)
    }

    fn delete_network(&self, network_id: &str) -> Result<()> {
        let (etcd, _) = self.inner.etcd()?;
        let net = self.inner.network(network_id)?;
        if !etcd.list(&format!("{ENDPOINTS}{network_id}/")).map_err(store_err)?.is_empty() {
            return Err(DriverError::Conflict {
                kind: "network",
                name: network_id.into(),
                reason: "it has endpoints on some host".into(),
            });
        }
        self.inner.remove_local(network_id);
        etcd.delete(&format!("{NETWORKS}{network_id}")).map_err(store_err)?;
        etcd.delete(&format!("{VNIS}{}", net.vni)).map_err(store_err)
    }

    fn create_endpoint(&self, req: &CreateEndpointRequest) -> Result<Option<EndpointInterface>> {
        let (etcd, vtep) = self.inner.etcd()?;
        self.inner.network(&req.network_id)?;
        let asked = req.interface.clone().unwrap_or_default();
        let (mac, answer) = crate::endpoint::chosen_mac(&asked)?;
        let shared = SharedEndpoint {
            address: asked.address.clone(),
            mac: mac.clone(),
            vtep,
        };
        let text = serde_json::to_vec(&shared).map_err(|e| DriverError::Driver(e.to_string()))?;
        etcd.put(&format!("{ENDPOINTS}{}/{}", req.network_id, req.endpoint_id), &text)
            .map_err(store_err)?;
        let mut s = self.inner.local.lock();
        s.endpoints.insert(
            req.endpoint_id.clone(),
            LocalEndpoint {
                network: req.network_id.clone(),
                host_if: None,
            },
        );
        self.inner.local.save(&s)?;
        Ok(Some(answer))
    }

    fn delete_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        let (etcd, _) = self.inner.etcd()?;
        etcd.delete(&format!("{ENDPOINTS}{network_id}/{endpoint_id}")).map_err(store_err)?;
        let mut s = self.inner.local.lock();
        if s.endpoints.remove(endpoint_id).is_some() {
            self.inner.local.save(&s)?;
        }
        Ok(())
    }

    fn join(&self, req: &JoinRequest) -> Result<JoinResponse> {
        let (etcd, _) = self.inner.etcd()?;
        let raw = etcd
            .get(&format!("{ENDPOINTS}{}/{}", req.network_id, req.endpoint_id))
            .map_err(store_err)?
            .ok_or_else(|| DriverError::NotFound {
                kind: "endpoint",
                name: req.endpoint_id.clone(),
            })?;
        let ep: SharedEndpoint = serde_json::from_slice(&raw).map_err(|e| DriverError::Driver(e.to_string()))?;
        self.inner.ensure_local(&req.network_id)?;
        let ifname = req
            .options
            .get(IFNAME_OPTION)
            .and_then(|v| v.as_str())
            .unwrap_or("eth0")
            .to_string();
        let host_if = format!("vo{}", &req.endpoint_id[..12.min(req.endpoint_id.len())]);
        let sandbox = std::fs::File::open(&req.sandbox_key).map_err(|e| DriverError::io("open", &req.sandbox_key, e))?;
        let mut nl = self.inner.netlink()?;
        nl.add_veth(&host_if, &ifname, Some(MTU), Some(std::os::fd::AsRawFd::as_raw_fd(&sandbox)))
            .map_err(driver_err)?;
        // No default route: an overlay reaches its own members only.
        let placed = nl
            .index(&bridge_name(&req.network_id))
            .and_then(|b| nl.set_link(&host_if, Some(b), None, true))
            .and_then(|_| configure(Path::new(&req.sandbox_key), &ifname, &ep.mac, &ep.address, None));
        if let Err(e) = placed {
            let _ = nl.delete_link(&host_if);
            return Err(driver_err(e));
        }
        let mut s = self.inner.local.lock();
        if let Some(e) = s.endpoints.get_mut(&req.endpoint_id) {
            e.host_if = Some(host_if);
        }
        self.inner.local.save(&s)?;
        drop(s);
        // The remote endpoints known now, before the container's first packet.
        self.inner.sync_network(&req.network_id)?;
        Ok(JoinResponse::default())
    }

    fn leave(&self, _network_id: &str, endpoint_id: &str) -> Result<()> {
        let mut s = self.inner.local.lock();
        let Some(host_if) = s.endpoints.get(endpoint_id).and_then(|e| e.host_if.clone()) else {
            return Ok(());
        };
        self.inner.netlink()?.delete_link(&host_if).map_err(driver_err)?;
        if let Some(e) = s.endpoints.get_mut(endpoint_id) {
            e.host_if = None;
        }
        self.inner.local.save(&s)
    }
}
