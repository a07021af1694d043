//! What travels over a monitor's attach socket.
//!
//! A client connects and sends one byte saying which streams it wants
//! ([`WANT_STDIN`], [`WANT_STDOUT`], [`WANT_STDERR`]; 0 just waits for the
//! exit). After that both sides send frames: one kind byte, a big-endian
//! u32 length, the payload. The kinds share the numbers of Docker's
//! multiplexed stream (0 stdin, 1 stdout, 2 stderr), so a frame's kind is
//! the stream byte a Docker client expects.

use std::io::{self, Read, Write};

pub const WANT_STDIN: u8 = 1;
pub const WANT_STDOUT: u8 = 2;
pub const WANT_STDERR: u8 = 4;

/// Client to monitor: bytes for the container's stdin.
pub const STDIN: u8 = 0;
/// Monitor to client: the container's stdout (or its terminal).
pub const STDOUT: u8 = 1;
/// Monitor to client: the container's stderr.
pub const STDERR: u8 = 2;
/// Monitor to client: the container exited; payload is the i32 exit code.
pub const EXIT: u8 = 3;
/// Client to monitor: the terminal's new size, u16 rows then u16 columns.
pub const RESIZE: u8 = 4;
/// Client to monitor: no more stdin (the container reads EOF).
pub const CLOSE_STDIN: u8 = 5;

/// Frame payloads are bounded so a confused peer cannot make the other
/// side allocate without limit.
pub const MAX_FRAME: u32 = 1 << 20;

/// Encodes one frame.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    w.write_all(&frame(kind, payload))
}

/// Reads one frame; `None` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    r.read_exact(&mut head[1..])?;
    let (kind, len) = parse_head(&head)?;
    let mut payload = vec![0; len];
    r.read_exact(&mut payload)?;
    Ok(Some((kind, payload)))
}

/// The kind and payload length of a frame header.
pub fn parse_head(head: &[u8; 5]) -> io::Result<(u8, usize)> {
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    Ok((head[0], len as usize))
}

/// Splits complete frames off the front of `buf`.
pub fn split_frames(buf: &mut Vec<u8>) -> io::Result<Vec<(u8, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() - at >= 5 {
        let head: [u8; 5] = buf[at..at + 5].try_into().expect("five bytes");
        let (kind, len) = parse_head(&head)?;
        if buf.len() - at - 5 < len {
            break;
        }
        out.push((kind, buf[at + 5..at + 5 + len].to_vec()));
        at += 5 + len;
    }
    buf.drain(..at);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_split() {
        let mut buf = frame(STDOUT, b"hello");
        buf.extend(frame(EXIT, &7i32.to_be_bytes()));
        buf.extend(&frame(STDERR, b"partial")[..4]);
        let got = split_frames(&mut buf).unwrap();
        assert_eq!(got, vec![(STDOUT, b"hello".to_vec()), (EXIT, 7i32.to_be_bytes().to_vec())]);
        assert_eq!(buf.len(), 4);
        let mut r = &frame(STDIN, b"x")[..];
        assert_eq!(read_frame(&mut r).unwrap(), Some((STDIN, b"x".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        let mut huge = vec![STDIN];
        huge.extend(u32::MAX.to_be_bytes());
        assert!(split_frames(&mut huge).is_err());
    }
}
