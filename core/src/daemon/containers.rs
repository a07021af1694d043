//! The container endpoints and the life of a container: create (a
//! record, a writable layer, its volumes), start (rootfs mounted, OCI
//! bundle written, a monitor started, `berth-runtime start`), the exit
//! (recorded by the monitor, seen by a watcher task, mounts released,
//! restart policy applied), stop, kill, remove, wait, list, inspect, and
//! the live restore of containers that ran on while berthd was down.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Daemon, Failure};
use crate::container::{self, spec, ContainerError, Entry, MountPoint, Record, State};
use crate::monitor::{self, protocol, Exit};

pub fn failure(e: ContainerError) -> Failure {
    let status = match &e {
        ContainerError::NotFound(_) => StatusCode::NOT_FOUND,
        ContainerError::Conflict(_) => StatusCode::CONFLICT,
        ContainerError::Invalid(_) => StatusCode::BAD_REQUEST,
        ContainerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, e.to_string())
}

fn bad(msg: impl Into<String>) -> Failure {
    (StatusCode::BAD_REQUEST, msg.into())
}

fn internal(msg: impl Into<String>) -> Failure {
    (StatusCode::INTERNAL_SERVER_ERROR, msg.into())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn null_or_empty(v: &Value) -> bool {
    v.is_null() || v.as_array().is_some_and(|a| a.is_empty()) || v.as_str().is_some_and(str::is_empty)
}

/// The image's configuration under the container's: Docker's rules
/// (the user's Entrypoint drops the image's Cmd; Env merged by key;
/// ExposedPorts, Volumes and Labels merged).
fn merge_config(mut cfg: Value, image: &Value) -> Value {
    // `--entrypoint ""` clears the image's entrypoint and its command.
    if cfg["Entrypoint"].as_array().is_some_and(|a| a.len() == 1 && a[0] == "") {
        cfg["Entrypoint"] = Value::Null;
        return merge_rest(cfg, image);
    }
    let user_entrypoint = !null_or_empty(&cfg["Entrypoint"]);
    if !user_entrypoint {
        cfg["Entrypoint"] = image["Entrypoint"].clone();
        if null_or_empty(&cfg["Cmd"]) {
            cfg["Cmd"] = image["Cmd"].clone();
        }
    }
    merge_rest(cfg, image)
}

/// Everything but the command: Env by key, the rest as Docker merges it.
fn merge_rest(mut cfg: Value, image: &Value) -> Value {
    let mut env = strings(&image["Env"]);
    for e in strings(&cfg["Env"]) {
        let key = e.split('=').next().unwrap_or_default().to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(e);
    }
    cfg["Env"] = json!(env);
    for k in ["WorkingDir", "User", "StopSignal"] {
        if null_or_empty(&cfg[k]) && !null_or_empty(&image[k]) {
            cfg[k] = image[k].clone();
        }
    }
    for k in ["ExposedPorts", "Volumes", "Labels"] {
        let mut merged: Map<String, Value> = image[k].as_object().cloned().unwrap_or_default();
        merged.extend(cfg[k].as_object().cloned().unwrap_or_default());
        cfg[k] = if merged.is_empty() && cfg[k].is_null() {
            Value::Null
        } else {
            Value::Object(merged)
        };
    }
    cfg
}

/// `-v`, `--mount`, `--tmpfs` and the image's VOLUMEs as mount points.
fn mount_points(d: &Daemon, cfg: &Value, hc: &Value) -> Result<Vec<MountPoint>, Failure> {
    let mut out: Vec<MountPoint> = Vec::new();
    let default_driver = hc["VolumeDriver"].as_str().filter(|s| !s.is_empty()).unwrap_or("local").to_string();
    let check_dest = |dest: &str, out: &[MountPoint]| -> Result<(), Failure> {
        if !dest.starts_with('/') || dest == "/" {
            return Err(bad(format!(
                "invalid mount destination {dest:?}: it must be an absolute path other than /"
            )));
        }
        if out
            .iter()
            .any(|m| m.destination.trim_end_matches('/') == dest.trim_end_matches('/'))
        {
            return Err(bad(format!("Duplicate mount point: {dest}")));
        }
        Ok(())
    };
    for b in strings(&hc["Binds"]) {
        let parts: Vec<&str> = b.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, o] => (*s, *d, *o),
            _ => return Err(bad(format!("invalid volume specification: '{b}'"))),
        };
        if src.is_empty() {
            return Err(bad(format!("invalid volume specification: '{b}'")));
        }
        let mut rw = true;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => rw = false,
                "rw" | "z" | "Z" | "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "nocopy" => {}
                other => return Err(bad(format!("invalid mode: {other}"))),
            }
        }
        check_dest(dst, &out)?;
        if src.starts_with('/') {
            // As docker: a missing bind source of -v is made a directory.
            std::fs::create_dir_all(src).map_err(|e| bad(format!("bind source path {src}: {e}")))?;
            out.push(MountPoint {
                kind: "bind".into(),
                name: String::new(),
                source: src.into(),
                destination: dst.into(),
                driver: String::new(),
                rw,
                options: String::new(),
                anonymous: false,
            });
        } else {
            out.push(MountPoint {
                kind: "volume".into(),
                name: src.into(),
                source: String::new(),
                destination: dst.into(),
                driver: default_driver.clone(),
                rw,
                options: String::new(),
                anonymous: false,
            });
        }
    }
    for m in hc["Mounts"].as_array().into_iter().flatten() {
        let kind = m["Type"].as_str().unwrap_or_default();
        let target = m["Target"].as_str().unwrap_or_default();
        let source = m["Source"].as_str().unwrap_or_default();
        let rw = !m["ReadOnly"].as_bool().unwrap_or(false);
        check_dest(target, &out)?;
        match kind {
            "bind" => {
                if !std::path::Path::new(source).is_absolute() || !std::path::Path::new(source).exists() {
                    return Err(bad(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {source}"
                    )));
                }
                out.push(MountPoint {
                    kind: "bind".into(),
                    name: String::new(),
                    source: source.into(),
                    destination: target.into(),
                    driver: String::new(),
                    rw,
                    options: String::new(),
                    anonymous: false,
                });
            }
            "volume" => {
                let driver = m["VolumeOptions"]["DriverConfig"]["Name"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or(&default_driver);
                let (name, anonymous) = if source.is_empty() {
                    (container::new_id(), true)
                } else {
                    (source.to_string(), false)
                };
                out.push(MountPoint {
                    kind: "volume".into(),
                    name,
                    source: String::new(),
                    destination: target.into(),
                    driver: driver.into(),
                    rw,
                    options: String::new(),
                    anonymous,
                });
            }
            "tmpfs" => {
                let mut opts = Vec::new();
                if let Some(s) = m["TmpfsOptions"]["SizeBytes"].as_i64().filter(|&s| s > 0) {
                    opts.push(format!("size={s}"));
                }
                if let Some(mode) = m["TmpfsOptions"]["Mode"].as_u64().filter(|&m| m > 0) {
                    opts.push(format!("mode={mode:o}"));
                }
                out.push(MountPoint {
                    kind: "tmpfs".into(),
                    name: String::new(),
                    source: String::new(),
                    destination: target.into(),
                    driver: String::new(),
                    rw,
                    options: opts.join(","),
                    anonymous: false,
                });
            }
            other => {
                return Err(bad(format!(
                    "invalid mount config: mount type {other:?} is not supported (bind, volume or tmpfs)"
                )))
            }
        }
    }
    for (dest, opts) in hc["Tmpfs"].as_object().into_iter().flatten() {
        check_dest(dest, &out)?;
        let opts = opts.as_str().unwrap_or_default();
        let rw = !opts.split(',').any(|o| o == "ro");
        let opts: Vec<&str> = opts.split(',').filter(|o| !o.is_empty() && *o != "ro" && *o != "rw").collect();
        out.push(MountPoint {
            kind: "tmpfs".into(),
            name: String::new(),
            source: String::new(),
            destination: dest.clone(),
            driver: String::new(),
            rw,
            options: opts.join(","),
            anonymous: false,
        });
    }
    for dest in cfg["Volumes"].as_object().into_iter().flatten().map(|(k, _)| k) {
        if !out
            .iter()
            .any(|m| m.destination.trim_end_matches('/') == dest.trim_end_matches('/'))
        {
            check_dest(dest, &out)?;
            out.push(MountPoint {
                kind: "volume".into(),
                name: container::new_id(),
                source: String::new(),
                destination: dest.clone(),
                driver: default_driver.clone(),
                rw: true,
                options: String::new(),
                anonymous: true,
            });
        }
    }
    let _ = d;
    Ok(out)
}

