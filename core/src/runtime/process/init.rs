//! Stage 1 and the container's init (or exec'd process), from fork to
//! execve. Everything here runs in a forked child: failures are sent to the
//! runtime as [`InitError`]s naming the step and path, then the child exits.
//!
//! Steps, in order: namespaces; rootfs (propagation, mounts, devices);
//! createContainer hooks; pivot_root; console; sysctl, masked and read-only
//! paths, read-only root; hostname; then, once `start` connects: the
//! startContainer hooks and [`finalize`](super::finalize).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::signal::{SigSet, SigmaskHow};
use oci_spec::runtime::Spec;

use super::finalize::{finalize_and_exec, Finalize};
use super::namespaces::NamespacePlan;
use super::sync::{Channel, Msg};
use super::tty;
use crate::runtime::error::InitError;
use crate::runtime::hooks;
use crate::runtime::rootfs::{self, RootfsContext};

/// What the container's init sets up besides the process itself.
pub struct ContainerSetup<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup_path: &'a Path,
    /// The listening socket `start` connects to.
    pub start_listener: OwnedFd,
}

/// Everything a forked child needs.
pub struct Child<'a> {
    pub namespaces: NamespacePlan,
    pub finalize: Finalize<'a>,
    /// `Some` for a container's init, `None` for exec.
    pub container: Option<ContainerSetup<'a>>,
    /// A connected console socket to send the pty master to, when the
    /// process has a terminal.
    pub console: Option<OwnedFd>,
    pub oom_score_adj: Option<i32>,
}

/// Forks stage 1 to run `child`, talking over `chan`; returns its pid.
/// The runtime's copies of everything `child` holds are closed.
pub fn spawn(child: Child, chan: Channel, runtime_end: &Channel) -> std::io::Result<i32> {
    let pid = crate::sys::fork()?;
    if pid == 0 {
        // Only the runtime keeps its end, so it sees EOF when we are gone.
        let _ = nix::unistd::close(runtime_end.raw_fd());
        stage1(child, chan);
    }
    Ok(pid)
}

/// The body of the forked stage 1. Never returns.
fn stage1(child: Child, chan: Channel) -> ! {
    let result = stage1_inner(&child, &chan);
    if let Err(e) = result {
        let _ = chan.send(&Msg::Failed(e));
        // SAFETY: _exit ends the forked child without running the parent's atexit handlers.
        unsafe { libc::_exit(1) }
    }
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

fn stage1_inner(child: &Child, chan: &Channel) -> Result<(), InitError> {
    // The runtime blocks signals to forward them; the container starts clean.
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // Non-dumpable: nothing in the container may open /proc/PID/exe (the
    // runtime binary) or our memory before the container's process is
    // exec'd (CVE-2019-5736). The flag resets at execve.
    nix::sys::prctl::set_dumpable(false).map_err(|e| InitError::new("set non-dumpable", None, e))?;
    chan.expect("the go-ahead", |m| matches!(m, Msg::Go).then_some(()))?;
    if let Some(adj) = child.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| InitError::new("oom_score_adj", Some(Path::new("/proc/self/oom_score_adj")), e))?;
    }
    let plan = &child.namespaces;
    plan.join_all()?;
    if plan.new_user {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).map_err(|e| InitError::new("unshare user namespace", None, e))?;
        chan.send(&Msg::MapIds {
            pid: std::process::id() as i32,
        })
        .map_err(|e| InitError::new("sync", None, e))?;
        chan.expect("id maps", |m| matches!(m, Msg::IdsMapped).then_some(()))?;
        let root = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresuid(root, root, root).map_err(|e| InitError::new("user namespace", None, format!("become root: {e}")))?;
        let g = nix::unistd::Gid::from_raw(0);
        nix::unistd::setresgid(g, g, g).map_err(|e| InitError::new("user namespace", None, format!("become root group: {e}")))?;
    }
    plan.unshare_new()?;
    if plan.needs_fork() {
        let pid = crate::sys::fork_sibling().map_err(|e| InitError::new("fork init", None, e))?;
        if pid > 0 {
            chan.send(&Msg::InitPid { pid }).map_err(|e| InitError::new("sync", None, e))?;
            return Ok(());
        }
    } else {
        chan.send(&Msg::InitPid {
            pid: std::process::id() as i32,
        })
        .map_err(|e| InitError::new("sync", None, e))?;
    }
    // From here on we are the container's process (pid 1 of a new pid namespace).
    let e = match run_process(child, chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = chan.send(&Msg::Failed(e));
    // SAFETY: ends the forked child.
    unsafe { libc::_exit(1) }
}

