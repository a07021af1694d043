//! The network endpoints (`/networks/...`) and a container's networking:
//! which networks it is on (chosen at create), joining them when it
//! starts and leaving when it ends, its published ports and berth's
//! firewall table, its embedded DNS resolver, and the /etc files that
//! name it. The networks themselves are [`crate::network`]'s.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{json, Value};

use super::{Daemon, Failure};
use crate::container::{Entry, Record};
use crate::network::{dns, ports, Endpoint, Network, NetworkError, Published};

pub fn failure(e: NetworkError) -> Failure {
    let status = match &e {
        NetworkError::NotFound(_) | NetworkError::NoSuch(_) => StatusCode::NOT_FOUND,
        NetworkError::Conflict(_) => StatusCode::CONFLICT,
        NetworkError::Invalid(_) => StatusCode::BAD_REQUEST,
        NetworkError::Forbidden(_) => StatusCode::FORBIDDEN,
        NetworkError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, e.to_string())
}

fn bad(msg: impl Into<String>) -> Failure {
    (StatusCode::BAD_REQUEST, msg.into())
}

/// The namespace a container's network mode gives it.
pub enum Sandbox {
    /// The host's (`--network host`).
    Host,
    /// Another container's (`--network container:NAME`).
    Shared(PathBuf),
    /// One of its own, pinned at this path.
    Own(PathBuf),
}

/// Where a container's own network namespace is pinned.
pub fn netns_path(d: &Daemon, id: &str) -> PathBuf {
    d.exec_root.join("netns").join(id)
}

fn mode(hc: &Value) -> String {
    match hc["NetworkMode"].as_str().unwrap_or("") {
        "" | "default" => "bridge".into(),
        m => m.into(),
    }
}

/// The namespace `r` runs in.
pub fn sandbox(d: &Daemon, r: &Record) -> Result<Sandbox, String> {
    let m = mode(&r.host_config);
    if m == "host" {
        return Ok(Sandbox::Host);
    }
    if let Some(other) = m.strip_prefix("container:") {
        let o = d.containers.find(other).map_err(|e| e.to_string())?.snapshot();
        if !o.state.running() {
            return Err(format!("cannot join the network of a non running container: {}", o.name));
        }
        // One step only: a container sharing another's namespace is not
        // shared again (and a renamed pair can never loop).
        let theirs = mode(&o.host_config);
        if theirs.starts_with("container:") || o.id == r.id {
            return Err(format!("cannot join the network of {}: it shares another container's", o.name));
        }
        return Ok(if theirs == "host" {
            Sandbox::Host
        } else {
            Sandbox::Shared(netns_path(d, &o.id))
        });
    }
    Ok(Sandbox::Own(netns_path(d, &r.id)))
}

/// The networks a new container is on: its `NetworkMode` and any more
/// `NetworkingConfig.EndpointsConfig` names, with their aliases and
/// addresses, checked.
pub fn at_create(d: &Daemon, hc: &Value, networking: &Value) -> Result<BTreeMap<String, Endpoint>, Failure> {
    let m = mode(hc);
    // The docker CLI names the default network `default` here too.
    let configs: serde_json::Map<String, Value> = networking["EndpointsConfig"]
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (if k == "default" { "bridge".to_string() } else { k }, v))
        .collect();
    if let Some(other) = m.strip_prefix("container:") {
        let o = d.containers.find(other).map_err(super::containers::failure)?.snapshot();
        if mode(&o.host_config).starts_with("container:") {
            return Err(bad(format!("cannot join the network of {}: it shares another container's", o.name)));
        }
        return Ok(BTreeMap::new());
    }
    let mut names: Vec<String> = vec![m.clone()];
    names.extend(configs.keys().filter(|k| **k != m).cloned());
    let mut out = BTreeMap::new();
    for key in &names {
        // 400, not 404: the docker CLI takes a 404 from create for a
        // missing image and goes to pull it.
        let net = d.networks.find(key).map_err(|e| bad(e.to_string()))?;
        if out.contains_key(&net.name) {
            continue;
        }
        let cfg = configs
            .get(key)
            .or_else(|| configs.get(&net.name))
            .or_else(|| configs.get(&net.id))
            .cloned()
            .unwrap_or(Value::Null);
        let ep = endpoint_config(&net, &cfg)?;
        out.insert(net.name.clone(), ep);
    }
    if out.len() > 1 && out.keys().any(|n| n == "host" || n == "none") {
        return Err(bad(
            "container cannot be disconnected from host network or connected to host network",
        ));
    }
    Ok(out)
}

