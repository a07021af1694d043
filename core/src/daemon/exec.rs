//! `docker exec`: processes started in a running container by
//! `berth-runtime exec`, with the container's hardening. An exec is
//! created (`POST /containers/{id}/exec`), started over a hijacked
//! connection that carries its stdio (`POST /exec/{id}/start`), resized
//! and inspected. berthd holds its stdio, so an exec ends with berthd.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::body::{self, Body};
use super::{containers, Daemon, Failure};
use crate::container::Entry;

/// One exec instance.
pub struct Exec {
    pub id: String,
    pub container: String,
    /// The create request's body.
    pub config: Value,
    state: Mutex<ExecState>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: i32,
    /// The terminal's master while it runs, for resizes.
    master: Option<Arc<OwnedFd>>,
}

impl Exec {
    fn state(&self) -> std::sync::MutexGuard<'_, ExecState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The daemon's exec instances.
#[derive(Default)]
pub struct Execs {
    by_id: Mutex<HashMap<String, Arc<Exec>>>,
}

impl Execs {
    pub fn get(&self, id: &str) -> Result<Arc<Exec>, Failure> {
        self.by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| (StatusCode::NOT_FOUND, format!("No such exec instance: {id}")))
    }

    /// Forgets a container's execs (it was removed).
    pub fn forget(&self, container: &str) {
        self.by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| e.container != container);
    }

    /// The IDs of a container's execs, for inspect's `ExecIDs`.
    pub fn of(&self, container: &str) -> Vec<String> {
        self.by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|e| e.container == container)
            .map(|e| e.id.clone())
            .collect()
    }
}

/// An exec's command as its events name it.
fn command_line(config: &Value) -> String {
    config["Cmd"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

fn bad(msg: impl Into<String>) -> Failure {
    (StatusCode::BAD_REQUEST, msg.into())
}

/// `POST /containers/{id}/exec`.
pub fn create(d: &Daemon, e: &Entry, body: &[u8]) -> Result<Value, Failure> {
    let config: Value = serde_json::from_slice(body).map_err(|err| bad(format!("invalid JSON in the request body: {err}")))?;
    if config["Cmd"].as_array().is_none_or(|a| a.is_empty()) {
        return Err(bad("No exec command specified"));
    }
    let r = e.snapshot();
    if !r.state.running() {
        return Err((StatusCode::CONFLICT, format!("Container {} is not running", r.id)));
    }
    if r.state.status == "paused" {
        return Err((
            StatusCode::CONFLICT,
            format!("Container {} is paused, unpause the container before exec", r.id),
        ));
    }
    let id = crate::container::new_id();
    d.events
        .container(&format!("exec_create: {}", command_line(&config)), &r, &[("execID", id.clone())]);
    let exec = Arc::new(Exec {
        id: id.clone(),
        container: r.id,
        config,
        state: Mutex::default(),
    });
    d.execs.by_id.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), exec);
    Ok(json!({ "Id": id }))
}

/// The process.json of an exec: the container's process with the exec's
/// command, environment, directory, user and terminal.
fn process(d: &Daemon, exec: &Exec, tty: bool) -> Result<Value, Failure> {
    let dir = d.containers.dir(&exec.container);
    let spec: Value = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .ok_or_else(|| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("no config.json for container {}", exec.container),
            )
        })?;
    let mut p = spec["process"].clone();
    let c = &exec.config;
    p["args"] = c["Cmd"].clone();
    p["terminal"] = json!(tty);
    let mut env: Vec<Value> = p["env"].as_array().cloned().unwrap_or_default();
    for e in c["Env"].as_array().into_iter().flatten() {
        let key = e.as_str().and_then(|s| s.split('=').next()).unwrap_or_default().to_string();
        env.retain(|x| x.as_str().and_then(|s| s.split('=').next()) != Some(key.as_str()));
        env.push(e.clone());
    }
    p["env"] = json!(env);
    if let Some(w) = c["WorkingDir"].as_str().filter(|w| !w.is_empty()) {
        p["cwd"] = json!(w);
    }
    if let Some(u) = c["User"].as_str().filter(|u| !u.is_empty()) {
        let rootfs = spec["root"]["path"].as_str().unwrap_or_default();
        let (uid, gid, groups) = crate::container::spec::resolve_user(std::path::Path::new(rootfs), u).map_err(bad)?;
        p["user"] = json!({ "uid": uid, "gid": gid, "additionalGids": groups });
    }
    if c["Privileged"].as_bool().unwrap_or(false) {
        let all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
        p["capabilities"] = json!({ "bounding": all, "effective": all, "permitted": all });
    }
    if let Some([h, w]) = c["ConsoleSize"]
        .as_array()
        .map(|a| [a.first().and_then(Value::as_u64), a.get(1).and_then(Value::as_u64)])
    {
        if let (Some(h), Some(w)) = (h, w) {
            p["consoleSize"] = json!({ "height": h, "width": w });
        }
    }
    Ok(p)
}

