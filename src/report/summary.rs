//! One row per cell, read from each folder's summary.toml and timing.csv.
use crate::run::store;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A cell's line in results/summary.csv.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub experiment: String,
    pub cell: String,
    pub status: String,
    pub reason: String,
    pub epochs: i64,
    pub best_epoch: i64,
    pub monitor: String,
    pub best_val: Option<f64>,
    pub last_val: Option<f64>,
    pub best_val_mae_degc: Option<f64>,
    pub best_val_accuracy: Option<f64>,
    /// The highest validation accuracy of any epoch (the figure the book quotes).
    pub peak_val_accuracy: Option<f64>,
    pub test_loss: Option<f64>,
    pub test_mae_degc: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub params: i64,
    pub train_seconds: f64,
    pub content_id: String,
    pub title: String,
    /// `experiment.baseline`: whose result the figures draw as a reference.
    pub baseline: String,
    pub dir: PathBuf,
}

pub const HEADER: &str = "experiment,cell,status,epochs,best_epoch,monitor,best_val,last_val,best_val_mae_degc,best_val_accuracy,peak_val_accuracy,test_loss,test_mae_degc,test_accuracy,params,train_seconds,content_id";

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.6}")).unwrap_or_default()
}

/// Every cell folder with a summary under `root`, sorted by experiment and cell.
pub fn collect(root: &Path) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut experiments: Vec<PathBuf> = std::fs::read_dir(root)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    experiments.sort();
    for exp in experiments {
        let mut cells: Vec<PathBuf> = std::fs::read_dir(&exp)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        cells.sort();
        for dir in cells {
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') {
                continue;
            }
            let Some(s) = store::read_summary(&dir) else {
                continue;
            };
            rows.push(row(&dir, &s));
        }
    }
    Ok(rows)
}

fn row(dir: &Path, s: &toml::Table) -> Row {
    let text = |k: &str| s.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let int = |k: &str| s.get(k).and_then(|v| v.as_integer()).unwrap_or(0);
    let get = |section: &str, k: &str| s.get(section)?.as_table()?.get(k)?.as_float();
    let monitor = text("monitor");
    let train_seconds = std::fs::read_to_string(dir.join("timing.csv"))
        .map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| l.split(',').nth(1)?.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0);
    let config = std::fs::read_to_string(dir.join("config.toml"))
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok());
    let experiment_key = |key: &str| {
        config
            .as_ref()
            .and_then(|t| Some(t.get("experiment")?.get(key)?.as_str()?.to_string()))
            .unwrap_or_default()
    };
    let (title, baseline) = (experiment_key("title"), experiment_key("baseline"));
    Row {
        experiment: text("experiment"),
        cell: text("cell"),
        status: text("status"),
        reason: text("reason"),
        epochs: int("epochs_run"),
        best_epoch: int("best_epoch"),
        best_val: get("best", &monitor),
        last_val: get("last", &monitor),
        best_val_mae_degc: get("best", "val_mae_degc"),
        best_val_accuracy: get("best", "val_accuracy"),
        peak_val_accuracy: crate::report::plot::Table::read(&dir.join("metrics.csv"))
            .ok()
            .and_then(|t| {
                t.column("val_accuracy")
                    .map(|c| c.iter().copied().fold(f64::NEG_INFINITY, f64::max))
            }),
        test_loss: get("test", "test_loss"),
        test_mae_degc: get("test", "test_mae_degc"),
        test_accuracy: get("test", "test_accuracy"),
        monitor,
        params: int("params"),
        train_seconds,
        content_id: text("content_id"),
        title,
        baseline,
        dir: dir.to_path_buf(),
    }
}

pub fn write_csv(root: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.1},{}",
            r.experiment,
            r.cell,
            r.status,
            r.epochs,
            r.best_epoch,
            r.monitor,
            opt(r.best_val),
            opt(r.last_val),
            opt(r.best_val_mae_degc),
            opt(r.best_val_accuracy),
            opt(r.peak_val_accuracy),
            opt(r.test_loss),
            opt(r.test_mae_degc),
            opt(r.test_accuracy),
            r.params,
            r.train_seconds + 0.0,
            r.content_id
        );
    }
    store::write_atomic(&root.join("summary.csv"), s.as_bytes())?;
    Ok(())
}

/// The headline value of a row: °C MAE for Jena, accuracy for IMDB.
pub fn headline(r: &Row) -> String {
    match (r.best_val_mae_degc, r.best_val_accuracy, r.best_val) {
        (Some(c), _, Some(v)) => format!("{v:.4} ({c:.2} °C)"),
        (_, Some(a), _) => match r.peak_val_accuracy {
            Some(p) if p > a => format!("{a:.3} (peak {p:.3})"),
            _ => format!("{a:.3}"),
        },
        (_, _, Some(v)) => format!("{v:.4}"),
        _ => "-".into(),
    }
}

pub fn write_markdown(root: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let mut s = String::from("| experiment | cell | status | epochs | best epoch | best validation | test | params | train time |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let test = match (r.test_mae_degc, r.test_accuracy, r.test_loss) {
            (Some(c), _, _) => format!("{c:.2} °C"),
            (_, Some(a), _) => format!("{a:.3}"),
            (_, _, Some(l)) => format!("{l:.4}"),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} s |",
            r.experiment,
            r.cell,
            r.status,
            r.epochs,
            r.best_epoch,
            headline(r),
            test,
            crate::model::summary::thousands(r.params as usize),
            r.train_seconds
        );
    }
    store::write_atomic(&root.join("summary.md"), s.as_bytes())?;
    Ok(())
}
