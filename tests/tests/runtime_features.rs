//! berth-runtime end to end: terminals, exec variants, namespaces joined
//! by path, sysctl and domain name, device rules, AppArmor refusal.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use berth_tests::{require_root, unique_name, Bundle, Runtime};
use serde_json::json;

fn bundle(args: &[&str]) -> Bundle {
    Bundle::new(args).expect("bundle")
}

/// Reads from a pty master until `want` shows up or 10 s pass.
fn read_until(master: &mut std::fs::File, want: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains(want) && std::time::Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 200) } <= 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    text
}

#[test]
fn console_socket_receives_the_pty_master() {
    if !require_root("console_socket_receives_the_pty_master") {
        return;
    }
    let rt = Runtime::berth();
    let mut b = bundle(&["sh", "-c", "tty; echo size $(stty size); read line; echo got:$line"]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    b.write_config().unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = unique_name("console");
    let accept = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        berth_core::runtime::process::tty::recv_fd(conn.as_raw_fd()).unwrap()
    });
    rt.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    let mut master = std::fs::File::from(accept.join().unwrap());
    rt.ok(&["start", &id]);
    let text = read_until(&mut master, "size 33 101");
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("size 33 101"), "{text:?}");
    std::io::Write::write_all(&mut master, b"hello\n").unwrap();
    let text = read_until(&mut master, "got:hello");
    assert!(text.contains("got:hello"), "{text:?}");
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
}

#[test]
fn terminal_without_console_socket_is_refused_for_create() {
    if !require_root("terminal_without_console_socket_is_refused_for_create") {
        return;
    }
    let rt = Runtime::berth();
    let mut b = bundle(&["true"]);
    b.config["process"]["terminal"] = json!(true);
    b.write_config().unwrap();
    let id = unique_name("noconsole");
    let o = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(o.code != 0 && o.stderr.contains("--console-socket"), "{o:?}");
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn run_with_terminal_relays_the_pty() {
    if !require_root("run_with_terminal_relays_the_pty") {
        return;
    }
    let rt = Runtime::berth();
    let mut b = bundle(&["sh", "-c", "tty; exit 4"]);
    b.config["process"]["terminal"] = json!(true);
    b.write_config().unwrap();
    let o = rt.run(&b, &unique_name("runtty"));
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stdout.contains("/dev/pts/0"), "{o:?}");
}

