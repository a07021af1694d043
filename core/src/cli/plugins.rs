//! `berth plugin ls|check`.

use clap::Subcommand;
use serde_json::{json, Value};

use super::api::Api;
use super::format;
use super::CliError;

/// The default `plugin ls` table.
const DEFAULT_TABLE: &str = "table {{.Name}}\t{{.Interfaces}}\t{{.Transport}}\t{{.Status}}";

/// The plugin subcommands.
#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// List every driver (built-in, loaded or found) with its transport and interfaces.
    #[command(alias = "list")]
    Ls(format::ListArgs),
    /// Display detailed information on one or more plugins.
    Inspect {
        /// Format output using a custom template ('json', or a Go template).
        #[arg(short = 'f', long = "format")]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Disable plugins: their drivers are taken out (a shared object is unloaded).
    Disable {
        /// Disable even while volumes or networks use it.
        #[arg(short = 'f', long = "force")]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Enable disabled plugins (a shared object is loaded again).
    Enable {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Drive a plugin or built-in driver through its interface's contract
    /// and report what held (runs without the daemon; as root, in network
    /// and mount namespaces of its own).
    Check {
        /// Driver option KEY=VALUE, given to every create.
        #[arg(short = 'o', long = "opt")]
        opts: Vec<String>,
        /// A directory to search for plugins by name (as berthd's).
        #[arg(long = "plugin-dir")]
        plugin_dirs: Vec<std::path::PathBuf>,
        /// How long each call may take, in seconds.
        #[arg(long = "timeout", default_value_t = 30)]
        timeout: u64,
        /// Check only this interface (volume, network, graph or ipam).
        #[arg(long = "interface")]
        interface: Option<String>,
        /// The etcd the built-in overlay driver shares networks through
        /// (etcd://HOST:PORT); the kit then runs in the namespaces it is
        /// started in, to reach it.
        #[arg(long = "cluster-store", requires = "cluster_advertise")]
        cluster_store: Option<String>,
        /// This host's address to the others (with --cluster-store).
        #[arg(long = "cluster-advertise", requires = "cluster_store")]
        cluster_advertise: Option<std::net::Ipv4Addr>,
        /// A shared object (.so), a plugin's socket or spec file, or a name.
        target: String,
    },
}

/// `plugin ls`'s fields of one plugin (Docker's Plugin object, with
/// berth's Transport and Error).
fn row(p: &Value) -> Value {
    let interfaces: Vec<String> = p["Config"]["Interface"]["Types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .filter_map(|t| t.strip_prefix("docker.")?.split('/').next())
        .map(|c| {
            berth_plugin::Interface::from_protocol_name(c)
                .map_or(c, |i| i.protocol_name())
                .to_string()
        })
        .collect();
    let error = p["Error"].as_str().unwrap_or_default();
    json!({
        "ID": p["Id"], "Name": p["Name"],
        "Interfaces": interfaces.join(","),
        "Transport": p["Transport"],
        "Enabled": p["Enabled"].as_bool().unwrap_or(false).to_string(),
        "Status": match (error, p["Enabled"].as_bool().unwrap_or(false)) {
            ("", true) => "ok".to_string(),
            ("", false) => "disabled".to_string(),
            (e, _) => format!("failed: {e}"),
        },
    })
}

fn headers() -> Value {
    json!({ "ID": "ID", "Name": "NAME", "Interfaces": "INTERFACES", "Transport": "TRANSPORT", "Enabled": "ENABLED", "Status": "STATUS" })
}

/// `berth plugin ...`.
pub fn plugin(api: &Api, cmd: PluginCommand) -> Result<(), CliError> {
    match cmd {
        PluginCommand::Ls(list) => {
            let v = api.get("/plugins")?;
            let rows: Vec<Value> = v.as_array().into_iter().flatten().map(row).collect();
            list.print(&rows, DEFAULT_TABLE, &headers())?;
        }
        PluginCommand::Inspect { format, names } => super::inspect::inspect_of(api, super::inspect::Kind::Plugin, format, names)?,
        PluginCommand::Disable { force, names } => super::each(&names, |n| {
            let q = if force { "?force=1" } else { "" };
            api.call("POST", &format!("/plugins/{}/disable{q}", super::api::encode(n)), None)?;
            Ok(Some(n.to_string()))
        })?,
        PluginCommand::Enable { names } => super::each(&names, |n| {
            api.call("POST", &format!("/plugins/{}/enable", super::api::encode(n)), None)?;
            Ok(Some(n.to_string()))
        })?,
        PluginCommand::Check {
            opts,
            plugin_dirs,
            timeout,
            interface,
            cluster_store,
            cluster_advertise,
            target,
        } => {
            let cluster = cluster_store
                .zip(cluster_advertise)
                .map(|(store, advertise)| berth_net::overlay::Cluster { store, advertise });
            check(&target, &opts, plugin_dirs, timeout, interface.as_deref(), cluster)?
        }
    }
    Ok(())
}

/// `plugin check`: the report of every interface the target has; fails
/// when any clause failed.
fn check(
    target: &str,
    opts: &[String],
    plugin_dirs: Vec<std::path::PathBuf>,
    timeout: u64,
    only: Option<&str>,
    cluster: Option<berth_net::overlay::Cluster>,
) -> Result<(), CliError> {
    use crate::plugins::check::{enter_own_namespaces, runs_in_process, Target};
    let only = match only {
        None => None,
        Some(i @ ("volume" | "network" | "graph" | "ipam")) => Some(i),
        Some(other) => {
            return Err(CliError::Usage(format!(
                "--interface {other:?}: expected volume, network, graph or ipam"
            )))
        }
    };
    let mut opts: std::collections::BTreeMap<String, String> = super::volumes::pairs(opts, "option")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    if nix::unistd::geteuid().is_root() && runs_in_process(target) && cluster.is_none() {
        enter_own_namespaces().map_err(CliError::Failed)?;
    }
    let work = tempfile::tempdir().map_err(|e| CliError::Failed(format!("a scratch directory: {e}")))?;
    let mut settings = crate::plugins::Settings::new(work.path());
    settings.home = work.path().join("home");
    settings.dirs = plugin_dirs;
    settings.timeout = std::time::Duration::from_secs(timeout.max(1));
    let mut t = Target::resolve(target, &settings, cluster.as_ref()).map_err(CliError::Failed)?;
    if only.is_some_and(|i| i != "volume") {
        t.volume = None;
    }
    if only.is_some_and(|i| i != "network") {
        t.network = None;
    }
    if only.is_some_and(|i| i != "graph") {
        t.graph = None;
    }
    if only.is_some_and(|i| i != "ipam") {
        t.ipam = None;
    }
    if target == berth_net::macvlan::NAME && !opts.contains_key("parent") {
        // macvlan needs a parent link: one of the kit's own, in its namespace.
        berth_net::netlink::Netlink::new()
            .and_then(|mut n| {
                n.add_veth("chk-parent", "chk-peer", None, None)?;
                n.set_link("chk-parent", None, None, true)
            })
            .map_err(|e| CliError::Failed(format!("make a parent link for macvlan: {e}")))?;
        opts.insert("parent".into(), "chk-parent".into());
    }
    let reports = t.check(&opts, work.path());
    if reports.is_empty() {
        return Err(CliError::Failed(format!(
            "{}: implements no interface berth can check",
            t.description
        )));
    }
    let mut failed = 0;
    for (interface, report) in &reports {
        println!("{} {interface}", t.description);
        println!("{report}");
        failed += report.failed();
    }
    if failed > 0 {
        return Err(CliError::Exit(1));
    }
    Ok(())
}
