//! The commands that bring a container up and connect us to it, in
//! docker's order: `run` (create; unless detached, attach, wait for the
//! next exit, start, relay, exit with the container's status), `create`,
//! `start [-a] [-i]` and `attach`.
//!
//! Exit codes as docker's CLI: the container's own status, 125 when the
//! daemon refuses to create or start it, 126 and 127 when the start
//! failed because the command could not be run or found.

use std::io::Read;

use clap::{ArgAction, Args};
use serde_json::Value;

use super::api::{encode, Api};
use super::options::{Attach, ContainerOptions};
use super::stream::{self, Ended};
use super::terminal::{self, RawMode};
use super::{signals, CliError};
use crate::client::{Hijacked, Streamed};

/// `berth create`, and what `run` shares with it.
#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub options: ContainerOptions,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub args: Vec<String>,
}

/// `berth run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Proxy received signals to the process.
    #[arg(long = "sig-proxy", action = ArgAction::Set, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `berth start`.
#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short = 'a', long = "attach")]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth attach`.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long = "sig-proxy", action = ArgAction::Set, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Prints `e` and turns it into exit status `code` (an exit status
/// already decided passes through).
fn reported(e: CliError, code: u8) -> CliError {
    if let CliError::Exit(_) = e {
        return e;
    }
    eprintln!("{e}");
    CliError::Exit(code)
}

/// docker's `runStartContainerErr`: 127 when the command was not found,
/// 126 when it could not be run, else 125.
pub fn start_failure_status(message: &str) -> u8 {
    let message = message.to_ascii_lowercase();
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("system cannot find the file specified")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

/// A container's exit status as a process exit code (Docker's codes are
/// ints; the system keeps the low byte).
fn exit_status(code: i64) -> Result<(), CliError> {
    if code == 0 {
        Ok(())
    } else {
        Err(CliError::Exit((code & 0xff) as u8))
    }
}

/// `IMAGE [COMMAND] [ARG...]`, refusing a flag where the image goes
/// (everything after the image belongs to the command).
fn image_and_command(args: &[String]) -> Result<(&str, &[String]), CliError> {
    let (image, command) = args
        .split_first()
        .ok_or_else(|| CliError::Usage("requires at least 1 argument".into()))?;
    if image.starts_with('-') {
        return Err(CliError::Usage(format!("unknown flag: {image}")));
    }
    Ok((image, command))
}

/// `POST /containers/create`; the new container's ID. Warnings go to
/// stderr as docker prints them.
fn create_container(
    api: &Api,
    o: &ContainerOptions,
    args: &[String],
    attach: Attach,
    console: Option<(u16, u16)>,
) -> Result<String, CliError> {
    let (image, command) = image_and_command(args)?;
    let body = o.body(image, command, attach, console)?;
    let q = match &o.name {
        Some(n) => format!("?name={}", encode(n)),
        None => String::new(),
    };
    let v = api
        .call("POST", &format!("/containers/create{q}"), Some(&body))?
        .unwrap_or_default();
    for w in v["Warnings"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        eprintln!("WARNING: {w}");
    }
    v["Id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CliError::Failed("berthd created a container without an ID".into()))
}

/// `berth create`: prints the new container's ID.
pub fn create(api: &Api, a: CreateArgs) -> Result<(), CliError> {
    let attach = Attach {
        stdin: a.options.interactive,
        stdout: true,
        stderr: true,
    };
    let console = if a.options.tty { terminal::size() } else { None };
    let id = create_container(api, &a.options, &a.args, attach, console).map_err(|e| reported(e, 125))?;
    println!("{id}");
    Ok(())
}

/// A wait asked for before start, answered when the condition holds.
struct Wait(Streamed);

impl Wait {
    /// `POST /containers/{id}/wait?condition=`: berthd answers the head
    /// at once and the body at the exit.
    fn open(api: &Api, id: &str, condition: &str) -> Result<Wait, CliError> {
        api.open("POST", &format!("/containers/{}/wait?condition={condition}", encode(id)))
            .map(Wait)
    }

    /// The container's exit status.
    fn status(mut self) -> Result<i64, CliError> {
        let mut body = Vec::new();
        self.0
            .read_to_end(&mut body)
            .map_err(|e| CliError::Failed(format!("error waiting for container: {e}")))?;
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| CliError::Failed(format!("error waiting for container: unexpected answer: {e}")))?;
        if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
            return Err(CliError::Failed(format!("error waiting for container: {m}")));
        }
        Ok(v["StatusCode"].as_i64().unwrap_or(-1))
    }
}

