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
}

/// `plugin ls`'s fields of one plugin (Docker's Plugin object, with
/// berth's Transport and Error).
fn row(p: &Value) -> Value {
    let interfaces: Vec<String> = p["Config"]["Interface"]["Types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["Capability"].as_str())
        .map(|c| match c {
            "volumedriver" => "VolumeDriver".to_string(),
            "networkdriver" => "NetworkDriver".to_string(),
            "ipamdriver" => "IpamDriver".to_string(),
            "graphdriver" => "GraphDriver".to_string(),
            other => other.to_string(),
        })
        .collect();
    let error = p["Error"].as_str().unwrap_or_default();
    json!({
        "ID": p["Id"], "Name": p["Name"],
        "Interfaces": interfaces.join(","),
        "Transport": p["Transport"],
        "Enabled": p["Enabled"].as_bool().unwrap_or(false).to_string(),
        "Status": if error.is_empty() { "ok".to_string() } else { format!("failed: {error}") },
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
    }
    Ok(())
}
