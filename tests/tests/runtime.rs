//! berth-runtime end to end: real containers from busybox bundles, each
//! feature checked from inside the container or from the host.

use std::path::Path;
use std::time::Duration;

use berth_tests::{require_root, unique_name, Bundle, Runtime};
use serde_json::json;

fn bundle(args: &[&str]) -> Bundle {
    Bundle::new(args).expect("bundle")
}

fn nix_kill(pid: i32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{key} missing in {status}"))
}

#[test]
fn run_reports_hardening_from_proc_self_status() {
    if !require_root("run_reports_hardening_from_proc_self_status") {
        return;
    }
    let rt = Runtime::berth();
    let b = bundle(&["cat", "/proc/self/status"]);
    let o = rt.run(&b, &unique_name("status"));
    assert_eq!(o.code, 0, "{o:?}");
    // CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10).
    assert_eq!(status_field(&o.stdout, "CapEff:"), "0000000020000420");
    assert_eq!(status_field(&o.stdout, "CapBnd:"), "0000000020000420");
    assert_eq!(status_field(&o.stdout, "NoNewPrivs:"), "1");
    assert_eq!(status_field(&o.stdout, "Seccomp:"), "0");
}

#[test]
fn seccomp_rule_returns_the_asked_errno_without_forcing_nnp() {
    if !require_root("seccomp_rule_returns_the_asked_errno_without_forcing_nnp") {
        return;
    }
    let rt = Runtime::berth();
    let mut b = bundle(&["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/x"]);
    b.config["root"]["readonly"] = json!(false);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]
    });
    b.write_config().unwrap();
    let o = rt.run(&b, &unique_name("seccomp"));
    assert_ne!(o.code, 0, "mkdir should fail: {o:?}");
    assert!(o.stderr.contains("not supported"), "expected EOPNOTSUPP: {o:?}");
    assert_eq!(status_field(&o.stdout, "Seccomp:"), "2");
    assert_eq!(status_field(&o.stdout, "NoNewPrivs:"), "0");
    assert!(!b.rootfs().join("tmp/x").exists());
}

#[test]
fn hostname_user_groups_env_and_cwd() {
    if !require_root("hostname_user_groups_env_and_cwd") {
        return;
    }
    let rt = Runtime::berth();
    let mut b = bundle(&["sh", "-c", "hostname; id; pwd; echo $GREETING"]);
    b.config["hostname"] = json!("box-7");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000]});
    b.config["process"]["cwd"] = json!("/home/user/work");
    b.config["process"]["env"].as_array_mut().unwrap().push(json!("GREETING=hello"));
    b.write_config().unwrap();
    let o = rt.run(&b, &unique_name("ids"));
    assert_eq!(o.code, 0, "{o:?}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "box-7");
    assert!(lines[1].starts_with("uid=1000(user) gid=1000(user)"), "{}", lines[1]);
    assert!(lines[1].contains("2000(extra)") && lines[1].contains("3000"), "{}", lines[1]);
    assert_eq!(lines[2], "/home/user/work");
    assert_eq!(lines[3], "hello");
}

