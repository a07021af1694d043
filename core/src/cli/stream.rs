//! A container's streams over an attach connection: its output to ours
//! (raw for a terminal, else Docker's multiplexed frames, each an 8-byte
//! header — stream 1 or 2, three zero bytes, a big-endian u32 length —
//! and the payload), and our stdin to it, half-closed at our EOF. On a
//! raw terminal, docker's detach keys (ctrl-p ctrl-q) leave the
//! container running.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::client::Hijacked;

/// docker's default detach keys: ctrl-p, ctrl-q.
const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Docker's stream numbers in a frame header (moby's `stdcopy`).
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const SYSTEM_ERROR: u8 = 3;

/// Whether a stream berthd answered with `content_type` is raw (a
/// terminal's) rather than multiplexed; `tty` decides when it does not
/// say.
pub fn is_raw(content_type: Option<&str>, tty: bool) -> bool {
    match content_type {
        Some("application/vnd.docker.raw-stream") => true,
        Some("application/vnd.docker.multiplexed-stream") => false,
        _ => tty,
    }
}

/// How a relay ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// The container's output ended (it exited, or berthd hung up).
    Output,
    /// The user typed the detach keys.
    Detached,
    /// Our own output was closed (a pipe whose reader left): nothing more
    /// can be shown, so we leave the container to run on.
    Unread,
}

/// Relays until the output ends (or the user detaches). `stdin`: copy our
/// standard input; `detach_keys`: watch it for ctrl-p ctrl-q.
pub fn relay(conn: Hijacked, tty: bool, stdin: bool, detach_keys: bool) -> std::io::Result<Ended> {
    let stderr = std::io::stderr();
    let mut lock = stderr.lock();
    let mut err: &mut dyn Write = &mut lock;
    let tty = is_raw(Some(conn.content_type.as_str()), tty);
    let Hijacked { mut reader, writer, .. } = conn;
    let detached = Arc::new(AtomicBool::new(false));
    if stdin {
        let flag = detached.clone();
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || copy_stdin(writer, detach_keys, &flag))?;
    }
    let result = if tty {
        copy_raw(&mut reader)
    } else {
        demux_to(&mut reader, &mut std::io::stdout().lock(), &mut err)
    };
    if detached.load(Ordering::SeqCst) {
        return Ok(Ended::Detached);
    }
    match result {
        Ok(()) => Ok(Ended::Output),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Ended::Unread),
        Err(e) => Err(e),
    }
}

/// Our stdin to the container; at EOF the write half is closed, which
/// berthd passes on as the container's stdin EOF.
fn copy_stdin(mut conn: std::os::unix::net::UnixStream, detach_keys: bool, detached: &AtomicBool) {
    let mut buf = vec![0u8; 32 * 1024];
    let mut keys = KeyWatch::default();
    let stdin = std::io::stdin();
    loop {
        let n = match stdin.lock().read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let (out, detach) = if detach_keys {
            keys.feed(&buf[..n])
        } else {
            (buf[..n].to_vec(), false)
        };
        if detach {
            detached.store(true, Ordering::SeqCst);
            // Ends the output side too.
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
        if conn.write_all(&out).is_err() {
            return;
        }
    }
    let _ = conn.shutdown(Shutdown::Write);
}

/// Holds back the start of the detach sequence until it is complete (then
/// the user detaches) or broken (then the held bytes go through).
#[derive(Default)]
struct KeyWatch {
    matched: usize,
}

impl KeyWatch {
    fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == DETACH_KEYS[self.matched] {
                self.matched += 1;
                if self.matched == DETACH_KEYS.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&DETACH_KEYS[..self.matched]);
            self.matched = usize::from(b == DETACH_KEYS[0]);
            if self.matched == 0 {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// A failed write to our own stdout or stderr: the reader is gone.
fn unread(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, e)
}

/// A terminal's output, as it comes; `BrokenPipe` when ours is closed.
pub fn copy_raw(r: &mut impl Read) -> std::io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut out = std::io::stdout().lock();
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // Our own shutdown on detach, or berthd gone: the stream ended.
            Err(_) => return Ok(()),
        };
        out.write_all(&buf[..n]).and_then(|()| out.flush()).map_err(unread)?;
    }
}

/// Multiplexed frames to our stdout and stderr; `BrokenPipe` when one of
/// ours is closed.
pub fn demux(r: &mut impl Read) -> std::io::Result<()> {
    demux_to(r, &mut std::io::stdout().lock(), &mut std::io::stderr().lock())
}

fn demux_to(r: &mut impl Read, out: &mut impl Write, err: &mut impl Write) -> std::io::Result<()> {
    let mut head = [0u8; 8];
    let mut payload = Vec::new();
    loop {
        match read_full(r, &mut head) {
            Ok(true) => {}
            Ok(false) | Err(_) => return Ok(()),
        }
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        payload.resize(len, 0);
        if read_full(r, &mut payload).is_err() {
            return Ok(());
        }
        let sink: &mut dyn Write = match head[0] {
            STDIN | STDOUT => out,
            STDERR => err,
            SYSTEM_ERROR => {
                return Err(std::io::Error::other(String::from_utf8_lossy(&payload).into_owned()));
            }
            other => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("unrecognized stream {other} in the container's output"),
                ))
            }
        };
        sink.write_all(&payload).and_then(|()| sink.flush()).map_err(unread)?;
    }
}

/// Fills `buf`; `false` when the stream ended before its first byte.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
        let mut f = vec![stream, 0, 0, 0];
        f.extend((data.len() as u32).to_be_bytes());
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn frames_go_to_their_stream() {
        let mut input = frame(1, b"out\n");
        input.extend(frame(2, b"err\n"));
        input.extend(frame(1, b""));
        input.extend(frame(1, b"more"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        demux_to(&mut input.as_slice(), &mut out, &mut err).unwrap();
        assert_eq!((out.as_slice(), err.as_slice()), (&b"out\nmore"[..], &b"err\n"[..]));
        let bad = frame(7, b"x");
        assert!(demux_to(&mut bad.as_slice(), &mut out, &mut err).is_err());
        // A stream cut inside a frame ends quietly.
        let cut = &frame(1, b"abcdef")[..10];
        assert!(demux_to(&mut &cut[..], &mut Vec::new(), &mut Vec::new()).is_ok());
    }

    #[test]
    fn detach_keys_are_held_back_until_complete_or_broken() {
        let mut k = KeyWatch::default();
        assert_eq!(k.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(k.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(k.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(k.feed(b"\x11rest"), (Vec::new(), true));
        let mut k = KeyWatch::default();
        assert_eq!(k.feed(b"x\x10\x11"), (b"x".to_vec(), true));
    }
}
