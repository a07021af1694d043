//! `run`: create, start and (unless detached) wait, forwarding signals and
//! relaying the terminal, then delete. Exits with the container's code.

use super::container_create::{create, CreateOptions};
use super::container_delete::delete;
use super::container_start::start;
use super::error::{Result, RuntimeError};
use super::process::supervise;
use super::state::Root;

/// Runs the container; returns its exit code (128+N for signal N), or 0
/// when detached.
pub fn run(root: &Root, opts: &CreateOptions, detach: bool) -> Result<i32> {
    // Block signals before the fork so none is lost, not even SIGCHLD.
    let signals = if detach {
        None
    } else {
        Some(supervise::catch_signals().map_err(|e| RuntimeError::io("block signals", "", e))?)
    };
    let created = create(root, opts, !detach && opts.console_socket.is_none())?;
    if let Err(e) = start(root, opts.id) {
        let _ = delete(root, opts.id, true);
        return Err(e);
    }
    let Some(signals) = signals else { return Ok(0) };
    let code = supervise::supervise(created.state.pid, &signals, created.console.as_ref());
    delete(root, opts.id, true)?;
    code.map_err(|e| RuntimeError::io("wait for container", "", e))
}
