//! Listings as docker prints them: `--format` read as docker's CLI reads
//! it (`table`, `table TEMPLATE`, `json`, or a template; `\t` and `\n`
//! written as escapes), tables aligned by [`super::tabwriter`], and
//! docker's renderings of sizes, durations, times and commands.

use clap::Args;
use serde_json::Value;

use super::tabwriter;
use super::template::Template;
use super::CliError;

/// The flags docker's listings share.
#[derive(Args, Debug, Default)]
pub struct ListArgs {
    /// Only display IDs.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (KEY=VALUE).
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template.
    #[arg(long = "format")]
    pub format: Option<String>,
}

impl ListArgs {
    /// Prints `rows`: their `ID`s with `-q`, else as `--format` says.
    pub fn print(&self, rows: &[Value], default_table: &str, headers: &Value) -> Result<(), CliError> {
        if self.quiet {
            for r in rows {
                println!("{}", r["ID"].as_str().unwrap_or_default());
            }
            return Ok(());
        }
        print!("{}", render(self.format.as_deref(), default_table, rows, headers)?);
        Ok(())
    }
}

/// Renders one line per row with `format` (else `default_table`); a
/// table gets a header row made by running its template on `headers`
/// (field name to column title, as docker's header contexts do).
pub fn render(format: Option<&str>, default_table: &str, rows: &[Value], headers: &Value) -> Result<String, CliError> {
    let format = format.map(str::trim).filter(|f| !f.is_empty()).unwrap_or(default_table);
    let (table, body) = match format {
        "json" => (false, "{{json .}}"),
        "table" => (true, default_table.trim_start_matches("table")),
        f => match f.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, f),
        },
    };
    let body = body.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n");
    let t = Template::parse(&body).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut out = String::new();
    if table {
        // Fields a header context lacks print as nothing, as docker's.
        let header = t.render(headers).unwrap_or_default();
        out.push_str(&header);
        out.push('\n');
    }
    for r in rows {
        let line = t.render(r).map_err(|e| CliError::Failed(e.to_string()))?;
        // A whole row as JSON is docker's MarshalJSON of it: Go's
        // json.Marshal, which escapes what HTML would read.
        if body == "{{json .}}" {
            out.push_str(&html_escaped(&line));
        } else {
            out.push_str(&line);
        }
        out.push('\n');
    }
    Ok(if table { tabwriter::align(&out) } else { out })
}

/// JSON text as Go's `json.Marshal` writes it: `<`, `>`, `&`, U+2028
/// and U+2029 escaped (they appear only inside strings).
fn html_escaped(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's `units.HumanSizeWithPrecision`: decimal units, `precision`
/// significant digits (`2.14MB`, `24.58kB`, `0B`).
pub fn human_size(bytes: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let (size, unit) = scaled(bytes, 1000.0, &UNITS);
    format!("{}{unit}", significant(size, precision))
}

/// Go's `units.BytesSize`: binary units, 4 significant digits (`240KiB`,
/// `23.54GiB`), as docker's stats print memory.
pub fn binary_size(bytes: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let (size, unit) = scaled(bytes, 1024.0, &UNITS);
    format!("{}{unit}", significant(size, 4))
}

/// `bytes` in the largest of `units` (each `base` times the one before)
/// that keeps it at least 1.
fn scaled<'a>(bytes: f64, base: f64, units: &[&'a str]) -> (f64, &'a str) {
    let mut size = bytes;
    let mut unit = 0;
    while size >= base && unit < units.len() - 1 {
        size /= base;
        unit += 1;
    }
    (size, units[unit])
}

/// `%.Ng` for a number below 1000: N significant digits, no trailing
/// zeros.
fn significant(x: f64, digits: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i64;
    let decimals = (digits as i64 - 1 - magnitude).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

pub use crate::time::human_duration;

/// A time as Go's `time.Time.String()` prints it in UTC
/// (`2026-11-23 15:11:10 +0000 UTC`).
pub fn go_time(secs: i64) -> String {
    let t = crate::time::rfc3339(secs);
    format!("{} {} +0000 UTC", &t[..10], &t[11..19])
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when
/// cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON as docker's `inspect` prints it: indented by four spaces.
pub fn pretty(v: &Value) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, serde_json::ser::PrettyFormatter::with_indent(b"    "));
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return v.to_string();
    }
    String::from_utf8(buf).unwrap_or_else(|_| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn docker_renderings() {
        assert_eq!(human_size(0.0, 4), "0B");
        assert_eq!(human_size(24_576.0, 4), "24.58kB");
        assert_eq!(human_size(2_140_160.0, 3), "2.14MB");
        assert_eq!(human_size(999.0, 3), "999B");
        assert_eq!(human_size(1_000_000.0, 3), "1MB");
        assert_eq!(binary_size(245_760.0), "240KiB");
        assert_eq!(binary_size(25_275_645_952.0), "23.54GiB");
        assert_eq!(binary_size(64.0 * 1024.0 * 1024.0), "64MiB");
        assert_eq!(binary_size(0.0), "0B");
        assert_eq!(go_time(1_795_446_670), "2026-11-23 15:11:10 +0000 UTC");
        assert_eq!(ellipsis("sh -c \"echo out; echo err\"", 20), "sh -c \"echo out; ec…");
        assert_eq!(ellipsis("sleep 100", 20), "sleep 100");
        assert_eq!(go_quote("sh -c \"echo out; ec…"), r#""sh -c \"echo out; ec…""#);
        assert_eq!(pretty(&json!([{"a": 1}])), "[\n    {\n        \"a\": 1\n    }\n]");
    }

    #[test]
    fn formats_read_as_dockers() {
        let rows = [json!({"ID": "abc", "Names": "web"}), json!({"ID": "defghijklmn", "Names": "db"})];
        let headers = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        let table = "table {{.ID}}\\t{{.Names}}";
        assert_eq!(
            render(None, table, &rows, &headers).unwrap(),
            "CONTAINER ID   NAMES\nabc            web\ndefghijklmn    db\n"
        );
        assert_eq!(
            render(Some("{{.Names}} {{.ID}}"), table, &rows, &headers).unwrap(),
            "web abc\ndb defghijklmn\n"
        );
        assert_eq!(
            render(Some("{{.ID}}\\t{{.Names}}"), table, &rows[..1], &headers).unwrap(),
            "abc\tweb\n"
        );
        assert_eq!(
            render(Some("json"), table, &rows[..1], &headers).unwrap(),
            "{\"ID\":\"abc\",\"Names\":\"web\"}\n"
        );
        assert_eq!(
            render(Some("table {{.Names}}: {{.ID}}"), table, &rows[..1], &headers).unwrap(),
            "NAMES: CONTAINER ID\nweb: abc\n"
        );
        let tagged = [json!({"Digest": "<none>"})];
        assert_eq!(
            render(Some("json"), table, &tagged, &headers).unwrap(),
            "{\"Digest\":\"\\u003cnone\\u003e\"}\n"
        );
        assert_eq!(render(Some("{{.Digest}}"), table, &tagged, &headers).unwrap(), "<none>\n");
        assert_eq!(
            render(Some("table{{.ID}}"), table, &rows[..1], &headers).unwrap(),
            "CONTAINER ID\nabc\n"
        );
        assert_eq!(render(Some("table"), table, &[], &headers).unwrap(), "CONTAINER ID   NAMES\n");
        assert!(matches!(
            render(Some("{{.Nope}}"), table, &rows, &headers),
            Err(CliError::Failed(_))
        ));
        assert!(matches!(render(Some("{{.ID"), table, &rows, &headers), Err(CliError::Usage(_))));
    }
}
