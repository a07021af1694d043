//! The embedded DNS server of user-defined networks, as Docker's: each
//! container on one gets a resolver at 127.0.0.11:53 (UDP and TCP) inside
//! its own namespace. The sockets are opened in the container's namespace
//! and served from berthd's: names of containers on the asker's networks
//! (their names, aliases and ID prefixes) are answered here; every other
//! question is forwarded to the upstream servers and the answer relayed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where containers find the resolver (Docker's address).
pub const ADDRESS: &str = "127.0.0.11";

/// What the resolver does with a name (lowercase, no trailing dot) the
/// asking container asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// One of ours: these addresses.
    Found(Vec<IpAddr>),
    /// Not ours: ask the upstream servers.
    Forward,
    /// Not ours, and the container may not reach out (only internal
    /// networks): no such name, and nothing leaves (CVE-2024-29018).
    Refuse,
}

/// Answers a name for the asking container. It may block (it reads the
/// records, and the cluster store for global networks): it runs off the
/// async workers.
pub type Lookup = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

/// Queries (UDP) and connections (TCP) one container may have in flight:
/// a container flooding its resolver cannot take berthd's descriptors.
const MAX_QUERIES: usize = 64;
const MAX_CONNECTIONS: usize = 8;
/// How long a TCP connection may sit without a query.
const IDLE: Duration = Duration::from_secs(10);
const RCODE_NXDOMAIN: u8 = 3;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const RCODE_SERVFAIL: u8 = 2;
/// How long one upstream has to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// What answers for our names are good for.
const TTL: u32 = 600;

/// One question, as parsed from a query.
#[derive(Debug, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// Where the question section ends in the query.
    end: usize,
}

/// The single question of a standard query; `None` for anything else
/// (those are forwarded untouched).
pub fn question(msg: &[u8]) -> Option<Question> {
    if msg.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    // A response, or an opcode other than QUERY.
    if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 || qdcount != 1 {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        // Compression in a question is not something resolvers send.
        if len > 63 {
            return None;
        }
        labels.push(std::str::from_utf8(msg.get(at..at + len)?).ok()?.to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
    let qclass = u16::from_be_bytes([*msg.get(at + 2)?, *msg.get(at + 3)?]);
    Some(Question {
        name: labels.join("."),
        qtype,
        qclass,
        end: at + 4,
    })
}

/// The answer to `query` (whose question is `q`) from `addrs`: the
/// records of the asked type, none for other types (the name exists).
pub fn answer(query: &[u8], q: &Question, addrs: &[IpAddr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.end + 16 * addrs.len());
    out.extend_from_slice(&query[..2]);
    // QR, AA, RD as asked, RA; NOERROR.
    out.push(0x84 | (query[2] & 0x01));
    out.push(0x80);
    let records: Vec<&IpAddr> = addrs
        .iter()
        .filter(|a| q.qclass == CLASS_IN && ((q.qtype == TYPE_A && a.is_ipv4()) || (q.qtype == TYPE_AAAA && a.is_ipv6())))
        .collect();
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..q.end]);
    for a in records {
        // A pointer to the name in the question.
        out.extend_from_slice(&[0xc0, 12]);
        out.extend_from_slice(&q.qtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        match a {
            IpAddr::V4(v) => {
                out.extend_from_slice(&4u16.to_be_bytes());
                out.extend_from_slice(&v.octets());
            }
            IpAddr::V6(v) => {
                out.extend_from_slice(&16u16.to_be_bytes());
                out.extend_from_slice(&v.octets());
            }
        }
    }
    out
}

/// A header-only failure answer to `query`.
fn failure(query: &[u8], rcode: u8) -> Vec<u8> {
    let mut out = query[..query.len().min(12)].to_vec();
    out.resize(12, 0);
    out[2] = 0x80 | (out[2] & 0x79);
    out[3] = 0x80 | rcode;
    out[4..12].fill(0);
    out
}

/// The `nameserver` lines of a resolv.conf.
pub fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse().ok())
        .collect()
}

/// Asks the upstreams in turn; the first answer wins.
async fn forward(query: &[u8], upstreams: &[IpAddr]) -> Vec<u8> {
    for server in upstreams {
        let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .expect("a literal address");
        let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
            continue;
        };
        // Connected: answers from anywhere but the server are not taken.
        if sock.connect(SocketAddr::new(*server, 53)).await.is_err() || sock.send(query).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(UPSTREAM_TIMEOUT, sock.recv(&mut buf)).await {
            if n >= 2 && buf[..2] == query[..2] {
                buf.truncate(n);
                return buf;
            }
        }
    }
    failure(query, RCODE_SERVFAIL)
}

/// The answer to one query.
async fn resolve(query: &[u8], lookup: &Lookup, upstreams: &[IpAddr]) -> Vec<u8> {
    if query.len() < 12 {
        return Vec::new();
    }
    let decided = match question(query) {
        Some(q) => {
            let (lookup, name) = (lookup.clone(), q.name.trim_end_matches('.').to_string());
            let a = tokio::task::spawn_blocking(move || lookup(&name)).await.unwrap_or(Answer::Refuse);
            Some((q, a))
        }
        None => None,
    };
    match decided {
        Some((q, Answer::Found(addrs))) => answer(query, &q, &addrs),
        Some((_, Answer::Refuse)) => failure(query, RCODE_NXDOMAIN),
        _ => forward(query, upstreams).await,
    }
}

