//! Container start latency: berth-runtime vs runc vs crun on the same
//! busybox bundle running `true`, interleaved in one run.
//!
//! Two measures: `run` (one command), and create + start + wait for exit.
//! crun refuses this hybrid cgroup host unless /sys/fs/cgroup/unified is
//! unmounted in a private mount namespace, so every runtime runs under the
//! same `unshare -m` wrapper and pays the same overhead; berth-runtime and
//! runc are also measured bare.
//!
//! Usage: runtime-start (as root; BENCH_ITERS=N, default 40)

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_bench::{iterations, median, ms, time};

struct Peer {
    name: &'static str,
    binary: PathBuf,
    wrapped: bool,
}

const UNSHARE_PREFIX: &str = "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"";

fn command(peer: &Peer, root: &Path, args: &[&str]) -> Command {
    if peer.wrapped {
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c", UNSHARE_PREFIX, "sh"]);
        c.arg(&peer.binary).arg("--root").arg(root).args(args);
        c
    } else {
        let mut c = Command::new(&peer.binary);
        c.arg("--root").arg(root).args(args);
        c
    }
}

/// Runs a runtime command. Its stderr goes to a file, not a pipe: a
/// created container inherits it and would hold a pipe open.
fn check(c: &mut Command, what: &str) -> Result<()> {
    let mut err = tempfile::tempfile()?;
    let status = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.try_clone()?)
        .status()
        .with_context(|| what.to_string())?;
    if !status.success() {
        use std::io::{Read, Seek};
        let mut text = String::new();
        err.seek(std::io::SeekFrom::Start(0))?;
        err.read_to_string(&mut text)?;
        bail!("{what}: {}", text.trim());
    }
    Ok(())
}

fn wait_exit(pid: i32) -> Result<()> {
    // SAFETY: plain syscall; a pidfd becomes readable when the process exits.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Ok(()); // already gone
    }
    // SAFETY: we own the fd just returned.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    let mut fds = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16))?;
    Ok(())
}

fn run_once(peer: &Peer, root: &Path, bundle: &Path, id: &str) -> Result<Duration> {
    let b = bundle.to_str().unwrap_or_default();
    let (d, r) = time(|| check(&mut command(peer, root, &["run", "--bundle", b, id]), &format!("{} run", peer.name)));
    r?;
    Ok(d)
}

fn lifecycle_once(peer: &Peer, root: &Path, bundle: &Path, id: &str) -> Result<Duration> {
    let b = bundle.to_str().unwrap_or_default();
    let pid_file = bundle.join(format!("{id}.pid"));
    let p = pid_file.to_str().unwrap_or_default();
    let (d, r) = time(|| -> Result<()> {
        check(
            &mut command(peer, root, &["create", "--bundle", b, "--pid-file", p, id]),
            &format!("{} create", peer.name),
        )?;
        let pid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
        check(&mut command(peer, root, &["start", id]), &format!("{} start", peer.name))?;
        wait_exit(pid)
    });
    r?;
    check(
        &mut command(peer, root, &["delete", "--force", id]),
        &format!("{} delete", peer.name),
    )?;
    Ok(d)
}

fn main() -> std::process::ExitCode {
    berth_tests::exit_with("runtime-start", bench())
}

fn bench() -> Result<()> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("runtime-start needs root");
    }
    let iters = iterations(40);
    let berth = berth_tests::bin_dir().join("berth-runtime");
    if !berth.exists() {
        bail!("{} missing: cargo build --release --bins first", berth.display());
    }
    let mut peers = vec![
        Peer {
            name: "berth-runtime",
            binary: berth.clone(),
            wrapped: true,
        },
        Peer {
            name: "runc",
            binary: "/usr/sbin/runc".into(),
            wrapped: true,
        },
        Peer {
            name: "crun",
            binary: "/usr/bin/crun".into(),
            wrapped: true,
        },
        Peer {
            name: "berth-runtime (bare)",
            binary: berth,
            wrapped: false,
        },
        Peer {
            name: "runc (bare)",
            binary: "/usr/sbin/runc".into(),
            wrapped: false,
        },
    ];
    peers.retain(|p| p.binary.exists());
    let dir = tempfile::tempdir()?;
    let bundle = dir.path().join("bundle");
    berth_tests::busybox_rootfs(&bundle.join("rootfs"))?;
    let mut config = berth_tests::default_config(&["true"]);
    // Hybrid cgroup v1: let every runtime use the same default cgroup layout.
    config["linux"]["cgroupsPath"] = serde_json::json!(null);
    std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    let roots: Vec<tempfile::TempDir> = peers.iter().map(|_| tempfile::tempdir()).collect::<std::io::Result<_>>()?;

    let mut run_t = vec![Vec::new(); peers.len()];
    let mut life_t = vec![Vec::new(); peers.len()];
    for i in 0..iters + 3 {
        for (k, peer) in peers.iter().enumerate() {
            let id = format!("bench-{}-{k}-{i}", std::process::id());
            let r = run_once(peer, roots[k].path(), &bundle, &id)?;
            let l = lifecycle_once(peer, roots[k].path(), &bundle, &format!("{id}-l"))?;
            if i >= 3 {
                run_t[k].push(r);
                life_t[k].push(l);
            }
        }
    }
    println!("container start latency, busybox `true`, {iters} iterations interleaved (median ms)");
    println!("{:<24} {:>10} {:>22}", "runtime", "run", "create+start+wait");
    let med: Vec<(Duration, Duration)> = (0..peers.len()).map(|k| (median(&run_t[k]), median(&life_t[k]))).collect();
    for (k, p) in peers.iter().enumerate() {
        println!("{:<24} {:>10} {:>22}", p.name, ms(med[k].0), ms(med[k].1));
    }
    // Ratios of berth-runtime to each peer measured the same way.
    for (k, p) in peers.iter().enumerate() {
        let Some(base) = peers.iter().position(|q| q.wrapped == p.wrapped && q.name.starts_with("berth")) else {
            continue;
        };
        if k == base {
            continue;
        }
        println!(
            "ratio {} / {}: run {:.2}, create+start+wait {:.2}",
            peers[base].name,
            p.name,
            med[base].0.as_secs_f64() / med[k].0.as_secs_f64(),
            med[base].1.as_secs_f64() / med[k].1.as_secs_f64()
        );
    }
    Ok(())
}
