//! berthd: the engine's daemon. It serves a subset of the Docker Engine
//! API over HTTP/1.1 on a UNIX socket ([`serve`]), so the stock docker
//! CLI and the Docker SDKs work against it.
//!
//! This module owns the API surface (routing, versions, errors); the
//! objects behind it (images, containers, volumes) come in their own
//! modules.

pub mod api;
pub mod archive;
pub mod attach;
pub mod body;
pub mod containers;
pub mod events;
pub mod exec;
pub mod images;
pub mod networks;
pub mod stats;
pub mod tls;
pub mod volumes;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

/// The daemon: its data root, its drivers and its objects.
pub struct Daemon {
    pub data_root: PathBuf,
    /// Where state that dies with the machine lives: the runtime's root
    /// and the monitors' sockets.
    pub exec_root: PathBuf,
    pub started: std::time::SystemTime,
    pub registry: Arc<berth_plugin::Registry>,
    /// The plugins found beyond the built-in drivers.
    pub plugins: Arc<crate::plugins::Plugins>,
    pub volumes: volumes::Volumes,
    pub images: crate::image::ImageStore,
    pub containers: crate::container::Containers,
    pub execs: exec::Execs,
    pub events: events::Events,
    pub networks: crate::network::Networks,
    pub resolvers: crate::network::dns::Resolvers,
    /// Whose nameservers containers use (`--resolv-conf`).
    pub resolv_conf: PathBuf,
    /// The berth-runtime and berth-monitor programs.
    pub runtime: PathBuf,
    pub monitor: PathBuf,
}

impl Daemon {
    /// A daemon over `data_root` and `exec_root`, with every built-in driver.
    /// With `cluster`, global (overlay) networks are shared through it.
    /// Layers go to the graph driver `storage_driver`.
    /// Plugins are loaded (shared objects) and found (Docker's legacy
    /// plugins, when asked for) as `plugins` says.
    pub fn new(
        data_root: PathBuf,
        exec_root: PathBuf,
        cluster: Option<berth_net::overlay::Cluster>,
        plugins: crate::plugins::Settings,
        storage_driver: &str,
    ) -> anyhow::Result<Daemon> {
        use anyhow::Context;
        let registry = Arc::new(crate::drivers::builtin_registry(&data_root, cluster.as_ref()).context("set up the built-in drivers")?);
        let plugins = Arc::new(crate::plugins::Plugins::new(plugins));
        plugins.load_all(&registry);
        let finder = Arc::clone(&plugins);
        registry.set_finder(Box::new(move |r, name| finder.find(r, name)));
        let volumes = volumes::Volumes::new(&data_root).context("set up the volume records")?;
        let graph_name = storage_driver;
        let graph = registry
            .graph(graph_name)
            .with_context(|| format!("the storage driver {graph_name:?} (--storage-driver)"))?;
        let images = crate::image::ImageStore::open(&data_root, graph, graph_name).context("set up the image store")?;
        let containers = crate::container::Containers::open(&data_root).context("load the containers")?;
        let networks = crate::network::Networks::open(&data_root, &registry, cluster.as_ref()).context("set up the networks")?;
        std::fs::create_dir_all(exec_root.join("netns")).with_context(|| format!("create {}", exec_root.display()))?;
        Ok(Daemon {
            data_root,
            exec_root,
            started: std::time::SystemTime::now(),
            registry,
            plugins,
            volumes,
            images,
            containers,
            execs: exec::Execs::default(),
            events: events::Events::default(),
            networks,
            resolvers: Default::default(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            runtime: berth_fs::program("berth-runtime"),
            monitor: berth_fs::program("berth-monitor"),
        })
    }
}

pub use crate::time::rfc3339;

/// Percent-decodes a path segment or query value (`+` is a space).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                Ok(v) => {
                    out.push(v);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string's parameters, percent-decoded.
fn query(uri: &hyper::Uri) -> std::collections::BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Docker's `filters` parameter: `{"key": ["v"]}` or the older
/// `{"key": {"v": true}}`.
pub(crate) fn filters(q: &std::collections::BTreeMap<String, String>) -> Result<std::collections::BTreeMap<String, Vec<String>>, String> {
    let Some(raw) = q.get("filters").filter(|f| !f.is_empty()) else {
        return Ok(Default::default());
    };
    let v: Value = serde_json::from_str(raw).map_err(|e| format!("invalid filters {raw:?}: {e}"))?;
    let mut out = std::collections::BTreeMap::new();
    for (k, vals) in v.as_object().ok_or_else(|| format!("invalid filters {raw:?}: not an object"))? {
        let list: Vec<String> = match vals {
            Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            Value::Object(o) => o
                .iter()
                .filter(|(_, on)| on.as_bool().unwrap_or(false))
                .map(|(k, _)| k.clone())
                .collect(),
            _ => return Err(format!("invalid filters {raw:?}: {k} takes a list")),
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

/// Refuses filters a route does not understand: ignoring one would make
/// a prune take more than asked, or a listing show more.
pub(crate) fn only_filters(f: &std::collections::BTreeMap<String, Vec<String>>, known: &[&str]) -> Result<(), String> {
    match f.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!("invalid filter '{k}'")),
        None => Ok(()),
    }
}

pub(crate) fn truthy(q: &std::collections::BTreeMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | ""))
}

