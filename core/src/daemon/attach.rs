//! Streams to and from containers: `attach` (the HTTP connection is
//! hijacked and carries the container's stdio both ways, raw for a
//! terminal, else in Docker's multiplexed frames) and `logs` (the
//! json-file log, optionally followed).

use std::io::{BufRead, Seek};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::body::{self, Body};
use super::{containers, Daemon, Failure};
use crate::container::Entry;
use crate::monitor::{jsonlog, protocol};

type Query = std::collections::BTreeMap<String, String>;

fn on(q: &Query, k: &str) -> bool {
    q.get(k).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True"))
}

/// `POST /containers/{id}/attach?stream=1&stdin=&stdout=&stderr=`:
/// answers 101 and relays over the upgraded connection. Before the
/// container starts the request waits, and start connects it before the
/// container's first instruction runs.
pub async fn attach(d: Arc<Daemon>, e: Arc<Entry>, q: &Query, req: Request<Incoming>) -> Result<Response<Body>, Failure> {
    let mut want = 0;
    if on(q, "stdin") {
        want |= protocol::WANT_STDIN;
    }
    if on(q, "stdout") {
        want |= protocol::WANT_STDOUT;
    }
    if on(q, "stderr") {
        want |= protocol::WANT_STDERR;
    }
    let r = e.snapshot();
    let tty = r.tty();
    let stdin_once = r.config["StdinOnce"].as_bool().unwrap_or(false);
    let detach_keys = match q.get("detachKeys") {
        Some(k) => parse_detach_keys(k)?,
        None => vec![0x10, 0x11],
    };
    if !on(q, "stream") && !on(q, "logs") {
        return Err((StatusCode::BAD_REQUEST, "attach: give stream=1 or logs=1".into()));
    }
    // Connected now if running, else by start (a start that fails, or the
    // container's removal, drops the sender: no stream).
    enum Conn {
        None,
        Now(tokio::net::UnixStream),
        AtStart(tokio::sync::oneshot::Receiver<std::os::unix::net::UnixStream>),
    }
    let conn = if !on(q, "stream") {
        Conn::None
    } else if r.state.running() {
        Conn::Now(containers::connect(&d, &e, want).await?)
    } else {
        let (tx, rx) = tokio::sync::oneshot::channel();
        e.pending_attach.lock().unwrap_or_else(|p| p.into_inner()).push((want, tx));
        Conn::AtStart(rx)
    };
    let logs = if on(q, "logs") {
        jsonlog::read(&d.containers.dir(&r.id).join(format!("{}-json.log", r.id)))
    } else {
        vec![]
    };
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else { return };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let (mut client_r, mut client_w) = tokio::io::split(io);
        for l in logs.iter().filter(|l| {
            want & if l.stream == 2 {
                protocol::WANT_STDERR
            } else {
                protocol::WANT_STDOUT
            } != 0
        }) {
            if client_w.write_all(&encode(tty, l.stream, &l.text)).await.is_err() {
                return;
            }
        }
        let monitor = match conn {
            Conn::Now(s) => Some(s),
            Conn::AtStart(rx) => rx
                .await
                .ok()
                .and_then(|s| s.set_nonblocking(true).ok().and_then(|_| tokio::net::UnixStream::from_std(s).ok())),
            Conn::None => None,
        };
        let Some(monitor) = monitor else {
            let _ = client_w.shutdown().await;
            return;
        };
        let (mut mon_r, mut mon_w) = monitor.into_split();
        let (detached_tx, mut detached) = tokio::sync::oneshot::channel::<()>();
        let input = tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            let mut matched = 0;
            loop {
                match client_r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        // The detach keys (ctrl-p ctrl-q unless told) end the
                        // attachment, not the container; on a terminal only.
                        let mut data = &buf[..n];
                        if tty && !detach_keys.is_empty() {
                            let mut end = n;
                            for (i, b) in buf[..n].iter().enumerate() {
                                matched = if *b == detach_keys[matched] {
                                    matched + 1
                                } else {
                                    usize::from(*b == detach_keys[0])
                                };
                                if matched == detach_keys.len() {
                                    end = (i + 1).saturating_sub(detach_keys.len());
                                    break;
                                }
                            }
                            data = &buf[..end];
                            if matched == detach_keys.len() {
                                if want & protocol::WANT_STDIN != 0 && !data.is_empty() {
                                    let _ = mon_w.write_all(&protocol::frame(protocol::STDIN, data)).await;
                                }
                                let _ = detached_tx.send(());
                                return;
                            }
                        }
                        if want & protocol::WANT_STDIN != 0
                            && !data.is_empty()
                            && mon_w.write_all(&protocol::frame(protocol::STDIN, data)).await.is_err()
                        {
                            return;
                        }
                    }
                }
            }
            if want & protocol::WANT_STDIN != 0 && stdin_once {
                let _ = mon_w.write_all(&protocol::frame(protocol::CLOSE_STDIN, &[])).await;
            }
            // Holding the write half keeps the monitor relaying to us.
            std::future::pending::<()>().await;
        });
        let mut head = [0u8; 5];
        loop {
            let got = tokio::select! {
                r = mon_r.read_exact(&mut head) => r.is_ok(),
                _ = &mut detached => false,
            };
            if !got {
                break;
            }
            let Ok((kind, len)) = protocol::parse_head(&head) else { break };
            let mut payload = vec![0u8; len];
            if mon_r.read_exact(&mut payload).await.is_err() {
                break;
            }
            match kind {
                protocol::STDOUT | protocol::STDERR if client_w.write_all(&encode(tty, kind, &payload)).await.is_err() => break,
                protocol::EXIT => break,
                _ => {}
            }
        }
        input.abort();
        let _ = client_w.flush().await;
        let _ = client_w.shutdown().await;
    });
    Ok(body::switching_protocols(tty))
}

