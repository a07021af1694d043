//! The OCI configuration of a container: the runtime's defaults, Docker's
//! default hardening (capabilities, seccomp, masked and read-only paths,
//! device rules), then the container's `Config` and `HostConfig`.

use std::path::Path;

use serde_json::{json, Value};

use super::Record;
use crate::security::{capabilities, default_profile};

/// A mount ready for the runtime: its host source already resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub kind: String,
    pub source: String,
    pub destination: String,
    pub rw: bool,
    pub options: String,
}

/// The files berthd writes for each container and binds in.
pub const ETC_FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Reads a file of the container's image (its /etc/passwd), resolving
/// symlinks inside the rootfs only.
/// Only a regular file is read, at most this much: the image (or a
/// container that ran on it) may have put a device or a FIFO there.
const ETC_FILE_LIMIT: u64 = 1 << 20;

fn read_in_root(rootfs: &Path, rel: &str) -> Option<String> {
    let root = std::fs::File::open(rootfs).ok()?;
    let fd = crate::sys::openat2(
        std::os::fd::AsRawFd::as_raw_fd(&root),
        Path::new(rel),
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW,
        0,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
    .ok()?;
    let file = std::fs::File::from(fd);
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, ETC_FILE_LIMIT), &mut text).ok()?;
    Some(text)
}

/// `uid`, `uid:gid`, `name` or `name:group` against the image's files.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>), String> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_in_root(rootfs, "etc/passwd").unwrap_or_default();
    let group = read_in_root(rootfs, "etc/group").unwrap_or_default();
    let entry = |text: &str, key: &str, by_name: bool| -> Option<Vec<String>> {
        text.lines()
            .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && if by_name { f[0] == key } else { f[2] == key })
    };
    let (uid, mut gid, name) = if u.is_empty() {
        (0, 0, "root".to_string())
    } else if let Ok(uid) = u.parse::<u32>() {
        match entry(&passwd, u, false) {
            Some(f) => (uid, f.get(3).and_then(|g| g.parse().ok()).unwrap_or(0), f[0].clone()),
            None => (uid, 0, String::new()),
        }
    } else {
        let f = entry(&passwd, u, true).ok_or_else(|| format!("unable to find user {u}: no matching entries in passwd file"))?;
        (
            f[2].parse().map_err(|_| format!("bad uid for user {u} in /etc/passwd"))?,
            f.get(3).and_then(|g| g.parse().ok()).unwrap_or(0),
            u.to_string(),
        )
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => entry(&group, g, true)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| format!("unable to find group {g}: no matching entries in group file"))?,
        };
    }
    // Supplementary groups: those listing the user by name.
    let extra = if name.is_empty() {
        vec![]
    } else {
        group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .filter(|&g| g != gid)
            .collect()
    };
    Ok((uid, gid, extra))
}

/// Docker's `--memory` etc. as OCI resources.
pub fn resources(hc: &Value) -> Value {
    let mut r = json!({ "devices": default_profile::device_rules() });
    let int = |k: &str| hc[k].as_i64().filter(|&n| n > 0);
    if let Some(m) = int("Memory") {
        r["memory"] = json!({ "limit": m });
        if let Some(s) = hc["MemorySwap"].as_i64().filter(|&s| s != 0) {
            r["memory"]["swap"] = json!(s);
        }
    }
    if let Some(n) = int("NanoCpus") {
        let period = 100_000i64;
        r["cpu"] = json!({ "quota": n * period / 1_000_000_000, "period": period });
    } else if int("CpuQuota").is_some() || int("CpuPeriod").is_some() {
        r["cpu"] = json!({ "quota": int("CpuQuota").unwrap_or(-1), "period": int("CpuPeriod").unwrap_or(100_000) });
    }
    if let Some(s) = int("CpuShares") {
        r["cpu"]["shares"] = json!(s);
    }
    if let Some(p) = hc["PidsLimit"].as_i64().filter(|&p| p != 0) {
        r["pids"] = json!({ "limit": p });
    }
    if let Some(m) = int("MemoryReservation") {
        r["memory"]["reservation"] = json!(m);
    }
    for (key, field) in [("CpusetCpus", "cpus"), ("CpusetMems", "mems")] {
        if let Some(set) = hc[key].as_str().filter(|s| !s.is_empty()) {
            r["cpu"][field] = json!(set);
        }
    }
    if let Some(w) = int("BlkioWeight") {
        r["blockIO"] = json!({ "weight": w });
    }
    r
}

