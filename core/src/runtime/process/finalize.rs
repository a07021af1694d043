//! The last steps of every container process before execve, in the order
//! the runtime guarantees: rlimits, user and groups, capabilities,
//! no_new_privs, AppArmor, seccomp, exec.
//!
//! One exception, as in runc: without noNewPrivileges, loading a seccomp
//! filter needs CAP_SYS_ADMIN, so the filter goes in before the user switch
//! and the capability drop; with noNewPrivileges it goes in last.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};

use crate::runtime::error::InitError;
use crate::security::apparmor;
use crate::security::capabilities::CapabilitySets;
use crate::security::seccomp::SeccompProgram;

/// Everything the last stretch needs, prepared before forking.
pub struct Finalize<'a> {
    pub process: &'a Process,
    pub caps: &'a CapabilitySets,
    pub seccomp: Option<&'a SeccompProgram>,
    /// Extra fds (from 3 up) to pass to the process (`--preserve-fds`).
    pub preserve_fds: i32,
    /// Stay as the container's PID 1, a tiny init that reaps orphans and
    /// passes signals on, with the process as its child ([`INIT_ANNOTATION`]).
    pub init: bool,
}

/// The annotation that asks for an init as PID 1 (`docker run --init`).
/// The init is this process itself, already hardened as the container's
/// process is, so no binary has to be put into the container.
pub const INIT_ANNOTATION: &str = "org.berth.init";

fn fail(step: &str, e: impl std::fmt::Display) -> InitError {
    InitError::new(step, None, e)
}

/// Applies the process's rlimits.
pub fn apply_rlimits(process: &Process) -> Result<(), InitError> {
    for r in process.rlimits().as_deref().unwrap_or_default() {
        let resource = rlimit_resource(r.typ());
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads the rlimit struct we pass.
        if unsafe { libc::setrlimit(resource, &lim) } < 0 {
            let e = std::io::Error::last_os_error();
            let mut host = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: getrlimit writes into the struct we pass.
            unsafe { libc::getrlimit(resource, &mut host) };
            return Err(InitError::new(
                "rlimits",
                None,
                format!(
                    "{}: soft {} hard {}: {e} (this process's hard limit is {})",
                    r.typ(),
                    r.soft(),
                    r.hard(),
                    host.rlim_max
                ),
            ));
        }
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn set_user(process: &Process, caps: &CapabilitySets) -> Result<(), InitError> {
    let user = process.user();
    let gids: Vec<Gid> = user
        .additional_gids()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&gids).map_err(|e| fail("user and groups", format!("setgroups {gids:?}: {e}")))?;
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| fail("user and groups", format!("setresgid {gid}: {e}")))?;
    // The bounding set can only shrink while we still hold CAP_SETPCAP.
    caps.apply_bounding().map_err(|e| fail("capabilities", e))?;
    // Keep the permitted set across the uid change; effective is rebuilt below.
    nix::sys::prctl::set_keepcaps(true).map_err(|e| fail("user and groups", e))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| fail("user and groups", format!("setresuid {uid}: {e}")))?;
    nix::sys::prctl::set_keepcaps(false).map_err(|e| fail("user and groups", e))?;
    Ok(())
}

/// The home directory of `uid` in the container's /etc/passwd, "/" when
/// it has none (what runc gives a process without HOME).
fn home_of(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_string())
        .unwrap_or_else(|| "/".to_string())
}

/// The program to exec: args[0] as is when it holds a '/', else the first
/// match in the process's PATH.
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf, InitError> {
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if let Ok(m) = std::fs::metadata(&candidate) {
            if m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(InitError::new("exec", Some(Path::new(arg0)), "executable file not found in $PATH"))
}

fn cstrings<'a>(items: impl Iterator<Item = &'a [u8]>) -> Result<Vec<CString>, InitError> {
    items
        .map(|s| CString::new(s).map_err(|_| fail("exec", "argument or environment contains a NUL byte")))
        .collect()
}

