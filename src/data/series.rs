//! `source = "csv"`: any time-series table to batches of windows.
//!
//! table (`table::read`) → missing cells (error / ffill / interpolate /
//! drop_windows) → splits (rows, fractions or timestamps; per series) →
//! normalisation fitted on the training rows → the list of valid window ends
//! of each split (never across series, time gaps or dropped cells) →
//! [`Windows`] on the device.
//!
//! A window ending at row `t` reads inputs `t - lookback … t - 1` and targets
//! `t + delay … t + delay + horizon - 1`; it belongs to the split holding all
//! its target rows.
use super::table::{self, ReadOptions, Table};
use super::timestamp;
use super::window::{matrix_on, ListOrder, ListSelector, Windows};
use super::{Batcher, Prepared, Preprocess, TargetUnit};
use crate::config::{CsvData, Missing, Normalize, SplitRange, SplitRule, TrainOrder};
use anyhow::{bail, Result};
use std::ops::Range;
use std::path::Path;
use tch::{Device, Tensor};

/// The table's columns as the config selects them: features, then targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    pub features: Vec<usize>,
    pub targets: Vec<usize>,
}

/// The table's path: as given when it exists (relative to where seqlab
/// runs), else inside the data directory (`data/`, or `$SEQLAB_DATA`).
pub fn resolve_path(path: &str) -> std::path::PathBuf {
    let p = Path::new(path);
    if p.is_absolute() || p.exists() {
        return p.to_path_buf();
    }
    let in_data = super::data_dir().join(p);
    if in_data.exists() {
        in_data
    } else {
        p.to_path_buf()
    }
}

/// Reads the table a `csv` data section names.
pub fn read(cfg: &CsvData) -> Result<Table> {
    let mut columns = Vec::new();
    if !cfg.features.is_empty() {
        for c in cfg.features.iter().chain(&cfg.targets) {
            if !columns.contains(c) {
                columns.push(c.clone());
            }
        }
    }
    let delimiter = match cfg.delimiter.as_str() {
        "" => None,
        "\\t" | "tab" => Some(b'\t'),
        d if d.len() == 1 => Some(d.as_bytes()[0]),
        d => bail!("data.delimiter: {d:?} is not one character; use \",\", \";\", \"tab\" or leave it empty to detect"),
    };
    table::read(
        &resolve_path(&cfg.path),
        &ReadOptions {
            delimiter,
            time_column: cfg.time_column.clone(),
            time_format: cfg.time_format.clone(),
            series_column: cfg.series_column.clone(),
            columns,
            allow_missing: cfg.missing != Missing::Error,
            // The book's generator never looked at the time column.
            unordered_times: cfg.split_rule == SplitRule::Book,
        },
    )
}

/// The number of input features a csv section gives, from the file's header
/// and first row (for shape checks before any data is loaded).
pub fn feature_count(cfg: &CsvData) -> Result<usize> {
    if !cfg.features.is_empty() {
        return Ok(cfg.features.len());
    }
    let path = resolve_path(&cfg.path);
    let (names, delimiter) = table::header(&path, None)?;
    let numeric = table::read_first_row(&path, delimiter)?;
    Ok(names
        .iter()
        .zip(&numeric)
        .filter(|(n, ok)| **ok && **n != cfg.time_column && **n != cfg.series_column)
        .count())
}

/// Feature and target indices into the table's columns.
pub fn columns(cfg: &CsvData, t: &Table) -> Result<Columns> {
    let file = &cfg.path;
    let features = if cfg.features.is_empty() {
        (0..t.columns.len()).collect()
    } else {
        cfg.features
            .iter()
            .map(|c| t.column(c, "data.features", file))
            .collect::<Result<_>>()?
    };
    if cfg.targets.is_empty() {
        bail!("{file}: data.targets: empty; name at least one column to forecast");
    }
    let targets = cfg
        .targets
        .iter()
        .map(|c| t.column(c, "data.targets", file))
        .collect::<Result<_>>()?;
    Ok(Columns { features, targets })
}

