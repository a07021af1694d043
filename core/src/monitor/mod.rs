//! The per-container monitor (`berth-monitor`), as conmon is to Podman:
//! one small process per running container that outlives berthd.
//!
//! berthd writes a [`Config`] and starts the monitor, which detaches
//! (double fork, new session), becomes the child subreaper, and runs
//! `berth-runtime create` with pipes (or, for a terminal, a console socket)
//! as the container's stdio. The container's init is reparented to the
//! monitor when the runtime exits; the monitor reports [`Ready`] on its
//! stdout and berthd then runs `berth-runtime start`.
//!
//! From then on the monitor alone holds the container's stdio: it writes
//! the json-file log ([`jsonlog`]), relays output to and input from
//! clients on its attach socket ([`protocol`]), and when the init exits it
//! writes the [`Exit`] record, deletes the runtime's state, tells every
//! client the exit code and ends. berthd restarting changes nothing here:
//! it reconnects to the socket (live restore).
//!
//! Not here: the bundle, mounts and policies (berthd's `container`
//! module).

pub mod jsonlog;
pub mod protocol;

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use jsonlog::{LogWriter, Rotation};

/// What berthd tells a monitor to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// The container's ID for the runtime.
    pub id: String,
    pub runtime: PathBuf,
    pub runtime_root: PathBuf,
    pub bundle: PathBuf,
    pub tty: bool,
    pub open_stdin: bool,
    /// The terminal's first size (rows, columns).
    pub console_size: Option<(u16, u16)>,
    pub log_path: PathBuf,
    pub rotation: Rotation,
    /// The attach socket.
    pub socket: PathBuf,
    /// Where the exit record goes.
    pub exit_file: PathBuf,
    /// The container's cgroup path (`/berth/<id>`), read for OOM kills.
    pub cgroup: PathBuf,
}

/// The monitor's first and only line on its stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Ready {
    /// The container exists; its init (`pid`) waits for `start`. `monitor`
    /// is this process, which berthd cannot know otherwise (it detached).
    Created { pid: i32, monitor: i32 },
    /// The runtime could not create it; its message.
    Failed { error: String },
}

/// How the container ended, written once to [`Config::exit_file`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Exit {
    /// The exit code, or 128 + the signal that killed it.
    pub code: i32,
    pub finished_at: String,
    pub oom_killed: bool,
}

/// Input bytes held for a container that does not read them yet; past
/// this, clients' input waits in their sockets.
const STDIN_LIMIT: usize = 1 << 20;
/// Output held for a client that does not read; past this it is dropped.
const CLIENT_LIMIT: usize = 8 << 20;
/// How long output may keep coming after the init exited.
const DRAIN: Duration = Duration::from_secs(2);

/// Runs the monitor (after the caller detached); returns its exit code.
pub fn run(cfg: &Config) -> i32 {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    match create(cfg) {
        Ok(mut m) => {
            report(&Ready::Created {
                pid: m.init.as_raw(),
                monitor: std::process::id() as i32,
            });
            m.serve();
            0
        }
        Err(e) => {
            // A container the runtime did create must not outlive the failure.
            delete(cfg);
            report(&Ready::Failed { error: e });
            1
        }
    }
}

/// Writes the ready line and lets go of stdout, so berthd's read ends.
fn report(r: &Ready) {
    let mut line = serde_json::to_vec(r).unwrap_or_default();
    line.push(b'\n');
    let _ = io::stdout().write_all(&line);
    let _ = io::stdout().flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto fd 1, which this process owns.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}

struct Client {
    sock: UnixStream,
    /// The hello byte, once read.
    want: Option<u8>,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    gone: bool,
}

struct Monitor<'a> {
    cfg: &'a Config,
    init: Pid,
    pidfd: OwnedFd,
    /// Output sources and their stream (1 stdout, 2 stderr).
    outputs: Vec<(u8, std::fs::File)>,
    /// Where input goes: the stdin pipe or the terminal.
    stdin: Option<std::fs::File>,
    stdin_buf: Vec<u8>,
    close_stdin: bool,
    /// The terminal's master, for resizes.
    master: Option<OwnedFd>,
    listener: UnixListener,
    clients: Vec<Client>,
    log: LogWriter,
    status: Option<i32>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

