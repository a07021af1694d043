//! The `berth` CLI's container commands against a berthd of each test's
//! own, checked for what docker's CLI prints and exits with: run (output,
//! exit codes, stdin, terminals, --rm, -d), logs, the lifecycle commands,
//! ps and inspect formats, and the flags that shape a container.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{require_daemon, run_with, Run};

fn run(c: &mut Command) -> Run {
    run_with(c, None)
}

/// Runs `c`, which must succeed; its trimmed stdout.
fn ok(c: &mut Command) -> String {
    let r = run(c);
    assert_eq!(r.code, Some(0), "{c:?}: {r:?}");
    r.stdout.trim().to_string()
}

#[test]
fn run_relays_output_and_exits_as_docker() {
    let Some(d) = require_daemon("run_relays_output_and_exits_as_docker") else {
        return;
    };
    let r = run(d.berth().args(["run", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]));
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (Some(3), "out\n", "err\n"));
    // Flags after the image belong to the command.
    assert_eq!(ok(d.berth().args(["run", "--rm", "busybox", "echo", "-n", "--rm"])), "--rm");
    let r = run(d.berth().args(["run", "busybox", "nonexistent-command"]));
    assert_eq!(r.code, Some(127), "{r:?}");
    assert!(r.stderr.starts_with("Error response from daemon: "), "{r:?}");
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {r:?}");
    let r = run(d.berth().args(["run", "--rm", "busybox", "/etc/passwd"]));
    assert_eq!(r.code, Some(126), "{r:?}");
    let r = run(d.berth().args(["run", "--rm", "busybox", "/no/such/file"]));
    assert_eq!(r.code, Some(127), "{r:?}");
    let r = run(d.berth().args(["run", "nosuchimage:latest", "true"]));
    assert_eq!(r.code, Some(125), "{r:?}");
    assert!(r.stderr.contains("No such image"), "{r:?}");
    ok(d.berth().args(["run", "--name", "taken", "busybox", "true"]));
    let r = run(d.berth().args(["run", "--name", "taken", "busybox", "true"]));
    assert_eq!(r.code, Some(125), "{r:?}");
    assert!(r.stderr.contains("Conflict") && r.stderr.contains("/taken"), "{r:?}");
    // --rm leaves nothing behind, exit status and all.
    let r = run(d.berth().args(["run", "--rm", "--name", "gone", "busybox", "sh", "-c", "exit 2"]));
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_eq!(ok(d.berth().args(["ps", "-a", "--filter", "name=gone", "-q"])), "");
    // A terminal without our stdin works from a pipe; with it, docker refuses.
    let r = run(d.berth().args(["run", "--rm", "-t", "busybox", "echo", "tty"]));
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "tty\r\n"), "{r:?}");
    let r = run_with(d.berth().args(["run", "--rm", "-it", "busybox", "echo", "tty"]), Some(b"x\n"));
    assert_eq!(r.code, Some(1), "{r:?}");
    assert_eq!(r.stderr.trim(), "the input device is not a TTY");
    // Usage errors: flags 125, missing arguments 1.
    assert_eq!(run(d.berth().args(["run", "--bogus", "busybox"])).code, Some(125));
    assert_eq!(run(d.berth().args(["run", "-m", "lots", "busybox"])).code, Some(125));
    assert_eq!(run(d.berth().args(["ps", "--bogus"])).code, Some(125));
    assert_eq!(run(d.berth().arg("stop")).code, Some(1));
}

#[test]
fn stdin_goes_to_the_container_until_eof() {
    let Some(d) = require_daemon("stdin_goes_to_the_container_until_eof") else {
        return;
    };
    let r = run_with(d.berth().args(["run", "-i", "--rm", "busybox", "cat"]), Some(b"hello\nworld\n"));
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "hello\nworld\n"), "{r:?}");
    let r = run_with(
        d.berth().args(["run", "-i", "--rm", "busybox", "sh", "-c", "wc -l; exit 4"]),
        Some(b"a\nb\nc\n"),
    );
    assert_eq!((r.code, r.stdout.trim()), (Some(4), "3"), "{r:?}");
    // Without -i the container's stdin is closed.
    let r = run_with(d.berth().args(["run", "--rm", "busybox", "cat"]), Some(b"ignored\n"));
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), ""), "{r:?}");
    // start -a -i: attached before the start, so nothing is missed.
    let id = ok(d
        .berth()
        .args(["create", "-i", "busybox", "sh", "-c", "read x; echo got $x; exit 5"]));
    assert_eq!(id.len(), 64, "create prints the full ID: {id}");
    let r = run_with(d.berth().args(["start", "-a", "-i", &id]), Some(b"zzz\n"));
    assert_eq!((r.code, r.stdout.as_str()), (Some(5), "got zzz\n"), "{r:?}");
}

