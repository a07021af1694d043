//! Running the runtime from a copy of itself that nobody can change.
//!
//! A container process could otherwise reach the host's berth-runtime
//! binary through /proc/self/exe while the runtime sets it up, and write
//! to it once it is no longer executing (CVE-2019-5736). So commands that
//! start container processes re-execute from a copy on a read-only bind
//! mount under [`COPY_ROOT`], made once per binary version and reused (one
//! exec, no copy on the hot path), or, where that cannot be set up, from a
//! sealed memfd copy.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

/// Set in the environment of the re-executed copy.
const CLONED_ENV: &str = "_BERTH_RUNTIME_CLONED";

/// Where read-only copies of the runtime binary live, one directory (and
/// read-only bind mount) per binary version.
pub const COPY_ROOT: &str = "/run/berth-runtime-bin";

/// Re-executes the current program from a protected copy, unless this
/// already is one. Returns only on failure, or when already a copy.
pub fn ensure_cloned() -> io::Result<()> {
    if std::env::var_os(CLONED_ENV).is_some() {
        // SAFETY: single-threaded at start-up; nothing reads the env concurrently.
        unsafe { std::env::remove_var(CLONED_ENV) };
        return Ok(());
    }
    let (args, env) = exec_args()?;
    if let Ok(copy) = read_only_copy() {
        let path = CString::new(copy.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // Only returns on failure; fall back to the memfd copy then.
        let _ = nix::unistd::execve(&path, &args, &env);
    }
    memfd_exec(&args, &env)
}

/// The arguments and environment (marked as cloned) to re-execute with.
fn exec_args() -> io::Result<(Vec<CString>, Vec<CString>)> {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(io::Error::other)?;
    let mut env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv)
        })
        .collect::<Result<_, _>>()
        .map_err(io::Error::other)?;
    env.push(CString::new(format!("{CLONED_ENV}=1")).map_err(io::Error::other)?);
    Ok((args, env))
}

/// The path of this binary's read-only copy, made on first use.
fn read_only_copy() -> io::Result<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/proc/self/exe")?;
    let key = format!("{}-{}-{}-{}", meta.dev(), meta.ino(), meta.size(), meta.mtime());
    let dir = std::path::Path::new(COPY_ROOT).join(&key);
    let copy = dir.join("berth-runtime");
    let is_read_only =
        |p: &std::path::Path| nix::sys::statvfs::statvfs(p).is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    if copy.is_file() && is_read_only(&dir) {
        return Ok(copy);
    }
    std::fs::create_dir_all(&dir)?;
    if !copy.is_file() {
        let tmp = dir.join(format!(".tmp-{}", std::process::id()));
        std::fs::copy("/proc/self/exe", &tmp)?;
        std::fs::rename(&tmp, &copy)?;
    }
    if !is_read_only(&dir) {
        use nix::mount::{mount, MsFlags};
        mount(Some(&dir), &dir, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(io::Error::from)?;
        mount(
            None::<&str>,
            &dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            None::<&str>,
        )
        .map_err(io::Error::from)?;
    }
    if is_read_only(&dir) {
        Ok(copy)
    } else {
        Err(io::Error::other("copy is not on a read-only mount"))
    }
}

/// Re-executes from a sealed memfd copy of the binary.
fn memfd_exec(args: &[CString], env: &[CString]) -> io::Result<()> {
    let mut exe = std::fs::File::open("/proc/self/exe")?;
    let name = c"berth-runtime";
    let fd = nix::sys::memfd::memfd_create(
        name,
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC | nix::sys::memfd::MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .map_err(io::Error::from)?;
    let mut copy = std::fs::File::from(fd);
    // Plain reads and writes: io::copy may splice, and pages a splice
    // still pins make F_SEAL_WRITE fail with EBUSY.
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = io::Read::read(&mut exe, &mut buf)?;
        if n == 0 {
            break;
        }
        io::Write::write_all(&mut copy, &buf[..n])?;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes an int; the fd is our open memfd.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let e = nix::unistd::fexecve(copy.as_raw_fd(), args, env)
        .err()
        .unwrap_or(nix::errno::Errno::EINVAL);
    Err(e.into())
}
