//! Published ports: what a container asks for (`-p`, `-P`, as Docker's
//! `HostConfig.PortBindings`, `PublishAllPorts` and `Config.ExposedPorts`)
//! and the host ports it gets when it starts.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Published;

/// One port a container wants published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub proto: String,
    pub container_port: u16,
    pub host_ip: String,
    /// Inclusive; `None`: any free ephemeral port.
    pub host_ports: Option<(u16, u16)>,
}

/// `80/tcp` → (80, tcp); a missing protocol is tcp.
pub fn parse_key(key: &str) -> Result<(u16, String), String> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp") {
        return Err(format!("invalid port {key:?}: protocol {proto:?} is not supported (tcp or udp)"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port {key:?}: the port must be a number from 1 to 65535"))?;
    Ok((port, proto))
}

fn parse_host_ports(s: &str) -> Result<Option<(u16, u16)>, String> {
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    let num = |t: &str| {
        t.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid host port {s:?}: a number from 1 to 65535, or a range such as 8000-8010"))
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(s)?, num(s)?),
    };
    if a > b {
        return Err(format!("invalid host port range {s:?}: the start is above the end"));
    }
    Ok(Some((a, b)))
}

/// Everything `config` and `host_config` ask to publish, checked.
pub fn wanted(config: &Value, host_config: &Value) -> Result<Vec<Wanted>, String> {
    let mut out = Vec::new();
    if let Some(bindings) = host_config["PortBindings"].as_object() {
        for (key, list) in bindings {
            let (container_port, proto) = parse_key(key)?;
            let list = list.as_array().cloned().unwrap_or_default();
            let list = if list.is_empty() { vec![Value::Null] } else { list };
            for b in list {
                let host_ip = b["HostIp"].as_str().unwrap_or("").to_string();
                if !host_ip.is_empty() && host_ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(format!("invalid host IP {host_ip:?} for port {key}"));
                }
                out.push(Wanted {
                    proto: proto.clone(),
                    container_port,
                    host_ip,
                    host_ports: parse_host_ports(b["HostPort"].as_str().unwrap_or(""))?,
                });
            }
        }
    }
    if host_config["PublishAllPorts"].as_bool().unwrap_or(false) {
        for key in config["ExposedPorts"]
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let (container_port, proto) = parse_key(&key)?;
            if !out.iter().any(|w| w.container_port == container_port && w.proto == proto) {
                out.push(Wanted {
                    proto,
                    container_port,
                    host_ip: String::new(),
                    host_ports: None,
                });
            }
        }
    }
    Ok(out)
}

/// Whether two host addresses can both take one port (an empty one or
/// 0.0.0.0 is every address).
fn clash(a: &str, b: &str) -> bool {
    let any = |x: &str| x.is_empty() || x == "0.0.0.0" || x == "::";
    any(a) || any(b) || a == b
}

/// Whether this namespace has room for `port` (nothing listening on it).
fn bindable(proto: &str, host_ip: &str, port: u16) -> bool {
    let ip = if host_ip.is_empty() { "0.0.0.0" } else { host_ip };
    let addr = std::net::SocketAddr::new(ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()), port);
    match proto {
        "udp" => std::net::UdpSocket::bind(addr).is_ok(),
        _ => std::net::TcpListener::bind(addr).is_ok(),
    }
}

/// The kernel's ephemeral port range, where `-P` picks from (Docker's way).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().filter_map(|w| w.parse().ok());
            Some((it.next()?, it.next()?))
        })
        .unwrap_or((32768, 60999))
}

/// Host ports for `wanted`, given what is `taken` by other containers,
/// all to `container_ip`.
pub fn allocate(wanted: &[Wanted], taken: &[Published], container_ip: &str) -> Result<Vec<Published>, String> {
    let mut out: Vec<Published> = Vec::new();
    let (lo, hi) = ephemeral_range();
    // Where to start looking, so that containers do not all race for one port.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    for w in wanted {
        let used: BTreeSet<u16> = taken
            .iter()
            .chain(out.iter())
            .filter(|p| p.proto == w.proto && clash(&p.host_ip, &w.host_ip))
            .map(|p| p.host_port)
            .collect();
        let free = |port: u16| !used.contains(&port) && bindable(&w.proto, &w.host_ip, port);
        let port = match w.host_ports {
            Some((a, b)) if a == b => {
                if !free(a) {
                    let ip = if w.host_ip.is_empty() { "0.0.0.0" } else { &w.host_ip };
                    return Err(format!("Bind for {ip}:{a} failed: port is already allocated"));
                }
                a
            }
            Some((a, b)) => (a..=b)
                .find(|p| free(*p))
                .ok_or_else(|| format!("no free host port in {a}-{b} for {}/{}", w.container_port, w.proto))?,
            None => {
                let span = u32::from(hi - lo) + 1;
                (0..span)
                    .map(|i| lo + ((seed + i) % span) as u16)
                    .find(|p| free(*p))
                    .ok_or_else(|| format!("no free host port left in {lo}-{hi}"))?
            }
        };
        out.push(Published {
            proto: w.proto.clone(),
            container_port: w.container_port,
            host_ip: w.host_ip.clone(),
            host_port: port,
            container_ip: container_ip.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_and_exposed_ports_are_read() {
        let cfg = json!({ "ExposedPorts": { "80/tcp": {}, "53/udp": {} } });
        let hc = json!({ "PortBindings": { "80/tcp": [{ "HostIp": "127.0.0.1", "HostPort": "8080" }] }, "PublishAllPorts": true });
        let w = wanted(&cfg, &hc).unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(w[0].host_ports, Some((8080, 8080)));
        assert_eq!(w[0].host_ip, "127.0.0.1");
        assert_eq!((w[1].container_port, w[1].proto.as_str(), w[1].host_ports), (53, "udp", None));
        assert!(wanted(&json!({}), &json!({ "PortBindings": { "80/sctp": [] } })).is_err());
        assert!(wanted(&json!({}), &json!({ "PortBindings": { "80/tcp": [{ "HostPort": "x" }] } })).is_err());
        assert!(wanted(&json!({}), &json!({ "PortBindings": { "80/tcp": [{ "HostPort": "9-1" }] } })).is_err());
    }

    #[test]
    fn taken_ports_are_refused_and_free_ones_picked() {
        let w = |ports| Wanted {
            proto: "tcp".into(),
            container_port: 80,
            host_ip: String::new(),
            host_ports: ports,
        };
        let taken = allocate(&[w(Some((41234, 41234)))], &[], "10.0.0.2").unwrap();
        assert_eq!(taken[0].host_port, 41234);
        let e = allocate(&[w(Some((41234, 41234)))], &taken, "10.0.0.3").unwrap_err();
        assert!(e.contains("port is already allocated"), "{e}");
        let other = allocate(&[w(Some((41234, 41235)))], &taken, "10.0.0.3").unwrap();
        assert_eq!(other[0].host_port, 41235);
        let any = allocate(&[w(None), w(None)], &taken, "10.0.0.3").unwrap();
        assert_ne!(any[0].host_port, any[1].host_port);
    }
}