#[test]
fn mounts_masked_and_readonly_paths() {
    if !require_root("mounts_masked_and_readonly_paths") {
        return;
    }
    let rt = Runtime::berth();
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("from-host"), "bound\n").unwrap();
    let script = "cat /proc/self/mountinfo; echo ---; cat /proc/timer_list /proc/keys | wc -c; ls /sys/firmware | wc -l; echo ---; \
                  echo x > /proc/sysrq-trigger || echo ro-ok; touch /newfile || echo root-ro-ok; \
                  cat /data/from-host; touch /data/w || echo bind-ro-ok; ls -l /dev/null /dev/zero /dev/urandom";
    let mut b = bundle(&["sh", "-c", script]);
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": host_dir.path(), "options": ["rbind", "ro", "nosuid"]
    }));
    b.write_config().unwrap();
    let o = rt.run(&b, &unique_name("mounts"));
    assert_eq!(o.code, 0, "{o:?}");
    let parts: Vec<&str> = o.stdout.split("---\n").collect();
    let mountinfo = parts[0];
    let mount_of = |target: &str| {
        mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(target))
            .unwrap_or_else(|| panic!("no mount at {target}:\n{mountinfo}"))
    };
    assert!(
        mount_of("/").split(' ').nth(5).unwrap().starts_with("ro"),
        "rootfs should be read-only"
    );
    assert!(mount_of("/proc").contains(" - proc "));
    assert!(mount_of("/dev").contains(" - tmpfs "));
    assert!(mount_of("/dev/pts").contains(" - devpts "));
    assert!(mount_of("/sys").contains(" - sysfs "));
    assert!(mount_of("/data").split(' ').nth(5).unwrap().contains("ro"));
    assert!(mount_of("/sys/fs/cgroup").contains(" - tmpfs ") || mount_of("/sys/fs/cgroup").contains(" - cgroup2 "));
    // Both files are non-empty on the host; /sys/firmware has entries there.
    assert!(std::fs::read_to_string("/proc/timer_list").map(|s| !s.is_empty()).unwrap_or(true));
    assert_eq!(parts[1].lines().collect::<Vec<_>>(), vec!["0", "0"], "masked paths must read empty");
    let rest = parts[2];
    for marker in ["ro-ok", "root-ro-ok", "bound", "bind-ro-ok"] {
        assert!(rest.lines().any(|l| l == marker), "missing {marker}: {o:?}");
    }
    assert!(rest.contains("1,   3") || rest.contains("1, 3"), "/dev/null is c 1:3: {rest}");
    assert!(!host_dir.path().join("w").exists());
}

