//! `berth events`: berthd's events (`GET /events`) as they happen, or
//! from `--since` to `--until`, one line each in docker's default format
//! (`TIME TYPE ACTION ID (attributes)`, the time in RFC 3339 with
//! nanoseconds in our time zone) or through `--format`.

use std::io::{BufRead, Write};
use std::time::SystemTime;

use clap::Args;
use serde_json::{Map, Value};

use super::api::{filter_query, Api};
use super::format::go_quote;
use super::template::Template;
use super::{logs, CliError};

/// `berth events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided.
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'json', or a Go template.
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Show all events created since timestamp.
    #[arg(long = "since")]
    pub since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long = "until")]
    pub until: Option<String>,
}

/// Our offset from UTC at `secs`, in seconds (the C library's view of
/// TZ, as Go's `time.Local`).
fn utc_offset(secs: i64) -> i64 {
    let t: libc::time_t = secs;
    // SAFETY: `tm` is plain old data; all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r reads the time_t and writes one `tm` through
    // pointers to live locals; it keeps neither.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        0
    } else {
        tm.tm_gmtoff
    }
}

/// Go's `jsonmessage.RFC3339NanoFixed` in our zone:
/// `2006-01-02T15:04:05.000000000Z07:00`.
fn local_time(nanos: u128) -> String {
    let secs = (nanos / 1_000_000_000) as i64;
    let offset = utc_offset(secs);
    let plain = crate::time::rfc3339(secs + offset);
    let zone = if offset == 0 {
        "Z".to_string()
    } else {
        let (sign, off) = if offset < 0 { ('-', -offset) } else { ('+', offset) };
        format!("{sign}{:02}:{:02}", off / 3600, off % 3600 / 60)
    };
    format!("{}.{:09}{zone}", &plain[..plain.len() - 1], nanos % 1_000_000_000)
}

