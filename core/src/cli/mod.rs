//! The `berth` command line: docker's container, image, volume and
//! system commands, with docker's names, flags, output and exit codes,
//! over berthd's Engine API ([`api`]). The binary (`src/bin/berth.rs`)
//! only calls [`main`].
//!
//! Exit codes as docker's: 0, else 1 when the daemon or the request
//! failed, 125 for a usage error and for `run`/`create` when the daemon
//! refuses (126/127 when the command could not be run or found), and a
//! container's own status for `run`, `start -a` and `attach`.
//!
//! What lives where: flags of `run`/`create` and the create body in
//! [`options`], the run/start/attach flows in [`run`] with the streams in
//! [`stream`] (and our terminal and signals in [`terminal`] and
//! [`signals`]), `exec` in [`exec`], listings in [`ps`] and [`images`]
//! formatted by [`format`] ([`template`] is the Go-template subset,
//! [`tabwriter`] docker's column alignment), files in and out in [`cp`]
//! and [`export`], resource use in [`stats`] and [`top`], limits in
//! [`update`], the daemon's events in [`events`].

pub mod api;
mod containers;
mod cp;
mod events;
mod exec;
mod export;
pub mod format;
mod images;
mod inspect;
mod logs;
mod networks;
pub mod options;
mod plugins;
mod port;
mod progress;
mod ps;
mod run;
mod signals;
mod stats;
mod stream;
mod system;
pub mod tabwriter;
pub mod template;
mod terminal;
mod top;
mod update;
mod volumes;

use std::io::Write;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::client::{socket_from, ClientError};
use api::Api;

/// Why a command failed; printed as one line (but [`CliError::Exit`]).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The daemon refused, with its message.
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    /// The daemon could not be reached or answered nonsense.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The command line is wrong (exit 125, as docker's flag errors).
    #[error("{0}")]
    Usage(String),
    /// Anything else, already worded for the user.
    #[error("{0}")]
    Failed(String),
    /// Already reported: exit with this status.
    #[error("exit status {0}")]
    Exit(u8),
}

impl CliError {
    fn status(&self) -> u8 {
        match self {
            CliError::Usage(_) => 125,
            CliError::Exit(n) => *n,
            _ => 1,
        }
    }
}

/// Runs `op` on each name, printing what it returns; failures are
/// printed as they come (as docker's commands over several objects do)
/// and make the status 1.
fn each(names: &[String], mut op: impl FnMut(&str) -> Result<Option<String>, CliError>) -> Result<(), CliError> {
    let mut failed = false;
    for n in names {
        match op(n) {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => {}
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(CliError::Exit(1))
    } else {
        Ok(())
    }
}

/// Asks before a destructive command, as docker's prune does.
fn confirm(warning: &str) -> Result<bool, CliError> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::Failed(format!("reading the answer: {e}")))?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// berth: run and manage containers through berthd.
#[derive(Parser, Debug)]
#[command(name = "berth", version, disable_help_flag = true)]
struct Cli {
    /// berthd's socket (unix:///path or a path; default BERTH_HOST, else /run/berth/berth.sock).
    #[arg(short = 'H', long = "host", global = true)]
    host: Option<String>,
    /// Print usage.
    #[arg(long = "help", global = true, action = ArgAction::Help)]
    help: Option<bool>,
    #[command(subcommand)]
    command: Command,
}

