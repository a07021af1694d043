//! Time to attach a container's network namespace to a bridge network
//! (address, endpoint, veth pair, address and route inside, firewall
//! rules), berth against Debian's netavark (1.4, Podman's network stack)
//! doing the same setup, interleaved in one run.
//!
//! Everything happens in a network namespace made for the run (the
//! bench's "host"): berth's `Networks` (the code berthd runs: IPAM, the
//! bridge driver over rtnetlink, the nftables table) in this process,
//! netavark as Podman runs it (`netavark setup NETNS`, network options on
//! stdin). Each attach goes to a fresh, empty namespace; the network
//! exists already (its first attach is not counted), and the containers
//! attached before stay. Two cases: no published port, and one published
//! port per container (the firewall changes on every attach).
//!
//! Usage: network-attach (as root; BENCH_ITERS=N, default 30)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_bench::{iterations, median, ms, time};
use serde_json::json;

const NETAVARK: &str = "/usr/lib/podman/netavark";

/// Pinned namespaces made for the run, released at its end.
struct Pins(Vec<PathBuf>);

impl Drop for Pins {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = berth_net::netns::remove(p);
        }
    }
}

fn netavark(host: &Path, config: &Path, verb: &str, ns: &Path, opts: &serde_json::Value) -> Result<Duration> {
    let mut child = berth_tests::in_netns(host, NETAVARK)
        .arg("--config")
        .arg(config)
        .arg(verb)
        .arg(ns)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("start netavark")?;
    let body = opts.to_string();
    let (took, out) = time(|| -> Result<std::process::Output> {
        child.stdin.take().context("stdin")?.write_all(body.as_bytes())?;
        Ok(child.wait_with_output()?)
    });
    let out = out?;
    if !out.status.success() {
        bail!("netavark {verb}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

fn netavark_options(i: usize, port: Option<u16>) -> serde_json::Value {
    let ports: Vec<serde_json::Value> = port
        .map(|p| json!({ "container_port": 80, "host_port": p, "host_ip": "", "protocol": "tcp", "range": 1 }))
        .into_iter()
        .collect();
    json!({
        "container_id": format!("{:064x}", i + 1),
        "container_name": format!("c{i}"),
        "networks": { "nv": { "interface_name": "eth0", "static_ips": [format!("10.123.{}.{}", i / 250, i % 250 + 2)] } },
        "network_info": { "nv": { "name": "nv", "id": format!("{:064x}", 0xabc), "driver": "bridge", "network_interface": "nvbr0",
            "subnets": [{ "subnet": "10.123.0.0/16", "gateway": "10.123.255.254" }],
            "ipv6_enabled": false, "internal": false, "dns_enabled": false } },
        "port_mappings": ports,
    })
}

fn main() -> Result<()> {
    if !Path::new(NETAVARK).exists() {
        bail!("{NETAVARK} is missing: apt-get install netavark");
    }
    let iters = iterations(30);
    let dir = tempfile::tempdir()?;
    let mut pins = Pins(Vec::new());
    let host = dir.path().join("host");
    berth_net::netns::create(&host)?;
    pins.0.push(host.clone());
    // This thread (and what it starts) lives in the bench's host from here.
    let ns = std::fs::File::open(&host)?;
    // SAFETY: setns on the calling thread, before any other thread exists.
    if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) } < 0 {
        bail!("setns: {}", std::io::Error::last_os_error());
    }
    let registry = berth_core::drivers::builtin_registry(&dir.path().join("root"), None)?;
    let networks = berth_core::network::Networks::open(&dir.path().join("root"), &registry, None)?;
    let net = networks.create(
        &registry,
        serde_json::from_value(json!({ "Name": "bench", "IPAM": { "Config": [{ "Subnet": "10.124.0.0/16" }] } }))?,
    )?;
    let config = dir.path().join("netavark");
    std::fs::create_dir_all(&config)?;

    let mut results = Vec::new();
    for with_port in [false, true] {
        let (mut berth, mut peer) = (Vec::new(), Vec::new());
        // The containers attached before stay (their ports stay published).
        let mut published: Vec<berth_core::network::Published> = Vec::new();
        // One attach each first, not counted: the bridge and rules come up.
        for i in 0..=iters {
            let port = with_port.then_some(20000 + i as u16);
            let b = dir.path().join(format!("b{with_port}{i}"));
            let n = dir.path().join(format!("n{with_port}{i}"));
            berth_net::netns::create(&b)?;
            berth_net::netns::create(&n)?;
            pins.0.push(b.clone());
            pins.0.push(n.clone());
            let mut ep = berth_core::network::Endpoint {
                network_id: net.id.clone(),
                ..Default::default()
            };
            let (took, joined) = time(|| -> Result<()> {
                networks.join(&registry, &net, &mut ep, &b, "eth0", true)?;
                published.extend(port.map(|p| berth_core::network::Published {
                    proto: "tcp".into(),
                    container_port: 80,
                    host_ip: String::new(),
                    host_port: p,
                    container_ip: ep.ip_address.clone(),
                }));
                networks.sync_firewall(|| published.clone())?;
                Ok(())
            });
            joined?;
            let nv = netavark(&host, &config, "setup", &n, &netavark_options(i, port))?;
            if i > 0 {
                berth.push(took);
                peer.push(nv);
            }
        }
        results.push((with_port, median(&berth), median(&peer)));
    }
    println!("network attach: a fresh namespace onto an existing bridge network, {iters} iterations, medians");
    println!("  {:<28}{:>12}{:>14}{:>10}", "", "berth (ms)", "netavark (ms)", "ratio");
    for (with_port, b, n) in &results {
        let case = if *with_port {
            "with one published port"
        } else {
            "no published port"
        };
        println!(
            "  {case:<28}{:>12}{:>14}{:>10.2}",
            ms(*b),
            ms(*n),
            b.as_secs_f64() / n.as_secs_f64()
        );
    }
    let worst = results.iter().map(|r| r.1).max().unwrap_or_default();
    println!(
        "  target: berth at most 10 ms: {}",
        if worst <= Duration::from_millis(10) { "met" } else { "not met" }
    );
    Ok(())
}
