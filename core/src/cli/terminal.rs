//! Our own terminal, for `-t`: whether stdin and stdout are terminals,
//! their size, and raw mode for stdin while a container's terminal is
//! attached (restored when the guard drops, on every way out).

use std::io::IsTerminal;

use nix::sys::termios::{self, SetArg, Termios};

/// Whether our standard input is a terminal.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Whether our standard output is a terminal.
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// The size (rows, columns) of the terminal on `fd`.
fn size_of(fd: libc::c_int) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which
    // points at a live, writable `winsize` for the whole call.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) };
    (r == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Our terminal's size (rows, columns): stdout's as docker takes it, else
/// stdin's.
pub fn size() -> Option<(u16, u16)> {
    size_of(libc::STDOUT_FILENO).or_else(|| size_of(libc::STDIN_FILENO))
}

/// Standard input in raw mode until dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin in raw mode (what `cfmakeraw` sets, as docker's
    /// `term.MakeRaw`): keys reach the container's terminal unread.
    pub fn enter() -> nix::Result<RawMode> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}
