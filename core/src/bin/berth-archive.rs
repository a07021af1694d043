//! berth-archive: berthd's helper for `docker cp` and `docker export`,
//! chrooted into a container's root filesystem (see
//! `berth_core::container::archive`).
//!
//! Usage: berth-archive stat|get|put ROOTFS PATH, berth-archive export ROOTFS.
//! Exit 2 with the message on stderr when the path does not exist, 1 on
//! other errors.

use std::process::ExitCode;

use berth_core::container::archive;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (op, rootfs, path) = match args.as_slice() {
        [op, rootfs] if op == "export" => (op.as_str(), rootfs, None),
        [op, rootfs, path] if matches!(op.as_str(), "stat" | "get" | "put") => (op.as_str(), rootfs, Some(path.as_str())),
        _ => {
            eprintln!("usage: berth-archive stat|get|put ROOTFS PATH | export ROOTFS");
            return ExitCode::from(1);
        }
    };
    let result = archive::enter(std::path::Path::new(rootfs)).and_then(|()| match (op, path) {
        ("stat", Some(p)) => archive::stat(p).map(|v| println!("{v}")),
        ("get", Some(p)) => archive::pack(Some(p), std::io::stdout().lock()),
        ("put", Some(p)) => archive::unpack(p, std::io::stdin().lock()),
        _ => archive::pack(None, std::io::stdout().lock()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", e.message);
            ExitCode::from(if e.missing { 2 } else { 1 })
        }
    }
}