/// Runs the last stretch and execs. Returns only on failure.
pub fn finalize_and_exec(f: &Finalize) -> InitError {
    match run(f) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn run(f: &Finalize) -> Result<std::convert::Infallible, InitError> {
    let p = f.process;
    let nnp = p.no_new_privileges().unwrap_or(false);
    // Before any seccomp filter, which might not allow close_range.
    crate::sys::cloexec_fds_from(3 + f.preserve_fds).map_err(|e| fail("close fds", e))?;
    apply_rlimits(p)?;
    if let (Some(s), false) = (f.seccomp, nnp) {
        s.install().map_err(|e| fail("seccomp", e))?;
    }
    set_user(p, f.caps)?;
    let cwd = p.cwd();
    nix::unistd::chdir(cwd).map_err(|e| InitError::new("cwd", Some(cwd), e))?;
    f.caps.apply_process_sets().map_err(|e| fail("capabilities", e))?;
    if nnp {
        nix::sys::prctl::set_no_new_privs().map_err(|e| fail("no_new_privs", e))?;
    }
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        apparmor::change_onexec(profile).map_err(|e| fail("apparmor", format!("profile {profile}: {e}")))?;
    }
    let args = p.args().as_deref().unwrap_or_default();
    let mut env = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(p.user().uid())));
    }
    let env = env.as_slice();
    let arg0 = args.first().ok_or_else(|| fail("exec", "process.args is empty"))?;
    let exe = find_executable(arg0, env)?;
    let c_exe = CString::new(exe.as_os_str().as_bytes()).map_err(|_| fail("exec", "path contains a NUL byte"))?;
    let c_args = cstrings(args.iter().map(|s| s.as_bytes()))?;
    let c_env = cstrings(env.iter().map(|s| s.as_bytes()))?;
    // SAFETY: umask only changes the process's creation mask.
    unsafe { libc::umask(p.user().umask().unwrap_or(0o022) as libc::mode_t) };
    if let (Some(s), true) = (f.seccomp, nnp) {
        s.install().map_err(|e| fail("seccomp", e))?;
    }
    if f.init {
        return init(&exe, &c_exe, &c_args, &c_env);
    }
    let e = nix::unistd::execve(&c_exe, &c_args, &c_env)
        .err()
        .unwrap_or(nix::errno::Errno::EINVAL);
    Err(InitError::new("exec", Some(&exe), exec_words(e)))
}

/// A failed exec in the words runc (and Go) use, `no such file or
/// directory`, `permission denied`: what docker's CLI reads to exit 127
/// or 126, and berth-runtime to choose its own exit code.
fn exec_words(e: nix::errno::Errno) -> String {
    e.desc().to_lowercase()
}

/// `--init`: forks the process, which execs; this one stays as PID 1,
/// reaping every child and passing signals to the process, and exits as
/// the process does. Returns only if the exec failed.
fn init(exe: &Path, c_exe: &CString, c_args: &[CString], c_env: &[CString]) -> Result<std::convert::Infallible, InitError> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    // The child reports a failed exec here; EOF means the exec happened.
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail("init pipe", e))?;
    // Signals are held from before the fork: a SIGCHLD or SIGTERM that
    // came before the wait below would otherwise be lost (PID 1 ignores
    // signals it has no handler for).
    let all = SigSet::all();
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut old)).map_err(|e| fail("init signals", e))?;
    // Named before the fork: the process may look at PID 1 at once.
    let _ = nix::sys::prctl::set_name(c"berth-init");
    let child = match crate::sys::fork().map_err(|e| fail("init fork", e))? {
        0 => {
            drop(r);
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            let e = nix::unistd::execve(c_exe, c_args, c_env).err().unwrap_or(nix::errno::Errno::EINVAL);
            let _ = nix::unistd::write(&w, exec_words(e).as_bytes());
            // SAFETY: _exit in the forked child, which must not run the parent's exit path.
            unsafe { libc::_exit(127) };
        }
        pid => nix::unistd::Pid::from_raw(pid),
    };
    drop(w);
    let mut msg = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut msg);
    if !msg.is_empty() {
        let _ = waitpid(child, None);
        return Err(InitError::new("exec", Some(exe), String::from_utf8_lossy(&msg)));
    }
    // Exec succeeded: let go of everything (the start socket reads EOF).
    // SAFETY: close_range on fds this process owns; none is used again.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    // The first pass reaps without waiting: the process may be gone already.
    let mut sig = Signal::SIGCHLD;
    loop {
        if sig == Signal::SIGCHLD {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == child => std::process::exit(code),
                    Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => std::process::exit(128 + s as i32),
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        } else {
            let _ = nix::sys::signal::kill(child, sig);
        }
        sig = all.wait().unwrap_or(Signal::SIGCHLD);
    }
}
