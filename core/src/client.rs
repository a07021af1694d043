//! A small synchronous client for berthd's API over its UNIX socket, for
//! the `berth` CLI: one request per connection. An answer is read whole
//! ([`request`]), as it comes ([`open`], for logs and wait), or the
//! connection is taken over after a `101 Switching Protocols`
//! ([`upgrade`], for attach).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
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
    let mut s = open(socket, method, path, body)?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).map_err(|source| ClientError::Io {
        path: socket.to_path_buf(),
        source,
    })?;
    Ok(Answer { status: s.status, body })
}

/// An answer whose body is read as it comes: `Read` yields the body,
/// de-chunked.
pub struct Streamed {
    pub status: u16,
    headers: Vec<(String, String)>,
    body: Body<BufReader<UnixStream>>,
}

impl Streamed {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

impl Read for Streamed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.body.read(buf)
    }
}

/// Sends `method path` and returns once the answer's head has come.
pub fn open(socket: &Path, method: &str, path: &str, body: Option<&[u8]>) -> Result<Streamed, ClientError> {
    open_with_progress(socket, method, path, body, &mut |_| {})
}

/// [`open`], telling `sent` how many bytes of the body have gone so far.
pub fn open_with_progress(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    sent: &mut dyn FnMut(u64),
) -> Result<Streamed, ClientError> {
    let (head, reader) = send(socket, method, path, body, "Connection: close\r\n", sent)?;
    let framing = Framing::of(&head.headers);
    Ok(Streamed {
        status: head.status,
        headers: head.headers,
        body: Body { reader, framing },
    })
}

/// A connection berthd handed over after `101 Switching Protocols`: what
/// it sends is read from `reader`, what we send goes to `writer`.
pub struct Hijacked {
    pub reader: BufReader<UnixStream>,
    pub writer: UnixStream,
    /// The answer's Content-Type (raw or multiplexed stream).
    pub content_type: String,
}

/// Sends `method path` asking to upgrade the connection (as Docker's
/// attach does); `Err` carries the answer when berthd did not switch.
pub fn upgrade(socket: &Path, method: &str, path: &str) -> Result<Result<Hijacked, Answer>, ClientError> {
    upgrade_with(socket, method, path, None)
}

/// [`upgrade`] with a JSON body (as Docker's exec start sends one).
pub fn upgrade_with(socket: &Path, method: &str, path: &str, body: Option<&[u8]>) -> Result<Result<Hijacked, Answer>, ClientError> {
    let (head, mut reader) = send(socket, method, path, body, "Connection: Upgrade\r\nUpgrade: tcp\r\n", &mut |_| {})?;
    if head.status != 101 {
        let mut body = Vec::new();
        let mut b = Body {
            reader: &mut reader,
            framing: Framing::of(&head.headers),
        };
        b.read_to_end(&mut body).map_err(|source| ClientError::Io {
            path: socket.to_path_buf(),
            source,
        })?;
        return Ok(Err(Answer { status: head.status, body }));
    }
    let writer = reader.get_ref().try_clone().map_err(|source| ClientError::Io {
        path: socket.to_path_buf(),
        source,
    })?;
    Ok(Ok(Hijacked {
        content_type: header(&head.headers, "content-type").unwrap_or_default().to_string(),
        reader,
        writer,
    }))
}

/// Connects, sends the request and reads the answer's head.
fn send(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    connection: &str,
    sent: &mut dyn FnMut(u64),
) -> Result<(Head, BufReader<UnixStream>), ClientError> {
    let io = |source| ClientError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let mut s = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth/{}\r\n{connection}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(io)?;
    let mut done = 0u64;
    for chunk in body.chunks(256 * 1024) {
        s.write_all(chunk).map_err(io)?;
        done += chunk.len() as u64;
        sent(done);
    }
    let mut reader = BufReader::new(s);
    let head = read_head(&mut reader).map_err(io)?.ok_or(ClientError::Malformed {
        path: socket.to_path_buf(),
    })?;
    Ok((head, reader))
}

/// An answer's status line and headers.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Reads a head up to its blank line; `None` when it is not HTTP. The
/// reader is left at the first byte of the body.
fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let Some(status) = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()) else {
        return Ok(None);
    };
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            return Ok(Some(Head { status, headers }));
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
}

/// How the body's end is marked.
enum Framing {
    Length(u64),
    /// Bytes left in the current chunk; `None` before a chunk's size line.
    Chunked {
        left: Option<u64>,
        done: bool,
    },
    UntilClose,
}

impl Framing {
    fn of(headers: &[(String, String)]) -> Framing {
        if header(headers, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            Framing::Chunked { left: None, done: false }
        } else if let Some(n) = header(headers, "content-length").and_then(|v| v.parse().ok()) {
            Framing::Length(n)
        } else {
            Framing::UntilClose
        }
    }
}

/// A body read through its framing.
struct Body<R> {
    reader: R,
    framing: Framing,
}

fn malformed(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("malformed chunked body: {what}"))
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.framing {
            Framing::UntilClose => self.reader.read(buf),
            Framing::Length(left) => {
                if *left == 0 {
                    return Ok(0);
                }
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.reader.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                *left -= n as u64;
                Ok(n)
            }
            Framing::Chunked { left, done } => loop {
                if *done {
                    return Ok(0);
                }
                match left {
                    Some(0) => {
                        // The CRLF after a chunk's data.
                        let mut crlf = String::new();
                        self.reader.read_line(&mut crlf)?;
                        if !crlf.trim().is_empty() {
                            return Err(malformed("no CRLF after a chunk"));
                        }
                        *left = None;
                    }
                    Some(n) => {
                        let want = buf.len().min(usize::try_from(*n).unwrap_or(usize::MAX));
                        let got = self.reader.read(&mut buf[..want])?;
                        if got == 0 {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        *n -= got as u64;
                        return Ok(got);
                    }
                    None => {
                        let mut line = String::new();
                        if self.reader.read_line(&mut line)? == 0 {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        let size = line.split(';').next().unwrap_or_default().trim();
                        let size = u64::from_str_radix(size, 16).map_err(|_| malformed("bad chunk size"))?;
                        if size == 0 {
                            // Trailers up to the blank line.
                            loop {
                                line.clear();
                                if self.reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                                    break;
                                }
                            }
                            *done = true;
                        } else {
                            *left = Some(size);
                        }
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
        let mut r = raw;
        let head = read_head(&mut r).ok()??;
        let mut body = Body {
            reader: r,
            framing: Framing::of(&head.headers),
        };
        let mut out = Vec::new();
        body.read_to_end(&mut out).ok()?;
        Some((head.status, out))
    }

    #[test]
    fn plain_and_chunked_answers_parse() {
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOKextra").unwrap(),
            (200, b"OK".to_vec())
        );
        let chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse(chunked).unwrap(), (404, b"abcde".to_vec()));
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\n\r\nto the end").unwrap(), (200, b"to the end".to_vec()));
        assert!(parse(b"garbage").is_none());
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_none());
    }
}
