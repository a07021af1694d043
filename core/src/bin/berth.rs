//! berth: the command line client of berthd, with docker's command names.
//!
//! Exit codes as docker's: 125 when the daemon or the request failed.

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
}

fn get(socket: &std::path::Path, path: &str) -> Result<Value, String> {
    let a = request(socket, "GET", path, None).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&a.body).map_err(|e| format!("berthd answered {path} with something other than JSON: {e}"))?;
    if a.status >= 400 {
        return Err(v["message"].as_str().unwrap_or("error").to_string());
    }
    Ok(v)
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e}");
            ExitCode::from(125)
        }
    }
}
