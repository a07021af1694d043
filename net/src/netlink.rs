//! rtnetlink, spoken directly: the link, address and route operations the
//! drivers need (bridges, veth pairs with one end in a container's
//! namespace, macvlan and 802.1q VLAN links, masters, up, MTU, MAC,
//! addresses, default routes, removal),
//! on a socket bound to the host's namespace or to any namespace pinned
//! in a file. No `ip` is run.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

const NLMSG_HDRLEN: usize = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const IFLA_PROTINFO: u16 = 12;
const IFLA_BRPORT_ISOLATED: u16 = 33;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_APPEND: u16 = 0x800;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NUD_PERMANENT: u16 = 0x80;
const NTF_SELF: u8 = 0x02;
const IFLA_VXLAN_ID: u16 = 1;
const IFLA_VXLAN_LOCAL: u16 = 4;
const IFLA_VXLAN_LEARNING: u16 = 7;
const IFLA_VXLAN_PROXY: u16 = 11;
const IFLA_VXLAN_PORT: u16 = 15;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_MACVLAN_MODE: u16 = 1;
const IFLA_VLAN_ID: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_F_NODAD: u8 = 0x02;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const NLA_F_NESTED: u16 = 0x8000;

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A netlink message under construction: the header's room, a fixed
/// part, then attributes.
struct Message {
    buf: Vec<u8>,
    /// Open nested attributes: where each one's length goes.
    nests: Vec<usize>,
}

impl Message {
    fn new(kind: u16, flags: u16, fixed: &[u8]) -> Message {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(fixed);
        buf.resize(align(buf.len()), 0);
        Message { buf, nests: Vec::new() }
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        let len = 4 + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    fn str_attr(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.attr(kind, &b)
    }

    fn begin(&mut self, kind: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    /// Raw bytes inside an open nest (a peer's ifinfomsg).
    fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    fn end(&mut self) -> &mut Self {
        let at = self.nests.pop().expect("an open nest");
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

/// `struct ifinfomsg` with an index and flags to change.
fn ifinfo(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

fn ip_bytes(ip: IpAddr) -> (u8, Vec<u8>) {
    match ip {
        IpAddr::V4(v) => (libc::AF_INET as u8, v.octets().to_vec()),
        IpAddr::V6(v) => (libc::AF_INET6 as u8, v.octets().to_vec()),
    }
}

/// A NETLINK_ROUTE socket in one network namespace.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn new() -> io::Result<Netlink> {
        // SAFETY: socket(2) with constant arguments.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd that nothing else owns.
        Ok(Netlink {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            seq: 1,
        })
    }

    /// A socket in the namespace pinned at `path`; it stays there whatever
    /// thread uses it.
    pub fn in_namespace(path: &Path) -> io::Result<Netlink> {
        crate::netns::run_in(path, Netlink::new)
    }

    /// Sends `m` and waits for its acknowledgement; the kernel's error as
    /// an `io::Error`, with `what` in front.
    fn call(&mut self, m: &mut Message, what: &str) -> io::Result<Vec<Vec<u8>>> {
        self.seq += 1;
        let seq = self.seq;
        let data = m.finish(seq);
        // SAFETY: sending a buffer we own on our socket; the kernel is the
        // default destination of a netlink socket.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), data.as_ptr().cast(), data.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: receiving into a buffer we own.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut at = 0;
            let n = n as usize;
            while at + NLMSG_HDRLEN <= n {
                let len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
                let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().expect("2 bytes"));
                let rseq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().expect("4 bytes"));
                if len < NLMSG_HDRLEN || at + len > n {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink reply"));
                }
                if rseq == seq {
                    match kind {
                        NLMSG_ERROR => {
                            let code = i32::from_ne_bytes(buf[at + 16..at + 20].try_into().expect("4 bytes"));
                            if code == 0 {
                                return Ok(replies);
                            }
                            let e = io::Error::from_raw_os_error(-code);
                            let kind = if matches!(-code, libc::ENODEV | libc::ENOENT) {
                                io::ErrorKind::NotFound
                            } else {
                                e.kind()
                            };
                            return Err(io::Error::new(kind, format!("{what}: {e}")));
                        }
                        NLMSG_DONE => return Ok(replies),
                        _ => replies.push(buf[at + NLMSG_HDRLEN..at + len].to_vec()),
                    }
                }
                at += align(len);
            }
        }
    }