/// Fills missing cells in place as `policy` says (per series); `drop_windows` leaves them.
pub fn fill_missing(t: &mut Table, policy: Missing, file: &str) -> Result<()> {
    if t.missing == 0 || matches!(policy, Missing::Error | Missing::DropWindows) {
        return Ok(());
    }
    let f = t.columns.len();
    for (_, range) in t.series.clone() {
        for c in 0..f {
            let mut last: Option<usize> = None;
            let mut r = range.start;
            while r < range.end {
                if !t.values[r * f + c].is_nan() {
                    last = Some(r);
                    r += 1;
                    continue;
                }
                let next = (r..range.end).find(|&q| !t.values[q * f + c].is_nan());
                let Some(prev) = last else {
                    bail!(
                        "{file}:{}: column {:?}: the series starts with a missing cell, so there is nothing to carry forward; fill it in or set data.missing = \"drop_windows\"",
                        t.lines[r],
                        t.columns[c]
                    );
                };
                let end = next.unwrap_or(range.end);
                let a = t.values[prev * f + c];
                for q in r..end {
                    t.values[q * f + c] = match (policy, next) {
                        (Missing::Interpolate, Some(n)) => {
                            let b = t.values[n * f + c];
                            let w = (q - prev) as f32 / (n - prev) as f32;
                            a + (b - a) * w
                        }
                        _ => a,
                    };
                }
                r = end;
            }
        }
    }
    Ok(())
}

/// The rows of each split, per series: `[train, val, test]`, each a list of
/// row ranges (one per series) holding the split's target rows.
pub fn split_rows(cfg: &CsvData, t: &Table) -> Result<[Vec<Range<usize>>; 3]> {
    let splits = [&cfg.splits.train, &cfg.splits.val, &cfg.splits.test];
    let kinds: Vec<u8> = splits
        .iter()
        .map(|s| match s {
            SplitRange::Rows(_) => 0,
            SplitRange::Fraction(_) => 1,
            SplitRange::Times(_) => 2,
        })
        .collect();
    if kinds.iter().any(|k| *k != kinds[0]) {
        bail!("data.splits: give train, val and test in one form: all row ranges [start, end), all fractions, or all timestamp ranges");
    }
    let mut out: [Vec<Range<usize>>; 3] = Default::default();
    let mut offset = 0.0;
    for (i, split) in splits.iter().enumerate() {
        let name = ["train", "val", "test"][i];
        for (_, series) in &t.series {
            let len = series.len();
            let range = match split {
                SplitRange::Rows([a, b]) => {
                    if a >= b {
                        bail!("data.splits.{name} = [{a}, {b}]: the end must be after the start (rows are [start, end))");
                    }
                    (*a).min(len)..(*b).min(len)
                }
                SplitRange::Fraction(f) => {
                    if !(0.0..=1.0).contains(f) {
                        bail!("data.splits.{name} = {f}: a fraction must lie in [0, 1]");
                    }
                    let a = (offset * len as f64).round() as usize;
                    let b = ((offset + f) * len as f64).round() as usize;
                    a.min(len)..b.min(len)
                }
                SplitRange::Times([from, to]) => {
                    let Some(times) = &t.times else {
                        bail!("data.splits.{name}: timestamp ranges need data.time_column");
                    };
                    let parse = |s: &str| {
                        timestamp::parse(s, "").ok_or_else(|| {
                            anyhow::anyhow!("data.splits.{name}: cannot read {s:?} as a time; use ISO 8601 such as \"2016-07-01\" or \"2016-07-01 12:00\"")
                        })
                    };
                    let (from, to) = (parse(from)?, parse(to)?);
                    let ts = &times[series.clone()];
                    ts.partition_point(|&x| x < from)..ts.partition_point(|&x| x < to)
                }
            };
            out[i].push(series.start + range.start..series.start + range.end);
        }
        if let SplitRange::Fraction(f) = split {
            offset += f;
        }
    }
    if offset > 1.0 + 1e-9 {
        bail!("data.splits: the fractions add up to {offset}, more than 1");
    }
    Ok(out)
}

/// Normalisation fitted on `rows` (the training rows) of the table: per
/// column `(shift, scale)` with `x' = (x - shift) / scale`; NaN cells skipped.
pub fn fit_scaling(t: &Table, rows: &[Range<usize>], how: Normalize) -> (Vec<f64>, Vec<f64>) {
    let f = t.columns.len();
    let mut shift = vec![0.0; f];
    let mut scale = vec![1.0; f];
    if how == Normalize::None {
        return (shift, scale);
    }
    for c in 0..f {
        let vals = rows
            .iter()
            .flat_map(|r| r.clone())
            .map(|r| t.values[r * f + c])
            .filter(|v| !v.is_nan())
            .map(|v| v as f64);
        match how {
            Normalize::Standard => {
                let (mut n, mut sum) = (0usize, 0.0);
                for v in vals.clone() {
                    n += 1;
                    sum += v;
                }
                let mean = sum / n.max(1) as f64;
                let sq: f64 = vals.map(|v| (v - mean) * (v - mean)).sum();
                let sd = (sq / n.max(1) as f64).sqrt();
                shift[c] = mean;
                scale[c] = if sd > 0.0 { sd } else { 1.0 };
            }
            Normalize::Minmax => {
                let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
                shift[c] = if lo.is_finite() { lo } else { 0.0 };
                scale[c] = if hi > lo { hi - lo } else { 1.0 };
            }
            Normalize::None => {}
        }
    }
    (shift, scale)
}

