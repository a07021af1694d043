//! Shared helpers for berth's end-to-end tests.
//!
//! Test images come from Debian's busybox-static: [`busybox_rootfs`] builds a
//! root filesystem (busybox, a link per applet, a minimal /etc) and [`Bundle`]
//! wraps one in an OCI bundle with a runc-style default config.json. Every
//! test gets its own temporary directory and unique names, so tests run in
//! parallel and leave nothing behind.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Where Debian's busybox-static installs the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Whether privileged tests can run. Returns false (the test should return
/// early) only when we are not root and `CI` is unset; under `CI=true` a
/// missing privilege is a failure, never a silent skip.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    require(test, unsafe { libc::geteuid() } == 0, "root")
}

/// A berthd of the test's own with busybox loaded, when the test may run:
/// [`require_root`] decides (under `CI=true` a missing root fails).
pub fn require_daemon(test: &str) -> Option<Berthd> {
    if !require_root(test) {
        return None;
    }
    Some(Berthd::with_busybox().expect("start berthd with busybox"))
}

/// Whether the machine has what a test needs (`have`, described by
/// `what`). Like [`require_root`]: without it the test skips only when
/// `CI` is unset; under `CI=true` it fails.
pub fn require(test: &str, have: bool, what: &str) -> bool {
    if have {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs {what}, and CI is set: refusing to skip");
    }
    eprintln!("{test}: skipped (needs {what}; CI is unset)");
    false
}

/// Whether `program` is on PATH.
pub fn has_program(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A name unique to this process and call, for container ids, cgroups and
/// network namespaces.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Builds a busybox root filesystem in `dir`.
pub fn busybox_rootfs(dir: &Path) -> Result<()> {
    if !Path::new(BUSYBOX).exists() {
        bail!("{BUSYBOX} not found: install Debian's busybox-static");
    }
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/user",
        "var/tmp",
        "run",
    ] {
        std::fs::create_dir_all(dir.join(d)).with_context(|| format!("mkdir {}", dir.join(d).display()))?;
    }
    std::fs::copy(BUSYBOX, dir.join("bin/busybox")).context("copy busybox")?;
    let out = Command::new(BUSYBOX).arg("--list-full").output().context("busybox --list-full")?;
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        let link = dir.join(applet);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if !link.exists() {
            symlink("/bin/busybox", &link).with_context(|| format!("symlink {}", link.display()))?;
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\nuser:x:1000:\nextra:x:2000:user\nnogroup:x:65534:\n",
    )?;
    std::fs::write(dir.join("etc/hostname"), "busybox\n")?;
    set_mode(&dir.join("tmp"), 0o1777)?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", path.display()))
}

/// The config.json that `berth-runtime spec` (like `runc spec`) writes,
/// running `args` without a terminal, as a JSON value tests can edit.
pub fn default_config(args: &[&str]) -> Value {
    let mut v = berth_core::runtime::spec::default_spec();
    v["process"]["args"] = json!(args);
    v["process"]["terminal"] = json!(false);
    v
}

/// An OCI bundle in its own temporary directory: `rootfs/` plus config.json.
pub struct Bundle {
    dir: tempfile::TempDir,
    /// The configuration [`Bundle::write_config`] writes; edit it freely.
    pub config: Value,
}

impl Bundle {
    /// A bundle with a fresh busybox rootfs whose process runs `args`.
    pub fn new(args: &[&str]) -> Result<Bundle> {
        let dir = tempfile::Builder::new().prefix("berth-bundle-").tempdir()?;
        busybox_rootfs(&dir.path().join("rootfs"))?;
        let bundle = Bundle {
            dir,
            config: default_config(args),
        };
        bundle.write_config()?;
        Ok(bundle)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Writes [`Bundle::config`] to config.json.
    pub fn write_config(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.config)?;
        std::fs::write(self.dir.path().join("config.json"), text).context("write config.json")
    }

    /// Sets the process args and rewrites config.json.
    pub fn set_args(&mut self, args: &[&str]) -> Result<()> {
        self.config["process"]["args"] = json!(args);
        self.write_config()
    }
}