/// An endpoint's settings from Docker's `EndpointSettings`.
fn endpoint_config(net: &Network, cfg: &Value) -> Result<Endpoint, Failure> {
    let aliases: Vec<String> = cfg["Aliases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let v4 = cfg["IPAMConfig"]["IPv4Address"].as_str().unwrap_or("").to_string();
    let v6 = cfg["IPAMConfig"]["IPv6Address"].as_str().unwrap_or("").to_string();
    if net.predefined() && !aliases.is_empty() {
        return Err(bad(
            "network-scoped alias is supported only for containers in user defined networks",
        ));
    }
    if net.predefined() && (!v4.is_empty() || !v6.is_empty()) {
        return Err(bad("user specified IP address is supported on user defined networks only"));
    }
    for (a, subnet) in [(&v4, net.subnet_v4()), (&v6, net.subnet_v6())] {
        if a.is_empty() {
            continue;
        }
        let ip: IpAddr = a.parse().map_err(|_| bad(format!("invalid IP address {a:?}")))?;
        if !subnet.is_some_and(|s| s.contains(ip)) {
            return Err(bad(format!(
                "invalid IP address {a}: it is not in a subnet of network {}",
                net.name
            )));
        }
    }
    Ok(Endpoint {
        network_id: net.id.clone(),
        aliases,
        ipv4_requested: v4,
        ipv6_requested: v6,
        ..Default::default()
    })
}

/// The container's networks in the order it joins them: its
/// `NetworkMode` network first (the one with the default route).
fn ordered(r: &Record) -> Vec<String> {
    let first = r
        .networks
        .iter()
        .find(|(name, ep)| **name == mode(&r.host_config) || ep.network_id == mode(&r.host_config))
        .map(|(n, _)| n.clone());
    let mut out: Vec<String> = first.iter().cloned().collect();
    out.extend(r.networks.keys().filter(|n| Some(*n) != first.as_ref()).cloned());
    out
}

/// Joins every network of `r` in `netns` and publishes its ports; the
/// record is updated with what it got. On failure nothing is left.
pub fn join_all(d: &Daemon, e: &Entry, netns: &Path) -> Result<(), String> {
    let r = e.snapshot();
    let mut joined: BTreeMap<String, Endpoint> = BTreeMap::new();
    let mut routed = false;
    let undo = |joined: &mut BTreeMap<String, Endpoint>| {
        for ep in joined.values_mut() {
            d.networks.leave(&d.registry, ep, Some(netns));
        }
    };
    for (i, name) in ordered(&r).iter().enumerate() {
        let mut ep = r.networks[name].clone();
        let net = match d.networks.find(&ep.network_id) {
            Ok(n) => n,
            Err(_) => {
                undo(&mut joined);
                return Err(format!("network {name} not found"));
            }
        };
        // The first network that can route out gives the default route
        // (as Docker, an internal network gives none; an overlay gives
        // none either: it answers no gateway).
        let default_route = !routed && !net.internal;
        let joined_now = d
            .networks
            .join(&d.registry, &net, &mut ep, netns, &format!("eth{i}"), default_route)
            .and_then(|_| d.networks.publish_names(&net, &ep, names_of(&r, &ep)));
        if let Err(err) = joined_now {
            d.networks.leave(&d.registry, &mut ep, Some(netns));
            undo(&mut joined);
            return Err(format!("join network {name}: {err}"));
        }
        routed |= default_route && !ep.gateway.is_empty();
        joined.insert(name.clone(), ep);
    }
    // Containers only on overlays reach out through the host's gateway
    // bridge, as Docker's docker_gwbridge.
    let wants_gateway = !routed
        && joined
            .values()
            .any(|ep| d.networks.find(&ep.network_id).is_ok_and(|n| n.scope == "global" && !n.internal));
    let mut gateway = None;
    if wants_gateway {
        let mut ep = Endpoint::default();
        let made = d.networks.gateway_bridge(&d.registry).and_then(|net| {
            ep.network_id = net.id.clone();
            d.networks
                .join(&d.registry, &net, &mut ep, netns, &format!("eth{}", joined.len()), true)
        });
        if let Err(err) = made {
            undo(&mut joined);
            return Err(format!("join the gateway bridge: {err}"));
        }
        gateway = Some(ep);
    }
    let _held = d.networks.port_lock();
    let wanted = ports::wanted(&r.config, &r.host_config)?;
    let ip = ordered(&r)
        .iter()
        .filter_map(|n| joined.get(n))
        .find(|ep| !ep.ip_address.is_empty())
        .map(|ep| ep.ip_address.clone());
    let published = match ip {
        Some(ip) if !wanted.is_empty() => match ports::allocate(&wanted, &published_ports(d), &ip) {
            Ok(p) => p,
            Err(err) => {
                undo(&mut joined);
                if let Some(mut g) = gateway {
                    d.networks.leave(&d.registry, &mut g, Some(netns));
                }
                return Err(format!("driver failed programming external connectivity: {err}"));
            }
        },
        _ => Vec::new(),
    };
    let updated = d.containers.update(e, |r| {
        for (name, ep) in &joined {
            r.networks.insert(name.clone(), ep.clone());
        }
        r.ports = published;
        r.gateway_endpoint = gateway;
    });
    if let Err(err) = updated.map_err(|e| e.to_string()).and_then(|_| sync_firewall(d)) {
        leave_all(d, e);
        return Err(err);
    }
    Ok(())
}

/// Every port published by a container.
fn published_ports(d: &Daemon) -> Vec<Published> {
    d.containers.all().iter().flat_map(|e| e.record().ports.clone()).collect()
}

/// Makes berth's firewall table agree with the networks and ports.
pub fn sync_firewall(d: &Daemon) -> Result<(), String> {
    d.networks.sync_firewall(|| published_ports(d)).map_err(|e| e.to_string())
}

/// Takes the container off every network it joined, unpublishes its
/// ports and stops its resolver.
pub fn leave_all(d: &Daemon, e: &Entry) {
    d.resolvers.stop(&e.record().id);
    let r = e.snapshot();
    if r.ports.is_empty() && !r.networks.values().any(Endpoint::joined) && r.gateway_endpoint.is_none() {
        return;
    }
    let mut networks = r.networks.clone();
    let sandbox = netns_path(d, &r.id);
    for ep in networks.values_mut().chain(r.gateway_endpoint.clone().as_mut()) {
        d.networks.leave(&d.registry, ep, Some(&sandbox));
    }
    let _ = d.containers.update(e, |r| {
        r.networks = networks;
        r.ports.clear();
        r.gateway_endpoint = None;
    });
    if let Err(err) = sync_firewall(d) {
        eprintln!("berthd: {err}");
    }
}

/// Whether `r` is on a network with embedded DNS.
fn uses_dns(d: &Daemon, r: &Record) -> bool {
    r.networks
        .values()
        .filter(|ep| ep.joined())
        .any(|ep| d.networks.find(&ep.network_id).is_ok_and(|n| n.has_dns()))
}

/// The servers a container's questions go to: its `--dns`, else the
/// host's.
fn upstreams(d: &Daemon, r: &Record) -> Vec<IpAddr> {
    let own: Vec<IpAddr> = strings(&r.host_config["Dns"]).iter().filter_map(|s| s.parse().ok()).collect();
    if !own.is_empty() {
        return own;
    }
    dns::nameservers(&std::fs::read_to_string(&d.resolv_conf).unwrap_or_default())
        .into_iter()
        .filter(|a| a.to_string() != dns::ADDRESS)
        .collect()
}

/// What the resolver answers container `id` for `name`: the addresses of
/// containers on its DNS-served networks (by name, alias or ID prefix);
/// else forwarding, unless all its networks are internal.
fn lookup(d: &Daemon, id: &str, name: &str) -> dns::Answer {
    let Ok(asker) = d.containers.find(id).map(|e| e.snapshot()) else {
        return dns::Answer::Refuse;
    };
    let dns_nets: Vec<Network> = asker
        .networks
        .values()
        .filter(|ep| ep.joined())
        .filter_map(|ep| d.networks.find(&ep.network_id).ok())
        .filter(Network::has_dns)
        .collect();
    let nets: Vec<String> = dns_nets.iter().map(|n| n.id.clone()).collect();
    let mut out = Vec::new();
    // Global networks: every host's containers, from the cluster store.
    for net in dns_nets.iter().filter(|n| n.scope == "global") {
        for n in d.networks.global_names(net) {
            if n.names.iter().any(|x| x.eq_ignore_ascii_case(name)) {
                out.extend(n.addresses);
            }
        }
    }
    for e in d.containers.all() {
        let r = e.snapshot();
        let by_id = name.len() >= 12 && r.id.starts_with(name);
        for ep in r.networks.values().filter(|ep| ep.joined() && nets.contains(&ep.network_id)) {
            if by_id || r.name.eq_ignore_ascii_case(name) || ep.aliases.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                out.extend(ep.ip_address.parse::<IpAddr>().ok());
                out.extend(ep.ipv6_address.parse::<IpAddr>().ok());
            }
        }
    }
    out.sort();
    out.dedup();
    if !out.is_empty() {
        return dns::Answer::Found(out);
    }
    let reaches_out = asker
        .networks
        .values()
        .filter(|ep| ep.joined())
        .filter_map(|ep| d.networks.find(&ep.network_id).ok())
        .any(|n| !n.internal)
        || asker.gateway_endpoint.is_some();
    if reaches_out {
        dns::Answer::Forward
    } else {
        dns::Answer::Refuse
    }
}