/// docker's `prettyPrintEvent`.
fn pretty(e: &Value) -> String {
    let nanos = e["timeNano"]
        .as_u64()
        .map(u128::from)
        .filter(|n| *n != 0)
        .or_else(|| e["time"].as_u64().filter(|t| *t != 0).map(|t| u128::from(t) * 1_000_000_000));
    let mut line = nanos.map(|n| format!("{} ", local_time(n))).unwrap_or_default();
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    line.push_str(&format!("{} {} {}", s(&e["Type"]), s(&e["Action"]), s(&e["Actor"]["ID"])));
    let attrs: Vec<String> = e["Actor"]["Attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
        .collect();
    if !attrs.is_empty() {
        // serde_json's map keeps its keys sorted, as Go sorts them here.
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

/// An event as Go marshals docker's `events.Message`: its fields in
/// declaration order, the deprecated ones left out when empty.
fn go_json(e: &Value) -> String {
    let mut fields: Vec<(&str, Value)> = Vec::new();
    for k in ["status", "id", "from"] {
        if e[k].as_str().is_some_and(|s| !s.is_empty()) {
            fields.push((k, e[k].clone()));
        }
    }
    let attributes: Map<String, Value> = e["Actor"]["Attributes"].as_object().cloned().unwrap_or_default();
    let actor = format!(
        "{{\"ID\":{},\"Attributes\":{}}}",
        Value::from(e["Actor"]["ID"].as_str().unwrap_or_default()),
        Value::Object(attributes)
    );
    let mut out = String::from("{");
    for (k, v) in &fields {
        out.push_str(&format!("\"{k}\":{v},"));
    }
    out.push_str(&format!(
        "\"Type\":{},\"Action\":{},\"Actor\":{actor},\"scope\":{},\"time\":{},\"timeNano\":{}}}",
        Value::from(e["Type"].as_str().unwrap_or_default()),
        Value::from(e["Action"].as_str().unwrap_or_default()),
        Value::from(e["scope"].as_str().unwrap_or_default()),
        e["time"].as_i64().unwrap_or(0),
        e["timeNano"].as_i64().unwrap_or(0),
    ));
    out
}

/// An event as Go's template sees docker's `events.Message`: its field
/// names, not its JSON keys.
fn go_fields(e: &Value) -> Value {
    serde_json::json!({
        "Status": e["status"].as_str().unwrap_or_default(),
        "ID": e["id"].as_str().unwrap_or_default(),
        "From": e["from"].as_str().unwrap_or_default(),
        "Type": e["Type"].as_str().unwrap_or_default(),
        "Action": e["Action"].as_str().unwrap_or_default(),
        "Actor": {
            "ID": e["Actor"]["ID"].as_str().unwrap_or_default(),
            "Attributes": e["Actor"]["Attributes"].as_object().cloned().unwrap_or_default(),
        },
        "Scope": e["scope"].as_str().unwrap_or_default(),
        "Time": e["time"].as_i64().unwrap_or(0),
        "TimeNano": e["timeNano"].as_i64().unwrap_or(0),
    })
}

/// How each event is printed.
enum Printer {
    Pretty,
    Json,
    Template(Template),
}

impl Printer {
    fn of(format: Option<&str>) -> Result<Printer, CliError> {
        match format {
            None | Some("") => Ok(Printer::Pretty),
            Some("json") | Some("{{json .}}") => Ok(Printer::Json),
            Some(f) => {
                let t = Template::parse(&f.replace("\\t", "\t").replace("\\n", "\n")).map_err(|e| CliError::Usage(e.to_string()))?;
                Ok(Printer::Template(t))
            }
        }
    }

    fn line(&self, e: &Value) -> Result<String, CliError> {
        match self {
            Printer::Pretty => Ok(pretty(e)),
            Printer::Json => Ok(go_json(e)),
            Printer::Template(t) => t.render(&go_fields(e)).map_err(|err| CliError::Failed(err.to_string())),
        }
    }
}

/// `berth events`.
pub fn events(api: &Api, a: EventsArgs) -> Result<(), CliError> {
    let printer = Printer::of(a.format.as_deref())?;
    let now = SystemTime::now();
    let mut q = filter_query(&a.filter)?;
    for (key, value) in [("since", &a.since), ("until", &a.until)] {
        if let Some(v) = value {
            q.push(if q.is_empty() { '?' } else { '&' });
            let t = logs::timestamp(v, now)
                .map_err(|_| CliError::Failed(format!("failed to parse value as time or duration: {}", go_quote(v))))?;
            q.push_str(&format!("{key}={t}"));
        }
    }
    let stream = api.open("GET", &format!("/events{q}"))?;
    let mut out = std::io::stdout();
    for line in std::io::BufReader::new(stream).lines() {
        let line = line.map_err(|e| CliError::Failed(format!("error reading events: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let e: Value =
            serde_json::from_str(&line).map_err(|err| CliError::Failed(format!("berthd sent an event that is not JSON: {err}")))?;
        let text = printer.line(&e)?;
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            // Our reader left.
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn die() -> Value {
        json!({"status": "die", "id": "124c", "from": "busybox", "Type": "container", "Action": "die",
               "Actor": {"ID": "124c", "Attributes": {"name": "ev", "image": "busybox", "exitCode": "0"}},
               "scope": "local", "time": 1_795_449_295, "timeNano": 1_795_449_295_857_112_122u64})
    }

    #[test]
    fn events_print_as_dockers() {
        if utc_offset(0) != 0 || utc_offset(1_795_449_295) != 0 {
            return;
        }
        assert_eq!(
            pretty(&die()),
            "2026-11-23T15:54:55.857112122Z container die 124c (exitCode=0, image=busybox, name=ev)"
        );
        assert_eq!(
            go_json(&die()),
            r#"{"status":"die","id":"124c","from":"busybox","Type":"container","Action":"die","Actor":{"ID":"124c","Attributes":{"exitCode":"0","image":"busybox","name":"ev"}},"scope":"local","time":1795449295,"timeNano":1795449295857112122}"#
        );
        let volume = json!({"Type": "volume", "Action": "create", "Actor": {"ID": "v", "Attributes": {}}, "time": 1, "timeNano": 0});
        assert_eq!(pretty(&volume), "1970-01-01T00:00:01.000000000Z volume create v");
        let t = Printer::of(Some("{{.Type}} {{.Status}} {{.Actor.Attributes.name}} {{.Time}}")).unwrap();
        assert_eq!(t.line(&die()).unwrap(), "container die ev 1795449295");
    }
}
