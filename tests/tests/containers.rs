//! Containers through berthd, driven by the stock docker CLI and the
//! Python docker SDK: run with output, exit codes and stdin, detached
//! containers and their logs, stop/kill/rm, the default hardening,
//! volumes, binds and tmpfs, resources, restart policies, live restore
//! after kill -9 of berthd, and bad input. Each test runs a berthd of
//! its own with busybox loaded.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{docker, eventually, inspect, ok, out, require_daemon, text};

#[test]
fn run_gives_output_exit_codes_and_stdin() {
    let Some(d) = require_daemon("run_gives_output_exit_codes_and_stdin") else {
        return;
    };
    let o = docker(&d, &["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(out(&o), "out");
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "err");
    assert_eq!(ok(d.docker().args(["ps", "-aq"])), "", "--rm leaves nothing");

    // -i: stdin reaches the container and its EOF ends it.
    let mut child = d
        .docker()
        .args(["run", "-i", "--rm", "busybox", "sh", "-c", "wc -l; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"a\nb\nc\n").unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).split_whitespace().collect::<Vec<_>>(),
        ["3", "done"]
    );

    // -t: a terminal inside, output raw (CR LF from the terminal).
    let o = docker(&d, &["run", "-t", "--rm", "busybox", "sh", "-c", "tty; test -t 1 && echo isatty"]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("/dev/pts/0\r\n") && s.contains("isatty"), "{s:?}");

    // -it under a real terminal (script(1) gives the CLI one).
    let o = Command::new("script")
        .args(["-qec", "docker run -it --rm busybox sh -c 'stty size; exit 5'", "/dev/null"])
        .env("DOCKER_HOST", d.host())
        .env("COLUMNS", "100")
        .env("LINES", "30")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));

    // A missing command is 127, as docker's CLI reports it.
    let o = docker(&d, &["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o));
    assert!(text(&o).contains("executable file not found"), "{}", text(&o));
    eventually(5, "the failed --rm container removed", || {
        ok(d.docker().args(["ps", "-aq"])).is_empty()
    });
}

#[test]
fn detached_containers_log_stop_and_remove() {
    let Some(d) = require_daemon("detached_containers_log_stop_and_remove") else {
        return;
    };
    let id = ok(d.docker().args([
        "run",
        "-d",
        "--name",
        "ticker",
        "--stop-timeout",
        "1",
        "busybox",
        "sh",
        "-c",
        "trap 'echo bye; exit 7' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]));
    assert_eq!(id.len(), 64);
    eventually(10, "three ticks", || ok(d.docker().args(["logs", "ticker"])).lines().count() >= 3);
    assert_eq!(ok(d.docker().args(["logs", "--tail", "1", "ticker"])).lines().count(), 1);
    let stamped = ok(d.docker().args(["logs", "-t", "ticker"]));
    assert!(stamped.lines().next().unwrap().contains("Z tick 0"), "{stamped}");
    let ps = ok(d.docker().args(["ps", "--format", "{{.Names}} {{.Status}}"]));
    assert!(ps.starts_with("ticker Up"), "{ps}");

    // Busy: no second container by that name, no removal while running.
    let o = docker(&d, &["run", "-d", "--name", "ticker", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o).contains("is already in use"), "{}", text(&o));
    let o = docker(&d, &["rm", "ticker"]);
    assert!(
        !o.status.success() && text(&o).contains("stop the container before removing"),
        "{}",
        text(&o)
    );

    // logs -f follows until the container stops.
    let follower = d.docker().args(["logs", "-f", "ticker"]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    ok(d.docker().args(["stop", "ticker"]));
    let followed = follower.wait_with_output().unwrap();
    let followed = String::from_utf8_lossy(&followed.stdout);
    assert!(followed.trim_end().ends_with("bye"), "logs -f ends with the last line: {followed}");
    assert_eq!(inspect(&d, "ticker", "{{.State.Status}} {{.State.ExitCode}}"), "exited 7");
    let ps = ok(d.docker().args(["ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"]));
    assert_eq!(ps, "ticker");
    assert_eq!(ok(d.docker().args(["ps", "-q"])), "", "nothing runs");

    // Restart, kill with a signal, rename, wait, remove.
    ok(d.docker().args(["start", "ticker"]));
    assert_eq!(inspect(&d, "ticker", "{{.State.Running}}"), "true");
    ok(d.docker().args(["rename", "ticker", "clock"]));
    ok(d.docker().args(["kill", "-s", "KILL", "clock"]));
    assert_eq!(ok(d.docker().args(["wait", "clock"])), "137");
    let o = docker(&d, &["kill", "clock"]);
    assert!(!o.status.success() && text(&o).contains("is not running"), "{}", text(&o));
    ok(d.docker().args(["rm", "clock"]));
    let o = docker(&d, &["inspect", "clock"]);
    assert!(!o.status.success() && text(&o).contains("No such"), "{}", text(&o));
    // The container's layer went with it.
    let layers = std::fs::read_dir(d.data_root().join("fuse-union"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(&id))
        .count();
    assert_eq!(layers, 0);

    // rm -f stops a running one; prune removes stopped ones.
    ok(d.docker().args(["run", "-d", "--name", "sleeper", "busybox", "sleep", "100"]));
    ok(d.docker().args(["run", "--name", "done", "busybox", "true"]));
    ok(d.docker().args(["rm", "-f", "sleeper"]));
    let pruned = ok(d.docker().args(["container", "prune", "-f"]));
    assert!(pruned.contains("Deleted Containers"), "{pruned}");
    assert_eq!(ok(d.docker().args(["ps", "-aq"])), "");
}

#[test]
fn exec_runs_in_the_container_with_and_without_a_terminal() {
    let Some(d) = require_daemon("exec_runs_in_the_container_with_and_without_a_terminal") else {
        return;
    };
    ok(d.docker()
        .args(["run", "-d", "--name", "box", "-e", "FROM=container", "busybox", "sleep", "100"]));
    let o = docker(&d, &["exec", "box", "sh", "-c", "echo $FROM; echo err >&2; exit 4"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(out(&o), "container");
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "err");
    // The exec shares the container's namespaces: it sees its init.
    assert_eq!(ok(d.docker().args(["exec", "box", "cat", "/proc/1/comm"])), "sleep");
    let o = docker(
        &d,
        &[
            "exec",
            "-u",
            "1000:1000",
            "-w",
            "/tmp",
            "-e",
            "FROM=exec",
            "box",
            "sh",
            "-c",
            "id -u; pwd; echo $FROM; grep -E '^(CapEff|Seccomp):' /proc/self/status",
        ],
    );
    assert_eq!(out(&o), "1000\n/tmp\nexec\nCapEff:\t0000000000000000\nSeccomp:\t2", "{}", text(&o));
    let mut child = d
        .docker()
        .args(["exec", "-i", "box", "wc", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"12345").unwrap();
    drop(child.stdin.take());
    assert_eq!(String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).trim(), "5");
    let o = docker(&d, &["exec", "-t", "box", "tty"]);
    assert_eq!(out(&o), "/dev/pts/0", "{}", text(&o));
    let o = Command::new("script")
        .args([
            "-qec",
            "stty rows 31 cols 101; docker exec -it box sh -c 'sleep 0.5; stty size; exit 6'",
            "/dev/null",
        ])
        .env("DOCKER_HOST", d.host())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("31 101"),
        "the terminal's size reaches the exec (by resize after start, at API 1.41): {}",
        text(&o)
    );
    ok(d.docker().args(["exec", "-d", "box", "sh", "-c", "echo hi > /tmp/detached"]));
    eventually(5, "the detached exec's file", || {
        docker(&d, &["exec", "box", "cat", "/tmp/detached"]).stdout == b"hi\n"
    });
    let o = docker(&d, &["exec", "box", "no-such-command"]);
    assert!(
        !o.status.success() && text(&o).contains("executable file not found"),
        "{}",
        text(&o)
    );
    ok(d.docker().args(["stop", "-t", "0", "box"]));
    let o = docker(&d, &["exec", "box", "true"]);
    assert!(!o.status.success() && text(&o).contains("is not running"), "{}", text(&o));
    // Exec instances go with their container.
    let exec_id = inspect(&d, "box", "{{index .ExecIDs 0}}");
    ok(d.docker().args(["rm", "box"]));
    let a = berth_core::client::request(&d.socket(), "GET", &format!("/v1.41/exec/{exec_id}/json"), None).unwrap();
    assert_eq!(a.status, 404);
}

#[test]
fn pause_freezes_and_top_lists_the_processes() {
    let Some(d) = require_daemon("pause_freezes_and_top_lists_the_processes") else {
        return;
    };
    ok(d.docker().args([
        "run",
        "-d",
        "--name",
        "busy",
        "busybox",
        "sh",
        "-c",
        "while true; do echo x; sleep 0.05; done",
    ]));
    let top = ok(d.docker().args(["top", "busy"]));
    assert!(top.starts_with("UID") && top.contains("while true"), "{top}");
    ok(d.docker().args(["pause", "busy"]));
    assert_eq!(inspect(&d, "busy", "{{.State.Status}} {{.State.Paused}}"), "paused true");
    let lines = || ok(d.docker().args(["logs", "busy"])).lines().count();
    let before = lines();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(lines(), before, "a paused container writes nothing");
    let o = docker(&d, &["pause", "busy"]);
    assert!(!o.status.success() && text(&o).contains("already paused"), "{}", text(&o));
    ok(d.docker().args(["unpause", "busy"]));
    eventually(5, "output again", || lines() > before);
    // A paused container is killed all the same.
    ok(d.docker().args(["pause", "busy"]));
    ok(d.docker().args(["rm", "-f", "busy"]));
}

#[test]
fn init_reaps_orphans_and_passes_signals_on() {
    let Some(d) = require_daemon("init_reaps_orphans_and_passes_signals_on") else {
        return;
    };
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--init",
            "busybox",
            "sh",
            "-c",
            "cat /proc/1/comm; echo $$; (sleep 0.1 &); sleep 1; ps -o stat,comm | grep -c '^Z' ; exit 3",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(
        out(&o),
        "berth-init\n2\n0",
        "PID 1 is the init, the command its child, no zombie left"
    );
    // A command as PID 1 ignores SIGTERM (it has no handler); under the
    // init it gets it and ends.
    ok(d.docker()
        .args(["run", "-d", "--init", "--name", "term", "busybox", "sleep", "100"]));
    let started = Instant::now();
    ok(d.docker().args(["stop", "-t", "5", "term"]));
    assert!(started.elapsed() < Duration::from_secs(4), "stopped by SIGTERM, not the timeout");
    assert_eq!(inspect(&d, "term", "{{.State.ExitCode}}"), "143");
    let o = docker(&d, &["run", "--rm", "--init", "busybox", "no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o));
}

#[test]
fn containers_get_the_default_hardening() {
    let Some(d) = require_daemon("containers_get_the_default_hardening") else {
        return;
    };
    let script = "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; \
                  unshare -n true 2>/dev/null && echo unshare-allowed; \
                  mount -t tmpfs t /mnt 2>/dev/null && echo mount-allowed; \
                  echo 1 > /proc/sys/kernel/panic 2>/dev/null && echo procsys-writable; \
                  wc -c < /proc/timer_list; hostname; cat /etc/hostname";
    let o = docker(&d, &["run", "--rm", "--name", "hard", "busybox", "sh", "-c", script]);
    let s = out(&o);
    // Docker's 14 default capabilities.
    assert!(s.contains("CapEff:\t00000000a80425fb"), "{s}");
    assert!(s.contains("CapBnd:\t00000000a80425fb"), "{s}");
    assert!(s.contains("Seccomp:\t2"), "seccomp filter installed: {s}");
    assert!(s.contains("NoNewPrivs:\t0"), "{s}");
    for bad in ["unshare-allowed", "mount-allowed", "procsys-writable"] {
        assert!(!s.contains(bad), "{bad}: {s}");
    }
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(
        lines[lines.len() - 3],
        "0",
        "/proc/timer_list is masked (the host's is not empty): {s}"
    );
    assert_eq!(lines[lines.len() - 2], lines[lines.len() - 1], "hostname matches /etc/hostname");
    // Added capabilities and unconfined seccomp change that, as in Docker.
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
            "busybox",
            "sh",
            "-c",
            "unshare -n true && echo ok",
        ],
    );
    assert_eq!(out(&o), "ok", "{}", text(&o));
    let o = docker(
        &d,
        &["run", "--rm", "--cap-drop", "ALL", "busybox", "grep", "CapEff", "/proc/self/status"],
    );
    assert_eq!(out(&o), "CapEff:\t0000000000000000");
    // Loopback is up in the container's own network namespace (with
    // nothing else under `none`, eth0 on the default bridge); host
    // networking sees the host's interfaces (berthd's namespace here).
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "ping -c1 -W2 127.0.0.1 >/dev/null && echo lo-up; ls /sys/class/net",
        ],
    );
    assert_eq!(out(&o), "lo-up\nlo", "{}", text(&o));
    let o = docker(&d, &["run", "--rm", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(out(&o), "eth0\nlo", "{}", text(&o));
    let host_links = ok(d.on_host("ip").args(["-o", "link"])).lines().count();
    let o = docker(&d, &["run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(out(&o).lines().count(), host_links, "{}", text(&o));
    assert!(
        std::fs::read_dir(d.exec_root().join("netns")).unwrap().next().is_none(),
        "namespaces are released"
    );
}

#[test]
fn volumes_binds_and_tmpfs() {
    let Some(d) = require_daemon("volumes_binds_and_tmpfs") else {
        return;
    };
    ok(d.docker()
        .args(["run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f"]));
    assert_eq!(
        ok(d.docker().args(["run", "--rm", "-v", "data:/data:ro", "busybox", "cat", "/data/f"])),
        "kept"
    );
    let o = docker(&d, &["run", "--rm", "-v", "data:/data:ro", "busybox", "touch", "/data/g"]);
    assert!(!o.status.success(), "a read-only volume refuses writes");
    // In use: not removable.
    ok(d.docker()
        .args(["run", "-d", "--name", "user", "-v", "data:/data", "busybox", "sleep", "100"]));
    let o = docker(&d, &["volume", "rm", "data"]);
    assert!(!o.status.success() && text(&o).contains("in use"), "{}", text(&o));
    ok(d.docker().args(["rm", "-f", "user"]));
    ok(d.docker().args(["volume", "rm", "data"]));

    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in"), "from host").unwrap();
    let bind = format!("{}:/h", host.path().display());
    assert_eq!(
        ok(d.docker()
            .args(["run", "--rm", "-v", &bind, "busybox", "sh", "-c", "cat /h/in; echo back > /h/out"])),
        "from host"
    );
    assert_eq!(std::fs::read_to_string(host.path().join("out")).unwrap(), "back\n");
    let mount = format!("type=bind,source={},target=/h,readonly", host.path().display());
    let o = docker(&d, &["run", "--rm", "--mount", &mount, "busybox", "touch", "/h/x"]);
    assert!(!o.status.success() && !host.path().join("x").exists());
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--mount",
            "type=bind,source=/no/such/dir,target=/h",
            "busybox",
            "true",
        ],
    );
    assert!(!o.status.success() && text(&o).contains("/no/such/dir"), "{}", text(&o));

    let o = docker(&d, &["run", "--rm", "--tmpfs", "/scratch:size=1m", "--read-only", "busybox", "sh", "-c",
        "grep ' /scratch ' /proc/mounts | cut -d' ' -f3; echo x > /scratch/f && echo tmpfs-writable; touch /rootfile 2>/dev/null || echo root-read-only"]);
    assert_eq!(out(&o), "tmpfs\ntmpfs-writable\nroot-read-only", "{}", text(&o));

    // An anonymous volume from --mount goes with rm -v.
    ok(d.docker().args([
        "run",
        "--name",
        "anon",
        "--mount",
        "type=volume,target=/v",
        "busybox",
        "touch",
        "/v/x",
    ]));
    let name = inspect(&d, "anon", "{{range .Mounts}}{{.Name}}{{end}}");
    assert_eq!(name.len(), 64, "{name}");
    assert!(ok(d.docker().args(["volume", "ls", "-q"])).contains(&name));
    ok(d.docker().args(["rm", "-v", "anon"]));
    assert!(!ok(d.docker().args(["volume", "ls", "-q"])).contains(&name));
}

#[test]
fn resources_reach_the_cgroup() {
    let Some(d) = require_daemon("resources_reach_the_cgroup") else {
        return;
    };
    let id = ok(d.docker().args([
        "run",
        "-d",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "20",
        "busybox",
        "sleep",
        "100",
    ]));
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let (mem, pids, cpu) = if v2 {
        (
            format!("/sys/fs/cgroup/berth/{id}/memory.max"),
            format!("/sys/fs/cgroup/berth/{id}/pids.max"),
            format!("/sys/fs/cgroup/berth/{id}/cpu.max"),
        )
    } else {
        (
            format!("/sys/fs/cgroup/memory/berth/{id}/memory.limit_in_bytes"),
            format!("/sys/fs/cgroup/pids/berth/{id}/pids.max"),
            format!("/sys/fs/cgroup/cpu/berth/{id}/cpu.cfs_quota_us"),
        )
    };
    assert_eq!(std::fs::read_to_string(&mem).unwrap().trim(), "67108864");
    assert_eq!(std::fs::read_to_string(&pids).unwrap().trim(), "20");
    let cpu_file = cpu;
    let cpu = std::fs::read_to_string(&cpu_file).unwrap();
    assert!(cpu.starts_with("50000"), "{cpu}");
    // docker update changes them in place.
    ok(d.docker().args([
        "update",
        "--memory",
        "48m",
        "--memory-swap",
        "96m",
        "--pids-limit",
        "30",
        "--cpus",
        "0.25",
        &id,
    ]));
    assert_eq!(std::fs::read_to_string(&mem).unwrap().trim(), "50331648");
    assert_eq!(std::fs::read_to_string(&pids).unwrap().trim(), "30");
    assert!(std::fs::read_to_string(&cpu_file).unwrap().starts_with("25000"));
    assert_eq!(inspect(&d, &id, "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}"), "50331648 30");
    ok(d.docker().args(["update", "--restart", "on-failure:3", &id]));
    assert_eq!(
        inspect(
            &d,
            &id,
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure 3"
    );
    ok(d.docker().args(["rm", "-f", &id]));
    assert!(!std::path::Path::new(&mem).exists(), "the cgroup goes with the container");
}

#[test]
fn restart_policies_are_followed() {
    let Some(d) = require_daemon("restart_policies_are_followed") else {
        return;
    };
    ok(d.docker().args([
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]));
    eventually(20, "two restarts then exited", || {
        inspect(&d, "flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    });
    ok(d.docker().args([
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
    ]));
    eventually(20, "restarted", || {
        inspect(&d, "always", "{{.RestartCount}}").parse::<u32>().unwrap() >= 2
    });
    ok(d.docker().args(["stop", "-t", "0", "always"]));
    let count = inspect(&d, "always", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        inspect(&d, "always", "{{.RestartCount}} {{.State.Status}}"),
        format!("{count} exited"),
        "a stopped container stays stopped"
    );
    let o = docker(&d, &["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
}

#[test]
fn containers_survive_kill_9_of_berthd() {
    let Some(mut d) = require_daemon("containers_survive_kill_9_of_berthd") else {
        return;
    };
    ok(d.docker().args([
        "run",
        "-d",
        "--name",
        "long",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo n $i; i=$((i+1)); sleep 0.1; done",
    ]));
    ok(d.docker()
        .args(["run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 1; exit 4"]));
    let pid = inspect(&d, "long", "{{.State.Pid}}");
    d.restart().unwrap();
    assert_eq!(
        inspect(&d, "long", "{{.State.Status}} {{.State.Pid}}"),
        format!("running {pid}"),
        "still running, same process"
    );
    let before = ok(d.docker().args(["logs", "long"])).lines().count();
    eventually(10, "more output after the restart", || {
        ok(d.docker().args(["logs", "long"])).lines().count() > before + 3
    });
    // The one that ended while berthd was away (or after) is recorded.
    eventually(10, "short exited", || {
        inspect(&d, "short", "{{.State.Status}} {{.State.ExitCode}}") == "exited 4"
    });
    // A second crash while nothing changed, then stop and remove as usual.
    d.restart().unwrap();
    ok(d.docker().args(["stop", "-t", "1", "long"]));
    assert_eq!(inspect(&d, "long", "{{.State.Status}}"), "exited");
    ok(d.docker().args(["rm", "long", "short"]));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&d.data_root().display().to_string()), "no mount left: {mounts}");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let Some(d) = require_daemon("bad_input_is_refused_and_changes_nothing") else {
        return;
    };
    let o = docker(&d, &["run", "--rm", "--pull", "never", "no-such-image", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(text(&o).contains("No such image"), "{}", text(&o));
    let o = docker(&d, &["run", "--name", "bad/name", "busybox", "true"]);
    assert!(!o.status.success() && text(&o).contains("Invalid container name"), "{}", text(&o));
    let o = docker(&d, &["run", "-w", "relative", "busybox", "true"]);
    assert!(!o.status.success(), "{}", text(&o));
    let o = docker(&d, &["create", "--restart", "sometimes", "busybox", "true"]);
    assert!(!o.status.success() && text(&o).contains("restart policy"), "{}", text(&o));
    // Malformed JSON straight to the API.
    let a = berth_core::client::request(&d.socket(), "POST", "/v1.41/containers/create", Some(b"{not json")).unwrap();
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
    assert!(String::from_utf8_lossy(&a.body).contains("invalid JSON"));
    let a = berth_core::client::request(
        &d.socket(),
        "POST",
        "/v1.41/containers/create",
        Some(br#"{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": ["x"]}}"#),
    )
    .unwrap();
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
    let a = berth_core::client::request(&d.socket(), "POST", "/v1.41/containers/nope/start", None).unwrap();
    assert_eq!(a.status, 404);
    // No container and no volume left by the above.
    assert_eq!(ok(d.docker().args(["ps", "-aq"])), "");
    assert_eq!(ok(d.docker().args(["volume", "ls", "-q"])), "");
    // An image in use is not removed.
    ok(d.docker().args(["create", "--name", "holder", "busybox", "true"]));
    let o = docker(&d, &["rmi", "busybox"]);
    assert!(!o.status.success() && text(&o).contains("is using"), "{}", text(&o));
    // A client that hangs up mid-attach leaves the container running.
    ok(d.docker().args([
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "while true; do echo x; sleep 0.05; done",
    ]));
    let mut attached = d.docker().args(["attach", "talker"]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    attached.kill().unwrap();
    let _ = attached.wait();
    assert_eq!(inspect(&d, "talker", "{{.State.Running}}"), "true");
    ok(d.docker().args(["version"]));
}

#[test]
fn python_sdk_runs_containers() {
    let Some(d) = require_daemon("python_sdk_runs_containers") else {
        return;
    };
    let script = format!(
        r#"
import docker
c = docker.DockerClient(base_url='{}')
assert c.containers.run('busybox', ['echo', 'hi from python'], remove=True) == b'hi from python\n'
k = c.containers.run('busybox', ['sh', '-c', 'echo started; sleep 100'], detach=True, name='pyc', environment={{'A': 'b'}}, labels={{'team': 'x'}})
import time
for _ in range(100):
    if b'started' in k.logs():
        break
    time.sleep(0.05)
assert k.logs() == b'started\n', k.logs()
k.reload()
assert k.status == 'running', k.status
assert 'A=b' in k.attrs['Config']['Env']
assert [x.name for x in c.containers.list(filters={{'label': 'team=x'}})] == ['pyc']
since = int(time.time()) - 1
code, output = k.exec_run(['sh', '-c', 'echo $A; exit 3'])
assert (code, output) == (3, b'b\n'), (code, output)
assert any('sleep' in ' '.join(p) for p in k.top()['Processes']), k.top()
s = k.stats(stream=False)
assert s['pids_stats']['current'] >= 1 and s['memory_stats']['usage'] > 0, s
k.pause(); k.reload(); assert k.status == 'paused', k.status
k.unpause(); k.reload(); assert k.status == 'running', k.status
bits, stat = k.get_archive('/etc/passwd')
assert stat['name'] == 'passwd' and b''.join(bits)[:512].startswith(b'passwd'), stat
k.rename('pyc2'); k.reload(); assert k.name == 'pyc2', k.name
k.update(mem_limit='64m'); k.reload(); assert k.attrs['HostConfig']['Memory'] == 64 << 20
k.kill()
assert k.wait()['StatusCode'] == 137
k.remove()
acts = [e['Action'] for e in c.events(since=since, until=int(time.time()) + 1, decode=True, filters={{'type': 'container'}})]
assert 'pause' in acts and 'rename' in acts and 'destroy' in acts, acts
try:
    c.containers.get('pyc2')
    raise SystemExit('still there')
except docker.errors.NotFound:
    pass
try:
    c.containers.run('busybox', ['sh', '-c', 'exit 2'], remove=True)
    raise SystemExit('no error')
except docker.errors.ContainerError as e:
    assert e.exit_status == 2
print('ok')
"#,
        d.host()
    );
    let o = Command::new("python3").arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(out(&o), "ok");
}

#[test]
fn events_disk_usage_and_volume_prune() {
    let Some(d) = require_daemon("events_disk_usage_and_volume_prune") else {
        return;
    };
    let since = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1
    );
    // Live events, seen by a client listening while things happen.
    let mut live = d
        .docker()
        .args([
            "events",
            "--filter",
            "type=container",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let o = docker(&d, &["run", "--name", "evt", "-v", "kept:/k", "busybox", "sh", "-c", "exit 2"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    ok(d.docker().args(["volume", "create", "loose"]));
    let df = ok(d
        .docker()
        .args(["system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"]));
    assert!(df.contains("Containers 1 0"), "{df}");
    assert!(df.contains("Local Volumes 2 1"), "{df}");
    // Prune leaves the volume a container uses.
    let pruned = ok(d.docker().args(["volume", "prune", "-f"]));
    assert!(pruned.contains("loose") && !pruned.contains("kept"), "{pruned}");
    ok(d.docker().args(["rm", "evt"]));
    let until = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1
    );
    let past = ok(d
        .docker()
        .args(["events", "--since", &since, "--until", &until, "--format", "{{.Type}} {{.Action}}"]));
    let seen: Vec<&str> = past.lines().collect();
    for want in [
        "container create",
        "container start",
        "container die",
        "container destroy",
        "volume create",
        "volume destroy",
    ] {
        assert!(seen.contains(&want), "{want} in {past}");
    }
    let pos = |w: &str| seen.iter().position(|l| *l == w).unwrap();
    assert!(
        pos("container create") < pos("container start")
            && pos("container start") < pos("container die")
            && pos("container die") < pos("container destroy"),
        "{past}"
    );
    let die = ok(d.docker().args([
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.exitCode}}",
    ]));
    assert_eq!(die, "2");
    live.kill().unwrap();
    let got = String::from_utf8_lossy(&live.wait_with_output().unwrap().stdout).to_string();
    assert!(
        got.contains("create evt") && got.contains("die evt") && got.contains("destroy evt"),
        "{got}"
    );
}

#[test]
fn stats_cp_and_export() {
    let Some(d) = require_daemon("stats_cp_and_export") else { return };
    ok(d.docker().args([
        "run",
        "-d",
        "--name",
        "files",
        "--memory",
        "32m",
        "busybox",
        "sh",
        "-c",
        "echo inside > /tmp/f; ln -s /etc/passwd /tmp/link; while true; do :; done",
    ]));
    let s = ok(d
        .docker()
        .args(["stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}"]));
    let fields: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(fields[0], "files", "{s}");
    let cpu: f64 = fields[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 20.0, "a busy loop shows CPU use: {s}");
    assert!(s.contains("/ 32MiB"), "the memory limit: {s}");
    assert_eq!(fields.last().unwrap(), &"1", "{s}");

    let host = tempfile::tempdir().unwrap();
    eventually(5, "the file", || docker(&d, &["exec", "files", "cat", "/tmp/f"]).status.success());
    ok(d.docker().args(["cp", "files:/tmp/f"]).arg(host.path()));
    assert_eq!(std::fs::read_to_string(host.path().join("f")).unwrap(), "inside\n");
    // A symlink in the container is copied as a link, not followed to the host.
    ok(d.docker().args(["cp", "files:/tmp/link"]).arg(host.path()));
    assert_eq!(
        std::fs::read_link(host.path().join("link")).unwrap(),
        std::path::Path::new("/etc/passwd")
    );
    ok(d.docker().args(["cp", "files:/bin"]).arg(host.path().join("bin")));
    assert!(host.path().join("bin/busybox").is_file());
    std::fs::write(host.path().join("in"), "from host").unwrap();
    ok(d.docker().arg("cp").arg(host.path().join("in")).arg("files:/tmp/"));
    assert_eq!(ok(d.docker().args(["exec", "files", "cat", "/tmp/in"])), "from host");
    // Into a directory reached through a symlink: followed inside the
    // container's root, never to the host's directory of that name.
    ok(d.docker()
        .args(["exec", "files", "sh", "-c", "mkdir -p /srv/real && ln -s /srv/real /srv/via"]));
    let marker = format!("berth-cp-{}", std::process::id());
    std::fs::write(host.path().join(&marker), "x").unwrap();
    ok(d.docker().arg("cp").arg(host.path().join(&marker)).arg("files:/srv/via"));
    assert_eq!(ok(d.docker().args(["exec", "files", "ls", "/srv/real"])), marker);
    // Out through a symlink to an absolute directory: the container's, not
    // the host's (which has os-release; the image does not).
    ok(d.docker().args(["exec", "files", "ln", "-s", "/etc", "/tmp/etclink"]));
    let out_dir = host.path().join("etc-out");
    ok(d.docker().args(["cp", "files:/tmp/etclink/."]).arg(&out_dir));
    assert!(out_dir.join("passwd").exists(), "the container's /etc");
    assert!(
        std::path::Path::new("/etc/os-release").exists() && !out_dir.join("os-release").exists(),
        "never the host's /etc"
    );
    // Paths under a volume are the volume's, as the container sees them.
    ok(d.docker().args([
        "run",
        "-d",
        "--name",
        "withvol",
        "-v",
        "cpvol:/data",
        "-v",
        "cpro:/ro:ro",
        "busybox",
        "sleep",
        "100",
    ]));
    ok(d.docker().arg("cp").arg(host.path().join("in")).arg("withvol:/data/"));
    assert_eq!(ok(d.docker().args(["exec", "withvol", "cat", "/data/in"])), "from host");
    ok(d.docker().args(["exec", "withvol", "sh", "-c", "echo vol > /data/v"]));
    ok(d.docker().args(["cp", "withvol:/data/v"]).arg(host.path().join("v")));
    assert_eq!(std::fs::read_to_string(host.path().join("v")).unwrap(), "vol\n");
    let o = d
        .docker()
        .arg("cp")
        .arg(host.path().join("in"))
        .arg("withvol:/ro/")
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("read-only"), "{}", text(&o));
    ok(d.docker().args(["rm", "-f", "withvol"]));
    let o = docker(&d, &["cp", "files:/no/such", "/tmp"]);
    assert!(!o.status.success() && text(&o).contains("Could not find"), "{}", text(&o));

    let tarball = host.path().join("export.tar");
    ok(d.docker().args(["export", "-o"]).arg(&tarball).arg("files"));
    let list = ok(Command::new("tar").arg("-tf").arg(&tarball));
    assert!(list.lines().any(|l| l.trim_start_matches("./") == "bin/busybox"), "{list}");
    assert!(
        list.lines().any(|l| l.trim_start_matches("./") == "tmp/f"),
        "the container's own files: {list}"
    );
    ok(d.docker().args(["rm", "-f", "files"]));
}

#[test]
fn docker_compose_runs_a_project() {
    let Some(d) = require_daemon("docker_compose_runs_a_project") else {
        return;
    };
    let project = tempfile::tempdir().unwrap();
    // On the project's default network: job reaches web by its name.
    std::fs::write(
        project.path().join("docker-compose.yml"),
        r#"version: "3.7"
services:
  web:
    image: busybox
    command: sh -c "echo $$ROLE > /data/role; echo web up; exec httpd -f -p 8000 -h /data"
    init: true
    environment:
      - ROLE=frontend
    volumes:
      - data:/data
    labels:
      tier: front
  job:
    image: busybox
    command: sh -c "until wget -qO- http://web:8000/role; do sleep 0.2; done; echo job done"
volumes:
  data:
"#,
    )
    .unwrap();
    let compose = |args: &[&str]| {
        let mut c = Command::new("docker-compose");
        c.current_dir(project.path())
            .env("DOCKER_HOST", d.host())
            .env("COMPOSE_PROJECT_NAME", "berthtest")
            .args(args)
            .stdin(Stdio::null());
        c
    };
    ok(&mut compose(&["up", "-d"]));
    eventually(10, "web's file", || {
        compose(&["exec", "-T", "web", "cat", "/data/role"]).output().unwrap().stdout == b"frontend\n"
    });
    eventually(20, "job to reach web and end", || {
        String::from_utf8_lossy(&compose(&["ps"]).output().unwrap().stdout).contains("Exit 0")
    });
    let ps = ok(&mut compose(&["ps"]));
    assert!(ps.contains("berthtest_web_1") && ps.contains("Up"), "{ps}");
    assert!(ps.contains("berthtest_job_1") && ps.contains("Exit 0"), "{ps}");
    let logs = ok(&mut compose(&["logs", "--no-color"]));
    assert!(
        logs.contains("web up") && logs.contains("frontend") && logs.contains("job done"),
        "{logs}"
    );
    assert_eq!(
        ok(d.docker().args(["ps", "--filter", "label=tier=front", "--format", "{{.Names}}"])),
        "berthtest_web_1"
    );
    ok(&mut compose(&["down", "-v"]));
    assert_eq!(ok(d.docker().args(["ps", "-aq"])), "");
    assert_eq!(
        ok(d.docker().args(["network", "ls", "--format", "{{.Name}}"])),
        "bridge\nhost\nnone",
        "the project's network goes with it"
    );
    assert_eq!(ok(d.docker().args(["volume", "ls", "-q"])), "");
}

#[test]
fn image_volumes_become_anonymous_volumes() {
    let Some(d) = require_daemon("image_volumes_become_anonymous_volumes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    berth_tests::busybox_rootfs(&rootfs).unwrap();
    let tarball = dir.path().join("rootfs.tar");
    ok(Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tarball).arg("."));
    ok(d.docker()
        .arg("import")
        .args([
            "--change",
            "VOLUME /data",
            "--change",
            "ENV MODE=imported",
            "--change",
            r#"CMD ["sh", "-c", "echo $MODE > /data/x; ls /data"]"#,
        ])
        .arg(&tarball)
        .arg("withvol:1"));
    assert_eq!(
        inspect(&d, "withvol:1", "{{json .Config.Volumes}} {{.Config.Env}}"),
        r#"{"/data":{}} [MODE=imported]"#
    );
    let o = docker(&d, &["run", "--name", "v1", "withvol:1"]);
    assert_eq!(out(&o), "x", "{}", text(&o));
    let name = inspect(&d, "v1", "{{range .Mounts}}{{.Name}} {{.Destination}}{{end}}");
    let (vol, dest) = name.split_once(' ').unwrap();
    assert_eq!((vol.len(), dest), (64, "/data"));
    // -v over the same path takes its place.
    let o = docker(&d, &["run", "--rm", "-v", "named:/data", "withvol:1"]);
    assert_eq!(out(&o), "x", "{}", text(&o));
    assert!(ok(d.docker().args(["volume", "ls", "-q"])).lines().any(|l| l == "named"));
    ok(d.docker().args(["rm", "-v", "v1"]));
    let left = ok(d.docker().args(["volume", "ls", "-q"]));
    assert!(!left.contains(vol), "rm -v removes the anonymous volume: {left}");
    let o = docker(&d, &["import", "--change", "RUN make", "-"]);
    assert!(!o.status.success(), "{}", text(&o));
}

#[test]
fn berthd_start_removes_what_a_crash_left() {
    let Some(mut d) = require_daemon("berthd_start_removes_what_a_crash_left") else {
        return;
    };
    let id = ok(d.docker().args(["create", "--name", "kept", "busybox", "true"]));
    // A writable layer whose create never wrote its record, as a crash
    // between the two leaves it.
    let graph = d.data_root().join("fuse-union");
    let orphan = "f".repeat(64);
    ok(Command::new("cp").arg("-a").arg(graph.join(&id)).arg(graph.join(&orphan)));
    d.restart().unwrap();
    assert!(!graph.join(&orphan).exists(), "the orphaned layer is removed");
    assert!(graph.join(&id).exists(), "the container's layer stays");
    ok(d.docker().args(["start", "-a", "kept"]));
    ok(d.docker().args(["rm", "kept"]));
}

#[test]
fn detach_keys_end_an_attachment_not_the_container() {
    use std::io::{Read, Write};
    let Some(d) = require_daemon("detach_keys_end_an_attachment_not_the_container") else {
        return;
    };
    let id = ok(d.docker().args(["run", "-dit", "--name", "tty", "busybox", "sh"]));
    let attach = |query: &str| {
        let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "POST /v1.41/containers/{id}/attach?stream=1&stdin=1&stdout=1{query} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n").unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        assert!(
            String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        s
    };
    // ctrl-p ctrl-q by default: the server ends the stream.
    let mut s = attach("");
    s.write_all(b"echo one\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"\x10\x11").unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("the attachment ends");
    assert!(String::from_utf8_lossy(&rest).contains("one"), "{}", String::from_utf8_lossy(&rest));
    assert_eq!(inspect(&d, "tty", "{{.State.Running}}"), "true", "the container runs on");
    // Keys of one's own.
    let mut s = attach("&detachKeys=ctrl-x");
    s.write_all(b"\x18").unwrap();
    s.read_to_end(&mut Vec::new()).expect("the attachment ends");
    assert_eq!(inspect(&d, "tty", "{{.State.Running}}"), "true");
    let a = berth_core::client::request(
        &d.socket(),
        "POST",
        &format!("/v1.41/containers/{id}/attach?stream=1&stdin=1&detachKeys=ctrl-"),
        None,
    )
    .unwrap();
    assert_eq!(a.status, 400);
    ok(d.docker().args(["rm", "-f", "tty"]));
}

#[test]
fn logs_rotate_and_local_volumes_take_mount_options() {
    let Some(d) = require_daemon("logs_rotate_and_local_volumes_take_mount_options") else {
        return;
    };
    let o = docker(
        &d,
        &[
            "run",
            "--name",
            "chatty",
            "--log-opt",
            "max-size=2k",
            "--log-opt",
            "max-file=2",
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); done",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let id = inspect(&d, "chatty", "{{.Id}}");
    let dir = d.data_root().join("containers").join(&id);
    let log = dir.join(format!("{id}-json.log"));
    assert!(std::fs::metadata(&log).unwrap().len() <= 2048);
    assert!(
        dir.join(format!("{id}-json.log.1")).exists() && !dir.join(format!("{id}-json.log.2")).exists(),
        "two files kept"
    );
    let logs = ok(d.docker().args(["logs", "chatty"]));
    assert_eq!(logs.lines().last(), Some("line 399"));
    let first: usize = logs.lines().next().unwrap()[5..].parse().unwrap();
    assert!(
        first > 0 && logs.lines().count() == 400 - first,
        "the oldest lines rotated away, none lost after them"
    );
    let o = docker(&d, &["run", "--rm", "--log-opt", "max-file=2", "busybox", "true"]);
    assert!(!o.status.success() && text(&o).contains("max-size"), "{}", text(&o));

    // Docker's local driver options: a tmpfs volume with a size.
    ok(d.docker().args([
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        "scratch",
    ]));
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "scratch:/s",
            "busybox",
            "sh",
            "-c",
            "grep ' /s ' /proc/mounts | cut -d' ' -f3; df -k /s | tail -1 | awk '{print $2}'",
        ],
    );
    assert_eq!(out(&o), "tmpfs\n1024", "{}", text(&o));
}
