//! The flags `run` and `create` share, and the create request body made
//! of them as docker's CLI makes it (`Config` with `HostConfig` inside):
//! sizes in docker's units (`64m`), `--cpus` as NanoCpus, `-v` split
//! into binds and anonymous volumes, `--mount` fields, env files,
//! restart policies and ulimits.

use std::collections::BTreeMap;

use clap::Args;
use serde_json::{json, Map, Value};

use super::CliError;

/// How a container is made.
#[derive(Args, Debug, Default, Clone)]
pub struct ContainerOptions {
    /// Assign a name to the container.
    #[arg(long = "name")]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Automatically remove the container when it exits.
    #[arg(long = "rm")]
    pub rm: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Set meta data on a container.
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels.
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_file: Vec<std::path::PathBuf>,
    /// Bind mount a volume (SOURCE:DEST[:OPTIONS], or DEST for an anonymous one).
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=,target=,readonly,...).
    #[arg(long = "mount")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (PATH[:OPTIONS]).
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    /// Optional volume driver for the container.
    #[arg(long = "volume-driver")]
    pub volume_driver: Option<String>,
    /// Connect a container to a network.
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long = "ip")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33).
    #[arg(long = "ip6")]
    pub ip6: Option<String>,
    /// Publish a container's port(s) to the host ([IP:][HOSTPORT:]PORT[/PROTO]).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports.
    #[arg(long = "expose")]
    pub expose: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long = "entrypoint", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Memory limit (bytes, or with a unit: 64m, 1g).
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 for unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long = "cpus")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable.
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Tune container pids limit (-1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Tune host's OOM preferences (-1000 to 1000).
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N]).
    #[arg(long = "restart")]
    pub restart: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long = "hostname")]
    pub hostname: Option<String>,
    /// Container NIS domain name.
    #[arg(long = "domainname")]
    pub domainname: Option<String>,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Security options.
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Logging driver for the container.
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options.
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long = "privileged")]
    pub privileged: bool,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Ulimit options (name=soft[:hard]).
    #[arg(long = "ulimit")]
    pub ulimit: Vec<String>,
    /// Sysctl options.
    #[arg(long = "sysctl")]
    pub sysctl: Vec<String>,
    /// Size of /dev/shm.
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long = "init")]
    pub init: bool,
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// docker's `units.RAMInBytes`: a number with an optional binary unit
/// (`b`, `k`, `m`, `g`, `t`, `p`, optionally followed by `b` or `ib`).
pub fn ram_in_bytes(s: &str) -> Option<i64> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(&unit);
    let mult: i64 = match unit {
        "" | "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    Some((n * mult as f64) as i64)
}

/// A size flag's value in bytes (`64m`), refused as docker refuses it.
pub(super) fn size_flag(flag: &str, v: &Option<String>) -> Result<Option<i64>, CliError> {
    v.as_deref()
        .map(|s| ram_in_bytes(s).ok_or_else(|| usage(format!("invalid argument {s:?} for \"{flag}\" flag: invalid size: '{s}'"))))
        .transpose()
}

/// `--cpus 1.5` as NanoCpus.
pub fn nano_cpus(s: &str) -> Option<i64> {
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) || whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac: i64 = format!("{frac:0<9}").parse().ok()?;
    whole.checked_mul(1_000_000_000)?.checked_add(frac)
}

/// Lines of an env or label file: blank lines and `#` comments skipped.
fn file_lines(path: &std::path::Path) -> Result<Vec<String>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| usage(format!("open {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// `--env-file` lines, then `-e` entries, as docker's `ReadKVEnvStrings`.
pub(super) fn environment(files: &[std::path::PathBuf], env: &[String]) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    for f in files {
        out.extend(file_lines(f)?.iter().map(|l| env_entry(l)));
    }
    out.extend(env.iter().map(|e| env_entry(e)));
    Ok(out)
}

/// `KEY` alone takes its value from our environment, as docker's
/// `ValidateEnv` does; unset, it is passed bare.
fn env_entry(e: &str) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match std::env::var(e) {
        Ok(v) => format!("{e}={v}"),
        Err(_) => e.to_string(),
    }
}

fn key_values(list: &[String], what: &str) -> Result<Map<String, Value>, CliError> {
    let mut m = Map::new();
    for p in list {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| usage(format!("invalid {what} {p:?}: expected KEY=VALUE")))?;
        m.insert(k.to_string(), json!(v));
    }
    Ok(m)
}