#[test]
fn detached_containers_and_their_logs() {
    let Some(d) = require_daemon("detached_containers_and_their_logs") else {
        return;
    };
    let script = "echo one; echo two >&2; sleep 1; echo three";
    let id = ok(d.berth().args(["run", "-d", "--name", "lg", "busybox", "sh", "-c", script]));
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "run -d prints the full ID: {id}"
    );
    // -f follows until the container exits.
    let started = Instant::now();
    let r = run(d.berth().args(["logs", "-f", "lg"]));
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (Some(0), "one\nthree\n", "two\n"),
        "{r:?}"
    );
    assert!(started.elapsed() > Duration::from_millis(500), "logs -f waited for the exit");
    assert_eq!(ok(d.berth().args(["wait", "lg"])), "0");
    assert_eq!(ok(d.berth().args(["logs", "--tail", "1", "lg"])), "three");
    let r = run(d.berth().args(["logs", "lg"]));
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("one\nthree\n", "two\n"));
    let stamped = ok(d.berth().args(["logs", "-t", "--tail", "1", "lg"]));
    let (time, text) = stamped.split_once(' ').unwrap();
    assert!(time.ends_with('Z') && time.contains('T') && text == "three", "{stamped}");
    assert_eq!(ok(d.berth().args(["logs", "--since", "1h", "--tail", "1", "lg"])), "three");
    assert_eq!(ok(d.berth().args(["logs", "--until", "2000-01-01", "lg"])), "");
    // A terminal's log is raw.
    ok(d.berth().args(["run", "-d", "-t", "--name", "tl", "busybox", "echo", "hi"]));
    assert_eq!(ok(d.berth().args(["wait", "tl"])), "0");
    assert_eq!(run(d.berth().args(["logs", "tl"])).stdout, "hi\r\n");
    assert_eq!(run(d.berth().args(["logs", "nope"])).code, Some(1));
}

#[test]
fn stop_kill_restart_rename_wait_and_remove() {
    let Some(d) = require_daemon("stop_kill_restart_rename_wait_and_remove") else {
        return;
    };
    ok(d.berth().args(["run", "-d", "--name", "s1", "busybox", "sleep", "100"]));
    let started = Instant::now();
    assert_eq!(ok(d.berth().args(["stop", "-t", "1", "s1"])), "s1");
    assert!(started.elapsed() < Duration::from_secs(8), "stop -t 1 took {:?}", started.elapsed());
    let listed = ok(d
        .berth()
        .args(["ps", "-a", "--filter", "status=exited", "--format", "{{.Names}} {{.Status}}"]));
    assert!(listed.starts_with("s1 Exited (137)"), "{listed}");
    assert_eq!(ok(d.berth().args(["start", "s1"])), "s1");
    assert_eq!(ok(d.berth().args(["restart", "-t", "0", "s1"])), "s1");
    assert_eq!(ok(d.berth().args(["ps", "--format", "{{.Names}} {{.State}}"])), "s1 running");
    // wait blocks until the kill.
    let mut waiter = d.berth().args(["wait", "s1"]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ok(d.berth().args(["kill", "-s", "KILL", "s1"])), "s1");
    let mut status = String::new();
    std::io::Read::read_to_string(waiter.stdout.as_mut().unwrap(), &mut status).unwrap();
    assert!(waiter.wait().unwrap().success());
    assert_eq!(status.trim(), "137");
    assert_eq!(
        ok(d.berth().args(["inspect", "-f", "{{.State.ExitCode}} {{.State.Status}}", "s1"])),
        "137 exited"
    );
    ok(d.berth().args(["rename", "s1", "s2"]));
    assert_eq!(ok(d.berth().args(["inspect", "--format", "{{.Name}}", "s2"])), "/s2");
    let r = run(d.berth().args(["rm", "s2", "nope"]));
    assert_eq!((r.code, r.stdout.as_str()), (Some(1), "s2\n"), "{r:?}");
    assert_eq!(r.stderr.trim(), "Error response from daemon: No such container: nope");
    ok(d.berth()
        .args(["container", "run", "-d", "--name", "s3", "busybox", "sleep", "100"]));
    let r = run(d.berth().args(["rm", "s3"]));
    assert_eq!(r.code, Some(1), "a running container is not removed without -f: {r:?}");
    assert_eq!(ok(d.berth().args(["container", "rm", "-f", "s3"])), "s3");
    assert_eq!(run(d.berth().args(["kill", "s3"])).code, Some(1));
    ok(d.berth().args(["create", "--name", "c1", "busybox", "true"]));
    let pruned = ok(d.berth().args(["container", "prune", "-f"]));
    assert!(
        pruned.starts_with("Deleted Containers:") && pruned.contains("Total reclaimed space:"),
        "{pruned}"
    );
    assert_eq!(ok(d.berth().args(["container", "ls", "-a", "-q"])), "");
}