/// What a container is called on a network: its name, its aliases there
/// and its short ID.
fn names_of(r: &Record, ep: &Endpoint) -> Vec<String> {
    let mut names = vec![r.name.clone(), r.short_id().to_string()];
    names.extend(ep.aliases.iter().cloned());
    names
}

/// Serves container `e`'s resolver if it is on a network with DNS.
pub fn start_dns(d: &Arc<Daemon>, e: &Entry) {
    let r = e.snapshot();
    if !uses_dns(d, &r) {
        return;
    }
    let Ok(Sandbox::Own(netns)) = sandbox(d, &r) else { return };
    let weak = Arc::downgrade(d);
    let id = r.id.clone();
    let find: dns::Lookup = Arc::new(move |name: &str| match weak.upgrade() {
        Some(d) => lookup(&d, &id, name),
        None => dns::Answer::Refuse,
    });
    if let Err(err) = d.resolvers.start(&r.id, &netns, find, upstreams(d, &r)) {
        eprintln!("berthd: the DNS resolver of {}: {err}", r.id);
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Where systemd-resolved keeps the host's real nameservers.
const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";
/// Docker's servers for a host that has none a container can reach.
const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// The container's /etc/resolv.conf: the embedded resolver on a
/// user-defined network, else its `--dns` or the host's servers;
/// `--dns-search` and `--dns-option` or the host's.
pub fn resolv_conf(d: &Daemon, r: &Record) -> String {
    let host = std::fs::read_to_string(&d.resolv_conf).unwrap_or_default();
    let host_lines = |key: &str| -> Vec<String> {
        host.lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .filter(|rest| rest.starts_with(char::is_whitespace))
            .flat_map(|rest| rest.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    let or_host = |key: &str, own: Vec<String>| if own.is_empty() { host_lines(key) } else { own };
    let search = or_host("search", strings(&r.host_config["DnsSearch"]));
    let mut options = or_host("options", strings(&r.host_config["DnsOptions"]));
    let own_dns = strings(&r.host_config["Dns"]);
    let host_net = mode(&r.host_config) == "host";
    let servers: Vec<String> = if uses_dns(d, r) {
        options.push("ndots:0".into());
        vec![dns::ADDRESS.to_string()]
    } else if !own_dns.is_empty() {
        own_dns
    } else {
        // The host's loopback resolvers are not reachable from a
        // namespace of its own.
        let usable = |text: &str| -> Vec<String> {
            dns::nameservers(text)
                .into_iter()
                .filter(|a| host_net || !a.is_loopback())
                .map(|a| a.to_string())
                .collect()
        };
        let mut servers = usable(&host);
        // As Docker: a host behind systemd-resolved (127.0.0.53) has its
        // real servers there; else Google's public ones.
        if servers.is_empty() {
            servers = usable(&std::fs::read_to_string(SYSTEMD_RESOLV_CONF).unwrap_or_default());
        }
        if servers.is_empty() {
            servers = FALLBACK_NAMESERVERS.iter().map(|s| s.to_string()).collect();
        }
        servers
    };
    let mut out = String::new();
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    options.dedup();
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// The container's first address and gateway, if it has one.
pub fn primary(r: &Record) -> Option<(String, String)> {
    ordered(r)
        .iter()
        .filter_map(|n| r.networks.get(n))
        .find(|ep| !ep.ip_address.is_empty())
        .map(|ep| (ep.ip_address.clone(), ep.gateway.clone()))
}

/// Docker's `NetworkSettings` of a container.
pub fn settings(d: &Daemon, r: &Record) -> Value {
    let mut networks = serde_json::Map::new();
    for (name, ep) in &r.networks {
        let ipam = if ep.ipv4_requested.is_empty() && ep.ipv6_requested.is_empty() {
            Value::Null
        } else {
            json!({ "IPv4Address": ep.ipv4_requested, "IPv6Address": ep.ipv6_requested })
        };
        networks.insert(
            name.clone(),
            json!({
                "IPAMConfig": ipam, "Links": null, "Aliases": if ep.aliases.is_empty() { Value::Null } else { json!(ep.aliases) },
                "NetworkID": ep.network_id, "EndpointID": ep.endpoint_id, "Gateway": ep.gateway,
                "IPAddress": ep.ip_address, "IPPrefixLen": ep.prefix, "IPv6Gateway": ep.ipv6_gateway,
                "GlobalIPv6Address": ep.ipv6_address, "GlobalIPv6PrefixLen": ep.ipv6_prefix,
                "MacAddress": ep.mac_address, "DriverOpts": null,
            }),
        );
    }
    let default = r.networks.get("bridge").cloned().unwrap_or_default();
    let sandbox_key = match sandbox(d, r) {
        Ok(Sandbox::Own(p)) | Ok(Sandbox::Shared(p)) if r.state.running() => p.display().to_string(),
        _ => String::new(),
    };
    json!({
        "Bridge": "", "SandboxID": if sandbox_key.is_empty() { "" } else { r.id.as_str() }, "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": port_map(r), "SandboxKey": sandbox_key,
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "EndpointID": default.endpoint_id, "Gateway": default.gateway, "GlobalIPv6Address": default.ipv6_address,
        "GlobalIPv6PrefixLen": default.ipv6_prefix, "IPAddress": default.ip_address, "IPPrefixLen": default.prefix,
        "IPv6Gateway": default.ipv6_gateway, "MacAddress": default.mac_address,
        "Networks": networks,
    })
}

/// `NetworkSettings.Ports`: every exposed or published port, with its
/// host bindings while running (`null` when it has none).
fn port_map(r: &Record) -> Value {
    let mut m = serde_json::Map::new();
    for k in r.config["ExposedPorts"]
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        m.insert(k, Value::Null);
    }
    for p in &r.ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let host_ip = if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip };
        let entry = m.entry(key).or_insert_with(|| json!([]));
        if !entry.is_array() {
            *entry = json!([]);
        }
        if let Some(a) = entry.as_array_mut() {
            a.push(json!({ "HostIp": host_ip, "HostPort": p.host_port.to_string() }));
        }
    }
    Value::Object(m)
}

/// `Ports` of a container in `GET /containers/json`.
pub fn ports_list(r: &Record) -> Value {
    let mut out: Vec<Value> = r
        .ports
        .iter()
        .map(|p| {
            json!({ "IP": if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip }, "PrivatePort": p.container_port,
                "PublicPort": p.host_port, "Type": p.proto })
        })
        .collect();
    for k in r.config["ExposedPorts"]
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if let Ok((port, proto)) = ports::parse_key(&k) {
            if !r.ports.iter().any(|p| p.container_port == port && p.proto == proto) {
                out.push(json!({ "PrivatePort": port, "Type": proto }));
            }
        }
    }
    Value::Array(out)
}