/// Checks the resource settings the runtime cannot judge early, as Docker
/// does: cpusets written as lists of numbers and ranges, the block IO
/// weight in 10..=1000 (dropped, with a warning, where the kernel has no
/// weights). The warnings for the answer.
pub fn check_resources(hc: &mut Value) -> Result<Vec<String>, String> {
    for (key, what) in [("CpusetCpus", "cpuset cpus"), ("CpusetMems", "cpuset mems")] {
        let Some(set) = hc[key].as_str().filter(|s| !s.is_empty()) else {
            continue;
        };
        let valid = set.split(',').all(|part| {
            let mut ends = part.splitn(2, '-');
            let number = |s: Option<&str>| s.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let first = ends.next();
            let second = ends.next();
            number(first) && (second.is_none() || number(second))
        });
        if !valid {
            return Err(format!("Invalid value {set} for {what}"));
        }
    }
    let mut warnings = Vec::new();
    if let Some(w) = hc["BlkioWeight"].as_i64().filter(|&w| w != 0) {
        if !(10..=1000).contains(&w) {
            return Err("Range of blkio weight is from 10 to 1000".into());
        }
        if !block_io_weights() {
            warnings.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".into());
            hc["BlkioWeight"] = json!(0);
        }
    }
    Ok(warnings)
}

/// Whether the kernel takes block IO weights: cgroup v1's CFQ or BFQ
/// weight file, or v2's io controller with BFQ.
pub fn block_io_weights() -> bool {
    let v1 = std::path::Path::new("/sys/fs/cgroup/blkio");
    if v1.is_dir() {
        return v1.join("blkio.weight").exists() || v1.join("blkio.bfq.weight").exists();
    }
    std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| c.split_whitespace().any(|c| c == "io"))
}

/// The capability set: Docker's default with `--cap-add`/`--cap-drop`.
pub fn capabilities(hc: &Value) -> Result<Vec<String>, String> {
    let norm = |c: &str| {
        let c = c.to_ascii_uppercase();
        if c.starts_with("CAP_") || c == "ALL" {
            c
        } else {
            format!("CAP_{c}")
        }
    };
    let all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let mut set: Vec<String> = if hc["Privileged"].as_bool().unwrap_or(false) {
        all.clone()
    } else {
        capabilities::DOCKER_DEFAULT.iter().map(|s| s.to_string()).collect()
    };
    for d in strings(&hc["CapDrop"]).iter().map(|c| norm(c)) {
        if d == "ALL" {
            set.clear();
        } else if !all.contains(&d) {
            return Err(format!("invalid capability to drop: {d}"));
        } else {
            set.retain(|c| *c != d);
        }
    }
    for a in strings(&hc["CapAdd"]).iter().map(|c| norm(c)) {
        if a == "ALL" {
            set = all.clone();
        } else if !all.contains(&a) {
            return Err(format!("invalid capability to add: {a}"));
        } else if !set.contains(&a) {
            set.push(a);
        }
    }
    set.sort();
    Ok(set)
}

