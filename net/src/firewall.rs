//! berth's nftables rules, all in its own table (`inet berth`), written
//! whole from the desired state in one transaction (`nft -f -`): the
//! table is deleted and made again atomically, so a rule can never be
//! left behind by a crash and reconciling is applying the state again.
//!
//! What the state says becomes:
//! - outbound NAT: traffic from a network's subnets (IPv4, and IPv6 where
//!   it has one) leaving by any other interface than its bridge is
//!   masqueraded (not for `--internal` networks);
//! - isolation: nothing is forwarded between two berth bridges, and an
//!   internal network's bridge forwards nothing out at all (but a
//!   connection to a published port is, whatever network it comes from);
//! - published ports: DNAT of `[host ip:]port/proto` to the container,
//!   for traffic arriving from outside (prerouting) and from the host
//!   itself (output), 127.0.0.1 included (with masquerade of loopback
//!   sources toward the bridge and `route_localnet` set by the caller).
//!   The mappings are elements of two maps (`ports_any`: proto . port,
//!   `ports_at`: host address . proto . port) that fixed rules look up,
//!   so publishing or unpublishing a port is an element added or deleted
//!   ([`update_ports`], a few milliseconds) and no rule changes; the
//!   table is written whole only when networks change.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};

/// The table's name, in family `inet`.
pub const TABLE: &str = "berth";

/// A bridge network as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: String,
    /// `10.1.0.0/24` (IPv4).
    pub subnet: String,
    /// Its IPv6 subnet, when it has one (`--ipv6`).
    pub subnet6: Option<String>,
    pub internal: bool,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortMapping {
    /// `tcp` or `udp`.
    pub proto: String,
    /// Only traffic to this host address; `None`: any.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
}

/// Whether berth writes rules for an interface of this name (and so
/// whether a bridge may be called so): letters, digits, `-`, `_`, `.`.
pub fn check_name(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not an interface name berth writes rules for"),
        ))
    }
}

/// The nft script for `networks` and `ports`.
pub fn render(networks: &[NetworkRules], ports: &[PortMapping]) -> io::Result<String> {
    let mut s = String::new();
    // Deleting a table that does not exist fails the transaction: add it first.
    s.push_str(&format!("add table inet {TABLE}\ndelete table inet {TABLE}\n"));
    s.push_str(&format!("table inet {TABLE} {{\n"));
    // route_localnet lets the host's own connections to 127.0.0.1 reach
    // published ports; it must not let containers reach the host's
    // loopback-only services (CVE-2020-8558): nothing from outside `lo`
    // is delivered to 127/8.
    s.push_str("  chain raw_prerouting {\n    type filter hook prerouting priority raw; policy accept;\n    iifname != \"lo\" ip daddr 127.0.0.0/8 drop\n  }\n");
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    // A published port is reached from any network, isolation or not.
    s.push_str("    ct status dnat accept\n");
    for n in networks {
        check_name(&n.bridge)?;
        if n.internal {
            s.push_str(&format!(
                "    iifname \"{0}\" oifname != \"{0}\" drop\n    oifname \"{0}\" iifname != \"{0}\" drop\n",
                n.bridge
            ));
        }
        for other in networks.iter().filter(|o| o.bridge != n.bridge) {
            s.push_str(&format!("    iifname \"{}\" oifname \"{}\" drop\n", n.bridge, other.bridge));
        }
    }
    s.push_str("  }\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
    // Only what an address holds reaches the script.
    let clean = |subnet: &str| -> String {
        subnet
            .chars()
            .filter(|c| c.is_ascii_hexdigit() || matches!(c, '.' | '/' | ':'))
            .collect()
    };
    for n in networks.iter().filter(|n| !n.internal) {
        let subnet = clean(&n.subnet);
        s.push_str(&format!("    ip saddr {subnet} oifname != \"{}\" masquerade\n", n.bridge));
        if let Some(v6) = &n.subnet6 {
            s.push_str(&format!("    ip6 saddr {} oifname != \"{}\" masquerade\n", clean(v6), n.bridge));
        }
        // Hairpin: a container reaching a published port of one on its own
        // bridge gets answers through the host, not straight over the bridge.
        s.push_str(&format!(
            "    ct status dnat ip saddr {subnet} oifname \"{}\" masquerade\n",
            n.bridge
        ));
    }
    // Connections from the host to 127.0.0.1:PORT leave by a bridge
    // with a loopback source the container could not answer.
    s.push_str("    ip saddr 127.0.0.0/8 fib daddr type unicast masquerade\n  }\n");
    let (any, at) = elements(ports)?;
    for (map, key, elements) in [
        ("ports_any", "inet_proto . inet_service", &any),
        ("ports_at", "ipv4_addr . inet_proto . inet_service", &at),
    ] {
        s.push_str(&format!("  map {map} {{\n    type {key} : ipv4_addr . inet_service\n"));
        if !elements.is_empty() {
            let list: Vec<&str> = elements.iter().map(String::as_str).collect();
            s.push_str(&format!("    elements = {{ {} }}\n", list.join(", ")));
        }
        s.push_str("  }\n");
    }
    let dnat = "    fib daddr type local dnat ip to meta l4proto . th dport map @ports_any\n    dnat ip to ip daddr . meta l4proto . th dport map @ports_at\n";
    for (chain, hook, priority) in [("prerouting", "prerouting", "dstnat"), ("output", "output", "-100")] {
        s.push_str(&format!(
            "  chain {chain} {{\n    type nat hook {hook} priority {priority}; policy accept;\n{dnat}  }}\n"
        ));
    }
    s.push_str("}\n");
    Ok(s)
}

/// The map elements of `ports`: (`ports_any`, `ports_at`), each
/// `KEY : ADDR . PORT` as nft writes them.
fn elements(ports: &[PortMapping]) -> io::Result<(BTreeSet<String>, BTreeSet<String>)> {
    let (mut any, mut at) = (BTreeSet::new(), BTreeSet::new());
    for p in ports {
        let proto = match p.proto.as_str() {
            "tcp" | "udp" => p.proto.as_str(),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("protocol {other:?}: tcp or udp"),
                ))
            }
        };
        let IpAddr::V4(to) = p.container_ip else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: ports are published to IPv4 addresses", p.container_ip),
            ));
        };
        let value = format!("{to} . {}", p.container_port);
        match p.host_ip {
            None => any.insert(format!("{proto} . {} : {value}", p.host_port)),
            Some(IpAddr::V4(h)) => at.insert(format!("{h} . {proto} . {} : {value}", p.host_port)),
            Some(h) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("host address {h}: ports are published on IPv4 addresses"),
                ))
            }
        };
    }
    Ok((any, at))
}

