//! The commands that act on containers by name and print what they acted
//! on, as docker's: `stop`, `restart`, `kill`, `rm`, `wait`, `rename`,
//! `pause`, `unpause` and `container prune`. A failure for one container is printed and the
//! others go on; the exit status is then 1.

use clap::Args;

use super::api::{encode, filter_query, Api};
use super::format::human_size;
use super::{each, CliError};

/// `berth stop` and `berth restart`.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", visible_alias = "timeout", allow_hyphen_values = true)]
    pub time: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth kill`.
#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short = 's', long = "signal")]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short = 'v', long = "volumes")]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth wait`.
#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth pause` and `berth unpause`.
#[derive(Args, Debug)]
pub struct PauseArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `berth rename`.
#[derive(Args, Debug)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

/// `berth container prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>").
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

/// `berth stop` (`restart` when `restart`).
pub fn stop(api: &Api, a: StopArgs, restart: bool) -> Result<(), CliError> {
    let verb = if restart { "restart" } else { "stop" };
    let q = a.time.map(|t| format!("?t={t}")).unwrap_or_default();
    each(&a.containers, |c| {
        api.post(&format!("/containers/{}/{verb}{q}", encode(c)))?;
        Ok(Some(c.to_string()))
    })
}

/// `berth kill`.
pub fn kill(api: &Api, a: KillArgs) -> Result<(), CliError> {
    let q = a.signal.map(|s| format!("?signal={}", encode(&s))).unwrap_or_default();
    each(&a.containers, |c| {
        api.post(&format!("/containers/{}/kill{q}", encode(c)))?;
        Ok(Some(c.to_string()))
    })
}

/// `berth rm`.
pub fn rm(api: &Api, a: RmArgs) -> Result<(), CliError> {
    let q = format!("?force={}&v={}", u8::from(a.force), u8::from(a.volumes));
    each(&a.containers, |c| {
        api.call("DELETE", &format!("/containers/{}{q}", encode(c)), None)?;
        Ok(Some(c.to_string()))
    })
}

/// `berth wait`: each container's exit status once it stopped.
pub fn wait(api: &Api, a: WaitArgs) -> Result<(), CliError> {
    each(&a.containers, |c| {
        let v = api.post(&format!("/containers/{}/wait", encode(c)))?.unwrap_or_default();
        if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
            return Err(CliError::Failed(format!("error waiting for container: {m}")));
        }
        Ok(Some(v["StatusCode"].to_string()))
    })
}

/// `berth pause` (`unpause` when `!pause`): the cgroup freezer.
pub fn pause(api: &Api, a: PauseArgs, pause: bool) -> Result<(), CliError> {
    let verb = if pause { "pause" } else { "unpause" };
    each(&a.containers, |c| {
        api.post(&format!("/containers/{}/{verb}", encode(c)))?;
        Ok(Some(c.to_string()))
    })
}

/// `berth rename`.
pub fn rename(api: &Api, a: RenameArgs) -> Result<(), CliError> {
    let new = a.new_name.trim();
    if new.is_empty() {
        return Err(CliError::Failed("Error: neither old nor new names may be empty".into()));
    }
    api.post(&format!("/containers/{}/rename?name={}", encode(&a.container), encode(new)))?;
    Ok(())
}

/// `berth container prune`.
pub fn prune(api: &Api, a: PruneArgs) -> Result<(), CliError> {
    if !a.force && !super::confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let v = api
        .post(&format!("/containers/prune{}", filter_query(&a.filter)?))?
        .unwrap_or_default();
    let deleted = v["ContainersDeleted"].as_array().cloned().unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in deleted {
            println!("{}", d.as_str().unwrap_or_default());
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0), 4)
    );
    Ok(())
}
