//! Network namespaces the engine makes for containers: each one created
//! on a thread of its own (unshare affects only the calling thread),
//! kept alive by a bind mount of its nsfs file, with loopback up as
//! Docker's `none` network gives it. Drivers then put interfaces in.

use std::io;
use std::path::Path;

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cstr(p: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with NUL"))
}

/// Brings the loopback interface of the calling thread's namespace up.
fn loopback_up() -> io::Result<()> {
    // SAFETY: socket(2) with constant arguments.
    let fd = check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd is a socket we own; ifreq is plain data, zeroed is valid.
    let result = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        check(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req)).and_then(|_| {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            check(libc::ioctl(fd, libc::SIOCSIFFLAGS, &req))
        })
    };
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(fd) };
    result.map(drop)
}

/// Creates a new network namespace with loopback up and pins it at `path`
/// (a file made here).
pub fn create(path: &Path) -> io::Result<()> {
    std::fs::File::create(path)?;
    let target = path.to_path_buf();
    let made = std::thread::spawn(move || -> io::Result<()> {
        // SAFETY: unshare affects only this thread, which ends right after.
        check(unsafe { libc::unshare(libc::CLONE_NEWNET) })?;
        loopback_up()?;
        let src = cstr(Path::new("/proc/thread-self/ns/net"))?;
        let dst = cstr(&target)?;
        // SAFETY: valid C strings; a bind mount with no data.
        check(unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) })?;
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")));
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Releases a namespace made by [`create`]; gone already is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: a valid C string.
    let r = unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOENT) {
            return Err(e);
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Runs `f` on a thread of its own inside the namespace pinned at `path`:
/// what it opens (sockets, /proc/sys/net files) stays in that namespace.
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let ns = std::fs::File::open(path)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a thread that ends right after.
            if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) } < 0 {
                return Err(io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}

/// Writes `value` to `/proc/sys/<key>` of the namespace pinned at
/// `namespace` (`None`: this process's): network sysctls belong to the
/// namespace of the thread that opens them.
pub fn sysctl(namespace: Option<&Path>, key: &str, value: &str) -> io::Result<()> {
    let path = Path::new("/proc/sys").join(key);
    let write = || std::fs::write(&path, value).map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", path.display())));
    match namespace {
        Some(ns) => run_in(ns, write),
        None => write(),
    }
}
