//! berth-unionfs: mount a union of layers, with fuse-overlayfs' command
//! line: `berth-unionfs [-f] -o lowerdir=L1:L2[,upperdir=U,workdir=W] MOUNTPOINT`.
//! It also accepts the form `mount -t fuse.berth-unionfs SOURCE MOUNTPOINT -o
//! OPTIONS` passes to a helper (`berth-unionfs SOURCE MOUNTPOINT -o OPTIONS`).
//! Without `-f` it detaches once the mount is in place. `-o passthrough=off`
//! serves file I/O through the writeback cache even where FUSE passthrough
//! is allowed; `-o volatile` skips every flush to disk, as overlayfs'
//! option of that name does; `-o threads=N` sets the number of threads
//! reading /dev/fuse; `-o uring=off` keeps requests off io_uring (by
//! default berth-unionfs serves them over io_uring, one queue per CPU,
//! where the kernel has FUSE over io_uring, turning the kernel's
//! enable_uring switch on when it may).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use berth_fs::fuse::{MountOptions, Session};
use berth_fs::union::UnionFs;

struct Args {
    lowers: Vec<PathBuf>,
    upper: Option<PathBuf>,
    work: Option<PathBuf>,
    mountpoint: PathBuf,
    foreground: bool,
    passthrough: bool,
    volatile: bool,
    threads: Option<usize>,
    uring: bool,
}

fn parse() -> Result<Args, String> {
    let mut opts = Vec::new();
    let mut positional = Vec::new();
    let mut foreground = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-f" | "--foreground" => foreground = true,
            "-o" => opts.push(it.next().ok_or("-o needs options")?),
            "-h" | "--help" => return Err(
                "usage: berth-unionfs [-f] -o lowerdir=L1:L2[,upperdir=U,workdir=W][,passthrough=on|off][,volatile][,threads=N][,uring=on|off] MOUNTPOINT"
                    .into(),
            ),
            s if s.starts_with("-o") => opts.push(s[2..].to_string()),
            s if s.starts_with('-') => return Err(format!("unknown flag {s}")),
            s => positional.push(PathBuf::from(s)),
        }
    }
    let mountpoint = positional.pop().ok_or("missing MOUNTPOINT")?;
    let (mut lowers, mut upper, mut work) = (Vec::new(), None, None);
    let (mut passthrough, mut volatile, mut threads, mut uring) = (true, false, None, true);
    for o in opts.iter().flat_map(|o| o.split(',')) {
        match o.split_once('=') {
            Some(("lowerdir", v)) => lowers = v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect(),
            Some(("upperdir", v)) => upper = Some(PathBuf::from(v)),
            Some(("workdir", v)) => work = Some(PathBuf::from(v)),
            Some(("passthrough", "on")) => passthrough = true,
            Some(("passthrough", "off")) => passthrough = false,
            Some(("passthrough", v)) => return Err(format!("passthrough={v}: expected on or off")),
            Some(("uring", "on")) => uring = true,
            Some(("uring", "off")) => uring = false,
            Some(("uring", v)) => return Err(format!("uring={v}: expected on or off")),
            None if o == "volatile" => volatile = true,
            Some(("threads", v)) => match v.parse::<usize>() {
                Ok(n) if (1..=256).contains(&n) => threads = Some(n),
                _ => return Err(format!("threads={v}: expected a number from 1 to 256")),
            },
            // Generic mount options mount(8) passes along are accepted.
            _ => {}
        }
    }
    if lowers.is_empty() {
        return Err("lowerdir= is required".into());
    }
    if upper.is_some() != work.is_some() {
        return Err("upperdir= and workdir= go together".into());
    }
    for d in lowers.iter().chain(upper.iter()).chain(work.iter()) {
        if !d.is_dir() {
            return Err(format!("{} is not a directory", d.display()));
        }
    }
    Ok(Args {
        lowers,
        upper,
        work,
        mountpoint,
        foreground,
        passthrough,
        volatile,
        threads,
        uring,
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-unionfs: {e}");
            return ExitCode::from(2);
        }
    };
    let upper = args.upper.clone().zip(args.work.clone());
    if let Some((u, w)) = &upper {
        if let Err(e) = berth_fs::union::copy_up::Upper::new(u.clone(), w.clone()).clean_work() {
            eprintln!("berth-unionfs: clean work directory {}: {e}", w.display());
            return ExitCode::FAILURE;
        }
    }
    let read_only = upper.is_none();
    let make_fs = || {
        let fs = UnionFs::with_upper(upper.clone(), args.lowers.clone())?;
        let fs = if args.passthrough { fs } else { fs.without_passthrough() };
        Ok::<_, std::io::Error>(if args.volatile { fs.volatile() } else { fs })
    };
    // Enough threads that one is always waiting in read when a request
    // comes: a lone client's next request must not wait for the thread
    // that answered the last one to come back.
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let options = MountOptions {
        fsname: "berth-unionfs".into(),
        subtype: "berth-unionfs".into(),
        read_only,
        threads: args.threads.unwrap_or((2 * cpus).clamp(4, 16)),
        uring: args.uring,
    };
    if args.foreground {
        return match make_fs()
            .and_then(|fs| Session::mount(fs, &args.mountpoint, options))
            .and_then(|s| s.run())
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("berth-unionfs: {}: {e}", args.mountpoint.display());
                ExitCode::FAILURE
            }
        };
    }
    // Detach: the child mounts and serves; the parent exits once the mount
    // is in place (or with the child's error), like fuse-overlayfs.
    let (mut rd, mut wr) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth-unionfs: pipe: {e}");
            return ExitCode::FAILURE;
        }
    };
    // SAFETY: single-threaded here; the child only continues this program.
    match unsafe { libc::fork() } {
        -1 => {
            eprintln!("berth-unionfs: fork: {}", std::io::Error::last_os_error());
            ExitCode::FAILURE
        }
        0 => {
            drop(rd);
            let _ = nix::unistd::setsid();
            match make_fs().and_then(|fs| Session::mount(fs, &args.mountpoint, options)) {
                Ok(session) => {
                    let _ = wr.write_all(b"ok");
                    drop(wr);
                    // A daemon holds nobody's terminal or pipes: whoever
                    // started us may be waiting for them to close.
                    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
                        for fd in 0..3 {
                            // SAFETY: dup2 onto the standard descriptors from an open file.
                            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) };
                        }
                    }
                    match session.run() {
                        Ok(()) => ExitCode::SUCCESS,
                        Err(_) => ExitCode::FAILURE,
                    }
                }
                Err(e) => {
                    let _ = wr.write_all(format!("{}: {e}", args.mountpoint.display()).as_bytes());
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            drop(wr);
            let mut msg = String::new();
            let _ = rd.read_to_string(&mut msg);
            if msg == "ok" {
                ExitCode::SUCCESS
            } else {
                eprintln!("berth-unionfs: {}", if msg.is_empty() { "the mount process died" } else { &msg });
                ExitCode::FAILURE
            }
        }
    }
}
