//! The out-of-process transport: Docker's plugin protocol as HTTP/1.1 POSTs
//! on a UNIX socket (or TCP, as a `.spec` file may name). [`Client`] is the
//! engine's side, [`serve`] runs a [`Plugin`] as such a server. Only what
//! the protocol uses is spoken: POST with a JSON body, answers framed by
//! `Content-Length`, chunks, or the end of the connection.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::abi::Plugin;
use crate::error::{DriverError, Result};

/// The media type of Docker's plugin protocol.
pub const MEDIA_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// The largest head or answer read, against a peer that never stops.
const MAX_MESSAGE: u64 = 64 << 20;
/// The largest request a served plugin reads: a graph driver's ApplyDiff
/// carries a whole layer.
const MAX_REQUEST: u64 = 16 << 30;

/// Where a plugin listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

impl Address {
    /// Reads Docker's address forms: `unix:///path`, `tcp://host:port`, or
    /// a bare absolute path.
    pub fn parse(s: &str) -> Result<Address> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("unix://") {
            return Ok(Address::Unix(PathBuf::from(p)));
        }
        if let Some(hp) = s.strip_prefix("tcp://").or_else(|| s.strip_prefix("http://")) {
            return Ok(Address::Tcp(hp.trim_end_matches('/').to_string()));
        }
        if s.starts_with('/') {
            return Ok(Address::Unix(PathBuf::from(s)));
        }
        Err(DriverError::InvalidArgument {
            what: format!("plugin address {s:?}"),
            reason: "expected unix:///PATH or tcp://HOST:PORT".into(),
        })
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A head read off a connection: the first line and the headers, names
/// lowercased.
struct Head {
    first: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Reads a head; `None` at a clean end of the connection.
    fn read(r: &mut impl BufRead) -> io::Result<Option<Head>> {
        let mut first = String::new();
        if r.take(MAX_MESSAGE).read_line(&mut first)? == 0 {
            return Ok(None);
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if r.take(MAX_MESSAGE).read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection ended inside the HTTP head",
                ));
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("malformed HTTP header {line:?}")))?;
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        Ok(Some(Head {
            first: first.trim_end().to_string(),
            headers,
        }))
    }

    /// Reads the body the head announces; with neither a length nor
    /// chunks, a response runs to the end of the connection.
    fn body(&self, r: &mut impl BufRead, to_end: bool, limit: u64) -> io::Result<Vec<u8>> {
        let too_large = || io::Error::new(io::ErrorKind::InvalidData, format!("HTTP body larger than {limit} bytes"));
        let mut body = Vec::new();
        if self.header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                r.take(1024).read_line(&mut size)?;
                let size = u64::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("malformed chunk size {size:?}")))?;
                if size == 0 {
                    let mut trailer = String::new();
                    while r.take(1024).read_line(&mut trailer)? > 2 {
                        trailer.clear();
                    }
                    return Ok(body);
                }
                if !matches!((body.len() as u64).checked_add(size), Some(n) if n <= limit) {
                    return Err(too_large());
                }
                r.take(size).read_to_end(&mut body)?;
                let mut crlf = [0u8; 2];
                r.read_exact(&mut crlf)?;
            }
        }
        match self.header("content-length") {
            Some(n) => {
                let n: u64 = n
                    .parse()
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("malformed Content-Length {n:?}")))?;
                if n > limit {
                    return Err(too_large());
                }
                r.take(n).read_to_end(&mut body)?;
                if (body.len() as u64) < n {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection ended inside the HTTP body",
                    ));
                }
            }
            None if to_end => {
                r.take(limit).read_to_end(&mut body)?;
            }
            None => {}
        }
        Ok(body)
    }

    /// Whether the peer keeps the connection open after this message.
    fn keeps_alive(&self) -> bool {
        let close = self.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        !close && self.first.contains("HTTP/1.1")
    }
}

/// The engine's side: POSTs methods to one plugin, reusing connections the
/// plugin keeps open.
pub struct Client {
    address: Address,
    timeout: Duration,
    idle: Mutex<Vec<BufReader<Box<dyn Stream>>>>,
}

