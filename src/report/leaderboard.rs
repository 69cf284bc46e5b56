//! A long-horizon leaderboard: seqlab's test MSE / MAE per model and horizon
//! beside a published table (e.g. ETTh1's), as `summary.md` under the
//! results root, with `mse.png` (test MSE against the horizon) and one
//! `forecast_H<h>.png` per horizon (truth and every model's forecast of one
//! target on the middle sample test window, from each cell's `forecasts.csv`).
use crate::plot;
use crate::results::store;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One published result.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub model: String,
    pub horizon: usize,
    pub mse: f64,
    pub mae: f64,
}

/// Reads `model,horizon,mse,mae` rows (a header line first).
pub fn read_reference(path: &Path) -> Result<Vec<Published>> {
    let mut reader = csv::Reader::from_path(path)
        .with_context(|| format!("cannot read the reference table {}", path.display()))?;
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.with_context(|| format!("{}:{}", path.display(), i + 2))?;
        let field = |k: usize| rec.get(k).unwrap_or("").trim().to_string();
        let num = |k: usize| -> Result<f64> {
            field(k).parse().with_context(|| {
                format!(
                    "{}:{}: column {}: not a number",
                    path.display(),
                    i + 2,
                    k + 1
                )
            })
        };
        out.push(Published {
            model: field(0),
            horizon: field(1).parse().with_context(|| {
                format!("{}:{}: horizon: not an integer", path.display(), i + 2)
            })?,
            mse: num(2)?,
            mae: num(3)?,
        });
    }
    Ok(out)
}

/// A complete cell's horizon and test MSE / MAE (normalised scale).
#[derive(Debug, Clone)]
struct Entry {
    experiment: String,
    horizon: usize,
    mse: f64,
    mae: f64,
    dir: PathBuf,
}

fn entries(root: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let Ok(experiments) = std::fs::read_dir(root) else {
        return out;
    };
    for exp in experiments.flatten().filter(|e| e.path().is_dir()) {
        let Ok(cells) = std::fs::read_dir(exp.path()) else {
            continue;
        };
        for cell in cells.flatten().map(|c| c.path()).filter(|p| p.is_dir()) {
            let Some(summary) = store::read_summary(&cell) else {
                continue;
            };
            if summary.get("status").and_then(|v| v.as_str()) != Some("complete") {
                continue;
            }
            let config: Option<toml::Table> = std::fs::read_to_string(cell.join("config.toml"))
                .ok()
                .and_then(|t| toml::from_str(&t).ok());
            let Some(config) = config else { continue };
            let horizon = config
                .get("data")
                .and_then(|d| d.get("horizon"))
                .and_then(|h| h.as_integer())
                .unwrap_or(1) as usize;
            let loss = config
                .get("train")
                .and_then(|t| t.get("loss"))
                .and_then(|l| l.as_str())
                .unwrap_or("");
            let Some(test) = summary.get("test").and_then(|t| t.as_table()) else {
                continue;
            };
            let get = |k: &str| test.get(k).and_then(|v| v.as_float());
            let mse = if loss == "mse" {
                get("test_loss")
            } else {
                get("test_mse")
            };
            let (Some(mse), Some(mae)) = (mse, get("test_mae")) else {
                continue;
            };
            out.push(Entry {
                experiment: exp.file_name().to_string_lossy().to_string(),
                horizon,
                mse,
                mae,
                dir: cell,
            });
        }
    }
    out.sort_by(|a, b| (&a.experiment, a.horizon).cmp(&(&b.experiment, b.horizon)));
    out
}

