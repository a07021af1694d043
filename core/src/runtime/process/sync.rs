//! The sync channel between the runtime and the processes it forks: a
//! SOCK_SEQPACKET socket pair carrying one JSON message per packet.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::runtime::error::InitError;

/// The messages of the start-up protocol.
#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    /// Runtime -> stage 1: you are in the cgroup, go on.
    Go,
    /// Stage 1 -> runtime: write my uid_map and gid_map (pid given).
    MapIds { pid: i32 },
    /// Runtime -> stage 1: the maps are written.
    IdsMapped,
    /// Stage 1 -> runtime: the container's init has this pid (runtime's view).
    InitPid { pid: i32 },
    /// Init -> runtime: namespaces are ready, run prestart/createRuntime hooks.
    HooksPlease,
    /// Runtime -> init: hooks ran; here is the state for createContainer hooks.
    HooksDone { state: String },
    /// Init -> runtime: everything is set up; waiting for start.
    Ready,
    /// Any -> runtime: a step failed.
    Failed(InitError),
}

/// One end of the sync channel.
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (runtime end, child end). Both are close-on-exec.
pub fn pair() -> io::Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).map_err(io::Error::from)?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> io::Result<()> {
        let data = serde_json::to_vec(msg).map_err(io::Error::other)?;
        send(self.fd.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL).map_err(io::Error::from)?;
        Ok(())
    }

    /// The next message; `None` when the other end closed.
    pub fn recv(&self) -> io::Result<Option<Msg>> {
        // Peek the size first: a datagram larger than the buffer would be cut.
        let size = loop {
            match recv(self.fd.as_raw_fd(), &mut [], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
                Ok(n) => break n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let mut buf = vec![0u8; size.max(1)];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => return serde_json::from_slice(&buf[..n]).map(Some).map_err(io::Error::other),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receives the next message and fails unless it is what `want` accepts.
    pub fn expect<T>(&self, what: &str, want: impl FnOnce(Msg) -> Option<T>) -> Result<T, InitError> {
        match self.recv() {
            Ok(Some(Msg::Failed(e))) => Err(e),
            Ok(Some(m)) => want(m).ok_or_else(|| InitError::new("sync", None, format!("unexpected message while waiting for {what}"))),
            Ok(None) => Err(InitError::new(
                "sync",
                None,
                format!("the other side exited while we waited for {what}"),
            )),
            Err(e) => Err(InitError::new("sync", None, format!("waiting for {what}: {e}"))),
        }
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}
