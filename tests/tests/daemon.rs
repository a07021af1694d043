//! berthd's API surface, driven by real clients: the `berth` CLI, the
//! stock `docker` CLI and the Python docker SDK, each against a berthd of
//! the test's own.

use std::process::Command;

use berth_tests::{ok, text, Berthd};

#[test]
fn docker_cli_and_python_sdk_talk_to_berthd() {
    let d = Berthd::start().unwrap();
    let o = d.docker().arg("version").output().unwrap();
    assert!(o.status.success(), "docker version: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Server: berth"), "{out}");
    assert!(out.contains("1.41"), "the API version is negotiated: {out}");
    let o = d.docker().args(["info", "--format", "{{.Driver}} {{.OSType}}"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "fuse-union linux", "{}", text(&o));
    let script = format!(
        "import docker\nc = docker.DockerClient(base_url='{}')\nassert c.ping()\nv = c.version()\nprint(v['ApiVersion'], c.info()['Driver'])",
        d.host()
    );
    let o = Command::new("python3").arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "python docker SDK: {}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1.41 fuse-union");
}

#[test]
fn berth_cli_shows_versions_and_info() {
    let d = Berthd::start().unwrap();
    let o = d.berth().arg("version").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("API version:  1.41 (minimum version 1.24)"),
        "{}",
        text(&o)
    );
    let o = d.berth().args(["info", "--format", "json"]).output().unwrap();
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["DockerRootDir"].as_str(), d.data_root().to_str());
    // -H wins over BERTH_HOST.
    let o = d.berth().args(["-H", "/nonexistent/berth.sock", "version"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "a daemon error exits 1, as docker's");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/nonexistent/berth.sock") && err.contains("is berthd running"),
        "{err}"
    );
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
}

#[test]
fn api_errors_are_docker_json_with_docker_status_codes() {
    let d = Berthd::start().unwrap();
    let get = |path: &str| berth_core::client::request(&d.socket(), "GET", path, None).unwrap();
    let a = get("/v1.41/no/such/route");
    assert_eq!(a.status, 404);
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["message"], "page not found");
    let a = get("/v1.99/version");
    assert_eq!(a.status, 400);
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("Maximum supported API version is 1.41"),
        "{v}"
    );
    let a = get("/v1.12/version");
    assert_eq!(a.status, 400, "too old a client");
    let a = get("/_ping");
    assert_eq!((a.status, a.body.as_slice()), (200, &b"OK"[..]));
}

