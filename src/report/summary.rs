//! One row per cell, read from each folder's summary.toml and timing.csv.
//!
//! A cell run once is one folder; a cell with replicates is a folder of
//! `seed=<S>/` run folders, read as one row whose values are the means over
//! its complete replicates (failed ones are counted, not averaged), with the
//! replicates' own rows beside it. Written here: `summary.csv` (one row per
//! cell, the columns as for single runs), `replicates.csv` (one row per run,
//! with its seed), `statistics.csv` (per cell and best/last/test value: n,
//! mean, standard deviation, 95 % interval, min, max) and `summary.md`.
use super::stats::{self, Spread};
use crate::results::store;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A cell's line in results/summary.csv.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub experiment: String,
    pub cell: String,
    /// `complete` or `failed`; for a cell of replicates also `partial` (some
    /// replicates complete, others failed or missing).
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
    /// `train.seed` of the run; for a cell of replicates, the cell's seed
    /// (replicate k ran with seed + k).
    pub seed: Option<u64>,
    /// Every best/last/test value as `best.<column>`, `last.<column>`,
    /// `test.<metric>`; for a cell of replicates, the mean over complete ones.
    pub values: BTreeMap<String, f64>,
    /// The replicates' own rows, by seed; empty for a cell run once.
    pub runs: Vec<Row>,
    /// Replicates the cell asked for (`train.repeats`; 1 for a single run).
    pub expected: usize,
}

impl Row {
    /// Whether this row stands for a cell of replicates.
    pub fn replicated(&self) -> bool {
        !self.runs.is_empty()
    }

    /// The complete runs: the row itself, or its complete replicates.
    pub fn complete_runs(&self) -> Vec<&Row> {
        if self.replicated() {
            self.runs
                .iter()
                .filter(|r| r.status == "complete")
                .collect()
        } else if self.status == "complete" {
            vec![self]
        } else {
            vec![]
        }
    }

    /// Runs that ended failed.
    pub fn failed_runs(&self) -> usize {
        if self.replicated() {
            self.runs.iter().filter(|r| r.status != "complete").count()
        } else {
            usize::from(self.status != "complete")
        }
    }

    /// Replicates asked for but without a folder (not run yet, or interrupted).
    pub fn missing_runs(&self) -> usize {
        self.expected.saturating_sub(self.runs.len().max(1))
    }

    /// Whether there is anything to show: at least one complete run.
    pub fn usable(&self) -> bool {
        !self.complete_runs().is_empty()
    }

    /// One value of every complete run.
    pub fn samples(&self, value: &str) -> Vec<f64> {
        self.complete_runs()
            .iter()
            .filter_map(|r| r.values.get(value).copied())
            .collect()
    }

    /// One value of every complete run, picked by `f`.
    pub fn samples_by(&self, f: impl Fn(&Row) -> Option<f64>) -> Vec<f64> {
        self.complete_runs().into_iter().filter_map(f).collect()
    }

    /// Mean, spread and interval of a value over the complete runs.
    pub fn spread(&self, value: &str) -> Option<Spread> {
        stats::spread(&self.samples(value))
    }

    /// The folders of the complete runs (the row's own for a single run).
    pub fn run_dirs(&self) -> Vec<&Path> {
        self.complete_runs()
            .into_iter()
            .map(|r| r.dir.as_path())
            .collect()
    }

    /// A folder with a run's files: the row's, or its first complete
    /// (else first) replicate's.
    pub fn first_run_dir(&self) -> &Path {
        self.complete_runs()
            .first()
            .map(|r| r.dir.as_path())
            .or(self.runs.first().map(|r| r.dir.as_path()))
            .unwrap_or(&self.dir)
    }

    /// `complete`, or `complete (5 replicates)`, `partial: 4 of 5 complete`, …
    pub fn status_label(&self) -> String {
        if !self.replicated() {
            return self.status.clone();
        }
        let n = self.complete_runs().len();
        match self.status.as_str() {
            "complete" => format!("complete ({n} replicates)"),
            other => format!("{other}: {n} of {} complete", self.expected),
        }
    }
}

