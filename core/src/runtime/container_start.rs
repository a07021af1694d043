//! `start`: lets a created container's init exec its process.

use std::io::Read;
use std::os::unix::net::UnixStream;

use super::error::{InitError, Result, RuntimeError};
use super::hooks;
use super::spec;
use super::state::{Root, Status, START_SOCKET};

/// Starts container `id`. Returns once the process has been exec'd, or
/// with the error that stopped it.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let st = root.load(id)?;
    let dir = root.container_dir(id);
    let status = st.status(&dir);
    if status != Status::Created {
        return Err(RuntimeError::BadState {
            id: id.to_string(),
            status: status.to_string(),
            op: "start",
        });
    }
    let sock = dir.join(START_SOCKET);
    let mut conn = crate::sys::SocketPath::new(&sock)
        .and_then(|p| UnixStream::connect(p.path()))
        .map_err(|e| RuntimeError::io("connect start socket", &sock, e))?;
    // From now on the container counts as started, whatever exec says.
    let _ = std::fs::remove_file(&sock);
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply)
        .map_err(|e| RuntimeError::io("read start result", &sock, e))?;
    if !reply.is_empty() {
        let e: InitError =
            serde_json::from_slice(&reply).unwrap_or_else(|_| InitError::new("start", None, String::from_utf8_lossy(&reply)));
        return Err(e.into());
    }
    // poststart hooks: a failure is reported but the container keeps running.
    if let Ok(spec) = spec::load_saved(&dir) {
        if let Some(h) = spec.hooks().as_ref().and_then(|h| h.poststart().as_ref()) {
            if let Err(e) = hooks::run_all("poststart", h, &st.oci_state(Status::Running).to_string()) {
                eprintln!("warning: {e}");
            }
        }
    }
    Ok(())
}
