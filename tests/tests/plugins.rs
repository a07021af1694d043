//! Driver plugins: shared objects loaded in-process (the example plugins
//! of `plugins/examples`, built as cdylibs) and Docker-style plugins over
//! HTTP on a UNIX socket (a Python one, standard library only). Loading,
//! unloading, an ABI mismatch, plugins that panic, hang or answer garbage
//! with berthd still serving, a size quota enforced by a loop-mounted
//! volume, and volumes written by one container and read by another.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_core::plugins::{load_shared_object, Settings};
use berth_plugin::volume::{CreateRequest, MountRequest};
use berth_plugin::{Registry, Transport};
use berth_tests::{docker, eventually, example_plugin, out, require_daemon, text, Berthd};

/// A plugin directory holding copies of the example plugins `names`.
fn plugin_dir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for n in names {
        std::fs::copy(example_plugin(n), dir.path().join(format!("lib{n}.so"))).unwrap();
    }
    dir
}

/// `sh -c SCRIPT` in a busybox container with `volume` (`NAME:/PATH`).
fn in_container(d: &Berthd, volume: &str, script: &str) -> std::process::Output {
    docker(d, &["run", "--rm", "-v", volume, "busybox", "sh", "-c", script])
}

/// Whether this process has `path` mapped.
fn mapped(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .contains(path.to_string_lossy().as_ref())
}

#[test]
fn a_shared_object_loads_answers_and_unloads() {
    let dir = plugin_dir(&["dirvol", "oldabi"]);
    let so_path = dir.path().join("libdirvol.so");
    let mut settings = Settings::new(dir.path());
    settings.home = dir.path().join("homes");
    for round in 0..2 {
        let registry = Registry::new();
        let (so, remote) = load_shared_object(&so_path, &settings).unwrap();
        assert_eq!(so.name, "dirvol");
        assert_eq!(so.interfaces, vec!["VolumeDriver"]);
        assert!(mapped(&so_path), "loaded");
        registry
            .register_volume("dirvol", remote, Transport::SharedObject(so_path.clone()))
            .unwrap();
        drop(so);
        let v = registry.volume("dirvol").unwrap();
        let name = format!("v{round}");
        v.create(&CreateRequest {
            name: name.clone(),
            opts: Default::default(),
        })
        .unwrap();
        let at = v
            .mount(&MountRequest {
                name: name.clone(),
                id: "c1".into(),
            })
            .unwrap();
        assert_eq!(
            at,
            dir.path().join("homes/dirvol/volumes").join(&name),
            "the plugin works in the home it was given"
        );
        assert!(v.remove(&name).unwrap_err().to_string().contains("in use"));
        v.unmount(&MountRequest {
            name: name.clone(),
            id: "c1".into(),
        })
        .unwrap();
        v.remove(&name).unwrap();
        drop(v);
        assert_eq!(registry.unregister("dirvol"), 1);
        assert!(registry.volume("dirvol").is_err());
        // Unloaded once no call thread holds it.
        eventually(10, "the plugin to be unloaded", || !mapped(&so_path));
    }
    let e = load_shared_object(&dir.path().join("liboldabi.so"), &settings).err().unwrap();
    assert!(e.contains("ABI version 999") && e.contains("speaks version 1"), "{e}");
    std::fs::write(dir.path().join("libnot.so"), "not an ELF object").unwrap();
    let e = load_shared_object(&dir.path().join("libnot.so"), &settings).err().unwrap();
    assert!(e.contains("libnot.so"), "{e}");
    let e = load_shared_object(&example_plugin("dirvol").with_file_name("nothing.so"), &settings)
        .err()
        .unwrap();
    assert!(e.contains("nothing.so"), "{e}");
}

