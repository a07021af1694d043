//! Thin, safe wrappers around the system calls the runtime needs and that
//! `nix` does not offer (openat2, pivot_root, close_range, pidfd). Each
//! wrapper is one call; callers add the context (step, path) to errors.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// openat2(2): opens `path` relative to `dir` with `resolve` flags
/// (`RESOLVE_IN_ROOT` etc.). `O_CLOEXEC` is always added.
pub fn openat2(dir: RawFd, path: &Path, flags: i32, mode: u32, resolve: u64) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: open_how is plain data; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
        mode as u64
    } else {
        0
    };
    how.resolve = resolve;
    // SAFETY: `c` is a valid NUL-terminated string and `how` a valid open_how
    // whose size we pass; the kernel reads both and returns a new fd or -1.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })?;
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pivot_root(2).
pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    let (n, o) = (cstr(new_root)?, cstr(put_old)?);
    // SAFETY: both arguments are valid NUL-terminated strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) }).map(drop)
}

/// Marks every fd from `first` up close-on-exec (close_range with
/// CLOSE_RANGE_CLOEXEC, Linux 5.11), so exec drops them and nothing before
/// exec loses a descriptor it still uses.
pub fn cloexec_fds_from(first: RawFd) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: only sets a flag on descriptors; closes nothing.
    if unsafe { libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, CLOSE_RANGE_CLOEXEC) } == 0 {
        return Ok(());
    }
    // Kernels before 5.11: mark each open descriptor.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds.into_iter().filter(|fd| *fd >= first) {
        // SAFETY: F_SETFD only sets a flag; a stale number fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// A fork that creates the child as a sibling of the caller (CLONE_PARENT),
/// so the runtime that forked the caller reaps and waits for it. Returns 0
/// in the child and the child's pid in the caller.
///
/// Only for single-threaded callers, like fork(2) in general.
pub fn fork_sibling() -> io::Result<libc::pid_t> {
    // SAFETY: a clone with a NULL stack and no CLONE_VM behaves like fork:
    // the child gets a copy of the address space. The runtime is
    // single-threaded at this point, so no lock is held by another thread.
    let pid = check(unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    })?;
    Ok(pid as libc::pid_t)
}

/// fork(2) for the single-threaded runtime.
pub fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: the runtime binary never starts threads, so the child inherits
    // no lock held by another thread.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(pid)
    }
}

/// pidfd_open(2).
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_send_signal(2): signals exactly the process the pidfd refers to,
/// never a process that reused its pid.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall; NULL siginfo is allowed.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// The path of an fd in /proc, usable as a mount source or target so that
/// the kernel acts on the already-resolved object.
pub fn proc_fd_path(fd: &impl AsRawFd) -> std::path::PathBuf {
    format!("/proc/self/fd/{}", fd.as_raw_fd()).into()
}

/// Process start time in clock ticks since boot (field 22 of
/// /proc/PID/stat), which tells a live process from a reused pid.
pub fn process_start_time(pid: libc::pid_t) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&stat).map(|(_, start)| start)
}

/// The state letter and start time of a process, from /proc/PID/stat.
pub fn process_state(pid: libc::pid_t) -> io::Result<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> io::Result<(char, u64)> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/PID/stat");
    // comm may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')').ok_or_else(bad)? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first().and_then(|s| s.chars().next()).ok_or_else(bad)?;
    // fields[0] is field 3 (state); start time is field 22.
    let start = fields.get(19).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    Ok((state, start))
}

/// A UNIX socket's path usable with bind(2) and connect(2), which take at
/// most 107 bytes: a longer path is reached through an open handle on its
/// directory (`/proc/self/fd/N/NAME`), held as long as this lives.
pub struct SocketPath {
    _dir: Option<std::fs::File>,
    path: std::path::PathBuf,
}

impl SocketPath {
    pub fn new(path: &Path) -> io::Result<SocketPath> {
        if path.as_os_str().len() < 100 {
            return Ok(SocketPath {
                _dir: None,
                path: path.to_path_buf(),
            });
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a socket path", path.display()),
            ));
        };
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(dir)?;
        let short = proc_fd_path(&dir).join(name);
        Ok(SocketPath {
            _dir: Some(dir),
            path: short,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_comm() {
        let s = "123 (a) b (c)) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(s).unwrap(), ('S', 98765));
        let me = process_start_time(std::process::id() as i32).unwrap();
        assert!(me > 0);
    }

    #[test]
    fn long_socket_paths_bind_through_their_directory() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("x.sock");
        let sp = SocketPath::new(&path).unwrap();
        assert!(sp.path().as_os_str().len() < 100);
        let _l = std::os::unix::net::UnixListener::bind(sp.path()).unwrap();
        assert!(path.exists());
        std::os::unix::net::UnixStream::connect(SocketPath::new(&path).unwrap().path()).unwrap();
    }
}
