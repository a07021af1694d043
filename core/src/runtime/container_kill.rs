//! `kill`: signals a container's init (or, with `--all`, every process in
//! its cgroup).

use nix::sys::signal::Signal;

use super::cgroups::Cgroup;
use super::error::{Result, RuntimeError};
use super::state::{ContainerState, Root, Status};
use crate::sys;

/// Parses a signal as runc accepts it: "TERM", "SIGTERM" or "15".
pub fn parse_signal(s: &str) -> Result<Signal> {
    let bad = || RuntimeError::Other(format!("unknown signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<Signal>().map_err(|_| bad())
}

/// Sends `sig` to the container's init, through a pidfd so a reused pid is
/// never hit.
pub fn signal_init(st: &ContainerState, sig: Signal) -> Result<()> {
    let fd = sys::pidfd_open(st.pid).map_err(|e| RuntimeError::io("pidfd_open", format!("pid {}", st.pid), e))?;
    // The pidfd pins the process: check it is still the container's init.
    if sys::process_start_time(st.pid).ok() != Some(st.pid_start_time) {
        return Err(RuntimeError::BadState {
            id: st.id.clone(),
            status: "stopped".into(),
            op: "kill",
        });
    }
    sys::pidfd_send_signal(&fd, sig as i32).map_err(|e| RuntimeError::io("send signal", format!("pid {}", st.pid), e))
}

pub fn kill(root: &Root, id: &str, sig: Signal, all: bool) -> Result<()> {
    let st = root.load(id)?;
    let status = st.status(&root.container_dir(id));
    if status == Status::Stopped && !all {
        return Err(RuntimeError::BadState {
            id: id.to_string(),
            status: status.to_string(),
            op: "kill",
        });
    }
    if all {
        let cg = Cgroup::open(&st.cgroup_path)?;
        for pid in cg.pids()? {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
        return Ok(());
    }
    signal_init(&st, sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_runc() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
    }
}