/// Every `names` parameter of a query (it repeats).
fn names_query(raw: &str) -> Vec<String> {
    repeated(raw, "names")
}

/// Every value of a parameter that repeats in a query.
fn repeated(raw: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    raw.split('&')
        .filter_map(|p| p.strip_prefix(prefix.as_str()))
        .map(decode)
        .filter(|n| !n.is_empty())
        .collect()
}

fn tarball(r: Result<Vec<u8>, (StatusCode, String)>) -> Reply {
    match r {
        Ok(bytes) => {
            let mut reply = Response::new(body::full(Bytes::from(bytes)));
            reply
                .headers_mut()
                .insert("content-type", "application/x-tar".parse().expect("static header"));
            reply
        }
        Err((status, message)) => error(status, message),
    }
}

fn answer(r: Result<(StatusCode, Value), volumes::Failure>) -> Reply {
    match r {
        Ok((status, v)) => json_reply(status, &v),
        Err((status, message)) => error(status, message),
    }
}

pub(crate) type Reply = Response<body::Body>;

/// An API failure: status and message.
pub type Failure = (StatusCode, String);

pub(crate) fn json_reply(status: StatusCode, v: &Value) -> Reply {
    let mut r = Response::new(body::full(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("static header"));
    r
}

/// An error as Docker writes it: `{"message": ...}` with its status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Reply {
    json_reply(status, &json!({ "message": message.into() }))
}

/// Headers every answer carries, as dockerd's do.
fn decorate(mut r: Reply) -> Reply {
    let h = r.headers_mut();
    h.insert("api-version", api::API_VERSION.parse().expect("static header"));
    h.insert("ostype", "linux".parse().expect("static header"));
    h.insert("docker-experimental", "false".parse().expect("static header"));
    h.insert(
        "server",
        format!("berth/{}", env!("CARGO_PKG_VERSION")).parse().expect("ascii header"),
    );
    r
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// GOARCH's name for this machine, as Docker clients expect.
pub(crate) fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

fn version(_d: &Daemon) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    json!({
        "Platform": { "Name": "berth" },
        "Components": [{ "Name": "Engine", "Version": version, "Details": {
            "ApiVersion": api::API_VERSION, "MinAPIVersion": api::MIN_API_VERSION, "Os": "linux", "Arch": goarch(),
            "KernelVersion": kernel_version(), "Experimental": "false" } }],
        "Version": version,
        "ApiVersion": api::API_VERSION,
        "MinAPIVersion": api::MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": goarch(),
        "KernelVersion": kernel_version(),
        "BuildTime": "",
    })
}