#[test]
fn ps_and_inspect_print_dockers_formats() {
    let Some(d) = require_daemon("ps_and_inspect_print_dockers_formats") else {
        return;
    };
    let id = ok(d.berth().args([
        "create",
        "--name",
        "web",
        "-l",
        "b=2",
        "-l",
        "a=1",
        "busybox",
        "sh",
        "-c",
        "echo a long command line",
    ]));
    ok(d.berth().args(["run", "--name", "done", "busybox", "true"]));
    let table = ok(d.berth().args(["ps", "-a"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("CONTAINER ID   IMAGE     COMMAND                   CREATED ") && lines[0].ends_with("PORTS     NAMES"),
        "{table}"
    );
    let web = lines.iter().find(|l| l.ends_with("web")).unwrap();
    assert!(
        web.starts_with(&format!("{}   busybox   \"sh -c \\\"echo a long …\"   ", &id[..12])),
        "{web}"
    );
    assert!(web.contains(" ago ") && web.contains("Created"), "{web}");
    let running = ok(d.berth().arg("ps"));
    assert!(
        running.starts_with("CONTAINER ID   IMAGE") && running.lines().count() == 1,
        "only the header: {running}"
    );
    let ids = ok(d.berth().args(["ps", "-aq"]));
    assert!(ids.lines().count() == 2 && ids.lines().all(|l| l.len() == 12), "{ids}");
    assert!(ok(d.berth().args(["ps", "-aq", "--no-trunc"])).contains(&id));
    assert_eq!(ok(d.berth().args(["ps", "-l", "--format", "{{.Names}}"])), "done");
    assert_eq!(ok(d.berth().args(["ps", "-n", "2", "--format", "{{.Names}}"])).lines().count(), 2);
    assert_eq!(
        ok(d.berth()
            .args(["ps", "-a", "--filter", "label=a=1", "--format", "{{.Names}} {{.Labels}}"])),
        "web a=1,b=2,made-by=berth-tests"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(d.berth().args(["ps", "-a", "-f", "name=web", "--format", "json"]))).unwrap();
    assert_eq!((json["Names"].as_str(), json["State"].as_str()), (Some("web"), Some("created")));
    let custom = ok(d.berth().args(["ps", "-a", "--format", "table {{.Names}}\\t{{.State}}"]));
    assert_eq!(custom.lines().next(), Some("NAMES     STATE"), "{custom}");
    assert_eq!(run(d.berth().args(["ps", "-a", "--format", "{{.Nope}}"])).code, Some(1));
    // inspect: containers, then images; -f reads the inspect JSON.
    let v: serde_json::Value = serde_json::from_str(&ok(d.berth().args(["inspect", "web"]))).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(
        ok(d.berth().args(["inspect", "-f", "{{json .Config.Labels}} {{.Config.Cmd}}", "web"])),
        r#"{"a":"1","b":"2","made-by":"berth-tests"} [sh -c echo a long command line]"#
    );
    assert_eq!(ok(d.berth().args(["inspect", "-f", "{{.State.ExitCode}}", "done"])), "0");
    assert!(ok(d.berth().args(["inspect", "-f", "{{.Id}}", "busybox"])).starts_with("sha256:"));
    assert_eq!(run(d.berth().args(["container", "inspect", "busybox"])).code, Some(1));
    let r = run(d.berth().args(["inspect", "nope"]));
    assert_eq!(
        (r.code, r.stdout.trim(), r.stderr.trim()),
        (Some(1), "[]", "Error: No such object: nope")
    );
    assert_eq!(
        ok(d.berth().args(["images", "--format", "{{.Repository}}:{{.Tag}}"])),
        "busybox:latest"
    );
    assert!(ok(d.berth().arg("images")).starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"));
}

#[test]
fn flags_shape_the_container() {
    let Some(d) = require_daemon("flags_shape_the_container") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "# settings\nFROM_FILE=f\n\nB=from-file\n").unwrap();
    let out = ok(d
        .berth()
        .args(["run", "--rm", "--env-file"])
        .arg(&env_file)
        .args(["-e", "A=1", "-e", "B=2", "-w", "/tmp", "-u", "1000:1000", "-h", "box", "busybox"])
        .args(["sh", "-c", "echo $A $B $FROM_FILE $(pwd) $(id -u):$(id -g) $(hostname)"]));
    assert_eq!(out, "1 2 f /tmp 1000:1000 box");
    assert_eq!(
        ok(d.berth().args(["run", "--rm", "--entrypoint", "echo", "busybox", "from", "echo"])),
        "from echo"
    );
    let r = run(d.berth().args(["run", "--rm", "--read-only", "busybox", "touch", "/x"]));
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
    let mounts = ok(d.berth().args([
        "run",
        "--rm",
        "--tmpfs",
        "/scratch",
        "busybox",
        "grep",
        " /scratch ",
        "/proc/mounts",
    ]));
    assert!(mounts.starts_with("tmpfs /scratch tmpfs"), "{mounts}");
    ok(d.berth()
        .args(["run", "--rm", "-v", "shared:/data", "busybox", "sh", "-c", "echo kept > /data/f"]));
    assert_eq!(
        ok(d.berth()
            .args(["run", "--rm", "-v", "shared:/data:ro", "busybox", "cat", "/data/f"])),
        "kept"
    );
    let r = run(d.berth().args([
        "run",
        "--rm",
        "--mount",
        "type=volume,source=shared,target=/d,readonly",
        "busybox",
        "touch",
        "/d/x",
    ]));
    assert_eq!(r.code, Some(1), "a read-only --mount: {r:?}");
    // What the daemon keeps of the create body.
    ok(d.berth().args([
        "create",
        "--name",
        "shaped",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--restart",
        "on-failure:2",
        "--stop-timeout",
        "3",
        "--stop-signal",
        "SIGUSR1",
        "--cap-add",
        "net_admin",
        "--cap-drop",
        "CHOWN",
        "--shm-size",
        "128m",
        "--ulimit",
        "nofile=100:200",
        "--add-host",
        "db:10.0.0.2",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--security-opt",
        "no-new-privileges",
        "--log-opt",
        "max-size=1m",
        "--network",
        "none",
        "--privileged",
        "--init",
        "busybox",
    ]));
    let hc = |field: &str| {
        ok(d.berth()
            .args(["inspect", "-f", &format!("{{{{json .HostConfig.{field}}}}}"), "shaped"]))
    };
    assert_eq!(hc("Memory"), "67108864");
    assert_eq!(hc("NanoCpus"), "500000000");
    assert_eq!(hc("PidsLimit"), "50");
    assert_eq!(hc("RestartPolicy"), r#"{"MaximumRetryCount":2,"Name":"on-failure"}"#);
    assert_eq!(hc("CapAdd"), r#"["CAP_NET_ADMIN"]"#);
    assert_eq!(hc("ShmSize"), "134217728");
    assert_eq!(hc("Ulimits"), r#"[{"Hard":200,"Name":"nofile","Soft":100}]"#);
    assert_eq!(hc("ExtraHosts"), r#"["db:10.0.0.2"]"#);
    assert_eq!(hc("LogConfig.Config"), r#"{"max-size":"1m"}"#);
    assert_eq!(hc("Init"), "true");
    assert_eq!(
        ok(d.berth()
            .args(["inspect", "-f", "{{.Config.StopTimeout}} {{.Config.StopSignal}}", "shaped"])),
        "3 SIGUSR1"
    );
}

/// A pseudo-terminal for berth: what the container's terminal prints
/// collects in `seen`.
struct Pty {
    master: std::fs::File,
    slave: std::os::fd::OwnedFd,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Pty {
    fn open(rows: u16, cols: u16) -> Pty {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let p = nix::pty::openpty(Some(&size), None).unwrap();
        let master = std::fs::File::from(p.master);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every slave descriptor is closed.
            while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            master,
            slave: p.slave,
            seen,
        }
    }

    /// `c` with the terminal as its stdin, stdout and stderr.
    fn spawn(&self, c: &mut Command) -> std::process::Child {
        let fd = |_| Stdio::from(self.slave.try_clone().unwrap());
        c.stdin(fd(0)).stdout(fd(1)).stderr(fd(2)).spawn().unwrap()
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }

    /// Waits until the terminal showed `text`.
    fn expect(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned();
            if seen.contains(text) {
                return;
            }
            assert!(Instant::now() < deadline, "{text:?} never showed; the terminal has: {seen:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn resize(&self, rows: u16, cols: u16) {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize through a pointer to a live one.
        let r = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&self.master), libc::TIOCSWINSZ, &size) };
        assert_eq!(r, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    fn settings(&self) -> nix::sys::termios::Termios {
        nix::sys::termios::tcgetattr(&self.slave).unwrap()
    }
}

/// Waits for `child` (at most 20 seconds); its exit code.
fn exit_code(child: &mut std::process::Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth did not finish in 20 seconds");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_terminal_is_raw_sized_detachable_and_restored() {
    let Some(d) = require_daemon("a_terminal_is_raw_sized_detachable_and_restored") else {
        return;
    };
    let mut pty = Pty::open(30, 100);
    let before = pty.settings();
    let mut child = pty.spawn(d.berth().args(["run", "-it", "--name", "term", "busybox", "sh"]));
    pty.type_keys(b"stty size; echo $((6 * 7))\n");
    pty.expect("30 100");
    pty.expect("42");
    // A resize reaches the container's terminal on SIGWINCH.
    pty.resize(40, 120);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGWINCH).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    pty.type_keys(b"stty size\n");
    pty.expect("40 120");
    // Keys reach the container's terminal unread: ^C interrupts its shell, not us.
    pty.type_keys(b"echo $((1 + 1))-started; sleep 30\n");
    pty.expect("2-started");
    std::thread::sleep(Duration::from_millis(300));
    pty.type_keys(b"\x03");
    pty.type_keys(b"echo after-$((2 + 2))\n");
    pty.expect("after-4");
    // ctrl-p ctrl-q leaves it running.
    pty.type_keys(b"\x10\x11");
    assert_eq!(exit_code(&mut child), Some(0), "detached");
    let after = pty.settings();
    assert_eq!(
        (before.local_flags, before.input_flags, before.output_flags),
        (after.local_flags, after.input_flags, after.output_flags),
        "the terminal is restored"
    );
    assert_eq!(ok(d.berth().args(["ps", "--format", "{{.Names}} {{.State}}"])), "term running");
    let mut child = pty.spawn(d.berth().args(["attach", "term"]));
    std::thread::sleep(Duration::from_millis(300));
    pty.type_keys(b"echo attached-again; exit 7\n");
    pty.expect("attached-again");
    assert_eq!(exit_code(&mut child), Some(7), "attach exits with the container's status");
    assert_eq!(pty.settings().local_flags, before.local_flags);
    let r = run(d.berth().args(["attach", "term"]));
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("You cannot attach to a stopped container"), "{r:?}");
}

#[test]
fn run_passes_signals_on_to_the_container() {
    let Some(d) = require_daemon("run_passes_signals_on_to_the_container") else {
        return;
    };
    let script = "trap 'echo got TERM; exit 9' TERM; echo ready; while true; do sleep 0.1; done";
    let mut child = d
        .berth()
        .args(["run", "--rm", "busybox", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(exit_code(&mut child), Some(9), "the container's trap ran and its status is ours");
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "got TERM\n");
}