async fn serve_udp(sock: tokio::net::UdpSocket, lookup: Lookup, upstreams: Arc<Vec<IpAddr>>) {
    let sock = Arc::new(sock);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_QUERIES));
    let mut buf = vec![0u8; 4096];
    while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
        // Over the limit: dropped, as a lost datagram (the stub retries).
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            continue;
        };
        let query = buf[..n].to_vec();
        let (sock, lookup, upstreams) = (sock.clone(), lookup.clone(), upstreams.clone());
        tokio::spawn(async move {
            let reply = resolve(&query, &lookup, &upstreams).await;
            if !reply.is_empty() {
                let _ = sock.send_to(&reply, peer).await;
            }
            drop(permit);
        });
    }
}

async fn serve_tcp(listener: tokio::net::TcpListener, lookup: Lookup, upstreams: Arc<Vec<IpAddr>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let mut conn = match listener.accept().await {
            Ok((c, _)) => c,
            // Out of descriptors, say: wait rather than end the resolver.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else { continue };
        let (lookup, upstreams) = (lookup.clone(), upstreams.clone());
        tokio::spawn(async move {
            let _permit = permit;
            loop {
                let mut len = [0u8; 2];
                if !matches!(tokio::time::timeout(IDLE, conn.read_exact(&mut len)).await, Ok(Ok(_))) {
                    return;
                }
                let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
                if conn.read_exact(&mut query).await.is_err() {
                    return;
                }
                let reply = resolve(&query, &lookup, &upstreams).await;
                let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&reply);
                if conn.write_all(&framed).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The resolvers berthd serves, by container.
#[derive(Default)]
pub struct Resolvers {
    tasks: Mutex<HashMap<String, Vec<tokio::task::AbortHandle>>>,
}

impl Resolvers {
    /// Serves container `id`'s resolver in the namespace pinned at
    /// `netns` (on the current tokio runtime), replacing one it had.
    pub fn start(&self, id: &str, netns: &Path, lookup: Lookup, upstreams: Vec<IpAddr>) -> std::io::Result<()> {
        let addr: SocketAddr = format!("{ADDRESS}:53").parse().expect("a literal address");
        let (udp, tcp) = berth_net::netns::run_in(netns, || {
            let udp = std::net::UdpSocket::bind(addr)?;
            let tcp = std::net::TcpListener::bind(addr)?;
            udp.set_nonblocking(true)?;
            tcp.set_nonblocking(true)?;
            Ok((udp, tcp))
        })?;
        let handle = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let _guard = handle.enter();
        let udp = tokio::net::UdpSocket::from_std(udp)?;
        let tcp = tokio::net::TcpListener::from_std(tcp)?;
        let upstreams = Arc::new(upstreams);
        let tasks = vec![
            handle.spawn(serve_udp(udp, lookup.clone(), upstreams.clone())).abort_handle(),
            handle.spawn(serve_tcp(tcp, lookup, upstreams)).abort_handle(),
        ];
        if let Some(old) = self.tasks.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), tasks) {
            old.iter().for_each(|t| t.abort());
        }
        Ok(())
    }

    /// Stops container `id`'s resolver, if it has one.
    pub fn stop(&self, id: &str) {
        if let Some(tasks) = self.tasks.lock().unwrap_or_else(|p| p.into_inner()).remove(id) {
            tasks.iter().for_each(|t| t.abort());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` of `qtype`, as a stub resolver sends it.
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    #[test]
    fn questions_parse_and_answers_carry_the_addresses() {
        let q = query("Web.1", TYPE_A);
        let parsed = question(&q).unwrap();
        assert_eq!((parsed.name.as_str(), parsed.qtype), ("web.1", TYPE_A));
        let a = answer(&q, &parsed, &["10.0.0.5".parse().unwrap(), "fd00::5".parse().unwrap()]);
        assert_eq!(&a[..2], &[0x12, 0x34], "the query's ID");
        assert_eq!(a[2] & 0x80, 0x80, "a response");
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1, "one A record, the IPv6 address left out");
        assert_eq!(&a[a.len() - 4..], &[10, 0, 0, 5]);
        let q6 = query("web", TYPE_AAAA);
        let a6 = answer(&q6, &question(&q6).unwrap(), &["10.0.0.5".parse().unwrap()]);
        assert_eq!(u16::from_be_bytes([a6[6], a6[7]]), 0, "no AAAA: an empty NOERROR answer");
        assert_eq!(a6[3] & 0x0f, 0);
        assert!(question(&q[..8]).is_none());
        let mut response = q.clone();
        response[2] |= 0x80;
        assert!(question(&response).is_none(), "responses are not questions");
    }

    #[test]
    fn nameservers_come_from_resolv_conf() {
        let ns = nameservers("# x\nnameserver 10.0.0.1\nsearch example\nnameserver fe80::1%eth0\n");
        assert_eq!(ns, vec!["10.0.0.1".parse::<IpAddr>().unwrap(), "fe80::1".parse().unwrap()]);
    }
}