pub const HEADER: &str = "experiment,cell,status,epochs,best_epoch,monitor,best_val,last_val,best_val_mae_degc,best_val_accuracy,peak_val_accuracy,test_loss,test_mae_degc,test_accuracy,params,train_seconds,content_id";

/// `replicates.csv`: summary.csv's columns with the run's seed after the cell.
pub const REPLICATES_HEADER: &str = "experiment,cell,seed,status,epochs,best_epoch,monitor,best_val,last_val,best_val_mae_degc,best_val_accuracy,peak_val_accuracy,test_loss,test_mae_degc,test_accuracy,params,train_seconds,content_id";

/// `statistics.csv`: one line per cell and best/last/test value.
pub const STATISTICS_HEADER: &str =
    "experiment,cell,value,replicates,complete,failed,mean,std,ci95_low,ci95_high,min,max";

/// A CSV field: quoted when it holds a comma, quote or line break (a grid
/// cell's name, `units=32,lr=0.001`, holds commas).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.6}")).unwrap_or_default()
}

/// Every cell folder with a summary (or replicate folders with summaries)
/// under `root`, sorted by experiment and cell.
pub fn collect(root: &Path) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for exp in subfolders(root)? {
        for dir in subfolders(&exp)? {
            if let Some(row) = read_cell(&dir) {
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// The folders inside `dir` whose names do not start with a dot, sorted.
fn subfolders(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(".")
                .starts_with('.')
        })
        .collect();
    out.sort();
    Ok(out)
}

/// A cell folder read as one row: a single run's, or the aggregate of the
/// `seed=<S>/` replicate folders in it. `None` when it holds neither. A
/// folder with its own `summary.toml` is a single run whatever else is in it.
pub fn read_cell(dir: &Path) -> Option<Row> {
    if let Some(s) = store::read_summary(dir) {
        return Some(row(dir, &s));
    }
    let mut runs: Vec<(u64, Row)> = subfolders(dir)
        .ok()?
        .into_iter()
        .filter_map(|d| {
            let seed = crate::config::replicate_seed(d.file_name()?.to_str()?)?;
            Some((seed, row(&d, &store::read_summary(&d)?)))
        })
        .collect();
    if runs.is_empty() {
        return None;
    }
    runs.sort_by_key(|(seed, _)| *seed);
    Some(aggregate(dir, runs.into_iter().map(|(_, r)| r).collect()))
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
    let key = |section: &str, key: &str| config.as_ref()?.get(section)?.get(key).cloned();
    let experiment_key = |k: &str| {
        key("experiment", k)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let (title, baseline) = (experiment_key("title"), experiment_key("baseline"));
    let int_of = |v: Option<toml::Value>| v.and_then(|v| v.as_integer());
    let mut values = BTreeMap::new();
    for section in ["best", "last", "test"] {
        if let Some(t) = s.get(section).and_then(|v| v.as_table()) {
            for (k, v) in t {
                if let Some(f) = v.as_float() {
                    values.insert(format!("{section}.{k}"), f);
                }
            }
        }
    }
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
        peak_val_accuracy: crate::plot::Table::read(&dir.join("metrics.csv"))
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
        seed: int_of(key("train", "seed")).map(|s| s as u64),
        values,
        runs: vec![],
        expected: int_of(key("run", "replicates")).unwrap_or(1).max(1) as usize,
    }
}

/// The lower median (0 for none).
fn median(mut xs: Vec<i64>) -> i64 {
    xs.sort_unstable();
    xs.get(xs.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

/// One row for a cell of replicates: values are means over the complete
/// replicates, epochs and best epoch their medians, train seconds the sum
/// over every replicate; the content id is the lowest seed's.
fn aggregate(dir: &Path, runs: Vec<Row>) -> Row {
    let complete: Vec<&Row> = runs.iter().filter(|r| r.status == "complete").collect();
    let first = complete.first().copied().unwrap_or(&runs[0]);
    let expected = runs
        .iter()
        .map(|r| r.expected)
        .max()
        .unwrap_or(1)
        .max(runs.len());
    let mean_of = |f: &dyn Fn(&Row) -> Option<f64>| {
        let xs: Vec<f64> = complete.iter().filter_map(|r| f(r)).collect();
        (!xs.is_empty()).then(|| stats::mean(&xs))
    };
    let names: BTreeSet<&String> = complete.iter().flat_map(|r| r.values.keys()).collect();
    let values = names
        .into_iter()
        .filter_map(|k| Some((k.clone(), mean_of(&|r: &Row| r.values.get(k).copied())?)))
        .collect();
    let failed: Vec<&Row> = runs.iter().filter(|r| r.status != "complete").collect();
    let missing = expected - runs.len();
    let status = if complete.is_empty() {
        "failed"
    } else if failed.is_empty() && missing == 0 {
        "complete"
    } else {
        "partial"
    };
    let mut reason = Vec::new();
    if let Some(f) = failed.first() {
        let seed = f.seed.map(|s| format!("seed={s}: ")).unwrap_or_default();
        reason.push(format!(
            "{} of {expected} replicates failed ({seed}{})",
            failed.len(),
            f.reason
        ));
    }
    if missing > 0 {
        reason.push(format!("{missing} of {expected} replicates not run"));
    }
    let base_seed = std::fs::read_to_string(runs[0].dir.join("config.toml"))
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
        .and_then(|t| t.get("run")?.get("base_seed")?.as_integer())
        .map(|s| s as u64)
        .or(runs.iter().filter_map(|r| r.seed).min());
    Row {
        experiment: first.experiment.clone(),
        cell: first.cell.clone(),
        status: status.into(),
        reason: reason.join("; "),
        epochs: median(complete.iter().map(|r| r.epochs).collect()),
        best_epoch: median(complete.iter().map(|r| r.best_epoch).collect()),
        monitor: first.monitor.clone(),
        best_val: mean_of(&|r| r.best_val),
        last_val: mean_of(&|r| r.last_val),
        best_val_mae_degc: mean_of(&|r| r.best_val_mae_degc),
        best_val_accuracy: mean_of(&|r| r.best_val_accuracy),
        peak_val_accuracy: mean_of(&|r| r.peak_val_accuracy),
        test_loss: mean_of(&|r| r.test_loss),
        test_mae_degc: mean_of(&|r| r.test_mae_degc),
        test_accuracy: mean_of(&|r| r.test_accuracy),
        params: first.params,
        train_seconds: runs.iter().map(|r| r.train_seconds).sum(),
        content_id: runs[0].content_id.clone(),
        title: first.title.clone(),
        baseline: first.baseline.clone(),
        dir: dir.to_path_buf(),
        seed: base_seed,
        values,
        expected,
        runs,
    }
}

/// The columns of summary.csv after experiment and cell (and seed).
fn columns(r: &Row) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{:.1},{}",
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
    )
}

/// `summary.csv`: one row per cell (a cell of replicates: means, see [`aggregate`]).
pub fn write_csv(root: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{}",
            field(&r.experiment),
            field(&r.cell),
            columns(r)
        );
    }
    store::write_atomic(&root.join("summary.csv"), s.as_bytes())?;
    Ok(())
}