#[test]
fn berthd_refuses_plain_tcp_and_a_socket_in_use() {
    let o = Command::new(berth_tests::bin("berthd"))
        .args(["-H", "tcp://0.0.0.0:2375"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("TCP needs --tlsverify"), "{}", text(&o));
    let d = Berthd::start().unwrap();
    let o = Command::new(berth_tests::bin("berthd"))
        .arg("-H")
        .arg(d.host())
        .arg("--data-root")
        .arg(d.data_root())
        .output()
        .unwrap();
    assert!(!o.status.success(), "a second daemon on a live socket must not start");
    assert!(String::from_utf8_lossy(&o.stderr).contains("another daemon"), "{}", text(&o));
    // The first one still answers.
    assert_eq!(berth_core::client::request(&d.socket(), "GET", "/_ping", None).unwrap().status, 200);
}

#[test]
fn volumes_through_docker_cli_survive_a_daemon_crash() {
    let mut d = Berthd::start().unwrap();
    assert_eq!(ok(d.docker().args(["volume", "create", "--label", "env=test", "data"])), "data");
    ok(d.docker().args(["volume", "create", "other"]));
    let anonymous = ok(d.docker().args(["volume", "create"]));
    assert_eq!(anonymous.len(), 64, "a random name: {anonymous}");
    let path = ok(d.docker().args(["volume", "inspect", "--format", "{{.Mountpoint}}", "data"]));
    std::fs::write(std::path::Path::new(&path).join("kept"), "yes").unwrap();
    assert_eq!(ok(d.docker().args(["volume", "ls", "-q", "--filter", "label=env=test"])), "data");
    assert_eq!(ok(d.docker().args(["volume", "ls", "-q", "--filter", "name=oth"])), "other");
    // kill -9 and start again: the volumes and their data are all there.
    d.restart().unwrap();
    let mut names: Vec<String> = ok(d.docker().args(["volume", "ls", "-q"])).lines().map(str::to_string).collect();
    names.sort();
    let mut want = vec!["data".to_string(), "other".to_string(), anonymous.clone()];
    want.sort();
    assert_eq!(names, want);
    assert_eq!(
        ok(d.docker().args(["volume", "inspect", "--format", "{{.Labels.env}}", "data"])),
        "test"
    );
    assert_eq!(std::fs::read_to_string(std::path::Path::new(&path).join("kept")).unwrap(), "yes");
    // Errors: missing, bad names, unknown drivers and options.
    let o = d.docker().args(["volume", "rm", "nope"]).output().unwrap();
    assert!(!o.status.success() && text(&o).contains("no such volume"), "{}", text(&o));
    let o = d.docker().args(["volume", "create", "bad/name"]).output().unwrap();
    assert!(!o.status.success() && text(&o).contains("invalid characters"), "{}", text(&o));
    let o = d.docker().args(["volume", "create", "-d", "nosuchdriver", "x1"]).output().unwrap();
    assert!(!o.status.success() && text(&o).contains("nosuchdriver"), "{}", text(&o));
    let o = d
        .docker()
        .args(["volume", "create", "--opt", "colour=blue", "x2"])
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("colour"), "{}", text(&o));
    assert!(
        ok(d.docker().args(["volume", "ls", "-q"])).lines().all(|n| n != "x1" && n != "x2"),
        "failed creates leave nothing"
    );
    let o = d
        .docker()
        .args(["volume", "prune", "-f", "--filter", "label!=keep"])
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("invalid filter"), "{}", text(&o));
    assert_eq!(
        ok(d.docker().args(["volume", "ls", "-q"])).lines().count(),
        3,
        "a refused prune removes nothing"
    );
    ok(d.docker().args(["volume", "rm", "other"]));
    let out = ok(d.docker().args(["volume", "prune", "-f"]));
    assert!(out.contains("data") && out.contains(&anonymous), "{out}");
    assert_eq!(ok(d.docker().args(["volume", "ls", "-q"])), "");
    assert!(!std::path::Path::new(&path).exists(), "pruned data is gone");
}