/// `POST /containers/{id}/attach` for the output, and stdin if `stdin`.
fn attach_stream(api: &Api, id: &str, stdin: bool) -> Result<Hijacked, CliError> {
    let stdin = if stdin { "&stdin=1" } else { "" };
    api.upgrade(&format!("/containers/{}/attach?stream=1&stdout=1&stderr=1{stdin}", encode(id)))
}

/// How we are attached to a container's streams.
struct Connection {
    tty: bool,
    stdin: bool,
}

impl Connection {
    /// docker's `CheckTty`: a container terminal fed from our stdin needs
    /// our stdin to be a terminal.
    fn check(&self) -> Result<(), CliError> {
        if self.tty && self.stdin && !terminal::stdin_is_terminal() {
            return Err(CliError::Failed("the input device is not a TTY".into()));
        }
        Ok(())
    }

    /// Signals for container `id`: resizes for a terminal, the proxy when
    /// asked and there is no terminal.
    fn follow_signals(&self, api: &Api, id: &str, sig_proxy: bool) {
        let resize = self.tty && (terminal::stdout_is_terminal() || terminal::stdin_is_terminal());
        signals::follow(api.socket().to_path_buf(), id.to_string(), resize, sig_proxy && !self.tty);
    }

    /// Raw mode for our terminal while its keys go to the container's.
    fn raw_mode(&self) -> Option<RawMode> {
        (self.tty && self.stdin && terminal::stdin_is_terminal())
            .then(RawMode::enter)
            .and_then(Result::ok)
    }

    /// Relays `conn` (the container started); anything but
    /// `Ended::Output` means the container was left running.
    fn relay(&self, api: &Api, id: &str, conn: Hijacked, raw: &Option<RawMode>) -> Result<Ended, CliError> {
        if self.tty {
            signals::resize(api, id);
        }
        stream::relay(conn, self.tty, self.stdin, raw.is_some()).map_err(|e| CliError::Failed(format!("error attaching: {e}")))
    }
}

/// `berth run`.
pub fn run(api: &Api, a: RunArgs) -> Result<(), CliError> {
    let o = &a.create.options;
    let conn = Connection {
        tty: o.tty,
        stdin: o.interactive && !a.detach,
    };
    if !a.detach {
        conn.check()?;
    }
    let attach = Attach {
        stdin: conn.stdin,
        stdout: !a.detach,
        stderr: !a.detach,
    };
    let console = if o.tty { terminal::size() } else { None };
    let id = create_container(api, o, &a.create.args, attach, console).map_err(|e| reported(e, 125))?;
    let start = |api: &Api| api.post(&format!("/containers/{}/start", encode(&id)));
    let refused = |e: CliError| {
        let status = start_failure_status(&e.to_string());
        reported(e, status)
    };
    if a.detach {
        start(api).map_err(refused)?;
        println!("{id}");
        return Ok(());
    }
    conn.follow_signals(api, &id, a.sig_proxy);
    let stream = attach_stream(api, &id, conn.stdin).map_err(|e| reported(e, 125))?;
    let condition = if o.rm { "removed" } else { "next-exit" };
    let wait = Wait::open(api, &id, condition).map_err(|e| reported(e, 125))?;
    let raw = conn.raw_mode();
    if let Err(e) = start(api) {
        // Reported on a terminal in its normal mode.
        drop(raw);
        return Err(refused(e));
    }
    let ended = conn.relay(api, &id, stream, &raw);
    drop(raw);
    if ended? != Ended::Output {
        return Ok(());
    }
    exit_status(wait.status().map_err(|e| reported(e, 125))?)
}

