//! Helpers for this module's tests that need root and real hierarchies:
//! the root check, unique cgroup names, a guard that removes test cgroups,
//! and forked children to move into them. Tests run in parallel with the
//! rest of the crate's, so every cgroup is named after the pid and a
//! counter, and every one is removed even when the test fails.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::cgroupfs;

/// Whether a test that needs root can run. Returns false (the test should
/// return early) only when we are not root and `CI` is unset; with `CI` set
/// a missing privilege fails the test instead of skipping it.
pub(crate) fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root, and CI is set: refusing to skip");
    }
    eprintln!("{test}: skipped (needs root; CI is unset)");
    false
}

/// A cgroup name unique to this process and call.
pub(crate) fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("berth-test-{tag}-{}-{n}", std::process::id())
}

/// Removes test cgroup directories (and everything below them) when
/// dropped: thaws them, kills what is left inside, removes them.
pub(crate) struct Cleanup(Vec<PathBuf>);

impl Cleanup {
    pub(crate) fn new(dirs: Vec<PathBuf>) -> Cleanup {
        Cleanup(dirs)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for dir in &self.0 {
            if !dir.exists() {
                continue;
            }
            thaw_tree(dir);
            for pid in cgroupfs::procs(dir).unwrap_or_default() {
                // SAFETY: kill has no memory effects; these cgroups are
                // unique to this test, so the processes are its children.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if let Err(e) = cgroupfs::remove_tree(dir) {
                eprintln!("test cleanup: {e}");
            }
        }
    }
}

fn thaw_tree(dir: &std::path::Path) {
    let _ = cgroupfs::write(&dir.join("freezer.state"), "THAWED");
    let _ = cgroupfs::write(&dir.join("cgroup.freeze"), "0");
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            thaw_tree(&entry.path());
        }
    }
}

/// A forked child that waits until released, then runs its body and exits
/// with the body's result. Killed and reaped when dropped.
pub(crate) struct Child {
    pid: i32,
    go: Option<OwnedFd>,
    reaped: bool,
}

/// How long a released child may take to finish.
const CHILD_TIMEOUT: Duration = Duration::from_secs(10);

impl Child {
    /// Forks. `body` runs in the child, which has a single thread and a
    /// copy of a multi-threaded parent's memory: it must not allocate or
    /// take locks (raw syscalls only).
    pub(crate) fn fork(body: impl FnOnce() -> i32) -> Child {
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
        // SAFETY: the child only closes, reads, runs `body` (raw syscalls,
        // no allocation) and leaves through `_exit`, never returning into
        // the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let mut byte = 0u8;
            // SAFETY: closing our copy of the write end, then reading one
            // byte into a valid local.
            let n = unsafe {
                libc::close(write_end.as_raw_fd());
                libc::read(read_end.as_raw_fd(), (&mut byte as *mut u8).cast(), 1)
            };
            let code = if n == 1 { body() } else { 99 };
            // SAFETY: ends the forked child without running the parent's
            // destructors or atexit handlers.
            unsafe { libc::_exit(code) }
        }
        Child {
            pid,
            go: Some(write_end),
            reaped: false,
        }
    }

    /// A child that opens /dev/null and then `other` for reading; see
    /// [`Child::probe_outcome`] for its exit code.
    pub(crate) fn fork_probe(other: &'static CStr) -> Child {
        Child::fork(move || open_outcome(c"/dev/null") * 4 + open_outcome(other))
    }

    /// Decodes a probe's exit code: what happened to /dev/null and to the
    /// other device ("opened", "EPERM" or "other error").
    pub(crate) fn probe_outcome(code: i32) -> (&'static str, &'static str) {
        let name = |n: i32| match n {
            0 => "opened",
            1 => "EPERM",
            _ => "other error",
        };
        (name(code / 4), name(code % 4))
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Lets the child run its body and returns its exit code.
    pub(crate) fn release_and_wait(&mut self) -> i32 {
        if let Some(go) = self.go.take() {
            // SAFETY: writes one byte from a valid local to our pipe.
            let n = unsafe { libc::write(go.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
            assert_eq!(n, 1, "release child: {}", io::Error::last_os_error());
        }
        let status = self.reap(CHILD_TIMEOUT).expect("child did not finish in time");
        assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
        libc::WEXITSTATUS(status)
    }

    /// Kills the child and reaps it (gives up after a while if it cannot
    /// die, as a v1-frozen process cannot).
    pub(crate) fn kill(&mut self) {
        if self.reaped {
            return;
        }
        // SAFETY: signals our own unreaped child, so the pid is still ours.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = self.reap(Duration::from_secs(2));
    }

    fn reap(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            let mut status = 0;
            // SAFETY: waits for our own child into a valid `status`.
            let waited = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if waited == self.pid {
                self.reaped = true;
                return Some(status);
            }
            if waited < 0 {
                // Not ours to wait for any more (ECHILD): nothing to reap.
                self.reaped = true;
                return None;
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A child body that blocks forever.
pub(crate) fn idle() -> i32 {
    loop {
        // SAFETY: pause only waits for a signal.
        unsafe { libc::pause() };
    }
}

/// 0 if `path` opens for reading, 1 if that fails with EPERM, 2 otherwise.
/// Runs in forked children: raw syscalls only.
fn open_outcome(path: &CStr) -> i32 {
    // SAFETY: `path` is a valid NUL-terminated string.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd >= 0 {
        // SAFETY: closes the fd we just opened.
        unsafe { libc::close(fd) };
        return 0;
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EPERM) => 1,
        _ => 2,
    }
}