#[test]
fn volumes_through_python_sdk_and_berth_cli() {
    let d = Berthd::start().unwrap();
    let script = format!(
        "import docker\nc = docker.DockerClient(base_url='{}')\n\
         v = c.volumes.create(name='py', labels={{'k': 'v'}})\n\
         assert c.volumes.get('py').attrs['Labels'] == {{'k': 'v'}}\n\
         print(sorted(x.name for x in c.volumes.list()))\n\
         c.volumes.get('py').remove()\n\
         try:\n    c.volumes.get('py')\n    raise SystemExit('still there')\nexcept docker.errors.NotFound:\n    print('gone')\n",
        d.host()
    );
    let o = Command::new("python3").arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "python docker SDK: {}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "['py']\ngone");
    let o = d.berth().args(["volume", "create", "--label", "a=b", "cli"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = d.berth().args(["volume", "ls", "-q", "-f", "label=a=b"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "cli");
    let o = d.berth().args(["volume", "inspect", "cli"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["Labels"]["a"], "b");
    let o = d.berth().args(["volume", "rm", "cli", "nope"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no such volume"), "{}", text(&o));
    let o = d.berth().args(["volume", "ls", "-q"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "", "cli was removed, nope reported");
    // A malformed body changes nothing and says what was wrong.
    let a = berth_core::client::request(&d.socket(), "POST", "/v1.41/volumes/create", Some(b"{not json")).unwrap();
    assert_eq!(a.status, 400);
    assert!(String::from_utf8_lossy(&a.body).contains("malformed volume create request"));
}

#[test]
fn local_volumes_mount_tmpfs_and_binds_from_their_options() {
    if !berth_tests::require_root("local_volumes_mount_tmpfs_and_binds_from_their_options") {
        return;
    }
    use berth_plugin::volume::{CreateRequest, MountRequest, VolumeDriver};
    let dir = tempfile::tempdir().unwrap();
    let driver = berth_fs::volume::local::LocalDriver::new(dir.path().join("local")).unwrap();
    let create = |name: &str, opts: &[(&str, &str)]| {
        driver
            .create(&CreateRequest {
                name: name.into(),
                opts: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            })
            .unwrap()
    };
    let mounted = |p: &std::path::Path| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find(|l| l.split(' ').nth(4).map(std::path::Path::new) == Some(p))
            .map(str::to_string)
    };
    create("tmp", &[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m,nosuid")]);
    let host = dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "from the host").unwrap();
    create("bound", &[("type", "none"), ("device", host.to_str().unwrap()), ("o", "bind")]);
    let (a, b) = (
        MountRequest {
            name: "tmp".into(),
            id: "c1".into(),
        },
        MountRequest {
            name: "tmp".into(),
            id: "c2".into(),
        },
    );
    let p = driver.mount(&a).unwrap();
    driver.mount(&b).unwrap();
    let line = mounted(&p).expect("tmpfs mounted at the volume's path");
    assert!(line.contains(" - tmpfs ") && line.contains("size=1024k"), "{line}");
    driver.unmount(&a).unwrap();
    assert!(mounted(&p).is_some(), "still used by c2");
    driver.unmount(&b).unwrap();
    assert!(mounted(&p).is_none(), "unmounted with its last user");
    let m = MountRequest {
        name: "bound".into(),
        id: "c1".into(),
    };
    let p = driver.mount(&m).unwrap();
    assert_eq!(std::fs::read_to_string(p.join("f")).unwrap(), "from the host");
    driver.unmount(&m).unwrap();
    assert!(!p.join("f").exists());
    driver.remove("bound").unwrap();
    // o=bind,ro is read-only indeed (a bind needs a remount for that).
    create(
        "readonly",
        &[("type", "none"), ("device", host.to_str().unwrap()), ("o", "bind,ro")],
    );
    let m = MountRequest {
        name: "readonly".into(),
        id: "c1".into(),
    };
    let p = driver.mount(&m).unwrap();
    assert_eq!(std::fs::read_to_string(p.join("f")).unwrap(), "from the host");
    let err = std::fs::write(p.join("g"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    driver.unmount(&m).unwrap();
    assert_eq!(
        std::fs::read_to_string(host.join("f")).unwrap(),
        "from the host",
        "removing a bind volume keeps the host's files"
    );
}

#[test]
fn images_load_list_inspect_tag_and_remove_through_docker_and_python() {
    if !berth_tests::require_root("images_load_list_inspect_tag_and_remove_through_docker_and_python") {
        return;
    }
    let mut d = Berthd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    let id = berth_tests::busybox_docker_archive(&archive, &["busybox:latest"]).unwrap();
    let out = ok(d.docker().args(["load", "-i"]).arg(&archive));
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert_eq!(
        ok(d.docker().args(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])),
        format!("busybox:latest {}", &id[7..19])
    );
    assert_eq!(
        ok(d.docker().args([
            "image",
            "inspect",
            "--format",
            "{{json .Config.Cmd}} {{.Os}} {{.GraphDriver.Name}}",
            "busybox"
        ])),
        r#"["sh"] linux fuse-union"#
    );
    assert_eq!(
        ok(d.docker().args(["history", "--format", "{{.CreatedBy}}", "busybox"])),
        "busybox_docker_archive"
    );
    // The layer is in the graph driver, whole.
    let chain = ok(d
        .docker()
        .args(["image", "inspect", "--format", "{{index .RootFS.Layers 0}}", "busybox"]));
    let layer = d
        .data_root()
        .join("fuse-union")
        .join(chain.trim_start_matches("sha256:"))
        .join("diff");
    assert!(layer.join("bin/busybox").is_file(), "{} holds busybox", layer.display());
    assert_eq!(
        ok(d.docker().args(["images", "-q", "busybox"])),
        &id[7..19],
        "filtered by reference"
    );
    assert_eq!(ok(d.docker().args(["images", "-q", "nosuch"])), "");
    assert_eq!(ok(d.docker().args(["images", "-q", "-f", "dangling=true"])), "");
    let o = d.docker().args(["image", "prune", "-f", "--filter", "until=1h"]).output().unwrap();
    assert!(
        !o.status.success() && text(&o).contains("invalid filter 'until'"),
        "an unknown filter is refused, not ignored: {}",
        text(&o)
    );
    ok(d.docker().args(["tag", "busybox", "mybox:v1"]));
    let mut tags: Vec<String> = ok(d.docker().args(["images", "--format", "{{.Repository}}:{{.Tag}}"]))
        .lines()
        .map(str::to_string)
        .collect();
    tags.sort();
    assert_eq!(tags, ["busybox:latest", "mybox:v1"]);
    // Names and images survive a crash of berthd.
    d.restart().unwrap();
    let script = format!(
        "import docker\nc = docker.DockerClient(base_url='{}')\n\
         i = c.images.get('mybox:v1')\nprint(i.id, sorted(i.tags), i.labels['made-by'])\n",
        d.host()
    );
    let o = Command::new("python3").arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "python docker SDK: {}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("{id} ['busybox:latest', 'mybox:v1'] berth-tests")
    );
    // rmi of a name untags; of the last name deletes image and layer.
    let out = ok(d.docker().args(["rmi", "mybox:v1"]));
    assert!(out.contains("Untagged: mybox:v1") && !out.contains("Deleted"), "{out}");
    let o = d.docker().args(["rmi", "nosuch"]).output().unwrap();
    assert!(!o.status.success() && text(&o).contains("No such image"), "{}", text(&o));
    let out = ok(d.docker().args(["rmi", "busybox"]));
    assert!(out.contains("Deleted: ") && out.contains(&id), "{out}");
    assert_eq!(ok(d.docker().args(["images", "-q"])), "");
    assert!(!layer.exists(), "the unused layer is gone");
    // Not an archive: refused, nothing stored.
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar at all").unwrap();
    let o = d.docker().args(["load", "-i"]).arg(&junk).output().unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(ok(d.docker().args(["images", "-q"])), "");
}

#[test]
fn berth_cli_loads_tags_lists_and_removes_images() {
    if !berth_tests::require_root("berth_cli_loads_tags_lists_and_removes_images") {
        return;
    }
    let d = Berthd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    let id = berth_tests::busybox_docker_archive(&archive, &["busybox:1.36"]).unwrap();
    let o = d.berth().args(["load", "-i"]).arg(&archive).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "Loaded image: busybox:1.36",
        "{}",
        text(&o)
    );
    // Progress goes to stderr: a start and an end line when it is no terminal.
    let size = format!("{:.1}MB", std::fs::metadata(&archive).unwrap().len() as f64 / 1e6);
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        format!("Loading {size}...\nLoading done: {size}")
    );
    let saved = dir.path().join("saved.tar");
    let o = d.berth().args(["save", "-o"]).arg(&saved).arg("busybox:1.36").output().unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stderr).contains("Saving done"),
        "{}",
        text(&o)
    );
    ok(d.berth().args(["tag", "busybox:1.36", "localhost:5000/team/app:v2"]));
    let listed = ok(d.berth().arg("images"));
    assert!(
        listed.contains("localhost:5000/team/app") && listed.contains("v2") && listed.contains(&id[7..19]),
        "{listed}"
    );
    assert!(ok(d.berth().args(["history", "busybox:1.36"])).contains("busybox_docker_archive"));
    let v: serde_json::Value = serde_json::from_str(&ok(d.berth().args(["image", "inspect", "localhost:5000/team/app:v2"]))).unwrap();
    assert_eq!(v[0]["Id"], id);
    assert_eq!(v[0]["Config"]["Cmd"][0], "sh");
    let out = ok(d.berth().args(["rmi", "localhost:5000/team/app:v2", &id[7..19]]));
    assert!(
        out.contains("Untagged: localhost:5000/team/app:v2") && out.contains(&format!("Deleted: {id}")),
        "{out}"
    );
    assert_eq!(ok(d.berth().args(["images", "-q"])), "");
    let o = d.berth().args(["load", "-i", "/nonexistent/archive.tar"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("/nonexistent/archive.tar"), "{}", text(&o));
}

#[test]
fn saved_images_load_into_another_daemon_unchanged() {
    if !berth_tests::require_root("saved_images_load_into_another_daemon_unchanged") {
        return;
    }
    let (a, b) = (Berthd::start().unwrap(), Berthd::start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    let id = berth_tests::busybox_docker_archive(&archive, &["busybox:latest"]).unwrap();
    ok(a.docker().args(["load", "-i"]).arg(&archive));
    ok(a.docker().args(["tag", "busybox", "copy:v1"]));
    // docker save from one daemon, berth load into the other.
    let saved = dir.path().join("saved.tar");
    ok(a.docker().args(["save", "-o"]).arg(&saved).arg("copy:v1"));
    assert_eq!(ok(b.berth().args(["load", "-i"]).arg(&saved)), "Loaded image: copy:v1");
    assert_eq!(
        ok(b.docker().args(["image", "inspect", "--format", "{{.Id}}", "copy:v1"])),
        id,
        "the same configuration, the same ID"
    );
    // berth save by ID takes every name.
    let by_id = dir.path().join("by-id.tar");
    ok(a.berth().args(["save", "-o"]).arg(&by_id).arg(&id[7..19]));
    let mut entries: Vec<String> = tar::Archive::new(std::fs::File::open(&by_id).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    entries.sort();
    // A docker-archive and an OCI layout in one (tests/tests/image_formats.rs).
    let blobs = entries.iter().filter(|e| e.starts_with("blobs/sha256/") && e.len() > 13).count();
    assert_eq!(blobs, 3, "config, one layer, OCI manifest, each once: {entries:?}");
    for f in ["index.json", "manifest.json", "oci-layout", "repositories"] {
        assert!(entries.iter().any(|e| e == f), "{f}: {entries:?}");
    }
    let manifest: serde_json::Value = {
        let mut ar = tar::Archive::new(std::fs::File::open(&by_id).unwrap());
        let mut e = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("manifest.json"))
            .unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e, &mut s).unwrap();
        serde_json::from_str(&s).unwrap()
    };
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["busybox:latest", "copy:v1"]));
    let o = a
        .docker()
        .args(["save", "-o"])
        .arg(dir.path().join("x.tar"))
        .arg("nosuch")
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("No such image"), "{}", text(&o));
}

#[test]
fn import_a_root_filesystem_and_prune_images() {
    if !berth_tests::require_root("import_a_root_filesystem_and_prune_images") {
        return;
    }
    let d = Berthd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    berth_tests::busybox_rootfs(&rootfs).unwrap();
    let tarball = dir.path().join("rootfs.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&rootfs)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let id = ok(d.docker().arg("import").arg(&tarball).arg("imported:v1"));
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        ok(d.docker()
            .args(["image", "inspect", "--format", "{{.Id}} {{len .RootFS.Layers}}", "imported:v1"])),
        format!("{id} 1")
    );
    let layer = ok(d
        .docker()
        .args(["image", "inspect", "--format", "{{index .RootFS.Layers 0}}", "imported:v1"]));
    assert!(d
        .data_root()
        .join("fuse-union")
        .join(layer.trim_start_matches("sha256:"))
        .join("diff/bin/busybox")
        .is_file());
    // An unnamed import is dangling: prune takes it, -a takes the rest.
    let dangling = ok(d.docker().arg("import").arg(&tarball));
    assert_ne!(dangling, id, "a new creation time, a new configuration");
    let out = ok(d.docker().args(["image", "prune", "-f"]));
    assert!(out.contains(&dangling) && !out.contains(&id), "{out}");
    assert_eq!(ok(d.docker().args(["images", "-q"])), &id[7..19]);
    let out = ok(d.docker().args(["image", "prune", "-a", "-f"]));
    assert!(out.contains(&id), "{out}");
    assert_eq!(ok(d.docker().args(["images", "-q"])), "");
    // Not a tarball: refused, nothing stored.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, "definitely not a tar").unwrap();
    let o = d.docker().arg("import").arg(&junk).arg("junk:v1").output().unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(ok(d.docker().args(["images", "-q"])), "");
}

#[test]
fn system_df_counts_images_and_volumes() {
    if !berth_tests::require_root("system_df_counts_images_and_volumes") {
        return;
    }
    let d = Berthd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    berth_tests::busybox_docker_archive(&archive, &["busybox:latest"]).unwrap();
    ok(d.docker().args(["load", "-i"]).arg(&archive));
    ok(d.docker().args(["volume", "create", "data"]));
    let path = ok(d.docker().args(["volume", "inspect", "--format", "{{.Mountpoint}}", "data"]));
    std::fs::write(std::path::Path::new(&path).join("blob"), vec![1u8; 1 << 20]).unwrap();
    let out = ok(d.docker().args(["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]));
    assert!(
        out.contains("Images 1") && out.contains("Local Volumes 1") && out.contains("Containers 0"),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_slice(
        &berth_core::client::request(&d.socket(), "GET", "/v1.41/system/df", None)
            .unwrap()
            .body,
    )
    .unwrap();
    assert!(v["LayersSize"].as_u64().unwrap() > 1_000_000, "busybox is in the layers: {v}");
    assert!(v["Volumes"][0]["UsageData"]["Size"].as_u64().unwrap() >= 1 << 20, "{v}");
    let out = ok(d.berth().args(["system", "df"]));
    assert!(out.contains("Images") && out.contains("Local Volumes"), "{out}");
}

#[test]
fn archives_that_point_outside_are_refused_and_the_data_root_is_closed() {
    if !berth_tests::require_root("archives_that_point_outside_are_refused_and_the_data_root_is_closed") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let d = Berthd::start().unwrap();
    // manifest.json names a configuration that is a symlink to a host file.
    let mut b = tar::Builder::new(Vec::new());
    let manifest = br#"[{"Config":"cfg.json","RepoTags":["evil:latest"],"Layers":[]}]"#;
    let mut h = berth_core::image::archive::file_header(manifest.len() as u64);
    b.append_data(&mut h, "manifest.json", &manifest[..]).unwrap();
    let mut l = tar::Header::new_gnu();
    l.set_entry_type(tar::EntryType::Symlink);
    l.set_size(0);
    l.set_mode(0o777);
    l.set_uid(0);
    l.set_gid(0);
    l.set_mtime(0);
    b.append_link(&mut l, "cfg.json", "/etc/passwd").unwrap();
    let archive = b.into_inner().unwrap();
    let a = berth_core::client::request(&d.socket(), "POST", "/v1.41/images/load", Some(&archive)).unwrap();
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
    assert!(String::from_utf8_lossy(&a.body).contains("not a file inside the archive"));
    let o = d.docker().args(["images", "-q"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "", "nothing stored");
    // Layers keep set-id files: the data root lets nobody list it, and
    // the graph driver's and volumes' homes let nobody in.
    let mode = |p: std::path::PathBuf| std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(d.data_root()), 0o711);
    assert_eq!(mode(d.data_root().join("fuse-union")), 0o700);
    assert_eq!(mode(d.data_root().join("volumes/local")), 0o700);
}

/// Runs openssl, which must succeed.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let o = Command::new("openssl").current_dir(dir).args(args).output().unwrap();
    assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as
/// Docker's "protect the daemon socket" guide makes them.
fn tls_certificates(dir: &std::path::Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
        ],
    );
    for (name, ext) in [
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}-key.pem"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

#[test]
fn tcp_is_served_only_with_tls_and_client_certificates() {
    if !berth_tests::require_root("tcp_is_served_only_with_tls_and_client_certificates") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    tls_certificates(dir.path());
    // berthd and its clients in a namespace of their own: its networks
    // stay out of the machine's, and the port is surely free.
    let p = |f: &str| dir.path().join(f);
    berth_net::netns::create(&p("netns")).unwrap();
    struct Pin(std::path::PathBuf);
    impl Drop for Pin {
        fn drop(&mut self) {
            let _ = berth_net::netns::remove(&self.0);
        }
    }
    let _pin = Pin(p("netns"));
    let port = 2376;
    let mut child = berth_tests::in_netns(&p("netns"), berth_tests::bin("berthd"))
        .arg("-H")
        .arg(format!("unix://{}", p("berth.sock").display()))
        .arg("-H")
        .arg(format!("tcp://127.0.0.1:{port}"))
        .arg("--tlsverify")
        .arg("--tlscacert")
        .arg(p("ca.pem"))
        .arg("--tlscert")
        .arg(p("server.pem"))
        .arg("--tlskey")
        .arg(p("server-key.pem"))
        .arg("--data-root")
        .arg(p("root"))
        .arg("--exec-root")
        .arg(p("run"))
        .stderr(std::fs::File::create(p("berthd.log")).unwrap())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Kill(&mut child);
    let host = format!("tcp://127.0.0.1:{port}");
    let docker = |tls: bool| {
        let mut c = berth_tests::in_netns(&p("netns"), "docker");
        c.env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", p("docker-config"))
            .arg("-H")
            .arg(&host);
        if tls {
            c.arg("--tlsverify")
                .arg("--tlscacert")
                .arg(p("ca.pem"))
                .arg("--tlscert")
                .arg(p("client.pem"))
                .arg("--tlskey")
                .arg(p("client-key.pem"));
        }
        c.args(["version", "--format", "{{.Server.Version}}"]);
        c
    };
    let mut answered = false;
    for _ in 0..100 {
        if docker(true).output().unwrap().status.success() {
            answered = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        answered,
        "berthd over TLS: {}",
        std::fs::read_to_string(p("berthd.log")).unwrap_or_default()
    );
    assert_eq!(ok(&mut docker(true)), env!("CARGO_PKG_VERSION"));
    // Plain HTTP on the TLS port gets nothing.
    let o = docker(false).output().unwrap();
    assert!(!o.status.success(), "plain TCP must not be answered: {}", text(&o));
    // TLS without a client certificate is refused in the handshake.
    let mut c = berth_tests::in_netns(&p("netns"), "docker");
    c.env_remove("DOCKER_HOST")
        .env("DOCKER_CONFIG", p("docker-config"))
        .arg("-H")
        .arg(&host)
        .arg("--tls")
        .arg("--tlscacert")
        .arg(p("ca.pem"))
        .arg("version");
    let o = c.output().unwrap();
    assert!(
        !o.status.success() || !String::from_utf8_lossy(&o.stdout).contains("Server:"),
        "a client without a certificate must be refused: {}",
        text(&o)
    );
    // The UNIX socket serves alongside.
    assert_eq!(
        berth_core::client::request(&p("berth.sock"), "GET", "/_ping", None).unwrap().status,
        200
    );
    // --tlsverify without a CA, or TLS without a key, is refused at start.
    let o = Command::new(berth_tests::bin("berthd"))
        .args(["-H", "tcp://127.0.0.1:1", "--tlsverify", "--tlscert"])
        .arg(p("server.pem"))
        .arg("--tlskey")
        .arg(p("server-key.pem"))
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("--tlscacert"), "{}", text(&o));
}
