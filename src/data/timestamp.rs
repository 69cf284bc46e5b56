//! Timestamps and frequencies of time-series tables, through `chrono`.
//!
//! A timestamp becomes seconds since 1970-01-01 (zone offsets applied, naive
//! times taken as UTC). Accepted without a `time_format`: ISO 8601 with a
//! space or `T`, with or without seconds, fractions and zone
//! (`2016-07-01 00:00:00`, `2016-07-01T00:00Z`, `…+02:00`), a bare date
//! (`2016-07-01`), and Jena's `dd.mm.yyyy HH:MM:SS`.
use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Naive date-time formats tried, in order, when no format is given.
const NAIVE: [&str; 6] = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
];

/// Zoned formats tried before the naive ones (`rfc3339` is chrono's reader).
const ZONED: [&str; 4] = [
    "rfc3339",
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M%:z",
];

/// The first known format that reads `text` (to reuse for every row of a column).
pub fn detect_format(text: &str) -> Option<&'static str> {
    let text = text.trim();
    ZONED
        .iter()
        .chain(NAIVE.iter())
        .chain(["%Y-%m-%d"].iter())
        .copied()
        .find(|f| parse(text, f).is_some())
}

/// Seconds since the epoch of `text`, read with `format` (strftime syntax,
/// or `rfc3339`) or, when `format` is empty, with the formats above.
/// `None`: unreadable.
pub fn parse(text: &str, format: &str) -> Option<i64> {
    let text = text.trim();
    if format == "rfc3339" {
        return DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp());
    }
    if !format.is_empty() {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.timestamp());
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp());
        }
        return NaiveDate::parse_from_str(text, format).ok().map(|d| {
            d.and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp()
        });
    }
    detect_format(text).and_then(|f| parse(text, f))
}

/// A format compiled once, for reading a whole column (chrono re-reads a
/// format string at every call otherwise).
pub struct Parser {
    items: Vec<chrono::format::Item<'static>>,
    rfc3339: bool,
}

impl Parser {
    /// `format`: strftime syntax or `rfc3339`.
    pub fn new(format: &str) -> Parser {
        Parser {
            items: chrono::format::StrftimeItems::new(format)
                .map(|i| i.to_owned())
                .collect(),
            rfc3339: format == "rfc3339",
        }
    }

    /// Seconds since the epoch, as [`parse`] with this format.
    pub fn parse(&self, text: &str) -> Option<i64> {
        let text = text.trim();
        if self.rfc3339 {
            return DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.timestamp());
        }
        let mut parsed = chrono::format::Parsed::new();
        chrono::format::parse(&mut parsed, text, self.items.iter()).ok()?;
        if let Ok(t) = parsed.to_datetime() {
            return Some(t.timestamp());
        }
        if let Ok(t) = parsed.to_naive_datetime_with_offset(0) {
            return Some(t.and_utc().timestamp());
        }
        parsed.to_naive_date().ok().map(|d| {
            d.and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp()
        })
    }
}

/// `seconds` as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| seconds.to_string())
}

/// A frequency such as `10min`, `1h`, `30s`, `1d`, `2w` in seconds.
pub fn parse_freq(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = if num.is_empty() {
        1
    } else {
        num.parse().map_err(|_| format!("cannot read {text:?}"))?
    };
    let unit_seconds = match unit.trim() {
        "s" | "sec" | "second" | "seconds" => 1,
        "min" | "m" | "minute" | "minutes" | "T" => 60,
        "h" | "H" | "hour" | "hours" => 3600,
        "d" | "D" | "day" | "days" => 86_400,
        "w" | "W" | "week" | "weeks" => 604_800,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use s, min, h, d or w (e.g. \"10min\", \"1h\")"
            ))
        }
    };
    if n <= 0 {
        return Err(format!("{text:?} must be positive"));
    }
    Ok(n * unit_seconds)
}

/// `seconds` the way `parse_freq` reads it back (`10min`, `1h`, `1d`).
pub fn format_freq(seconds: i64) -> String {
    for (unit, s) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("min", 60)] {
        if seconds >= s && seconds % s == 0 {
            return format!("{}{unit}", seconds / s);
        }
    }
    format!("{seconds}s")
}

/// The most common positive step between consecutive timestamps (ties: the
/// smallest), or `None` with fewer than two rows.
pub fn infer_freq(times: &[i64]) -> Option<i64> {
    let mut counts = std::collections::BTreeMap::new();
    for w in times.windows(2) {
        let d = w[1] - w[0];
        if d > 0 {
            *counts.entry(d).or_insert(0usize) += 1;
        }
    }
    let best = counts.values().copied().max()?;
    counts.into_iter().find(|(_, c)| *c == best).map(|(d, _)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_iso_jena_and_explicit_formats() {
        let t = parse("2016-07-01 01:00:00", "").unwrap();
        assert_eq!(t, 1_467_334_800);
        assert_eq!(parse("2016-07-01T01:00:00", ""), Some(t));
        assert_eq!(parse("2016-07-01T03:00:00+02:00", ""), Some(t));
        assert_eq!(parse("2016-07-01T01:00:00Z", ""), Some(t));
        assert_eq!(parse("2016-07-01 01:00", ""), Some(t));
        assert_eq!(parse("01.07.2016 01:00:00", ""), Some(t));
        assert_eq!(parse("01/07/2016 01h00", "%d/%m/%Y %Hh%M"), Some(t));
        assert_eq!(parse("2016-07-01", ""), Some(t - 3600));
        assert_eq!(parse("yesterday", ""), None);
        assert_eq!(
            detect_format("01.07.2016 01:00:00"),
            Some("%d.%m.%Y %H:%M:%S")
        );
        assert_eq!(format(t), "2016-07-01 01:00:00");
    }

    #[test]
    fn frequencies_round_trip_and_are_inferred() {
        assert_eq!(parse_freq("10min"), Ok(600));
        assert_eq!(parse_freq("1h"), Ok(3600));
        assert_eq!(parse_freq("h"), Ok(3600));
        assert!(parse_freq("3 fortnights").is_err());
        assert_eq!(format_freq(600), "10min");
        assert_eq!(format_freq(86_400), "1d");
        assert_eq!(infer_freq(&[0, 600, 1200, 3000, 3600]), Some(600));
        assert_eq!(infer_freq(&[5]), None);
    }
}
