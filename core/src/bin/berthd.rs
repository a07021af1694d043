//! berthd: the berth engine daemon. Serves the Docker Engine API subset
//! on a UNIX socket (default /run/berth/berth.sock, mode 0660).
//!
//! Usage: berthd [-H unix:///path/to.sock] [--data-root DIR] [--exec-root DIR]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;

/// The berth engine daemon.
#[derive(Parser)]
#[command(name = "berthd", version)]
struct Args {
    /// Where to listen: unix:///path or a path (TCP needs TLS, not built yet).
    #[arg(short = 'H', long = "host", default_value = "unix:///run/berth/berth.sock")]
    host: String,
    /// Where images, containers and volumes live.
    #[arg(long = "data-root", default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Where state that ends with the machine lives (the runtime's state,
    /// the monitors' sockets).
    #[arg(long = "exec-root", default_value = "/run/berth")]
    exec_root: PathBuf,
}

fn socket_path(host: &str) -> Result<PathBuf> {
    if let Some(p) = host.strip_prefix("unix://") {
        return Ok(PathBuf::from(p));
    }
    if host.starts_with("tcp://") || host.contains(':') && !host.starts_with('/') {
        bail!("{host}: berthd listens on UNIX sockets only (plain TCP would let anyone on the network run containers as root)");
    }
    Ok(PathBuf::from(host))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let socket = socket_path(&args.host)?;
    std::fs::create_dir_all(&args.data_root).with_context(|| format!("create data root {}", args.data_root.display()))?;
    // Traversable by path only, as Docker's: what lies below is root's.
    std::fs::set_permissions(&args.data_root, std::fs::Permissions::from_mode(0o711))
        .with_context(|| format!("chmod {}", args.data_root.display()))?;
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    // A socket left by a daemon that died is replaced; a live one is not.
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        bail!("{}: another daemon is listening there", socket.display());
    }
    let _ = std::fs::remove_file(&socket);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        let listener = berth_core::sys::SocketPath::new(&socket)
            .and_then(|p| tokio::net::UnixListener::bind(p.path()))
            .with_context(|| format!("listen on {}", socket.display()))?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660)).with_context(|| format!("chmod {}", socket.display()))?;
        let daemon = Arc::new(berth_core::daemon::Daemon::new(args.data_root.clone(), args.exec_root.clone())?);
        // Containers that kept running while berthd was away are followed
        // again before the first request is answered.
        berth_core::daemon::containers::restore(&daemon).await;
        berth_core::daemon::containers::reconcile(&daemon);
        tokio::select! {
            r = berth_core::daemon::serve(listener, daemon) => r.context("serve the API"),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })?;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
