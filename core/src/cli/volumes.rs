//! `berth volume create|ls|inspect|rm|prune`.

use clap::Subcommand;
use serde_json::{json, Map, Value};

use super::api::{encode, filter_query, Api};
use super::format::pretty;
use super::CliError;

/// The volume subcommands.
#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume.
    Create {
        /// Driver to create it with.
        #[arg(short = 'd', long = "driver", default_value = "local")]
        driver: String,
        /// Driver option KEY=VALUE (local: type, device, o).
        #[arg(short = 'o', long = "opt")]
        opts: Vec<String>,
        /// Label KEY=VALUE.
        #[arg(long = "label")]
        labels: Vec<String>,
        /// The volume's name (a random one if left out).
        name: Option<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Names only.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// Filter KEY=VALUE (name, label, driver, dangling).
        #[arg(short = 'f', long = "filter")]
        filters: Vec<String>,
    },
    /// Show volumes in detail, as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes.
    #[command(alias = "remove")]
    Rm {
        /// Do not fail for a volume that does not exist.
        #[arg(short = 'f', long = "force")]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every volume no container uses.
    Prune {
        /// Do not ask.
        #[arg(short = 'f', long = "force")]
        force: bool,
        /// Filter label=KEY[=VALUE].
        #[arg(long = "filter")]
        filters: Vec<String>,
    },
}

/// `KEY=VALUE` pairs as a JSON object.
pub(crate) fn pairs(list: &[String], what: &str) -> Result<Map<String, Value>, CliError> {
    let mut m = Map::new();
    for p in list {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("{what} {p:?}: expected KEY=VALUE")))?;
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(m)
}

/// `berth volume ...`.
pub fn volume(api: &Api, cmd: VolumeCommand) -> Result<(), CliError> {
    match cmd {
        VolumeCommand::Create {
            driver,
            opts,
            labels,
            name,
        } => {
            let body = json!({
                "Name": name.unwrap_or_default(),
                "Driver": driver,
                "DriverOpts": pairs(&opts, "option")?,
                "Labels": pairs(&labels, "label")?,
            });
            let v = api.call("POST", "/volumes/create", Some(&body))?.unwrap_or_default();
            println!("{}", v["Name"].as_str().unwrap_or(""));
        }
        VolumeCommand::Ls { quiet, filters } => {
            let v = api.get(&format!("/volumes{}", filter_query(&filters)?))?;
            if !quiet {
                println!("{:<10}VOLUME NAME", "DRIVER");
            }
            for vol in v["Volumes"].as_array().into_iter().flatten() {
                let name = vol["Name"].as_str().unwrap_or("");
                if quiet {
                    println!("{name}");
                } else {
                    println!("{:<10}{name}", vol["Driver"].as_str().unwrap_or(""));
                }
            }
        }
        VolumeCommand::Inspect { names } => {
            let mut all = Vec::new();
            let mut errors = Vec::new();
            for n in names {
                match api.get(&format!("/volumes/{}", encode(&n))) {
                    Ok(v) => all.push(v),
                    Err(e) => errors.push(e),
                }
            }
            println!("{}", pretty(&Value::Array(all)));
            if !errors.is_empty() {
                for e in errors {
                    eprintln!("{e}");
                }
                return Err(CliError::Exit(1));
            }
        }
        VolumeCommand::Rm { force, names } => {
            let q = if force { "?force=1" } else { "" };
            super::each(&names, |n| {
                api.call("DELETE", &format!("/volumes/{}{q}", encode(n)), None)?;
                Ok(Some(n.to_string()))
            })?
        }
        VolumeCommand::Prune { force, filters } => {
            if !force && !super::confirm("WARNING! This will remove anonymous local volumes not used by at least one container.")? {
                return Ok(());
            }
            let v = api.post(&format!("/volumes/prune{}", filter_query(&filters)?))?.unwrap_or_default();
            let deleted = v["VolumesDeleted"].as_array().cloned().unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Volumes:");
                for d in deleted {
                    println!("{}", d.as_str().unwrap_or(""));
                }
                println!();
            }
            println!("Total reclaimed space: {}B", v["SpaceReclaimed"]);
        }
    }
    Ok(())
}