/// Runs driver calls (a plugin may take up to its timeout) off the async
/// workers' hands.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// `POST /plugins/{name}/disable` and `/enable`.
fn toggle_plugin(d: &Daemon, rest: &str, force: bool) -> Reply {
    use crate::plugins::Toggle;
    let (name, verb) = match rest.rsplit_once('/') {
        Some((n, v @ ("disable" | "enable"))) => (decode(n), v),
        _ => return error(StatusCode::NOT_FOUND, "page not found"),
    };
    let done = if verb == "disable" {
        let mut users: Vec<String> = d.volumes.on_driver(&name).into_iter().map(|v| format!("volume {v}")).collect();
        users.extend(
            d.networks
                .all()
                .into_iter()
                .filter(|n| n.driver == name || n.ipam_driver == name)
                .map(|n| format!("network {}", n.name)),
        );
        if d.images.graph_name == name {
            users.push("the storage driver".into());
        }
        blocking(|| d.plugins.disable(&d.registry, &name, &users, force))
    } else {
        blocking(|| d.plugins.enable(&d.registry, &name))
    };
    match done {
        Ok(()) => {
            d.events.simple("plugin", verb, &name, &[]);
            json_reply(StatusCode::OK, &Value::Null)
        }
        Err(e) => error(
            match e {
                Toggle::NoSuch(_) => StatusCode::NOT_FOUND,
                Toggle::Builtin(_) | Toggle::InUse { .. } => StatusCode::CONFLICT,
                Toggle::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            e.to_string(),
        ),
    }
}

/// `/info`'s `Plugins`: the drivers' names by kind.
fn plugin_names(d: &Daemon) -> Value {
    use berth_plugin::Interface;
    let named = |i: Interface| -> Vec<String> { d.registry.list().into_iter().filter(|p| p.interface == i).map(|p| p.name).collect() };
    json!({
        "Volume": named(Interface::VolumeDriver),
        "Network": named(Interface::NetworkDriver),
        "IPAM": named(Interface::IpamDriver),
        "Log": ["json-file"],
    })
}

fn info(d: &Daemon) -> Value {
    let uname = nix::sys::utsname::uname().ok();
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem = nix::sys::sysinfo::sysinfo().map(|s| s.ram_total()).unwrap_or(0);
    let states: Vec<String> = d.containers.all().iter().map(|e| e.record().state.status.clone()).collect();
    json!({
        "ID": "berth",
        "Containers": states.len(),
        "ContainersRunning": states.iter().filter(|s| *s == "running").count(),
        "ContainersPaused": states.iter().filter(|s| *s == "paused").count(),
        "ContainersStopped": states.iter().filter(|s| *s != "running" && *s != "paused").count(),
        "Images": d.images.images().len(),
        "Driver": d.images.graph_name,
        "DriverStatus": d.images.graph().status(),
        "Plugins": plugin_names(d),
        "MemoryLimit": true, "SwapLimit": false, "CpuCfsPeriod": true, "CpuCfsQuota": true,
        "IPv4Forwarding": true, "Debug": false, "NFd": 0, "NGoroutines": 0,
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "2" } else { "1" },
        "KernelVersion": kernel_version(),
        "OperatingSystem": "berth",
        "OSType": "linux",
        "Architecture": uname.as_ref().map(|u| u.machine().to_string_lossy().into_owned()).unwrap_or_default(),
        "NCPU": ncpu,
        "MemTotal": mem,
        "DockerRootDir": d.data_root,
        "Name": uname.as_ref().map(|u| u.nodename().to_string_lossy().into_owned()).unwrap_or_default(),
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "DefaultRuntime": "berth-runtime",
        "Runtimes": { "berth-runtime": { "path": "berth-runtime" } },
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": [],
    })
}