/// Writes `summary.md`, `mse.png` and `forecast_H<h>.png` under `root`;
/// `target` is the column the forecast figures show.
pub fn write(root: &Path, reference: &[Published], source: &str, target: &str) -> Result<()> {
    let entries = entries(root);
    anyhow::ensure!(
        !entries.is_empty(),
        "{}: no complete cell with test MSE and MAE; run the experiments first",
        root.display()
    );
    let mut horizons: Vec<usize> = entries.iter().map(|e| e.horizon).collect();
    horizons.extend(reference.iter().map(|p| p.horizon));
    horizons.sort_unstable();
    horizons.dedup();
    let mut models: BTreeMap<String, BTreeMap<usize, (f64, f64)>> = BTreeMap::new();
    for e in &entries {
        models
            .entry(e.experiment.clone())
            .or_default()
            .insert(e.horizon, (e.mse, e.mae));
    }
    let best: BTreeMap<usize, f64> = horizons
        .iter()
        .filter_map(|h| {
            let m = entries
                .iter()
                .filter(|e| e.horizon == *h && !e.experiment.contains("repeat"))
                .map(|e| e.mse)
                .fold(f64::INFINITY, f64::min);
            m.is_finite().then_some((*h, m))
        })
        .collect();
    let mut md = String::new();
    let _ = writeln!(md, "# Long-horizon forecasting: test MSE / MAE\n");
    let _ = writeln!(
        md,
        "seqlab rows: the cells of this results folder, one seed each; test MSE / MAE on the normalised scale over every test window, horizon step and column. Published rows: `{source}`. **Bold**: the best seqlab model at each horizon (the repeat baseline aside).\n"
    );
    let _ = write!(md, "| model |");
    for h in &horizons {
        let _ = write!(md, " H={h} |");
    }
    let _ = write!(md, "\n|---|");
    for _ in &horizons {
        let _ = write!(md, "---|");
    }
    md.push('\n');
    for (name, by_h) in &models {
        let _ = write!(md, "| seqlab `{name}` |");
        for h in &horizons {
            match by_h.get(h) {
                Some((mse, mae)) if best.get(h) == Some(mse) => {
                    let _ = write!(md, " **{mse:.3} / {mae:.3}** |");
                }
                Some((mse, mae)) => {
                    let _ = write!(md, " {mse:.3} / {mae:.3} |");
                }
                None => md.push_str(" – |"),
            }
        }
        md.push('\n');
    }
    let mut published: BTreeMap<&str, BTreeMap<usize, &Published>> = BTreeMap::new();
    for p in reference {
        published.entry(&p.model).or_default().insert(p.horizon, p);
    }
    for (name, by_h) in &published {
        let _ = write!(md, "| {name} (published) |");
        for h in &horizons {
            match by_h.get(h) {
                Some(p) => {
                    let _ = write!(md, " {:.3} / {:.3} |", p.mse, p.mae);
                }
                None => md.push_str(" – |"),
            }
        }
        md.push('\n');
    }
    md.push_str("\n![test MSE against the horizon](mse.png)\n");
    // The repeat baseline stays in the table: on the chart it would flatten the rest.
    let mut series: Vec<plot::Curve> = models
        .iter()
        .filter(|(n, _)| !n.contains("repeat"))
        .map(|(n, by_h)| {
            (
                n.clone(),
                by_h.iter().map(|(h, (mse, _))| (*h as f64, *mse)).collect(),
                false,
            )
        })
        .collect();
    let best_published: Vec<(f64, f64)> = horizons
        .iter()
        .filter_map(|h| {
            let m = reference
                .iter()
                .filter(|p| p.horizon == *h)
                .map(|p| p.mse)
                .fold(f64::INFINITY, f64::min);
            m.is_finite().then_some((*h as f64, m))
        })
        .collect();
    if !best_published.is_empty() {
        series.push(("best published".into(), best_published, true));
    }
    plot::lines(
        "Test MSE against the horizon",
        "horizon (steps)",
        "test MSE (normalised)",
        &series,
        &root.join("mse.png"),
    )?;
    for h in &horizons {
        let mut curves: Vec<plot::Curve> = Vec::new();
        for e in entries.iter().filter(|e| e.horizon == *h) {
            let Ok(rows) = middle_window(&e.dir.join("forecasts.csv"), target) else {
                continue;
            };
            if curves.is_empty() {
                curves.push((
                    "truth".into(),
                    rows.iter().map(|r| (r.0, r.1)).collect(),
                    true,
                ));
            }
            curves.push((
                e.experiment.clone(),
                rows.iter().map(|r| (r.0, r.2)).collect(),
                false,
            ));
        }
        if curves.len() > 1 {
            let name = format!("forecast_H{h}.png");
            plot::lines(
                &format!("{target}: the middle sample test window, H = {h}"),
                "horizon step",
                target,
                &curves,
                &root.join(&name),
            )?;
            let _ = writeln!(md, "\n![{target} forecasts at H = {h}]({name})");
        }
    }
    crate::results::store::write_atomic(&root.join("summary.md"), md.as_bytes())?;
    Ok(())
}

/// (step, truth, forecast) of `target` in the middle of the (up to three)
/// windows a `forecasts.csv` holds.
fn middle_window(path: &Path, target: &str) -> Result<Vec<(f64, f64, f64)>> {
    let mut reader = csv::Reader::from_path(path)?;
    let mut by_window: BTreeMap<i64, Vec<(f64, f64, f64)>> = BTreeMap::new();
    for rec in reader.records() {
        let rec = rec?;
        if rec.get(2) != Some(target) {
            continue;
        }
        let p = |k: usize| -> Result<f64> { Ok(rec.get(k).unwrap_or("").parse()?) };
        by_window
            .entry(p(0)? as i64)
            .or_default()
            .push((p(1)?, p(3)?, p(4)?));
    }
    let windows: Vec<_> = by_window.into_values().collect();
    anyhow::ensure!(!windows.is_empty(), "no rows of {target}");
    Ok(windows[windows.len() / 2].clone())
}
