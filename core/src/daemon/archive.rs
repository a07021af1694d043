//! Files in and out of containers: `GET /containers/{id}/export` (the
//! root filesystem as a tarball) and the archive endpoints `docker cp`
//! uses (`HEAD`/`GET`/`PUT /containers/{id}/archive?path=`). Paths are
//! resolved as the container sees them (symlinks followed inside its
//! root, never out of it). Volumes and binds are not included, as in
//! Docker's export.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::{Response, StatusCode};
use serde_json::json;

use super::body::{self, Body};
use super::{Daemon, Failure};
use crate::container::Entry;

fn internal(msg: impl Into<String>) -> Failure {
    (StatusCode::INTERNAL_SERVER_ERROR, msg.into())
}

/// The container's root filesystem, mounted for the duration of `f`.
fn with_rootfs<T>(d: &Daemon, id: &str, f: impl FnOnce(&Path) -> Result<T, Failure>) -> Result<T, Failure> {
    let graph = d.images.graph();
    let root = graph
        .get(id, "")
        .map_err(|e| internal(format!("mount the container's root filesystem: {e}")))?;
    let out = f(&root);
    let _ = graph.put(id);
    out
}

/// `path` inside the container as a host path under `root`. Its last
/// component is not followed (a symlink is copied as a link, as `docker
/// cp` does) unless the path ends in `/` or `/.`.
fn inside(root: &Path, path: &str) -> Result<PathBuf, Failure> {
    if !path.starts_with('/') {
        return Err((StatusCode::BAD_REQUEST, format!("path {path:?} is not absolute")));
    }
    let resolve = |p: &Path| crate::runtime::rootfs::resolve::resolve(root, p).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()));
    let p = Path::new(path);
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) if !path.ends_with('/') && !path.ends_with("/.") && name != ".." => {
            Ok(root.join(resolve(parent)?).join(name))
        }
        _ => Ok(root.join(resolve(p)?)),
    }
}

/// Standard base64, for the path-stat header.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Docker's path stat: Go's FileMode bits (type flags high, permissions low).
fn path_stat(p: &Path, name: &str) -> Result<String, Failure> {
    let m =
        std::fs::symlink_metadata(p).map_err(|e| (StatusCode::NOT_FOUND, format!("Could not find the file {name} in container: {e}")))?;
    let mut mode = m.mode() & 0o777;
    let ft = m.file_type();
    if ft.is_dir() {
        mode |= 1 << 31;
    } else if ft.is_symlink() {
        mode |= 1 << 27;
    }
    if m.mode() & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if m.mode() & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    let link = if ft.is_symlink() {
        std::fs::read_link(p).map(|l| l.display().to_string()).unwrap_or_default()
    } else {
        String::new()
    };
    let v = json!({
        "name": Path::new(name).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into()),
        "size": m.len(), "mode": mode, "mtime": crate::time::rfc3339(m.mtime()), "linkTarget": link,
    });
    Ok(base64(v.to_string().as_bytes()))
}

/// Writes blocking tar output into an answer body.
struct ChannelWriter(tokio::sync::mpsc::Sender<hyper::body::Bytes>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(hyper::body::Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams a tarball of `src` (named `name` in it) into a body.
fn tar_reply(d: Arc<Daemon>, id: String, path: Option<String>, stat: Option<String>) -> Response<Body> {
    let (tx, body) = body::channel();
    tokio::task::spawn_blocking(move || {
        let _ = with_rootfs(&d, &id, |root| {
            let mut t = tar::Builder::new(std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(tx)));
            t.follow_symlinks(false);
            let result = match &path {
                None => t.append_dir_all(".", root),
                Some(p) => {
                    let src = inside(root, p)?;
                    let name = if p.ends_with("/.") {
                        ".".to_string()
                    } else {
                        src.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_else(|| ".".into())
                    };
                    if src.is_dir() && !src.is_symlink() {
                        t.append_dir_all(&name, &src)
                    } else {
                        t.append_path_with_name(&src, &name)
                    }
                }
            };
            let _ = result.and_then(|_| t.finish());
            Ok(())
        });
    });
    let mut reply = Response::new(body);
    reply
        .headers_mut()
        .insert("content-type", "application/x-tar".parse().expect("static header"));
    if let Some(s) = stat {
        if let Ok(v) = s.parse() {
            reply.headers_mut().insert("x-docker-container-path-stat", v);
        }
    }
    reply
}

/// `GET /containers/{id}/export`.
pub fn export(d: &Arc<Daemon>, e: &Entry) -> Result<Response<Body>, Failure> {
    Ok(tar_reply(d.clone(), e.record().id.clone(), None, None))
}

/// `HEAD` (stat only) and `GET /containers/{id}/archive?path=`.
pub async fn get(d: &Arc<Daemon>, e: &Entry, path: &str, head: bool) -> Result<Response<Body>, Failure> {
    let id = e.record().id.clone();
    let (d2, id2, p2) = (d.clone(), id.clone(), path.to_string());
    let stat = tokio::task::spawn_blocking(move || with_rootfs(&d2, &id2, |root| path_stat(&inside(root, &p2)?, &p2)))
        .await
        .map_err(|err| internal(err.to_string()))??;
    if head {
        let mut reply = Response::new(body::full(hyper::body::Bytes::new()));
        if let Ok(v) = stat.parse() {
            reply.headers_mut().insert("x-docker-container-path-stat", v);
        }
        return Ok(reply);
    }
    Ok(tar_reply(d.clone(), id, Some(path.to_string()), Some(stat)))
}

/// `PUT /containers/{id}/archive?path=`: unpacks a tarball into a
/// directory of the container.
pub async fn put(d: &Arc<Daemon>, e: &Entry, path: &str, tarball: hyper::body::Bytes) -> Result<(), Failure> {
    let r = e.snapshot();
    if r.host_config["ReadonlyRootfs"].as_bool().unwrap_or(false) {
        return Err((StatusCode::FORBIDDEN, "container rootfs is marked read-only".into()));
    }
    let (d2, path) = (d.clone(), path.to_string());
    tokio::task::spawn_blocking(move || {
        with_rootfs(&d2, &r.id, |root| {
            // The destination is followed to the end, inside the root: a
            // symlink there must lead where it leads in the container.
            let dst = inside(root, &format!("{}/", path.trim_end_matches('/')))?;
            if !dst.is_dir() || dst.is_symlink() {
                return Err((
                    StatusCode::NOT_FOUND,
                    format!("Could not find the directory {path} in container (or it is not a directory)"),
                ));
            }
            let mut a = tar::Archive::new(&tarball[..]);
            a.set_preserve_permissions(true);
            a.set_overwrite(true);
            for entry in a
                .entries()
                .map_err(|err| (StatusCode::BAD_REQUEST, format!("reading the archive: {err}")))?
            {
                let mut entry = entry.map_err(|err| (StatusCode::BAD_REQUEST, format!("reading the archive: {err}")))?;
                // unpack_in refuses names that climb out of the directory.
                match entry.unpack_in(&dst) {
                    Ok(true) => {}
                    Ok(false) => return Err((StatusCode::BAD_REQUEST, "an archive entry points outside the directory".into())),
                    Err(err) => return Err(internal(format!("unpack into {path}: {err}"))),
                }
            }
            Ok(())
        })
    })
    .await
    .map_err(|err| internal(err.to_string()))?
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
