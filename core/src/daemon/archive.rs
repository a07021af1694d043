//! Files in and out of containers: `GET /containers/{id}/export` (the
//! root filesystem as a tarball) and the archive endpoints `docker cp`
//! uses (`HEAD`/`GET`/`PUT /containers/{id}/archive?path=`).
//!
//! berthd only mounts the root filesystem (and holds it mounted for the
//! duration); the files are read and written by `berth-archive`, chrooted
//! into it (`container/archive.rs`), so no path or symlink of a container
//! is ever followed on the host. A path under a volume or bind is copied
//! in that directory, as the container sees it; export leaves volumes
//! and binds out, as Docker's does.

use std::process::Stdio;
use std::sync::Arc;

use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::body::{self, Body};
use super::{Daemon, Failure};
use crate::container::Entry;

fn internal(msg: impl Into<String>) -> Failure {
    (StatusCode::INTERNAL_SERVER_ERROR, msg.into())
}

/// The container's root filesystem, mounted until dropped.
struct Mounted {
    d: Arc<Daemon>,
    id: String,
    path: std::path::PathBuf,
}

impl Mounted {
    async fn new(d: &Arc<Daemon>, id: &str) -> Result<Mounted, Failure> {
        let (d2, id2) = (d.clone(), id.to_string());
        let path = tokio::task::spawn_blocking(move || d2.images.graph().get(&id2, ""))
            .await
            .map_err(|e| internal(e.to_string()))?
            .map_err(|e| internal(format!("mount the container's root filesystem: {e}")))?;
        Ok(Mounted {
            d: d.clone(),
            id: id.to_string(),
            path,
        })
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.d.images.graph().put(&self.id);
    }
}

fn helper(d: &Daemon, op: &str, root: &std::path::Path, path: Option<&str>) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(berth_fs::program("berth-archive"));
    c.arg(op).arg(root);
    if let Some(p) = path {
        c.arg(p);
    }
    let _ = d;
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// The helper's failure as an API failure: exit 2 is Docker's 404.
fn failed(status: std::process::ExitStatus, stderr: &[u8]) -> Failure {
    let msg = String::from_utf8_lossy(stderr).trim().to_string();
    match status.code() {
        Some(2) => (StatusCode::NOT_FOUND, msg),
        Some(1) if msg.contains("not absolute") => (StatusCode::BAD_REQUEST, msg),
        _ => internal(if msg.is_empty() { format!("berth-archive: {status}") } else { msg }),
    }
}

/// Standard base64, for the path-stat header.
use berth_net::endpoint::base64;

/// Streams the helper's tarball into an answer, the rootfs held mounted
/// until it is done.
fn tar_reply(mounted: impl Send + 'static, mut cmd: tokio::process::Command, stat: Option<String>) -> Result<Response<Body>, Failure> {
    let mut child = cmd.spawn().map_err(|e| internal(format!("run berth-archive: {e}")))?;
    let mut out = child.stdout.take().ok_or_else(|| internal("berth-archive has no stdout"))?;
    let (tx, body) = body::channel();
    tokio::spawn(async move {
        let _mounted = mounted;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match out.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        let _ = child.kill().await;
                        break;
                    }
                }
            }
        }
        let _ = child.wait().await;
    });
    let mut reply = Response::new(body);
    reply
        .headers_mut()
        .insert("content-type", "application/x-tar".parse().expect("static header"));
    if let Some(v) = stat.and_then(|s| s.parse().ok()) {
        reply.headers_mut().insert("x-docker-container-path-stat", v);
    }
    Ok(reply)
}

/// `GET /containers/{id}/export`.
pub async fn export(d: &Arc<Daemon>, e: &Entry) -> Result<Response<Body>, Failure> {
    let id = e.record().id.clone();
    let mounted = Mounted::new(d, &id).await?;
    let cmd = helper(d, "export", &mounted.path, None);
    tar_reply(mounted, cmd, None)
}