#[test]
fn exec_with_tty_and_with_process_json() {
    if !require_root("exec_with_tty_and_with_process_json") {
        return;
    }
    let rt = Runtime::berth();
    let b = bundle(&["sleep", "1000"]);
    let id = unique_name("exectty");
    rt.ok(&["run", "--detach", "--bundle", b.path().to_str().unwrap(), &id]);
    let o = rt.ok(&["exec", "--tty", &id, "tty"]);
    assert!(o.stdout.contains("/dev/pts/"), "{o:?}");

    let process = b.path().join("process.json");
    std::fs::write(
        &process,
        json!({
            "args": ["sh", "-c", "echo $A; id -u; pwd; grep CapEff /proc/self/status"],
            "env": ["PATH=/bin:/usr/bin", "A=from-json"],
            "cwd": "/tmp",
            "user": {"uid": 65534, "gid": 65534},
            // A non-root process keeps capabilities across exec only as ambient ones.
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]}
        })
        .to_string(),
    )
    .unwrap();
    let o = rt.ok(&["exec", "--process", process.to_str().unwrap(), &id]);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[..3], ["from-json", "65534", "/tmp"], "{o:?}");
    assert_eq!(lines[3].split_whitespace().last(), Some("0000000000000020"), "{o:?}");

    let pidfile = b.path().join("exec.pid");
    rt.ok(&["exec", "--detach", "--pid-file", pidfile.to_str().unwrap(), &id, "sleep", "1000"]);
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert!(pids.contains(&pid), "{pid} not in {pids:?}");
    let o = rt.output(&["exec", &id, "no-such-command"]);
    assert!(o.code != 0 && o.stderr.contains("no-such-command"), "{o:?}");
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn joins_another_containers_namespaces_by_path() {
    if !require_root("joins_another_containers_namespaces_by_path") {
        return;
    }
    let rt = Runtime::berth();
    let a = bundle(&["sleep", "1000"]);
    let id_a = unique_name("ns-a");
    rt.ok(&["run", "--detach", "--bundle", a.path().to_str().unwrap(), &id_a]);
    let state: serde_json::Value = serde_json::from_str(&rt.ok(&["state", &id_a]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let mut b = bundle(&["sh", "-c", "for n in net ipc uts; do readlink /proc/self/ns/$n; done; hostname"]);
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        let (t, file) = match ns["type"].as_str().unwrap() {
            "network" => ("network", "net"),
            "ipc" => ("ipc", "ipc"),
            "uts" => ("uts", "uts"),
            _ => continue,
        };
        *ns = json!({"type": t, "path": format!("/proc/{pid}/ns/{file}")});
    }
    b.config.as_object_mut().unwrap().remove("hostname");
    b.write_config().unwrap();
    let o = rt.run(&b, &unique_name("ns-b"));
    assert_eq!(o.code, 0, "{o:?}");
    for (i, file) in ["net", "ipc", "uts"].iter().enumerate() {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{file}")).unwrap();
        assert_eq!(o.stdout.lines().nth(i), Some(theirs.to_str().unwrap()), "{file}: {o:?}");
    }
    assert_eq!(
        o.stdout.lines().nth(3),
        Some("berth"),
        "the uts namespace of A carries its hostname"
    );
    rt.ok(&["delete", "--force", &id_a]);
}

#[test]
fn sysctl_domainname_and_time_namespace() {
    if !require_root("sysctl_domainname_and_time_namespace") {
        return;
    }
    let rt = Runtime::berth();
    let mut b = bundle(&[
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/domainname; readlink /proc/self/ns/time",
    ]);
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_unprivileged_port_start": "99"});
    b.config["domainname"] = json!("example.test");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.write_config().unwrap();
    let o = rt.run(&b, &unique_name("sysctl"));
    assert_eq!(o.code, 0, "{o:?}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "99");
    assert_eq!(lines[1], "example.test");
    let host_time = std::fs::read_link("/proc/self/ns/time").unwrap();
    assert_ne!(lines[2], host_time.to_str().unwrap(), "a new time namespace was asked for");
    let host_port = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    assert_ne!(host_port.trim(), "99", "the sysctl must stay in the container's netns");
}

#[test]
fn device_rules_gate_device_access() {
    if !require_root("device_rules_gate_device_access") {
        return;
    }
    let rt = Runtime::berth();
    // /dev/fuse (10:229) exists as a node but the cgroup denies it;
    // /dev/loop-control (10:237) is created and allowed.
    let mut b = bundle(&[
        "sh",
        "-c",
        "cat /dev/fuse 2>&1; head -c1 /dev/zero | wc -c; ls -l /dev/loop-control | awk '{print $5 $6}'",
    ]);
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438},
        {"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237, "fileMode": 432}
    ]);
    b.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 237, "access": "rw"}
    ]);
    b.write_config().unwrap();
    let o = rt.run(&b, &unique_name("devices"));
    assert_eq!(o.code, 0, "{o:?}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert!(lines[0].contains("Operation not permitted"), "{o:?}");
    assert_eq!(lines[1], "1", "default devices stay usable: {o:?}");
    assert_eq!(lines[2], "10,237", "{o:?}");
}

#[test]
fn apparmor_profile_on_a_kernel_without_apparmor_is_refused() {
    if !require_root("apparmor_profile_on_a_kernel_without_apparmor_is_refused") {
        return;
    }
    // Where the kernel has AppArmor the profile would be applied; the
    // refusal is what a kernel without it must show.
    let test = "apparmor_profile_on_a_kernel_without_apparmor_is_refused";
    if !berth_tests::require(test, !berth_core::security::apparmor::enabled(), "a kernel without AppArmor") {
        return;
    }
    let rt = Runtime::berth();
    let mut b = bundle(&["true"]);
    b.config["process"]["apparmorProfile"] = json!("docker-default");
    b.write_config().unwrap();
    let id = unique_name("apparmor");
    let o = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(
        o.code != 0 && o.stderr.contains("AppArmor") && o.stderr.contains("docker-default"),
        "{o:?}"
    );
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn list_table_and_text_log() {
    if !require_root("list_table_and_text_log") {
        return;
    }
    let rt = Runtime::berth();
    let b = bundle(&["sleep", "1000"]);
    let id = unique_name("list");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let table = rt.ok(&["list"]).stdout;
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("created"), "{row}");
    assert_eq!(rt.ok(&["list", "-q"]).stdout.trim(), id);
    let log = b.path().join("log.txt");
    let o = rt.output(&["--log", log.to_str().unwrap(), "pause", &id]);
    assert_ne!(o.code, 0, "a created container cannot be paused");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("level=error") && text.contains("cannot pause"), "{text}");
    rt.ok(&["delete", &id]);
    assert!(rt.ok(&["list", "-q"]).stdout.trim().is_empty());
}