fn check_restart_policy(hc: &Value) -> Result<(), Failure> {
    let name = hc["RestartPolicy"]["Name"].as_str().unwrap_or("");
    let max = hc["RestartPolicy"]["MaximumRetryCount"].as_i64().unwrap_or(0);
    match name {
        "" | "no" | "always" | "unless-stopped" if max == 0 => {}
        "on-failure" if max >= 0 => {}
        "" | "no" | "always" | "unless-stopped" => {
            return Err(bad(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'",
            ))
        }
        "on-failure" => return Err(bad("invalid restart policy: maximum retry count cannot be negative")),
        other => return Err(bad(format!("invalid restart policy '{other}'"))),
    }
    if hc["AutoRemove"].as_bool().unwrap_or(false) && !matches!(name, "" | "no") {
        return Err(bad("conflicting options: cannot specify both --restart and --rm"));
    }
    Ok(())
}

/// `POST /containers/create?name=NAME`.
pub fn create(d: &Daemon, name: Option<&str>, body: &[u8]) -> Result<Value, Failure> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON in the request body: {e}")))?;
    let Value::Object(mut cfg) = v else {
        return Err(bad("the request body must be a JSON object"));
    };
    let mut hc = cfg.remove("HostConfig").filter(|h| h.is_object()).unwrap_or_else(|| json!({}));
    // What Docker fills in for a client that left it out.
    if null_or_empty(&hc["LogConfig"]["Type"]) {
        hc["LogConfig"] = json!({ "Type": "json-file", "Config": hc["LogConfig"]["Config"].as_object().cloned().unwrap_or_default() });
    }
    if null_or_empty(&hc["RestartPolicy"]["Name"]) {
        hc["RestartPolicy"] = json!({ "Name": "no", "MaximumRetryCount": 0 });
    }
    if null_or_empty(&hc["NetworkMode"]) {
        hc["NetworkMode"] = json!("default");
    }
    let networking = cfg.remove("NetworkingConfig").unwrap_or(Value::Null);
    let cfg = Value::Object(cfg);
    let image_ref = cfg["Image"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("no image given (Config.Image is empty)"))?
        .to_string();
    let image = d.images.resolve(&image_ref).map_err(super::images::failure)?;
    let image_cfg = d.images.config(&image).map_err(super::images::failure)?;
    let cfg = merge_config(cfg, &image_cfg["config"]);
    if cfg["Entrypoint"].as_array().is_none_or(|a| a.is_empty()) && cfg["Cmd"].as_array().is_none_or(|a| a.is_empty()) {
        return Err(bad("no command specified"));
    }
    check_restart_policy(&hc)?;
    let warnings = spec::check_resources(&mut hc).map_err(bad)?;
    if let Some(w) = cfg["WorkingDir"].as_str().filter(|w| !w.is_empty() && !w.starts_with('/')) {
        return Err(bad(format!(
            "the working directory '{w}' is invalid, it needs to be an absolute path"
        )));
    }
    let networks = super::networks::at_create(d, &hc, &networking)?;
    // `container:NAME` held by ID, as Docker's: a rename cannot change it.
    if let Some(other) = hc["NetworkMode"].as_str().and_then(|m| m.strip_prefix("container:")) {
        let id = d.containers.find(other).map_err(failure)?.record().id.clone();
        hc["NetworkMode"] = json!(format!("container:{id}"));
    }
    crate::network::ports::wanted(&cfg, &hc).map_err(bad)?;
    spec::capabilities(&hc).map_err(bad)?;
    let log_type = hc["LogConfig"]["Type"].as_str().unwrap_or("");
    if !matches!(log_type, "" | "json-file") {
        return Err(bad(format!("logging driver {log_type:?} is not supported (json-file)")));
    }
    monitor::jsonlog::Rotation::from_opts(&hc["LogConfig"]["Config"].as_object().cloned().unwrap_or_default()).map_err(bad)?;
    let name = match name.filter(|n| !n.is_empty()) {
        Some(n) => container::valid_name(n).map_err(failure)?.to_string(),
        None => container::names::generate(|n| d.containers.by_name(n).is_some()),
    };
    if let Some(other) = d.containers.by_name(&name) {
        return Err(failure(ContainerError::Conflict(format!(
            "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
            other.record().id
        ))));
    }
    let mut mounts = mount_points(d, &cfg, &hc)?;
    for m in mounts.iter_mut().filter(|m| m.kind == "volume") {
        // An existing volume keeps its driver; --volume-driver only says
        // how to make a missing one.
        if let Some(driver) = d.volumes.driver_of(&m.name) {
            m.driver = driver;
        }
        d.registry
            .volume(&m.driver)
            .map_err(|e| bad(format!("volume driver {}: {e}", m.driver)))?;
    }
    let id = container::new_id();
    let parent = image
        .chain_ids
        .last()
        .map(|c| c.trim_start_matches("sha256:").to_string())
        .unwrap_or_default();
    let graph = d.images.graph();
    graph
        .create_read_write(&berth_plugin::graph::CreateRequest {
            id: id.clone(),
            parent: parent.clone(),
            mount_label: String::new(),
        })
        .map_err(|e| internal(format!("create the container's layer: {e}")))?;
    let undo_layer = || {
        let _ = graph.remove(&id);
    };
    for m in mounts.iter().filter(|m| m.kind == "volume") {
        if d.volumes.inspect(&d.registry, &m.name).is_err() {
            let body = json!({ "Name": m.name, "Driver": m.driver }).to_string();
            if let Err(e) = d.volumes.create(&d.registry, body.as_bytes()) {
                undo_layer();
                return Err(e);
            }
        }
    }
    let record = Record {
        id: id.clone(),
        name,
        created: crate::time::now_rfc3339(),
        image: image.id.clone(),
        config: {
            let mut c = cfg;
            c["Image"] = json!(image_ref);
            c
        },
        host_config: hc,
        state: State {
            status: "created".into(),
            ..Default::default()
        },
        restart_count: 0,
        mounts,
        monitor: None,
        manually_stopped: false,
        has_been_started: false,
        parent_layer: parent,
        networks,
        ports: Vec::new(),
        gateway_endpoint: None,
    };
    match d.containers.add(record) {
        Ok(e) => d.events.container("create", &e.snapshot(), &[]),
        Err(e) => {
            undo_layer();
            return Err(failure(e));
        }
    }
    Ok(json!({ "Id": id, "Warnings": warnings }))
}

/// The exec-root directory of a running container (monitor socket etc.).
fn run_dir(d: &Daemon, id: &str) -> std::path::PathBuf {
    d.exec_root.join(id)
}

fn attach_socket(d: &Daemon, id: &str) -> std::path::PathBuf {
    run_dir(d, id).join("attach.sock")
}

fn runtime_root(d: &Daemon) -> std::path::PathBuf {
    d.exec_root.join("runtime")
}

