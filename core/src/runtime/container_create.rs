//! `create`: from a bundle to a container whose init waits for `start`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::cgroups::Cgroup;
use super::error::{Result, RuntimeError};
use super::hooks;
use super::process::finalize::Finalize;
use super::process::init::{self, Child, ContainerSetup};
use super::process::namespaces::NamespacePlan;
use super::process::sync::{self, Msg};
use super::process::tty;
use super::spec;
use super::state::{now_rfc3339, write_atomic, ContainerState, Root, Status, START_SOCKET};
use crate::security::capabilities::CapabilitySets;
use crate::security::seccomp;
use crate::sys;

/// `create`'s options (runc's flags).
#[derive(Debug, Clone)]
pub struct CreateOptions<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub preserve_fds: i32,
}

/// A created container; `console` holds the pty master when the runtime
/// itself is the console (foreground `run` with a terminal).
pub struct Created {
    pub state: ContainerState,
    pub console: Option<OwnedFd>,
}

/// Undoes a half-done create: kills what was started, removes the cgroup
/// and the state directory.
struct Undo<'a> {
    root: &'a Root,
    id: &'a str,
    pids: Vec<i32>,
    cgroup: Option<Cgroup>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for &pid in &self.pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            // Both stage 1 and the init (a CLONE_PARENT sibling) are our children.
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(c) = &self.cgroup {
            let _ = c.destroy();
        }
        let _ = self.root.remove(self.id);
    }
}

/// Writes the user namespace's id maps for `pid`.
fn write_id_maps(pid: i32, linux: &oci_spec::runtime::Linux) -> Result<()> {
    for (file, maps) in [("uid_map", linux.uid_mappings()), ("gid_map", linux.gid_mappings())] {
        let text: String = maps
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| RuntimeError::io("write id map", path, e))?;
    }
    Ok(())
}

/// Runs the prestart and createRuntime hooks, then lets the init go on.
fn run_create_hooks(spec: &oci_spec::runtime::Spec, st: &ContainerState, send: &dyn Fn(&Msg) -> Result<()>) -> Result<()> {
    let state = st.oci_state(Status::Creating).to_string();
    if let Some(h) = spec.hooks() {
        #[allow(deprecated)]
        let lists = [("prestart", h.prestart()), ("createRuntime", h.create_runtime())];
        for (kind, list) in lists {
            if let Some(list) = list {
                hooks::run_all(kind, list, &state).map_err(RuntimeError::Other)?;
            }
        }
    }
    send(&Msg::HooksDone { state })
}

