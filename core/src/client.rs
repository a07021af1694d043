//! A small client for berthd's API over its UNIX socket, for the `berth`
//! CLI: one request per connection, the answer read whole.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The daemon's socket: `-H`, else BERTH_HOST, else the default.
pub fn socket_from(host: Option<&str>) -> PathBuf {
    let host = host.map(str::to_string).or_else(|| std::env::var("BERTH_HOST").ok());
    match host {
        Some(h) => PathBuf::from(h.strip_prefix("unix://").unwrap_or(&h)),
        None => PathBuf::from("/run/berth/berth.sock"),
    }
}

/// An answer: status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to berthd at {path}: {source} (is berthd running?)")]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("talking to berthd at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("berthd at {path} sent a malformed answer")]
    Malformed { path: PathBuf },
}

/// Sends `method path` with an optional JSON body and reads the answer.
pub fn request(socket: &Path, method: &str, path: &str, body: Option<&[u8]>) -> Result<Answer, ClientError> {
    let io = |source| ClientError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let mut s = std::os::unix::net::UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth/{}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(io)?;
    s.write_all(body).map_err(io)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(io)?;
    parse(&raw).ok_or(ClientError::Malformed {
        path: socket.to_path_buf(),
    })
}

fn parse(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let rest = &raw[end + 4..];
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(rest)? } else { rest.to_vec() };
    Some(Answer { status, body })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&b[..line_end]).ok()?.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_answers_parse() {
        let a = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK").unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"OK"[..]));
        let a = parse(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((a.status, a.body.as_slice()), (404, &b"abcde"[..]));
        assert!(parse(b"garbage").is_none());
    }
}
