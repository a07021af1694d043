//! `berth network create|ls|inspect|rm|connect|disconnect|prune`.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::api::{encode, filter_query, Api};
use super::format::{self, go_time};
use super::volumes::pairs;
use super::CliError;

/// docker's default `network ls` table.
const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

/// `network create`'s flags.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the network.
    #[arg(short = 'd', long = "driver", default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long = "subnet")]
    subnet: Vec<String>,
    /// IPv4 or IPv6 gateway for the master subnet.
    #[arg(long = "gateway")]
    gateway: Vec<String>,
    /// Allocate container addresses from a sub-range.
    #[arg(long = "ip-range")]
    ip_range: Vec<String>,
    /// Restrict external access to the network.
    #[arg(long = "internal")]
    internal: bool,
    /// Enable manual container attachment.
    #[arg(long = "attachable")]
    attachable: bool,
    /// Enable IPv6 networking.
    #[arg(long = "ipv6")]
    ipv6: bool,
    /// Driver specific options KEY=VALUE.
    #[arg(short = 'o', long = "opt")]
    opts: Vec<String>,
    /// IP Address Management driver.
    #[arg(long = "ipam-driver", default_value = "default")]
    ipam_driver: String,
    /// Set IPAM driver specific options KEY=VALUE.
    #[arg(long = "ipam-opt")]
    ipam_opts: Vec<String>,
    /// Set metadata on a network.
    #[arg(long = "label")]
    labels: Vec<String>,
    name: String,
}

/// The network subcommands.
#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(format::ListArgs),
    /// Display detailed information on one or more networks.
    Inspect {
        /// Format output using a custom template ('json', or a Go template).
        #[arg(short = 'f', long = "format")]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Connect a container to a network.
    Connect {
        /// Add network-scoped alias for the container.
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// IPv4 address (e.g., 172.30.100.104).
        #[arg(long = "ip")]
        ip: Option<String>,
        /// IPv6 address.
        #[arg(long = "ip6")]
        ip6: Option<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        /// Force the container to disconnect from a network.
        #[arg(short = 'f', long = "force")]
        force: bool,
        network: String,
        container: String,
    },
    /// Remove all unused networks.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short = 'f', long = "force")]
        force: bool,
        /// Provide filter values (e.g. 'until=<timestamp>').
        #[arg(long = "filter")]
        filters: Vec<String>,
    },
}

/// The `IPAM.Config` of `--subnet`, `--gateway` and `--ip-range`: each
/// gateway and range goes with the subnet that holds it, as docker pairs them.
fn ipam_config(a: &CreateArgs) -> Result<Vec<Value>, CliError> {
    if a.subnet.is_empty() && !(a.gateway.is_empty() && a.ip_range.is_empty()) {
        return Err(CliError::Usage("every ip-range or gateway must have a corresponding subnet".into()));
    }
    if a.gateway.len() > a.subnet.len() || a.ip_range.len() > a.subnet.len() {
        return Err(CliError::Usage("cannot configure more gateways or ip-ranges than subnets".into()));
    }
    Ok(a.subnet
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut c = json!({ "Subnet": s });
            if let Some(g) = a.gateway.get(i) {
                c["Gateway"] = json!(g);
            }
            if let Some(r) = a.ip_range.get(i) {
                c["IPRange"] = json!(r);
            }
            c
        })
        .collect())
}

/// docker's `network ls` fields of one network.
fn row(n: &Value, no_trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or("");
    let labels = n["Labels"].as_object().cloned().unwrap_or_default();
    json!({
        "ID": if no_trunc { id } else { &id[..12.min(id.len())] },
        "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
        "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
        "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
        "CreatedAt": go_time(crate::time::parse_secs(n["Created"].as_str().unwrap_or(""))),
        "Labels": labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(","),
    })
}

fn headers() -> Value {
    json!({ "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
        "Internal": "INTERNAL", "CreatedAt": "CREATED AT", "Labels": "LABELS" })
}

/// `berth network ...`.
pub fn network(api: &Api, cmd: NetworkCommand) -> Result<(), CliError> {
    match cmd {
        NetworkCommand::Create(a) => {
            let body = json!({
                "Name": a.name, "Driver": a.driver, "Internal": a.internal, "Attachable": a.attachable,
                "EnableIPv6": a.ipv6, "CheckDuplicate": true,
                "IPAM": { "Driver": a.ipam_driver, "Config": ipam_config(&a)?, "Options": pairs(&a.ipam_opts, "IPAM option")? },
                "Options": pairs(&a.opts, "option")?, "Labels": pairs(&a.labels, "label")?,
            });
            let v = api.call("POST", "/networks/create", Some(&body))?.unwrap_or_default();
            println!("{}", v["Id"].as_str().unwrap_or(""));
        }
        NetworkCommand::Ls(list) => {
            let v = api.get(&format!("/networks{}", filter_query(&list.filter)?))?;
            let mut rows: Vec<Value> = v.as_array().into_iter().flatten().map(|n| row(n, list.no_trunc)).collect();
            rows.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
            list.print(&rows, DEFAULT_TABLE, &headers())?;
        }
        NetworkCommand::Inspect { format, names } => super::inspect::inspect_of(api, super::inspect::Kind::Network, format, names)?,
        NetworkCommand::Rm { names } => super::each(&names, |n| {
            api.call("DELETE", &format!("/networks/{}", encode(n)), None)?;
            Ok(Some(n.to_string()))
        })?,
        NetworkCommand::Connect {
            aliases,
            ip,
            ip6,
            network,
            container,
        } => {
            let mut ipam = json!({});
            if let Some(ip) = ip {
                ipam["IPv4Address"] = json!(ip);
            }
            if let Some(ip) = ip6 {
                ipam["IPv6Address"] = json!(ip);
            }
            let body = json!({ "Container": container, "EndpointConfig": { "Aliases": aliases, "IPAMConfig": ipam } });
            api.call("POST", &format!("/networks/{}/connect", encode(&network)), Some(&body))?;
        }
        NetworkCommand::Disconnect { force, network, container } => {
            let body = json!({ "Container": container, "Force": force });
            api.call("POST", &format!("/networks/{}/disconnect", encode(&network)), Some(&body))?;
        }
        NetworkCommand::Prune { force, filters } => {
            if !force && !super::confirm("WARNING! This will remove all custom networks not used by at least one container.")? {
                return Ok(());
            }
            let v = api
                .post(&format!("/networks/prune{}", filter_query(&filters)?))?
                .unwrap_or_default();
            let deleted = v["NetworksDeleted"].as_array().cloned().unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Networks:");
                for n in deleted {
                    println!("{}", n.as_str().unwrap_or(""));
                }
            }
        }
    }
    Ok(())
}