/// Docker's detach key list: `ctrl-p,ctrl-q`, `a,ctrl-@`; empty disables.
fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    for key in spec.split(',').filter(|k| !k.is_empty()) {
        let byte = match key.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => {
                let c = c.as_bytes()[0].to_ascii_lowercase();
                match c {
                    b'a'..=b'z' => c - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => return Err((StatusCode::BAD_REQUEST, format!("Invalid detach keys ({spec}) provided"))),
                }
            }
            None if key.len() == 1 => key.as_bytes()[0],
            _ => return Err((StatusCode::BAD_REQUEST, format!("Invalid detach keys ({spec}) provided"))),
        };
        out.push(byte);
    }
    Ok(out)
}

/// Output as a Docker client reads it: raw for a terminal, else framed.
fn encode(tty: bool, stream: u8, data: &[u8]) -> Vec<u8> {
    if tty {
        return data.to_vec();
    }
    let mut out = body::mux_header(stream, data.len()).to_vec();
    out.extend_from_slice(data);
    out
}

/// What `logs` was asked for.
struct LogQuery {
    stdout: bool,
    stderr: bool,
    follow: bool,
    timestamps: bool,
    tail: Option<usize>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
}

impl LogQuery {
    fn parse(q: &Query) -> Result<LogQuery, Failure> {
        let time = |k: &str| -> Result<Option<SystemTime>, Failure> {
            match q.get(k).filter(|v| !v.is_empty() && v.as_str() != "0") {
                None => Ok(None),
                Some(v) => crate::time::parse_timestamp(v)
                    .map(Some)
                    .ok_or_else(|| (StatusCode::BAD_REQUEST, format!("invalid value for \"{k}\": {v:?}"))),
            }
        };
        let tail = match q.get("tail").map(String::as_str) {
            None | Some("") | Some("all") => None,
            Some(n) => Some(
                n.parse()
                    .map_err(|_| (StatusCode::BAD_REQUEST, format!("invalid value for \"tail\": {n:?}")))?,
            ),
        };
        Ok(LogQuery {
            stdout: on(q, "stdout"),
            stderr: on(q, "stderr"),
            follow: on(q, "follow"),
            timestamps: on(q, "timestamps"),
            tail,
            since: time("since")?,
            until: time("until")?,
        })
    }

    fn wants(&self, l: &jsonlog::Line) -> bool {
        (if l.stream == 2 { self.stderr } else { self.stdout })
            && self.since.is_none_or(|s| l.time >= s)
            && self.until.is_none_or(|u| l.time <= u)
    }

    fn render(&self, tty: bool, l: &jsonlog::Line) -> Bytes {
        let mut text = Vec::new();
        if self.timestamps {
            text.extend_from_slice(l.time_text.as_bytes());
            text.push(b' ');
        }
        text.extend_from_slice(&l.text);
        Bytes::from(encode(tty, l.stream, &text))
    }
}