/// `--restart` as a RestartPolicy.
pub(super) fn restart_policy(s: Option<&str>) -> Result<Value, CliError> {
    let s = s.unwrap_or("no");
    let (name, count) = match s.split_once(':') {
        // docker takes `always:` as `always`.
        Some((n, "")) => (n, 0),
        Some((n, c)) => (
            n,
            c.parse::<i64>().map_err(|_| {
                usage(format!(
                    "invalid restart policy format: maximum retry count must be an integer: {c:?}"
                ))
            })?,
        ),
        None => (s, 0),
    };
    if name.is_empty() {
        return Err(usage("invalid restart policy format: no policy provided before colon"));
    }
    Ok(json!({ "Name": name, "MaximumRetryCount": count }))
}

/// `--ulimit nofile=100:200`.
fn ulimit(s: &str) -> Result<Value, CliError> {
    let bad = || usage(format!("invalid argument {s:?} for \"--ulimit\" flag: expected NAME=SOFT[:HARD]"));
    let (name, limits) = s.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let soft: i64 = soft.parse().map_err(|_| bad())?;
    let hard: i64 = hard.parse().map_err(|_| bad())?;
    if soft > hard {
        return Err(usage(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(json!({ "Name": name, "Soft": soft, "Hard": hard }))
}

fn truthy_opt(v: Option<&str>) -> Result<bool, CliError> {
    match v.unwrap_or("true") {
        "" | "1" | "true" | "True" | "TRUE" => Ok(true),
        "0" | "false" | "False" | "FALSE" => Ok(false),
        other => Err(usage(format!("invalid boolean value {other:?}"))),
    }
}

/// `--mount type=...,source=...,target=...` as a Mount object.
pub fn mount(spec: &str) -> Result<Value, CliError> {
    let mut m = Map::new();
    let mut kind = "volume".to_string();
    let mut volume = Map::new();
    let mut driver = Map::new();
    let mut driver_opts = Map::new();
    let mut labels = Map::new();
    let mut bind = Map::new();
    let mut tmpfs = Map::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let value = || {
            v.map(str::to_string)
                .ok_or_else(|| usage(format!("invalid field '{field}' must be a key=value pair")))
        };
        match k.as_str() {
            "type" => kind = value()?,
            "source" | "src" => {
                m.insert("Source".into(), json!(value()?));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(value()?));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(truthy_opt(v)?));
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(value()?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(value()?));
            }
            "bind-recursive" | "bind-nonrecursive" => {}
            "volume-nocopy" => {
                volume.insert("NoCopy".into(), json!(truthy_opt(v)?));
            }
            "volume-driver" => {
                driver.insert("Name".into(), json!(value()?));
            }
            "volume-opt" => {
                let o = value()?;
                let (ok, ov) = o.split_once('=').unwrap_or((&o, ""));
                driver_opts.insert(ok.into(), json!(ov));
            }
            "volume-label" => {
                let o = value()?;
                let (lk, lv) = o.split_once('=').unwrap_or((&o, ""));
                labels.insert(lk.into(), json!(lv));
            }
            "tmpfs-size" => {
                let s = value()?;
                let n = ram_in_bytes(&s).ok_or_else(|| usage(format!("invalid value for tmpfs-size: {s}")))?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let s = value()?;
                let n = u32::from_str_radix(&s, 8).map_err(|_| usage(format!("invalid value for tmpfs-mode: {s}")))?;
                tmpfs.insert("Mode".into(), json!(n));
            }
            _ => return Err(usage(format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if !m.contains_key("Target") {
        return Err(usage(format!("invalid argument {spec:?} for \"--mount\" flag: target is required")));
    }
    if !driver_opts.is_empty() {
        driver.insert("Options".into(), Value::Object(driver_opts));
    }
    if !driver.is_empty() {
        volume.insert("DriverConfig".into(), Value::Object(driver));
    }
    if !labels.is_empty() {
        volume.insert("Labels".into(), Value::Object(labels));
    }
    for (key, obj) in [("VolumeOptions", volume), ("BindOptions", bind), ("TmpfsOptions", tmpfs)] {
        if !obj.is_empty() {
            m.insert(key.into(), Value::Object(obj));
        }
    }
    m.insert("Type".into(), json!(kind));
    Ok(Value::Object(m))
}

/// `-v`: a source makes a bind (or a named volume), else the target is
/// an anonymous volume. A relative source starting with `.` is made
/// absolute, as docker's CLI does.
fn volumes(list: &[String]) -> (Vec<String>, Map<String, Value>) {
    let mut binds = Vec::new();
    let mut anonymous = Map::new();
    for v in list {
        match v.split_once(':') {
            Some((src, rest)) => {
                let src = if src.starts_with('.') {
                    std::path::absolute(src)
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| src.to_string())
                } else {
                    src.to_string()
                };
                binds.push(format!("{src}:{rest}"));
            }
            None => {
                anonymous.insert(v.clone(), json!({}));
            }
        }
    }
    (binds, anonymous)
}

/// `--security-opt seccomp=FILE` carries the profile itself, as docker's
/// CLI sends it.
fn security_opts(list: &[String]) -> Result<Vec<String>, CliError> {
    list.iter()
        .map(|o| match o.split_once(['=', ':']) {
            Some(("seccomp", p)) if p != "unconfined" && p != "builtin" => {
                let text = std::fs::read(p).map_err(|e| usage(format!("opening seccomp profile ({p}) failed: {e}")))?;
                let v: Value =
                    serde_json::from_slice(&text).map_err(|e| usage(format!("compacting json for seccomp profile ({p}) failed: {e}")))?;
                Ok(format!("seccomp={v}"))
            }
            _ => Ok(o.clone()),
        })
        .collect()
}

/// docker 28 sends capabilities as `CAP_NAME` (and `ALL` as is).
fn capabilities(list: &[String]) -> Value {
    let caps: Vec<String> = list
        .iter()
        .map(|c| {
            let c = c.to_ascii_uppercase();
            if c == "ALL" || c.starts_with("CAP_") {
                c
            } else {
                format!("CAP_{c}")
            }
        })
        .collect();
    if caps.is_empty() {
        Value::Null
    } else {
        json!(caps)
    }
}

/// How the CLI will talk to the container, which shapes its Config.
#[derive(Clone, Copy, Debug, Default)]
pub struct Attach {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl ContainerOptions {
    /// The `POST /containers/create` body for `image` and `command`.
    pub fn body(&self, image: &str, command: &[String], attach: Attach, console: Option<(u16, u16)>) -> Result<Value, CliError> {
        let env = environment(&self.env_file, &self.env)?;
        let mut labels = Vec::new();
        for f in &self.label_file {
            labels.extend(file_lines(f)?);
        }
        labels.extend(self.label.iter().cloned());
        let labels: Map<String, Value> = labels
            .iter()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                (k.to_string(), json!(v))
            })
            .collect();
        let (binds, anonymous) = volumes(&self.volume);
        let mounts = self.mount.iter().map(|m| mount(m)).collect::<Result<Vec<_>, _>>()?;
        let tmpfs: BTreeMap<String, String> = self
            .tmpfs
            .iter()
            .map(|t| {
                let (p, o) = t.split_once(':').unwrap_or((t, ""));
                (p.to_string(), o.to_string())
            })
            .collect();
        let nano = self
            .cpus
            .as_deref()
            .map(|c| {
                nano_cpus(c).ok_or_else(|| {
                    usage(format!(
                        "invalid argument {c:?} for \"--cpus\" flag: failed to parse {c} as a rational number"
                    ))
                })
            })
            .transpose()?;
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            _ => size_flag("--memory-swap", &self.memory_swap)?,
        };
        let entrypoint = self.entrypoint.as_ref().map(|e| json!([e])).unwrap_or(Value::Null);
        let cmd = if command.is_empty() { Value::Null } else { json!(command) };
        let extra_hosts: Vec<String> = self
            .add_host
            .iter()
            .map(|h| match h.split_once('=') {
                Some((name, ip)) if !h.contains(':') || h.find('=') < h.find(':') => format!("{name}:{ip}"),
                _ => h.clone(),
            })
            .collect();
        let network = self.network.clone().unwrap_or_else(|| "default".into());
        let (port_bindings, mut exposed) = publish_specs(&self.publish)?;
        for e in &self.expose {
            for key in expose_spec(e)? {
                exposed.insert(key, json!({}));
            }
        }
        let mut endpoint = json!({});
        if !self.network_alias.is_empty() {
            endpoint["Aliases"] = json!(self.network_alias);
        }
        if self.ip.is_some() || self.ip6.is_some() {
            endpoint["IPAMConfig"] =
                json!({ "IPv4Address": self.ip.clone().unwrap_or_default(), "IPv6Address": self.ip6.clone().unwrap_or_default() });
        }
        let mut hc = json!({
            "AutoRemove": self.rm,
            "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
            "CapAdd": capabilities(&self.cap_add),
            "CapDrop": capabilities(&self.cap_drop),
            "ConsoleSize": console.map(|(h, w)| [h, w]).unwrap_or([0, 0]),
            "CpuShares": self.cpu_shares.unwrap_or(0),
            "CpusetCpus": self.cpuset_cpus.clone().unwrap_or_default(),
            "CpusetMems": self.cpuset_mems.clone().unwrap_or_default(),
            "BlkioWeight": self.blkio_weight.unwrap_or(0),
            "MemoryReservation": size_flag("--memory-reservation", &self.memory_reservation)?.unwrap_or(0),
            "ExtraHosts": if extra_hosts.is_empty() { Value::Null } else { json!(extra_hosts) },
            "LogConfig": { "Type": self.log_driver.clone().unwrap_or_default(), "Config": key_values(&self.log_opt, "log option")? },
            "Memory": size_flag("--memory", &self.memory)?.unwrap_or(0),
            "MemorySwap": memory_swap.unwrap_or(0),
            "MemorySwappiness": -1,
            "NanoCpus": nano.unwrap_or(0),
            "NetworkMode": network,
            "OomScoreAdj": self.oom_score_adj.unwrap_or(0),
            "PidsLimit": self.pids_limit.unwrap_or(0),
            "PortBindings": port_bindings,
            "PublishAllPorts": self.publish_all,
            "Dns": self.dns,
            "DnsSearch": self.dns_search,
            "DnsOptions": self.dns_option,
            "Privileged": self.privileged,
            "ReadonlyRootfs": self.read_only,
            "RestartPolicy": restart_policy(self.restart.as_deref())?,
            "SecurityOpt": if self.security_opt.is_empty() { Value::Null } else { json!(security_opts(&self.security_opt)?) },
            "ShmSize": size_flag("--shm-size", &self.shm_size)?.unwrap_or(0),
            "Ulimits": self.ulimit.iter().map(|u| ulimit(u)).collect::<Result<Vec<_>, _>>()?,
            "VolumeDriver": self.volume_driver.clone().unwrap_or_default(),
        });
        if !mounts.is_empty() {
            hc["Mounts"] = json!(mounts);
        }
        if !tmpfs.is_empty() {
            hc["Tmpfs"] = json!(tmpfs);
        }
        if !self.sysctl.is_empty() {
            hc["Sysctls"] = Value::Object(key_values(&self.sysctl, "sysctl")?);
        }
        if self.init {
            hc["Init"] = json!(true);
        }
        let mut body = json!({
            "AttachStderr": attach.stderr,
            "AttachStdin": attach.stdin,
            "AttachStdout": attach.stdout,
            "Cmd": cmd,
            "Domainname": self.domainname.clone().unwrap_or_default(),
            "Entrypoint": entrypoint,
            "Env": if env.is_empty() { Value::Null } else { json!(env) },
            "Hostname": self.hostname.clone().unwrap_or_default(),
            "Image": image,
            "Labels": labels,
            "OpenStdin": self.interactive,
            "StdinOnce": self.interactive && attach.stdin,
            "Tty": self.tty,
            "User": self.user.clone().unwrap_or_default(),
            "Volumes": anonymous,
            "WorkingDir": self.workdir.clone().unwrap_or_default(),
            "HostConfig": hc,
            "NetworkingConfig": { "EndpointsConfig": { network.clone(): endpoint } },
        });
        if !exposed.is_empty() {
            body["ExposedPorts"] = Value::Object(exposed);
        }
        if let Some(t) = self.stop_timeout {
            body["StopTimeout"] = json!(t);
        }
        if let Some(s) = &self.stop_signal {
            body["StopSignal"] = json!(s);
        }
        Ok(body)
    }
}

/// `PORT[-END][/PROTO]` as a list of `PORT/PROTO` keys.
fn port_keys(spec: &str) -> Result<Vec<(u16, String)>, CliError> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let bad = || {
        usage(format!(
            "invalid port {spec:?}: a port, or a range such as 8000-8010, with /tcp or /udp"
        ))
    };
    if !matches!(proto, "tcp" | "udp") {
        return Err(bad());
    }
    let num = |t: &str| t.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad);
    let (a, b) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(ports)?, num(ports)?),
    };
    if a > b {
        return Err(bad());
    }
    Ok((a..=b).map(|p| (p, proto.to_string())).collect())
}