/// The directory the workspace's binaries are built into: the running
/// binary's own directory, or its parent for a test in `deps/`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("binary directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("target dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The path of a workspace binary, which must have been built
/// (`cargo build --workspace --bins`, as the README's test command does).
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// The shared object of an example plugin (`plugins/examples/NAME.rs`),
/// which must have been built (`cargo build --workspace --bins --examples`,
/// as the README's test command does).
pub fn example_plugin(name: &str) -> PathBuf {
    let path = bin_dir().join("examples").join(format!("lib{name}.so"));
    assert!(
        path.exists(),
        "{} is missing: build the example plugins first (cargo build --workspace --examples)",
        path.display()
    );
    path
}

/// A `berth-runtime` (or runc, for differential tests) with its own state
/// root. Dropping it force-deletes every container left under the root, so
/// a failing test leaves no process, cgroup or state behind.
pub struct Runtime {
    binary: PathBuf,
    root: tempfile::TempDir,
}

/// What a finished runtime command printed and returned.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Runtime {
    /// berth-runtime from this workspace.
    pub fn berth() -> Runtime {
        Runtime::with_binary(bin("berth-runtime"))
    }

    /// Debian's runc, for differential tests.
    pub fn runc() -> Runtime {
        Runtime::with_binary(PathBuf::from("/usr/sbin/runc"))
    }

    pub fn with_binary(binary: PathBuf) -> Runtime {
        let root = tempfile::Builder::new().prefix("berth-rt-root-").tempdir().expect("temp root");
        Runtime { binary, root }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A command with `--root` set.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(self.root.path());
        c
    }

    /// Runs the runtime with `args`, capturing output. Output goes through
    /// files, not pipes: a detached container inherits the runtime's stdio
    /// and would hold a pipe open long after the runtime exits.
    pub fn output(&self, args: &[&str]) -> Output {
        let out = tempfile::tempfile().expect("temp file");
        let err = tempfile::tempfile().expect("temp file");
        let status = self
            .command()
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(err.try_clone().expect("dup"))
            .status()
            .expect("spawn runtime");
        let read = |mut f: std::fs::File| {
            use std::io::{Read, Seek};
            let mut s = String::new();
            f.seek(std::io::SeekFrom::Start(0)).expect("seek");
            f.read_to_string(&mut s).expect("read output");
            s
        };
        Output {
            code: status.code().unwrap_or(-1),
            stdout: read(out),
            stderr: read(err),
        }
    }

    /// Runs the runtime and fails the test unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> Output {
        let o = self.output(args);
        assert_eq!(o.code, 0, "{} {args:?} failed: {o:?}", self.binary.display());
        o
    }

    /// `run --bundle B ID`: the container's output and exit code.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Output {
        self.output(&["run", "--bundle", bundle.path().to_str().expect("utf-8 path"), id])
    }

    /// The `status` field of `state ID`.
    pub fn status(&self, id: &str) -> String {
        let o = self.ok(&["state", id]);
        let v: Value = serde_json::from_str(&o.stdout).expect("state JSON");
        v["status"].as_str().unwrap_or_default().to_string()
    }

    /// Polls `state` until the container reaches `status` (10 s at most);
    /// a container still being created counts as not there yet.
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let o = self.output(&["state", id]);
            let now = serde_json::from_str::<Value>(&o.stdout)
                .ok()
                .and_then(|v| v["status"].as_str().map(str::to_owned))
                .unwrap_or_else(|| o.stderr.trim().to_string());
            if now == status {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{id} stayed {now}, expected {status}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.root.path()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.command().args(["delete", "--force", &id]).output();
            }
        }
    }
}