/// `replicates.csv`: one row per run — every replicate, and every cell run once.
pub fn write_replicates_csv(root: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let mut s = format!("{REPLICATES_HEADER}\n");
    for r in rows {
        let runs: Vec<&Row> = if r.replicated() {
            r.runs.iter().collect()
        } else {
            vec![r]
        };
        for run in runs {
            let seed = run.seed.map(|x| x.to_string()).unwrap_or_default();
            let _ = writeln!(
                s,
                "{},{},{seed},{}",
                field(&r.experiment),
                field(&r.cell),
                columns(run)
            );
        }
    }
    store::write_atomic(&root.join("replicates.csv"), s.as_bytes())?;
    Ok(())
}

/// `statistics.csv`: per cell and best/last/test value, over the complete
/// runs: n, mean, sample standard deviation and 95 % interval (empty for one
/// run), min and max; `replicates` asked for and `failed` runs beside.
pub fn write_statistics_csv(root: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let mut s = format!("{STATISTICS_HEADER}\n");
    for r in rows {
        let names: BTreeSet<&String> = r
            .complete_runs()
            .into_iter()
            .flat_map(|run| run.values.keys())
            .collect();
        for name in names {
            let Some(sp) = r.spread(name) else { continue };
            let (lo, hi) = sp.ci95.unzip();
            let _ = writeln!(
                s,
                "{},{},{name},{},{},{},{:.6},{},{},{},{:.6},{:.6}",
                field(&r.experiment),
                field(&r.cell),
                r.expected,
                sp.n,
                r.failed_runs(),
                sp.mean,
                opt(sp.std),
                opt(lo),
                opt(hi),
                sp.min,
                sp.max
            );
        }
    }
    store::write_atomic(&root.join("statistics.csv"), s.as_bytes())?;
    Ok(())
}

