//! berthd: the engine's daemon. It serves a subset of the Docker Engine
//! API over HTTP/1.1 on a UNIX socket ([`serve`]), so the stock docker
//! CLI and the Docker SDKs work against it.
//!
//! This module owns the API surface (routing, versions, errors); the
//! objects behind it (images, containers, volumes) come in their own
//! modules.

pub mod api;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

/// What the daemon knows about itself.
pub struct Daemon {
    pub data_root: PathBuf,
    pub started: std::time::SystemTime,
}

type Reply = Response<Full<Bytes>>;

fn json_reply(status: StatusCode, v: &Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
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
fn goarch() -> &'static str {
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

fn info(d: &Daemon) -> Value {
    let uname = nix::sys::utsname::uname().ok();
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem = nix::sys::sysinfo::sysinfo().map(|s| s.ram_total()).unwrap_or(0);
    json!({
        "ID": "berth",
        "Containers": 0, "ContainersRunning": 0, "ContainersPaused": 0, "ContainersStopped": 0,
        "Images": 0,
        "Driver": berth_fs::graph::DEFAULT_GRAPH_DRIVER,
        "DriverStatus": [],
        "Plugins": { "Volume": ["local"], "Network": ["none", "host"], "Log": ["json-file"] },
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
    // The body is read whole for the routes that take one.
    let _body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(decorate(error(StatusCode::BAD_REQUEST, format!("reading the request body: {e}")))),
    };
    let reply = match (&method, route.as_str()) {
        (&Method::GET | &Method::HEAD, "/_ping") => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"OK")));
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
        _ => error(StatusCode::NOT_FOUND, "page not found"),
    };
    Ok(decorate(reply))
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::UnixListener, d: Arc<Daemon>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let d = d.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(move |req| handle(d.clone(), req));
            // A client that hangs up mid-request ends only its connection.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
                .await;
        });
    }
}
