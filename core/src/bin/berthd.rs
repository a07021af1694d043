//! berthd: the berth engine daemon. Serves the Docker Engine API subset
//! on a UNIX socket (default /run/berth/berth.sock, mode 0660), and on
//! TCP only with TLS.
//!
//! Usage: berthd [-H unix:///path/to.sock]... [-H tcp://ADDR:PORT --tlsverify
//! --tlscacert CA --tlscert CERT --tlskey KEY] [--data-root DIR] [--exec-root DIR]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use berth_core::daemon::tls::TlsFiles;
use clap::Parser;

/// The berth engine daemon.
#[derive(Parser)]
#[command(name = "berthd", version)]
struct Args {
    /// Where to listen: unix:///path (or a path), or tcp://ADDR:PORT with
    /// --tls or --tlsverify. May be given more than once.
    #[arg(short = 'H', long = "host", default_value = "unix:///run/berth/berth.sock")]
    hosts: Vec<String>,
    /// Serve TCP with TLS (the server's --tlscert and --tlskey).
    #[arg(long)]
    tls: bool,
    /// Serve TCP with TLS and require client certificates signed by --tlscacert.
    #[arg(long)]
    tlsverify: bool,
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    #[arg(long)]
    tlscert: Option<PathBuf>,
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Where images, containers and volumes live.
    #[arg(long = "data-root", default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Where state that ends with the machine lives (the runtime's state,
    /// the monitors' sockets).
    #[arg(long = "exec-root", default_value = "/run/berth")]
    exec_root: PathBuf,
    /// The resolv.conf whose nameservers containers use (directly, or
    /// through the embedded DNS of user-defined networks).
    #[arg(long = "resolv-conf", default_value = "/etc/resolv.conf")]
    resolv_conf: PathBuf,
    /// The etcd that berthds share global (overlay) networks through
    /// (etcd://HOST:PORT).
    #[arg(long = "cluster-store")]
    cluster_store: Option<String>,
    /// This host's address to the others: where VXLAN traffic comes to.
    #[arg(long = "cluster-advertise")]
    cluster_advertise: Option<std::net::Ipv4Addr>,
    /// The graph driver that holds image and container layers: a built-in
    /// one (fuse-union, overlay, vfs) or a plugin's.
    #[arg(short = 's', long = "storage-driver", default_value = berth_fs::graph::DEFAULT_GRAPH_DRIVER)]
    storage_driver: String,
    /// A directory of plugins (`*.so`, and Docker's `*.sock`, `*.spec`,
    /// `*.json`), searched before the standard ones. May be given more
    /// than once.
    #[arg(long = "plugin-dir")]
    plugin_dirs: Vec<PathBuf>,
    /// How long a plugin call may take: seconds, or a number with ms or s.
    #[arg(long = "plugin-timeout", default_value = "30s", value_parser = parse_timeout)]
    plugin_timeout: std::time::Duration,
}

/// `30`, `30s` or `500ms`.
fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let (n, unit) = match s.strip_suffix("ms") {
        Some(n) => (n, 1),
        None => (s.strip_suffix('s').unwrap_or(s), 1000),
    };
    n.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| std::time::Duration::from_millis(n * unit))
        .ok_or_else(|| format!("{s:?} is not a duration (seconds, or a number with ms or s)"))
}

/// One place to listen.
enum Listen {
    Unix(PathBuf),
    Tcp(String),
}

fn parse_host(host: &str, tls: bool) -> Result<Listen> {
    if let Some(p) = host.strip_prefix("unix://") {
        return Ok(Listen::Unix(PathBuf::from(p)));
    }
    if let Some(addr) = host.strip_prefix("tcp://") {
        if !tls {
            bail!("{host}: TCP needs --tlsverify (or --tls) with --tlscert and --tlskey: plain TCP would let anyone who reaches the port run containers as root");
        }
        return Ok(Listen::Tcp(addr.trim_end_matches('/').to_string()));
    }
    if host.contains(':') && !host.starts_with('/') {
        bail!("{host}: give unix:///path or tcp://ADDR:PORT");
    }
    Ok(Listen::Unix(PathBuf::from(host)))
}