#[test]
fn cpu_and_memory_resources_are_visible_inside() {
    if !require_root("cpu_and_memory_resources_are_visible_inside") {
        return;
    }
    // The v2 files are checked by the cgroups module's own tests.
    let v1 = berth_core::runtime::cgroups::version() == berth_core::runtime::cgroups::CgroupVersion::V1;
    if !berth_tests::require("cpu_and_memory_resources_are_visible_inside", v1, "cgroup v1") {
        return;
    }
    let rt = Runtime::berth();
    let mut b = bundle(&[
        "sh",
        "-c",
        "cd /sys/fs/cgroup; cat cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpuset/cpuset.cpus memory/memory.limit_in_bytes pids/pids.max",
    ]);
    b.config["linux"]["resources"]["cpu"] = json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"});
    b.config["linux"]["resources"]["memory"] = json!({"limit": 64 * 1024 * 1024});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 77});
    b.write_config().unwrap();
    let o = rt.run(&b, &unique_name("res"));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout.lines().collect::<Vec<_>>(),
        vec!["512", "50000", "100000", "0", "67108864", "77"],
        "{o:?}"
    );
}

#[test]
fn joins_a_pid_namespace_and_uses_a_custom_cgroups_path() {
    if !require_root("joins_a_pid_namespace_and_uses_a_custom_cgroups_path") {
        return;
    }
    let rt = Runtime::berth();
    let a = bundle(&["sleep", "1000"]);
    let id_a = unique_name("pid-a");
    rt.ok(&["run", "--detach", "--bundle", a.path().to_str().unwrap(), &id_a]);
    let state: serde_json::Value = serde_json::from_str(&rt.ok(&["state", &id_a]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();

    let cgroup = format!("/berth/{}", unique_name("cg"));
    let mut b = bundle(&["sh", "-c", "ps -o pid,comm | grep -c 'sleep'; sleep 1000"]);
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            *ns = json!({"type": "pid", "path": format!("/proc/{pid}/ns/pid")});
        }
    }
    b.config["linux"]["cgroupsPath"] = json!(cgroup);
    b.write_config().unwrap();
    let id_b = unique_name("pid-b");
    let out = b.path().join("out");
    let file = std::fs::File::create(&out).unwrap();
    let status = rt
        .command()
        .args(["run", "--detach", "--bundle", b.path().to_str().unwrap(), &id_b])
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&out).unwrap_or_default().trim().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().trim(),
        "1",
        "B must see A's sleep in the shared pid namespace"
    );
    // The custom path under the pids hierarchy (v1) or the unified one (v2).
    let hierarchy = match berth_core::runtime::cgroups::version() {
        berth_core::runtime::cgroups::CgroupVersion::V1 => "/sys/fs/cgroup/pids",
        berth_core::runtime::cgroups::CgroupVersion::V2 => "/sys/fs/cgroup",
    };
    let dir = std::path::Path::new(hierarchy).join(cgroup.trim_start_matches('/'));
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(!procs.trim().is_empty(), "B's processes live in {}", dir.display());
    rt.ok(&["delete", "--force", &id_b]);
    rt.ok(&["delete", "--force", &id_a]);
    assert!(!dir.exists(), "{} must go with the container", dir.display());
}

#[test]
fn mount_propagation_options_apply() {
    if !require_root("mount_propagation_options_apply") {
        return;
    }
    let rt = Runtime::berth();
    let host_dir = tempfile::tempdir().unwrap();
    let mut b = bundle(&["sh", "-c", "grep -E ' /(shared|private) ' /proc/self/mountinfo"]);
    b.config["linux"]["rootfsPropagation"] = json!("rprivate");
    for (dest, prop) in [("/shared", "rshared"), ("/private", "rprivate")] {
        b.config["mounts"].as_array_mut().unwrap().push(json!({
            "destination": dest, "type": "bind", "source": host_dir.path(), "options": ["rbind", prop]
        }));
    }
    b.write_config().unwrap();
    let o = rt.run(&b, &unique_name("prop"));
    assert_eq!(o.code, 0, "{o:?}");
    let line = |dest: &str| {
        o.stdout
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(dest))
            .unwrap_or_else(|| panic!("{dest}: {o:?}"))
            .to_string()
    };
    assert!(line("/shared").contains(" shared:"), "{o:?}");
    assert!(
        !line("/private").contains("shared:") && !line("/private").contains("master:"),
        "{o:?}"
    );
}

