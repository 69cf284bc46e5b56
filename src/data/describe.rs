//! `seqlab data info PATH` for a table: columns with their types, rows, time
//! range, inferred frequency, missing cells, gaps and series — read only,
//! nothing written.
use super::table::{self, ReadOptions};
use super::timestamp;
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

/// The first column whose first cell reads as a time, if any.
fn guess_time_column(path: &Path) -> Result<Option<String>> {
    let (names, delimiter) = table::header(path, None)?;
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(path)
        .ok();
    let first = csv
        .as_mut()
        .and_then(|r| r.records().next())
        .and_then(|r| r.ok());
    // `.gz` and BOM files: the plain reader may fail; fall back to the name.
    let Some(first) = first else {
        return Ok(names
            .iter()
            .find(|n| {
                matches!(
                    n.to_lowercase().as_str(),
                    "date" | "time" | "timestamp" | "date time" | "datetime"
                )
            })
            .cloned());
    };
    Ok(names
        .iter()
        .zip(first.iter())
        .find(|(_, v)| v.parse::<f64>().is_err() && timestamp::detect_format(v).is_some())
        .map(|(n, _)| n.clone()))
}

/// The report for one table file.
pub fn table_info(path: &Path, time_column: Option<&str>, series_column: &str) -> Result<String> {
    let time = match time_column {
        Some(t) => Some(t.to_string()),
        None => guess_time_column(path)?,
    };
    let (names, delimiter) = table::header(path, None)?;
    let t = table::read(
        path,
        &ReadOptions {
            time_column: time.clone().unwrap_or_default(),
            series_column: series_column.to_string(),
            allow_missing: true,
            ..Default::default()
        },
    )?;
    let mut out = String::new();
    let _ = writeln!(out, "{}", path.display());
    let delim = match delimiter {
        b'\t' => "tab".to_string(),
        d => format!("{:?}", d as char),
    };
    let _ = writeln!(
        out,
        "rows: {}   columns: {}   delimiter: {delim}",
        t.rows,
        names.len()
    );
    let f = t.columns.len();
    let _ = writeln!(
        out,
        "{:<24} {:<9} {:>9} {:>14} {:>14} {:>14}",
        "column", "type", "missing", "min", "mean", "max"
    );
    for name in &names {
        if Some(name) == time.as_ref() {
            let _ = writeln!(out, "{name:<24} time");
            continue;
        }
        if name == series_column {
            let _ = writeln!(out, "{name:<24} series");
            continue;
        }
        let Some(c) = t.columns.iter().position(|x| x == name) else {
            let _ = writeln!(
                out,
                "{name:<24} text      (not a feature; list the numeric columns in data.features)"
            );
            continue;
        };
        let vals: Vec<f64> = (0..t.rows)
            .map(|r| t.values[r * f + c] as f64)
            .filter(|v| !v.is_nan())
            .collect();
        let missing = t.rows - vals.len();
        let (lo, hi) = vals
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let mean = vals.iter().sum::<f64>() / vals.len().max(1) as f64;
        let _ = writeln!(
            out,
            "{name:<24} {:<9} {missing:>9} {lo:>14.4} {mean:>14.4} {hi:>14.4}",
            "number"
        );
    }
    if t.series.len() > 1 {
        let _ = writeln!(
            out,
            "series: {} ({})",
            t.series.len(),
            t.series
                .iter()
                .take(5)
                .map(|(n, r)| format!("{n}: {} rows", r.len()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(times) = &t.times {
        let first = times.iter().min().copied().unwrap_or(0);
        let last = times.iter().max().copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "time: {} to {}",
            timestamp::format(first),
            timestamp::format(last)
        );
        let freq = t
            .series
            .iter()
            .filter_map(|(_, r)| timestamp::infer_freq(&times[r.clone()]))
            .min();
        match freq {
            Some(fq) => {
                let gaps: usize = t
                    .series
                    .iter()
                    .map(|(_, r)| {
                        times[r.clone()]
                            .windows(2)
                            .filter(|w| w[1] - w[0] != fq)
                            .count()
                    })
                    .sum();
                let _ = writeln!(
                    out,
                    "frequency: {} (inferred)   gaps: {gaps}",
                    timestamp::format_freq(fq)
                );
            }
            None => {
                let _ = writeln!(out, "frequency: unknown (fewer than two rows)");
            }
        }
    } else {
        let _ = writeln!(out, "time: no time column (name one with --time-column)");
    }
    let _ = writeln!(out, "missing cells: {}", t.missing);
    Ok(out)
}
