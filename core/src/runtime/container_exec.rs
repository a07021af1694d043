//! `exec`: starts another process inside a running container, in all of
//! its namespaces and its cgroup, with the same hardening as its init.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use super::cgroups::Cgroup;
use super::error::{Result, RuntimeError};
use super::process::finalize::Finalize;
use super::process::init::{self, Child};
use super::process::namespaces::NamespacePlan;
use super::process::supervise;
use super::process::sync::{self, Msg};
use super::process::tty;
use super::spec;
use super::state::{write_atomic, Root, Status};
use crate::security::capabilities::CapabilitySets;
use crate::security::seccomp;

/// `exec`'s options.
pub struct ExecOptions<'a> {
    pub id: &'a str,
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub preserve_fds: i32,
}

/// The process exec runs when no process.json is given: the container's
/// own process with `args` and the flags' changes.
pub fn process_from_config(root: &Root, id: &str) -> Result<Process> {
    root.load(id)?;
    spec::load_saved(&root.container_dir(id))?
        .process()
        .clone()
        .ok_or_else(|| RuntimeError::Other("container config has no process".into()))
}

/// Runs the exec. Returns the process's exit code (0 when detached).
pub fn exec(root: &Root, opts: ExecOptions) -> Result<i32> {
    let st = root.load(opts.id)?;
    let status = st.status(&root.container_dir(opts.id));
    if status != Status::Running && status != Status::Created {
        return Err(RuntimeError::BadState {
            id: opts.id.to_string(),
            status: status.to_string(),
            op: "exec",
        });
    }
    let saved = spec::load_saved(&root.container_dir(opts.id))?;
    let mut process = opts.process;
    // What process.json leaves out of the hardening comes from the container.
    if let Some(base) = saved.process() {
        if process.no_new_privileges().is_none() {
            process.set_no_new_privileges(base.no_new_privileges());
        }
        if process.apparmor_profile().is_none() {
            process.set_apparmor_profile(base.apparmor_profile().clone());
        }
    }
    let process = &process;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(RuntimeError::Other("exec: no command given".into()));
    }
    let seccomp = saved
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(seccomp::compile)
        .transpose()?;
    let caps = CapabilitySets::from_spec(process.capabilities().as_ref()).map_err(RuntimeError::Other)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && opts.detach {
        return Err(RuntimeError::Other("exec --tty --detach needs --console-socket".into()));
    }
    let (console, our_console) = tty::console_ends(terminal, opts.console_socket).map_err(|e| RuntimeError::io("console", "", e))?;
    let signals = if opts.detach {
        None
    } else {
        Some(supervise::catch_signals().map_err(|e| RuntimeError::io("block signals", "", e))?)
    };
    let cgroup = Cgroup::open(&st.cgroup_path)?;
    let (ours, theirs) = sync::pair().map_err(|e| RuntimeError::io("sync socket", "", e))?;
    let child = Child {
        namespaces: NamespacePlan::for_exec(st.pid),
        finalize: Finalize {
            process,
            caps: &caps,
            seccomp: seccomp.as_ref(),
            preserve_fds: opts.preserve_fds,
            init: false,
        },
        container: None,
        console,
        oom_score_adj: process.oom_score_adj(),
    };
    let stage1 = init::spawn(child, theirs, &ours).map_err(|e| RuntimeError::io("fork", "", e))?;
    let kill_stage1 = |e: RuntimeError| {
        let _ = nix::sys::signal::kill(Pid::from_raw(stage1), nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(stage1), None);
        e
    };
    cgroup.add_process(stage1).map_err(|e| kill_stage1(e.into()))?;
    ours.send(&Msg::Go).map_err(|e| kill_stage1(RuntimeError::io("sync", "", e)))?;
    let mut pid = None;
    let mut ready = false;
    loop {
        match ours.recv().map_err(|e| RuntimeError::io("sync with exec process", "", e))? {
            Some(Msg::InitPid { pid: p }) => {
                pid = Some(p);
                if p != stage1 {
                    let _ = waitpid(Pid::from_raw(stage1), None);
                }
            }
            Some(Msg::Ready) => ready = true,
            Some(Msg::Failed(e)) => {
                if let Some(p) = pid {
                    let _ = waitpid(Pid::from_raw(p), None);
                }
                return Err(e.into());
            }
            Some(other) => return Err(RuntimeError::Other(format!("unexpected message from exec process: {other:?}"))),
            // The channel is close-on-exec: EOF after Ready means exec succeeded.
            None if ready => break,
            None => return Err(RuntimeError::Other("exec process exited before it was ready".into())),
        }
    }
    let pid = pid.ok_or_else(|| RuntimeError::Other("exec process never reported its pid".into()))?;
    if let Some(p) = opts.pid_file {
        write_atomic(p, pid.to_string().as_bytes())?;
    }
    let master = match our_console {
        Some(sock) => Some(tty::recv_fd(sock.as_raw_fd()).map_err(|e| RuntimeError::io("receive console", "", e))?),
        None => None,
    };
    match signals {
        None => Ok(0),
        Some(sfd) => supervise::supervise(pid, &sfd, master.as_ref()).map_err(|e| RuntimeError::io("wait for exec process", "", e)),
    }
}
