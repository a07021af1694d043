//! berth: the command line client of berthd, with docker's command names.
//!
//! Exit codes as docker's: 1 when the daemon or the request failed (125
//! is `run`'s, for a failure before the container started).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

use berth_core::client::{request, socket_from};

/// berth: run and manage containers through berthd.
#[derive(Parser)]
#[command(name = "berth", version)]
struct Cli {
    /// berthd's socket (unix:///path or a path; default BERTH_HOST, else /run/berth/berth.sock).
    #[arg(short = 'H', long = "host", global = true)]
    host: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the client's and the daemon's versions.
    Version {
        /// `json` for the raw answer.
        #[arg(short = 'f', long = "format")]
        format: Option<String>,
    },
    /// Show what the daemon knows of itself.
    Info {
        /// `json` for the raw answer.
        #[arg(short = 'f', long = "format")]
        format: Option<String>,
    },
    /// Manage volumes.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage the daemon's space.
    #[command(subcommand)]
    System(SystemCommand),
    /// Load images from a docker-archive.
    Load {
        /// The archive (what `docker save` or `berth save` wrote).
        #[arg(short = 'i', long = "input")]
        input: std::path::PathBuf,
        /// Print only the image names.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
    },
    /// Save images to a docker-archive.
    Save {
        /// Where to write it (standard output if left out).
        #[arg(short = 'o', long = "output")]
        output: Option<std::path::PathBuf>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List images.
    Images {
        /// IDs only.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
    },
    /// Point a new name at an image.
    Tag { source: String, target: String },
    /// Show how an image was made.
    History { name: String },
    /// Remove images (a name is untagged; the last name removes the image).
    Rmi {
        #[arg(short = 'f', long = "force")]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
}

#[derive(Subcommand)]
enum SystemCommand {
    /// Show how much space images, containers and volumes take.
    Df,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Show images in detail, as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List images.
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
    },
    /// Remove images.
    Rm {
        #[arg(short = 'f', long = "force")]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Percent-encodes a path segment or query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn images(socket: &std::path::Path, quiet: bool) -> Result<(), String> {
    let base = format!("/v{}", berth_core::daemon::api::API_VERSION);
    let v = call(socket, "GET", &format!("{base}/images/json"), None)?.unwrap_or_default();
    if !quiet {
        println!("{:<30} {:<12} {:<14} SIZE", "REPOSITORY", "TAG", "IMAGE ID");
    }
    for i in v.as_array().cloned().unwrap_or_default() {
        let id = i["Id"].as_str().unwrap_or("").trim_start_matches("sha256:");
        let short = &id[..id.len().min(12)];
        if quiet {
            println!("{short}");
            continue;
        }
        let tags: Vec<String> = i["RepoTags"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let size = format!("{:.1}MB", i["Size"].as_f64().unwrap_or(0.0) / 1e6);
        if tags.is_empty() {
            println!("{:<30} {:<12} {:<14} {size}", "<none>", "<none>", short);
        }
        for t in tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((&t, ""));
            println!("{repo:<30} {tag:<12} {short:<14} {size}");
        }
    }
    Ok(())
}

fn rmi(socket: &std::path::Path, force: bool, names: &[String]) -> Result<(), String> {
    let base = format!("/v{}", berth_core::daemon::api::API_VERSION);
    let mut failed = false;
    for n in names {
        let q = if force { "?force=1" } else { "" };
        match call(socket, "DELETE", &format!("{base}/images/{}{q}", encode(n)), None) {
            Ok(v) => {
                for e in v.and_then(|v| v.as_array().cloned()).unwrap_or_default() {
                    if let Some(t) = e["Untagged"].as_str() {
                        println!("Untagged: {t}");
                    }
                    if let Some(t) = e["Deleted"].as_str() {
                        println!("Deleted: {t}");
                    }
                }
            }
            Err(e) => {
                eprintln!("berth: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err("some images were not removed".into());
    }
    Ok(())
}

#[derive(Subcommand)]
enum VolumeCommand {
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
fn pairs(list: &[String], what: &str) -> Result<serde_json::Map<String, Value>, String> {
    let mut m = serde_json::Map::new();
    for p in list {
        let (k, v) = p.split_once('=').ok_or_else(|| format!("{what} {p:?}: expected KEY=VALUE"))?;
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(m)
}

/// Docker's `filters` query parameter from KEY=VALUE flags.
fn filter_query(list: &[String]) -> Result<String, String> {
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in list {
        let (k, v) = f.split_once('=').ok_or_else(|| format!("filter {f:?}: expected KEY=VALUE"))?;
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    if m.is_empty() {
        return Ok(String::new());
    }
    let json = serde_json::to_string(&m).map_err(|e| e.to_string())?;
    let encoded = encode(&json);
    Ok(format!("?filters={encoded}"))
}

/// Sends a request and returns the JSON answer (None for an empty one);
/// a daemon error becomes its message.
fn call(socket: &std::path::Path, method: &str, path: &str, body: Option<&Value>) -> Result<Option<Value>, String> {
    let body = body.map(|b| b.to_string());
    let a = request(socket, method, path, body.as_deref().map(str::as_bytes)).map_err(|e| e.to_string())?;
    let v: Option<Value> = if a.body.is_empty() {
        None
    } else {
        Some(serde_json::from_slice(&a.body).map_err(|e| format!("berthd answered {path} with something other than JSON: {e}"))?)
    };
    if a.status >= 400 {
        let msg = v
            .as_ref()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("status {}", a.status));
        return Err(format!("Error response from daemon: {msg}"));
    }
    Ok(v)
}

fn volume(socket: &std::path::Path, cmd: VolumeCommand) -> Result<(), String> {
    let base = format!("/v{}", berth_core::daemon::api::API_VERSION);
    match cmd {
        VolumeCommand::Create {
            driver,
            opts,
            labels,
            name,
        } => {
            let body = serde_json::json!({
                "Name": name.unwrap_or_default(),
                "Driver": driver,
                "DriverOpts": pairs(&opts, "option")?,
                "Labels": pairs(&labels, "label")?,
            });
            let v = call(socket, "POST", &format!("{base}/volumes/create"), Some(&body))?.unwrap_or_default();
            println!("{}", v["Name"].as_str().unwrap_or(""));
        }
        VolumeCommand::Ls { quiet, filters } => {
            let v = call(socket, "GET", &format!("{base}/volumes{}", filter_query(&filters)?), None)?.unwrap_or_default();
            if !quiet {
                println!("{:<10}VOLUME NAME", "DRIVER");
            }
            for vol in v["Volumes"].as_array().cloned().unwrap_or_default() {
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
            let mut failed = None;
            for n in names {
                match call(socket, "GET", &format!("{base}/volumes/{n}"), None) {
                    Ok(v) => all.push(v.unwrap_or_default()),
                    Err(e) => failed = Some(e),
                }
            }
            println!("{}", serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?);
            if let Some(e) = failed {
                return Err(e);
            }
        }
        VolumeCommand::Rm { force, names } => {
            let mut failed = None;
            for n in names {
                let q = if force { "?force=1" } else { "" };
                match call(socket, "DELETE", &format!("{base}/volumes/{n}{q}"), None) {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("berth: {e}");
                        failed = Some("some volumes were not removed".to_string());
                    }
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        VolumeCommand::Prune { force: _, filters } => {
            let v = call(socket, "POST", &format!("{base}/volumes/prune{}", filter_query(&filters)?), None)?.unwrap_or_default();
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

fn get(socket: &std::path::Path, path: &str) -> Result<Value, String> {
    Ok(call(socket, "GET", path, None)?.unwrap_or_default())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = socket_from(cli.host.as_deref());
    let result = match cli.command {
        Command::Version { format } => get(&socket, &format!("/v{}/version", berth_core::daemon::api::API_VERSION)).map(|v| {
            if format.as_deref() == Some("json") {
                println!("{v}");
            } else {
                println!("Client:\n Version:      {}\n API version:  {}", env!("CARGO_PKG_VERSION"), berth_core::daemon::api::API_VERSION);
                println!(
                    "\nServer:\n Engine:\n  Version:      {}\n  API version:  {} (minimum version {})\n  OS/Arch:      {}/{}\n  Kernel:       {}",
                    v["Version"].as_str().unwrap_or(""),
                    v["ApiVersion"].as_str().unwrap_or(""),
                    v["MinAPIVersion"].as_str().unwrap_or(""),
                    v["Os"].as_str().unwrap_or(""),
                    v["Arch"].as_str().unwrap_or(""),
                    v["KernelVersion"].as_str().unwrap_or("")
                );
            }
        }),
        Command::Info { format } => get(&socket, "/info").map(|v| {
            if format.as_deref() == Some("json") {
                println!("{v}");
            } else {
                println!("Server Version: {}", v["ServerVersion"].as_str().unwrap_or(""));
                println!("Storage Driver: {}", v["Driver"].as_str().unwrap_or(""));
                println!("Cgroup Version: {}", v["CgroupVersion"].as_str().unwrap_or(""));
                println!("Kernel Version: {}", v["KernelVersion"].as_str().unwrap_or(""));
                println!("CPUs: {}", v["NCPU"]);
                println!("Docker Root Dir: {}", v["DockerRootDir"].as_str().unwrap_or(""));
            }
        }),
        Command::Volume(cmd) => volume(&socket, cmd),
        Command::System(SystemCommand::Df) => get(&socket, &format!("/v{}/system/df", berth_core::daemon::api::API_VERSION)).map(|v| {
            let mb = |b: u64| format!("{:.1}MB", b as f64 / 1e6);
            let images = v["Images"].as_array().cloned().unwrap_or_default();
            let volumes = v["Volumes"].as_array().cloned().unwrap_or_default();
            let volume_size: u64 = volumes.iter().map(|x| x["UsageData"]["Size"].as_u64().unwrap_or(0)).sum();
            println!("{:<15} {:<8} {:<8} {:<10}", "TYPE", "TOTAL", "ACTIVE", "SIZE");
            println!("{:<15} {:<8} {:<8} {:<10}", "Images", images.len(), 0, mb(v["LayersSize"].as_u64().unwrap_or(0)));
            println!("{:<15} {:<8} {:<8} {:<10}", "Containers", 0, 0, mb(0));
            println!("{:<15} {:<8} {:<8} {:<10}", "Local Volumes", volumes.len(), 0, mb(volume_size));
            println!("{:<15} {:<8} {:<8} {:<10}", "Build Cache", 0, 0, mb(0));
        }),
        Command::Load { input, quiet } => (|| {
            let base = format!("/v{}", berth_core::daemon::api::API_VERSION);
            let data = std::fs::read(&input).map_err(|e| format!("{}: {e}", input.display()))?;
            if !quiet {
                eprintln!("Sending {:.1} MB to berthd...", data.len() as f64 / 1e6);
            }
            let a = request(&socket, "POST", &format!("{base}/images/load?quiet={}", u8::from(quiet)), Some(&data)).map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&a.body);
            if a.status >= 400 {
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                return Err(format!("Error response from daemon: {}", v["message"].as_str().unwrap_or(&text)));
            }
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let v: Value = serde_json::from_str(line).unwrap_or_default();
                if let Some(s) = v["stream"].as_str() {
                    print!("{s}");
                }
            }
            Ok(())
        })(),
        Command::Images { quiet } | Command::Image(ImageCommand::Ls { quiet }) => images(&socket, quiet),
        Command::Save { output, names } => (|| {
            let base = format!("/v{}", berth_core::daemon::api::API_VERSION);
            let q: Vec<String> = names.iter().map(|n| format!("names={}", encode(n))).collect();
            let a = request(&socket, "GET", &format!("{base}/images/get?{}", q.join("&")), None).map_err(|e| e.to_string())?;
            if a.status >= 400 {
                let v: Value = serde_json::from_slice(&a.body).unwrap_or_default();
                return Err(format!("Error response from daemon: {}", v["message"].as_str().unwrap_or("error")));
            }
            match output {
                Some(path) => berth_fs::atomic::write(&path, &a.body).map_err(|e| format!("{}: {e}", path.display()))?,
                None => std::io::Write::write_all(&mut std::io::stdout(), &a.body).map_err(|e| e.to_string())?,
            }
            Ok(())
        })(),
        Command::Tag { source, target } => {
            let (repo, tag) = match target.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                Some((r, t)) => (r.to_string(), t.to_string()),
                None => (target.clone(), "latest".to_string()),
            };
            let base = format!("/v{}", berth_core::daemon::api::API_VERSION);
            call(&socket, "POST", &format!("{base}/images/{}/tag?repo={}&tag={}", encode(&source), encode(&repo), encode(&tag)), None).map(|_| ())
        }
        Command::History { name } => {
            let base = format!("/v{}", berth_core::daemon::api::API_VERSION);
            call(&socket, "GET", &format!("{base}/images/{}/history", encode(&name)), None).map(|v| {
                println!("{:<14} {:<12} CREATED BY", "IMAGE", "SIZE");
                for h in v.and_then(|v| v.as_array().cloned()).unwrap_or_default() {
                    let id = h["Id"].as_str().unwrap_or("").trim_start_matches("sha256:");
                    println!(
                        "{:<14} {:<12} {}",
                        &id[..id.len().min(12)],
                        format!("{:.1}MB", h["Size"].as_f64().unwrap_or(0.0) / 1e6),
                        h["CreatedBy"].as_str().unwrap_or("")
                    );
                }
            })
        }
        Command::Rmi { force, names } | Command::Image(ImageCommand::Rm { force, names }) => rmi(&socket, force, &names),
        Command::Image(ImageCommand::Inspect { names }) => (|| {
            let base = format!("/v{}", berth_core::daemon::api::API_VERSION);
            let mut all = Vec::new();
            let mut failed = None;
            for n in names {
                match call(&socket, "GET", &format!("{base}/images/{}/json", encode(&n)), None) {
                    Ok(v) => all.push(v.unwrap_or_default()),
                    Err(e) => failed = Some(e),
                }
            }
            println!("{}", serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?);
            failed.map_or(Ok(()), Err)
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e}");
            ExitCode::FAILURE
        }
    }
}