/// A network's containers, as `network inspect` shows them.
fn containers_on(d: &Daemon, net: &Network) -> Value {
    let mut out = serde_json::Map::new();
    for e in d.containers.all() {
        let r = e.snapshot();
        for ep in r
            .networks
            .values()
            .filter(|ep| ep.network_id == net.id && (ep.joined() || (r.state.running() && !net.has_addresses())))
        {
            out.insert(
                r.id.clone(),
                json!({
                    "Name": r.name, "EndpointID": ep.endpoint_id, "MacAddress": ep.mac_address,
                    "IPv4Address": if ep.ip_address.is_empty() { String::new() } else { format!("{}/{}", ep.ip_address, ep.prefix) },
                    "IPv6Address": if ep.ipv6_address.is_empty() { String::new() } else { format!("{}/{}", ep.ipv6_address, ep.ipv6_prefix) },
                }),
            );
        }
    }
    Value::Object(out)
}

/// The running containers on `net`.
fn users(d: &Daemon, net: &Network) -> Vec<String> {
    d.containers
        .all()
        .iter()
        .map(|e| e.snapshot())
        .filter(|r| r.networks.values().any(|ep| ep.network_id == net.id && ep.joined()))
        .map(|r| r.name)
        .collect()
}

fn list(d: &Daemon, f: &BTreeMap<String, Vec<String>>) -> Result<Value, Failure> {
    super::only_filters(f, &["name", "id", "driver", "label", "type", "scope", "dangling"]).map_err(bad)?;
    let any = |key: &str, test: &dyn Fn(&str) -> bool| f.get(key).is_none_or(|vals| vals.iter().any(|v| test(v)));
    let out: Vec<Value> = d
        .networks
        .all()
        .iter()
        .filter(|n| {
            any("name", &|v| n.name.contains(v))
                && any("id", &|v| n.id.starts_with(v))
                && any("driver", &|v| n.driver == v)
                && any("scope", &|v| v == "local")
                && any("type", &|v| (v == "builtin") == n.predefined())
                && any("dangling", &|v| {
                    matches!(v, "true" | "1") == (!n.predefined() && users(d, n).is_empty())
                })
                && f.get("label").is_none_or(|vals| {
                    vals.iter().all(|l| match l.split_once('=') {
                        Some((k, v)) => n.labels.get(k).map(String::as_str) == Some(v),
                        None => n.labels.contains_key(l),
                    })
                })
        })
        .map(|n| n.to_api(containers_on(d, n)))
        .collect();
    Ok(Value::Array(out))
}