/// Bytes a directory tree takes on disk.
pub(crate) fn disk_usage(p: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = p.symlink_metadata() else { return 0 };
    let own = m.blocks() * 512;
    if !m.is_dir() {
        return own;
    }
    own + std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| disk_usage(&e.path()))
        .sum::<u64>()
}

/// `GET /system/df`: images, containers, volumes and the build cache
/// (none), with their sizes and how many containers use each.
fn system_df(d: &Daemon) -> Value {
    let records: Vec<crate::container::Record> = d.containers.all().iter().map(|e| e.snapshot()).collect();
    let mut images = images::list(&d.images, &Default::default());
    for i in images.as_array_mut().into_iter().flatten() {
        i["Containers"] = json!(records.iter().filter(|r| i["Id"] == r.image.as_str()).count());
    }
    let layers_size: u64 = d.images.images().iter().map(|i| i.size).sum();
    let volumes: Vec<Value> = d
        .volumes
        .list(&d.registry, &Default::default(), &containers::volumes_in_use(d))
        .map(|v| v["Volumes"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .map(|mut v| {
            let size = v["Mountpoint"].as_str().map(|p| disk_usage(std::path::Path::new(p))).unwrap_or(0);
            let users = records
                .iter()
                .filter(|r| r.mounts.iter().any(|m| m.kind == "volume" && v["Name"] == m.name.as_str()))
                .count();
            v["UsageData"] = json!({ "Size": size, "RefCount": users });
            v
        })
        .collect();
    let mut containers = containers::list(d, true, None, &Default::default()).unwrap_or_default();
    for c in containers.as_array_mut().into_iter().flatten() {
        let id = c["Id"].as_str().unwrap_or_default();
        c["SizeRw"] = json!(disk_usage(&d.data_root.join(&d.images.graph_name).join(id).join("diff")));
    }
    json!({
        "LayersSize": layers_size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    })
}

/// The containers made from the image `reference` names.
fn image_users(d: &Daemon, reference: &str) -> Vec<String> {
    let Ok(image) = d.images.resolve(reference) else { return vec![] };
    // Untagging one name of several leaves the image: nothing to refuse.
    let tags = d.images.tags_of(&image.id);
    if tags.len() > 1 && crate::image::reference::normalize(reference).is_some_and(|n| tags.contains(&n)) {
        return vec![];
    }
    d.containers
        .all()
        .iter()
        .map(|e| e.snapshot())
        .filter(|r| r.image == image.id)
        .map(|r| r.short_id().to_string())
        .collect()
}

/// `docker load` (`import` empty) or `docker import` (its query and
/// changes) of the archive in `incoming`, spooled to a scratch file.
async fn from_archive(
    d: &Arc<Daemon>,
    incoming: Incoming,
    import: Option<(std::collections::BTreeMap<String, String>, Vec<String>)>,
) -> Result<Reply, Failure> {
    let file = spool(d, incoming).await?;
    let d2 = d.clone();
    let stream = tokio::task::spawn_blocking(move || {
        let reader = std::io::BufReader::new(file);
        match &import {
            Some((q, changes)) => images::import(&d2.images, reader, q.get("repo"), q.get("tag"), q.get("message"), changes),
            None => images::load(&d2.images, reader),
        }
    })
    .await
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let mut r = Response::new(body::full(Bytes::from(stream)));
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("static header"));
    Ok(r)
}

/// Writes a request body to an unlinked scratch file, chunk by chunk.
async fn spool(d: &Daemon, mut incoming: Incoming) -> Result<std::fs::File, Failure> {
    use std::io::{Seek, Write};
    let mut file = d.images.scratch_file().map_err(images::failure)?;
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| (StatusCode::BAD_REQUEST, format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            file.write_all(&data)
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("spool the request body: {e}")))?;
        }
    }
    file.rewind()
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("spool the request body: {e}")))?;
    Ok(file)
}

