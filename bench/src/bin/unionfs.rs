//! Union filesystem workloads, side by side in one run: a native
//! directory, kernel overlayfs, fuse-overlayfs (Debian's, when installed)
//! and berth-unionfs. Prints seconds per workload and ratios to kernel
//! overlayfs.
//!
//! Usage: unionfs (as root; BENCH_SCALE=N divides the tree sizes by N)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_bench::time;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Native,
    Kernel,
    FuseOverlayfs,
    Berth,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Native => "native",
            Kind::Kernel => "overlayfs (kernel)",
            Kind::FuseOverlayfs => "fuse-overlayfs",
            Kind::Berth => "berth-unionfs",
        }
    }
}

/// One mounted union over a fresh copy-free lower.
struct Mount {
    kind: Kind,
    merged: PathBuf,
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.kind != Kind::Native {
            let _ = nix::mount::umount2(&self.merged, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn mount(kind: Kind, lower: &Path, scratch: &Path) -> Result<Mount> {
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
    match kind {
        Kind::Native => {
            // The native baseline works on a plain copy of the lower.
            let status = Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", lower.display()))
                .arg(&merged)
                .status()?;
            if !status.success() {
                bail!("cp -a failed");
            }
        }
        Kind::Kernel => nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )?,
        Kind::FuseOverlayfs | Kind::Berth => {
            let program = if kind == Kind::Berth {
                berth_tests::bin_dir().join("berth-unionfs")
            } else {
                "fuse-overlayfs".into()
            };
            let status = Command::new(&program)
                .arg("-o")
                .arg(&opts)
                .arg(&merged)
                .status()
                .with_context(|| format!("run {}", program.display()))?;
            if !status.success() {
                bail!("{} failed to mount", program.display());
            }
        }
    }
    Ok(Mount { kind, merged })
}

fn drop_caches() {
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

fn build_lower(lower: &Path, dirs: usize, files: usize) -> Result<()> {
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
    let big = vec![7u8; 1 << 20];
    let mut f = std::fs::File::create(lower.join("big"))?;
    for _ in 0..256 {
        std::io::Write::write_all(&mut f, &big)?;
    }
    Ok(())
}

type Workload = (&'static str, fn(&Path) -> Result<()>);

fn main() -> std::process::ExitCode {
    berth_tests::exit_with("unionfs bench", bench())
}

fn bench() -> Result<()> {
    let scale: usize = std::env::var("BENCH_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let dir = tempfile::tempdir()?;
    let lower = dir.path().join("lower");
    build_lower(&lower, 170 / scale, 100)?;
    let mut kinds = vec![Kind::Native, Kind::Kernel, Kind::Berth];
    if Command::new("fuse-overlayfs").arg("--version").output().is_ok() {
        kinds.insert(2, Kind::FuseOverlayfs);
    }
    let workloads: Vec<Workload> = vec![
        ("warm walk (stat every entry)", |m| {
            walk(m);
            walk(m);
            Ok(())
        }),
        ("cold sequential read 256 MiB", |m| {
            drop_caches();
            std::io::copy(&mut std::fs::File::open(m.join("big"))?, &mut std::io::sink())?;
            Ok(())
        }),
        ("create 5000 small files", |m| {
            std::fs::create_dir(m.join("new"))?;
            for i in 0..5000 {
                std::fs::write(m.join(format!("new/f{i}")), b"z")?;
            }
            Ok(())
        }),
        ("rm -rf of a lower tree", |m| Ok(std::fs::remove_dir_all(m.join("rm"))?)),
    ];
    let mut rows: Vec<(&str, Vec<Duration>)> = Vec::new();
    for (name, work) in &workloads {
        let mut times = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let scratch = dir.path().join(format!("s-{name}-{i}").replace(' ', "_"));
            let m = mount(*kind, &lower, &scratch)?;
            if name.starts_with("warm") {
                walk(&m.merged);
            }
            let (d, r) = time(|| work(&m.merged));
            r.with_context(|| format!("{name} on {}", kind.name()))?;
            times.push(d);
            drop(m);
            let _ = std::fs::remove_dir_all(&scratch);
        }
        rows.push((name, times));
    }
    print!("{:<32}", "workload (seconds)");
    for k in &kinds {
        print!(" {:>20}", k.name());
    }
    println!();
    let kernel = kinds.iter().position(|k| *k == Kind::Kernel).unwrap_or(0);
    for (name, times) in &rows {
        print!("{name:<32}");
        for t in times {
            print!(" {:>20.3}", t.as_secs_f64());
        }
        println!();
        print!("{:<32}", "  ratio to kernel overlayfs");
        for t in times {
            print!(" {:>20.2}", t.as_secs_f64() / times[kernel].as_secs_f64());
        }
        println!();
    }
    Ok(())
}
