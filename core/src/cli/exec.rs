//! `berth exec`: a command in a running container, as docker's CLI runs
//! it: the container looked up first (so "No such container" wins), the
//! exec created (`POST /containers/{id}/exec`), then started over a
//! hijacked connection relayed like an attach (raw mode and resizes for
//! a terminal), and our exit status is the exec's `ExitCode`. With `-d`
//! it is started detached and nothing is printed.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::api::{encode, Api};
use super::stream::{self, Ended};
use super::terminal::{self, RawMode};
use super::{options, run, signals, CliError};

/// How berth-runtime words its own failure on its stderr, which berthd
/// relays as the exec's stderr when the command could not be started.
const RUNTIME_ERROR: &str = "berth-runtime: error:";

/// How much of the exec's stderr is kept to read a runtime failure from.
const KEPT_STDERR: usize = 4096;

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

/// The first bytes written to stderr, kept while they pass through.
struct Teed<'a> {
    out: &'a mut dyn Write,
    kept: Vec<u8>,
}

impl Write for Teed<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = KEPT_STDERR.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&buf[..buf.len().min(room)]);
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The exit status docker gives an exec that failed with `code`: berthd
/// leaves the runtime's own status (1) when the command could not be
/// started, with the runtime's message first on stderr; docker's daemon
/// sets 126, or 127 when the command was not found.
fn exec_status(code: i64, stderr: &[u8]) -> u8 {
    let text = String::from_utf8_lossy(stderr);
    let first = text.lines().next().unwrap_or_default();
    if code != 0 && first.starts_with(RUNTIME_ERROR) {
        return match run::start_failure_status(first) {
            127 => 127,
            _ => 126,
        };
    }
    (code & 0xff) as u8
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
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    let mut teed = Teed {
        out: &mut err,
        kept: Vec::new(),
    };
    let ended = stream::relay_to(conn, a.tty, stdin, raw.is_some(), &mut teed);
    drop(raw);
    let kept = std::mem::take(&mut teed.kept);
    drop(err);
    if ended.map_err(|e| CliError::Failed(format!("error attaching: {e}")))? != Ended::Output {
        return Ok(());
    }
    let v: Value = api.get(&format!("/exec/{}/json", encode(&id)))?;
    match exec_status(v["ExitCode"].as_i64().unwrap_or(0), &kept) {
        0 => Ok(()),
        n => Err(CliError::Exit(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_failures_exit_as_dockers_exec() {
        let not_found = b"berth-runtime: error: container init failed: exec nonexist: executable file not found in $PATH\n";
        assert_eq!(exec_status(1, not_found), 127);
        let denied = b"berth-runtime: error: container init failed: exec /etc/passwd: EACCES: Permission denied\n";
        assert_eq!(exec_status(1, denied), 126);
        assert_eq!(exec_status(1, b"berth-runtime: error: cgroup: invalid argument\n"), 126);
        // The command's own words are its own.
        assert_eq!(exec_status(1, b"cat: can't open '/x': No such file or directory\n"), 1);
        assert_eq!(exec_status(3, b""), 3);
        assert_eq!(exec_status(0, not_found), 0);
        assert_eq!(exec_status(257, b""), 1);
    }
}
