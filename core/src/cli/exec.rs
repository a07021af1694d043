//! `berth exec`: a command in a running container, as docker's CLI runs
//! it: the container looked up first (so "No such container" wins), the
//! exec created (`POST /containers/{id}/exec`), then started over a
//! hijacked connection relayed like an attach (raw mode and resizes for
//! a terminal), and our exit status is the exec's `ExitCode`. With `-d`
//! it is started detached and nothing is printed.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::api::{encode, Api};
use super::stream::{self, Ended};
use super::terminal::{self, RawMode};
use super::{options, run, signals, CliError};

/// `berth exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Give extended privileges to the command.
    #[arg(long = "privileged")]
    pub privileged: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]").
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// CONTAINER COMMAND [ARG...]: everything after the container is the
    /// command's, flags included, as docker reads it.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CONTAINER COMMAND [ARG...]"
    )]
    pub args: Vec<String>,
}

/// A refused exec start as docker reports it: 126 or 127 when the
/// command could not be run or found, else 1.
fn start_refused(e: CliError) -> CliError {
    if let CliError::Daemon { message, .. } = &e {
        let status = run::start_failure_status(message);
        if status != 125 {
            eprintln!("{e}");
            return CliError::Exit(status);
        }
    }
    e
}

/// `berth exec`.
pub fn exec(api: &Api, a: ExecArgs) -> Result<(), CliError> {
    let (container, cmd) = match a.args.split_first() {
        Some((c, _)) if c.starts_with('-') => return Err(CliError::Usage(format!("unknown flag: {c}"))),
        Some((c, cmd)) if !cmd.is_empty() => (c, cmd),
        _ => {
            eprintln!("\"berth exec\" requires at least 2 arguments.\nSee 'berth exec --help'.");
            return Err(CliError::Exit(1));
        }
    };
    // docker's order: a missing container is reported before anything else.
    api.get(&format!("/containers/{}/json", encode(container)))?;
    let stdin = a.interactive && !a.detach;
    if a.tty && stdin && !terminal::stdin_is_terminal() {
        return Err(CliError::Failed("the input device is not a TTY".into()));
    }
    let console = if a.tty {
        terminal::size().map(|(h, w)| json!([h, w]))
    } else {
        None
    };
    let body = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "ConsoleSize": console,
        "AttachStdin": stdin,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Detach": a.detach,
        "DetachKeys": "",
        "Env": options::environment(&a.env_file, &a.env)?,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": cmd,
    });
    let created = api
        .call("POST", &format!("/containers/{}/exec", encode(container)), Some(&body))?
        .unwrap_or_default();
    let id = created["Id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| CliError::Failed("exec ID empty".into()))?
        .to_string();
    let start = json!({ "Detach": a.detach, "Tty": a.tty, "ConsoleSize": console });
    let route = format!("/exec/{}/start", encode(&id));
    if a.detach {
        api.call("POST", &route, Some(&start)).map_err(start_refused)?;
        return Ok(());
    }
    let conn = api.upgrade_with(&route, &start).map_err(start_refused)?;
    if a.tty && terminal::stdin_is_terminal() {
        // Before the relay starts its thread, which inherits the mask.
        signals::follow_exec(api.socket().to_path_buf(), &id);
        signals::resize_exec(api, &id);
    }
    let raw = (a.tty && stdin && terminal::stdin_is_terminal())
        .then(RawMode::enter)
        .and_then(Result::ok);
    // berthd's exit code is the exec's, 126 or 127 when it could not run.
    let ended = stream::relay(conn, a.tty, stdin, raw.is_some());
    drop(raw);
    if ended.map_err(|e| CliError::Failed(format!("error attaching: {e}")))? != Ended::Output {
        return Ok(());
    }
    let v: Value = api.get(&format!("/exec/{}/json", encode(&id)))?;
    match (v["ExitCode"].as_i64().unwrap_or(0) & 0xff) as u8 {
        0 => Ok(()),
        n => Err(CliError::Exit(n)),
    }
}