#[test]
fn exit_codes_and_signals_propagate() {
    if !require_root("exit_codes_and_signals_propagate") {
        return;
    }
    let rt = Runtime::berth();
    let b = bundle(&["sh", "-c", "exit 42"]);
    assert_eq!(rt.run(&b, &unique_name("exit")).code, 42);
    // The container's pid 1 ignores signals it has no handler for, except
    // SIGKILL from outside: `run` must report it as 128+9.
    let b = bundle(&["sleep", "1000"]);
    let id = unique_name("sig");
    let mut run = rt
        .command()
        .args(["run", "--bundle", b.path().to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    rt.wait_status(&id, "running");
    rt.ok(&["kill", &id, "KILL"]);
    assert_eq!(run.wait().unwrap().code(), Some(137));
    // Signals sent to `run` are forwarded to the container.
    let b = bundle(&["sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.05; done"]);
    let id = unique_name("fwd");
    let mut run = rt
        .command()
        .args(["run", "--bundle", b.path().to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    rt.wait_status(&id, "running");
    std::thread::sleep(Duration::from_millis(100));
    nix_kill(run.id() as i32, libc::SIGTERM);
    assert_eq!(run.wait().unwrap().code(), Some(7));
    let b = bundle(&["no-such-binary"]);
    let o = rt.run(&b, &unique_name("nobin"));
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("no-such-binary") && o.stderr.contains("not found"), "{o:?}");
    assert!(
        std::fs::read_dir(rt.root()).unwrap().next().is_none(),
        "run must delete its container"
    );
}

#[test]
fn lifecycle_created_running_stopped_with_kill() {
    if !require_root("lifecycle_created_running_stopped_with_kill") {
        return;
    }
    let rt = Runtime::berth();
    let b = bundle(&["sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.1; done"]);
    let id = unique_name("life");
    let pidfile = b.path().join("pid");
    let bp = b.path().to_str().unwrap();
    rt.ok(&["create", "--bundle", bp, "--pid-file", pidfile.to_str().unwrap(), &id]);
    assert_eq!(rt.status(&id), "created");
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let state: serde_json::Value = serde_json::from_str(&rt.ok(&["state", &id]).stdout).unwrap();
    assert_eq!(state["pid"], json!(pid));
    assert_eq!(state["bundle"], json!(bp));
    assert_eq!(state["id"], json!(id));
    assert!(rt.output(&["create", "--bundle", bp, &id]).stderr.contains("already exists"));
    rt.ok(&["start", &id]);
    assert_eq!(rt.status(&id), "running");
    assert!(rt.output(&["start", &id]).stderr.contains("running"));
    assert!(rt.output(&["delete", &id]).stderr.contains("--force"));
    let list = rt.ok(&["list", "--format", "json"]).stdout;
    assert!(list.contains(&id), "{list}");
    rt.ok(&["kill", &id, "TERM"]);
    rt.wait_status(&id, "stopped");
    assert!(rt.output(&["kill", &id, "KILL"]).code != 0, "kill of a stopped container must fail");
    rt.ok(&["delete", &id]);
    assert!(rt.output(&["state", &id]).stderr.contains("does not exist"));

    // SIGKILL ends a process that ignores SIGTERM.
    let b = bundle(&["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]);
    let id = unique_name("life-kill");
    rt.ok(&["run", "--detach", "--bundle", b.path().to_str().unwrap(), &id]);
    rt.wait_status(&id, "running");
    rt.ok(&["kill", &id, "TERM"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["kill", &id, "9"]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
}

#[test]
fn exec_ps_pause_resume() {
    if !require_root("exec_ps_pause_resume") {
        return;
    }
    let rt = Runtime::berth();
    let b = bundle(&["sleep", "1000"]);
    let id = unique_name("exec");
    rt.ok(&["run", "--detach", "--bundle", b.path().to_str().unwrap(), &id]);
    let o = rt.ok(&[
        "exec",
        "--env",
        "X=y",
        "--user",
        "1000:1000",
        &id,
        "sh",
        "-c",
        "echo $X; id -u; ps -o pid,comm",
    ]);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "y");
    assert_eq!(lines[1], "1000");
    assert!(
        o.stdout.contains("1 sleep") || o.stdout.lines().any(|l| l.trim() == "1 sleep"),
        "exec must see the container's pid namespace: {o:?}"
    );
    assert_eq!(rt.output(&["exec", &id, "sh", "-c", "exit 5"]).code, 5);
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert_eq!(pids.len(), 1, "{pids:?}");
    let table = rt.ok(&["ps", &id]).stdout;
    assert!(table.contains("sleep 1000"), "{table}");

    rt.ok(&["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pids[0])).unwrap();
    let _ = stat; // frozen tasks still show S/D; the freezer state is what counts
    rt.ok(&["resume", &id]);
    assert_eq!(rt.status(&id), "running");
    assert_eq!(rt.ok(&["exec", &id, "true"]).code, 0);
    rt.ok(&["delete", "--force", &id]);
    assert!(std::fs::read_dir(rt.root()).unwrap().next().is_none());
}

#[test]
fn pids_limit_contains_a_fork_bomb() {
    if !require_root("pids_limit_contains_a_fork_bomb") {
        return;
    }
    let rt = Runtime::berth();
    // ash exits when a fork fails, so the bomb runs in a subshell and the
    // container's init stays to show the bomb contained.
    let mut b = bundle(&[
        "sh",
        "-c",
        "(for i in $(seq 1 60); do sleep 1000 & done) 2>/dev/null; exec sleep 1000",
    ]);
    b.config["linux"]["resources"]["pids"] = json!({"limit": 12});
    b.write_config().unwrap();
    let id = unique_name("pids");
    rt.ok(&["run", "--detach", "--bundle", b.path().to_str().unwrap(), &id]);
    std::thread::sleep(Duration::from_millis(800));
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert!(pids.len() <= 12 && pids.len() >= 8, "pids limit 12 but {} processes", pids.len());
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn memory_limit_ends_a_hog_with_137() {
    if !require_root("memory_limit_ends_a_hog_with_137") {
        return;
    }
    let rt = Runtime::berth();
    // dd allocates its whole block size: 256 MiB against a 32 MiB limit.
    let mut b = bundle(&["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 32 * 1024 * 1024, "swap": 32 * 1024 * 1024});
    b.write_config().unwrap();
    let o = rt.run(&b, &unique_name("oom"));
    assert_eq!(o.code, 137, "{o:?}");
}

#[test]
fn rlimits_and_oom_score_adj_apply() {
    if !require_root("rlimits_and_oom_score_adj_apply") {
        return;
    }
    let rt = Runtime::berth();
    let mut b = bundle(&["sh", "-c", "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj"]);
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]);
    b.config["process"]["oomScoreAdj"] = json!(321);
    b.write_config().unwrap();
    let o = rt.run(&b, &unique_name("rlimit"));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout.lines().collect::<Vec<_>>(), vec!["123", "456", "321"]);
}

#[test]
fn hooks_run_in_order_with_state() {
    if !require_root("hooks_run_in_order_with_state") {
        return;
    }
    let rt = Runtime::berth();
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("hooks.log");
    let mut b = bundle(&["true"]);
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": log_dir.path(), "type": "bind", "source": log_dir.path(), "options": ["rbind"]
    }));
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo {name} $s >> {}", log.display())]});
    b.config["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        // Runs inside the container, which sees the log through a bind mount.
        "startContainer": [hook("startContainer")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    });
    b.write_config().unwrap();
    let id = unique_name("hooks");
    let o = rt.run(&b, &id);
    assert_eq!(o.code, 0, "{o:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        order,
        vec![
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    assert!(text.lines().all(|l| l.contains(&format!("\"id\":\"{id}\""))), "{text}");
}

#[test]
fn user_namespace_maps_ids() {
    if !require_root("user_namespace_maps_ids") {
        return;
    }
    let rt = Runtime::berth();
    let mut b = bundle(&["sh", "-c", "cat /proc/self/uid_map; id -u"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // sysfs cannot be mounted from a user namespace without its own netns
    // ownership rules on every kernel; keep the test about id mapping.
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "sysfs" && m["type"] != "cgroup");
    b.write_config().unwrap();
    std::os::unix::fs::chown(b.rootfs(), Some(100000), Some(100000)).unwrap();
    let o = rt.run(&b, &unique_name("userns"));
    assert_eq!(o.code, 0, "{o:?}");
    let first: Vec<&str> = o.stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(first, vec!["0", "100000", "65536"]);
    assert_eq!(o.stdout.lines().nth(1), Some("0"));
}

fn assert_nothing_left(rt: &Runtime, id: &str) {
    assert!(!rt.root().join(id).exists(), "state directory of {id} left behind");
    for ctrl in ["pids", "memory", "freezer", "devices"] {
        let dir = Path::new("/sys/fs/cgroup").join(ctrl).join("berth").join(id);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn bad_bundles_fail_clearly_and_leave_nothing() {
    if !require_root("bad_bundles_fail_clearly_and_leave_nothing") {
        return;
    }
    let rt = Runtime::berth();

    let b = bundle(&["true"]);
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    let id = unique_name("norootfs");
    let o = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("root.path") && o.stderr.contains("rootfs"), "{o:?}");
    assert_nothing_left(&rt, &id);

    let b = bundle(&["true"]);
    std::fs::write(b.path().join("config.json"), "{\"ociVersion\": ").unwrap();
    let id = unique_name("badjson");
    let o = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(o.code != 0 && o.stderr.contains("malformed config.json"), "{o:?}");
    assert!(!o.stderr.contains("panicked") && !o.stderr.contains("RUST_BACKTRACE"));
    assert_nothing_left(&rt, &id);

    let mut b = bundle(&["true"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    b.write_config().unwrap();
    let id = unique_name("badns");
    let o = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(o.code != 0 && o.stderr.contains("bogus"), "{o:?}");
    assert_nothing_left(&rt, &id);

    // A mount destination that climbs out of the rootfs through a symlink.
    let outside = tempfile::tempdir().unwrap();
    let mut b = bundle(&["true"]);
    let depth = b.rootfs().components().count();
    let escape = format!("{}{}", "../".repeat(depth + 2), outside.path().display());
    std::os::unix::fs::symlink(&escape, b.rootfs().join("evil")).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs"}));
    b.write_config().unwrap();
    let id = unique_name("escape");
    let o = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_ne!(o.code, 0, "{o:?}");
    assert!(o.stderr.contains("/evil") && o.stderr.contains("outside"), "{o:?}");
    assert!(!outside.path().join("x").exists(), "nothing may be created outside the rootfs");
    assert_nothing_left(&rt, &id);

    // An absolute symlink resolves inside the rootfs, as the container sees it.
    let mut b = bundle(&["sh", "-c", "ls -d /inside/x"]);
    std::fs::create_dir(b.rootfs().join("inside")).unwrap();
    std::os::unix::fs::symlink("/inside", b.rootfs().join("abs")).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/abs/x", "type": "tmpfs", "source": "tmpfs"}));
    b.write_config().unwrap();
    let o = rt.run(&b, &unique_name("abs"));
    assert_eq!(o.code, 0, "{o:?}");

    // A failing step inside the init names the step and the path.
    let mut b = bundle(&["true"]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "bind", "source": "/nonexistent-berth-source", "options": ["rbind"]}));
    b.write_config().unwrap();
    let id = unique_name("badmount");
    let o = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(
        o.code != 0 && o.stderr.contains("mount") && o.stderr.contains("/nonexistent-berth-source"),
        "{o:?}"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn log_file_gets_errors_in_json() {
    if !require_root("log_file_gets_errors_in_json") {
        return;
    }
    let rt = Runtime::berth();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let o = rt.output(&["--log", log.to_str().unwrap(), "--log-format", "json", "state", "nope"]);
    assert_ne!(o.code, 0);
    let line = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("does not exist"));
}

/// What a container sees of itself: security state, identity, limits,
/// devices, and every mount point with its per-mount options.
const SELF_REPORT: &str = "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; id; hostname; pwd; ulimit -n; ulimit -Hn; \
     cat /proc/self/oom_score_adj; ls -l /dev | awk '{print $1, $5, $6, $NF}'; awk '{print $5, $6}' /proc/self/mountinfo | sort; \
     cat /proc/timer_list | wc -c; echo 1 > /proc/sys/vm/overcommit_memory 2>&1; touch /probe 2>&1; env | sort";

/// Runs the same bundle under runc and berth-runtime; both must see the
/// same container.
fn assert_same_as_runc(name: &str, edit: impl Fn(&mut Bundle)) {
    let mut b = bundle(&["sh", "-c", SELF_REPORT]);
    edit(&mut b);
    b.write_config().unwrap();
    let runc = Runtime::runc().run(&b, &unique_name(&format!("{name}-runc")));
    let berth = Runtime::berth().run(&b, &unique_name(&format!("{name}-berth")));
    assert_eq!(runc.code, berth.code, "exit codes differ: runc {runc:?}\nberth {berth:?}");
    let (r, ours): (Vec<&str>, Vec<&str>) = (runc.stdout.lines().collect(), berth.stdout.lines().collect());
    for (i, (a, b)) in r.iter().zip(ours.iter()).enumerate() {
        assert_eq!(a, b, "{name}: line {i} differs\nrunc:\n{}\nberth:\n{}", runc.stdout, berth.stdout);
    }
    assert_eq!(
        r.len(),
        ours.len(),
        "{name}: output lengths differ\nrunc:\n{}\nberth:\n{}",
        runc.stdout,
        berth.stdout
    );
    assert!(!ours.is_empty());
}

#[test]
fn differential_default_bundle() {
    if !require_root("differential_default_bundle") {
        return;
    }
    assert_same_as_runc("diff-default", |_| {});
}

#[test]
fn differential_docker_like_process() {
    if !require_root("differential_docker_like_process") {
        return;
    }
    assert_same_as_runc("diff-docker", |b| {
        let caps = json!(berth_core::security::capabilities::DOCKER_DEFAULT);
        b.config["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
        b.config["process"]["noNewPrivileges"] = json!(false);
        b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [2000]});
        b.config["process"]["cwd"] = json!("/tmp");
        b.config["process"]["env"].as_array_mut().unwrap().push(json!("FOO=bar"));
        b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048}]);
        b.config["process"]["oomScoreAdj"] = json!(100);
        b.config["hostname"] = json!("diffhost");
        b.config["root"]["readonly"] = json!(false);
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=1m"]}));
    });
}

#[test]
fn differential_seccomp_profile() {
    if !require_root("differential_seccomp_profile") {
        return;
    }
    assert_same_as_runc("diff-seccomp", |b| {
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["utimensat", "utimes", "utime"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
            ]
        });
    });
}
