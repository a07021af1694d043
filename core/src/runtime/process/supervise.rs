//! Foreground supervision for `run` and `exec`: wait for the container
//! process, forward every signal the runtime receives to it, and relay a
//! terminal between the runtime's stdio and the container's pty.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::tty;

/// Signals the runtime keeps for itself rather than forwarding.
const NOT_FORWARDED: [Signal; 2] = [Signal::SIGCHLD, Signal::SIGWINCH];

/// Blocks every signal and returns a signalfd that receives them. Call
/// before forking so that no SIGCHLD is lost; children unblock their mask.
pub fn catch_signals() -> io::Result<SignalFd> {
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None).map_err(io::Error::from)?;
    SignalFd::with_flags(&all, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(io::Error::from)
}

/// The shell-style exit code of a wait status: the code, or 128+signal.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Puts a terminal into raw mode until dropped.
struct RawMode {
    fd: i32,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enable(fd: BorrowedFd) -> Option<RawMode> {
        let saved = nix::sys::termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd: fd.as_raw_fd(), saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: fd is the runtime's stdin, open for the whole run.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

fn copy(from: i32, to: i32) -> io::Result<usize> {
    let mut buf = [0u8; 8192];
    let n = match nix::unistd::read(from, &mut buf) {
        Ok(n) => n,
        Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => return Ok(1),
        // EIO: the pty's last slave closed.
        Err(nix::errno::Errno::EIO) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut off = 0;
    while off < n {
        // SAFETY: `to` is an fd the caller keeps open for the call.
        let fd = unsafe { BorrowedFd::borrow_raw(to) };
        match nix::unistd::write(fd, &buf[off..n]) {
            Ok(w) => off += w,
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// Waits for `pid`, forwarding signals and relaying `master` if given.
/// Returns the exit code (128+N for a signal).
pub fn supervise(pid: i32, signals: &SignalFd, master: Option<&OwnedFd>) -> io::Result<i32> {
    let stdin = io::stdin();
    let _raw = master.and_then(|_| RawMode::enable(stdin.as_fd()));
    if let (Some(m), Some((rows, cols))) = (master, tty::get_size(0)) {
        let _ = tty::set_size(m.as_raw_fd(), rows, cols);
    }
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = master.filter(|_| master_open) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let mut idx = 1;
        if let Some(m) = master.filter(|_| master_open) {
            if ready[idx] && copy(m.as_raw_fd(), 1)? == 0 {
                master_open = false;
            }
            idx += 1;
        }
        if stdin_open && ready[idx] {
            if let Some(m) = master {
                if copy(0, m.as_raw_fd())? == 0 {
                    stdin_open = false;
                }
            }
        }
        if ready[0] {
            while let Ok(Some(info)) = signals.read_signal() {
                let sig = Signal::try_from(info.ssi_signo as i32).ok();
                match sig {
                    Some(Signal::SIGWINCH) => {
                        if let (Some(m), Some((rows, cols))) = (master, tty::get_size(0)) {
                            let _ = tty::set_size(m.as_raw_fd(), rows, cols);
                        }
                    }
                    Some(s) if !NOT_FORWARDED.contains(&s) => {
                        let _ = nix::sys::signal::kill(Pid::from_raw(pid), s);
                    }
                    _ => {}
                }
            }
            // Reap everything that exited; stop when our process did.
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(status) if status.pid() == Some(Pid::from_raw(pid)) => {
                        if let Some(m) = master.filter(|_| master_open) {
                            drain(m);
                        }
                        return Ok(exit_code(status).unwrap_or(1));
                    }
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Copies what is left in the pty after the process exited.
fn drain(master: &OwnedFd) {
    let _ = nix::fcntl::fcntl(master.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
    let mut buf = [0u8; 8192];
    while let Ok(n) = nix::unistd::read(master.as_raw_fd(), &mut buf) {
        if n == 0 {
            break;
        }
        let _ = nix::unistd::write(io::stdout(), &buf[..n]);
    }
}
