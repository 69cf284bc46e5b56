//! `seqlab data info PATH` for a table: columns with their types, rows, time
//! range, inferred frequency, missing cells, gaps and series — read only,
//! nothing written. CSV, TSV, `.csv.gz` and Parquet alike.
use super::parquet_table;
use super::table::{self, ReadOptions};
use super::timestamp;
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

/// Names a time column is often given.
fn time_like(name: &str) -> bool {
    matches!(
        name.to_lowercase().as_str(),
        "date" | "time" | "timestamp" | "date time" | "datetime"
    )
}

/// The first column whose first cell reads as a time, if any (Parquet: the
/// first timestamp or date column, else a string column with a time's name).
fn guess_time_column(path: &Path) -> Result<Option<String>> {
    if parquet_table::is_parquet(path) {
        let (columns, _) = parquet_table::columns(path)?;
        let typed = columns.iter().find(|c| c.kind == parquet_table::Kind::Time);
        let named = columns
            .iter()
            .find(|c| c.kind == parquet_table::Kind::Text && time_like(&c.name));
        return Ok(typed.or(named).map(|c| c.name.clone()));
    }
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
        return Ok(names.iter().find(|n| time_like(n)).cloned());
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
    let parquet = parquet_table::is_parquet(path);
    let format = match delimiter {
        _ if parquet => "format: parquet".to_string(),
        b'\t' => "delimiter: tab".to_string(),
        d => format!("delimiter: {:?}", d as char),
    };
    let _ = writeln!(
        out,
        "rows: {}   columns: {}   {format}",
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