/// `mean` with `digits` decimals, and ` ± h` (the 95 % half width) when the
/// row is a cell of replicates with at least two complete ones.
fn plus_minus(r: &Row, samples: &[f64], mean: f64, digits: usize, scale: f64) -> String {
    let h = r
        .replicated()
        .then(|| stats::spread(samples)?.half_width())
        .flatten();
    match h {
        Some(h) => format!("{:.digits$} ± {:.digits$}", mean * scale, h * scale),
        None => format!("{:.digits$}", mean * scale),
    }
}

/// The headline value of a row: °C MAE for Jena, accuracy for IMDB; for a
/// cell of replicates the mean ± the 95 % half width.
pub fn headline(r: &Row) -> String {
    let monitor = format!("best.{}", r.monitor);
    match (r.best_val_mae_degc, r.best_val_accuracy, r.best_val) {
        (Some(c), _, Some(v)) => format!(
            "{} ({} °C)",
            plus_minus(r, &r.samples(&monitor), v, 4, 1.0),
            plus_minus(r, &r.samples("best.val_mae_degc"), c, 2, 1.0)
        ),
        (_, Some(a), _) => {
            let acc = plus_minus(r, &r.samples("best.val_accuracy"), a, 3, 1.0);
            match r.peak_val_accuracy {
                Some(p) if p > a => format!(
                    "{acc} (peak {})",
                    plus_minus(r, &r.samples_by(|x| x.peak_val_accuracy), p, 3, 1.0)
                ),
                _ => acc,
            }
        }
        (_, _, Some(v)) => plus_minus(r, &r.samples(&monitor), v, 4, 1.0),
        _ => "-".into(),
    }
}

/// The test value of a row: °C MAE, accuracy or loss (± for replicates).
pub fn test_value(r: &Row) -> String {
    match (r.test_mae_degc, r.test_accuracy, r.test_loss) {
        (Some(c), _, _) => format!(
            "{} °C",
            plus_minus(r, &r.samples("test.test_mae_degc"), c, 2, 1.0)
        ),
        (_, Some(a), _) => plus_minus(r, &r.samples("test.test_accuracy"), a, 3, 1.0),
        (_, _, Some(l)) => plus_minus(r, &r.samples("test.test_loss"), l, 4, 1.0),
        _ => "-".into(),
    }
}

pub fn write_markdown(root: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let mut s = String::from("| experiment | cell | status | epochs | best epoch | best validation | test | params | train time |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} s |",
            r.experiment,
            r.cell,
            r.status_label(),
            r.epochs,
            r.best_epoch,
            headline(r),
            test_value(r),
            crate::model::summary::thousands(r.params as usize),
            r.train_seconds
        );
    }
    if rows.iter().any(Row::replicated) {
        s.push_str("\nCells with replicates: means over the complete replicates ± the half width of the 95 % confidence interval (Student t); epochs and best epoch are medians, train time the sum. Per replicate: replicates.csv; every value: statistics.csv.\n");
    }
    s.push_str(&super::evaluations::markdown(&super::evaluations::collect(
        rows,
    )));
    store::write_atomic(&root.join("summary.md"), s.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_take_the_lower_middle() {
        assert_eq!(median(vec![3, 1, 2]), 2);
        assert_eq!(median(vec![4, 1, 3, 2]), 2);
        assert_eq!(median(vec![]), 0);
    }
}
