//! Union filesystem workloads, side by side in one run: a native
//! directory, kernel overlayfs, fuse-overlayfs (Debian's 1.x and, when
//! built, 2.0 from crates.io) and berth-unionfs (with FUSE passthrough and
//! with the writeback cache). Prints seconds per workload and ratios to
//! kernel overlayfs.
//!
//! Everything happens on a fresh ext4 filesystem in a loop-mounted image,
//! so that every peer meets the same disk state (a long-used filesystem
//! makes inode allocation slow in some block groups and not in others).
//!
//! Usage: unionfs (as root). Each workload runs BENCH_ITERS times (default
//! 3) per peer on a fresh mount; the median is printed. BENCH_SCALE=N
//! divides the tree sizes by N;
//! FUSE_OVERLAYFS2=PATH names the fuse-overlayfs 2.0 binary (default
//! /var/tmp/fo2/bin/fuse-overlayfs, where `cargo install fuse-overlayfs
//! --version 2.0.0 --root /var/tmp/fo2` puts it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_bench::time;

#[derive(Clone)]
enum Kind {
    Native,
    Kernel,
    /// A FUSE mount program with fuse-overlayfs' command line, and extra
    /// options.
    Fuse(PathBuf, &'static str),
}

#[derive(Clone)]
struct Peer {
    name: String,
    kind: Kind,
}

/// One mounted union over the shared lower.
struct Mount {
    fuse_or_kernel: bool,
    merged: PathBuf,
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.fuse_or_kernel {
            let _ = nix::mount::umount2(&self.merged, nix::mount::MntFlags::empty())
                .or_else(|_| nix::mount::umount2(&self.merged, nix::mount::MntFlags::MNT_DETACH));
        }
    }
}

/// A fresh ext4 filesystem in a sparse image file, mounted by loop.
struct Scratch {
    image: PathBuf,
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Result<Scratch> {
        let image = std::env::temp_dir().join(format!("berth-bench-unionfs-{}.img", std::process::id()));
        std::fs::File::create(&image)?.set_len(8 << 30)?;
        let dir = tempfile::tempdir()?;
        let run = |cmd: &mut Command| -> Result<()> {
            let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
            if !out.status.success() {
                bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            Ok(())
        };
        let made = run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))
            .and_then(|_| run(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(dir.path())));
        if let Err(e) = made {
            let _ = std::fs::remove_file(&image);
            return Err(e);
        }
        Ok(Scratch { image, dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
        let _ = std::fs::remove_file(&self.image);
    }
}

fn mount(peer: &Peer, lower: &Path, scratch: &Path, needs: &[&str]) -> Result<Mount> {
    let (upper, work, merged) = (scratch.join("upper"), scratch.join("work"), scratch.join("merged"));
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d)?;
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    match &peer.kind {
        Kind::Native => {
            // The native baseline works on a plain copy of what the
            // workload touches.
            for n in needs {
                let status = Command::new("cp").arg("-a").arg(lower.join(n)).arg(&merged).status()?;
                if !status.success() {
                    bail!("cp -a {n} failed");
                }
            }
            return Ok(Mount {
                fuse_or_kernel: false,
                merged,
            });
        }
        Kind::Kernel => nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )?,
        Kind::Fuse(program, extra) => {
            let opts = if extra.is_empty() { opts } else { format!("{opts},{extra}") };
            let out = Command::new(program)
                .arg("-o")
                .arg(&opts)
                .arg(&merged)
                .output()
                .with_context(|| format!("run {}", program.display()))?;
            if !out.status.success() {
                bail!(
                    "{} failed to mount: {}",
                    program.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
    }
    Ok(Mount {
        fuse_or_kernel: true,
        merged,
    })
}

fn drop_caches() {
    nix::unistd::sync();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

fn walk(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            n += 1;
            if m.is_dir() {
                n += walk(&p);
            }
        }
    }
    n
}

/// The shared lower layer: a tree of `dirs` x `files` small files, a
/// directory to delete, files to append to, and a big file.
fn build_lower(lower: &Path, dirs: usize, files: usize, big_mib: usize) -> Result<()> {
    for d in 0..dirs {
        let dir = lower.join(format!("tree/d{d}"));
        std::fs::create_dir_all(&dir)?;
        for f in 0..files {
            std::fs::write(dir.join(format!("f{f}")), b"x")?;
        }
    }
    std::fs::create_dir_all(lower.join("rm"))?;
    for f in 0..dirs * files / 4 {
        std::fs::write(lower.join(format!("rm/f{f}")), b"y")?;
    }
    std::fs::create_dir_all(lower.join("append"))?;
    let page = vec![b'a'; 4096];
    for f in 0..1000 {
        std::fs::write(lower.join(format!("append/f{f}")), &page)?;
    }
    let chunk = vec![7u8; 1 << 20];
    let mut f = std::fs::File::create(lower.join("big"))?;
    for _ in 0..big_mib {
        f.write_all(&chunk)?;
    }
    f.sync_all()?;
    Ok(())
}

struct Workload {
    name: &'static str,
    /// Top-level lower entries the workload touches (copied for native).
    needs: &'static [&'static str],
    /// Run untimed before the timed part.
    prepare: fn(&Path) -> Result<()>,
    run: fn(&Path, &Path) -> Result<()>,
}

fn nothing(_: &Path) -> Result<()> {
    Ok(())
}

fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "cold walk (stat every entry)",
            needs: &["tree"],
            prepare: |_| {
                drop_caches();
                Ok(())
            },
            run: |m, _| {
                walk(m);
                Ok(())
            },
        },
        Workload {
            name: "warm walk (stat every entry)",
            needs: &["tree"],
            prepare: |m| {
                walk(m);
                Ok(())
            },
            run: |m, _| {
                walk(m);
                Ok(())
            },
        },
        Workload {
            name: "cold sequential read (big file)",
            needs: &["big"],
            prepare: |_| {
                drop_caches();
                Ok(())
            },
            run: |m, _| {
                std::io::copy(&mut std::fs::File::open(m.join("big"))?, &mut std::io::sink())?;
                Ok(())
            },
        },
        Workload {
            name: "create 5000 small files",
            needs: &[],
            prepare: nothing,
            run: |m, _| {
                std::fs::create_dir(m.join("new"))?;
                for i in 0..5000 {
                    std::fs::write(m.join(format!("new/f{i}")), b"z")?;
                }
                Ok(())
            },
        },
        Workload {
            name: "copy-up append to 1000 files",
            needs: &["append"],
            prepare: nothing,
            run: |m, _| {
                for i in 0..1000 {
                    let mut f = std::fs::OpenOptions::new().append(true).open(m.join(format!("append/f{i}")))?;
                    f.write_all(b"appended\n")?;
                }
                Ok(())
            },
        },
        Workload {
            name: "rm -rf of a lower tree",
            needs: &["rm"],
            prepare: nothing,
            run: |m, _| Ok(std::fs::remove_dir_all(m.join("rm"))?),
        },
        Workload {
            name: "256 MiB write + fsync",
            needs: &[],
            prepare: nothing,
            run: |m, _| {
                let chunk = vec![3u8; 1 << 20];
                let mut f = std::fs::File::create(m.join("written"))?;
                for _ in 0..256 {
                    f.write_all(&chunk)?;
                }
                f.sync_all()?;
                Ok(())
            },
        },
        Workload {
            name: "tar of a tree",
            needs: &["tree"],
            prepare: nothing,
            run: |m, out| {
                let status = Command::new("tar")
                    .arg("-cf")
                    .arg(out.join("tree.tar"))
                    .arg("-C")
                    .arg(m)
                    .arg("tree")
                    .status()?;
                if !status.success() {
                    bail!("tar failed");
                }
                Ok(())
            },
        },
    ]
}

fn peers() -> Vec<Peer> {
    let mut peers = vec![
        Peer {
            name: "native".into(),
            kind: Kind::Native,
        },
        Peer {
            name: "overlayfs (kernel)".into(),
            kind: Kind::Kernel,
        },
    ];
    if Command::new("fuse-overlayfs").arg("--version").output().is_ok() {
        peers.push(Peer {
            name: "fuse-overlayfs 1.x".into(),
            kind: Kind::Fuse("fuse-overlayfs".into(), ""),
        });
    }
    let fo2 = std::env::var_os("FUSE_OVERLAYFS2")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/tmp/fo2/bin/fuse-overlayfs".into());
    if fo2.exists() {
        peers.push(Peer {
            name: "fuse-overlayfs 2.0".into(),
            kind: Kind::Fuse(fo2, ""),
        });
    } else {
        eprintln!("fuse-overlayfs 2.0 not found at {} (set FUSE_OVERLAYFS2): left out", fo2.display());
    }
    let ours = berth_tests::bin_dir().join("berth-unionfs");
    peers.push(Peer {
        name: "berth-unionfs".into(),
        kind: Kind::Fuse(ours.clone(), ""),
    });
    peers.push(Peer {
        name: "berth (writeback)".into(),
        kind: Kind::Fuse(ours, "passthrough=off"),
    });
    peers
}

fn main() -> std::process::ExitCode {
    berth_tests::exit_with("unionfs bench", bench())
}

fn bench() -> Result<()> {
    let scale: usize = std::env::var("BENCH_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let fs = Scratch::new().context("make a scratch ext4 filesystem (needs root, mkfs.ext4, loop devices)")?;
    let lower = fs.path().join("lower");
    build_lower(&lower, 170 / scale, 100, 512 / scale)?;
    let peers = peers();
    let mut rows: Vec<(&str, Vec<Duration>)> = Vec::new();
    let iters = berth_bench::iterations(3);
    for w in workloads() {
        let mut times = Vec::new();
        for (i, peer) in peers.iter().enumerate() {
            let mut samples = Vec::new();
            // Interleaved with nothing else: one peer's runs back to back,
            // the median kept.
            for _ in 0..iters {
                let scratch = fs.path().join(format!("s{i}"));
                let out = scratch.join("out");
                std::fs::create_dir_all(&out)?;
                let m = mount(peer, &lower, &scratch, w.needs)?;
                (w.prepare)(&m.merged)?;
                // Nobody's dirty data is left for the next run to flush.
                nix::unistd::sync();
                let (d, r) = time(|| (w.run)(&m.merged, &out));
                r.with_context(|| format!("{} on {}", w.name, peer.name))?;
                samples.push(d);
                drop(m);
                std::fs::remove_dir_all(&scratch)?;
                nix::unistd::sync();
            }
            times.push(berth_bench::median(&samples));
        }
        eprintln!("{}: done", w.name);
        rows.push((w.name, times));
    }
    println!("big file: {} MiB, tree: {} entries", 512 / scale, 170 / scale * 101);
    print!("{:<34}", "workload (seconds)");
    for p in &peers {
        print!(" {:>19}", p.name);
    }
    println!();
    for (name, times) in &rows {
        print!("{name:<34}");
        for t in times {
            print!(" {:>19.3}", t.as_secs_f64());
        }
        println!();
        print!("{:<34}", "  ratio to kernel overlayfs");
        for t in times {
            print!(" {:>19.2}", t.as_secs_f64() / times[1].as_secs_f64());
        }
        println!();
    }
    Ok(())
}