/// Where `path` lives for a copy: inside a volume or bind mounted over it
/// (that directory and the path below the mount point), else the root
/// filesystem (`None` and the path itself).
fn mounted_over(d: &Daemon, r: &crate::container::Record, path: &str) -> (Option<std::path::PathBuf>, String) {
    let p = std::path::Path::new("/").join(path);
    let best = r
        .mounts
        .iter()
        .filter(|m| m.kind != "tmpfs" && p.starts_with(&m.destination))
        .max_by_key(|m| m.destination.len());
    let Some(m) = best else { return (None, path.to_string()) };
    let source = if m.kind == "volume" {
        d.volumes
            .inspect(&d.registry, &m.name)
            .ok()
            .and_then(|v| v["Mountpoint"].as_str().map(std::path::PathBuf::from))
    } else {
        Some(std::path::PathBuf::from(&m.source))
    };
    let rest = p.strip_prefix(&m.destination).map(|r| r.display().to_string()).unwrap_or_default();
    // What the path's spelling says about its last component stays.
    let tail = if path.ends_with("/.") {
        "/."
    } else if path.ends_with('/') {
        "/"
    } else {
        ""
    };
    match source {
        Some(s) => (Some(s), format!("/{}{tail}", rest.trim_end_matches('/'))),
        None => (None, path.to_string()),
    }
}

/// The directory a copy works in: a volume's or bind's, or the mounted
/// root filesystem, which stays mounted while `Root` lives.
enum Root {
    Mount(Mounted),
    Dir(std::path::PathBuf),
}

impl Root {
    async fn of(d: &Arc<Daemon>, r: &crate::container::Record, path: &str) -> Result<(Root, String), Failure> {
        match mounted_over(d, r, path) {
            (Some(dir), inner) => Ok((Root::Dir(dir), inner)),
            (None, inner) => Ok((Root::Mount(Mounted::new(d, &r.id).await?), inner)),
        }
    }

    fn path(&self) -> &std::path::Path {
        match self {
            Root::Mount(m) => &m.path,
            Root::Dir(p) => p,
        }
    }
}

/// `HEAD` (stat only) and `GET /containers/{id}/archive?path=`.
pub async fn get(d: &Arc<Daemon>, e: &Entry, path: &str, head: bool) -> Result<Response<Body>, Failure> {
    let r = e.snapshot();
    let (mounted, inner) = Root::of(d, &r, path).await?;
    let path = inner.as_str();
    let out = helper(d, "stat", mounted.path(), Some(path))
        .output()
        .await
        .map_err(|err| internal(format!("run berth-archive: {err}")))?;
    if !out.status.success() {
        return Err(failed(out.status, &out.stderr));
    }
    let stat = base64(String::from_utf8_lossy(&out.stdout).trim().as_bytes());
    if head {
        let mut reply = Response::new(body::full(Bytes::new()));
        if let Ok(v) = stat.parse() {
            reply.headers_mut().insert("x-docker-container-path-stat", v);
        }
        return Ok(reply);
    }
    let cmd = helper(d, "get", mounted.path(), Some(path));
    tar_reply(mounted, cmd, Some(stat))
}

/// `PUT /containers/{id}/archive?path=`: unpacks a tarball into a
/// directory of the container.
pub async fn put(d: &Arc<Daemon>, e: &Entry, path: &str, tarball: Bytes) -> Result<(), Failure> {
    let r = e.snapshot();
    let p = std::path::Path::new("/").join(path);
    let over = r
        .mounts
        .iter()
        .filter(|m| m.kind != "tmpfs" && p.starts_with(&m.destination))
        .max_by_key(|m| m.destination.len());
    match over {
        Some(m) if !m.rw => {
            return Err((
                StatusCode::FORBIDDEN,
                format!("mounted volume is marked read-only: {}", m.destination),
            ))
        }
        None if r.host_config["ReadonlyRootfs"].as_bool().unwrap_or(false) => {
            return Err((StatusCode::FORBIDDEN, "container rootfs is marked read-only".into()))
        }
        _ => {}
    }
    let (mounted, inner) = Root::of(d, &r, path).await?;
    let mut cmd = helper(d, "put", mounted.path(), Some(&inner));
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|err| internal(format!("run berth-archive: {err}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that failed early closes its end: its error says why.
        let _ = stdin.write_all(&tarball).await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|err| internal(format!("berth-archive: {err}")))?;
    drop(mounted);
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(out.status, &out.stderr))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_pads() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
