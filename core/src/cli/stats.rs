//! `berth stats`: containers' resource use as docker's CLI shows it, from
//! berthd's stats objects (`GET /containers/{id}/stats`): CPU % from the
//! change of the container's and the host's CPU time between two samples
//! (`cpu_stats` and `precpu_stats`), memory without the inactive page
//! cache, network and block I/O summed, pids. With `--no-stream` one
//! sample each and one table; else a collector thread per container reads
//! its stream and the table is redrawn in place every half second (as
//! docker does) until we are interrupted.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

use super::api::{encode, Api};
use super::format::{binary_size, human_size};
use super::{format, CliError};

/// docker's default `stats` table.
const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// How often docker redraws a streaming table.
const REDRAW: Duration = Duration::from_millis(500);

/// How long the first table waits for every container's first sample.
const FIRST_SAMPLE: Duration = Duration::from_secs(2);

/// `berth stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template.
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result.
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Column titles of docker's stats fields.
fn headers() -> Value {
    json!({
        "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    })
}

/// One container's figures, as docker's `StatsEntry`.
#[derive(Debug, Default, Clone, PartialEq)]
struct Entry {
    id: String,
    name: String,
    cpu_percent: f64,
    memory: f64,
    memory_limit: f64,
    memory_percent: f64,
    network: (f64, f64),
    block: (f64, f64),
    pids: u64,
}

fn float(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// docker's `calculateCPUPercentUnix`.
fn cpu_percent(v: &Value) -> f64 {
    let (now, before) = (&v["cpu_stats"], &v["precpu_stats"]);
    let cpu_delta = float(&now["cpu_usage"]["total_usage"]) - float(&before["cpu_usage"]["total_usage"]);
    let system_delta = float(&now["system_cpu_usage"]) - float(&before["system_cpu_usage"]);
    let mut cpus = float(&now["online_cpus"]);
    if cpus == 0.0 {
        cpus = now["cpu_usage"]["percpu_usage"].as_array().map_or(0, Vec::len) as f64;
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * cpus * 100.0
    } else {
        0.0
    }
}

/// docker's `calculateMemUsageUnixNoCache`: usage less the inactive file
/// cache (`total_inactive_file` on cgroup v1, `inactive_file` on v2).
fn memory_usage(m: &Value) -> f64 {
    let usage = m["usage"].as_u64().unwrap_or(0);
    let v1 = m["stats"]["total_inactive_file"].as_u64();
    let v2 = m["stats"]["inactive_file"].as_u64();
    match v1.or(v2) {
        Some(cache) if cache < usage => (usage - cache) as f64,
        _ => usage as f64,
    }
}

/// Bytes read and written, from `io_service_bytes_recursive`.
fn block_io(v: &Value) -> (f64, f64) {
    let mut rw = (0.0, 0.0);
    for e in v["blkio_stats"]["io_service_bytes_recursive"].as_array().into_iter().flatten() {
        match e["op"].as_str().and_then(|o| o.chars().next()) {
            Some('r' | 'R') => rw.0 += float(&e["value"]),
            Some('w' | 'W') => rw.1 += float(&e["value"]),
            _ => {}
        }
    }
    rw
}

impl Entry {
    /// The figures of one stats object.
    fn of(v: &Value) -> Entry {
        let memory = memory_usage(&v["memory_stats"]);
        let memory_limit = float(&v["memory_stats"]["limit"]);
        let mut network = (0.0, 0.0);
        for n in v["networks"].as_object().into_iter().flatten().map(|(_, n)| n) {
            network.0 += float(&n["rx_bytes"]);
            network.1 += float(&n["tx_bytes"]);
        }
        Entry {
            id: v["id"].as_str().unwrap_or_default().to_string(),
            name: v["name"].as_str().unwrap_or_default().trim_start_matches('/').to_string(),
            cpu_percent: cpu_percent(v),
            memory,
            memory_limit,
            memory_percent: if memory_limit != 0.0 { memory / memory_limit * 100.0 } else { 0.0 },
            network,
            block: block_io(v),
            pids: v["pids_stats"]["current"].as_u64().unwrap_or(0),
        }
    }

    /// The row templates see; `container` is the name it was asked by.
    fn row(&self, container: &str, trunc: bool) -> Value {
        let id = if trunc { &self.id[..self.id.len().min(12)] } else { &self.id };
        let pair = |(a, b): (f64, f64)| format!("{} / {}", human_size(a, 3), human_size(b, 3));
        json!({
            "BlockIO": pair(self.block),
            "CPUPerc": format!("{:.2}%", self.cpu_percent),
            "Container": container,
            "ID": id,
            "MemPerc": format!("{:.2}%", self.memory_percent),
            "MemUsage": format!("{} / {}", binary_size(self.memory), binary_size(self.memory_limit)),
            "Name": self.name,
            "NetIO": pair(self.network),
            "PIDs": self.pids.to_string(),
        })
    }
}

/// One sample of `container`'s stats (`stream=false`: berthd answers
/// after a second sample, so CPU % has a span to be computed over).
fn sample(api: &Api, container: &str) -> Result<Entry, CliError> {
    let v = api.get(&format!("/containers/{}/stats?stream=false", encode(container)))?;
    Ok(Entry::of(&v))
}

/// The containers to show without names: running ones, or all.
fn listed(api: &Api, all: bool) -> Result<Vec<String>, CliError> {
    let v = api.get(&format!("/containers/json?all={}", u8::from(all)))?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["Id"].as_str().map(str::to_string))
        .collect())
}

/// The table (or `--format` lines) of `entries`, each with the name it
/// was asked by.
fn render(a: &StatsArgs, entries: &[(String, Entry)]) -> Result<String, CliError> {
    let rows: Vec<Value> = entries.iter().map(|(c, e)| e.row(c, !a.no_trunc)).collect();
    format::render(a.format.as_deref(), DEFAULT_TABLE, &rows, &headers())
}

/// `berth stats`.
pub fn stats(api: &Api, a: StatsArgs) -> Result<(), CliError> {
    let names = if a.containers.is_empty() {
        listed(api, a.all)?
    } else {
        a.containers.clone()
    };
    if a.no_stream {
        return once(api, &a, &names);
    }
    streaming(api, &a, names)
}

/// `--no-stream`: a sample of each, taken at once, then one table.
fn once(api: &Api, a: &StatsArgs, names: &[String]) -> Result<(), CliError> {
    let results: Vec<Result<Entry, CliError>> = std::thread::scope(|s| {
        let handles: Vec<_> = names.iter().map(|n| s.spawn(move || sample(api, n))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(CliError::Failed("collecting stats failed".into()))))
            .collect()
    });
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (n, r) in names.iter().zip(results) {
        match r {
            Ok(e) => entries.push((n.clone(), e)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(CliError::Failed(errors.join("\n")));
    }
    print!("{}", render(a, &entries)?);
    Ok(())
}

/// What a collector has seen of its container.
#[derive(Default)]
struct Collected {
    entry: Option<Entry>,
    error: Option<String>,
    /// The stream ended (the container stopped, or berthd went away).
    ended: bool,
}

type Board = Arc<Mutex<BTreeMap<String, Collected>>>;

/// Reads `container`'s stats stream into `board` until it ends.
fn collect(socket: std::path::PathBuf, container: String, board: Board) {
    let api = Api::new(socket);
    let post = |f: &dyn Fn(&mut Collected)| {
        let mut b = board.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = b.get_mut(&container) {
            f(c);
        }
    };
    let stream = match api.open("GET", &format!("/containers/{}/stats?stream=true", encode(&container))) {
        Ok(s) => s,
        Err(e) => {
            post(&|c| {
                c.error = Some(e.to_string());
                c.ended = true;
            });
            return;
        }
    };
    for line in std::io::BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
        let e = Entry::of(&v);
        post(&|c| c.entry = Some(e.clone()));
    }
    post(&|c| c.ended = true);
}

/// Starts a collector for each of `names` not yet on the board (or whose
/// stream ended, when `restart`).
fn watch(api: &Api, board: &Board, names: &[String], restart: bool) {
    let mut b = board.lock().unwrap_or_else(|p| p.into_inner());
    for n in names {
        let fresh = match b.get(n) {
            None => true,
            Some(c) => restart && c.ended,
        };
        if fresh {
            b.insert(n.clone(), Collected::default());
            let (socket, name, board) = (api.socket().to_path_buf(), n.clone(), board.clone());
            let _ = std::thread::Builder::new()
                .name("stats".into())
                .spawn(move || collect(socket, name, board));
        }
    }
}

/// The table redrawn in place: home, each line cleared to its end, and
/// the rest of the screen cleared (docker's escapes).
fn frame(table: &str) -> String {
    let mut out = String::from("\x1b[H");
    for line in table.lines() {
        out.push_str(line);
        out.push_str("\x1b[K\n");
    }
    out.push_str("\x1b[J");
    out
}

/// The streaming table, until we are interrupted (or, for named
/// containers, until none is left to show).
fn streaming(api: &Api, a: &StatsArgs, mut names: Vec<String>) -> Result<(), CliError> {
    let board: Board = Arc::default();
    let listing = a.containers.is_empty();
    watch(api, &board, &names, false);
    let started = Instant::now();
    loop {
        {
            let b = board.lock().unwrap_or_else(|p| p.into_inner());
            let waiting = b.values().any(|c| c.entry.is_none() && c.error.is_none());
            if !waiting || started.elapsed() > FIRST_SAMPLE {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !listing {
        let b = board.lock().unwrap_or_else(|p| p.into_inner());
        let errors: Vec<String> = names.iter().filter_map(|n| b.get(n)?.error.clone()).collect();
        if !errors.is_empty() {
            return Err(CliError::Failed(errors.join("\n")));
        }
    }
    let mut out = std::io::stdout();
    loop {
        if listing {
            // Containers come and go; stopped ones leave unless --all.
            if let Ok(now) = listed(api, a.all) {
                names = now;
                watch(api, &board, &names, true);
            }
        }
        let entries: Vec<(String, Entry)> = {
            let b = board.lock().unwrap_or_else(|p| p.into_inner());
            names.iter().filter_map(|n| Some((n.clone(), b.get(n)?.entry.clone()?))).collect()
        };
        let text = frame(&render(a, &entries)?);
        if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
            // Our reader left.
            return Ok(());
        }
        if !listing && names.is_empty() {
            return Ok(());
        }
        std::thread::sleep(REDRAW);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_computed_as_dockers() {
        let v = json!({
            "id": "b5b0f179a0c3e553ae19b05fa6a95f7369efea8217f1f2709574eb6ba4076f50", "name": "/c1",
            "cpu_stats": {"cpu_usage": {"total_usage": 1_500_000_000u64}, "system_cpu_usage": 20_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000u64}, "system_cpu_usage": 19_000_000_000u64},
            "memory_stats": {"usage": 500_000, "limit": 67_108_864, "stats": {"inactive_file": 254_240}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 700}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "write", "value": 8192}, {"op": "Total", "value": 1}]},
            "pids_stats": {"current": 3},
        });
        let e = Entry::of(&v);
        assert!((e.cpu_percent - 100.0).abs() < 1e-9, "{e:?}");
        let row = e.row("c1", true);
        assert_eq!(
            row,
            json!({"BlockIO": "4.1kB / 8.19kB", "CPUPerc": "100.00%", "Container": "c1", "ID": "b5b0f179a0c3",
                   "MemPerc": "0.37%", "MemUsage": "240KiB / 64MiB", "Name": "c1", "NetIO": "2kB / 700B", "PIDs": "3"})
        );
        // A stopped container's zeros, as docker prints them.
        let stopped = Entry::of(&json!({"id": "ab", "name": "/s", "cpu_stats": {"cpu_usage": {"total_usage": 0}}, "memory_stats": {}}));
        let row = stopped.row("s", true);
        assert_eq!(
            (row["CPUPerc"].as_str(), row["MemUsage"].as_str(), row["PIDs"].as_str()),
            (Some("0.00%"), Some("0B / 0B"), Some("0"))
        );
        let args = StatsArgs {
            all: false,
            format: None,
            no_stream: true,
            no_trunc: false,
            containers: vec![],
        };
        assert_eq!(
            render(&args, &[("c1".into(), e)]).unwrap(),
            "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O      BLOCK I/O        PIDS\n\
             b5b0f179a0c3   c1        100.00%   240KiB / 64MiB      0.37%     2kB / 700B   4.1kB / 8.19kB   3\n"
        );
        assert_eq!(frame("A\nB\n"), "\x1b[HA\x1b[K\nB\x1b[K\n\x1b[J");
    }
}
