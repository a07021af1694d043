//! Answer bodies: whole ones, and streams fed from a channel (logs
//! following, `wait`, which answers its headers at once and its body
//! when the container exits).

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Frame};
use tokio::sync::mpsc;

/// Every answer's body.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A body sent whole.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A body fed through the returned sender; it ends when the sender is
/// dropped. Sends fail once the client has gone.
pub fn channel() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel(64);
    (tx, ChannelBody(rx).boxed())
}

struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// Docker's multiplexed stream header for `len` bytes of `stream`
/// (1 stdout, 2 stderr).
pub fn mux_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// The content type of a container's output: raw with a terminal, else
/// Docker's multiplexed frames.
pub fn stream_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// The `101 Switching Protocols` answer of a hijacked stream (attach, exec).
pub fn switching_protocols(tty: bool) -> hyper::Response<Body> {
    let mut reply = hyper::Response::new(full(Bytes::new()));
    *reply.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    let h = reply.headers_mut();
    h.insert("content-type", stream_type(tty).parse().expect("static header"));
    h.insert("connection", "Upgrade".parse().expect("static header"));
    h.insert("upgrade", "tcp".parse().expect("static header"));
    reply
}
