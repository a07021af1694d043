//! `berth update`: new resource limits and restart policy for containers
//! (`POST /containers/{id}/update`, applied at once to running ones),
//! with docker's flags; each container updated is printed.

use clap::Args;
use serde_json::{json, Map, Value};

use super::api::{encode, Api};
use super::options::{nano_cpus, restart_policy, size_flag};
use super::CliError;

/// `berth update`.
#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable.
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Limit the CPU real-time period in microseconds.
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds.
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs.
    #[arg(long = "cpus")]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit.
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits.
    #[arg(long = "restart")]
    pub restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl UpdateArgs {
    /// The update body: docker's `UpdateConfig`, with only the flags given.
    fn body(&self) -> Result<Value, CliError> {
        let mut b = Map::new();
        let mut set = |k: &str, v: Value| {
            b.insert(k.to_string(), v);
        };
        if let Some(w) = self.blkio_weight {
            set("BlkioWeight", json!(w));
        }
        for (k, v) in [
            ("CpuPeriod", self.cpu_period),
            ("CpuQuota", self.cpu_quota),
            ("CpuRealtimePeriod", self.cpu_rt_period),
            ("CpuRealtimeRuntime", self.cpu_rt_runtime),
            ("CpuShares", self.cpu_shares),
            ("PidsLimit", self.pids_limit),
        ] {
            if let Some(v) = v {
                set(k, json!(v));
            }
        }
        if let Some(c) = &self.cpus {
            let n = nano_cpus(c).ok_or_else(|| {
                CliError::Usage(format!(
                    "invalid argument {c:?} for \"--cpus\" flag: failed to parse {c} as a rational number"
                ))
            })?;
            set("NanoCpus", json!(n));
        }
        for (k, v) in [("CpusetCpus", &self.cpuset_cpus), ("CpusetMems", &self.cpuset_mems)] {
            if let Some(v) = v {
                set(k, json!(v));
            }
        }
        for (k, flag, v) in [
            ("Memory", "--memory", &self.memory),
            ("MemoryReservation", "--memory-reservation", &self.memory_reservation),
        ] {
            if let Some(n) = size_flag(flag, v)? {
                set(k, json!(n));
            }
        }
        match self.memory_swap.as_deref() {
            Some("-1") => set("MemorySwap", json!(-1)),
            _ => {
                if let Some(n) = size_flag("--memory-swap", &self.memory_swap)? {
                    set("MemorySwap", json!(n));
                }
            }
        }
        if let Some(r) = &self.restart {
            // Not a flag error for docker's update: status 1.
            let policy = restart_policy(Some(r)).map_err(|e| CliError::Failed(e.to_string()))?;
            set("RestartPolicy", policy);
        }
        if b.is_empty() {
            return Err(CliError::Failed(
                "you must provide one or more flags when using this command".into(),
            ));
        }
        Ok(Value::Object(b))
    }
}

/// `berth update`: the containers updated, then warnings and failures
/// (docker prints them after).
pub fn update(api: &Api, a: UpdateArgs) -> Result<(), CliError> {
    let body = a.body()?;
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for c in &a.containers {
        match api.call("POST", &format!("/containers/{}/update", encode(c)), Some(&body)) {
            Ok(v) => {
                let v = v.unwrap_or_default();
                warnings.extend(
                    v["Warnings"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_string),
                );
                println!("{c}");
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    for w in warnings {
        eprintln!("{w}");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_flags_given_are_sent() {
        let a = UpdateArgs {
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            cpus: Some("1.5".into()),
            restart: Some("on-failure:2".into()),
            ..Default::default()
        };
        assert_eq!(
            a.body().unwrap(),
            json!({"Memory": 64 << 20, "MemorySwap": -1, "NanoCpus": 1_500_000_000,
                   "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
        );
        let none = UpdateArgs::default().body().unwrap_err();
        assert_eq!(none.to_string(), "you must provide one or more flags when using this command");
        let bad = UpdateArgs {
            memory: Some("lots".into()),
            ..Default::default()
        };
        assert!(matches!(bad.body(), Err(CliError::Usage(_))));
    }
}