/// What start and attach need to know of a container.
struct Found {
    id: String,
    tty: bool,
    open_stdin: bool,
    running: bool,
    auto_remove: bool,
}

fn find(api: &Api, name: &str) -> Result<Found, CliError> {
    let v = api.get(&format!("/containers/{}/json", encode(name)))?;
    Ok(Found {
        id: v["Id"].as_str().unwrap_or(name).to_string(),
        tty: v["Config"]["Tty"].as_bool().unwrap_or(false),
        open_stdin: v["Config"]["OpenStdin"].as_bool().unwrap_or(false),
        running: v["State"]["Running"].as_bool().unwrap_or(false),
        auto_remove: v["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false),
    })
}

/// `berth start`.
pub fn start(api: &Api, a: StartArgs) -> Result<(), CliError> {
    if !a.attach && !a.interactive {
        let mut failed = Vec::new();
        for c in &a.containers {
            match api.post(&format!("/containers/{}/start", encode(c))) {
                Ok(_) => println!("{c}"),
                Err(e) => {
                    eprintln!("{e}");
                    failed.push(c.as_str());
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        eprintln!("Error: failed to start containers: {}", failed.join(", "));
        return Err(CliError::Exit(1));
    }
    let [name] = a.containers.as_slice() else {
        return Err(CliError::Failed("you cannot start and attach multiple containers at once".into()));
    };
    let c = find(api, name)?;
    let conn = Connection {
        tty: c.tty,
        stdin: a.interactive && c.open_stdin,
    };
    conn.check()?;
    conn.follow_signals(api, &c.id, true);
    let stream = attach_stream(api, &c.id, conn.stdin)?;
    let wait = Wait::open(api, &c.id, if c.auto_remove { "removed" } else { "next-exit" })?;
    let raw = conn.raw_mode();
    if let Err(e) = api.post(&format!("/containers/{}/start", encode(&c.id))) {
        drop(raw);
        return Err(e);
    }
    let ended = conn.relay(api, &c.id, stream, &raw);
    drop(raw);
    if ended? != Ended::Output {
        return Ok(());
    }
    exit_status(wait.status()?)
}

/// `berth attach`.
pub fn attach(api: &Api, a: AttachArgs) -> Result<(), CliError> {
    let c = find(api, &a.container)?;
    if !c.running {
        return Err(CliError::Failed("You cannot attach to a stopped container, start it first".into()));
    }
    let conn = Connection {
        tty: c.tty,
        stdin: !a.no_stdin && c.open_stdin,
    };
    conn.check()?;
    conn.follow_signals(api, &c.id, a.sig_proxy);
    let wait = Wait::open(api, &c.id, "not-running")?;
    let stream = attach_stream(api, &c.id, conn.stdin)?;
    let raw = conn.raw_mode();
    let ended = conn.relay(api, &c.id, stream, &raw);
    drop(raw);
    if ended? != Ended::Output {
        return Ok(());
    }
    exit_status(wait.status()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_to_dockers_exit_codes() {
        let e =
            "Error response from daemon: berth-runtime: error: container init failed: exec nonexist: executable file not found in $PATH";
        assert_eq!(start_failure_status(e), 127);
        assert_eq!(start_failure_status("exec /x: no such file or directory"), 127);
        assert_eq!(start_failure_status("exec /etc/passwd: permission denied"), 126);
        assert_eq!(start_failure_status("exec /nonexist: no such file or directory"), 127);
        assert_eq!(start_failure_status("exec /etc: permission denied"), 126);
        assert_eq!(start_failure_status("cgroup: invalid argument"), 125);
        assert!(image_and_command(&["--bogus".into()]).is_err());
        let args = ["busybox".to_string(), "sh".into(), "-c".into()];
        assert_eq!(image_and_command(&args).unwrap(), ("busybox", &args[1..]));
    }
}