impl Client {
    pub fn new(address: Address, timeout: Duration) -> Client {
        Client {
            address,
            timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn address(&self) -> &Address {
        &self.address
    }

    fn connect(&self) -> io::Result<BufReader<Box<dyn Stream>>> {
        let s: Box<dyn Stream> = match &self.address {
            Address::Unix(p) => {
                // connect(2) on a UNIX socket waits while the listener's
                // backlog is full (a plugin stuck in its handlers): bounded
                // here, the attempt left to a thread of its own.
                let (tx, rx) = std::sync::mpsc::channel();
                let path = p.clone();
                std::thread::spawn(move || {
                    let _ = tx.send(UnixStream::connect(path));
                });
                let s = rx
                    .recv_timeout(self.timeout)
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
                s.set_read_timeout(Some(self.timeout))?;
                s.set_write_timeout(Some(self.timeout))?;
                Box::new(s)
            }
            Address::Tcp(a) => {
                let addr = std::net::ToSocketAddrs::to_socket_addrs(a)?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no address for {a}")))?;
                let s = std::net::TcpStream::connect_timeout(&addr, self.timeout)?;
                s.set_read_timeout(Some(self.timeout))?;
                s.set_write_timeout(Some(self.timeout))?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
        };
        Ok(BufReader::new(s))
    }

    /// Sends the request and reads the answer: `None` when the connection
    /// turned out closed before any of the answer came (a kept connection
    /// the plugin has since closed: the request was not taken).
    fn exchange(conn: &mut BufReader<Box<dyn Stream>>, method: &str, body: &[u8]) -> io::Result<Option<(Head, Vec<u8>)>> {
        let closed = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
            )
        };
        let head = format!(
            "POST {method} HTTP/1.1\r\nHost: plugin\r\nAccept: {MEDIA_TYPE}\r\nContent-Type: {MEDIA_TYPE}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        // One write: a request in pieces costs the peer a wake-up each.
        let mut message = head.into_bytes();
        message.extend_from_slice(body);
        let w = conn.get_mut();
        match w.write_all(&message).and_then(|_| w.flush()) {
            Err(e) if closed(&e) => return Ok(None),
            r => r?,
        }
        let h = match Head::read(conn) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(None),
            Err(e) if closed(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let b = h.body(conn, true, MAX_MESSAGE)?;
        Ok(Some((h, b)))
    }

    /// The answer's body to `method` with `body`; a status other than 2xx
    /// is an error carrying the plugin's `Err` (or body).
    pub fn call(&self, method: &str, body: &[u8]) -> Result<Vec<u8>> {
        let fail = |e: io::Error| {
            let what = if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
                format!("did not answer within {:?}", self.timeout)
            } else {
                e.to_string()
            };
            DriverError::Driver(format!("plugin at {}: {method}: {what}", self.address))
        };
        let pooled = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        // A kept connection the plugin has closed since takes nothing: then
        // once more on a fresh one. Any other failure is the call's (the
        // plugin may have acted on it: never sent twice).
        let answered = match pooled.map(|mut c| Self::exchange(&mut c, method, body).map(|a| (c, a))) {
            Some(Ok((c, Some(a)))) => (c, a),
            Some(Err(e)) => return Err(fail(e)),
            Some(Ok((_, None))) | None => {
                let mut c = self.connect().map_err(fail)?;
                match Self::exchange(&mut c, method, body).map_err(fail)? {
                    Some(a) => (c, a),
                    None => {
                        return Err(fail(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "closed the connection without an answer",
                        )))
                    }
                }
            }
        };
        let (conn, (head, answer)) = answered;
        if head.keeps_alive() && head.header("content-length").is_some() {
            if let Ok(mut idle) = self.idle.lock() {
                idle.push(conn);
            }
        }
        let status: u16 = head.first.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        if (200..300).contains(&status) {
            return Ok(answer);
        }
        let err = serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v["Err"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&answer).trim().to_string());
        Err(DriverError::Driver(format!(
            "plugin at {}: {method}: {} {err}",
            self.address,
            head.first.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
        )))
    }
}