/// `GET /containers/{id}/logs`.
pub fn logs(d: &Daemon, e: Arc<Entry>, q: &Query) -> Result<Response<Body>, Failure> {
    let lq = LogQuery::parse(q)?;
    if !lq.stdout && !lq.stderr {
        return Err((
            StatusCode::BAD_REQUEST,
            "Bad parameters: you must choose at least one stream".into(),
        ));
    }
    let r = e.snapshot();
    let tty = r.tty();
    let path = d.containers.dir(&r.id).join(format!("{}-json.log", r.id));
    let (tx, body) = body::channel();
    tokio::task::spawn_blocking(move || {
        // The current file is held open before the old ones are read, so
        // a rotation in between loses nothing.
        let mut current = std::fs::File::open(&path).ok();
        let mut lines: Vec<jsonlog::Line> = Vec::new();
        for f in jsonlog::files(&path) {
            let file = if f == path {
                current.as_ref().and_then(|c| c.try_clone().ok())
            } else {
                std::fs::File::open(&f).ok()
            };
            let Some(file) = file else { continue };
            let mut reader = std::io::BufReader::new(file);
            let mut raw = Vec::new();
            while reader.read_until(b'\n', &mut raw).is_ok_and(|n| n > 0) {
                if raw.ends_with(b"\n") {
                    lines.extend(jsonlog::parse_line(&raw).filter(|l| lq.wants(l)));
                    raw.clear();
                } else {
                    // A line still being written: read again when following.
                    break;
                }
            }
            if f == path {
                if let (Some(c), Ok(pos)) = (current.as_mut(), reader.stream_position()) {
                    let _ = c.seek(std::io::SeekFrom::Start(pos - raw.len() as u64));
                }
            }
        }
        let skip = lq.tail.map(|t| lines.len().saturating_sub(t)).unwrap_or(0);
        for l in &lines[skip..] {
            if tx.blocking_send(lq.render(tty, l)).is_err() {
                return;
            }
        }
        if !lq.follow {
            return;
        }
        follow(&path, current, &e, &lq, tty, &tx);
    });
    let mut reply = Response::new(body);
    reply
        .headers_mut()
        .insert("content-type", body::stream_type(tty).parse().expect("static header"));
    Ok(reply)
}

/// Sends new log lines as they come, until the container has stopped
/// and its log is read to the end, or the client goes.
fn follow(
    path: &std::path::Path,
    mut current: Option<std::fs::File>,
    e: &Entry,
    lq: &LogQuery,
    tty: bool,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) {
    use std::os::unix::fs::MetadataExt;
    let mut pending = Vec::new();
    loop {
        let stopped =
            !e.record().state.running() && e.record().state.status != "restarting" || e.removed.load(std::sync::atomic::Ordering::SeqCst);
        let mut got = false;
        if let Some(f) = current.as_mut() {
            let mut chunk = Vec::new();
            let _ = std::io::Read::read_to_end(f, &mut chunk);
            got = !chunk.is_empty();
            pending.extend_from_slice(&chunk);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                if let Some(l) = jsonlog::parse_line(&line).filter(|l| lq.wants(l)) {
                    if tx.blocking_send(lq.render(tty, &l)).is_err() {
                        return;
                    }
                }
            }
        }
        // Truncated in place (max-file 1): read again from the start.
        if let Some(f) = current.as_mut() {
            let pos = std::io::Seek::stream_position(f).unwrap_or(0);
            if !got && f.metadata().is_ok_and(|m| m.len() < pos) {
                let _ = std::io::Seek::seek(f, std::io::SeekFrom::Start(0));
                pending.clear();
                continue;
            }
        }
        // Rotated: the file at the path is a new one; finish the old first.
        let rotated = match (&current, std::fs::metadata(path)) {
            (Some(f), Ok(m)) => f.metadata().is_ok_and(|fm| fm.ino() != m.ino()),
            (None, Ok(_)) => true,
            _ => false,
        };
        if rotated && !got {
            current = std::fs::File::open(path).ok();
            pending.clear();
            continue;
        }
        if stopped && !got {
            return;
        }
        if tx.is_closed() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