fn create(d: &Daemon, body: &[u8]) -> Result<Value, Failure> {
    // Clients send null for what they leave out (the Python SDK does).
    fn drop_nulls(v: Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, drop_nulls(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.into_iter().map(drop_nulls).collect()),
            v => v,
        }
    }
    let invalid = |e: serde_json::Error| bad(format!("invalid network create request: {e}"));
    let v: Value = serde_json::from_slice(body).map_err(invalid)?;
    let req: crate::network::CreateRequest = serde_json::from_value(drop_nulls(v)).map_err(invalid)?;
    let net = d.networks.create(&d.registry, req).map_err(failure)?;
    if let Err(e) = sync_firewall(d) {
        eprintln!("berthd: {e}");
    }
    d.events.simple(
        "network",
        "create",
        &net.id,
        &[("name", net.name.clone()), ("type", net.driver.clone())],
    );
    Ok(json!({ "Id": net.id, "Warning": "" }))
}

fn remove(d: &Daemon, key: &str) -> Result<(), Failure> {
    let net = d.networks.find(key).map_err(failure)?;
    if !users(d, &net).is_empty() {
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "error while removing network: network {} id {} has active endpoints",
                net.name, net.id
            ),
        ));
    }
    let net = d.networks.remove(&d.registry, &net.id).map_err(failure)?;
    if let Err(e) = sync_firewall(d) {
        eprintln!("berthd: {e}");
    }
    d.events.simple(
        "network",
        "destroy",
        &net.id,
        &[("name", net.name.clone()), ("type", net.driver.clone())],
    );
    Ok(())
}

