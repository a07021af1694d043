//! berthd's API surface, driven by real clients: the `berth` CLI, the
//! stock `docker` CLI and the Python docker SDK, each against a berthd of
//! the test's own.

use std::process::Command;

use berth_tests::Berthd;

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

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
    assert_eq!(o.status.code(), Some(125), "a daemon error exits 125");
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
    assert!(String::from_utf8_lossy(&o.stderr).contains("UNIX sockets only"), "{}", text(&o));
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