/// `POST /exec/{id}/start`: runs it, relaying its stdio over the
/// hijacked connection (or detached).
pub async fn start(d: Arc<Daemon>, exec: Arc<Exec>, req: Request<Incoming>) -> Result<Response<Body>, Failure> {
    let (parts, incoming) = req.into_parts();
    let limited = http_body_util::Limited::new(incoming, 1 << 20);
    let body = http_body_util::BodyExt::collect(limited)
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let start: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| bad(format!("invalid JSON in the request body: {e}")))?
    };
    let req = Request::from_parts(parts, ());
    {
        let mut st = exec.state();
        if st.started {
            return Err((StatusCode::CONFLICT, format!("Exec {} has already been started", exec.id)));
        }
        st.started = true;
    }
    let entry = d.containers.find(&exec.container).map_err(containers::failure)?;
    if !entry.record().state.running() {
        return Err((StatusCode::CONFLICT, format!("Container {} is not running", exec.container)));
    }
    let tty = start["Tty"].as_bool().or(exec.config["Tty"].as_bool()).unwrap_or(false);
    let detach = start["Detach"].as_bool().unwrap_or(false);
    let want_stdin = exec.config["AttachStdin"].as_bool().unwrap_or(false) && !detach;
    let mut process = process(&d, &exec, tty)?;
    if let Some([Some(h), Some(w)]) = start["ConsoleSize"]
        .as_array()
        .map(|a| [a.first().and_then(Value::as_u64), a.get(1).and_then(Value::as_u64)])
    {
        process["consoleSize"] = json!({ "height": h, "width": w });
    }
    let run = d.exec_root.join(&exec.container);
    let process_file = run.join(format!("exec-{}.json", &exec.id[..12]));
    std::fs::write(&process_file, process.to_string())
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("write {}: {e}", process_file.display())))?;
    let mut cmd = tokio::process::Command::new(&d.runtime);
    cmd.arg("--root")
        .arg(d.exec_root.join("runtime"))
        .arg("exec")
        .arg("--process")
        .arg(&process_file);
    let console = if tty {
        let path = run.join(format!("exec-{}.sock", &exec.id[..12]));
        let _ = std::fs::remove_file(&path);
        let l = crate::sys::SocketPath::new(&path)
            .and_then(|p| tokio::net::UnixListener::bind(p.path()))
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("listen on {}: {e}", path.display())))?;
        cmd.arg("--console-socket").arg(&path);
        Some((l, path))
    } else {
        None
    };
    if detach {
        cmd.arg("--detach");
    }
    cmd.arg(&exec.container);
    use std::process::Stdio;
    cmd.stdin(if want_stdin && !tty { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(if tty { Stdio::null() } else { Stdio::piped() });
    cmd.stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("run {}: {e}", d.runtime.display())))?;
    let master = match console {
        Some((l, path)) => {
            let accepted = tokio::select! {
                a = l.accept() => a.ok(),
                _ = child.wait() => None,
            };
            let _ = std::fs::remove_file(&path);
            let Some((s, _)) = accepted else {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err).await;
                }
                return Err((StatusCode::INTERNAL_SERVER_ERROR, err.trim().to_string()));
            };
            let s = s.into_std().map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            let _ = s.set_nonblocking(false);
            let fd = tokio::task::spawn_blocking(move || crate::runtime::process::tty::recv_fd(s.as_raw_fd()))
                .await
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("receive the terminal: {e}")))?;
            let fd = Arc::new(fd);
            if let Some(sz) = process["consoleSize"].as_object() {
                let (h, w) = (sz["height"].as_u64().unwrap_or(0) as u16, sz["width"].as_u64().unwrap_or(0) as u16);
                let _ = crate::runtime::process::tty::set_size(fd.as_raw_fd(), h, w);
            }
            Some(fd)
        }
        None => None,
    };
    d.events.container(
        &format!("exec_start: {}", command_line(&exec.config)),
        &entry.snapshot(),
        &[("execID", exec.id.clone())],
    );
    {
        let mut st = exec.state();
        st.running = true;
        st.pid = child.id().map(|p| p as i32).unwrap_or(0);
        st.master = master.clone();
    }
    if detach {
        let exec2 = exec.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            finish(&d, &exec2, status.ok().and_then(|s| s.code()).unwrap_or(-1), &process_file);
        });
        return Ok(Response::new(body::full(Bytes::new())));
    }
    let exec2 = exec.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            let _ = child.kill().await;
            finish(&d, &exec2, -1, &process_file);
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let (mut client_r, client_w) = tokio::io::split(io);
        let client_w = Arc::new(tokio::sync::Mutex::new(client_w));
        let mut pumps = Vec::new();
        // Output: the terminal raw, else stdout and stderr framed.
        let sources: Vec<(u8, Box<dyn tokio::io::AsyncRead + Unpin + Send>)> = match &master {
            Some(m) => {
                let mut v: Vec<(u8, Box<dyn tokio::io::AsyncRead + Unpin + Send>)> = Vec::new();
                if let Ok(dup) = m.try_clone() {
                    v.push((0, Box::new(tokio::fs::File::from_std(std::fs::File::from(dup)))));
                }
                // The runtime's own errors (an exec that failed) come raw too.
                if let Some(e) = child.stderr.take() {
                    v.push((0, Box::new(e)));
                }
                v
            }
            None => {
                let mut v: Vec<(u8, Box<dyn tokio::io::AsyncRead + Unpin + Send>)> = Vec::new();
                if let Some(o) = child.stdout.take() {
                    v.push((1, Box::new(o)));
                }
                if let Some(e) = child.stderr.take() {
                    v.push((2, Box::new(e)));
                }
                v
            }
        };
        for (stream, mut src) in sources {
            let w = client_w.clone();
            pumps.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match src.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut out = Vec::with_capacity(n + 8);
                            if stream != 0 {
                                out.extend_from_slice(&body::mux_header(stream, n));
                            }
                            out.extend_from_slice(&buf[..n]);
                            if w.lock().await.write_all(&out).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }));
        }
        // Input: to the terminal or the stdin pipe; EOF closes the pipe.
        let mut sink: Option<Box<dyn tokio::io::AsyncWrite + Unpin + Send>> = match (&master, want_stdin) {
            (Some(m), true) => m
                .try_clone()
                .ok()
                .map(|dup| Box::new(tokio::fs::File::from_std(std::fs::File::from(dup))) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>),
            (None, true) => child
                .stdin
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>),
            _ => None,
        };
        let input = tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match client_r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Some(s) = sink.as_mut() {
                            if s.write_all(&buf[..n]).await.is_err() {
                                sink = None;
                            }
                        }
                    }
                }
            }
            drop(sink);
        });
        let status = child.wait().await;
        let code = status.ok().and_then(|s| s.code()).unwrap_or(-1);
        // With a terminal, its output ends when the last holder closes it.
        exec2.state().master = None;
        drop(master);
        for p in pumps {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), p).await;
        }
        input.abort();
        finish(&d, &exec2, code, &process_file);
        let mut w = client_w.lock().await;
        let _ = w.flush().await;
        let _ = w.shutdown().await;
    });
    Ok(body::switching_protocols(tty))
}