/// `--expose 80[-90][/proto]`.
fn expose_spec(spec: &str) -> Result<Vec<String>, CliError> {
    Ok(port_keys(spec)?.into_iter().map(|(p, proto)| format!("{p}/{proto}")).collect())
}

/// docker's `-p` forms: `PORT`, `HOSTPORT:PORT`, `IP:HOSTPORT:PORT`,
/// `IP::PORT`, `[IPv6]:HOSTPORT:PORT`, each port a number or a range,
/// `/udp` after the container port. Gives `PortBindings` and the ports
/// they expose.
/// `HostConfig.PortBindings` and `Config.ExposedPorts`.
type Published = (Map<String, Value>, Map<String, Value>);

fn publish_specs(specs: &[String]) -> Result<Published, CliError> {
    let mut bindings = Map::new();
    let mut exposed = Map::new();
    for spec in specs {
        let bad = |why: &str| usage(format!("invalid publish spec {spec:?}: {why}"));
        let (ip, rest) = match spec.strip_prefix('[') {
            Some(r) => {
                let (ip, rest) = r.split_once("]:").ok_or_else(|| bad("an IPv6 address needs ]: after it"))?;
                (ip.to_string(), rest.to_string())
            }
            None => {
                let parts: Vec<&str> = spec.splitn(3, ':').collect();
                match parts.as_slice() {
                    [_] | [_, _] => (String::new(), spec.clone()),
                    [ip, host, container] => (ip.to_string(), format!("{host}:{container}")),
                    _ => return Err(bad("too many colons")),
                }
            }
        };
        if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
            return Err(bad("the host IP is not an address"));
        }
        let (host, container) = match rest.rsplit_once(':') {
            Some((h, c)) => (h.to_string(), c.to_string()),
            None => (String::new(), rest.clone()),
        };
        let containers = port_keys(&container)?;
        let hosts: Vec<String> = if host.is_empty() {
            vec![String::new(); containers.len()]
        } else {
            let range = port_keys(&host)?;
            if range.len() == containers.len() {
                range.iter().map(|(p, _)| p.to_string()).collect()
            } else if containers.len() == 1 {
                // A host range for one port: any free port of the range.
                vec![host.clone()]
            } else {
                return Err(bad("the host and container port ranges differ in size"));
            }
        };
        for ((port, proto), host_port) in containers.iter().zip(hosts) {
            let key = format!("{port}/{proto}");
            exposed.insert(key.clone(), json!({}));
            let list = bindings.entry(key).or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut() {
                a.push(json!({ "HostIp": ip, "HostPort": host_port }));
            }
        }
    }
    Ok((bindings, exposed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs_read_as_dockers() {
        let (b, e) = publish_specs(&[
            "8080:80".into(),
            "127.0.0.1::53/udp".into(),
            "[::1]:9000-9001:90-91".into(),
            "7000".into(),
        ])
        .unwrap();
        assert_eq!(b["80/tcp"], json!([{ "HostIp": "", "HostPort": "8080" }]));
        assert_eq!(b["53/udp"], json!([{ "HostIp": "127.0.0.1", "HostPort": "" }]));
        assert_eq!(b["91/tcp"], json!([{ "HostIp": "::1", "HostPort": "9001" }]));
        assert_eq!(b["7000/tcp"], json!([{ "HostIp": "", "HostPort": "" }]));
        assert_eq!(e.len(), 5);
        let (b, _) = publish_specs(&["8000-8010:80".into()]).unwrap();
        assert_eq!(b["80/tcp"][0]["HostPort"], "8000-8010");
        assert!(publish_specs(&["1-3:80-81".into()]).is_err());
        assert!(publish_specs(&["x:80".into()]).is_err());
        assert!(publish_specs(&["80/sctp".into()]).is_err());
        assert!(publish_specs(&["nothost:1:80".into()]).is_err());
        assert_eq!(expose_spec("5000-5001/udp").unwrap(), vec!["5000/udp", "5001/udp"]);
    }

    #[test]
    fn sizes_and_cpus_read_as_dockers() {
        assert_eq!(ram_in_bytes("64m"), Some(64 << 20));
        assert_eq!(ram_in_bytes("64MB"), Some(64 << 20));
        assert_eq!(ram_in_bytes("1.5g"), Some(3 << 29));
        assert_eq!(ram_in_bytes("1024"), Some(1024));
        assert_eq!(ram_in_bytes("2KiB"), Some(2048));
        assert_eq!(ram_in_bytes("12x"), None);
        assert_eq!(ram_in_bytes("m"), None);
        assert_eq!(nano_cpus("1.5"), Some(1_500_000_000));
        assert_eq!(nano_cpus("2"), Some(2_000_000_000));
        assert_eq!(nano_cpus(".25"), Some(250_000_000));
        assert_eq!(nano_cpus("0.0000000001"), None);
        assert_eq!(nano_cpus("x"), None);
    }

    #[test]
    fn mounts_volumes_and_policies() {
        assert_eq!(
            mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap(),
            json!({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1770}})
        );
        assert_eq!(
            mount("source=data,target=/data,readonly,volume-driver=local").unwrap(),
            json!({"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": true, "VolumeOptions": {"DriverConfig": {"Name": "local"}}})
        );
        assert!(mount("type=bind,source=/x").is_err());
        let (binds, anon) = volumes(&["data:/data:ro".into(), "/cache".into(), "/h:/c".into()]);
        assert_eq!(binds, ["data:/data:ro", "/h:/c"]);
        assert_eq!(Value::Object(anon), json!({"/cache": {}}));
        assert_eq!(
            restart_policy(Some("on-failure:3")).unwrap(),
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(restart_policy(None).unwrap(), json!({"Name": "no", "MaximumRetryCount": 0}));
        assert_eq!(
            restart_policy(Some("always:")).unwrap(),
            json!({"Name": "always", "MaximumRetryCount": 0})
        );
        assert_eq!(
            ulimit("nofile=100:200").unwrap(),
            json!({"Name": "nofile", "Soft": 100, "Hard": 200})
        );
        assert_eq!(ulimit("nproc=5").unwrap(), json!({"Name": "nproc", "Soft": 5, "Hard": 5}));
        assert!(ulimit("nofile=200:100").is_err());
    }

    #[test]
    fn the_body_is_dockers() {
        let o = ContainerOptions {
            interactive: true,
            rm: true,
            env: vec!["A=1".into()],
            label: vec!["k=v".into(), "bare".into()],
            memory: Some("64m".into()),
            cpus: Some("0.5".into()),
            cap_add: vec!["net_admin".into()],
            tmpfs: vec!["/t:size=1m".into()],
            add_host: vec!["db=10.0.0.2".into(), "v6:::1".into()],
            stop_timeout: Some(5),
            init: true,
            ..Default::default()
        };
        let attach = Attach {
            stdin: true,
            stdout: true,
            stderr: true,
        };
        let b = o.body("busybox", &["sh".into()], attach, Some((24, 80))).unwrap();
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["sh"]));
        assert_eq!(b["Entrypoint"], Value::Null);
        assert_eq!((b["OpenStdin"].clone(), b["StdinOnce"].clone()), (json!(true), json!(true)));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["Labels"], json!({"k": "v", "bare": ""}));
        assert_eq!(b["StopTimeout"], 5);
        let hc = &b["HostConfig"];
        assert_eq!(hc["AutoRemove"], true);
        assert_eq!(hc["Memory"], 64 << 20);
        assert_eq!(hc["NanoCpus"], 500_000_000);
        assert_eq!(hc["CapAdd"], json!(["CAP_NET_ADMIN"]));
        assert_eq!(hc["Tmpfs"], json!({"/t": "size=1m"}));
        assert_eq!(hc["ConsoleSize"], json!([24, 80]));
        assert_eq!(hc["ExtraHosts"], json!(["db:10.0.0.2", "v6:::1"]));
        assert_eq!(hc["Init"], true);
        assert_eq!(hc["NetworkMode"], "default");
        let plain = ContainerOptions::default().body("busybox", &[], Attach::default(), None).unwrap();
        assert_eq!(plain["HostConfig"].get("Init"), None);
        assert_eq!(plain.get("StopTimeout"), None);
        assert_eq!(plain["Cmd"], Value::Null);
        let bad = ContainerOptions {
            memory: Some("lots".into()),
            ..Default::default()
        };
        assert!(matches!(bad.body("busybox", &[], Attach::default(), None), Err(CliError::Usage(_))));
    }
}