fn run_process(child: &Child, chan: &Channel) -> Result<std::convert::Infallible, InitError> {
    let Some(setup) = &child.container else {
        if let Some(console) = &child.console {
            setup_console(console, child.finalize.process, false)?;
        }
        chan.send(&Msg::Ready).map_err(|e| InitError::new("sync", None, e))?;
        // The channel is close-on-exec: the runtime reads EOF when exec succeeds.
        return Err(finalize_and_exec(&child.finalize));
    };
    // SAFETY: umask only changes the creation mask; device nodes and mount
    // points get exactly the modes asked for.
    unsafe { libc::umask(0) };
    let spec = setup.spec;
    let ctx = RootfsContext {
        spec,
        rootfs: setup.rootfs,
        bundle: setup.bundle,
        in_userns: child.namespaces.new_user
            || child
                .namespaces
                .join
                .iter()
                .any(|(f, _)| f.contains(nix::sched::CloneFlags::CLONE_NEWUSER)),
        cgroup_path: setup.cgroup_path,
        new_cgroupns: child.namespaces.has_new(oci_spec::runtime::LinuxNamespaceType::Cgroup),
    };
    rootfs::prepare(&ctx)?;
    ensure_cwd(setup.rootfs, child.finalize.process.cwd())?;
    chan.send(&Msg::HooksPlease).map_err(|e| InitError::new("sync", None, e))?;
    let state = chan.expect("the runtime's hooks", |m| match m {
        Msg::HooksDone { state } => Some(state),
        _ => None,
    })?;
    if let Some(h) = spec.hooks().as_ref().and_then(|h| h.create_container().as_ref()) {
        hooks::run_all("createContainer", h, &state).map_err(|e| InitError::new("createContainer hook", None, e))?;
    }
    rootfs::pivot(setup.rootfs)?;
    if let Some(console) = &child.console {
        setup_console(console, child.finalize.process, true)?;
    }
    rootfs::finish(spec)?;
    set_names(spec)?;
    chan.send(&Msg::Ready).map_err(|e| InitError::new("sync", None, e))?;
    let conn = wait_for_start(&setup.start_listener)?;
    let report = |e: InitError| -> InitError {
        if let Ok(data) = serde_json::to_vec(&e) {
            let _ = nix::unistd::write(&conn, &data);
        }
        e
    };
    if let Some(h) = spec.hooks().as_ref().and_then(|h| h.start_container().as_ref()) {
        let state = with_status(&state, "created");
        hooks::run_all("startContainer", h, &state).map_err(|e| report(InitError::new("startContainer hook", None, e)))?;
    }
    Err(report(finalize_and_exec(&child.finalize)))
}

/// The state JSON `state` with its status replaced.
fn with_status(state: &str, status: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(state) {
        Ok(mut v) => {
            v["status"] = serde_json::json!(status);
            v.to_string()
        }
        Err(_) => state.to_string(),
    }
}

/// Creates the process's working directory inside the rootfs if missing.
fn ensure_cwd(rootfs: &Path, cwd: &Path) -> Result<(), InitError> {
    let root_fd = crate::sys::openat2(libc::AT_FDCWD, rootfs, libc::O_PATH | libc::O_DIRECTORY, 0, 0)
        .map_err(|e| InitError::new("cwd", Some(rootfs), e))?;
    rootfs::resolve::ensure_in_root(rootfs, &root_fd, cwd, rootfs::resolve::Kind::Dir).map_err(|e| InitError::new("cwd", Some(cwd), e))?;
    Ok(())
}

fn set_names(spec: &Spec) -> Result<(), InitError> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| InitError::new("hostname", None, format!("{h}: {e}")))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: setdomainname reads len bytes from the pointer.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } < 0 {
            return Err(InitError::new(
                "domainname",
                None,
                format!("{d}: {}", std::io::Error::last_os_error()),
            ));
        }
    }
    Ok(())
}

/// Opens a pty in the container, hands the master to the console socket,
/// and makes the slave this process's controlling terminal and stdio.
fn setup_console(console: &OwnedFd, process: &oci_spec::runtime::Process, bind_dev_console: bool) -> Result<(), InitError> {
    let size = process.console_size().map(|b| (b.height() as u16, b.width() as u16));
    let pty = tty::open_pty(size).map_err(|e| InitError::new("console", Some(Path::new("/dev/ptmx")), e))?;
    if bind_dev_console {
        // Both ends by fd: /dev/console inside the rootfs could be a symlink.
        let console_path = Path::new("/dev/console");
        let root_fd = crate::sys::openat2(libc::AT_FDCWD, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY, 0, 0)
            .map_err(|e| InitError::new("console", Some(console_path), e))?;
        let target = rootfs::resolve::ensure_in_root(Path::new("/"), &root_fd, console_path, rootfs::resolve::Kind::File)
            .map_err(|e| InitError::new("console", Some(console_path), e))?;
        nix::mount::mount(
            Some(&crate::sys::proc_fd_path(&pty.slave)),
            &crate::sys::proc_fd_path(&target),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| InitError::new("console", Some(console_path), e))?;
    }
    tty::send_fd(console.as_raw_fd(), pty.master.as_raw_fd(), &pty.slave_path.display().to_string())
        .map_err(|e| InitError::new("console", Some(Path::new("console socket")), e))?;
    drop(pty.master);
    tty::make_controlling(&pty.slave).map_err(|e| InitError::new("console", Some(&pty.slave_path), e))?;
    Ok(())
}

/// Blocks until `start` connects to the start socket.
fn wait_for_start(listener: &OwnedFd) -> Result<OwnedFd, InitError> {
    loop {
        match nix::sys::socket::accept4(listener.as_raw_fd(), nix::sys::socket::SockFlag::SOCK_CLOEXEC) {
            // SAFETY: accept4 returned a new fd that we now own.
            Ok(fd) => return Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(InitError::new("wait for start", None, e)),
        }
    }
}