/// Answers one request.
pub async fn handle(d: Arc<Daemon>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let (asked, route) = api::split_version(req.uri().path());
    if let Some(v) = asked {
        if let Err(e) = api::check_version(v) {
            return Ok(decorate(error(StatusCode::BAD_REQUEST, e)));
        }
    }
    let route = route.to_string();
    let method = req.method().clone();
    let q = query(req.uri());
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let decoded: Vec<String> = route.trim_start_matches('/').split('/').map(decode).collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    // Routes that take the request itself: attach and exec start take the
    // connection over; image archives, which can be gigabytes, go to a
    // scratch file as they come.
    let done = |reply: Result<Reply, Failure>| Ok(decorate(reply.unwrap_or_else(|(status, message)| error(status, message))));
    match (&method, segments.as_slice()) {
        (&Method::POST, ["containers", key, "attach"]) => {
            return done(match d.containers.find(key) {
                Ok(e) => attach::attach(d.clone(), e, &q, req).await,
                Err(e) => Err(containers::failure(e)),
            })
        }
        (&Method::POST, ["exec", id, "start"]) => {
            return done(match d.execs.get(id) {
                Ok(x) => exec::start(d.clone(), x, req).await,
                Err(e) => Err(e),
            })
        }
        (&Method::POST, ["images", "load"]) => return done(from_archive(&d, req.into_body(), None).await),
        (&Method::POST, ["images", "create"]) if q.get("fromSrc").map(String::as_str) == Some("-") => {
            let import = (q.clone(), repeated(&raw_query, "changes"));
            return done(from_archive(&d, req.into_body(), Some(import)).await);
        }
        _ => {}
    }
    // The body is read whole for the routes that take one.
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(decorate(error(StatusCode::BAD_REQUEST, format!("reading the request body: {e}")))),
    };
    let f = filters(&q);
    let reply = match (&method, segments.as_slice()) {
        (&Method::GET, ["images", "json"]) => match f.and_then(|f| only_filters(&f, &["dangling", "reference"]).map(|_| f)) {
            Ok(f) => json_reply(StatusCode::OK, &images::list(&d.images, &f)),
            Err(e) => error(StatusCode::BAD_REQUEST, e),
        },
        (&Method::POST, ["images", "prune"]) => match f.and_then(|f| only_filters(&f, &["dangling"]).map(|_| f)) {
            Ok(ref f) => {
                let all = f.get("dangling").is_some_and(|v| v.iter().any(|x| x == "false" || x == "0"));
                answer(images::prune(&d.images, all).map(|v| (StatusCode::OK, v)))
            }
            Err(ref e) => error(StatusCode::BAD_REQUEST, e.clone()),
        },
        (&Method::GET, ["images", "get"]) => tarball(images::save(&d.images, &names_query(&raw_query))),
        (&Method::GET, [ref rest @ .., "get"]) if rest.first() == Some(&"images") && rest.len() > 1 => {
            tarball(images::save(&d.images, &[rest[1..].join("/")]))
        }
        (&Method::GET, [ref rest @ .., "json"]) if rest.first() == Some(&"images") && rest.len() > 1 => {
            answer(images::inspect(&d.images, &rest[1..].join("/")).map(|v| (StatusCode::OK, v)))
        }
        (&Method::GET, [ref rest @ .., "history"]) if rest.first() == Some(&"images") && rest.len() > 1 => {
            answer(images::history(&d.images, &rest[1..].join("/")).map(|v| (StatusCode::OK, v)))
        }
        (&Method::POST, [ref rest @ .., "tag"]) if rest.first() == Some(&"images") && rest.len() > 1 => {
            match images::tag(&d.images, &rest[1..].join("/"), q.get("repo"), q.get("tag")) {
                Ok(()) => {
                    if let Ok(i) = d.images.resolve(&rest[1..].join("/")) {
                        let name = format!(
                            "{}:{}",
                            q.get("repo").cloned().unwrap_or_default(),
                            q.get("tag").filter(|t| !t.is_empty()).cloned().unwrap_or_else(|| "latest".into())
                        );
                        d.events.simple("image", "tag", &i.id, &[("name", name)]);
                    }
                    let mut r = Response::new(body::full(Bytes::new()));
                    *r.status_mut() = StatusCode::CREATED;
                    r
                }
                Err((status, message)) => error(status, message),
            }
        }
        (&Method::DELETE, ["images", rest @ ..]) if !rest.is_empty() && !image_users(&d, &rest.join("/")).is_empty() => error(
            StatusCode::CONFLICT,
            format!(
                "conflict: unable to remove repository reference \"{}\" - container {} is using its referenced image",
                rest.join("/"),
                image_users(&d, &rest.join("/")).join(", ")
            ),
        ),
        (&Method::DELETE, ["images", rest @ ..]) if !rest.is_empty() => {
            let removed = images::remove(&d.images, &rest.join("/"), truthy(&q, "force"));
            for item in removed.as_ref().ok().and_then(|v| v.as_array().cloned()).unwrap_or_default() {
                if let Some(n) = item["Untagged"].as_str() {
                    d.events.simple("image", "untag", n, &[("name", n.to_string())]);
                }
                if let Some(id) = item["Deleted"].as_str() {
                    d.events.simple("image", "delete", id, &[]);
                }
            }
            answer(removed.map(|v| (StatusCode::OK, v)))
        }
        (_, ["containers", rest @ ..]) => containers::route(&d, &method, rest, &q, &body).await,
        (_, ["networks", rest @ ..]) => networks::route(&d, &method, rest, &q, &body).await,
        (&Method::GET, ["exec", id, "json"]) => match d.execs.get(id) {
            Ok(x) => json_reply(StatusCode::OK, &exec::inspect(&x)),
            Err((status, message)) => error(status, message),
        },
        (&Method::POST, ["exec", id, "resize"]) => {
            let num = |k: &str| q.get(k).and_then(|v| v.parse::<u16>().ok());
            match (d.execs.get(id), num("h"), num("w")) {
                (Ok(x), Some(h), Some(w)) => match exec::resize(&x, h, w) {
                    Ok(()) => json_reply(StatusCode::OK, &Value::Null),
                    Err((status, message)) => error(status, message),
                },
                (Err((status, message)), _, _) => error(status, message),
                _ => error(StatusCode::BAD_REQUEST, "resize needs h and w"),
            }
        }
        (&Method::POST, ["volumes", "create"]) => {
            let made = blocking(|| d.volumes.create(&d.registry, &body));
            if let Ok((_, v)) = &made {
                d.events.simple(
                    "volume",
                    "create",
                    v["Name"].as_str().unwrap_or_default(),
                    &[("driver", v["Driver"].as_str().unwrap_or_default().to_string())],
                );
            }
            answer(made)
        }
        (&Method::GET, ["volumes"]) => match f.and_then(|f| only_filters(&f, &["name", "label", "driver", "dangling"]).map(|_| f)) {
            Ok(f) => answer(blocking(|| d.volumes.list(&d.registry, &f, &containers::volumes_in_use(&d))).map(|v| (StatusCode::OK, v))),
            Err(e) => error(StatusCode::BAD_REQUEST, e),
        },
        (&Method::POST, ["volumes", "prune"]) => match f.and_then(|f| only_filters(&f, &["label"]).map(|_| f)) {
            Ok(f) => {
                let pruned = blocking(|| d.volumes.prune(&d.registry, &f, &containers::volumes_in_use(&d)));
                for name in pruned
                    .as_ref()
                    .ok()
                    .and_then(|v| v["VolumesDeleted"].as_array().cloned())
                    .unwrap_or_default()
                {
                    d.events.simple("volume", "destroy", name.as_str().unwrap_or_default(), &[]);
                }
                answer(pruned.map(|v| (StatusCode::OK, v)))
            }
            Err(e) => error(StatusCode::BAD_REQUEST, e),
        },
        (&Method::GET, ["volumes", name]) => answer(blocking(|| d.volumes.inspect(&d.registry, name)).map(|v| (StatusCode::OK, v))),
        (&Method::DELETE, ["volumes", name]) if !containers::volume_users(&d, name).is_empty() => error(
            StatusCode::CONFLICT,
            format!(
                "remove {name}: volume is in use - [{}]",
                containers::volume_users(&d, name).join(", ")
            ),
        ),
        (&Method::DELETE, ["volumes", name]) => match blocking(|| d.volumes.remove(&d.registry, name, truthy(&q, "force"))) {
            Ok(()) => {
                d.events.simple("volume", "destroy", name, &[]);
                let mut r = Response::new(body::full(Bytes::new()));
                *r.status_mut() = StatusCode::NO_CONTENT;
                r
            }
            Err((status, message)) => error(status, message),
        },
        _ => match (&method, route.as_str()) {
            (&Method::GET | &Method::HEAD, "/_ping") => {
                let mut r = Response::new(body::full(Bytes::from_static(b"OK")));
                r.headers_mut()
                    .insert("content-type", "text/plain; charset=utf-8".parse().expect("static header"));
                r.headers_mut().insert(
                    "cache-control",
                    "no-cache, no-store, must-revalidate".parse().expect("static header"),
                );
                r
            }
            (&Method::GET, "/version") => json_reply(StatusCode::OK, &version(&d)),
            (&Method::GET, "/info") => json_reply(StatusCode::OK, &info(&d)),
            (&Method::GET, "/plugins") => json_reply(StatusCode::OK, &json!(blocking(|| d.plugins.list(&d.registry)))),
            (&Method::GET, _) if route.starts_with("/plugins/") && route.ends_with("/json") => {
                let name = decode(&route["/plugins/".len()..route.len() - "/json".len()]);
                match blocking(|| d.plugins.list(&d.registry))
                    .into_iter()
                    .find(|p| p["Name"] == name.as_str())
                {
                    Some(p) => json_reply(StatusCode::OK, &p),
                    None => error(StatusCode::NOT_FOUND, format!("plugin {name:?} not found")),
                }
            }
            (&Method::POST, _) if route.starts_with("/plugins/") => toggle_plugin(&d, &route["/plugins/".len()..], truthy(&q, "force")),
            (&Method::GET, "/events") => events::stream(&d.events, &q).unwrap_or_else(|(status, message)| error(status, message)),
            (&Method::GET, "/system/df") => json_reply(StatusCode::OK, &system_df(&d)),
            _ => error(StatusCode::NOT_FOUND, "page not found"),
        },
    };
    Ok(decorate(reply))
}

/// Serves the API on one connection.
async fn connection<S>(stream: S, d: Arc<Daemon>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(stream);
    let service = hyper::service::service_fn(move |req| handle(d.clone(), req));
    // A client that hangs up mid-request ends only its connection.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .with_upgrades()
        .await;
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::UnixListener, d: Arc<Daemon>) -> std::io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, d.clone()));
            }
            // Out of descriptors, say: the API waits instead of ending.
            Err(e) => {
                eprintln!("berthd: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves the API over TLS on a TCP `listener`; a client that fails the
/// handshake (no certificate the CA signed, with `--tlsverify`) is dropped.
pub async fn serve_tls(listener: tokio::net::TcpListener, tls: tokio_rustls::TlsAcceptor, d: Arc<Daemon>) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let (tls, d) = (tls.clone(), d.clone());
        tokio::spawn(async move {
            match tls.accept(stream).await {
                Ok(s) => connection(s, d).await,
                Err(e) => eprintln!("berthd: TLS handshake with {peer}: {e}"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_decode() {
        assert_eq!(super::decode("localhost%3A5000%2Fapp"), "localhost:5000/app");
        assert_eq!(super::decode("a%zz"), "a%zz");
    }
}
