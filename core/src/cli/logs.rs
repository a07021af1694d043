//! `berth logs`: a container's log as berthd streams it, demultiplexed
//! unless the container has a terminal (then it is raw), followed with
//! `-f` until the container stops. `--since`/`--until` take what docker's
//! take: a duration back from now (`10m`), an RFC 3339 time or date, or
//! seconds since the epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;

use super::api::{encode, Api};
use super::{stream, CliError};

/// `berth logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// Number of lines to show from the end of the logs.
    #[arg(short = 'n', long = "tail", default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes).
    #[arg(long = "since")]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes).
    #[arg(long = "until")]
    pub until: Option<String>,
    /// Show timestamps.
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Go's `time.ParseDuration`, in seconds (negative allowed).
fn go_duration(s: &str) -> Option<f64> {
    let (sign, mut rest) = match s.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Some(sign * total)
}

/// docker's `timetypes.GetTimestamp`: the value as `SECONDS.NANOS`.
pub fn timestamp(value: &str, now: SystemTime) -> Result<String, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "invalid value for time: {value:?} (a duration such as 10m, an RFC 3339 time, or seconds since the epoch)"
        ))
    };
    let at = if let Some(secs) = go_duration(value).filter(|_| value != "0") {
        let d = Duration::from_secs_f64(secs.abs());
        if secs >= 0.0 { now.checked_sub(d) } else { now.checked_add(d) }.ok_or_else(bad)?
    } else if value.contains('-') {
        // Dates and times without a zone are taken as UTC.
        let full = match value.len() {
            10 => format!("{value}T00:00:00Z"),
            13 => format!("{value}:00:00Z"),
            16 => format!("{value}:00Z"),
            19 => format!("{value}Z"),
            _ => value.to_string(),
        };
        crate::time::parse_rfc3339(&full).ok_or_else(bad)?
    } else {
        crate::time::parse_timestamp(value).ok_or_else(bad)?
    };
    let since = at.duration_since(UNIX_EPOCH).map_err(|_| bad())?;
    Ok(format!("{}.{:09}", since.as_secs(), since.subsec_nanos()))
}

/// `berth logs`.
pub fn logs(api: &Api, a: LogsArgs) -> Result<(), CliError> {
    let c = api.get(&format!("/containers/{}/json", encode(&a.container)))?;
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = SystemTime::now();
    let mut q = format!(
        "stdout=1&stderr=1&follow={}&timestamps={}&tail={}",
        u8::from(a.follow),
        u8::from(a.timestamps),
        encode(&a.tail)
    );
    if let Some(s) = &a.since {
        q.push_str(&format!("&since={}", timestamp(s, now)?));
    }
    if let Some(u) = &a.until {
        q.push_str(&format!("&until={}", timestamp(u, now)?));
    }
    let id = c["Id"].as_str().unwrap_or(&a.container).to_string();
    let mut body = api.open("GET", &format!("/containers/{}/logs?{q}", encode(&id)))?;
    let result = if stream::is_raw(body.header("content-type"), tty) {
        stream::copy_raw(&mut body)
    } else {
        stream::demux(&mut body)
    };
    match result {
        // Our reader left (`logs -f | head`): nothing more to show.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| CliError::Failed(format!("error reading the log: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dockers() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(timestamp("10m", now).unwrap(), "1799999400.000000000");
        assert_eq!(timestamp("1h30m", now).unwrap(), "1799994600.000000000");
        assert_eq!(timestamp("1.5s", now).unwrap(), "1799999998.500000000");
        assert_eq!(timestamp("1700000000", now).unwrap(), "1700000000.000000000");
        assert_eq!(timestamp("1700000000.25", now).unwrap(), "1700000000.250000000");
        assert_eq!(timestamp("2026-11-23T00:00:00Z", now).unwrap(), "1795392000.000000000");
        assert_eq!(timestamp("2026-11-23", now).unwrap(), "1795392000.000000000");
        assert_eq!(timestamp("2026-11-23T01:00:00+01:00", now).unwrap(), "1795392000.000000000");
        assert!(timestamp("yesterday", now).is_err());
        assert_eq!(go_duration("-2h"), Some(-7200.0));
        assert_eq!(go_duration("300ms"), Some(0.3));
        assert_eq!(go_duration("5"), None);
    }
}