/// Valid window ends per split and how many were dropped (gaps, missing cells).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowEnds {
    pub ends: [Vec<i64>; 3],
    pub dropped_gaps: usize,
    pub dropped_missing: usize,
    /// Seconds between rows (given or inferred), when there is a time column.
    pub freq: Option<i64>,
}

/// Every window end whose inputs and targets stay inside one series, whose
/// targets lie in the split, and that spans no time gap or missing cell.
pub fn window_ends(
    cfg: &CsvData,
    t: &Table,
    splits: &[Vec<Range<usize>>; 3],
) -> Result<WindowEnds> {
    let freq = match (&t.times, cfg.freq.as_str()) {
        (None, "") => None,
        (None, _) => bail!("data.freq: needs data.time_column to check the rows against"),
        (Some(times), "") => t
            .series
            .iter()
            .filter_map(|(_, r)| timestamp::infer_freq(&times[r.clone()]))
            .min(),
        (Some(_), f) => {
            Some(timestamp::parse_freq(f).map_err(|e| anyhow::anyhow!("data.freq: {e}"))?)
        }
    };
    // Prefix counts of rows that break a window: a gap before row r, or a NaN in row r.
    let f = t.columns.len();
    let mut gap = vec![0u32; t.rows + 1];
    let mut nan = vec![0u32; t.rows + 1];
    for r in 0..t.rows {
        let breaks = match (&t.times, freq) {
            (Some(times), Some(fq)) => r > 0 && times[r] - times[r - 1] != fq,
            _ => false,
        };
        gap[r + 1] = gap[r] + breaks as u32;
        nan[r + 1] = nan[r] + t.values[r * f..(r + 1) * f].iter().any(|v| v.is_nan()) as u32;
    }
    let (lookback, delay, horizon) = (cfg.lookback, cfg.delay, cfg.horizon);
    let mut out = WindowEnds {
        ends: Default::default(),
        dropped_gaps: 0,
        dropped_missing: 0,
        freq,
    };
    for (i, split) in splits.iter().enumerate() {
        let stride = if i == 0 { 1 } else { cfg.stride.max(1) };
        for (range, (_, series)) in split.iter().zip(&t.series) {
            // t - lookback >= series start; t + delay >= range start; t + delay + horizon <= range end.
            let lo = (series.start + lookback).max(range.start.saturating_sub(delay));
            let Some(hi) = (range.end).checked_sub(delay + horizon) else {
                continue;
            };
            let mut end = lo;
            while end <= hi {
                let (a, b) = (end - lookback, end + delay + horizon);
                if b > series.end {
                    break;
                }
                if gap[b] - gap[a + 1] > 0 {
                    out.dropped_gaps += 1;
                } else if nan[b] - nan[a] > 0 {
                    out.dropped_missing += 1;
                } else {
                    out.ends[i].push(end as i64);
                }
                end += stride;
            }
        }
        if out.ends[i].is_empty() {
            let name = ["train", "val", "test"][i];
            let rows: usize = split.iter().map(|r| r.len()).sum();
            bail!(
                "{}: data.splits.{name}: no complete window: the split holds {rows} target row(s), and a window needs lookback {lookback} rows before its first target row plus delay {delay} and horizon {horizon}{}; widen the split or shorten data.lookback / data.horizon",
                cfg.path,
                if out.dropped_gaps + out.dropped_missing > 0 {
                    format!(" ({} windows dropped for gaps, {} for missing cells)", out.dropped_gaps, out.dropped_missing)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(out)
}

/// A column name as a metrics column suffix: letters, digits and `_`.
pub fn metric_suffix(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    s.trim_matches('_').to_string()
}

/// Reads and windows a `csv` data section without building tensors: every
/// error `prepare` would stop on (columns, cells, order, splits, windows),
/// before anything runs. Returns the window counts per split.
pub fn check(cfg: &CsvData) -> Result<[usize; 3]> {
    let mut t = read(cfg)?;
    columns(cfg, &t)?;
    if cfg.split_rule == SplitRule::Book {
        let p = super::book::prepare(cfg, &t, Device::Cpu)?;
        return Ok([&p.train, &p.val, &p.test].map(|b| b.full_pass_steps() * cfg.batch_size));
    }
    fill_missing(&mut t, cfg.missing, &cfg.path)?;
    let splits = split_rows(cfg, &t)?;
    let ends = window_ends(cfg, &t, &splits)?;
    Ok([0, 1, 2].map(|i| ends.ends[i].len()))
}

/// Prepares the batches of a `csv` data section on `device`.
pub fn prepare(cfg: &CsvData, device: Device) -> Result<Prepared> {
    let mut t = read(cfg)?;
    if cfg.split_rule == SplitRule::Book {
        return super::book::prepare(cfg, &t, device);
    }
    let file = cfg.path.clone();
    let cols = columns(cfg, &t)?;
    fill_missing(&mut t, cfg.missing, &file)?;
    let splits = split_rows(cfg, &t)?;
    let ends = window_ends(cfg, &t, &splits)?;
    if ends.dropped_gaps + ends.dropped_missing > 0 {
        eprintln!(
            "{file}: dropped {} window(s) spanning a time gap and {} touching a missing cell",
            ends.dropped_gaps, ends.dropped_missing
        );
    }
    let f = t.columns.len();
    let (mut shift, mut scale) = fit_scaling(&t, &splits[0], cfg.normalize);
    let mut values = vec![0f32; t.values.len()];
    if cfg.normalize_per_series && t.series.len() > 1 {
        for (k, (_, series)) in t.series.iter().enumerate() {
            let train: Vec<Range<usize>> = vec![splits[0][k].clone()];
            let (sh, sc) = fit_scaling(&t, &train, cfg.normalize);
            for r in series.clone() {
                for c in 0..f {
                    values[r * f + c] = ((t.values[r * f + c] as f64 - sh[c]) / sc[c]) as f32;
                }
            }
            if k == 0 {
                (shift, scale) = (sh, sc);
            }
        }
    } else {
        for r in 0..t.rows {
            for c in 0..f {
                values[r * f + c] = ((t.values[r * f + c] as f64 - shift[c]) / scale[c]) as f32;
            }
        }
    }
    // NaN cells of dropped windows stay NaN but are never gathered.
    let feature_index: Vec<i64> = cols.features.iter().map(|&c| c as i64).collect();
    let target_index: Vec<i64> = cols.targets.iter().map(|&c| c as i64).collect();
    let all = matrix_on(&values, f, device);
    let inputs = all
        .index_select(1, &Tensor::from_slice(&feature_index).to_device(device))
        .contiguous();
    let targets = all
        .index_select(1, &Tensor::from_slice(&target_index).to_device(device))
        .contiguous();
    let order = |i: usize| match (i, cfg.train_order) {
        (0, TrainOrder::Random) => ListOrder::Random,
        (0, TrainOrder::Epoch) => ListOrder::Epoch,
        _ => ListOrder::Sequential,
    };
    let [train, val, test] = [0, 1, 2].map(|i| {
        Batcher::Series(Windows::from_list(
            &inputs,
            &targets,
            cfg.horizon,
            cfg.lookback,
            cfg.step,
            ListSelector::new(ends.ends[i].clone(), cfg.batch_size, cfg.delay, order(i)),
            cfg.reverse,
        ))
    });
    let units = cols
        .targets
        .iter()
        .enumerate()
        .map(|(k, &c)| TargetUnit {
            name: t.columns[c].clone(),
            suffix: metric_suffix(&t.columns[c]),
            scale: scale[c],
            shift: shift[c],
            column: (cols.targets.len() > 1).then_some(k),
        })
        .collect();
    let last_train_time = t.times.as_ref().and_then(|times| {
        splits[0]
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| times[r.end - 1])
            .max()
    });
    let preprocess = Preprocess {
        columns: t.columns.clone(),
        features: cols
            .features
            .iter()
            .map(|&c| t.columns[c].clone())
            .collect(),
        targets: cols.targets.iter().map(|&c| t.columns[c].clone()).collect(),
        normalize: cfg.normalize,
        shift,
        scale,
        freq: ends.freq.map(timestamp::format_freq),
        last_train_time: last_train_time.map(timestamp::format),
        series: t
            .series
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !n.is_empty())
            .collect(),
        windows: [0, 1, 2].map(|i| ends.ends[i].len()),
    };
    Ok(Prepared {
        train,
        val,
        test,
        target_std: None,
        target_column: cols.features.iter().position(|c| *c == cols.targets[0]),
        target_inputs: cols
            .targets
            .iter()
            .map(|t| cols.features.iter().position(|f| f == t))
            .collect::<Option<Vec<usize>>>()
            .unwrap_or_default(),
        units,
        input_time: cfg.lookback / cfg.step,
        input_features: Some(cols.features.len()),
        preprocess: Some(preprocess),
        text: None,
    })
}