fn finish(d: &Daemon, exec: &Exec, code: i32, process_file: &std::path::Path) {
    if let Ok(e) = d.containers.find(&exec.container) {
        d.events.container(
            "exec_die",
            &e.snapshot(),
            &[("execID", exec.id.clone()), ("exitCode", code.to_string())],
        );
    }
    let mut st = exec.state();
    st.running = false;
    st.exit_code = Some(code);
    st.master = None;
    let _ = std::fs::remove_file(process_file);
}

/// `GET /exec/{id}/json`.
pub fn inspect(exec: &Exec) -> Value {
    let st = exec.state();
    let c = &exec.config;
    let cmd: Vec<Value> = c["Cmd"].as_array().cloned().unwrap_or_default();
    json!({
        "ID": exec.id,
        "ContainerID": exec.container,
        "Running": st.running,
        "ExitCode": st.exit_code,
        "Pid": st.pid,
        "OpenStdin": c["AttachStdin"].as_bool().unwrap_or(false),
        "OpenStdout": c["AttachStdout"].as_bool().unwrap_or(false),
        "OpenStderr": c["AttachStderr"].as_bool().unwrap_or(false),
        "CanRemove": false,
        "DetachKeys": "",
        "ProcessConfig": {
            "tty": c["Tty"].as_bool().unwrap_or(false),
            "entrypoint": cmd.first().cloned().unwrap_or(Value::Null),
            "arguments": cmd.get(1..).unwrap_or_default(),
            "privileged": c["Privileged"].as_bool().unwrap_or(false),
            "user": c["User"].as_str().unwrap_or(""),
        },
    })
}

/// `POST /exec/{id}/resize?h=&w=`.
pub fn resize(exec: &Exec, h: u16, w: u16) -> Result<(), Failure> {
    match &exec.state().master {
        Some(m) => crate::runtime::process::tty::set_size(m.as_raw_fd(), h, w)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("resize: {e}"))),
        None => Err((StatusCode::CONFLICT, format!("exec {} has no running terminal", exec.id))),
    }
}