fn tls_files(args: &Args) -> Result<Option<TlsFiles>> {
    if !args.tls && !args.tlsverify {
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (args.tlscert.clone(), args.tlskey.clone()) else {
        bail!("--tls and --tlsverify need --tlscert and --tlskey");
    };
    let verify_ca = match (args.tlsverify, args.tlscacert.clone()) {
        (true, None) => bail!("--tlsverify needs --tlscacert, the CA that signs client certificates"),
        (true, ca) => ca,
        (false, _) => None,
    };
    Ok(Some(TlsFiles { cert, key, verify_ca }))
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

/// Prepares a UNIX socket path: its directory made, a dead daemon's
/// socket replaced, a live one refused.
fn prepare_socket(socket: &std::path::Path) -> Result<()> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        bail!("{}: another daemon is listening there", socket.display());
    }
    let _ = std::fs::remove_file(socket);
    Ok(())
}

fn run(args: Args) -> Result<()> {
    let tls = tls_files(&args)?;
    let listens: Vec<Listen> = args.hosts.iter().map(|h| parse_host(h, tls.is_some())).collect::<Result<_>>()?;
    let acceptor = tls
        .as_ref()
        .map(berth_core::daemon::tls::acceptor)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.data_root).with_context(|| format!("create data root {}", args.data_root.display()))?;
    // Traversable by path only, as Docker's: what lies below is root's.
    std::fs::set_permissions(&args.data_root, std::fs::Permissions::from_mode(0o711))
        .with_context(|| format!("chmod {}", args.data_root.display()))?;
    for l in &listens {
        if let Listen::Unix(p) = l {
            prepare_socket(p)?;
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let sockets: Vec<PathBuf> = listens
        .iter()
        .filter_map(|l| match l {
            Listen::Unix(p) => Some(p.clone()),
            Listen::Tcp(_) => None,
        })
        .collect();
    runtime.block_on(async {
        let cluster = match (&args.cluster_store, args.cluster_advertise) {
            (Some(store), Some(advertise)) => Some(berth_net::overlay::Cluster {
                store: store.clone(),
                advertise,
            }),
            (None, None) => None,
            _ => bail!("--cluster-store and --cluster-advertise go together"),
        };
        let mut plugins = berth_core::plugins::Settings::new(&args.data_root);
        plugins.dirs = args.plugin_dirs.clone();
        plugins.timeout = args.plugin_timeout;
        let mut daemon = berth_core::daemon::Daemon::new(
            args.data_root.clone(),
            args.exec_root.clone(),
            cluster,
            plugins,
            &args.storage_driver,
        )?;
        daemon.resolv_conf = args.resolv_conf.clone();
        let daemon = Arc::new(daemon);
        // Containers that kept running while berthd was away are followed
        // again before the first request is answered.
        // Leftovers first, from the records alone: restore may start
        // containers again, whose new namespaces must not be taken for them.
        berth_core::daemon::containers::reconcile(&daemon);
        berth_core::daemon::containers::restore(&daemon).await;
        let mut servers = tokio::task::JoinSet::new();
        for l in listens {
            match l {
                Listen::Unix(socket) => {
                    let listener = berth_core::sys::SocketPath::new(&socket)
                        .and_then(|p| tokio::net::UnixListener::bind(p.path()))
                        .with_context(|| format!("listen on {}", socket.display()))?;
                    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))
                        .with_context(|| format!("chmod {}", socket.display()))?;
                    servers.spawn(berth_core::daemon::serve(listener, daemon.clone()));
                }
                Listen::Tcp(addr) => {
                    let listener = tokio::net::TcpListener::bind(&addr)
                        .await
                        .with_context(|| format!("listen on tcp://{addr}"))?;
                    let tls = acceptor.clone().context("TCP without TLS")?;
                    servers.spawn(berth_core::daemon::serve_tls(listener, tls, daemon.clone()));
                }
            }
        }
        tokio::select! {
            r = servers.join_next() => match r {
                Some(Ok(Err(e))) => Err(anyhow::Error::from(e).context("serve the API")),
                _ => Ok(()),
            },
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })?;
    for s in sockets {
        let _ = std::fs::remove_file(&s);
    }
    Ok(())
}