    /// The index of link `name`.
    pub fn index(&mut self, name: &str) -> io::Result<i32> {
        let mut m = Message::new(RTM_GETLINK, 0, &ifinfo(0, 0, 0));
        m.str_attr(IFLA_IFNAME, name);
        let replies = self.call(&mut m, &format!("find link {name}"))?;
        let first = replies
            .first()
            .filter(|r| r.len() >= 8)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no link {name}")))?;
        Ok(i32::from_ne_bytes(first[4..8].try_into().expect("4 bytes")))
    }

    /// A Linux bridge named `name`.
    pub fn add_bridge(&mut self, name: &str, mtu: Option<u32>) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfo(0, 0, 0));
        m.str_attr(IFLA_IFNAME, name);
        if let Some(mtu) = mtu {
            m.attr(IFLA_MTU, &mtu.to_ne_bytes());
        }
        m.begin(IFLA_LINKINFO).str_attr(IFLA_INFO_KIND, "bridge").end();
        self.call(&mut m, &format!("create bridge {name}")).map(drop)
    }

    /// A veth pair: `host` here, `peer` in the namespace `peer_ns` (an
    /// open namespace file) or here.
    pub fn add_veth(&mut self, host: &str, peer: &str, mtu: Option<u32>, peer_ns: Option<RawFd>) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfo(0, 0, 0));
        m.str_attr(IFLA_IFNAME, host);
        if let Some(mtu) = mtu {
            m.attr(IFLA_MTU, &mtu.to_ne_bytes());
        }
        m.begin(IFLA_LINKINFO)
            .str_attr(IFLA_INFO_KIND, "veth")
            .begin(IFLA_INFO_DATA)
            .begin(VETH_INFO_PEER);
        m.raw(&ifinfo(0, 0, 0)).str_attr(IFLA_IFNAME, peer);
        if let Some(mtu) = mtu {
            m.attr(IFLA_MTU, &mtu.to_ne_bytes());
        }
        if let Some(fd) = peer_ns {
            m.attr(IFLA_NET_NS_FD, &(fd as u32).to_ne_bytes());
        }
        m.end().end().end();
        self.call(&mut m, &format!("create veth {host}/{peer}")).map(drop)
    }

    /// A macvlan link `name` on `parent` (a link here) in `mode` (the
    /// kernel's MACVLAN_MODE_* bit), made straight in the namespace `ns`
    /// (an open namespace file) or here.
    pub fn add_macvlan(&mut self, name: &str, parent: &str, mode: u32, mtu: Option<u32>, ns: Option<RawFd>) -> io::Result<()> {
        let parent_index = self.index(parent)?;
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfo(0, 0, 0));
        m.str_attr(IFLA_IFNAME, name);
        m.attr(IFLA_LINK, &(parent_index as u32).to_ne_bytes());
        if let Some(mtu) = mtu {
            m.attr(IFLA_MTU, &mtu.to_ne_bytes());
        }
        if let Some(fd) = ns {
            m.attr(IFLA_NET_NS_FD, &(fd as u32).to_ne_bytes());
        }
        m.begin(IFLA_LINKINFO)
            .str_attr(IFLA_INFO_KIND, "macvlan")
            .begin(IFLA_INFO_DATA)
            .attr(IFLA_MACVLAN_MODE, &mode.to_ne_bytes())
            .end()
            .end();
        self.call(&mut m, &format!("create macvlan {name} on {parent}")).map(drop)
    }

    /// An 802.1q link `name` for VLAN `id` on `parent`.
    pub fn add_vlan(&mut self, name: &str, parent: &str, id: u16) -> io::Result<()> {
        let parent_index = self.index(parent)?;
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfo(0, 0, 0));
        m.str_attr(IFLA_IFNAME, name);
        m.attr(IFLA_LINK, &(parent_index as u32).to_ne_bytes());
        m.begin(IFLA_LINKINFO)
            .str_attr(IFLA_INFO_KIND, "vlan")
            .begin(IFLA_INFO_DATA)
            .attr(IFLA_VLAN_ID, &id.to_ne_bytes())
            .end()
            .end();
        self.call(&mut m, &format!("create vlan {name}")).map(drop)
    }

    /// A VXLAN link `name` for `vni`, sending from `local` to UDP `port`,
    /// learning nothing (remote endpoints are programmed) and answering
    /// ARP from its neighbour table (`proxy`).
    pub fn add_vxlan(&mut self, name: &str, vni: u32, local: std::net::Ipv4Addr, port: u16, mtu: Option<u32>) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfo(0, 0, 0));
        m.str_attr(IFLA_IFNAME, name);
        if let Some(mtu) = mtu {
            m.attr(IFLA_MTU, &mtu.to_ne_bytes());
        }
        m.begin(IFLA_LINKINFO)
            .str_attr(IFLA_INFO_KIND, "vxlan")
            .begin(IFLA_INFO_DATA)
            .attr(IFLA_VXLAN_ID, &vni.to_ne_bytes())
            .attr(IFLA_VXLAN_LOCAL, &local.octets())
            .attr(IFLA_VXLAN_PORT, &port.to_be_bytes())
            .attr(IFLA_VXLAN_LEARNING, &[0])
            .attr(IFLA_VXLAN_PROXY, &[1])
            .end()
            .end();
        self.call(&mut m, &format!("create vxlan {name}")).map(drop)
    }

    /// `struct ndmsg` for a neighbour or FDB entry on link `index`.
    fn ndmsg(family: u8, index: i32, flags: u8) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0] = family;
        b[4..8].copy_from_slice(&index.to_ne_bytes());
        b[8..10].copy_from_slice(&NUD_PERMANENT.to_ne_bytes());
        b[10] = flags;
        b
    }

    /// A forwarding-database entry on VXLAN link `dev`: frames for `mac`
    /// go to the VTEP `dst` (all-zero MAC: floods go there too).
    pub fn set_fdb(&mut self, dev: &str, mac: [u8; 6], dst: IpAddr, present: bool) -> io::Result<()> {
        let index = self.index(dev)?;
        let fixed = Self::ndmsg(libc::AF_BRIDGE as u8, index, NTF_SELF);
        let mut m = if present {
            Message::new(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND, &fixed)
        } else {
            Message::new(RTM_DELNEIGH, 0, &fixed)
        };
        m.attr(NDA_LLADDR, &mac).attr(NDA_DST, &ip_bytes(dst).1);
        match self.call(&mut m, &format!("fdb entry on {dev}")) {
            Err(e) if !present && e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) if present && e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            r => r.map(drop),
        }
    }

    /// A permanent neighbour entry on `dev`: `ip` is at `mac`.
    pub fn set_neighbour(&mut self, dev: &str, ip: IpAddr, mac: [u8; 6], present: bool) -> io::Result<()> {
        let index = self.index(dev)?;
        let (family, bytes) = ip_bytes(ip);
        let fixed = Self::ndmsg(family, index, 0);
        let mut m = if present {
            Message::new(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, &fixed)
        } else {
            Message::new(RTM_DELNEIGH, 0, &fixed)
        };
        m.attr(NDA_DST, &bytes);
        if present {
            m.attr(NDA_LLADDR, &mac);
        }
        match self.call(&mut m, &format!("neighbour {ip} on {dev}")) {
            Err(e) if !present && e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r.map(drop),
        }
    }

    /// Isolates bridge port `name`: it forwards to no other isolated port
    /// (the kernel's `bridge link set ... isolated on`).
    pub fn isolate_port(&mut self, name: &str) -> io::Result<()> {
        let index = self.index(name)?;
        let mut fixed = ifinfo(index, 0, 0);
        fixed[0] = libc::AF_BRIDGE as u8;
        let mut m = Message::new(RTM_SETLINK, 0, &fixed);
        m.begin(IFLA_PROTINFO).attr(IFLA_BRPORT_ISOLATED, &[1]).end();
        self.call(&mut m, &format!("isolate bridge port {name}")).map(drop)
    }

    /// Sets a link's master (a bridge), MAC and up state; `None` leaves each.
    pub fn set_link(&mut self, name: &str, master: Option<i32>, mac: Option<[u8; 6]>, up: bool) -> io::Result<()> {
        let index = self.index(name)?;
        let flag = libc::IFF_UP as u32;
        let mut m = Message::new(RTM_NEWLINK, 0, &ifinfo(index, if up { flag } else { 0 }, flag));
        if let Some(master) = master {
            m.attr(IFLA_MASTER, &(master as u32).to_ne_bytes());
        }
        if let Some(mac) = mac {
            m.attr(IFLA_ADDRESS, &mac);
        }
        self.call(&mut m, &format!("set up link {name}")).map(drop)
    }

    /// Adds `ip/prefix` to link `name`.
    pub fn add_address(&mut self, name: &str, ip: IpAddr, prefix: u8) -> io::Result<()> {
        let index = self.index(name)?;
        let (family, bytes) = ip_bytes(ip);
        let mut fixed = [0u8; 8];
        fixed[0] = family;
        fixed[1] = prefix;
        // IPv6 addresses usable at once: no duplicate address detection
        // on links whose addresses berth hands out itself.
        if ip.is_ipv6() {
            fixed[2] = IFA_F_NODAD;
        }
        fixed[4..8].copy_from_slice(&(index as u32).to_ne_bytes());
        let mut m = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &fixed);
        m.attr(IFA_LOCAL, &bytes).attr(IFA_ADDRESS, &bytes);
        self.call(&mut m, &format!("add address {ip}/{prefix} to {name}")).map(drop)
    }

    /// The default route through `gateway`.
    pub fn add_default_route(&mut self, gateway: IpAddr) -> io::Result<()> {
        let unspecified = match gateway {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        self.add_route((unspecified, 0), Some(gateway), None)
    }

    /// A route to `destination` (`ADDR`, prefix length) through `gateway`,
    /// or straight out of link `dev` (a connected route) when no gateway.
    pub fn add_route(&mut self, destination: (IpAddr, u8), gateway: Option<IpAddr>, dev: Option<&str>) -> io::Result<()> {
        let (family, dst) = ip_bytes(destination.0);
        let oif = dev.map(|d| self.index(d)).transpose()?;
        // struct rtmsg: main table, boot protocol, unicast; a route with
        // no gateway reaches its destination on the link itself.
        let scope = if gateway.is_some() {
            libc::RT_SCOPE_UNIVERSE
        } else {
            libc::RT_SCOPE_LINK
        };
        let fixed = [
            family,
            destination.1,
            0,
            0,
            libc::RT_TABLE_MAIN,
            libc::RTPROT_BOOT,
            scope,
            libc::RTN_UNICAST,
            0,
            0,
            0,
            0,
        ];
        let mut m = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &fixed);
        if destination.1 > 0 {
            m.attr(RTA_DST, &dst);
        }
        if let Some(gw) = gateway {
            m.attr(RTA_GATEWAY, &ip_bytes(gw).1);
        }
        if let Some(i) = oif {
            m.attr(RTA_OIF, &(i as u32).to_ne_bytes());
        }
        let via = gateway.map(|g| format!(" via {g}")).unwrap_or_default();
        self.call(&mut m, &format!("add route to {}/{}{via}", destination.0, destination.1))
            .map(drop)
    }

    /// Moves link `name` into the namespace `ns` (an open namespace file),
    /// renamed `new_name` there.
    pub fn move_link(&mut self, name: &str, ns: RawFd, new_name: &str) -> io::Result<()> {
        let index = self.index(name)?;
        let mut m = Message::new(RTM_NEWLINK, 0, &ifinfo(index, 0, 0));
        m.attr(IFLA_NET_NS_FD, &(ns as u32).to_ne_bytes());
        m.str_attr(IFLA_IFNAME, new_name);
        self.call(&mut m, &format!("move link {name} into the sandbox as {new_name}"))
            .map(drop)
    }

    /// Removes link `name` (a veth's peer goes with it); gone already is fine.
    pub fn delete_link(&mut self, name: &str) -> io::Result<()> {
        let mut m = Message::new(RTM_DELLINK, 0, &ifinfo(0, 0, 0));
        m.str_attr(IFLA_IFNAME, name);
        match self.call(&mut m, &format!("delete link {name}")) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r.map(drop),
        }
    }
}