/// Answers one connection's requests with `plugin` until it closes.
fn answer(stream: UnixStream, plugin: &dyn Plugin) -> io::Result<()> {
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    while let Some(head) = Head::read(&mut r)? {
        let body = head.body(&mut r, false, MAX_REQUEST)?;
        let mut parts = head.first.split_whitespace();
        let (verb, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (status, answer) = if verb == "POST" {
            ("200 OK", plugin.call(path, &body))
        } else {
            ("405 Method Not Allowed", crate::abi::error_response("plugins answer POST only"))
        };
        let keep = head.keeps_alive();
        let mut message = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {MEDIA_TYPE}\r\nContent-Length: {}\r\n{}\r\n",
            answer.len(),
            if keep { "" } else { "Connection: close\r\n" }
        )
        .into_bytes();
        message.extend_from_slice(&answer);
        w.write_all(&message)?;
        if !keep {
            break;
        }
    }
    Ok(())
}

/// Serves `plugin` on `listener`, a thread per connection, until the
/// listener fails.
pub fn serve(listener: UnixListener, plugin: Arc<dyn Plugin>) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept()?;
        let p = Arc::clone(&plugin);
        std::thread::spawn(move || {
            let _ = answer(stream, p.as_ref());
        });
    }
}

/// Binds `socket` (replacing a stale one) and serves `plugin` on it in a
/// thread of its own.
pub fn serve_at(socket: &Path, plugin: Arc<dyn Plugin>) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(socket)?;
    Ok(std::thread::spawn(move || serve(listener, plugin)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers after `/Slow` half a second late; counts the calls.
    #[derive(Default)]
    struct Echo(std::sync::atomic::AtomicUsize);
    impl Plugin for Echo {
        fn name(&self) -> &'static str {
            "echo"
        }
        fn interfaces(&self) -> Vec<&'static str> {
            vec!["VolumeDriver"]
        }
        fn call(&self, method: &str, request: &[u8]) -> Vec<u8> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if method == "/Slow" {
                std::thread::sleep(Duration::from_millis(500));
            }
            serde_json::json!({ "Method": method, "Request": String::from_utf8_lossy(request) })
                .to_string()
                .into_bytes()
        }
    }

    #[test]
    fn a_served_plugin_answers_over_a_kept_connection() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("echo.sock");
        let echo = Arc::new(Echo::default());
        serve_at(&sock, echo.clone()).unwrap();
        let c = Client::new(
            Address::parse(&format!("unix://{}", sock.display())).unwrap(),
            Duration::from_secs(5),
        );
        for i in 0..3 {
            let a: serde_json::Value =
                serde_json::from_slice(&c.call("/VolumeDriver.List", format!("{{\"n\":{i}}}").as_bytes()).unwrap()).unwrap();
            assert_eq!(a["Method"], "/VolumeDriver.List");
            assert_eq!(a["Request"], format!("{{\"n\":{i}}}"));
        }
        assert_eq!(c.idle.lock().unwrap().len(), 1, "one connection, kept");
        let slow = Client::new(Address::Unix(sock.clone()), Duration::from_millis(100));
        slow.call("/Fast", b"{}").unwrap();
        let before = echo.0.load(std::sync::atomic::Ordering::SeqCst);
        // On the kept connection: the timeout is the call's, never a resend.
        let e = slow.call("/Slow", b"{}").unwrap_err().to_string();
        assert!(e.contains("did not answer within"), "{e}");
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(echo.0.load(std::sync::atomic::Ordering::SeqCst), before + 1, "sent once");
        let gone = Client::new(Address::Unix(dir.path().join("none.sock")), Duration::from_secs(1));
        assert!(gone.call("/X", b"{}").unwrap_err().to_string().contains("none.sock"));
    }

    #[test]
    fn addresses_in_dockers_forms() {
        assert_eq!(Address::parse("unix:///run/p.sock").unwrap(), Address::Unix("/run/p.sock".into()));
        assert_eq!(
            Address::parse("tcp://127.0.0.1:8080\n").unwrap(),
            Address::Tcp("127.0.0.1:8080".into())
        );
        assert_eq!(Address::parse("/run/p.sock").unwrap(), Address::Unix("/run/p.sock".into()));
        assert!(Address::parse("ftp://x").is_err());
    }
}
