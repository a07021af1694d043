//! `delete`: removes a stopped container (or, forced, a live one), its
//! cgroup and its state, then runs the poststop hooks.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::cgroups::Cgroup;
use super::container_kill::signal_init;
use super::error::{Result, RuntimeError};
use super::hooks;
use super::spec;
use super::state::{Root, Status};

/// How long delete waits for killed processes to go.
const KILL_WAIT: Duration = Duration::from_secs(10);

pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let st = match root.load(id) {
        // A create killed before it saved its state leaves a bare directory.
        Err(RuntimeError::NotFound(_)) if force => return root.remove(id),
        other => other?,
    };
    let status = st.status(&root.container_dir(id));
    let cgroup = Cgroup::open(&st.cgroup_path).ok();
    match status {
        Status::Stopped => {}
        Status::Created => signal_init(&st, Signal::SIGKILL).or_else(ignore_gone)?,
        _ if !force => {
            return Err(RuntimeError::BadState {
                id: id.to_string(),
                status: status.to_string(),
                op: "delete (use --force)",
            })
        }
        _ => {
            if let Some(cg) = &cgroup {
                for pid in cg.pids().unwrap_or_default() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
                }
                // Frozen processes cannot die: thaw after the kill is queued.
                let _ = cg.thaw();
            }
            signal_init(&st, Signal::SIGKILL).or_else(ignore_gone)?;
        }
    }
    let deadline = Instant::now() + KILL_WAIT;
    while st.init_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    if let Some(cg) = &cgroup {
        for pid in cg.pids().unwrap_or_default() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        cg.destroy()?;
    }
    if let Ok(spec) = spec::load_saved(&root.container_dir(id)) {
        if let Some(h) = spec.hooks().as_ref().and_then(|h| h.poststop().as_ref()) {
            if let Err(e) = hooks::run_all("poststop", h, &st.oci_state(Status::Stopped).to_string()) {
                eprintln!("warning: {e}");
            }
        }
    }
    root.remove(id)
}

fn ignore_gone(e: RuntimeError) -> Result<()> {
    match e {
        RuntimeError::BadState { .. } => Ok(()),
        RuntimeError::Io { error, .. } if error.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        e => Err(e),
    }
}