#[test]
fn berthd_survives_plugins_that_panic_hang_or_answer_garbage() {
    let Some((plugins, d)) = with_plugins(
        "berthd_survives_plugins_that_panic_hang_or_answer_garbage",
        &["faulty", "oldabi", "dirvol"],
        &["--plugin-timeout", "2s"],
    ) else {
        return;
    };
    let dir = plugins.path().to_str().unwrap();
    let ls = out(&d
        .berth()
        .args(["plugin", "ls", "--format", "{{.Name}} {{.Interfaces}} {{.Transport}} {{.Status}}"])
        .output()
        .unwrap());
    assert!(ls.contains(&format!("faulty VolumeDriver so:{dir}/libfaulty.so ok")), "{ls}");
    assert!(ls.contains("local VolumeDriver builtin ok"), "{ls}");
    assert!(ls.contains("bridge NetworkDriver builtin ok"), "{ls}");
    assert!(
        ls.contains("oldabi") && ls.contains("ABI version 999"),
        "the refused plugin is shown with why: {ls}"
    );
    // Docker's own client lists them from the same API, and inspect finds one.
    let docker_ls = out(&docker(&d, &["plugin", "ls", "--format", "{{.Name}} {{.Enabled}}"]));
    assert!(
        docker_ls.contains("faulty true") && docker_ls.contains("liboldabi false"),
        "{docker_ls}"
    );
    let inspected = out(&d
        .berth()
        .args(["plugin", "inspect", "--format", "{{.Transport}}", "faulty"])
        .output()
        .unwrap());
    assert_eq!(inspected, format!("so:{dir}/libfaulty.so"));

    let panicked = docker(&d, &["volume", "create", "-d", "faulty", "panic"]);
    assert!(!panicked.status.success());
    assert!(
        text(&panicked).contains("plugin faulty panicked in /VolumeDriver.Create: asked to panic"),
        "{}",
        text(&panicked)
    );
    let started = std::time::Instant::now();
    let hung = docker(&d, &["volume", "create", "-d", "faulty", "hang"]);
    assert!(!hung.status.success());
    assert!(
        text(&hung).contains("did not answer /VolumeDriver.Create within 2s"),
        "{}",
        text(&hung)
    );
    assert!(started.elapsed() < Duration::from_secs(15), "bounded by the timeout");
    let garbage = docker(&d, &["volume", "create", "-d", "faulty", "garbage"]);
    assert!(!garbage.status.success());
    assert!(text(&garbage).contains("malformed JSON"), "{}", text(&garbage));
    // Still serving, and the plugin still answers.
    let good = docker(&d, &["volume", "create", "-d", "faulty", "fine"]);
    assert!(good.status.success(), "{}", text(&good));
    let ls = out(&docker(&d, &["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]));
    assert!(ls.contains("faulty fine"), "{ls}");
    assert!(
        !ls.contains("panic") && !ls.contains("garbage"),
        "failed creates leave no records: {ls}"
    );
    let none = docker(&d, &["volume", "create", "-d", "nosuch", "xx"]);
    assert!(text(&none).contains("nosuch"), "{}", text(&none));
    assert!(docker(&d, &["version"]).status.success());
}

/// berthd searching a plugin directory of the test's own, holding copies
/// of the example plugins `copies`, with more `flags`; if the test can run
/// here.
fn with_plugins(test: &str, copies: &[&str], flags: &[&str]) -> Option<(tempfile::TempDir, Berthd)> {
    require_daemon(test)?;
    let plugins = plugin_dir(copies);
    let mut all = vec!["--plugin-dir", plugins.path().to_str().unwrap()];
    all.extend(flags);
    let d = Berthd::with_busybox_and(&all).expect("start berthd");
    Some((plugins, d))
}

#[test]
fn a_loop_mounted_volume_plugin_enforces_its_size() {
    let Some((_plugins, d)) = with_plugins("a_loop_mounted_volume_plugin_enforces_its_size", &["loopvol"], &[]) else {
        return;
    };
    let bad = docker(&d, &["volume", "create", "-d", "loopvol", "-o", "size=lots", "quota"]);
    assert!(!bad.status.success() && text(&bad).contains("size \"lots\""), "{}", text(&bad));
    let made = docker(&d, &["volume", "create", "-d", "loopvol", "-o", "size=40M", "quota"]);
    assert!(made.status.success(), "{}", text(&made));
    let write = in_container(
        &d,
        "quota:/data",
        "dd if=/dev/zero of=/data/small bs=1M count=8 && echo kept > /data/note && dd if=/dev/zero of=/data/big bs=1M count=100",
    );
    assert!(!write.status.success(), "100M does not fit in a 40M volume: {}", text(&write));
    assert!(text(&write).contains("No space left on device"), "{}", text(&write));
    let read = in_container(&d, "quota:/data", "cat /data/note; df -k /data | tail -1");
    assert!(read.status.success(), "{}", text(&read));
    let o = out(&read);
    assert!(o.starts_with("kept"), "the second container reads what the first wrote: {o}");
    let total_kb: u64 = o
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!((20_000..=41_000).contains(&total_kb), "the filesystem is the 40M image: {o}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains("/plugins/loopvol/mounts/quota"),
        "unmounted when the last user ended"
    );
    let rm = docker(&d, &["volume", "rm", "quota"]);
    assert!(rm.status.success(), "{}", text(&rm));
    assert!(!d.data_root().join("plugins/loopvol/images/quota.ext4").exists());
}

/// A Python plugin server, killed on drop.
struct Python(Child);

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tests/plugins/dockerplugin.py KIND` serving on `socket`, keeping its
/// state under `root`; in berthd's network namespace when `host` is given.
fn python_plugin(kind: &str, socket: &Path, root: &Path, host: Option<&Berthd>) -> Python {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/dockerplugin.py");
    let mut c = match host {
        Some(d) => d.on_host("python3"),
        None => Command::new("python3"),
    };
    let child = c.arg(script).arg(kind).arg(socket).arg(root).stdin(Stdio::null()).spawn().unwrap();
    let p = Python(child);
    eventually(10, "the Python plugin's socket", || socket.exists());
    p
}

#[test]
fn a_python_plugin_over_http_serves_volumes_to_containers() {
    let Some((plugins, d)) = with_plugins("a_python_plugin_over_http_serves_volumes_to_containers", &[], &[]) else {
        return;
    };
    let dir = plugins.path().to_str().unwrap();
    let root = tempfile::tempdir().unwrap();
    let _server = python_plugin("volume", &plugins.path().join("pyvol.sock"), root.path(), None);
    let made = docker(&d, &["volume", "create", "-d", "pyvol", "shared"]);
    assert!(made.status.success(), "{}", text(&made));
    let w = in_container(&d, "shared:/data", "echo from-the-first > /data/f");
    assert!(w.status.success(), "{}", text(&w));
    assert_eq!(
        std::fs::read_to_string(root.path().join("volumes/shared/f")).unwrap(),
        "from-the-first\n"
    );
    let r = in_container(&d, "shared:/data", "cat /data/f");
    assert_eq!(out(&r), "from-the-first", "{}", text(&r));
    let ls = out(&docker(&d, &["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]));
    assert!(ls.contains("pyvol shared"), "{ls}");
    let plugins_ls = out(&d
        .berth()
        .args(["plugin", "ls", "--format", "{{.Name}} {{.Transport}}"])
        .output()
        .unwrap());
    assert!(plugins_ls.contains(&format!("pyvol http:unix://{dir}/pyvol.sock")), "{plugins_ls}");
    // --volume-driver makes a missing volume with the plugin; an existing
    // one keeps its own driver.
    let by_run = docker(
        &d,
        &[
            "run",
            "--rm",
            "--volume-driver",
            "pyvol",
            "-v",
            "made-by-run:/data",
            "busybox",
            "touch",
            "/data/x",
        ],
    );
    assert!(by_run.status.success(), "{}", text(&by_run));
    assert!(root.path().join("volumes/made-by-run/x").exists());
    assert_eq!(
        out(&docker(&d, &["volume", "inspect", "--format", "{{.Driver}}", "made-by-run"])),
        "pyvol"
    );
    assert!(docker(&d, &["volume", "rm", "made-by-run"]).status.success());
    let rm = docker(&d, &["volume", "rm", "shared"]);
    assert!(rm.status.success(), "{}", text(&rm));
    assert!(!root.path().join("volumes/shared").exists());
    let calls = std::fs::read_to_string(root.path().join("calls.log")).unwrap();
    let count = |m: &str| calls.lines().filter(|l| l.starts_with(m)).count();
    assert_eq!(count("/Plugin.Activate "), 1, "activated once: {calls}");
    assert_eq!(count("/VolumeDriver.Mount "), 3, "{calls}");
    assert_eq!(count("/VolumeDriver.Unmount "), 3, "every mount paired with an unmount: {calls}");
}

#[test]
fn the_conformance_kit_passes_every_builtin_and_example_driver() {
    if !berth_tests::require_root("the_conformance_kit_passes_every_builtin_and_example_driver") {
        return;
    }
    let plugins = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let _server = python_plugin("volume", &plugins.path().join("pyvol.sock"), root.path(), None);
    let dir = plugins.path().to_str().unwrap();
    let (dirvol, loopvol) = (example_plugin("dirvol"), example_plugin("loopvol"));
    let (cninet, vfsgraph) = (example_plugin("cninet"), example_plugin("vfsgraph"));
    let targets: Vec<Vec<&str>> = vec![
        vec!["local"],
        vec!["bridge"],
        vec!["macvlan"],
        vec!["null"],
        vec!["host"],
        vec!["vfs"],
        vec!["fuse-union"],
        // The overlay network driver needs a cluster store; its graph
        // namesake is checked here.
        vec!["--interface", "graph", "overlay"],
        vec![dirvol.to_str().unwrap()],
        vec![cninet.to_str().unwrap()],
        vec![vfsgraph.to_str().unwrap()],
        vec!["-o", "size=16M", loopvol.to_str().unwrap()],
        vec!["--plugin-dir", dir, "pyvol"],
    ];
    for t in targets {
        let o = Command::new(berth_tests::bin("berth"))
            .args(["plugin", "check"])
            .args(&t)
            .output()
            .unwrap();
        let report = text(&o);
        assert!(o.status.success(), "berth plugin check {t:?}:\n{report}");
        assert!(
            report.contains("PASS") && report.contains(" 0 failed") && !report.contains("FAIL"),
            "{t:?}:\n{report}"
        );
    }
    // The kit fails a plugin that breaks the contract, naming the clause.
    let o = Command::new(berth_tests::bin("berth"))
        .args(["plugin", "check"])
        .arg(example_plugin("faulty"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("FAIL  mount gives a writable directory"), "{}", text(&o));
    let o = Command::new(berth_tests::bin("berth"))
        .args(["plugin", "check", "nosuchdriver"])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && text(&o).contains("no plugin \"nosuchdriver\""),
        "{}",
        text(&o)
    );
}

#[test]
fn a_docker_style_network_plugin_over_http_connects_containers() {
    let Some((plugins, d)) = with_plugins("a_docker_style_network_plugin_over_http_connects_containers", &[], &[]) else {
        return;
    };
    let dir = plugins.path().to_str().unwrap();
    let root = tempfile::tempdir().unwrap();
    let server = python_plugin("network", &plugins.path().join("pynet.sock"), root.path(), Some(&d));
    let made = docker(&d, &["network", "create", "-d", "pynet", "--subnet", "10.77.0.0/24", "pn"]);
    assert!(made.status.success(), "{}", text(&made));
    let id = out(&made);
    let bridge = format!("pyn{}", &id[..10]);
    let links = || berth_tests::ok(d.on_host("ip").args(["-o", "link"]));
    assert!(links().contains(&bridge), "the plugin made its bridge: {}", links());
    berth_tests::web_server(d.docker(), "pyweb", &["--network", "pn"]);
    let web_ip = berth_tests::inspect(&d, "pyweb", "{{(index .NetworkSettings.Networks \"pn\").IPAddress}}");
    assert!(web_ip.starts_with("10.77.0."), "{web_ip}");
    let client = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "pn",
            "busybox",
            "sh",
            "-c",
            &format!("ip -4 -o addr show eth0; ip route; timeout 5 wget -qO- http://{web_ip}/hostname"),
        ],
    );
    let o = text(&client);
    assert!(client.status.success(), "{o}");
    assert!(o.contains("inet 10.77.0."), "the moved link has the engine's address: {o}");
    assert!(
        o.contains("default via 10.77.0.1"),
        "the plugin's gateway is the default route: {o}"
    );
    assert!(o.contains("10.88.0.0/16 via 10.77.0.1"), "the plugin's static route: {o}");
    assert!(docker(&d, &["rm", "-f", "pyweb"]).status.success());
    let rm = docker(&d, &["network", "rm", "pn"]);
    assert!(rm.status.success(), "{}", text(&rm));
    assert!(!links().contains("pyn"), "the plugin's bridge and veths are gone: {}", links());
    let calls = std::fs::read_to_string(root.path().join("calls.log")).unwrap();
    let count = |m: &str| calls.lines().filter(|l| l.starts_with(m)).count();
    assert_eq!(count("/NetworkDriver.Join"), 2, "{calls}");
    assert_eq!(count("/NetworkDriver.Leave"), 2, "{calls}");
    assert_eq!(count("returned pyc"), 2, "{calls}");
    assert!(
        !calls.contains(" no\n"),
        "each container's link was given back before Leave: {calls}"
    );
    assert_eq!(count("/NetworkDriver.DeleteEndpoint"), 2, "{calls}");
    // The conformance kit, run where the plugin is (berthd's namespace).
    let kit = d
        .on_host(berth_tests::bin("berth").to_str().unwrap())
        .args(["plugin", "check", "--plugin-dir", dir, "pynet"])
        .output()
        .unwrap();
    assert!(kit.status.success() && text(&kit).contains(" 0 failed"), "{}", text(&kit));
    // A network whose plugin has gone is still removed (the driver's
    // failure reported in berthd's log).
    assert!(
        docker(&d, &["network", "create", "-d", "pynet", "--subnet", "10.78.0.0/24", "orphan"])
            .status
            .success()
    );
    drop(server);
    let rm = docker(&d, &["network", "rm", "orphan"]);
    assert!(rm.status.success(), "{}", text(&rm));
    assert!(d.log().contains("remove network orphan: driver pynet"), "{}", d.log());
}

#[test]
fn a_cni_network_plugin_connects_containers() {
    let Some((_plugins, d)) = with_plugins("a_cni_network_plugin_connects_containers", &["cninet"], &[]) else {
        return;
    };
    let made = docker(&d, &["network", "create", "-d", "cninet", "--subnet", "10.66.0.0/24", "cn"]);
    assert!(made.status.success(), "{}", text(&made));
    let id = out(&made);
    let bad = docker(&d, &["network", "create", "-d", "cninet", "-o", "colour=red", "cn2"]);
    assert!(!bad.status.success() && text(&bad).contains("colour"), "{}", text(&bad));
    berth_tests::web_server(d.docker(), "cniweb", &["--network", "cn"]);
    let web_ip = berth_tests::inspect(&d, "cniweb", "{{(index .NetworkSettings.Networks \"cn\").IPAddress}}");
    let web_mac = berth_tests::inspect(&d, "cniweb", "{{(index .NetworkSettings.Networks \"cn\").MacAddress}}");
    assert!(web_ip.starts_with("10.66.0."), "{web_ip}");
    let seen_mac = out(&docker(&d, &["exec", "cniweb", "cat", "/sys/class/net/eth0/address"]));
    assert_eq!(seen_mac, web_mac, "the interface has the MAC berth reports");
    let client = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "cn",
            "busybox",
            "sh",
            "-c",
            &format!("ip route; timeout 5 wget -qO- http://{web_ip}/hostname"),
        ],
    );
    let o = text(&client);
    assert!(client.status.success(), "{o}");
    assert!(o.contains("default via 10.66.0.1"), "{o}");
    assert!(docker(&d, &["rm", "-f", "cniweb"]).status.success());
    let bridge = format!("cni-{}", &id[..10]);
    let links = || berth_tests::ok(d.on_host("ip").args(["-o", "link"]));
    assert!(links().contains(&bridge), "the CNI bridge: {}", links());
    assert!(!links().contains("veth"), "CNI DEL took the veths: {}", links());
    let rm = docker(&d, &["network", "rm", "cn"]);
    assert!(rm.status.success(), "{}", text(&rm));
    assert!(!links().contains(&bridge), "{}", links());
}

#[test]
fn a_storage_driver_plugin_holds_images_and_containers() {
    let Some((_plugins, d)) = with_plugins(
        "a_storage_driver_plugin_holds_images_and_containers",
        &["vfsgraph"],
        &["--storage-driver", "vfsgraph"],
    ) else {
        return;
    };
    assert_eq!(out(&docker(&d, &["info", "--format", "{{.Driver}}"])), "vfsgraph");
    let run = docker(
        &d,
        &[
            "run",
            "--name",
            "onplugin",
            "busybox",
            "sh",
            "-c",
            "echo layered > /made && cat /made /etc/hostname",
        ],
    );
    assert!(run.status.success(), "{}", text(&run));
    assert!(out(&run).starts_with("layered"), "{}", text(&run));
    let layers = d.data_root().join("plugins/vfsgraph/layers");
    let count = || std::fs::read_dir(&layers).map(|r| r.count()).unwrap_or(0);
    assert!(
        count() >= 2,
        "the image's layer and the container's are the plugin's: {}",
        layers.display()
    );
    let driver = out(&docker(&d, &["inspect", "--format", "{{.GraphDriver.Name}}", "onplugin"]));
    assert_eq!(driver, "vfsgraph");
    assert!(docker(&d, &["rm", "onplugin"]).status.success());
    assert!(docker(&d, &["rmi", "busybox"]).status.success());
    eventually(10, "the plugin's layers to go with the image", || count() == 0);
    // A storage driver nobody has stops berthd with its name.
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new("unshare")
        .args(["--net", "--"])
        .arg(berth_tests::bin("berthd"))
        .arg("-H")
        .arg(format!("unix://{}/s.sock", tmp.path().display()))
        .arg("--data-root")
        .arg(tmp.path().join("root"))
        .arg("--exec-root")
        .arg(tmp.path().join("run"))
        .args(["--storage-driver", "nosuch"])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && text(&o).contains("storage driver \"nosuch\""),
        "{}",
        text(&o)
    );
}

#[test]
fn an_ipam_plugin_hands_out_a_networks_addresses() {
    let Some((plugins, d)) = with_plugins("an_ipam_plugin_hands_out_a_networks_addresses", &[], &[]) else {
        return;
    };
    let dir = plugins.path().to_str().unwrap();
    let root = tempfile::tempdir().unwrap();
    let _server = python_plugin("ipam", &plugins.path().join("pyipam.sock"), root.path(), None);
    let made = docker(&d, &["network", "create", "--ipam-driver", "pyipam", "pi"]);
    assert!(made.status.success(), "{}", text(&made));
    assert_eq!(
        out(&docker(
            &d,
            &[
                "network",
                "inspect",
                "--format",
                "{{.IPAM.Driver}} {{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}",
                "pi"
            ]
        )),
        "pyipam 10.55.0.0/24 10.55.0.1"
    );
    let first = docker(&d, &["run", "-d", "--name", "ipa", "--network", "pi", "busybox", "sleep", "60"]);
    assert!(first.status.success(), "{}", text(&first));
    let ip = |name: &str| berth_tests::inspect(&d, name, "{{(index .NetworkSettings.Networks \"pi\").IPAddress}}");
    assert_eq!(ip("ipa"), "10.55.0.2");
    let second = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "pi",
            "busybox",
            "sh",
            "-c",
            "ip -4 -o addr show eth0; ping -c1 -W2 10.55.0.2 >/dev/null && echo reached",
        ],
    );
    let o = text(&second);
    assert!(o.contains("inet 10.55.0.3/24") && o.contains("reached"), "{o}");
    let asked = docker(&d, &["run", "--rm", "--network", "pi", "--ip", "10.55.0.2", "busybox", "true"]);
    assert!(
        !asked.status.success() && text(&asked).contains("10.55.0.2 is taken"),
        "the driver's refusal reaches the user: {}",
        text(&asked)
    );
    assert!(docker(&d, &["rm", "-f", "ipa"]).status.success());
    let bad = docker(
        &d,
        &["network", "create", "--ipam-driver", "pyipam", "--subnet", "10.56.0.0/16", "pi2"],
    );
    assert!(!bad.status.success() && text(&bad).contains("/24 pools only"), "{}", text(&bad));
    assert!(docker(&d, &["network", "rm", "pi"]).status.success());
    let calls = std::fs::read_to_string(root.path().join("calls.log")).unwrap();
    let count = |m: &str| calls.lines().filter(|l| l.starts_with(m)).count();
    assert_eq!(
        count("/IpamDriver.RequestAddress"),
        count("/IpamDriver.ReleaseAddress") + 1,
        "every address given back but the refused one: {calls}"
    );
    assert_eq!(count("/IpamDriver.RequestPool"), 2, "{calls}");
    assert_eq!(count("/IpamDriver.ReleasePool"), 1, "{calls}");
    // The conformance kit passes it (its calls come after those counted).
    let kit = Command::new(berth_tests::bin("berth"))
        .args(["plugin", "check", "--plugin-dir", dir, "pyipam"])
        .output()
        .unwrap();
    assert!(
        kit.status.success() && text(&kit).contains("IpamDriver") && text(&kit).contains(" 0 failed"),
        "{}",
        text(&kit)
    );
    let none = docker(&d, &["network", "create", "--ipam-driver", "nosuch", "pi3"]);
    assert!(!none.status.success() && text(&none).contains("nosuch"), "{}", text(&none));
}

#[test]
fn a_plugin_is_disabled_unloaded_and_enabled_again() {
    let Some((plugins, mut d)) = with_plugins("a_plugin_is_disabled_unloaded_and_enabled_again", &["dirvol"], &[]) else {
        return;
    };
    let so = plugins.path().join("libdirvol.so");
    let loaded = |d: &Berthd| {
        std::fs::read_to_string(format!("/proc/{}/maps", d.pid()))
            .unwrap()
            .contains(so.to_str().unwrap())
    };
    assert!(loaded(&d), "loaded at start");
    let berth = |d: &Berthd, args: &[&str]| d.berth().args(args).output().unwrap();
    assert!(docker(&d, &["volume", "create", "-d", "dirvol", "kept"]).status.success());
    let refused = berth(&d, &["plugin", "disable", "dirvol"]);
    assert!(
        !refused.status.success() && text(&refused).contains("in use by volume kept"),
        "{}",
        text(&refused)
    );
    let builtin = berth(&d, &["plugin", "disable", "local"]);
    assert!(
        !builtin.status.success() && text(&builtin).contains("built-in"),
        "{}",
        text(&builtin)
    );
    assert!(docker(&d, &["volume", "rm", "kept"]).status.success());
    let off = berth(&d, &["plugin", "disable", "dirvol"]);
    assert!(off.status.success(), "{}", text(&off));
    eventually(10, "berthd to unload the plugin", || !loaded(&d));
    let ls = out(&berth(&d, &["plugin", "ls", "--format", "{{.Name}} {{.Status}}"]));
    assert!(ls.contains("dirvol disabled"), "{ls}");
    let create = docker(&d, &["volume", "create", "-d", "dirvol", "again"]);
    assert!(!create.status.success() && text(&create).contains("disabled"), "{}", text(&create));
    // Remembered across a restart.
    d.restart().unwrap();
    assert!(!loaded(&d), "a disabled plugin is not loaded at start");
    let on = berth(&d, &["plugin", "enable", "dirvol"]);
    assert!(on.status.success(), "{}", text(&on));
    assert!(loaded(&d), "loaded again");
    assert!(docker(&d, &["volume", "create", "-d", "dirvol", "again"]).status.success());
    let twice = berth(&d, &["plugin", "enable", "dirvol"]);
    assert!(!twice.status.success() && text(&twice).contains("not disabled"), "{}", text(&twice));
}
