//! berth-runtime: an OCI runtime with runc's command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_core::runtime::container_create::{create, CreateOptions};
use berth_core::runtime::container_exec::{exec, process_from_config, ExecOptions};
use berth_core::runtime::state::{write_atomic, Root, DEFAULT_ROOT};
use berth_core::runtime::{
    container_delete, container_kill, container_pause, container_ps, container_run, container_start, container_state, spec,
};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "berth-runtime", version, about = "berth's OCI runtime (runc-compatible command line)")]
struct Cli {
    /// Directory holding container state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Also write errors to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of --log: text or json.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Accepted for runc compatibility; berth-runtime logs nothing extra.
    #[arg(long, global = true)]
    debug: bool,
    /// runc's systemd cgroup driver is not supported; the flag is refused.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Format {
    Table,
    Json,
}

/// The flags `create` and `run` share (runc's).
#[derive(Args)]
struct CreateArgs {
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    /// Accepted for runc compatibility: berth-runtime always pivots.
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    id: String,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions<'_> {
        CreateOptions {
            id: &self.id,
            bundle: &self.bundle,
            pid_file: self.pid_file.as_deref(),
            console_socket: self.console_socket.as_deref(),
            preserve_fds: self.preserve_fds,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Write a default config.json into the bundle.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal (default TERM) to a container.
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Change a running container's memory, CPU and pids limits.
    Update {
        /// linux.resources as JSON (`-` reads stdin).
        #[arg(short, long)]
        resources: PathBuf,
        id: String,
    },
    /// Delete a container.
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container, wait for it, delete it.
    Run {
        #[arg(short, long)]
        detach: bool,
        #[command(flatten)]
        args: CreateArgs,
    },
    /// Run a new process inside a container.
    Exec {
        /// A process.json to run instead of ARGS.
        #[arg(short, long)]
        process: Option<PathBuf>,
        #[arg(short, long)]
        tty: bool,
        #[arg(short, long = "env")]
        env: Vec<String>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// UID[:GID]
        #[arg(short, long)]
        user: Option<String>,
        #[arg(short = 'g', long = "additional-gids")]
        additional_gids: Vec<u32>,
        #[arg(short, long)]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long = "no-new-privs")]
        no_new_privs: bool,
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: i32,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// List a container's processes.
    Ps {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List containers.
    List {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[arg(short, long)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (log, log_format) = (cli.log.clone(), cli.log_format);
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("berth-runtime: error: {msg}");
            if let Some(path) = log {
                write_log(&path, log_format, &msg);
            }
            ExitCode::from(exit_code_of(&msg))
        }
    }
}

/// A process that could not be exec'd ends as a shell reports it: 127
/// when the program is missing, 126 when it cannot be run; 1 otherwise.
fn exit_code_of(msg: &str) -> u8 {
    if !msg.contains("exec") {
        1
    } else if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") || msg.contains("exec format error") {
        126
    } else {
        1
    }
}

fn write_log(path: &Path, format: LogFormat, msg: &str) {
    let time = berth_core::runtime::state::now_rfc3339();
    let line = match format {
        LogFormat::Json => serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string(),
        LogFormat::Text => format!("time=\"{time}\" level=error msg=\"{}\"", msg.replace('"', "\\\"")),
    };
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    // Commands that start container processes run from a sealed copy of
    // the binary, so no container can reach the host's (CVE-2019-5736).
    if matches!(cli.command, Command::Create(_) | Command::Run { .. } | Command::Exec { .. }) {
        berth_core::runtime::cloned_binary::ensure_cloned().context("re-execute from a sealed copy")?;
    }
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup is not supported: berth-runtime manages cgroupfs directly");
    }
    let root = Root::new(&cli.root);
    match cli.command {
        Command::Spec { bundle } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} already exists", path.display());
            }
            let text = serde_json::to_string_pretty(&spec::default_spec())?;
            write_atomic(&path, text.as_bytes())?;
        }
        Command::Create(args) => {
            create(&root, &args.options(), false)?;
        }
        Command::Start { id } => container_start::start(&root, &id)?,
        Command::State { id } => println!("{}", serde_json::to_string_pretty(&container_state::state(&root, &id)?)?),
        Command::Kill { all, id, signal } => container_kill::kill(&root, &id, container_kill::parse_signal(&signal)?, all)?,
        Command::Delete { force, id } => container_delete::delete(&root, &id, force)?,
        Command::Update { resources, id } => berth_core::runtime::container_update::update(&root, &id, &resources)?,
        Command::Run { detach, args } => return Ok(container_run::run(&root, &args.options(), detach)?),
        Command::Exec {
            process,
            tty,
            env,
            cwd,
            user,
            additional_gids,
            detach,
            pid_file,
            console_socket,
            no_new_privs,
            preserve_fds,
            id,
            args,
        } => {
            let mut p = match &process {
                Some(file) => {
                    let text = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
                    serde_json::from_slice(&text).with_context(|| format!("{}: malformed process.json", file.display()))?
                }
                None => {
                    if args.is_empty() {
                        bail!("exec: give a command or --process");
                    }
                    let mut p = process_from_config(&root, &id)?;
                    p.set_args(Some(args));
                    p.set_terminal(Some(tty));
                    p
                }
            };
            if tty {
                p.set_terminal(Some(true));
            }
            if !env.is_empty() {
                let mut all = p.env().clone().unwrap_or_default();
                for kv in env {
                    let key = kv.split('=').next().unwrap_or_default().to_string();
                    all.retain(|e| e.split('=').next() != Some(key.as_str()));
                    all.push(kv);
                }
                p.set_env(Some(all));
            }
            if let Some(cwd) = cwd {
                p.set_cwd(cwd);
            }
            if let Some(u) = user {
                let (uid, gid) = match u.split_once(':') {
                    Some((a, b)) => (a.parse().context("--user uid")?, b.parse().context("--user gid")?),
                    None => (u.parse().context("--user uid")?, 0),
                };
                p.user_mut().set_uid(uid);
                p.user_mut().set_gid(gid);
            }
            if !additional_gids.is_empty() {
                p.user_mut().set_additional_gids(Some(additional_gids));
            }
            if no_new_privs {
                p.set_no_new_privileges(Some(true));
            }
            let opts = ExecOptions {
                id: &id,
                process: p,
                detach,
                pid_file: pid_file.as_deref(),
                console_socket: console_socket.as_deref(),
                preserve_fds,
            };
            return Ok(exec(&root, opts)?);
        }
        Command::Ps { format, id, ps_args } => match format {
            Format::Json => println!("{}", serde_json::to_string(&container_ps::pids(&root, &id)?)?),
            Format::Table => print!("{}", container_ps::table(&root, &id, &ps_args)?),
        },
        Command::Pause { id } => container_pause::pause(&root, &id)?,
        Command::Resume { id } => container_pause::resume(&root, &id)?,
        Command::List { format, quiet } => {
            let all = container_state::list(&root)?;
            if quiet {
                for c in &all {
                    println!("{}", c["id"].as_str().unwrap_or_default());
                }
            } else if format == Format::Json {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                println!(
                    "{:<12} {:<8} {:<10} {:<40} {:<31} OWNER",
                    "ID", "PID", "STATUS", "BUNDLE", "CREATED"
                );
                for c in &all {
                    println!(
                        "{:<12} {:<8} {:<10} {:<40} {:<31} root",
                        c["id"].as_str().unwrap_or_default(),
                        c["pid"],
                        c["status"].as_str().unwrap_or_default(),
                        c["bundle"].as_str().unwrap_or_default(),
                        c["created"].as_str().unwrap_or_default(),
                    );
                }
            }
        }
    }
    Ok(0)
}
