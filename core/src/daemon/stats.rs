//! `GET /containers/{id}/stats`: CPU, memory, pids and network counters
//! of a running container, read from its cgroup (v1 or v2) and its init's
//! network namespace, in Docker's stats object. Streamed once a second,
//! or sent once (after a second sample, so CPU use can be computed, unless
//! `one-shot`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::body::{self, Body};
use super::Failure;
use crate::container::Entry;

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn num(p: &Path) -> Option<u64> {
    read(p)?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat) as a map.
fn keyed(p: &Path) -> serde_json::Map<String, Value> {
    read(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .and_then(|(k, v)| Some((k.to_string(), json!(v.trim().parse::<u64>().ok()?))))
        })
        .collect()
}

/// The host's CPU time in nanoseconds, as Docker's system_cpu_usage.
fn system_cpu() -> u64 {
    let stat = read(Path::new("/proc/stat")).unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
}

fn networks(pid: i32) -> Value {
    let mut out = serde_json::Map::new();
    for l in read(Path::new(&format!("/proc/{pid}/net/dev"))).unwrap_or_default().lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else { continue };
        let n: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if n.len() < 16 || name.trim() == "lo" {
            continue;
        }
        out.insert(
            name.trim().to_string(),
            json!({ "rx_bytes": n[0], "rx_packets": n[1], "rx_errors": n[2], "rx_dropped": n[3],
                    "tx_bytes": n[8], "tx_packets": n[9], "tx_errors": n[10], "tx_dropped": n[11] }),
        );
    }
    Value::Object(out)
}

/// One sample of the counters of the container whose cgroup is `/berth/<id>`.
fn sample(id: &str, pid: i32, name: &str) -> Value {
    let rel = PathBuf::from("berth").join(id);
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let (cpu_total, percpu, user, kernel, mem_usage, mem_limit, mem_max, mem_stat, pids, pids_limit) = if v2 {
        let dir = Path::new("/sys/fs/cgroup").join(&rel);
        let cpu = keyed(&dir.join("cpu.stat"));
        let us = |k: &str| cpu.get(k).and_then(Value::as_u64).unwrap_or(0) * 1000;
        let limit = read(&dir.join("memory.max")).and_then(|s| s.trim().parse::<u64>().ok());
        (
            us("usage_usec"),
            vec![],
            us("user_usec"),
            us("system_usec"),
            num(&dir.join("memory.current")).unwrap_or(0),
            limit,
            num(&dir.join("memory.peak")),
            keyed(&dir.join("memory.stat")),
            num(&dir.join("pids.current")).unwrap_or(0),
            read(&dir.join("pids.max")).and_then(|s| s.trim().parse::<u64>().ok()),
        )
    } else {
        let root = Path::new("/sys/fs/cgroup");
        let cpuacct = root.join("cpuacct").join(&rel);
        let memory = root.join("memory").join(&rel);
        let pids = root.join("pids").join(&rel);
        let percpu: Vec<u64> = read(&cpuacct.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let st = keyed(&cpuacct.join("cpuacct.stat"));
        let tick = |k: &str| st.get(k).and_then(Value::as_u64).unwrap_or(0) * 10_000_000;
        (
            num(&cpuacct.join("cpuacct.usage")).unwrap_or(0),
            percpu,
            tick("user"),
            tick("system"),
            num(&memory.join("memory.usage_in_bytes")).unwrap_or(0),
            num(&memory.join("memory.limit_in_bytes")),
            num(&memory.join("memory.max_usage_in_bytes")),
            keyed(&memory.join("memory.stat")),
            num(&pids.join("pids.current")).unwrap_or(0),
            read(&pids.join("pids.max")).and_then(|s| s.trim().parse::<u64>().ok()),
        )
    };
    let host_mem = nix::sys::sysinfo::sysinfo().map(|s| s.ram_total()).unwrap_or(0);
    let mut pid_stats = json!({ "current": pids });
    if let Some(l) = pids_limit {
        pid_stats["limit"] = json!(l);
    }
    json!({
        "read": crate::time::now_rfc3339(),
        "preread": "0001-01-01T00:00:00Z",
        "name": format!("/{name}"),
        "id": id,
        "pids_stats": pid_stats,
        "num_procs": 0,
        "cpu_stats": {
            "cpu_usage": { "total_usage": cpu_total, "percpu_usage": if percpu.is_empty() { Value::Null } else { json!(percpu) },
                           "usage_in_usermode": user, "usage_in_kernelmode": kernel },
            "system_cpu_usage": system_cpu(),
            "online_cpus": ncpu,
            "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
        },
        "precpu_stats": { "cpu_usage": { "total_usage": 0, "usage_in_usermode": 0, "usage_in_kernelmode": 0 }, "system_cpu_usage": 0, "online_cpus": ncpu, "throttling_data": {} },
        "memory_stats": { "usage": mem_usage, "max_usage": mem_max, "limit": mem_limit.filter(|&l| l < host_mem).unwrap_or(host_mem), "stats": mem_stat },
        "blkio_stats": { "io_service_bytes_recursive": null },
        "networks": networks(pid),
    })
}

/// `GET /containers/{id}/stats?stream=&one-shot=`.
pub fn stats(e: std::sync::Arc<Entry>, q: &std::collections::BTreeMap<String, String>) -> Result<Response<Body>, Failure> {
    let r = e.snapshot();
    let stream = q.get("stream").is_none_or(|v| matches!(v.as_str(), "1" | "true" | "True"));
    let one_shot = super::truthy(q, "one-shot");
    let (tx, body) = body::channel();
    tokio::spawn(async move {
        let mut previous: Option<Value> = None;
        loop {
            let r = e.snapshot();
            if !r.state.running() {
                // Docker answers zeros for a stopped container.
                let v = json!({ "read": "0001-01-01T00:00:00Z", "name": format!("/{}", r.name), "id": r.id, "pids_stats": {}, "cpu_stats": { "cpu_usage": { "total_usage": 0 }, "throttling_data": {} }, "precpu_stats": { "cpu_usage": { "total_usage": 0 }, "throttling_data": {} }, "memory_stats": {}, "networks": {} });
                let _ = tx.send(Bytes::from(format!("{v}\n"))).await;
                return;
            }
            let mut now = sample(&r.id, r.state.pid, &r.name);
            if let Some(p) = &previous {
                now["precpu_stats"] = p["cpu_stats"].clone();
                now["preread"] = p["read"].clone();
            }
            let first = previous.is_none();
            previous = Some(now.clone());
            // Without a stream, the answer carries two samples' worth.
            if !stream && first && !one_shot {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            if tx.send(Bytes::from(format!("{now}\n"))).await.is_err() || !stream {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let _ = r;
    let mut reply = Response::new(body);
    *reply.status_mut() = StatusCode::OK;
    reply
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("static header"));
    Ok(reply)
}
