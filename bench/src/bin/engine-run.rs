//! End-to-end `docker run --rm busybox true` with the stock docker CLI:
//! through berthd, and through Debian's dockerd (docker.io, with
//! containerd and runc), interleaved in one run on the same busybox
//! image.
//!
//! Both daemons run on private sockets and data roots. dockerd starts
//! with `--bridge=none --iptables=false` (no bridge, no NAT rules on
//! this machine), so both run containers with `--network none`: a
//! network namespace of their own with loopback only. berthd uses its
//! default drivers (fuse-union, local) and runs in a network namespace of
//! its own, where it makes its default bridge. Data roots are on /tmp's disk,
//! exec roots on /run's tmpfs, as the two daemons' defaults are.
//!
//! Usage: engine-run (as root, after `cargo build --release --bins`;
//! BENCH_ITERS=N, default 30)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_bench::{iterations, median, ms, time};

struct Daemon {
    name: &'static str,
    socket: PathBuf,
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::SIGTERM);
        let _ = self.child.wait();
    }
}

fn docker(socket: &Path) -> Command {
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", format!("unix://{}", socket.display()));
    c.stdin(Stdio::null());
    c
}

fn wait_ready(d: &mut Daemon) -> Result<()> {
    for _ in 0..400 {
        if docker(&d.socket)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?
            .success()
        {
            return Ok(());
        }
        if let Some(s) = d.child.try_wait()? {
            bail!("{} exited with {s}", d.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{} did not answer on {}", d.name, d.socket.display())
}

fn run_once(socket: &Path) -> Result<Duration> {
    let (took, status) = time(|| {
        docker(socket)
            .args(["run", "--rm", "--network", "none", "busybox", "true"])
            .stdout(Stdio::null())
            .status()
    });
    if !status?.success() {
        bail!("docker run through {} failed", socket.display());
    }
    Ok(took)
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Exec roots on tmpfs, as /run/berth and /var/run/docker are.
    let run = tempfile::Builder::new().prefix("engine-run").tempdir_in("/run")?;
    let release = berth_tests::bin_dir()
        .join("../release")
        .canonicalize()
        .unwrap_or_else(|_| berth_tests::bin_dir());
    let berthd_bin = release.join("berthd");
    if !berthd_bin.is_file() {
        bail!("{} is missing: run cargo build --release --bins first", berthd_bin.display());
    }
    let archive = dir.path().join("busybox.tar");
    berth_tests::busybox_docker_archive(&archive, &["busybox:latest"])?;

    let log = |name: &str| std::fs::File::create(dir.path().join(format!("{name}.log")));
    let socket = dir.path().join("berth.sock");
    // berthd makes its default bridge and nftables table at start: in a
    // network namespace of its own they stay off the machine's.
    let netns = dir.path().join("netns");
    berth_net::netns::create(&netns).context("a network namespace for berthd")?;
    struct Pin(PathBuf);
    impl Drop for Pin {
        fn drop(&mut self) {
            let _ = berth_net::netns::remove(&self.0);
        }
    }
    let _pin = Pin(netns.clone());
    let child = berth_tests::in_netns(&netns, &berthd_bin)
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .arg("--data-root")
        .arg(dir.path().join("berth-root"))
        .arg("--exec-root")
        .arg(run.path().join("berth"))
        .stderr(log("berthd")?)
        .spawn()
        .context("start berthd")?;
    let mut berth = Daemon {
        name: "berthd",
        socket,
        child,
    };
    wait_ready(&mut berth)?;

    let socket = dir.path().join("docker.sock");
    let child = Command::new("dockerd")
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .arg("--data-root")
        .arg(dir.path().join("docker-root"))
        .arg("--exec-root")
        .arg(run.path().join("docker"))
        .arg("--pidfile")
        .arg(dir.path().join("docker.pid"))
        .args([
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--storage-driver",
            "overlay2",
        ])
        .stdout(log("dockerd-out")?)
        .stderr(log("dockerd")?)
        .spawn()
        .context("start dockerd (Debian's docker.io)")?;
    let mut dockerd = Daemon {
        name: "dockerd",
        socket,
        child,
    };
    wait_ready(&mut dockerd)?;

    for d in [&berth, &dockerd] {
        let ok = docker(&d.socket)
            .arg("load")
            .arg("-i")
            .arg(&archive)
            .stdout(Stdio::null())
            .status()?
            .success();
        if !ok {
            bail!("docker load into {} failed", d.name);
        }
        // One warm-up run each.
        run_once(&d.socket)?;
    }
    let n = iterations(30);
    let (mut b, mut k) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        b.push(run_once(&berth.socket)?);
        k.push(run_once(&dockerd.socket)?);
    }
    let (mb, mk) = (median(&b), median(&k));
    println!("docker run --rm --network none busybox true, docker CLI, median of {n} interleaved runs:");
    println!("  berthd (fuse-union, berth-runtime)    {:>9}", ms(mb));
    println!("  dockerd 20.10 (overlay2, containerd, runc) {:>9}", ms(mk));
    println!(
        "  ratio berthd / dockerd: {:.2} (below 1.00: berthd is faster)",
        mb.as_secs_f64() / mk.as_secs_f64()
    );
    println!(
        "  target: berthd under 100 ms: {}",
        if mb < Duration::from_millis(100) { "met" } else { "NOT met" }
    );
    Ok(())
}
