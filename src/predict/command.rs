//! The two commands as the command line hands them over: options types
//! owned by this stage, and what each prints or writes. Everything is
//! computed before anything is written, so an error leaves no file behind.
use super::evaluate::{self, Split};
use super::{forecast, load, rows};
use anyhow::Result;
use std::io::Write as _;
use std::path::PathBuf;

/// Which windows `seqlab predict` forecasts.
#[derive(Debug, Clone, PartialEq)]
pub enum Windows {
    /// The window ending after the file's last row.
    Last,
    /// The window whose last input row is at this time.
    At(String),
    /// Every window whose first target lies in `[from, to)`.
    Backtest { from: String, to: String },
}

#[derive(Debug, Clone)]
pub struct PredictOptions {
    pub cell: PathBuf,
    pub data: PathBuf,
    pub windows: Windows,
    /// The forecast CSV; standard output when `None`.
    pub out: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    /// A backtest's metrics as TOML (they also go to standard error).
    pub metrics: Option<PathBuf>,
    pub device: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EvaluateOptions {
    pub cell: PathBuf,
    pub data: PathBuf,
    pub split: String,
    pub name: Option<String>,
    pub device: Option<String>,
}

/// `seqlab predict`: forecasts as CSV, optionally a figure and metrics.
pub fn predict(o: &PredictOptions) -> Result<i32> {
    let loaded = load(&o.cell, o.device.as_deref())?;
    let rows = rows::read(&loaded, &o.data)?;
    let (lines, metrics) = match &o.windows {
        Windows::Last => (forecast::at(&loaded, &rows, rows.table.rows)?, None),
        Windows::At(t) => (forecast::at(&loaded, &rows, rows.row_at(t)? + 1)?, None),
        Windows::Backtest { from, to } => {
            let b = forecast::backtest(
                &loaded,
                &rows,
                rows.row_from(from, "--from")?,
                rows.row_from(to, "--to")?,
            )?;
            let text = format!(
                "windows = {}\n\n{}",
                b.windows,
                forecast::metrics_toml("backtest", &b.metrics)
            );
            (b.lines, Some(text))
        }
    };
    let csv = forecast::csv(&rows, &lines);
    if let Some(path) = &o.plot {
        let tmp = path.with_file_name(format!(
            ".{}.tmp-{}.png",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("plot"),
            std::process::id()
        ));
        let drawn = match &o.windows {
            Windows::Backtest { .. } => forecast::plot_series(&rows, &lines, 1, "backtest", &tmp),
            _ => forecast::plot_window(&loaded, &rows, &lines, &tmp),
        };
        drawn
            .and_then(|_| Ok(std::fs::rename(&tmp, path)?))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
    }
    if let (Some(path), Some(text)) = (&o.metrics, &metrics) {
        crate::results::store::write_atomic(path, text.as_bytes())?;
    }
    if let Some(text) = &metrics {
        eprint!("{text}");
    }
    match &o.out {
        Some(path) => crate::results::store::write_atomic(path, csv.as_bytes())?,
        None => std::io::stdout().write_all(csv.as_bytes())?,
    }
    Ok(0)
}

/// `seqlab evaluate`: metrics and a figure in `<cell>/eval/<name>/`.
pub fn evaluate(o: &EvaluateOptions) -> Result<i32> {
    let split = Split::parse(&o.split)?;
    let loaded = load(&o.cell, o.device.as_deref())?;
    let e = evaluate::run(&loaded, &o.data, split, o.name.as_deref())?;
    print!(
        "{} window(s)\n{}",
        e.windows,
        forecast::metrics_toml(split.name(), &e.metrics)
    );
    println!("written to {}", e.dir.display());
    Ok(0)
}
