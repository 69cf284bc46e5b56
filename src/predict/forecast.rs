//! Forecasts from a trained table model: the window ending at one row
//! (`--at`, `--last`), or a backtest over every window whose first target
//! lies in a time range, with its metrics computed as training's test
//! evaluation computes them.
use super::rows::Rows;
use super::Loaded;
use crate::data::Batcher;
use anyhow::{Context, Result};
use std::path::Path;

/// One horizon step of one target of one window, in the target's units.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The window's end row (its inputs end the row before).
    pub end: usize,
    /// The target row.
    pub row: usize,
    /// 1-based horizon step.
    pub step: usize,
    pub target: String,
    pub forecast: f64,
    /// `None` where the file has no row (or a missing cell) there.
    pub truth: Option<f64>,
}

/// A backtest: its forecasts, metrics (`backtest_loss`, `backtest_mae`, …
/// normalised; `backtest_mae_<target>`, … in the targets' units) and windows.
pub struct Backtest {
    pub lines: Vec<Line>,
    pub metrics: Vec<(String, f64)>,
    pub windows: usize,
}

/// Forecasts of the windows ending at `ends`, in batches of the cell's size.
pub fn windows(loaded: &Loaded, rows: &Rows, ends: &[i64]) -> Vec<Line> {
    let _guard = tch::no_grad_guard();
    let units = loaded.units();
    let c = &loaded.table;
    let targets = units.len() as i64;
    let w = rows.windows(loaded, ends.to_vec());
    let mut out = Vec::new();
    for batch in ends.chunks(c.batch_size.max(1)) {
        let (x, y) = w.gather(batch);
        let b = batch.len() as i64;
        let shape = [b, c.horizon as i64, targets];
        let f = loaded
            .model
            .forward(&x, false)
            .reshape(shape)
            .to_device(tch::Device::Cpu);
        let y = y.reshape(shape).to_device(tch::Device::Cpu);
        let f: Vec<f32> = Vec::try_from(f.flatten(0, -1)).unwrap_or_default();
        let y: Vec<f32> = Vec::try_from(y.flatten(0, -1)).unwrap_or_default();
        for (i, &end) in batch.iter().enumerate() {
            for h in 0..c.horizon {
                for (k, u) in units.iter().enumerate() {
                    let at = (i * c.horizon + h) * units.len() + k;
                    let truth = y[at] as f64 * u.scale + u.shift;
                    out.push(Line {
                        end: end as usize,
                        row: end as usize + c.delay + h,
                        step: h + 1,
                        target: u.name.clone(),
                        forecast: f[at] as f64 * u.scale + u.shift,
                        truth: truth.is_finite().then_some(truth),
                    });
                }
            }
        }
    }
    out
}

/// The forecast of the window ending at row `end` (inputs `end - lookback … end - 1`).
pub fn at(loaded: &Loaded, rows: &Rows, end: usize) -> Result<Vec<Line>> {
    rows.check_inputs(loaded, end)?;
    Ok(windows(loaded, rows, &[end as i64]))
}

/// Every complete window whose first target row lies in `[from, to)` (row
/// indices): its inputs and all its targets in the file, no gap, no missing cell.
pub fn backtest(loaded: &Loaded, rows: &Rows, from: usize, to: usize) -> Result<Backtest> {
    let c = &loaded.table;
    let ends = complete_windows(
        loaded,
        rows,
        from..(to + c.horizon - 1).min(rows.table.rows),
    )
    .with_context(|| format!("backtest from {} to {}", rows.label(from), rows.label(to)))?;
    let metrics = metrics_of(loaded, rows, &ends, "backtest");
    Ok(Backtest {
        lines: windows(loaded, rows, &ends),
        metrics,
        windows: ends.len(),
    })
}

/// The window ends whose targets all lie in `range` (as a split's windows
/// are cut in training, every row: stride 1).
pub fn complete_windows(
    loaded: &Loaded,
    rows: &Rows,
    range: std::ops::Range<usize>,
) -> Result<Vec<i64>> {
    let mut cfg = loaded.table.clone();
    cfg.path = rows.file.clone();
    cfg.stride = 1;
    cfg.freq = rows
        .freq
        .map(crate::data::timestamp::format_freq)
        .unwrap_or_default();
    let split = vec![range];
    let ends = crate::data::series::window_ends(
        &cfg,
        &rows.table,
        &[split.clone(), split.clone(), split],
    )?;
    let [ends, _, _] = ends.ends;
    Ok(ends)
}

