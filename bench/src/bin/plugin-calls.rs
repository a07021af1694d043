//! The cost of reaching a volume driver through each of berth's plugin
//! transports, in one run: the built-in `local` driver (a call is a Rust
//! method call), the example `dirvol` loaded as a shared object (a call
//! crosses the C ABI on a worker thread bounded by a timeout), the same
//! `dirvol` served as a Docker-style plugin over HTTP on a UNIX socket
//! (what Docker's legacy plugins cost), and the Python plugin of the
//! tests over HTTP (a third-party plugin as many are written).
//!
//! Two measures each: a round trip (`/VolumeDriver.Get` of an existing
//! volume), and a volume's life as a container sees it (create, mount,
//! unmount, remove). Ratios are against the built-in driver.
//!
//! Usage: cargo build --release -p berth-plugin --examples;
//! plugin-calls (BENCH_ITERS=N rounds of each, default 2000; a tenth as
//! many lifetimes)

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use berth_bench::{iterations, median};
use berth_plugin::abi::Plugin;
use berth_plugin::http::{serve_at, Address, Client};
use berth_plugin::protocol::Remote;
use berth_plugin::volume::{CreateRequest, MountRequest};
use berth_plugin::VolumeDriver;

/// A loaded shared object served as an out-of-process plugin would be.
struct Loaded(Arc<berth_core::plugins::shared_object::SharedObject>);

impl Plugin for Loaded {
    fn name(&self) -> &'static str {
        "dirvol"
    }
    fn interfaces(&self) -> Vec<&'static str> {
        vec!["VolumeDriver"]
    }
    fn call(&self, method: &str, request: &[u8]) -> Vec<u8> {
        self.0
            .call(method, request)
            .unwrap_or_else(|e| berth_plugin::abi::error_response(&e.to_string()))
    }
}

struct Python(Child);

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_driver(name: &str, socket: &Path) -> Result<Remote> {
    let client = Arc::new(Client::new(Address::Unix(socket.to_path_buf()), Duration::from_secs(30)));
    client.call("/Plugin.Activate", b"{}").context("activate")?;
    Ok(Remote::new(name, Box::new(move |m, r| client.call(m, r))))
}

/// Median round trip and median volume lifetime, in microseconds.
fn measure(d: &dyn VolumeDriver, rounds: usize) -> Result<(f64, f64)> {
    let create = |name: &str| {
        d.create(&CreateRequest {
            name: name.into(),
            opts: Default::default(),
        })
    };
    create("bench-get")?;
    let mut trips = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        d.get("bench-get")?;
        trips.push(t.elapsed());
    }
    d.remove("bench-get")?;
    let mut lives = Vec::new();
    for i in 0..(rounds / 10).max(1) {
        let name = format!("bench-life-{i}");
        let req = MountRequest {
            name: name.clone(),
            id: "c1".into(),
        };
        let t = Instant::now();
        create(&name)?;
        d.mount(&req)?;
        d.unmount(&req)?;
        d.remove(&name)?;
        lives.push(t.elapsed());
    }
    let us = |v: &[Duration]| median(v).as_secs_f64() * 1e6;
    Ok((us(&trips), us(&lives)))
}

fn main() -> Result<()> {
    let rounds = iterations(2000);
    let dir = tempfile::tempdir()?;
    let builtin = berth_fs::volume::local::LocalDriver::new(dir.path().join("local"))?;
    let mut settings = berth_core::plugins::Settings::new(dir.path());
    settings.home = dir.path().join("homes");
    let so_path = berth_tests::example_plugin("dirvol");
    let (so, in_process) = berth_core::plugins::load_shared_object(&so_path, &settings).map_err(anyhow::Error::msg)?;
    let socket = dir.path().join("dirvol.sock");
    serve_at(&socket, Arc::new(Loaded(so)))?;
    let over_http = http_driver("dirvol", &socket)?;
    let py_socket = dir.path().join("pyvol.sock");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins/dockerplugin.py");
    let _python = Python(
        Command::new("python3")
            .arg(script)
            .arg("volume")
            .arg(&py_socket)
            .arg(dir.path().join("py"))
            .stdin(Stdio::null())
            .spawn()
            .context("start python3")?,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !py_socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let python = http_driver("pyvol", &py_socket)?;
    let rows: [(&str, &dyn VolumeDriver, usize); 4] = [
        ("built-in (local)", &builtin, rounds),
        ("shared object (dirvol .so)", in_process.as_ref(), rounds),
        ("HTTP on a UNIX socket (dirvol)", &over_http, rounds),
        ("HTTP on a UNIX socket (Python pyvol)", &python, (rounds / 4).max(10)),
    ];
    let mut results = Vec::new();
    for (name, d, n) in rows {
        results.push((name, measure(d, n)?));
    }
    let (base_trip, base_life) = results[0].1;
    println!(
        "volume driver calls, medians ({rounds} round trips, {} lifetimes each; Python a quarter)",
        rounds / 10
    );
    println!(
        "{:<40} {:>12} {:>8} {:>16} {:>8}",
        "transport", "get (us)", "ratio", "lifetime (us)", "ratio"
    );
    for (name, (trip, life)) in &results {
        println!(
            "{name:<40} {trip:>12.1} {:>8.1} {life:>16.1} {:>8.2}",
            trip / base_trip,
            life / base_life
        );
    }
    Ok(())
}
