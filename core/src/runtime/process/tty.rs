//! Pseudo-terminals: allocating the container's console inside its devpts,
//! and passing the master to whoever holds the console socket.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// A pty pair.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub slave_path: PathBuf,
}

/// Opens a new pty from `/dev/ptmx` (the container's, once pivoted).
pub fn open_pty(size: Option<(u16, u16)>) -> io::Result<Pty> {
    let master = crate::sys::openat2(libc::AT_FDCWD, "/dev/ptmx".as_ref(), libc::O_RDWR | libc::O_NOCTTY, 0, 0)?;
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int through the pointer we pass.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int through the pointer we pass.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let slave_path = PathBuf::from(format!("/dev/pts/{n}"));
    let slave = crate::sys::openat2(libc::AT_FDCWD, &slave_path, libc::O_RDWR | libc::O_NOCTTY, 0, 0)?;
    if let Some((rows, cols)) = size {
        set_size(slave.as_raw_fd(), rows, cols)?;
    }
    Ok(Pty { master, slave, slave_path })
}

/// Sets a terminal's window size.
pub fn set_size(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize through the pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The window size of a terminal, if `fd` is one.
pub fn get_size(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize through the pointer.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some((ws.ws_row, ws.ws_col))
}

/// Makes `slave` the controlling terminal and stdio of this process.
pub fn make_controlling(slave: &OwnedFd) -> io::Result<()> {
    nix::unistd::setsid().map_err(io::Error::from)?;
    // SAFETY: TIOCSCTTY takes an int argument, no pointer.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors; the source is open.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The console sockets of a container process: the end the process sends
/// its pty master over (connected to `console_socket`, or one end of a
/// pair when the runtime is the console itself) and, in that second case,
/// the end the runtime receives the master on.
pub fn console_ends(terminal: bool, console_socket: Option<&Path>) -> io::Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    match (terminal, console_socket) {
        (false, _) => Ok((None, None)),
        (true, Some(path)) => {
            let s = crate::sys::SocketPath::new(path)
                .and_then(|p| UnixStream::connect(p.path()))
                .map_err(|e| io::Error::new(e.kind(), format!("connect console socket {}: {e}", path.display())))?;
            Ok((Some(s.into()), None))
        }
        (true, None) => {
            let (ours, theirs) = UnixStream::pair()?;
            Ok((Some(theirs.into()), Some(ours.into())))
        }
    }
}

/// Sends `fd` over a connected UNIX socket (SCM_RIGHTS), as runc sends the
/// console master to `--console-socket`.
pub fn send_fd(socket: RawFd, fd: RawFd, name: &str) -> io::Result<()> {
    let fds = [fd];
    let iov = [io::IoSlice::new(name.as_bytes())];
    sendmsg::<()>(socket, &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None).map_err(io::Error::from)?;
    Ok(())
}

/// Receives one fd sent with [`send_fd`].
pub fn recv_fd(socket: RawFd) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(socket, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).map_err(io::Error::from)?;
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel installed this fd for us just now.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "no file descriptor received on the console socket",
    ))
}