/// The exit of a helper program: its error printed as one line naming the
/// program, never a backtrace.
pub fn exit_with(program: &str, result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A mount that is detached when dropped, so a failing test leaves none.
pub struct Mounted(pub PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Mounts kernel overlayfs at `target` with `options` (lowerdir=...), read-only
/// when asked.
pub fn mount_overlay(target: &Path, options: &str, read_only: bool) -> Mounted {
    let flags = if read_only {
        nix::mount::MsFlags::MS_RDONLY
    } else {
        nix::mount::MsFlags::empty()
    };
    nix::mount::mount(Some("overlay"), target, Some("overlay"), flags, Some(options))
        .unwrap_or_else(|e| panic!("mount overlay on {}: {e}", target.display()));
    Mounted(target.to_path_buf())
}

/// A berthd of a test's own: its socket and data root in a temporary
/// directory, and a network namespace of its own (pinned in that
/// directory) standing in for the host's, so its bridges, addresses and
/// nftables rules never touch the machine's; killed and cleaned up when
/// dropped.
pub struct Berthd {
    child: std::process::Child,
    dir: tempfile::TempDir,
    /// Flags given on every start.
    flags: Vec<String>,
}

impl Berthd {
    /// Starts berthd and waits until it answers /_ping.
    pub fn start() -> Result<Berthd> {
        Self::start_with(&[])
    }

    /// Starts berthd with more `flags` (kept for restarts).
    pub fn start_with(flags: &[&str]) -> Result<Berthd> {
        let dir = tempfile::tempdir()?;
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let child = Self::spawn(dir.path(), &flags)?;
        let mut d = Berthd { child, dir, flags };
        d.wait_ready()?;
        Ok(d)
    }

    /// Kills berthd (SIGKILL, as a crash) and starts it again on the same
    /// socket and data root.
    pub fn restart(&mut self) -> Result<()> {
        self.crash();
        self.respawn()
    }

    /// Kills berthd (SIGKILL), leaving everything else as it was.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts berthd again after [`Berthd::crash`].
    pub fn respawn(&mut self) -> Result<()> {
        self.child = Self::spawn(self.dir.path(), &self.flags)?;
        self.wait_ready()
    }

    fn spawn(dir: &Path, flags: &[String]) -> Result<std::process::Child> {
        let socket = dir.join("berth.sock");
        let netns = dir.join("netns");
        if !is_namespace(&netns) {
            berth_net::netns::create(&netns).context("a network namespace for berthd")?;
        }
        // nsenter execs berthd: the child is berthd itself.
        let mut c = in_netns(&netns, bin("berthd"));
        Ok(c.arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(dir.join("berthd.log"))?)
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("run"))
            .arg("--resolv-conf")
            .arg(dir.join("resolv.conf"))
            .args(flags)
            .spawn()?)
    }

    /// berthd's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The network namespace berthd runs in (the test's "host").
    pub fn netns(&self) -> PathBuf {
        self.dir.path().join("netns")
    }

    /// `program args` run in berthd's network namespace, as on its host.
    pub fn on_host(&self, program: &str) -> std::process::Command {
        in_netns(&self.netns(), program)
    }

    /// The resolv.conf berthd gives containers (empty until a test
    /// writes it).
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.path().join("resolv.conf")
    }

    fn wait_ready(&mut self) -> Result<()> {
        let socket = self.socket();
        for _ in 0..200 {
            if berth_core::client::request(&socket, "GET", "/_ping", None).is_ok_and(|a| a.status == 200) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("berthd exited with {status}: {}", self.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        anyhow::bail!("berthd did not answer on {}: {}", socket.display(), self.log())
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    /// DOCKER_HOST / BERTH_HOST for this daemon.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// What berthd wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    /// The `berth` CLI pointed at this daemon.
    pub fn berth(&self) -> std::process::Command {
        let mut c = std::process::Command::new(bin("berth"));
        c.env("BERTH_HOST", self.host());
        c
    }

    /// The stock `docker` CLI pointed at this daemon.
    pub fn docker(&self) -> std::process::Command {
        let mut c = std::process::Command::new("docker");
        c.env("DOCKER_HOST", self.host());
        c.env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Starts berthd with the busybox image loaded as `busybox:latest`.
    pub fn with_busybox() -> Result<Berthd> {
        Self::with_busybox_and(&[])
    }

    /// [`Berthd::with_busybox`] with more `flags`.
    pub fn with_busybox_and(flags: &[&str]) -> Result<Berthd> {
        let d = Berthd::start_with(flags)?;
        let archive = d.dir.path().join("busybox.tar");
        busybox_docker_archive(&archive, &["busybox:latest"])?;
        let o = d.berth().arg("load").arg("-i").arg(&archive).output()?;
        anyhow::ensure!(o.status.success(), "berth load: {}", text(&o));
        Ok(d)
    }

    /// Kills berthd and everything it left running (containers, their
    /// monitors, FUSE mounts), as after a crash of the whole engine.
    pub fn kill_all(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let runtime_root = self.exec_root().join("runtime");
        for e in std::fs::read_dir(&runtime_root).into_iter().flatten().flatten() {
            let _ = Command::new(bin("berth-runtime"))
                .arg("--root")
                .arg(&runtime_root)
                .args(["delete", "--force"])
                .arg(e.file_name())
                .output();
        }
        let ours = self.dir.path().to_string_lossy().into_owned();
        // Monitors whose containers were just deleted end on their own;
        // any left (and FUSE servers) are killed by their command line.
        for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&ours) {
                if let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() {
                    if pid != std::process::id() as i32 {
                        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                    }
                }
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&ours))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// `program` to be run in the network namespace pinned at `ns` (through
/// nsenter, which execs it: the child is the program).
pub fn in_netns(ns: &Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net={}", ns.display())).arg(program);
    c
}

/// Whether `p` is a pinned namespace (an nsfs mount), not a plain file.
fn is_namespace(p: &Path) -> bool {
    nix::sys::statfs::statfs(p).is_ok_and(|s| s.filesystem_type().0 == libc::NSFS_MAGIC)
}

impl Drop for Berthd {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// `docker ARGS` against `d`, with no stdin.
pub fn docker(d: &Berthd, args: &[&str]) -> std::process::Output {
    d.docker()
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run docker")
}

/// A command's stdout, trimmed.
pub fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Starts container `name` serving /etc over HTTP on port 80 (busybox
/// httpd) through `cli` (`docker` or `berth` against a berthd), with more
/// `run` flags; its ID.
pub fn web_server(mut cli: Command, name: &str, flags: &[&str]) -> String {
    ok(cli
        .args(["run", "-d", "--name", name])
        .args(flags)
        .args(["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]))
}

/// `docker inspect --format TEMPLATE NAME` against `d`.
pub fn inspect(d: &Berthd, name: &str, template: &str) -> String {
    ok(d.docker().args(["inspect", "--format", template, name]))
}

/// What a finished command left.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\nstdout: {}\nstderr: {}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `c` with `input` on its stdin (none: /dev/null), killing it if it
/// takes longer than 20 seconds; no panic or backtrace may show.
pub fn run_with(c: &mut Command, input: Option<&[u8]>) -> Run {
    use std::io::Write;
    use std::process::Stdio;
    c.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run the command");
    if let Some(bytes) = input {
        // A command that does not read its stdin may be gone already.
        let _ = child.stdin.take().expect("piped stdin").write_all(bytes);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().expect("wait for the command").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{c:?} did not finish in 20 seconds");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let o = child.wait_with_output().expect("the command's output");
    let r = Run {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !r.stderr.contains("panicked") && !r.stderr.contains("RUST_BACKTRACE"),
        "{c:?}: {r:?}"
    );
    r
}

/// Polls `f` until it holds, for at most `secs` seconds.
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A command's standard output and error, for assertion messages.
pub fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Runs `c`, which must succeed; its trimmed standard output.
pub fn ok(c: &mut Command) -> String {
    let o = c.output().expect("run the command");
    assert!(o.status.success(), "{:?}: {}", c, text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Writes a docker-archive (what `docker save` writes) of a one-layer
/// busybox image tagged `tags` to `path`; returns the image ID.
pub fn busybox_docker_archive(path: &Path, tags: &[&str]) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs)?;
    let mut layer = tar::Builder::new(Vec::new());
    layer.follow_symlinks(false);
    layer.mode(tar::HeaderMode::Deterministic);
    layer.append_dir_all(".", &rootfs)?;
    let layer = layer.into_inner()?;
    let diff_id = berth_fs::digest::Digest::of(&layer).to_string();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-11-23T00:00:00Z",
        "config": { "Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Labels": { "made-by": "berth-tests" } },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": "2026-11-23T00:00:00Z", "created_by": "busybox_docker_archive" }],
    }))?;
    let id = berth_fs::digest::Digest::of(&config);
    let manifest = serde_json::to_vec(&json!([{
        "Config": format!("{}.json", id.hex()),
        "RepoTags": tags,
        "Layers": ["layer/layer.tar"],
    }]))?;
    let mut out = tar::Builder::new(std::fs::File::create(path)?);
    let mut add = |name: &str, data: &[u8]| -> Result<()> {
        let mut h = berth_core::image::archive::file_header(data.len() as u64);
        out.append_data(&mut h, name, data)?;
        Ok(())
    };
    add("layer/layer.tar", &layer)?;
    add(&format!("{}.json", id.hex()), &config)?;
    add("manifest.json", &manifest)?;
    out.into_inner()?;
    Ok(id.to_string())
}
