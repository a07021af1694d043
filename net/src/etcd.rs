//! A small etcd v3 client over etcd's JSON gateway (`/v3/kv/...`, plain
//! HTTP/1.1 on a TCP socket): what the overlay driver and the engine need
//! to share networks, endpoints and addresses between hosts: get, list by
//! prefix, put, create-if-absent (a transaction on the key's create
//! revision) and delete. Keys and values travel base64-encoded, as the
//! gateway wants.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{json, Value};

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may take to open, and how often it is tried: a
/// SYN lost on a busy host costs a retry, not the request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TRIES: u32 = 3;

/// An etcd endpoint (`etcd://HOST:PORT` or `HOST:PORT`).
#[derive(Debug, Clone)]
pub struct Etcd {
    addr: SocketAddr,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

use crate::endpoint::base64 as b64;

fn unb64(s: &str) -> io::Result<Vec<u8>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("etcd: bad base64 {s:?}"));
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = B64.iter().position(|x| *x == c).ok_or_else(bad)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// The key right after every key with `prefix` (etcd's range end).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Etcd {
    /// `etcd://HOST:PORT`, `http://HOST:PORT` or `HOST:PORT`.
    pub fn new(url: &str) -> io::Result<Etcd> {
        let hostport = url
            .strip_prefix("etcd://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or(url)
            .trim_end_matches('/');
        let addr = hostport
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("etcd address {url:?}: no address")))?;
        Ok(Etcd { addr })
    }

    /// POSTs `body` to the gateway's `path`; the JSON answer.
    fn call(&self, path: &str, body: &Value) -> io::Result<Value> {
        let mut tries = 0;
        let mut s = loop {
            match TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT) {
                Ok(s) => break s,
                Err(e) if e.kind() == io::ErrorKind::TimedOut && tries + 1 < CONNECT_TRIES => tries += 1,
                Err(e) => return Err(io::Error::new(e.kind(), format!("etcd at {}: {e}", self.addr))),
            }
        };
        s.set_read_timeout(Some(TIMEOUT))?;
        s.set_write_timeout(Some(TIMEOUT))?;
        let body = body.to_string();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, rest) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "etcd: no HTTP header"))?;
        let status: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
        let payload = if chunked { dechunk(rest) } else { rest.to_string() };
        if status != 200 {
            return Err(io::Error::other(format!("etcd {path}: HTTP {status}: {}", payload.trim())));
        }
        serde_json::from_str(&payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("etcd {path}: {e}")))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        let v = self.call("/v3/kv/range", &json!({ "key": b64(key.as_bytes()), "serializable": true }))?;
        match v["kvs"].as_array().and_then(|a| a.first()) {
            Some(kv) => Ok(Some(unb64(kv["value"].as_str().unwrap_or(""))?)),
            None => Ok(None),
        }
    }

    /// Every key under `prefix` with its value, in key order.
    pub fn list(&self, prefix: &str) -> io::Result<Vec<(String, Vec<u8>)>> {
        let v = self.call(
            "/v3/kv/range",
            &json!({ "key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix)), "serializable": true }),
        )?;
        let mut out = Vec::new();
        for kv in v["kvs"].as_array().into_iter().flatten() {
            let key = String::from_utf8_lossy(&unb64(kv["key"].as_str().unwrap_or(""))?).into_owned();
            out.push((key, unb64(kv["value"].as_str().unwrap_or(""))?));
        }
        Ok(out)
    }

    pub fn put(&self, key: &str, value: &[u8]) -> io::Result<()> {
        self.call("/v3/kv/put", &json!({ "key": b64(key.as_bytes()), "value": b64(value) }))
            .map(drop)
    }

    /// Puts `key` only if it does not exist; whether it was put.
    pub fn create(&self, key: &str, value: &[u8]) -> io::Result<bool> {
        let k = b64(key.as_bytes());
        let v = self.call(
            "/v3/kv/txn",
            &json!({
                "compare": [{ "key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0" }],
                "success": [{ "request_put": { "key": k, "value": b64(value) } }],
            }),
        )?;
        Ok(v["succeeded"].as_bool().unwrap_or(false))
    }

    /// Removes `key`; absent is fine.
    pub fn delete(&self, key: &str) -> io::Result<()> {
        self.call("/v3/kv/deleterange", &json!({ "key": b64(key.as_bytes()) })).map(drop)
    }

    /// Removes every key under `prefix`.
    pub fn delete_prefix(&self, prefix: &str) -> io::Result<()> {
        self.call(
            "/v3/kv/deleterange",
            &json!({ "key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix)) }),
        )
        .map(drop)
    }
}

/// The body of a chunked HTTP answer.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "/berth/networks/x", "\u{ff}\u{fe}"] {
            assert_eq!(unb64(&b64(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"fo"), "Zm8=");
        assert_eq!(prefix_end("/a/"), b"/a0");
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