fn nonblocking(fd: &impl AsRawFd) {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// Creates the container through the runtime and sets up the stdio.
fn create(cfg: &Config) -> Result<Monitor<'_>, String> {
    let _ = std::fs::remove_file(&cfg.socket);
    let listener = crate::sys::SocketPath::new(&cfg.socket)
        .and_then(|p| UnixListener::bind(p.path()))
        .map_err(|e| format!("listen on {}: {e}", cfg.socket.display()))?;
    let log = LogWriter::open(&cfg.log_path, cfg.rotation).map_err(|e| format!("open log {}: {e}", cfg.log_path.display()))?;
    let pid_file = cfg.socket.with_file_name("init.pid");
    let mut cmd = std::process::Command::new(&cfg.runtime);
    cmd.arg("--root")
        .arg(&cfg.runtime_root)
        .arg("create")
        .arg("--bundle")
        .arg(&cfg.bundle);
    cmd.arg("--pid-file").arg(&pid_file);
    let (err_r, err_w) = pipe()?;
    let mut outputs = Vec::new();
    let mut stdin = None;
    let console = if cfg.tty {
        let path = cfg.socket.with_file_name("console.sock");
        let _ = std::fs::remove_file(&path);
        let l = crate::sys::SocketPath::new(&path)
            .and_then(|p| UnixListener::bind(p.path()))
            .map_err(|e| format!("listen on {}: {e}", path.display()))?;
        l.set_nonblocking(true).map_err(|e| format!("console socket: {e}"))?;
        cmd.arg("--console-socket").arg(&path);
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
        Some((l, path))
    } else {
        let (out_r, out_w) = pipe()?;
        cmd.stdout(out_w).stderr(err_w.try_clone().map_err(|e| format!("dup: {e}"))?);
        outputs.push((1u8, std::fs::File::from(out_r)));
        if cfg.open_stdin {
            let (in_r, in_w) = pipe()?;
            cmd.stdin(in_r);
            stdin = Some(std::fs::File::from(in_w));
        } else {
            cmd.stdin(std::process::Stdio::null());
        }
        None
    };
    if cfg.tty {
        cmd.stderr(err_w);
    } else {
        // The runtime's own errors and the container's stderr share a pipe.
        drop(err_w);
    }
    cmd.arg(&cfg.id);
    let mut child = cmd.spawn().map_err(|e| format!("run {}: {e}", cfg.runtime.display()))?;
    // The pipe ends the container holds must not stay open here too.
    drop(cmd);
    let mut master = None;
    let status = loop {
        if let Some((l, _)) = &console {
            if master.is_none() {
                if let Ok((s, _)) = l.accept() {
                    s.set_nonblocking(false).map_err(|e| format!("console socket: {e}"))?;
                    master = Some(crate::runtime::process::tty::recv_fd(s.as_raw_fd()).map_err(|e| format!("receive the terminal: {e}"))?);
                }
            }
        }
        match child.try_wait() {
            Ok(Some(status)) if master.is_some() || console.is_none() || !status.success() => break status,
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(format!("wait for the runtime: {e}")),
        }
    };
    if let Some((_, path)) = &console {
        let _ = std::fs::remove_file(path);
    }
    let err_file = std::fs::File::from(err_r);
    if !status.success() {
        nonblocking(&err_file);
        let mut msg = String::new();
        let _ = (&err_file).read_to_string(&mut msg);
        let _ = std::fs::remove_file(&cfg.socket);
        let msg = msg.trim();
        return Err(if msg.is_empty() {
            format!("the runtime failed ({status})")
        } else {
            msg.to_string()
        });
    }
    if cfg.tty {
        let m = master.ok_or("the runtime sent no terminal")?;
        if let Some((rows, cols)) = cfg.console_size {
            let _ = crate::runtime::process::tty::set_size(m.as_raw_fd(), rows, cols);
        }
        let dup = m.try_clone().map_err(|e| format!("dup: {e}"))?;
        stdin = Some(std::fs::File::from(m.try_clone().map_err(|e| format!("dup: {e}"))?));
        outputs.push((1, std::fs::File::from(dup)));
        master = Some(m);
    } else {
        outputs.push((2, err_file));
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("no pid in {}", pid_file.display()))?;
    let pidfd = crate::sys::pidfd_open(pid).map_err(|e| format!("pidfd_open {pid}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| format!("attach socket: {e}"))?;
    for (_, f) in &outputs {
        nonblocking(f);
    }
    if let Some(f) = &stdin {
        nonblocking(f);
    }
    Ok(Monitor {
        cfg,
        init: Pid::from_raw(pid),
        pidfd,
        outputs,
        stdin,
        stdin_buf: Vec::new(),
        close_stdin: false,
        master,
        listener,
        clients: Vec::new(),
        log,
        status: None,
    })
}

impl Monitor<'_> {
    /// Relays until the init has exited and its output is drained.
    fn serve(&mut self) {
        let mut exited_at: Option<Instant> = None;
        loop {
            if let Some(t) = exited_at {
                if self.outputs.is_empty() || t.elapsed() > DRAIN {
                    break;
                }
            }
            self.poll_once(exited_at.is_some());
            self.reap();
            if self.status.is_some() && exited_at.is_none() {
                exited_at = Some(Instant::now());
            }
        }
        self.finish();
    }

    fn poll_once(&mut self, exited: bool) {
        let no = PollFlags::empty();
        let mut fds: Vec<PollFd> = Vec::new();
        fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        fds.push(PollFd::new(self.pidfd.as_fd(), if exited { no } else { PollFlags::POLLIN }));
        let want_in = if !self.stdin_buf.is_empty() || self.close_stdin {
            PollFlags::POLLOUT
        } else {
            no
        };
        match &self.stdin {
            Some(f) => fds.push(PollFd::new(f.as_fd(), want_in)),
            None => fds.push(PollFd::new(self.pidfd.as_fd(), no)),
        }
        for (_, f) in &self.outputs {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
        }
        let room = self.stdin_buf.len() < STDIN_LIMIT;
        for c in &self.clients {
            let mut ev = if room { PollFlags::POLLIN } else { no };
            if !c.outbuf.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.sock.as_fd(), ev));
        }
        let timeout = if exited { 100u16 } else { 1000 };
        if poll(&mut fds, PollTimeout::from(timeout)).is_err() {
            return;
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        let accept = ready(0);
        let stdin_ready = ready(2);
        let outs: Vec<bool> = (0..self.outputs.len()).map(|i| ready(3 + i)).collect();
        let base = 3 + self.outputs.len();
        let clients: Vec<bool> = (0..self.clients.len()).map(|i| ready(base + i)).collect();
        drop(fds);
        if accept {
            self.accept();
        }
        for (i, r) in outs.into_iter().enumerate().rev() {
            if r {
                self.read_output(i);
            }
        }
        for (i, r) in clients.into_iter().enumerate() {
            if r {
                self.service_client(i);
            }
        }
        if stdin_ready || !self.stdin_buf.is_empty() {
            self.feed_stdin();
        }
        self.clients.retain(|c| !c.gone);
    }

    fn accept(&mut self) {
        while let Ok((mut sock, _)) = self.listener.accept() {
            // The hello byte is read now, before any more output is relayed:
            // output read in this same pass must reach this client already.
            let _ = sock.set_nonblocking(false);
            let _ = sock.set_read_timeout(Some(Duration::from_secs(1)));
            let mut hello = [0u8; 1];
            let want = match sock.read(&mut hello) {
                Ok(1) => Some(hello[0]),
                _ => continue,
            };
            let _ = sock.set_nonblocking(true);
            self.clients.push(Client {
                sock,
                want,
                inbuf: Vec::new(),
                outbuf: Vec::new(),
                gone: false,
            });
        }
    }

    fn read_output(&mut self, i: usize) {
        let mut buf = [0u8; 65536];
        // A bounded amount per pass, so a flood of output does not starve
        // input, resizes and clients.
        for _ in 0..16 {
            let stream = self.outputs[i].0;
            match self.outputs[i].1.read(&mut buf) {
                Ok(0) => {
                    self.outputs.remove(i);
                    return;
                }
                Ok(n) => {
                    let _ = self.log.write(stream, &buf[..n]);
                    self.broadcast(stream, &buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EIO: the terminal's last holder closed it.
                Err(_) => {
                    self.outputs.remove(i);
                    return;
                }
            }
        }
    }

    fn broadcast(&mut self, stream: u8, data: &[u8]) {
        let bit = if stream == 2 {
            protocol::WANT_STDERR
        } else {
            protocol::WANT_STDOUT
        };
        let framed = protocol::frame(stream, data);
        for c in &mut self.clients {
            if c.want.is_some_and(|w| w & bit != 0) {
                c.outbuf.extend_from_slice(&framed);
                flush_client(c);
                if c.outbuf.len() > CLIENT_LIMIT {
                    c.gone = true;
                }
            }
        }
    }

    fn service_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        flush_client(c);
        let mut buf = [0u8; 65536];
        loop {
            match c.sock.read(&mut buf) {
                Ok(0) => {
                    c.gone = true;
                    break;
                }
                Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    c.gone = true;
                    break;
                }
            }
            if c.inbuf.len() > STDIN_LIMIT {
                break;
            }
        }
        if c.want.is_none() && !c.inbuf.is_empty() {
            c.want = Some(c.inbuf.remove(0));
        }
        let frames = match protocol::split_frames(&mut c.inbuf) {
            Ok(f) => f,
            Err(_) => {
                c.gone = true;
                return;
            }
        };
        let may_write = c.want.is_some_and(|w| w & protocol::WANT_STDIN != 0);
        for (kind, payload) in frames {
            match kind {
                protocol::STDIN if may_write && !self.close_stdin => self.stdin_buf.extend_from_slice(&payload),
                protocol::CLOSE_STDIN if may_write && self.master.is_none() => self.close_stdin = true,
                protocol::RESIZE if payload.len() == 4 => {
                    if let Some(m) = &self.master {
                        let rows = u16::from_be_bytes([payload[0], payload[1]]);
                        let cols = u16::from_be_bytes([payload[2], payload[3]]);
                        let _ = crate::runtime::process::tty::set_size(m.as_raw_fd(), rows, cols);
                    }
                }
                _ => {}
            }
        }
    }

    fn feed_stdin(&mut self) {
        let Some(f) = &mut self.stdin else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match f.write(&self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    // The container closed its stdin: nothing more goes in.
                    self.stdin_buf.clear();
                    self.stdin = None;
                    return;
                }
            }
        }
        if self.close_stdin {
            self.stdin = None;
        }
    }

    /// Collects the init's status, and any orphan the container left.
    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == self.init => self.status = Some(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == self.init => self.status = Some(128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    fn oom_killed(&self) -> bool {
        let rel = self.cfg.cgroup.strip_prefix("/").unwrap_or(&self.cfg.cgroup);
        let count = |file: PathBuf| -> bool {
            std::fs::read_to_string(file).is_ok_and(|t| {
                t.lines().any(|l| {
                    l.strip_prefix("oom_kill ")
                        .is_some_and(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
                })
            })
        };
        count(Path::new("/sys/fs/cgroup/memory").join(rel).join("memory.oom_control"))
            || count(Path::new("/sys/fs/cgroup").join(rel).join("memory.events"))
    }

    /// Records the exit, removes the runtime's state and tells the clients.
    fn finish(&mut self) {
        let _ = self.log.flush();
        let exit = Exit {
            code: self.status.unwrap_or(255),
            finished_at: crate::time::now_rfc3339(),
            oom_killed: self.oom_killed(),
        };
        if let Ok(text) = serde_json::to_vec(&exit) {
            if let Err(e) = berth_fs::atomic::write(&self.cfg.exit_file, &text) {
                eprintln!("berth-monitor: write {}: {e}", self.cfg.exit_file.display());
            }
        }
        delete(self.cfg);
        let _ = std::fs::remove_file(&self.cfg.socket);
        // Clients connected before the socket went hear the end.
        self.accept();
        let deadline = Instant::now() + Duration::from_secs(1);
        for c in &mut self.clients {
            c.outbuf.extend(protocol::frame(protocol::EXIT, &exit.code.to_be_bytes()));
            let _ = c.sock.set_nonblocking(false);
            let _ = c.sock.set_write_timeout(Some(
                deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10)),
            ));
            let _ = c.sock.write_all(&c.outbuf);
        }
    }
}