/// Runs `berth-runtime --root R ARGS`; its error text on failure.
fn runtime(d: &Daemon, args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(&d.runtime)
        .arg("--root")
        .arg(runtime_root(d))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("run {}: {e}", d.runtime.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

use super::networks::{netns_path, Sandbox};

/// Releases what start took: networks, the network namespace, volumes
/// and the root filesystem.
fn release(d: &Daemon, r: &Record, volumes: &[MountPoint], rootfs: bool) {
    if let Ok(e) = d.containers.find(&r.id) {
        super::networks::leave_all(d, &e);
    }
    if let Err(e) = berth_net::netns::remove(&netns_path(d, &r.id)) {
        eprintln!("berthd: release the network namespace of {}: {e}", r.id);
    }
    for m in volumes.iter().filter(|m| m.kind == "volume") {
        if let Ok(driver) = d.registry.volume(&m.driver) {
            let _ = driver.unmount(&berth_plugin::volume::MountRequest {
                name: m.name.clone(),
                id: r.id.clone(),
            });
        }
    }
    if rootfs {
        let _ = d.images.graph().put(&r.id);
    }
}

/// Start's work that blocks: mounts, bundle, monitor, runtime start.
fn start_blocking(d: &Arc<Daemon>, e: &Entry, by_policy: bool) -> Result<(), Failure> {
    let r = e.snapshot();
    let dir = d.containers.dir(&r.id);
    let graph = d.images.graph();
    let rootfs = graph
        .get(&r.id, "")
        .map_err(|err| internal(format!("mount the container's root filesystem: {err}")))?;
    let mut taken: Vec<MountPoint> = Vec::new();
    let fail = |taken: &[MountPoint], msg: String| -> Failure {
        release(d, &r, taken, true);
        internal(msg)
    };
    let mut resolved = Vec::new();
    for m in &r.mounts {
        let source = match m.kind.as_str() {
            "volume" => {
                let driver = match d.registry.volume(&m.driver) {
                    Ok(v) => v,
                    Err(err) => return Err(fail(&taken, format!("volume driver {}: {err}", m.driver))),
                };
                match driver.mount(&berth_plugin::volume::MountRequest {
                    name: m.name.clone(),
                    id: r.id.clone(),
                }) {
                    Ok(p) => {
                        taken.push(m.clone());
                        p.display().to_string()
                    }
                    Err(err) => return Err(fail(&taken, format!("mount volume {}: {err}", m.name))),
                }
            }
            _ => m.source.clone(),
        };
        resolved.push(spec::Resolved {
            kind: m.kind.clone(),
            source,
            destination: m.destination.clone(),
            rw: m.rw,
            options: m.options.clone(),
        });
    }
    let netns = match super::networks::sandbox(d, &r) {
        Ok(Sandbox::Host) => None,
        Ok(Sandbox::Shared(p)) => Some(p),
        Ok(Sandbox::Own(p)) => {
            let _ = berth_net::netns::remove(&p);
            if let Err(err) = berth_net::netns::create(&p) {
                return Err(fail(&taken, format!("create the network namespace: {err}")));
            }
            if let Err(err) = super::networks::join_all(d, e, &p) {
                return Err(fail(&taken, err));
            }
            // Answering before the container's first question.
            super::networks::start_dns(d, e);
            Some(p)
        }
        Err(err) => return Err(fail(&taken, err)),
    };
    // With its addresses now.
    let r = e.snapshot();
    let hostname = r.config["Hostname"]
        .as_str()
        .filter(|h| !h.is_empty())
        .unwrap_or(r.short_id())
        .to_string();
    // These files and config.json are made again at every start, so they
    // are written plainly: a crash leaves nothing that start relies on.
    let files = || -> std::io::Result<()> {
        std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
        let primary = super::networks::primary(&r);
        std::fs::write(
            dir.join("hosts"),
            spec::hosts_file(
                &hostname,
                &strings(&r.host_config["ExtraHosts"]),
                primary.as_ref().map(|(ip, gw)| (ip.as_str(), gw.as_str())),
            ),
        )?;
        std::fs::write(dir.join("resolv.conf"), super::networks::resolv_conf(d, &r))
    };
    if let Err(err) = files() {
        return Err(fail(&taken, format!("write the container's /etc files: {err}")));
    }
    let cgroup = std::path::PathBuf::from(format!("/berth/{}", r.id));
    let config = match spec::build(&r, &rootfs, &dir, &resolved, &cgroup, netns.as_deref()) {
        Ok(c) => c,
        Err(msg) => {
            release(d, &r, &taken, true);
            return Err(bad(msg));
        }
    };
    if let Err(err) = std::fs::write(dir.join("config.json"), config.to_string()) {
        return Err(fail(&taken, format!("write config.json: {err}")));
    }
    let run = run_dir(d, &r.id);
    let _ = std::fs::remove_dir_all(&run);
    if let Err(err) = std::fs::create_dir_all(&run) {
        return Err(fail(&taken, format!("create {}: {err}", run.display())));
    }
    let exit_file = dir.join("exit.json");
    let _ = std::fs::remove_file(&exit_file);
    // Runtime state a crash left for this ID would make create fail.
    if runtime_root(d).join(&r.id).exists() {
        let _ = runtime(d, &["delete", "--force", &r.id]);
    }
    let size = r.host_config["ConsoleSize"]
        .as_array()
        .and_then(|a| Some((a.first()?.as_u64()? as u16, a.get(1)?.as_u64()? as u16)))
        .filter(|(h, w)| *h > 0 && *w > 0);
    let cfg = monitor::Config {
        id: r.id.clone(),
        runtime: d.runtime.clone(),
        runtime_root: runtime_root(d),
        bundle: dir.clone(),
        tty: r.tty(),
        open_stdin: r.config["OpenStdin"].as_bool().unwrap_or(false),
        console_size: size,
        log_path: dir.join(format!("{}-json.log", r.id)),
        rotation: monitor::jsonlog::Rotation::from_opts(&r.host_config["LogConfig"]["Config"].as_object().cloned().unwrap_or_default())
            .unwrap_or_default(),
        socket: attach_socket(d, &r.id),
        exit_file: exit_file.clone(),
        cgroup,
    };
    let (init_pid, monitor_pid) = match monitor::spawn(&d.monitor, &run.join("monitor.json"), &cfg, &run.join("monitor.log")) {
        Ok(pids) => pids,
        Err(msg) => return Err(fail(&taken, msg)),
    };
    // Attach requests made before start see everything from the first byte.
    for (want, tx) in e.pending_attach.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
        if let Ok(s) = connect_monitor(&cfg.socket, want) {
            let _ = tx.send(s);
        }
    }
    if let Err(msg) = runtime(d, &["start", &r.id]) {
        // Followed to its end first: a monitor still finishing would delete
        // the runtime state and socket of the next start.
        if let Ok(mut s) = connect_monitor(&cfg.socket, 0) {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let _ = std::io::Read::read_to_end(&mut s, &mut Vec::new());
        }
        let _ = runtime(d, &["delete", "--force", &r.id]);
        // The monitor sees the init gone and records an exit; the watcher
        // is not running yet, so release here.
        release(d, &r, &taken, true);
        let _ = d.containers.update(e, |r| {
            r.state.status = "created".into();
            r.state.error = msg.clone();
        });
        return Err(internal(msg));
    }
    let monitor = container::MonitorRef::of(monitor_pid);
    d.containers
        .update(e, |r| {
            r.state = State {
                status: "running".into(),
                pid: init_pid,
                started_at: crate::time::now_rfc3339(),
                ..Default::default()
            };
            r.monitor = monitor;
            r.has_been_started = true;
            // A user's start lifts a stop; the policy's keeps it.
            r.manually_stopped &= by_policy;
        })
        .map_err(failure)
}

/// A connection to a monitor's socket asking for the streams in `want`.
fn connect_monitor(socket: &std::path::Path, want: u8) -> std::io::Result<std::os::unix::net::UnixStream> {
    let mut s = std::os::unix::net::UnixStream::connect(crate::sys::SocketPath::new(socket)?.path())?;
    std::io::Write::write_all(&mut s, &[want])?;
    Ok(s)
}

/// `POST /containers/{id}/start`, or a start by the restart policy
/// (`by_policy`), which a stop made meanwhile cancels.
pub async fn start(d: &Arc<Daemon>, e: Arc<Entry>, by_policy: bool) -> Result<StatusCode, Failure> {
    // In a task of its own: a client that hangs up mid-request must not
    // cut a start short between the container running and its watcher.
    let d = d.clone();
    tokio::spawn(async move { start_now(&d, e, by_policy).await })
        .await
        .map_err(|err| internal(err.to_string()))?
}

async fn start_now(d: &Arc<Daemon>, e: Arc<Entry>, by_policy: bool) -> Result<StatusCode, Failure> {
    let _op = e.op.lock().await;
    if e.removed.load(Ordering::SeqCst) {
        return Err(failure(ContainerError::NotFound(e.record().id.clone())));
    }
    if e.record().state.running() {
        return Ok(StatusCode::NOT_MODIFIED);
    }
    if by_policy && e.record().manually_stopped {
        let _ = d.containers.update(&e, |r| r.state.status = "exited".into());
        return Ok(StatusCode::NOT_MODIFIED);
    }
    let (d2, e2) = (d.clone(), e.clone());
    let started = tokio::task::spawn_blocking(move || start_blocking(&d2, &e2, by_policy))
        .await
        .map_err(|err| internal(err.to_string()))?;
    if let Err(err) = started {
        // Attach requests waiting for this start end with it.
        e.pending_attach.lock().unwrap_or_else(|p| p.into_inner()).clear();
        // As Docker: a container of `run --rm` that cannot start is removed.
        if e.record().host_config["AutoRemove"].as_bool().unwrap_or(false) {
            drop(_op);
            let _ = remove(d, e.clone(), true, true).await;
        }
        return Err(err);
    }
    d.events.container("start", &e.snapshot(), &[]);
    watch(d.clone(), e.clone());
    Ok(StatusCode::NO_CONTENT)
}

/// Follows a running container's monitor until the container exits.
fn watch(d: Arc<Daemon>, e: Arc<Entry>) {
    tokio::spawn(async move {
        let socket = attach_socket(&d, &e.record().id);
        if let Ok(mut s) = connect_socket(&socket).await {
            if s.write_all(&[0]).await.is_ok() {
                let mut buf = [0u8; 4096];
                // Only the exit frame comes to a client that wants nothing.
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        exited(&d, &e).await;
    });
}

/// The container's monitor has ended: record how, release, and restart
/// or remove as the container's policy says.
async fn exited(d: &Arc<Daemon>, e: &Arc<Entry>) {
    let r = e.snapshot();
    let exit_file = d.containers.dir(&r.id).join("exit.json");
    // A monitor killed before it wrote the record leaves the container
    // dead: it is stopped for good.
    let exit: Exit = std::fs::read(&exit_file)
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_else(|| Exit {
            code: 255,
            finished_at: crate::time::now_rfc3339(),
            oom_killed: false,
        });
    // The monitor deletes the runtime's state as it ends; one killed before
    // that leaves it (and the cgroup), so make sure.
    if runtime_root(d).join(&r.id).exists() {
        let (d2, id) = (d.clone(), r.id.clone());
        let _ = tokio::task::spawn_blocking(move || runtime(&d2, &["delete", "--force", &id])).await;
    }
    let (d2, r2) = (d.clone(), r.clone());
    let _ = tokio::task::spawn_blocking(move || release(&d2, &r2, &r2.mounts, true)).await;
    let _ = std::fs::remove_dir_all(run_dir(d, &r.id));
    let policy = r.host_config["RestartPolicy"]["Name"].as_str().unwrap_or("").to_string();
    let max = r.host_config["RestartPolicy"]["MaximumRetryCount"].as_u64().unwrap_or(0);
    let restart = match policy.as_str() {
        "always" | "unless-stopped" => !r.manually_stopped,
        "on-failure" => !r.manually_stopped && exit.code != 0 && (max == 0 || u64::from(r.restart_count) < max),
        _ => false,
    };
    let _ = d.containers.update(e, |r| {
        r.state.status = if restart { "restarting" } else { "exited" }.into();
        r.state.exit_code = exit.code;
        r.state.finished_at = exit.finished_at.clone();
        r.state.oom_killed = exit.oom_killed;
        r.state.pid = 0;
        r.monitor = None;
    });
    d.events.container("die", &e.snapshot(), &[("exitCode", exit.code.to_string())]);
    e.exits.fetch_add(1, Ordering::SeqCst);
    e.notify();
    if restart {
        let d = d.clone();
        let e = e.clone();
        tokio::spawn(async move {
            // Docker's back-off: 100 ms doubling per restart, at most a minute.
            let delay = Duration::from_millis(100u64 << r.restart_count.min(9)).min(Duration::from_secs(60));
            tokio::time::sleep(delay).await;
            if e.removed.load(Ordering::SeqCst) || e.record().manually_stopped {
                let _ = d.containers.update(&e, |r| r.state.status = "exited".into());
                return;
            }
            let _ = d.containers.update(&e, |r| r.restart_count += 1);
            if let Err((_, msg)) = start(&d, e.clone(), true).await {
                let _ = d.containers.update(&e, |r| {
                    r.state.status = "exited".into();
                    r.state.error = msg;
                });
            }
        });
    } else if r.host_config["AutoRemove"].as_bool().unwrap_or(false) {
        let _ = remove(d, e.clone(), true, true).await;
    }
}

/// Waits until the container is not running, at most `limit`.
async fn until_stopped(e: &Entry, limit: Duration) -> bool {
    let mut rx = e.changed.subscribe();
    let wait = async {
        loop {
            let (st, stopped_by_user) = {
                let r = e.record();
                (r.state.clone(), r.manually_stopped)
            };
            // A restart pending for a container a user stopped will not come.
            let settled = st.status != "restarting" || stopped_by_user;
            if !st.running() && settled || e.removed.load(Ordering::SeqCst) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(limit, wait).await.is_ok()
}

/// A signal by name (`TERM`, `SIGTERM`) or number, as the runtime takes it.
fn signal_arg(s: &str) -> Result<String, Failure> {
    if s.is_empty() {
        return Ok("SIGKILL".into());
    }
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map(|sig| sig.as_str().to_string())
            .map_err(|_| bad(format!("Invalid signal: {s}")));
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") { name } else { format!("SIG{name}") };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig.as_str().to_string())
        .map_err(|_| bad(format!("Invalid signal: {s}")))
}

/// `POST /containers/{id}/kill?signal=`.
pub async fn kill(d: &Arc<Daemon>, e: &Entry, signal: &str) -> Result<(), Failure> {
    let sig = signal_arg(signal)?;
    let r = e.snapshot();
    if !r.state.running() {
        return Err((StatusCode::CONFLICT, format!("Container {} is not running", r.id)));
    }
    if matches!(sig.as_str(), "SIGKILL" | "SIGTERM" | "SIGINT" | "SIGQUIT") {
        let _ = d.containers.update(e, |r| r.manually_stopped = true);
    }
    let (d2, id) = (d.clone(), r.id.clone());
    let paused = r.state.status == "paused";
    let number = sig_number(&sig);
    tokio::task::spawn_blocking(move || {
        runtime(&d2, &["kill", &id, &sig])?;
        // A frozen process takes its signal when thawed.
        if paused {
            runtime(&d2, &["resume", &id])?;
        }
        Ok::<(), String>(())
    })
    .await
    .map_err(|err| internal(err.to_string()))?
    .map_err(|msg| {
        // It ended between our look and the runtime's.
        if msg.contains("is stopped") || msg.contains("does not exist") {
            (StatusCode::CONFLICT, format!("Container {} is not running", r.id))
        } else {
            internal(msg)
        }
    })?;
    if paused {
        let _ = d.containers.update(e, |r| r.state.status = "running".into());
    }
    d.events.container("kill", &r, &[("signal", number)]);
    Ok(())
}

fn sig_number(name: &str) -> String {
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| (s as i32).to_string())
        .unwrap_or_default()
}

/// `POST /containers/{id}/stop?t=` (and the first half of restart).
pub async fn stop(d: &Arc<Daemon>, e: &Entry, timeout: Option<i64>) -> Result<StatusCode, Failure> {
    let r = e.snapshot();
    if !r.state.running() {
        if r.state.status != "restarting" {
            return Ok(StatusCode::NOT_MODIFIED);
        }
        // Between two runs of a restart policy: the next one is cancelled
        // (a start already under way finishes first, then is stopped).
        let _ = d.containers.update(e, |r| r.manually_stopped = true);
        let _op = e.op.lock().await;
        if !e.record().state.running() {
            let _ = d.containers.update(e, |r| r.state.status = "exited".into());
            return Ok(StatusCode::NO_CONTENT);
        }
    }
    let r = e.snapshot();
    let signal = r.config["StopSignal"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("SIGTERM")
        .to_string();
    let t = timeout.or(r.config["StopTimeout"].as_i64()).unwrap_or(10);
    let _ = d.containers.update(e, |r| r.manually_stopped = true);
    let _ = kill(d, e, &signal).await;
    // A negative timeout waits for as long as it takes, as Docker's.
    let limit = if t < 0 {
        Duration::from_secs(u64::MAX / 4)
    } else {
        Duration::from_secs(t as u64)
    };
    if !until_stopped(e, limit).await {
        let _ = kill(d, e, "SIGKILL").await;
        if !until_stopped(e, Duration::from_secs(30)).await {
            return Err(internal(format!("container {} did not stop", r.id)));
        }
    }
    d.events.container("stop", &e.snapshot(), &[]);
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /containers/{id}?force=&v=`.
pub async fn remove(d: &Arc<Daemon>, e: Arc<Entry>, force: bool, volumes: bool) -> Result<(), Failure> {
    let _op = e.op.lock().await;
    if e.removed.load(Ordering::SeqCst) {
        return Ok(());
    }
    let r = e.snapshot();
    if r.state.running() {
        if !force {
            return Err((
                StatusCode::CONFLICT,
                format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    r.name
                ),
            ));
        }
        let _ = d.containers.update(&e, |r| r.manually_stopped = true);
        let _ = kill(d, &e, "SIGKILL").await;
        if !until_stopped(&e, Duration::from_secs(30)).await {
            return Err(internal(format!("container {} did not stop", r.id)));
        }
    }
    let _ = d.containers.update(&e, |r| r.state.status = "removing".into());
    let (d2, r2) = (d.clone(), r.clone());
    tokio::task::spawn_blocking(move || -> Result<(), Failure> {
        let graph = d2.images.graph();
        if graph.exists(&r2.id) {
            graph
                .remove(&r2.id)
                .map_err(|err| internal(format!("remove the container's layer: {err}")))?;
        }
        d2.containers.remove(&r2.id).map_err(failure)?;
        d2.execs.forget(&r2.id);
        d2.events.container("destroy", &r2, &[]);
        if volumes {
            for m in r2.mounts.iter().filter(|m| m.anonymous) {
                let _ = d2.volumes.remove(&d2.registry, &m.name, false);
            }
        }
        Ok(())
    })
    .await
    .map_err(|err| internal(err.to_string()))?
}

/// `POST /containers/{id}/wait?condition=`: the exit code once the
/// condition holds.
pub async fn wait(e: Arc<Entry>, condition: &str, exits: u64) -> Result<Value, Failure> {
    let mut rx = e.changed.subscribe();
    loop {
        let done = match condition {
            "" | "not-running" => !e.record().state.running() && e.record().state.status != "restarting",
            "next-exit" => e.exits.load(Ordering::SeqCst) > exits,
            "removed" => e.removed.load(Ordering::SeqCst),
            other => return Err(bad(format!("invalid condition: {other:?}"))),
        } || e.removed.load(Ordering::SeqCst);
        if done {
            let r = e.record();
            // A container that never ran reported its error at start.
            let error = if r.state.error.is_empty() || !r.has_been_started {
                Value::Null
            } else {
                json!({ "Message": r.state.error })
            };
            return Ok(json!({ "StatusCode": r.state.exit_code, "Error": error }));
        }
        if rx.changed().await.is_err() {
            return Err(internal("the daemon is shutting down"));
        }
    }
}

fn status_text(st: &State) -> String {
    let now = crate::time::now_secs();
    match st.status.as_str() {
        "running" => format!("Up {}", crate::time::human_duration(now - crate::time::parse_secs(&st.started_at))),
        "paused" => format!(
            "Up {} (Paused)",
            crate::time::human_duration(now - crate::time::parse_secs(&st.started_at))
        ),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            crate::time::human_duration(now - crate::time::parse_secs(&st.finished_at))
        ),
        "exited" if !st.finished_at.is_empty() => format!(
            "Exited ({}) {} ago",
            st.exit_code,
            crate::time::human_duration(now - crate::time::parse_secs(&st.finished_at))
        ),
        "removing" => "Removal In Progress".into(),
        _ => "Created".into(),
    }
}

fn mounts_view(r: &Record, d: &Daemon) -> Value {
    json!(r
        .mounts
        .iter()
        .map(|m| {
            let source = if m.kind == "volume" { d.volumes.inspect(&d.registry, &m.name).ok().and_then(|v| v["Mountpoint"].as_str().map(str::to_string)).unwrap_or_default() } else { m.source.clone() };
            let mut v = json!({ "Type": m.kind, "Source": source, "Destination": m.destination, "Mode": if m.rw { "" } else { "ro" }, "RW": m.rw, "Propagation": if m.kind == "bind" { "rprivate" } else { "" } });
            if m.kind == "volume" {
                v["Name"] = json!(m.name);
                v["Driver"] = json!(m.driver);
            }
            v
        })
        .collect::<Vec<_>>())
}

fn network_mode(r: &Record) -> String {
    match r.host_config["NetworkMode"].as_str().unwrap_or("") {
        "" => "default".into(),
        m => m.into(),
    }
}

/// `GET /containers/{id}/json`.
pub fn inspect(d: &Daemon, e: &Entry) -> Value {
    let r = e.snapshot();
    let cmd = r.command();
    let dir = d.containers.dir(&r.id);
    let st = &r.state;
    let graph_dir = d.data_root.join(&d.images.graph_name).join(&r.id);
    let ids = d.execs.of(&r.id);
    let exec_ids = if ids.is_empty() { Value::Null } else { json!(ids) };
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": cmd.first().cloned().unwrap_or_default(),
        "Args": cmd.get(1..).unwrap_or_default(),
        "State": {
            "Status": st.status, "Running": st.running(), "Paused": st.status == "paused", "Restarting": st.status == "restarting",
            "OOMKilled": st.oom_killed, "Dead": st.status == "dead", "Pid": st.pid, "ExitCode": st.exit_code, "Error": st.error,
            "StartedAt": if st.started_at.is_empty() { "0001-01-01T00:00:00Z" } else { &st.started_at },
            "FinishedAt": if st.finished_at.is_empty() { "0001-01-01T00:00:00Z" } else { &st.finished_at },
        },
        "Image": r.image,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": dir.join(format!("{}-json.log", r.id)),
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": d.images.graph_name,
        "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": exec_ids,
        "HostConfig": r.host_config,
        "GraphDriver": { "Name": d.images.graph_name, "Data": {
            "UpperDir": graph_dir.join("diff"), "WorkDir": graph_dir.join("work"), "MergedDir": graph_dir.join("merged") } },
        "Mounts": mounts_view(&r, d),
        "Config": r.config,
        "NetworkSettings": super::networks::settings(d, &r),
    })
}

/// Docker's `Command` column: entrypoint and cmd joined.
fn command_line(r: &Record) -> String {
    r.command()
        .iter()
        .map(|w| {
            if w.contains(' ') || w.is_empty() {
                format!("{w:?}")
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `GET /containers/json?all=&limit=&filters=`.
pub fn list(d: &Daemon, all: bool, limit: Option<usize>, f: &std::collections::BTreeMap<String, Vec<String>>) -> Result<Value, Failure> {
    super::only_filters(
        f,
        &[
            "id", "name", "label", "status", "exited", "ancestor", "before", "since", "volume", "network", "health", "is-task",
        ],
    )
    .map_err(bad)?;
    for s in f.get("status").into_iter().flatten() {
        if !matches!(
            s.as_str(),
            "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
        ) {
            return Err(bad(format!("invalid filter 'status={s}'")));
        }
    }
    let mut rs: Vec<Record> = d.containers.all().iter().map(|e| e.snapshot()).collect();
    rs.sort_by(|a, b| b.created.cmp(&a.created));
    let any = |key: &str, test: &dyn Fn(&str) -> bool| f.get(key).is_none_or(|vals| vals.iter().any(|v| test(v)));
    let mut out = Vec::new();
    for r in rs {
        if !all && !r.state.running() && f.get("status").is_none() && f.get("exited").is_none() {
            continue;
        }
        let labels = r.config["Labels"].as_object().cloned().unwrap_or_default();
        let image_name = r.config["Image"].as_str().unwrap_or_default().to_string();
        let keep = any("id", &|v| r.id.starts_with(v))
            && any("name", &|v| r.name.contains(v.trim_start_matches('/')))
            && any("status", &|v| r.state.status == v)
            && any("exited", &|v| {
                r.state.status == "exited" && v.parse::<i32>().is_ok_and(|c| c == r.state.exit_code)
            })
            && any("ancestor", &|v| {
                image_name == v
                    || r.image.trim_start_matches("sha256:").starts_with(v.trim_start_matches("sha256:"))
                    || d.images.resolve(v).is_ok_and(|i| i.id == r.image)
            })
            && any("volume", &|v| r.mounts.iter().any(|m| m.name == v || m.destination == v))
            && any("network", &|v| {
                r.networks.iter().any(|(name, ep)| name == v || ep.network_id.starts_with(v))
            })
            && f.get("label").is_none_or(|vals| {
                vals.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => labels.get(k).and_then(Value::as_str) == Some(v),
                    None => labels.contains_key(l),
                })
            });
        if !keep {
            continue;
        }
        out.push(json!({
            "Id": r.id,
            "Names": [format!("/{}", r.name)],
            "Image": image_name,
            "ImageID": r.image,
            "Command": command_line(&r),
            "Created": crate::time::parse_secs(&r.created),
            "Ports": super::networks::ports_list(&r),
            "Labels": labels,
            "State": r.state.status,
            "Status": status_text(&r.state),
            "HostConfig": { "NetworkMode": network_mode(&r) },
            "NetworkSettings": { "Networks": super::networks::settings(d, &r)["Networks"] },
            "Mounts": mounts_view(&r, d),
        }));
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
    }
    Ok(Value::Array(out))
}

/// `POST /containers/{id}/pause` and `unpause`: the cgroup frozen and
/// thawed through the runtime.
pub async fn pause(d: &Arc<Daemon>, e: &Entry, pause: bool) -> Result<(), Failure> {
    let r = e.snapshot();
    match (pause, r.state.status.as_str()) {
        (true, "running") | (false, "paused") => {}
        (true, "paused") => return Err((StatusCode::CONFLICT, format!("Container {} is already paused", r.id))),
        (false, _) => return Err((StatusCode::CONFLICT, format!("Container {} is not paused", r.id))),
        _ => return Err((StatusCode::CONFLICT, format!("Container {} is not running", r.id))),
    }
    let (d2, id) = (d.clone(), r.id.clone());
    tokio::task::spawn_blocking(move || runtime(&d2, &[if pause { "pause" } else { "resume" }, &id]))
        .await
        .map_err(|err| internal(err.to_string()))?
        .map_err(internal)?;
    d.containers
        .update(e, |r| r.state.status = if pause { "paused" } else { "running" }.into())
        .map_err(failure)?;
    d.events.container(if pause { "pause" } else { "unpause" }, &e.snapshot(), &[]);
    Ok(())
}

/// `GET /containers/{id}/top?ps_args=`: `ps` on the host, kept to the
/// container's processes.
pub fn top(d: &Daemon, e: &Entry, ps_args: &str) -> Result<Value, Failure> {
    let r = e.snapshot();
    if !r.state.running() {
        return Err((StatusCode::CONFLICT, format!("Container {} is not running", r.id)));
    }
    let pids = crate::runtime::container_ps::pids(&crate::runtime::state::Root::new(runtime_root(d)), &r.id)
        .map_err(|err| internal(err.to_string()))?;
    let args: Vec<&str> = if ps_args.is_empty() {
        vec!["-ef"]
    } else {
        ps_args.split_whitespace().collect()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|err| internal(format!("run ps: {err}")))?;
    if !out.status.success() {
        return Err(internal(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let titles: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| bad(format!("ps {} prints no PID column", args.join(" "))))?;
    let processes: Vec<Vec<String>> = lines
        .filter_map(|l| {
            let mut fields: Vec<String> = l.split_whitespace().take(titles.len() - 1).map(str::to_string).collect();
            let rest = l.split_whitespace().skip(titles.len() - 1).collect::<Vec<_>>().join(" ");
            fields.push(rest);
            let pid: i32 = fields.get(pid_col)?.parse().ok()?;
            pids.contains(&pid).then_some(fields)
        })
        .collect();
    Ok(json!({ "Titles": titles, "Processes": processes }))
}

/// `POST /containers/{id}/update`: new limits (memory, CPU, cpusets, block
/// IO weight, pids) and
/// restart policy, applied at once to a running container.
pub async fn update(d: &Arc<Daemon>, e: &Entry, body: &[u8]) -> Result<Value, Failure> {
    let v: Value = serde_json::from_slice(body).map_err(|err| bad(format!("invalid JSON in the request body: {err}")))?;
    let r = e.snapshot();
    let mut hc = r.host_config.clone();
    const LIMITS: [&str; 7] = [
        "Memory",
        "MemorySwap",
        "MemoryReservation",
        "NanoCpus",
        "CpuShares",
        "CpuQuota",
        "CpuPeriod",
    ];
    for k in LIMITS.iter().chain(&["PidsLimit", "BlkioWeight"]) {
        if v[*k].as_i64().is_some_and(|n| n != 0) {
            hc[*k] = v[*k].clone();
        }
    }
    for k in ["CpusetCpus", "CpusetMems"] {
        if v[k].as_str().is_some_and(|s| !s.is_empty()) {
            hc[k] = v[k].clone();
        }
    }
    let warnings = spec::check_resources(&mut hc).map_err(bad)?;
    if v["NanoCpus"].as_i64().is_some_and(|n| n > 0) && (hc["CpuQuota"].as_i64().unwrap_or(0) > 0) {
        return Err(bad("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set"));
    }
    if !null_or_empty(&v["RestartPolicy"]["Name"]) {
        hc["RestartPolicy"] = v["RestartPolicy"].clone();
    }
    check_restart_policy(&hc)?;
    if r.state.running() {
        let mut res = spec::resources(&hc);
        if let Some(o) = res.as_object_mut() {
            o.remove("devices");
        }
        let file = run_dir(d, &r.id).join("update.json");
        std::fs::write(&file, res.to_string()).map_err(|err| internal(format!("write {}: {err}", file.display())))?;
        let (d2, id, f2) = (d.clone(), r.id.clone(), file.clone());
        let result = tokio::task::spawn_blocking(move || runtime(&d2, &["update", "--resources", &f2.display().to_string(), &id]))
            .await
            .map_err(|err| internal(err.to_string()))?;
        let _ = std::fs::remove_file(&file);
        result.map_err(|msg| internal(format!("Cannot update container {}: {msg}", r.id)))?;
    }
    d.containers.update(e, |r| r.host_config = hc).map_err(failure)?;
    d.events.container("update", &e.snapshot(), &[]);
    Ok(json!({ "Warnings": warnings }))
}

/// `POST /containers/{id}/rename?name=`.
pub fn rename(d: &Daemon, e: &Entry, name: &str) -> Result<(), Failure> {
    let name = container::valid_name(name).map_err(failure)?;
    let old = e.record().name.clone();
    d.containers.rename(e, name).map_err(failure)?;
    d.events.container("rename", &e.snapshot(), &[("oldName", format!("/{old}"))]);
    Ok(())
}

/// `POST /containers/prune`: removes every stopped container.
pub async fn prune(d: &Arc<Daemon>, f: &std::collections::BTreeMap<String, Vec<String>>) -> Result<Value, Failure> {
    super::only_filters(f, &["label", "until"]).map_err(bad)?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for e in d.containers.all() {
        let r = e.snapshot();
        if r.state.running() || r.state.status == "restarting" {
            continue;
        }
        let labels = r.config["Labels"].as_object().cloned().unwrap_or_default();
        let label_ok = f.get("label").is_none_or(|vals| {
            vals.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => labels.get(k).and_then(Value::as_str) == Some(v),
                None => labels.contains_key(l),
            })
        });
        if !label_ok {
            continue;
        }
        let size = super::disk_usage(&d.data_root.join(&d.images.graph_name).join(&r.id).join("diff"));
        if remove(d, e, false, false).await.is_ok() {
            deleted.push(r.id);
            reclaimed += size;
        }
    }
    Ok(json!({ "ContainersDeleted": deleted, "SpaceReclaimed": reclaimed }))
}

/// The volumes some container uses.
pub fn volumes_in_use(d: &Daemon) -> std::collections::BTreeSet<String> {
    d.containers
        .all()
        .iter()
        .flat_map(|e| e.snapshot().mounts.into_iter().filter(|m| m.kind == "volume").map(|m| m.name))
        .collect()
}

/// The names of containers that use volume `name`.
pub fn volume_users(d: &Daemon, name: &str) -> Vec<String> {
    d.containers
        .all()
        .iter()
        .map(|e| e.snapshot())
        .filter(|r| r.mounts.iter().any(|m| m.kind == "volume" && m.name == name))
        .map(|r| r.id)
        .collect()
}

/// When berthd starts: containers whose monitor still runs are followed
/// again (live restore); those that ended meanwhile are recorded as
/// exited and released; `always` and `unless-stopped` ones start again.
pub async fn restore(d: &Arc<Daemon>) {
    for e in d.containers.all() {
        let r = e.snapshot();
        let was_running = r.state.running() || r.state.status == "restarting";
        if r.state.status == "removing" {
            let _ = remove(d, e.clone(), true, false).await;
            continue;
        }
        if !was_running {
            let policy = r.host_config["RestartPolicy"]["Name"].as_str().unwrap_or("");
            if policy == "always" && r.has_been_started && !r.manually_stopped {
                let _ = start(d, e.clone(), true).await;
            }
            continue;
        }
        let alive = r.monitor.is_some_and(|m| m.alive());
        // Take the mounts back: the root filesystem is still mounted,
        // volumes are counted again.
        let (d2, r2) = (d.clone(), r.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let _ = d2.images.graph().get(&r2.id, "");
            for m in r2.mounts.iter().filter(|m| m.kind == "volume") {
                if let Ok(v) = d2.registry.volume(&m.driver) {
                    let _ = v.mount(&berth_plugin::volume::MountRequest {
                        name: m.name.clone(),
                        id: r2.id.clone(),
                    });
                }
            }
        })
        .await;
        if alive {
            super::networks::start_dns(d, &e);
            watch(d.clone(), e.clone());
        } else {
            exited(d, &e).await;
        }
    }
}

/// Removes what a crash can leave behind that no record accounts for: a
/// writable layer made by a create that never wrote its record, network
/// namespaces pinned for containers that no longer run.
pub fn reconcile(d: &Daemon) {
    let ids: std::collections::BTreeSet<String> = d.containers.all().iter().map(|e| e.record().id.clone()).collect();
    let running: std::collections::BTreeSet<String> = d
        .containers
        .all()
        .iter()
        .map(|e| e.snapshot())
        .filter(|r| r.state.running())
        .map(|r| r.id)
        .collect();
    let graph_home = d.data_root.join(&d.images.graph_name);
    for e in std::fs::read_dir(&graph_home).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let hex = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if hex && !ids.contains(&name) && !d.images.has_layer(&name) {
            match d.images.graph().remove(&name) {
                Ok(()) => eprintln!("berthd: removed layer {name}, left by a create that did not finish"),
                Err(err) => eprintln!("berthd: remove orphaned layer {name}: {err}"),
            }
        }
    }
    // Endpoints and ports of containers that stopped while berthd was
    // down: their namespace went with them, the drivers' state and the
    // addresses stay until left here.
    for e in d.containers.all() {
        if !running.contains(&e.record().id) {
            super::networks::leave_all(d, &e);
        }
    }
    for e in std::fs::read_dir(d.exec_root.join("netns")).into_iter().flatten().flatten() {
        if !running.contains(e.file_name().to_string_lossy().as_ref()) {
            let _ = berth_net::netns::remove(&e.path());
        }
    }
    let held: std::collections::BTreeSet<std::net::IpAddr> = d
        .containers
        .all()
        .iter()
        .flat_map(|e| {
            let r = e.record();
            r.networks.values().cloned().chain(r.gateway_endpoint.clone()).collect::<Vec<_>>()
        })
        .flat_map(|ep| [ep.ip_address.parse().ok(), ep.ipv6_address.parse().ok()])
        .flatten()
        .collect();
    d.networks.release_unheld(&held);
    if let Err(err) = super::networks::sync_firewall(d) {
        eprintln!("berthd: {err}");
    }
}

/// Connects to a monitor's socket, however long its path.
async fn connect_socket(path: &std::path::Path) -> std::io::Result<tokio::net::UnixStream> {
    let short = crate::sys::SocketPath::new(path)?;
    tokio::net::UnixStream::connect(short.path()).await
}

/// Connects to a running container's monitor for the streams in `want`.
pub async fn connect(d: &Daemon, e: &Entry, want: u8) -> Result<tokio::net::UnixStream, Failure> {
    let id = e.record().id.clone();
    let mut s = connect_socket(&attach_socket(d, &id))
        .await
        .map_err(|err| internal(format!("attach to {id}: {err}")))?;
    s.write_all(&[want])
        .await
        .map_err(|err| internal(format!("attach to {id}: {err}")))?;
    Ok(s)
}

/// `POST /containers/{id}/resize?h=&w=`.
pub async fn resize(d: &Daemon, e: &Entry, h: u16, w: u16) -> Result<(), Failure> {
    if !e.record().state.running() {
        return Err((StatusCode::CONFLICT, format!("Container {} is not running", e.record().id)));
    }
    let mut s = connect(d, e, 0).await?;
    let mut payload = h.to_be_bytes().to_vec();
    payload.extend(w.to_be_bytes());
    s.write_all(&protocol::frame(protocol::RESIZE, &payload))
        .await
        .map_err(|err| internal(err.to_string()))
}

type Query = std::collections::BTreeMap<String, String>;

fn empty(status: StatusCode) -> super::Reply {
    let mut r = hyper::Response::new(super::body::full(hyper::body::Bytes::new()));
    *r.status_mut() = status;
    r
}

fn reply(r: Result<super::Reply, Failure>) -> super::Reply {
    r.unwrap_or_else(|(status, message)| super::error(status, message))
}

/// The `/containers/...` routes but attach (which takes the request).
pub async fn route(d: &Arc<Daemon>, method: &hyper::Method, rest: &[&str], q: &Query, body: &[u8]) -> super::Reply {
    use hyper::Method;
    let f = match super::filters(q) {
        Ok(f) => f,
        Err(e) => return super::error(StatusCode::BAD_REQUEST, e),
    };
    let find = |key: &str| d.containers.find(key).map_err(failure);
    let seconds = |q: &Query| -> Result<Option<i64>, Failure> {
        match q.get("t").or_else(|| q.get("timeout")).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| bad(format!("invalid value for \"t\": {v:?}"))),
        }
    };
    let r: Result<super::Reply, Failure> = match (method, rest) {
        (&Method::POST, ["create"]) => {
            create(d, q.get("name").map(String::as_str), body).map(|v| super::json_reply(StatusCode::CREATED, &v))
        }
        (&Method::GET, ["json"]) => {
            let limit = q
                .get("limit")
                .and_then(|l| l.parse::<i64>().ok())
                .filter(|&l| l > 0)
                .map(|l| l as usize);
            list(d, super::truthy(q, "all") || limit.is_some(), limit, &f).map(|v| super::json_reply(StatusCode::OK, &v))
        }
        (&Method::POST, ["prune"]) => prune(d, &f).await.map(|v| super::json_reply(StatusCode::OK, &v)),
        (&Method::GET, [key, "json"]) => find(key).map(|e| super::json_reply(StatusCode::OK, &inspect(d, &e))),
        (&Method::POST, [key, "start"]) => match find(key) {
            Ok(e) => start(d, e, false).await.map(empty),
            Err(e) => Err(e),
        },
        (&Method::POST, [key, "stop"]) => match (find(key), seconds(q)) {
            (Ok(e), Ok(t)) => stop(d, &e, t).await.map(empty),
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        (&Method::POST, [key, "restart"]) => match (find(key), seconds(q)) {
            (Ok(e), Ok(t)) => match stop(d, &e, t).await {
                Ok(_) => {
                    let started = start(d, e.clone(), false).await.map(|_| empty(StatusCode::NO_CONTENT));
                    if started.is_ok() {
                        d.events.container("restart", &e.snapshot(), &[]);
                    }
                    started
                }
                Err(err) => Err(err),
            },
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        (&Method::POST, [key, "kill"]) => match find(key) {
            Ok(e) => kill(d, &e, q.get("signal").map(String::as_str).unwrap_or(""))
                .await
                .map(|_| empty(StatusCode::NO_CONTENT)),
            Err(e) => Err(e),
        },
        (&Method::POST, [key, "wait"]) => match find(key) {
            Ok(e) => {
                let condition = q.get("condition").cloned().unwrap_or_default();
                if !matches!(condition.as_str(), "" | "not-running" | "next-exit" | "removed") {
                    Err(bad(format!("invalid condition: {condition:?}")))
                } else {
                    // Headers now, the body when the condition holds; the
                    // exit to wait past is the one seen now.
                    let (tx, body) = super::body::channel();
                    let exits = e.exits.load(Ordering::SeqCst);
                    tokio::spawn(async move {
                        let v = match wait(e, &condition, exits).await {
                            Ok(v) => v,
                            Err((_, m)) => json!({ "StatusCode": -1, "Error": { "Message": m } }),
                        };
                        let _ = tx.send(hyper::body::Bytes::from(format!("{v}\n"))).await;
                    });
                    let mut r = hyper::Response::new(body);
                    r.headers_mut()
                        .insert("content-type", "application/json".parse().expect("static header"));
                    Ok(r)
                }
            }
            Err(e) => Err(e),
        },
        (&Method::POST, [key, action @ ("pause" | "unpause")]) => match find(key) {
            Ok(e) => pause(d, &e, *action == "pause").await.map(|_| empty(StatusCode::NO_CONTENT)),
            Err(e) => Err(e),
        },
        (&Method::GET, [key, "top"]) => find(key)
            .and_then(|e| top(d, &e, q.get("ps_args").map(String::as_str).unwrap_or("")))
            .map(|v| super::json_reply(StatusCode::OK, &v)),
        (&Method::GET, [key, "stats"]) => find(key).and_then(|e| super::stats::stats(e, q)),
        (&Method::GET, [key, "export"]) => match find(key) {
            Ok(e) => super::archive::export(d, &e).await,
            Err(e) => Err(e),
        },
        (&Method::HEAD | &Method::GET, [key, "archive"]) => match find(key) {
            Ok(e) => super::archive::get(d, &e, q.get("path").map(String::as_str).unwrap_or("/"), method == Method::HEAD).await,
            Err(e) => Err(e),
        },
        (&Method::PUT, [key, "archive"]) => match find(key) {
            Ok(e) => super::archive::put(
                d,
                &e,
                q.get("path").map(String::as_str).unwrap_or("/"),
                hyper::body::Bytes::copy_from_slice(body),
            )
            .await
            .map(|_| empty(StatusCode::OK)),
            Err(e) => Err(e),
        },
        (&Method::POST, [key, "update"]) => match find(key) {
            Ok(e) => update(d, &e, body).await.map(|v| super::json_reply(StatusCode::OK, &v)),
            Err(e) => Err(e),
        },
        (&Method::POST, [key, "exec"]) => find(key)
            .and_then(|e| super::exec::create(d, &e, body))
            .map(|v| super::json_reply(StatusCode::CREATED, &v)),
        (&Method::GET, [key, "logs"]) => find(key).and_then(|e| super::attach::logs(d, e, q)),
        (&Method::POST, [key, "rename"]) => find(key)
            .and_then(|e| rename(d, &e, q.get("name").map(String::as_str).unwrap_or("")))
            .map(|_| empty(StatusCode::NO_CONTENT)),
        (&Method::POST, [key, "resize"]) => {
            let num = |k: &str| {
                q.get(k)
                    .and_then(|v| v.parse::<u16>().ok())
                    .ok_or_else(|| bad(format!("invalid value for \"{k}\"")))
            };
            match (find(key), num("h"), num("w")) {
                (Ok(e), Ok(h), Ok(w)) => resize(d, &e, h, w).await.map(|_| empty(StatusCode::OK)),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            }
        }
        (&Method::DELETE, [key]) => match find(key) {
            Ok(e) => remove(d, e, super::truthy(q, "force"), super::truthy(q, "v"))
                .await
                .map(|_| empty(StatusCode::NO_CONTENT)),
            Err(e) => Err(e),
        },
        _ => Err((StatusCode::NOT_FOUND, "page not found".into())),
    };
    reply(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_config_merges_as_docker() {
        let image = json!({"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Entrypoint": null, "WorkingDir": "/w", "Volumes": {"/data": {}}});
        let c = merge_config(json!({"Env": ["A=2", "B=3"], "Cmd": null}), &image);
        assert_eq!(c["Env"], json!(["PATH=/bin", "A=2", "B=3"]));
        assert_eq!(c["Cmd"], json!(["sh"]));
        assert_eq!(c["WorkingDir"], "/w");
        assert_eq!(c["Volumes"], json!({"/data": {}}));
        let c = merge_config(json!({"Entrypoint": ["echo"]}), &image);
        assert_eq!(c["Cmd"], Value::Null);
        let c = merge_config(json!({"Cmd": ["ls"], "WorkingDir": "/x"}), &image);
        assert_eq!(c["Cmd"], json!(["ls"]));
        assert_eq!(c["WorkingDir"], "/x");
    }

    #[test]
    fn signals_read_as_docker() {
        assert_eq!(signal_arg("TERM").unwrap(), "SIGTERM");
        assert_eq!(signal_arg("9").unwrap(), "SIGKILL");
        assert_eq!(signal_arg("sigusr1").unwrap(), "SIGUSR1");
        assert!(signal_arg("BOGUS").is_err());
    }

    #[test]
    fn restart_policies_are_checked() {
        assert!(check_restart_policy(&json!({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}})).is_ok());
        assert!(check_restart_policy(&json!({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}})).is_err());
        assert!(check_restart_policy(&json!({"RestartPolicy": {"Name": "sometimes"}})).is_err());
        assert!(check_restart_policy(&json!({"RestartPolicy": {"Name": "always"}, "AutoRemove": true})).is_err());
    }
}
