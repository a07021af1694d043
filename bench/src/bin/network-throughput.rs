//! TCP throughput (iperf3) between two containers on a berth bridge
//! network, against two plain network namespaces joined the same way by
//! hand (a bridge and two veth pairs made with `ip`), and against host
//! networking (both ends in one namespace, over loopback), interleaved in
//! one run.
//!
//! berthd runs in a network namespace of its own (`berth_tests::Berthd`),
//! so everything stays off the machine's networking. The test image is
//! busybox, which has no iperf3: Debian's iperf3 runs inside each
//! container's network namespace (its SandboxKey) through nsenter, which
//! is the path the container's traffic takes (veth, bridge, veth).
//!
//! Usage: network-throughput (as root, after `cargo build --release
//! --bins`; BENCH_ITERS=N rounds, default 15; BENCH_SECONDS per run,
//! default 3)

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use berth_bench::iterations;
use berth_tests::{in_netns, ok, Berthd};

/// Pinned namespaces made for the run, released at its end.
struct Pins(Vec<PathBuf>);

impl Drop for Pins {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = berth_net::netns::remove(p);
        }
    }
}

/// iperf3 servers, one per pair, killed at the end.
struct Servers(Vec<std::process::Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn server(ns: &Path, addr: &str) -> Result<std::process::Child> {
    in_netns(ns, "iperf3")
        .args(["-s", "-B", addr, "-p", "5201"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start iperf3 -s")
}

/// One iperf3 run from `client` to the server at `addr`; Gbit/s.
fn iperf(client: &Path, addr: &str, seconds: u32) -> Result<f64> {
    let mut last = String::new();
    for _ in 0..50 {
        let o = in_netns(client, "iperf3")
            .args(["-c", addr, "-p", "5201", "-J", "-t", &seconds.to_string()])
            .output()?;
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        // A server still busy with the last test answers with an error.
        if let (true, Some(bps)) = (o.status.success(), v["end"]["sum_received"]["bits_per_second"].as_f64()) {
            return Ok(bps / 1e9);
        }
        // The server may not listen yet.
        last = String::from_utf8_lossy(&o.stdout).into_owned();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bail!("iperf3 -c {addr} never ran: {last}")
}

fn ip(ns: &Path, args: &[&str]) -> Result<()> {
    let o = in_netns(ns, "ip").args(args).output()?;
    if !o.status.success() {
        bail!("ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(())
}

fn main() -> Result<()> {
    if Command::new("iperf3").arg("--version").output().is_err() {
        bail!("iperf3 is missing: apt-get install iperf3");
    }
    let rounds = iterations(15);
    let seconds: u32 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir()?;
    let mut pins = Pins(Vec::new());

    // berth: two containers on a user-defined bridge network.
    let d = Berthd::with_busybox()?;
    ok(d.docker().args(["network", "create", "--subnet", "10.200.0.0/24", "tput"]));
    let mut sandboxes = Vec::new();
    for name in ["server", "client"] {
        ok(d.docker()
            .args(["run", "-d", "--name", name, "--network", "tput", "busybox", "sleep", "3600"]));
        sandboxes.push(PathBuf::from(ok(d.docker().args([
            "inspect",
            "-f",
            "{{.NetworkSettings.SandboxKey}}",
            name,
        ]))));
    }
    let server_ip = ok(d
        .docker()
        .args(["inspect", "-f", "{{.NetworkSettings.Networks.tput.IPAddress}}", "server"]));

    // By hand: a bridge in a host namespace, a veth pair to each of two.
    let host = dir.path().join("host");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for p in [&host, &a, &b] {
        berth_net::netns::create(p)?;
        pins.0.push(p.clone());
    }
    ip(&host, &["link", "add", "br0", "type", "bridge"])?;
    ip(&host, &["link", "set", "br0", "up"])?;
    for (ns, addr, port) in [(&a, "10.201.0.2/24", "pa"), (&b, "10.201.0.3/24", "pb")] {
        ip(&host, &["link", "add", port, "type", "veth", "peer", "name", "eth0"])?;
        ip(&host, &["link", "set", "eth0", "netns", &ns.display().to_string()])?;
        ip(&host, &["link", "set", port, "master", "br0", "up"])?;
        ip(ns, &["addr", "add", addr, "dev", "eth0"])?;
        ip(ns, &["link", "set", "eth0", "up"])?;
    }

    let _servers = Servers(vec![
        server(&sandboxes[0], &server_ip)?,
        server(&a, "10.201.0.2")?,
        server(&d.netns(), "127.0.0.1")?,
    ]);
    let (mut berth, mut manual, mut host_net) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Each round starts with the next one, so no side always goes first.
        for k in 0..3 {
            match (round + k) % 3 {
                0 => berth.push(iperf(&sandboxes[1], &server_ip, seconds)?),
                1 => manual.push(iperf(&b, "10.201.0.2", seconds)?),
                _ => host_net.push(iperf(&d.netns(), "127.0.0.1", seconds)?),
            }
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|x, y| x.total_cmp(y));
        v[v.len() / 2]
    };
    let (b, m, h) = (med(&mut berth), med(&mut manual), med(&mut host_net));
    println!("TCP throughput, iperf3 -t {seconds}, {rounds} rounds interleaved, medians (Gbit/s)");
    println!("  berth bridge network (container to container)  {b:>8.2}");
    println!("  plain namespaces on a bridge, by hand          {m:>8.2}");
    println!("  host networking (one namespace, loopback)      {h:>8.2}");
    println!(
        "  ratio berth / by hand: {:.3} (target at least 0.95: {})",
        b / m,
        if b / m >= 0.95 { "met" } else { "not met" }
    );
    println!("  ratio berth / host networking: {:.2}", b / h);
    ok(d.docker().args(["rm", "-f", "server", "client"]));
    Ok(())
}