/// `berth-runtime delete --force`: the container's state and cgroup go.
fn delete(cfg: &Config) {
    let _ = std::process::Command::new(&cfg.runtime)
        .arg("--root")
        .arg(&cfg.runtime_root)
        .args(["delete", "--force"])
        .arg(&cfg.id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

fn flush_client(c: &mut Client) {
    while !c.outbuf.is_empty() {
        match c.sock.write(&c.outbuf) {
            Ok(n) => {
                c.outbuf.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => {
                c.gone = true;
                c.outbuf.clear();
                return;
            }
        }
    }
}

/// Starts a monitor for `cfg` (written to `config_path`) and waits for its
/// ready line. The monitor detaches, so it is nobody's child but the
/// subreaper's once this returns. Answers the container's init pid and
/// the monitor's own.
pub fn spawn(monitor: &Path, config_path: &Path, cfg: &Config, log: &Path) -> Result<(i32, i32), String> {
    let text = serde_json::to_vec_pretty(cfg).map_err(|e| e.to_string())?;
    // Read once by the monitor it is written for: no need to survive a crash.
    std::fs::write(config_path, &text).map_err(|e| format!("write {}: {e}", config_path.display()))?;
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("open {}: {e}", log.display()))?;
    let mut child = std::process::Command::new(monitor)
        .arg(config_path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("run {}: {e}", monitor.display()))?;
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    let _ = child.wait();
    match serde_json::from_str::<Ready>(out.trim()) {
        Ok(Ready::Created { pid, monitor }) => Ok((pid, monitor)),
        Ok(Ready::Failed { error }) => Err(error),
        Err(_) => {
            let logged = std::fs::read_to_string(log).unwrap_or_default();
            Err(format!("the monitor ended before the container was created: {}", logged.trim()))
        }
    }
}

/// Detaches the calling process from its parent: forks, the parent exits
/// at once, and the child leads a new session. For `berth-monitor`'s
/// main, before any thread exists.
pub fn detach() -> io::Result<()> {
    // SAFETY: called first thing in a single-threaded program.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            nix::unistd::setsid().map_err(io::Error::from)?;
            Ok(())
        }
        // SAFETY: _exit in the parent skips exit handlers meant for the child.
        _ => unsafe { libc::_exit(0) },
    }
}

/// Reads a monitor's configuration.
pub fn load_config(path: &Path) -> Result<Config, String> {
    let text = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}