/// The nft script that turns the table's port maps from `old` into `new`
/// (empty when they agree).
pub fn render_port_update(old: &[PortMapping], new: &[PortMapping]) -> io::Result<String> {
    let (old_any, old_at) = elements(old)?;
    let (new_any, new_at) = elements(new)?;
    let mut s = String::new();
    for (map, old, new) in [("ports_any", &old_any, &new_any), ("ports_at", &old_at, &new_at)] {
        for e in old.difference(new) {
            // Deleted by key: what comes before the `:`.
            let key = e.split(" : ").next().unwrap_or(e);
            s.push_str(&format!("delete element inet {TABLE} {map} {{ {key} }}\n"));
        }
        for e in new.difference(old) {
            s.push_str(&format!("add element inet {TABLE} {map} {{ {e} }}\n"));
        }
    }
    Ok(s)
}

/// Changes only the published ports of a table [`apply`] wrote with
/// `old`: one transaction of element deletions and additions.
pub fn update_ports(namespace: Option<&Path>, old: &[PortMapping], new: &[PortMapping]) -> io::Result<()> {
    let script = render_port_update(old, new)?;
    if script.is_empty() {
        return Ok(());
    }
    nft(namespace, &script)
}

fn nft(namespace: Option<&Path>, script: &str) -> io::Result<()> {
    let mut c = match namespace {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display())).arg("nft");
            c
        }
        None => Command::new("nft"),
    };
    let mut child = c
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().expect("piped stdin").write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("nft: {}", String::from_utf8_lossy(&out.stderr).trim())))
    }
}

/// Makes berth's table say exactly `networks` and `ports`, in the
/// namespace pinned at `namespace` (`None`: this process's).
pub fn apply(namespace: Option<&Path>, networks: &[NetworkRules], ports: &[PortMapping]) -> io::Result<()> {
    nft(namespace, &render(networks, ports)?)
}

/// Removes berth's table; none there is fine.
pub fn remove(namespace: Option<&Path>) -> io::Result<()> {
    nft(namespace, &format!("add table inet {TABLE}\ndelete table inet {TABLE}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_render_from_the_state() {
        let nets = [
            NetworkRules {
                bridge: "berth0".into(),
                subnet: "172.17.0.0/16".into(),
                subnet6: Some("fd00:1::/64".into()),
                internal: false,
            },
            NetworkRules {
                bridge: "br-inner".into(),
                subnet: "10.5.0.0/24".into(),
                subnet6: Some("fd00:2::/64".into()),
                internal: true,
            },
        ];
        let ports = [PortMapping {
            proto: "tcp".into(),
            host_ip: None,
            host_port: 8080,
            container_ip: "172.17.0.2".parse().unwrap(),
            container_port: 80,
        }];
        let s = render(&nets, &ports).unwrap();
        assert!(s.contains("ip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade"), "{s}");
        assert!(s.contains("ip6 saddr fd00:1::/64 oifname != \"berth0\" masquerade"), "{s}");
        assert!(!s.contains("fd00:2::"), "an internal network is not masqueraded: {s}");
        assert!(!s.contains("10.5.0.0/24 oifname"), "no NAT for an internal network: {s}");
        assert!(
            s.contains("iifname \"berth0\" oifname \"br-inner\" drop") && s.contains("iifname \"br-inner\" oifname \"berth0\" drop"),
            "{s}"
        );
        assert!(s.contains("elements = { tcp . 8080 : 172.17.0.2 . 80 }"), "{s}");
        assert_eq!(
            s.matches("dnat ip to meta l4proto . th dport map @ports_any").count(),
            2,
            "prerouting and output: {s}"
        );
        // Ports change by elements alone.
        let at = PortMapping {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 53,
            proto: "udp".into(),
            ..ports[0].clone()
        };
        let u = render_port_update(&ports, std::slice::from_ref(&at)).unwrap();
        assert_eq!(
            u,
            "delete element inet berth ports_any { tcp . 8080 }\nadd element inet berth ports_at { 127.0.0.1 . udp . 53 : 172.17.0.2 . 80 }\n"
        );
        assert_eq!(
            render_port_update(std::slice::from_ref(&at), std::slice::from_ref(&at)).unwrap(),
            ""
        );
        assert!(render(
            &[NetworkRules {
                bridge: "bad name;".into(),
                subnet: "1.0.0.0/8".into(),
                subnet6: None,
                internal: false
            }],
            &[]
        )
        .is_err());
        let sctp = PortMapping {
            proto: "sctp".into(),
            ..ports[0].clone()
        };
        assert!(render(&[], &[sctp]).is_err());
    }
}