#[test]
fn exec_cwd_flag_and_env_override() {
    if !require_root("exec_cwd_flag_and_env_override") {
        return;
    }
    let rt = Runtime::berth();
    let b = bundle(&["sleep", "1000"]);
    let id = unique_name("execcwd");
    rt.ok(&["run", "--detach", "--bundle", b.path().to_str().unwrap(), &id]);
    let o = rt.ok(&["exec", "--cwd", "/etc", "-e", "TERM=dumb", &id, "sh", "-c", "pwd; echo $TERM"]);
    assert_eq!(o.stdout.lines().collect::<Vec<_>>(), vec!["/etc", "dumb"]);
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn hostile_rootfs_tricks_are_refused() {
    if !require_root("hostile_rootfs_tricks_are_refused") {
        return;
    }
    let rt = Runtime::berth();
    let core_pattern_before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();

    // /dev/null pointing at a host file, with no /dev mount to replace it.
    let mut b = bundle(&["true"]);
    std::fs::create_dir_all(b.rootfs().join("dev")).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", b.rootfs().join("dev/null")).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    b.write_config().unwrap();
    let id = unique_name("devnull");
    let o = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(o.code != 0 && o.stderr.contains("/dev/null"), "{o:?}");
    assert!(!rt.root().join(&id).exists());
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        core_pattern_before
    );

    // A volume whose destination resolves to /proc would cover procfs.
    let host_dir = tempfile::tempdir().unwrap();
    let mut b = bundle(&["true"]);
    std::os::unix::fs::symlink("/proc", b.rootfs().join("data")).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "bind", "source": host_dir.path(), "options": ["rbind"]}));
    b.write_config().unwrap();
    let id = unique_name("coverproc");
    let o = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(o.code != 0 && o.stderr.contains("cover procfs"), "{o:?}");
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn a_cgroup_in_use_is_not_taken_over() {
    if !require_root("a_cgroup_in_use_is_not_taken_over") {
        return;
    }
    let rt = Runtime::berth();
    let cgroup = format!("/berth/{}", unique_name("shared"));
    let mut a = bundle(&["sleep", "1000"]);
    a.config["linux"]["cgroupsPath"] = json!(cgroup);
    a.write_config().unwrap();
    let id_a = unique_name("owner");
    rt.ok(&["run", "--detach", "--bundle", a.path().to_str().unwrap(), &id_a]);
    let id_b = unique_name("intruder");
    let o = rt.output(&["create", "--bundle", a.path().to_str().unwrap(), &id_b]);
    assert!(o.code != 0 && o.stderr.contains("already holds processes"), "{o:?}");
    assert_eq!(rt.status(&id_a), "running", "the failed create must not touch the owner");
    rt.ok(&["delete", "--force", &id_a]);

    // A create killed before saving its state leaves a bare directory that
    // delete --force clears.
    let id = unique_name("bare");
    std::fs::create_dir_all(rt.root().join(&id)).unwrap();
    rt.ok(&["delete", "--force", &id]);
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn container_processes_never_run_the_host_binary() {
    if !require_root("container_processes_never_run_the_host_binary") {
        return;
    }
    let rt = Runtime::berth();
    let b = bundle(&["sleep", "1000"]);
    let id = unique_name("exe");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let state: serde_json::Value = serde_json::from_str(&rt.ok(&["state", &id]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    // While it waits for start, the init is the runtime: it must be a copy
    // that no container can write to (CVE-2019-5736).
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_ne!(exe, berth_tests::bin("berth-runtime"), "init runs the host binary");
    let text = exe.display().to_string();
    if text.starts_with(berth_core::runtime::cloned_binary::COPY_ROOT) {
        let st = nix::sys::statvfs::statvfs(exe.parent().unwrap()).unwrap();
        assert!(
            st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
            "{text} is on a writable mount"
        );
    } else {
        assert!(text.starts_with("/memfd:"), "{text}");
    }
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn later_commands_use_the_config_the_container_was_created_with() {
    if !require_root("later_commands_use_the_config_the_container_was_created_with") {
        return;
    }
    let rt = Runtime::berth();
    let mut b = bundle(&["sleep", "1000"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    b.write_config().unwrap();
    let id = unique_name("saved");
    rt.ok(&["run", "--detach", "--bundle", b.path().to_str().unwrap(), &id]);
    // Editing or removing the bundle's config must not lift the profile.
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    let o = rt.output(&["exec", &id, "pwd"]);
    assert!(
        o.code != 0 && o.stderr.contains("not permitted"),
        "exec must keep the seccomp profile: {o:?}"
    );
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn a_start_that_dies_after_connecting_still_shows_running() {
    if !require_root("a_start_that_dies_after_connecting_still_shows_running") {
        return;
    }
    let rt = Runtime::berth();
    let b = bundle(&["sleep", "1000"]);
    let id = unique_name("halfstart");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    // Do what `start` does up to its connect, then "die": the socket stays.
    let mut conn = std::os::unix::net::UnixStream::connect(rt.root().join(&id).join("start.sock")).unwrap();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "exec succeeded");
    assert!(rt.root().join(&id).join("start.sock").exists());
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["delete", "--force", &id]);
}
