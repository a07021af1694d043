//! Times as Docker and the OCI spec print them: RFC 3339 in UTC, with or
//! without nanoseconds, and back.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a civil date (`days_from_civil`).
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A time as `YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ`, as Docker prints state
/// and log times.
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let plain = rfc3339(since.as_secs() as i64);
    format!("{}.{:09}Z", &plain[..plain.len() - 1], since.subsec_nanos())
}

/// Now, with nanoseconds.
pub fn now_rfc3339() -> String {
    rfc3339_nanos(SystemTime::now())
}

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An RFC 3339 time (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`) as a
/// `SystemTime`; `None` when it does not parse.
pub fn parse_rfc3339(t: &str) -> Option<SystemTime> {
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse::<i64>().ok());
    let (y, m, d, hh, mm, ss) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !matches!(t.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let mut rest = &t[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let mut n: String = frac[..digits].chars().take(9).collect();
        while n.len() < 9 {
            n.push('0');
        }
        nanos = n.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let secs = days(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Seconds since the epoch of an RFC 3339 time; 0 when it does not parse.
pub fn parse_secs(t: &str) -> i64 {
    parse_rfc3339(t)
        .and_then(|s| s.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A time given as Docker's CLI passes `--since`/`--until`: seconds since
/// the epoch with an optional fraction (`1700000000.123456789`), or RFC
/// 3339.
pub fn parse_timestamp(t: &str) -> Option<SystemTime> {
    if let Some(st) = parse_rfc3339(t) {
        return Some(st);
    }
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let secs: u64 = whole.parse().ok()?;
    let mut n: String = frac.chars().take(9).collect();
    if !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    while n.len() < 9 {
        n.push('0');
    }
    Some(UNIX_EPOCH + Duration::new(secs, n.parse().ok()?))
}

/// An `until` filter as Docker takes it: a timestamp ([`parse_timestamp`])
/// or a Go duration before now (`24h`, `1h30m`, `90s`), in seconds since
/// the epoch.
pub fn parse_until(t: &str) -> Result<i64, String> {
    if let Some(st) = parse_timestamp(t) {
        return Ok(st.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0));
    }
    let bad = || format!("invalid filter 'until={t}': a timestamp or a duration such as 24h");
    let (mut total, mut num) = (0f64, String::new());
    for c in t.chars() {
        match c {
            '0'..='9' | '.' => num.push(c),
            'h' | 'm' | 's' => {
                let n: f64 = num.parse().map_err(|_| bad())?;
                total += n * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                num.clear();
            }
            _ => return Err(bad()),
        }
    }
    if !num.is_empty() || t.is_empty() {
        return Err(bad());
    }
    Ok(now_secs() - total as i64)
}

/// Docker's human durations ("Up 5 seconds", "Exited (0) 3 minutes ago").
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        172_800..=1_209_599 => format!("{} days", s / 86_400),
        1_209_600..=7_862_399 => format!("{} weeks", s / 604_800),
        7_862_400..=63_071_999 => format!("{} months", s / 2_592_000),
        _ => format!("{} years", s / 31_536_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_and_parse_back() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_392_000), "2026-11-23T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        for secs in [0, 951_782_400, 1_795_392_000, 4_102_444_799] {
            assert_eq!(parse_secs(&rfc3339(secs)), secs);
        }
        let t = UNIX_EPOCH + Duration::new(1_795_392_000, 123_456_789);
        assert_eq!(rfc3339_nanos(t), "2026-11-23T00:00:00.123456789Z");
        assert_eq!(parse_rfc3339(&rfc3339_nanos(t)), Some(t));
        assert_eq!(parse_secs("2026-11-23T01:00:00+01:00"), 1_795_392_000);
        assert_eq!(parse_secs("garbage"), 0);
        assert_eq!(
            parse_timestamp("1795392000.5"),
            Some(UNIX_EPOCH + Duration::new(1_795_392_000, 500_000_000))
        );
        assert_eq!(parse_timestamp("1795392000"), Some(UNIX_EPOCH + Duration::new(1_795_392_000, 0)));
        assert_eq!(parse_timestamp("x"), None);
        assert!(now_rfc3339().ends_with('Z') && now_rfc3339().len() == 30);
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3 * 86_400), "3 days");
    }
}
