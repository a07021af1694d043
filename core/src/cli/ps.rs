//! `berth ps`: containers as docker lists them. Each container becomes
//! docker's ps fields (ID, Image, Command, CreatedAt, RunningFor, Ports,
//! State, Status, Names, Labels, Mounts, Networks, LocalVolumes, Size),
//! which `--format` templates and the default table read.

use clap::Args;
use serde_json::{json, Value};

use super::api::{filter_query, Api};
use super::format::{self, ellipsis, go_quote, go_time, human_duration};
use super::CliError;

/// docker's default `ps` table.
const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// `berth ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long = "last", allow_hyphen_values = true)]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states).
    #[arg(short = 'l', long = "latest")]
    pub latest: bool,
    #[command(flatten)]
    pub list: format::ListArgs,
    /// Display total file sizes.
    #[arg(short = 's', long = "size")]
    pub size: bool,
}

/// Column titles of docker's ps fields.
fn headers() -> Value {
    json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
        "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
        "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
    })
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// `0.0.0.0:8080->80/tcp, 443/tcp`.
fn ports(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let private = format!("{}/{}", p["PrivatePort"], p["Type"].as_str().unwrap_or("tcp"));
            match p["PublicPort"].as_u64().filter(|&n| n > 0) {
                Some(public) => format!("{}:{public}->{private}", p["IP"].as_str().unwrap_or("0.0.0.0")),
                None => private,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// docker's ps fields of one entry of `GET /containers/json`.
pub fn fields(c: &Value, trunc: bool, now: i64) -> Value {
    let id = c["Id"].as_str().unwrap_or_default();
    let image = c["Image"].as_str().unwrap_or_default();
    let image = match image.strip_prefix("sha256:") {
        Some(hex) if trunc => hex[..hex.len().min(12)].to_string(),
        _ => image.to_string(),
    };
    let command = c["Command"].as_str().unwrap_or_default();
    let command = if trunc { ellipsis(command, 20) } else { command.to_string() };
    let created = c["Created"].as_i64().unwrap_or(0);
    // Other names of a container are its links (`/other/alias`).
    let names: Vec<&str> = strings(&c["Names"])
        .map(|n| n.strip_prefix('/').unwrap_or(n))
        .filter(|n| !n.contains('/'))
        .collect();
    let labels: Vec<String> = c["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    let mounts = c["Mounts"].as_array().cloned().unwrap_or_default();
    let mount_names: Vec<String> = mounts
        .iter()
        .map(|m| {
            let name = m["Name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .or(m["Source"].as_str())
                .unwrap_or_default();
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local_volumes = mounts.iter().filter(|m| m["Driver"] == "local").count();
    let networks: Vec<&String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    let size = match (c["SizeRw"].as_f64(), c["SizeRootFs"].as_f64()) {
        (Some(rw), Some(root)) => format!("{} (virtual {})", format::human_size(rw, 3), format::human_size(root, 3)),
        (Some(rw), None) => format::human_size(rw, 3),
        _ => "0B".into(),
    };
    json!({
        "ID": if trunc { &id[..id.len().min(12)] } else { id },
        "Image": image,
        "Command": go_quote(&command),
        "CreatedAt": go_time(created),
        "RunningFor": format!("{} ago", human_duration(now - created)),
        "Ports": ports(&c["Ports"]),
        "State": c["State"],
        "Status": c["Status"],
        "Size": size,
        "Names": names.join(","),
        "Labels": labels.join(","),
        "Mounts": mount_names.join(","),
        "Networks": networks.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Platform": Value::Null,
    })
}

/// `berth ps`.
pub fn ps(api: &Api, a: PsArgs) -> Result<(), CliError> {
    let filters = filter_query(&a.list.filter)?;
    let mut q = vec![format!("all={}", u8::from(a.all))];
    let limit = if a.latest { Some(1) } else { a.last.filter(|&n| n > 0) };
    if let Some(n) = limit {
        q.push(format!("limit={n}"));
    }
    if a.size {
        q.push("size=1".into());
    }
    if let Some(f) = filters.strip_prefix('?') {
        q.push(f.to_string());
    }
    let list = api.get(&format!("/containers/json?{}", q.join("&")))?;
    let now = crate::time::now_secs();
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| fields(c, !a.list.no_trunc, now))
        .collect();
    a.list.print(&rows, DEFAULT_TABLE, &headers())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_as_dockers() {
        let c = json!({
            "Id": "66dabb5e022ed06e8cc933955654c0ed700f748a44208b0816e8ad56b692142c",
            "Names": ["/upbeat_valparaiso"], "Image": "busybox",
            "Command": "sh -c \"echo out; echo err >&2; exit 3\"", "Created": 1_795_446_670,
            "Labels": {"b": "2", "a": "1"}, "State": "exited", "Status": "Exited (3) 5 seconds ago",
            "Ports": [{"PrivatePort": 80, "Type": "tcp"}],
            "Mounts": [{"Name": "vol1", "Driver": "local", "Source": "/var/lib/x"}, {"Name": "", "Source": "/a/very/long/host/path"}],
            "NetworkSettings": {"Networks": {"none": {}}},
        });
        let f = fields(&c, true, 1_795_446_700);
        assert_eq!(f["ID"], "66dabb5e022e");
        assert_eq!(f["Command"], r#""sh -c \"echo out; ec…""#);
        assert_eq!(f["RunningFor"], "30 seconds ago");
        assert_eq!(f["CreatedAt"], "2026-11-23 15:11:10 +0000 UTC");
        assert_eq!(f["Names"], "upbeat_valparaiso");
        assert_eq!(f["Labels"], "a=1,b=2");
        assert_eq!(f["Mounts"], "vol1,/a/very/long/h…");
        assert_eq!(f["LocalVolumes"], "1");
        assert_eq!(f["Ports"], "80/tcp");
        assert_eq!(f["Networks"], "none");
        let f = fields(&c, false, 1_795_446_700);
        assert_eq!(f["ID"].as_str().unwrap().len(), 64);
        assert_eq!(f["Command"], r#""sh -c \"echo out; echo err >&2; exit 3\"""#);
        let table = format::render(None, DEFAULT_TABLE, &[fields(&c, true, 1_795_446_700)], &headers()).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "CONTAINER ID   IMAGE     COMMAND                   CREATED          STATUS                     PORTS     NAMES"
        );
        assert!(lines[1].starts_with("66dabb5e022e   busybox   \"sh -c \\\"echo out; ec…\"   30 seconds ago   Exited (3) 5 seconds ago   80/tcp    upbeat_valparaiso"), "{}", lines[1]);
    }
}