/// Creates the container. With `own_console`, a terminal process gets its
/// pty master handed back to the caller instead of a console socket.
pub fn create(root: &Root, opts: &CreateOptions, own_console: bool) -> Result<Created> {
    let bundle = spec::load_bundle(opts.bundle)?;
    let spec = &bundle.spec;
    let config = bundle.dir.join("config.json");
    let (Some(process), Some(linux)) = (spec.process().as_ref(), spec.linux().as_ref()) else {
        return Err(RuntimeError::Spec {
            path: config,
            reason: "process or linux is missing".into(),
        });
    };
    // Compile before touching the system: a bad profile changes nothing.
    let seccomp = linux.seccomp().as_ref().map(seccomp::compile).transpose()?;
    let caps = CapabilitySets::from_spec(process.capabilities().as_ref()).map_err(|reason| RuntimeError::Spec {
        path: config.clone(),
        reason,
    })?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !own_console {
        return Err(RuntimeError::Spec {
            path: config,
            reason: "process.terminal is true: --console-socket is required".into(),
        });
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(RuntimeError::Spec {
            path: config,
            reason: "--console-socket given but process.terminal is false".into(),
        });
    }

    let dir = root.create_dir(opts.id)?;
    let mut undo = Undo {
        root,
        id: opts.id,
        pids: Vec::new(),
        cgroup: None,
        armed: true,
    };
    let cgroup = Cgroup::create(linux.cgroups_path().as_deref(), opts.id, linux.resources().as_ref())?;
    let cgroup_path = cgroup.path().to_path_buf();
    undo.cgroup = Some(cgroup);

    let (console, our_console) = tty::console_ends(terminal, opts.console_socket).map_err(|e| RuntimeError::io("console", "", e))?;
    let sock_path = dir.join(START_SOCKET);
    let listener = crate::sys::SocketPath::new(&sock_path)
        .and_then(|p| UnixListener::bind(p.path()))
        .map_err(|e| RuntimeError::io("bind start socket", &sock_path, e))?;
    let (ours, theirs) = sync::pair().map_err(|e| RuntimeError::io("sync socket", "", e))?;
    let namespaces = NamespacePlan::for_container(linux.namespaces().as_deref().unwrap_or_default());
    let user_namespace = namespaces.new_user
        || namespaces
            .join
            .iter()
            .any(|(f, _)| f.contains(nix::sched::CloneFlags::CLONE_NEWUSER));
    let child = Child {
        namespaces,
        finalize: Finalize {
            process,
            caps: &caps,
            seccomp: seccomp.as_ref(),
            preserve_fds: opts.preserve_fds,
            init: spec
                .annotations()
                .as_ref()
                .and_then(|a| a.get(super::process::finalize::INIT_ANNOTATION))
                .is_some_and(|v| v == "true"),
        },
        container: Some(ContainerSetup {
            spec,
            rootfs: &bundle.rootfs,
            bundle: &bundle.dir,
            cgroup_path: &cgroup_path,
            start_listener: listener.into(),
        }),
        console,
        oom_score_adj: process.oom_score_adj(),
    };

    let stage1 = init::spawn(child, theirs, &ours).map_err(|e| RuntimeError::io("fork", "", e))?;
    undo.pids.push(stage1);
    if let Some(c) = &undo.cgroup {
        c.add_process(stage1)?;
    }
    let send = |m: &Msg| ours.send(m).map_err(|e| RuntimeError::io("sync with container init", "", e));
    send(&Msg::Go)?;
    let mut init_pid = None;
    // The init may ask for hooks before stage 1's report of its pid arrives.
    let mut hooks_pending = false;
    let state = |pid: i32| ContainerState {
        id: opts.id.to_string(),
        pid,
        pid_start_time: sys::process_start_time(pid).unwrap_or(0),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup_path: cgroup_path.clone(),
        user_namespace,
        init_exe: std::fs::read_link(format!("/proc/{pid}/exe")).ok(),
    };
    loop {
        let msg = ours.recv().map_err(|e| RuntimeError::io("sync with container init", "", e))?;
        match msg {
            Some(Msg::MapIds { pid }) => {
                write_id_maps(pid, linux)?;
                send(&Msg::IdsMapped)?;
            }
            Some(Msg::InitPid { pid }) => {
                init_pid = Some(pid);
                undo.pids.insert(0, pid);
                if pid != stage1 {
                    let _ = waitpid(Pid::from_raw(stage1), None);
                    undo.pids.retain(|p| *p != stage1);
                }
                if hooks_pending {
                    hooks_pending = false;
                    run_create_hooks(spec, &state(pid), &send)?;
                }
            }
            Some(Msg::HooksPlease) => match init_pid {
                Some(pid) => run_create_hooks(spec, &state(pid), &send)?,
                None => hooks_pending = true,
            },
            Some(Msg::Ready) => break,
            Some(Msg::Failed(e)) => return Err(e.into()),
            Some(other) => return Err(RuntimeError::Other(format!("unexpected message from container init: {other:?}"))),
            None => return Err(RuntimeError::Other("container init exited before it was ready".into())),
        }
    }
    let pid = init_pid.ok_or_else(|| RuntimeError::Other("container init never reported its pid".into()))?;
    let st = state(pid);
    write_atomic(&dir.join(spec::SAVED_CONFIG), &bundle.raw)?;
    root.save(&st)?;
    if let Some(p) = opts.pid_file {
        write_atomic(p, pid.to_string().as_bytes())?;
    }
    let console = match our_console {
        Some(sock) => Some(tty::recv_fd(sock.as_raw_fd()).map_err(|e| RuntimeError::io("receive console", "", e))?),
        None => None,
    };
    undo.armed = false;
    Ok(Created { state: st, console })
}