fn prune(d: &Daemon, f: &BTreeMap<String, Vec<String>>) -> Result<Value, Failure> {
    super::only_filters(f, &["label", "until"]).map_err(bad)?;
    let until = f
        .get("until")
        .and_then(|v| v.first())
        .map(|u| crate::time::parse_until(u))
        .transpose()
        .map_err(bad)?;
    let mut deleted = Vec::new();
    for n in d.networks.all() {
        let labelled = f.get("label").is_none_or(|vals| {
            vals.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => n.labels.get(k).map(String::as_str) == Some(v),
                None => n.labels.contains_key(l),
            })
        });
        let old = until.is_none_or(|u| crate::time::parse_secs(&n.created) < u);
        let referenced = d
            .containers
            .all()
            .iter()
            .any(|e| e.record().networks.values().any(|ep| ep.network_id == n.id));
        if n.predefined() || !labelled || !old || referenced {
            continue;
        }
        if remove(d, &n.id).is_ok() {
            deleted.push(n.name.clone());
        }
    }
    Ok(json!({ "NetworksDeleted": deleted }))
}

/// The body of connect and disconnect: its JSON, the network and the
/// container it names.
fn target(d: &Daemon, key: &str, body: &[u8]) -> Result<(Value, Network, Arc<Entry>), Failure> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let net = d.networks.find(key).map_err(failure)?;
    let e = d
        .containers
        .find(v["Container"].as_str().unwrap_or_default())
        .map_err(super::containers::failure)?;
    Ok((v, net, e))
}