/// `--format` of version and info.
#[derive(Args, Debug)]
struct FormatArgs {
    /// `json` for the raw answer, or a Go template.
    #[arg(short = 'f', long = "format")]
    format: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Container(ContainerOp),
    /// List containers.
    Ps(ps::PsArgs),
    /// Return low-level information on containers, images or volumes.
    Inspect(inspect::InspectArgs),
    /// Manage containers.
    #[command(name = "container", subcommand)]
    Containers(ContainerCommand),
    /// Show the client's and the daemon's versions.
    Version(FormatArgs),
    /// Show what the daemon knows of itself.
    Info(FormatArgs),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volumes::VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(networks::NetworkCommand),
    /// Manage driver plugins.
    #[command(subcommand)]
    Plugin(plugins::PluginCommand),
    /// Manage the daemon's space.
    #[command(subcommand)]
    System(SystemCommand),
    /// Load images from a docker-archive.
    Load(images::LoadArgs),
    /// Save images to a docker-archive.
    Save(images::SaveArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Point a new name at an image.
    Tag { source: String, target: String },
    /// Show how an image was made.
    History { name: String },
    /// Remove images (a name is untagged; the last name removes the image).
    Rmi(images::RmiArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(images::ImageCommand),
    /// Get real time events from the server.
    Events(events::EventsArgs),
}

/// The container commands that are the same at the top (`berth stop`)
/// and under `berth container`.
#[derive(Subcommand, Debug)]
enum ContainerOp {
    /// Create and run a new container from an image.
    Run(Box<run::RunArgs>),
    /// Create a new container.
    Create(Box<run::CreateArgs>),
    /// Start one or more stopped containers.
    Start(run::StartArgs),
    /// Stop one or more running containers.
    Stop(containers::StopArgs),
    /// Restart one or more containers.
    Restart(containers::StopArgs),
    /// Kill one or more running containers.
    Kill(containers::KillArgs),
    /// Remove one or more containers.
    Rm(containers::RmArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(containers::WaitArgs),
    /// Rename a container.
    Rename(containers::RenameArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(run::AttachArgs),
    /// Fetch the logs of a container.
    Logs(logs::LogsArgs),
    /// Execute a command in a running container.
    #[command(override_usage = "berth exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
    Exec(exec::ExecArgs),
    /// Display the running processes of a container.
    Top(top::TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(stats::StatsArgs),
    /// Pause all processes within one or more containers.
    Pause(containers::PauseArgs),
    /// Unpause all processes within one or more containers.
    Unpause(containers::PauseArgs),
    /// List port mappings or a specific mapping for the container.
    Port(port::PortArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(cp::CpArgs),
    /// Export a container's filesystem as a tar archive.
    Export(export::ExportArgs),
    /// Update configuration of one or more containers.
    Update(Box<update::UpdateArgs>),
}

/// `berth container ...`.
#[derive(Subcommand, Debug)]
enum ContainerCommand {
    #[command(flatten)]
    Op(ContainerOp),
    /// List containers.
    #[command(visible_alias = "ps", alias = "list")]
    Ls(ps::PsArgs),
    /// Display detailed information on one or more containers.
    Inspect(inspect::InspectArgs),
    /// Remove all stopped containers.
    Prune(containers::PruneArgs),
}

#[derive(Subcommand, Debug)]
enum SystemCommand {
    /// Show how much space images, containers and volumes take.
    Df,
    /// Get real time events from the server.
    Events(events::EventsArgs),
}

fn container(api: &Api, op: ContainerOp) -> Result<(), CliError> {
    match op {
        ContainerOp::Run(a) => run::run(api, *a),
        ContainerOp::Create(a) => run::create(api, *a),
        ContainerOp::Start(a) => run::start(api, a),
        ContainerOp::Stop(a) => containers::stop(api, a, false),
        ContainerOp::Restart(a) => containers::stop(api, a, true),
        ContainerOp::Kill(a) => containers::kill(api, a),
        ContainerOp::Rm(a) => containers::rm(api, a),
        ContainerOp::Wait(a) => containers::wait(api, a),
        ContainerOp::Rename(a) => containers::rename(api, a),
        ContainerOp::Attach(a) => run::attach(api, a),
        ContainerOp::Logs(a) => logs::logs(api, a),
        ContainerOp::Exec(a) => exec::exec(api, a),
        ContainerOp::Top(a) => top::top(api, a),
        ContainerOp::Stats(a) => stats::stats(api, a),
        ContainerOp::Pause(a) => containers::pause(api, a, true),
        ContainerOp::Unpause(a) => containers::pause(api, a, false),
        ContainerOp::Port(a) => port::port(api, a),
        ContainerOp::Cp(a) => cp::cp(api, a),
        ContainerOp::Export(a) => export::export(api, a),
        ContainerOp::Update(a) => update::update(api, *a),
    }
}

fn dispatch(api: &Api, command: Command) -> Result<(), CliError> {
    match command {
        Command::Container(op) | Command::Containers(ContainerCommand::Op(op)) => container(api, op),
        Command::Ps(a) | Command::Containers(ContainerCommand::Ls(a)) => ps::ps(api, a),
        Command::Inspect(a) => inspect::inspect(api, a, None),
        Command::Containers(ContainerCommand::Inspect(a)) => inspect::inspect(api, a, Some(inspect::Kind::Container)),
        Command::Containers(ContainerCommand::Prune(a)) => containers::prune(api, a),
        Command::Version(f) => system::version(api, f.format.as_deref()),
        Command::Info(f) => system::info(api, f.format.as_deref()),
        Command::Volume(c) => volumes::volume(api, c),
        Command::Network(c) => networks::network(api, c),
        Command::Plugin(c) => plugins::plugin(api, c),
        Command::System(SystemCommand::Df) => system::df(api),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => events::events(api, a),
        Command::Load(a) => images::load(api, a),
        Command::Save(a) => images::save(api, a),
        Command::Images(a) | Command::Image(images::ImageCommand::Ls(a)) => images::images(api, a),
        Command::Tag { source, target } => images::tag(api, &source, &target),
        Command::History { name } => images::history(api, &name),
        Command::Rmi(a) | Command::Image(images::ImageCommand::Rm(a)) => images::rmi(api, a),
        Command::Image(images::ImageCommand::Inspect(a)) => inspect::inspect_of(api, inspect::Kind::Image, None, a.names),
    }
}

/// The exit status of a command line clap refused: docker's 1 for a
/// missing argument, 125 for a flag error, 0 for help.
fn parse_failure_status(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
        ErrorKind::MissingRequiredArgument | ErrorKind::WrongNumberOfValues | ErrorKind::TooFewValues => 1,
        _ => 125,
    }
}

/// Runs the `berth` command line.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(parse_failure_status(e.kind()));
        }
    };
    let api = Api::new(socket_from(cli.host.as_deref()));
    match dispatch(&api, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Exit(n)) => ExitCode::from(n),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.status())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_dockers_flags_and_leaves_the_command_alone() {
        let cli = Cli::try_parse_from([
            "berth",
            "run",
            "-it",
            "--rm",
            "-h",
            "box",
            "-e",
            "A=1",
            "-m",
            "64m",
            "busybox",
            "sh",
            "-c",
            "echo -n x",
            "--rm",
        ])
        .unwrap();
        let Command::Container(ContainerOp::Run(a)) = cli.command else {
            panic!("not run")
        };
        let o = &a.create.options;
        assert!(o.interactive && o.tty && o.rm && a.sig_proxy);
        assert_eq!(o.hostname.as_deref(), Some("box"));
        assert_eq!(a.create.args, ["busybox", "sh", "-c", "echo -n x", "--rm"]);
        let cli = Cli::try_parse_from(["berth", "run", "--sig-proxy=false", "busybox"]).unwrap();
        let Command::Container(ContainerOp::Run(a)) = cli.command else {
            panic!("not run")
        };
        assert!(!a.sig_proxy);
        let e = Cli::try_parse_from(["berth", "run", "--bogus", "busybox"]);
        // clap takes it for the image; run refuses it as docker does.
        if let Ok(Cli {
            command: Command::Container(ContainerOp::Run(a)),
            ..
        }) = e
        {
            assert!(a.create.args[0].starts_with('-'));
        }
        let e = Cli::try_parse_from(["berth", "ps", "--bogus"]).unwrap_err();
        assert_eq!(parse_failure_status(e.kind()), 125);
        let e = Cli::try_parse_from(["berth", "stop"]).unwrap_err();
        assert_eq!(parse_failure_status(e.kind()), 1);
        let cli = Cli::try_parse_from(["berth", "container", "ps", "-aq"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Containers(ContainerCommand::Ls(ps::PsArgs {
                all: true,
                list: format::ListArgs { quiet: true, .. },
                ..
            }))
        ));
    }
}
