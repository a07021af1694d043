//! OCI hooks: programs run at points of the container's life with the
//! container state on their stdin.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// Runs `hooks` in order; the first failure stops the list and is returned
/// as a message naming the hook.
pub fn run_all(kind: &str, hooks: &[Hook], state: &str) -> Result<(), String> {
    for h in hooks {
        run_one(h, state).map_err(|e| format!("{kind} hook {}: {e}", h.path().display()))?;
    }
    Ok(())
}

fn run_one(h: &Hook, state: &str) -> Result<(), String> {
    let args = h.args().as_deref().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(arg0) = args.first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, arg0);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    for kv in h.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    // Feed stdin and drain stderr on threads so that neither a hook that
    // never reads nor one that writes a lot can outlast the timeout.
    let stdin = child.stdin.take().map(|mut pipe| {
        let state = state.to_string();
        // A hook that does not read its stdin is fine.
        std::thread::spawn(move || drop(pipe.write_all(state.as_bytes())))
    });
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            text
        })
    });
    let collect = move || -> String {
        if let Some(t) = stdin {
            let _ = t.join();
        }
        stderr.and_then(|t| t.join().ok()).unwrap_or_default()
    };
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) if status.success() => {
                collect();
                return Ok(());
            }
            Some(status) => {
                let err = collect();
                let detail = if err.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", err.trim())
                };
                return Err(format!("{status}{detail}"));
            }
            None if deadline.is_some_and(|d| Instant::now() >= d) => {
                let _ = child.kill();
                let _ = child.wait();
                // Grandchildren may still hold the pipes: do not wait for them.
                return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(v: serde_json::Value) -> Hook {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn hooks_get_state_and_report_failures() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let ok = hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", out.display())]}));
        run_all("prestart", &[ok], "{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"x\"}");
        let bad = hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}));
        let e = run_all("poststart", &[bad], "{}").unwrap_err();
        assert!(e.contains("poststart hook /bin/sh") && e.contains("nope"), "{e}");
        let slow = hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}));
        assert!(run_all("prestart", &[slow], "{}").unwrap_err().contains("timed out"));
    }
}