fn network_event(d: &Daemon, action: &str, net: &Network, container: &str) {
    let attrs = [
        ("container", container.to_string()),
        ("name", net.name.clone()),
        ("type", net.driver.clone()),
    ];
    d.events.simple("network", action, &net.id, &attrs);
}

/// `network connect`: on the record, and joined now if it runs (with
/// its resolver and resolv.conf made to match).
fn connect(d: &Arc<Daemon>, key: &str, body: &[u8]) -> Result<(), Failure> {
    let (v, net, e) = target(d, key, body)?;
    let r = e.snapshot();
    if r.networks.contains_key(&net.name) {
        return Err((
            StatusCode::FORBIDDEN,
            format!("endpoint with name {} already exists in network {}", r.name, net.name),
        ));
    }
    if !net.has_addresses() || r.networks.keys().any(|n| n == "host" || n == "none") || mode(&r.host_config).starts_with("container:") {
        return Err(bad(
            "container cannot be disconnected from host network or connected to host network",
        ));
    }
    let mut ep = endpoint_config(&net, &v["EndpointConfig"])?;
    if r.state.running() {
        let Ok(Sandbox::Own(netns)) = sandbox(d, &r) else {
            return Err(bad("the container has no network namespace of its own"));
        };
        let used = r.networks.values().filter(|ep| ep.joined()).count();
        let routed = r
            .networks
            .values()
            .filter(|ep| ep.joined())
            .any(|ep| d.networks.find(&ep.network_id).is_ok_and(|n| !n.internal));
        // The next ethN not taken (a disconnect may have left a gap).
        let mut nl = berth_net::netlink::Netlink::in_namespace(&netns).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let ifname = (used..)
            .map(|i| format!("eth{i}"))
            .find(|n| nl.index(n).is_err())
            .expect("an unused interface name");
        d.networks
            .join(&d.registry, &net, &mut ep, &netns, &ifname, !routed && !net.internal)
            .map_err(failure)?;
        if let Err(e) = d.networks.publish_names(&net, &ep, names_of(&r, &ep)) {
            d.networks.leave(&d.registry, &mut ep, Some(&netns));
            return Err(failure(e));
        }
    }
    d.containers
        .update(&e, |r| {
            r.networks.insert(net.name.clone(), ep);
        })
        .map_err(super::containers::failure)?;
    if r.state.running() && net.has_dns() {
        let now = e.snapshot();
        let file = d.containers.dir(&now.id).join("resolv.conf");
        if let Err(err) = std::fs::write(&file, resolv_conf(d, &now)) {
            eprintln!("berthd: rewrite {}: {err}", file.display());
        }
        start_dns(d, &e);
    }
    network_event(d, "connect", &net, &r.id);
    Ok(())
}