/// The forecast lines as CSV: `origin,time,step,target,forecast,truth`
/// (`origin`: the last input row's time; `truth` empty where unknown).
pub fn csv(rows: &Rows, lines: &[Line]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["origin", "time", "step", "target", "forecast", "truth"]);
    for l in lines {
        let _ = w.write_record([
            rows.label(l.end - 1),
            rows.label(l.row),
            l.step.to_string(),
            l.target.clone(),
            format!("{:.6}", l.forecast),
            l.truth.map(|t| format!("{t:.6}")).unwrap_or_default(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The model's metrics over the windows ending at `ends`, computed as
/// training's evaluation computes them, named `<name>_<metric>`.
pub fn metrics_of(loaded: &Loaded, rows: &Rows, ends: &[i64], name: &str) -> Vec<(String, f64)> {
    let mut batcher = Batcher::Series(rows.windows(loaded, ends.to_vec()));
    crate::train::fit::evaluate_pass(
        &loaded.model,
        loaded.config(),
        &mut batcher,
        &loaded.units(),
        name,
    )
}

/// Metrics as TOML lines under a `[name]` table, six decimals as summaries print.
pub fn metrics_toml(name: &str, metrics: &[(String, f64)]) -> String {
    let table: toml::Table = metrics
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                toml::Value::Float(format!("{v:.6}").parse().unwrap_or(*v)),
            )
        })
        .collect();
    let mut outer = toml::Table::new();
    outer.insert(name.into(), table.into());
    toml::to_string(&outer).unwrap_or_default()
}

/// One window's figure: the first target's last lookback rows, the forecast
/// and the truth where the file has it, against rows from the window's end.
pub fn plot_window(loaded: &Loaded, rows: &Rows, lines: &[Line], out: &Path) -> Result<()> {
    let Some(first) = lines.first() else {
        return Ok(());
    };
    let target = first.target.clone();
    let c = loaded
        .preprocess
        .columns
        .iter()
        .position(|n| *n == target)
        .expect("a target column");
    let f = rows.table.columns.len();
    let end = first.end;
    // x = 0 at the last input row.
    let x = |r: usize| r as f64 - (end as f64 - 1.0);
    let history: Vec<(f64, f64)> = (end.saturating_sub(loaded.table.lookback)..end)
        .map(|r| (x(r), rows.table.values[r * f + c] as f64))
        .collect();
    let ours: Vec<&Line> = lines.iter().filter(|l| l.target == target).collect();
    let forecast: Vec<(f64, f64)> = ours.iter().map(|l| (x(l.row), l.forecast)).collect();
    let truth: Vec<(f64, f64)> = ours
        .iter()
        .filter_map(|l| Some((x(l.row), l.truth?)))
        .collect();
    let mut curves = vec![
        ("history".to_string(), history, true),
        ("forecast".to_string(), forecast, false),
    ];
    if !truth.is_empty() {
        curves.push(("truth".to_string(), truth, true));
    }
    crate::plot::lines(
        &format!("{target}: forecast from {}", rows.label(end - 1)),
        "rows after the last input row",
        &target,
        &curves,
        out,
    )
}

/// A backtest's (or evaluation's) figure: truth and forecast of the first
/// target at horizon step `step`, by target row.
pub fn plot_series(
    rows: &Rows,
    lines: &[Line],
    step: usize,
    title: &str,
    out: &Path,
) -> Result<()> {
    let Some(first) = lines.first() else {
        return Ok(());
    };
    let ours = || {
        lines
            .iter()
            .filter(move |l| l.target == first.target && l.step == step)
    };
    let x0 = first.row as f64;
    let truth: Vec<(f64, f64)> = ours()
        .filter_map(|l| Some((l.row as f64 - x0, l.truth?)))
        .collect();
    let forecast: Vec<(f64, f64)> = ours().map(|l| (l.row as f64 - x0, l.forecast)).collect();
    crate::plot::lines(
        &format!("{title}: {} at step {step}", first.target),
        &format!("rows after {}", rows.label(first.row)),
        &first.target,
        &[
            ("truth".to_string(), truth, true),
            ("forecast".to_string(), forecast, false),
        ],
        out,
    )
}