/// The config.json for `record`, its rootfs at `rootfs`, its files in
/// `files`, its mounts resolved, in the network namespace pinned at
/// `netns` (`None`: the host's).
pub fn build(
    record: &Record,
    rootfs: &Path,
    files: &Path,
    mounts: &[Resolved],
    cgroup: &Path,
    netns: Option<&Path>,
) -> Result<Value, String> {
    let cfg = &record.config;
    let hc = &record.host_config;
    let mut spec = crate::runtime::spec::default_spec();
    let args = record.command();
    if args.is_empty() {
        return Err("no command specified".into());
    }
    let tty = record.tty();
    let mut env = strings(&cfg["Env"]);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    let hostname = cfg["Hostname"]
        .as_str()
        .filter(|h| !h.is_empty())
        .unwrap_or(record.short_id())
        .to_string();
    env.insert(1, format!("HOSTNAME={hostname}"));
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let (uid, gid, groups) = resolve_user(rootfs, cfg["User"].as_str().unwrap_or(""))?;
    let caps = capabilities(hc)?;
    let privileged = hc["Privileged"].as_bool().unwrap_or(false);
    let security_opt = strings(&hc["SecurityOpt"]);
    let no_new_privs = security_opt
        .iter()
        .any(|o| o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true");
    let unconfined = privileged || security_opt.iter().any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined");
    let cwd = cfg["WorkingDir"].as_str().filter(|w| !w.is_empty()).unwrap_or("/");
    if !cwd.starts_with('/') {
        return Err(format!("the working directory '{cwd}' is invalid, it needs to be an absolute path"));
    }
    let mut rlimits = Vec::new();
    for u in hc["Ulimits"].as_array().into_iter().flatten() {
        let name = u["Name"].as_str().unwrap_or_default();
        rlimits.push(json!({ "type": format!("RLIMIT_{}", name.to_ascii_uppercase()), "soft": u["Soft"], "hard": u["Hard"] }));
    }
    spec["process"] = json!({
        "terminal": tty,
        "user": { "uid": uid, "gid": gid, "additionalGids": groups },
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
        "rlimits": rlimits,
        "noNewPrivileges": no_new_privs,
        "oomScoreAdj": hc["OomScoreAdj"].as_i64().unwrap_or(0),
    });
    if let Some([rows, cols]) = hc["ConsoleSize"].as_array().map(|a| [a.first(), a.get(1)]) {
        if let (Some(h), Some(w)) = (rows.and_then(Value::as_u64), cols.and_then(Value::as_u64)) {
            if h > 0 && w > 0 {
                spec["process"]["consoleSize"] = json!({ "height": h, "width": w });
            }
        }
    }
    spec["root"] = json!({ "path": rootfs, "readonly": hc["ReadonlyRootfs"].as_bool().unwrap_or(false) });
    spec["hostname"] = json!(hostname);
    let shm = hc["ShmSize"].as_i64().filter(|&s| s > 0).unwrap_or(64 << 20);
    let mut m: Vec<Value> = spec["mounts"].as_array().cloned().unwrap_or_default();
    for x in &mut m {
        if x["destination"] == "/dev/shm" {
            x["options"] = json!(["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]);
        }
    }
    for f in ETC_FILES {
        // Always the container's own copy (of the host's resolv.conf for
        // host networking too): the container may write to it.
        let source = files.join(f);
        m.push(json!({ "destination": format!("/etc/{f}"), "type": "bind", "source": source, "options": ["rbind", "rprivate"] }));
    }
    for r in mounts {
        let mut options: Vec<String> = match r.kind.as_str() {
            "tmpfs" => {
                let mut o = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
                o.extend(r.options.split(',').filter(|s| !s.is_empty()).map(str::to_string));
                o
            }
            _ => vec!["rbind".to_string(), "rprivate".into()],
        };
        if !r.rw {
            options.push("ro".into());
        }
        let (kind, source) = if r.kind == "tmpfs" {
            ("tmpfs", "tmpfs".to_string())
        } else {
            ("bind", r.source.clone())
        };
        m.push(json!({ "destination": r.destination, "type": kind, "source": source, "options": options }));
    }
    spec["mounts"] = json!(m);
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    if let Some(p) = netns {
        namespaces.push(json!({"type": "network", "path": p}));
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": cgroup,
        "resources": resources(hc),
        "maskedPaths": if privileged { json!([]) } else { json!(default_profile::masked_paths()) },
        "readonlyPaths": if privileged { json!([]) } else { json!(default_profile::READONLY_PATHS) },
    });
    if privileged {
        linux["resources"]["devices"] = json!([{ "allow": true, "access": "rwm" }]);
    }
    if !unconfined {
        linux["seccomp"] = default_profile::seccomp(&caps);
    }
    let sysctls: serde_json::Map<String, Value> = hc["Sysctls"].as_object().cloned().unwrap_or_default();
    if !sysctls.is_empty() {
        linux["sysctl"] = Value::Object(sysctls);
    }
    spec["linux"] = linux;
    if hc["Init"].as_bool().unwrap_or(false) {
        spec["annotations"] = json!({ crate::runtime::process::finalize::INIT_ANNOTATION: "true" });
    }
    Ok(spec)
}

/// The content of /etc/hosts for a container.
pub fn hosts_file(hostname: &str, extra: &[String], address: Option<(&str, &str)>) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for e in extra {
        // --add-host NAME:IP
        if let Some((name, ip)) = e.split_once(':') {
            // Docker's `host-gateway`: the host as the container reaches it.
            let ip = match (ip, address) {
                ("host-gateway", Some((_, gw))) => gw,
                _ => ip,
            };
            s.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    match address {
        Some((ip, _)) => s.push_str(&format!("{ip}\t{hostname}\n")),
        None => s.push_str(&format!("127.0.1.1\t{hostname}\n")),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_against_the_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:1000:1001::/home/web:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nweb:x:1001:\nstaff:x:50:web,other\n").unwrap();
        assert_eq!(resolve_user(dir.path(), "").unwrap(), (0, 0, vec![]));
        assert_eq!(resolve_user(dir.path(), "web").unwrap(), (1000, 1001, vec![50]));
        assert_eq!(resolve_user(dir.path(), "1000").unwrap(), (1000, 1001, vec![50]));
        assert_eq!(resolve_user(dir.path(), "web:staff").unwrap(), (1000, 50, vec![]));
        assert_eq!(resolve_user(dir.path(), "4242:7").unwrap(), (4242, 7, vec![]));
        assert!(resolve_user(dir.path(), "nobody").unwrap_err().contains("nobody"));
        assert!(resolve_user(dir.path(), "web:nogroup").unwrap_err().contains("nogroup"));
    }

    #[test]
    fn capabilities_follow_add_and_drop() {
        let c = capabilities(&json!({"CapDrop": ["NET_RAW"], "CapAdd": ["sys_admin"]})).unwrap();
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()) && !c.contains(&"CAP_NET_RAW".to_string()));
        assert!(capabilities(&json!({"CapDrop": ["ALL"]})).unwrap().is_empty());
        assert!(capabilities(&json!({"CapAdd": ["BOGUS"]})).unwrap_err().contains("CAP_BOGUS"));
    }

    #[test]
    fn cpusets_and_weights_are_checked_and_mapped() {
        for good in ["0", "0-3", "0,2-3", "1,3"] {
            assert!(check_resources(&mut json!({ "CpusetCpus": good })).is_ok(), "{good}");
        }
        for bad in ["1-", "a", "0-3-5", "0,,1", "-1"] {
            assert!(check_resources(&mut json!({ "CpusetMems": bad })).is_err(), "{bad}");
        }
        assert!(check_resources(&mut json!({ "BlkioWeight": 5 })).is_err());
        let r = resources(&json!({ "CpusetCpus": "0-1", "CpusetMems": "0", "MemoryReservation": 1 << 20, "BlkioWeight": 300 }));
        assert_eq!(r["cpu"]["cpus"], "0-1");
        assert_eq!(r["cpu"]["mems"], "0");
        assert_eq!(r["memory"]["reservation"], 1 << 20);
        assert_eq!(r["blockIO"]["weight"], 300);
    }

    #[test]
    fn resources_translate() {
        let r = resources(&json!({"Memory": 64 << 20, "NanoCpus": 500_000_000, "PidsLimit": 20}));
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["pids"]["limit"], 20);
    }
}