/// `network disconnect`: left now if joined, and off the record.
fn disconnect(d: &Daemon, key: &str, body: &[u8]) -> Result<(), Failure> {
    let (_, net, e) = target(d, key, body)?;
    let r = e.snapshot();
    let Some((name, mut ep)) = r
        .networks
        .iter()
        .find(|(_, ep)| ep.network_id == net.id)
        .map(|(n, ep)| (n.clone(), ep.clone()))
    else {
        return Err((
            StatusCode::FORBIDDEN,
            format!("container {} is not connected to network {}", r.id, net.name),
        ));
    };
    if net.name == "host" && r.state.running() {
        return Err(bad(
            "container cannot be disconnected from host network or connected to host network",
        ));
    }
    let left_ip = ep.ip_address.clone();
    d.networks.leave(&d.registry, &mut ep, Some(&netns_path(d, &r.id)));
    d.containers
        .update(&e, |r| {
            r.networks.remove(&name);
            // Ports published to the address just given back would lead to
            // whoever gets it next.
            r.ports.retain(|p| p.container_ip != left_ip);
        })
        .map_err(super::containers::failure)?;
    if let Err(err) = sync_firewall(d) {
        eprintln!("berthd: {err}");
    }
    network_event(d, "disconnect", &net, &r.id);
    Ok(())
}

fn answer(r: Result<(StatusCode, Value), Failure>) -> super::Reply {
    match r {
        Ok((status, v)) if status == StatusCode::NO_CONTENT => {
            let _ = v;
            let mut reply = hyper::Response::new(super::body::full(hyper::body::Bytes::new()));
            *reply.status_mut() = status;
            reply
        }
        Ok((status, v)) => super::json_reply(status, &v),
        Err((status, message)) => super::error(status, message),
    }
}

/// Routes `/networks/...`.
pub async fn route(d: &Arc<Daemon>, method: &hyper::Method, rest: &[&str], q: &BTreeMap<String, String>, body: &[u8]) -> super::Reply {
    use hyper::Method;
    let f = match super::filters(q) {
        Ok(f) => f,
        Err(e) => return super::error(StatusCode::BAD_REQUEST, e),
    };
    let (d, rest, body) = (d.clone(), rest.iter().map(|s| s.to_string()).collect::<Vec<_>>(), body.to_vec());
    let method = method.clone();
    // Links, addresses and nft run here: off the async workers.
    let result = tokio::task::spawn_blocking(move || -> Result<(StatusCode, Value), Failure> {
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        match (&method, rest.as_slice()) {
            (&Method::GET, []) => Ok((StatusCode::OK, list(&d, &f)?)),
            (&Method::POST, ["create"]) => Ok((StatusCode::CREATED, create(&d, &body)?)),
            (&Method::POST, ["prune"]) => Ok((StatusCode::OK, prune(&d, &f)?)),
            (&Method::GET, [key]) => {
                let n = d.networks.find(key).map_err(failure)?;
                Ok((StatusCode::OK, n.to_api(containers_on(&d, &n))))
            }
            (&Method::DELETE, [key]) => remove(&d, key).map(|_| (StatusCode::NO_CONTENT, Value::Null)),
            (&Method::POST, [key, "connect"]) => connect(&d, key, &body).map(|_| (StatusCode::OK, Value::Null)),
            (&Method::POST, [key, "disconnect"]) => disconnect(&d, key, &body).map(|_| (StatusCode::OK, Value::Null)),
            _ => Err((StatusCode::NOT_FOUND, "page not found".into())),
        }
    })
    .await
    .unwrap_or_else(|e| Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())));
    answer(result)
}
