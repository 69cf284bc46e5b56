//! Comparison figures under results/figures/: Jena validation MAE (°C) per
//! model against the naive baseline, IMDB validation accuracy per model, a
//! metric against each grid key, each run's history, and the temperature
//! record of §6.3.1 when the data is at hand.
//!
//! A cell of replicates is drawn from its complete replicates: its bar is
//! their mean with the 95 % interval and a dot per replicate, its history
//! the mean curves with the min–max band.
use super::summary::Row;
use crate::plot::{self, Bar};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// (caption, path relative to the results root) of every figure drawn.
pub type Figures = Vec<(String, String)>;

pub fn draw(root: &Path, rows: &[Row]) -> anyhow::Result<Figures> {
    let dir = root.join("figures");
    std::fs::create_dir_all(&dir)?;
    let mut out = Figures::new();
    let complete: Vec<&Row> = rows.iter().filter(|r| r.usable()).collect();
    let label = |r: &Row| {
        if r.cell == "default" {
            r.experiment.clone()
        } else {
            format!("{}/{}", r.experiment, r.cell)
        }
    };

    let naive = complete
        .iter()
        .find(|r| r.experiment == "jena_naive")
        .and_then(|r| r.best_val_mae_degc);
    let jena: Vec<Bar> = complete
        .iter()
        .filter(|r| r.experiment != "jena_naive")
        .filter_map(|r| {
            Some(bar(
                label(r),
                r.best_val_mae_degc?,
                r,
                r.samples("best.val_mae_degc"),
            ))
        })
        .collect();
    if !jena.is_empty() {
        let path = dir.join("jena_val_mae.png");
        plot::bars(
            "Jena: best validation MAE per model",
            "MAE (°C)",
            &jena,
            naive.map(|v| ("naive baseline".to_string(), v)),
            &path,
        )?;
        out.push((
            "Jena: best validation MAE (°C) per model, naive baseline in red".into(),
            "figures/jena_val_mae.png".into(),
        ));
    }
    let peak = |r: &Row| r.peak_val_accuracy.or(r.best_val_accuracy);
    let imdb: Vec<Bar> = complete
        .iter()
        .filter_map(|r| Some(bar(label(r), peak(r)?, r, r.samples_by(peak))))
        .collect();
    if !imdb.is_empty() {
        let path = dir.join("imdb_val_accuracy.png");
        plot::bars(
            "IMDB: peak validation accuracy per model",
            "accuracy",
            &imdb,
            None,
            &path,
        )?;
        out.push((
            "IMDB: peak validation accuracy per model (the figure the book quotes)".into(),
            "figures/imdb_val_accuracy.png".into(),
        ));
    }
    out.extend(grid_figures(&dir, &complete)?);
    for r in &complete {
        // Redrawn from metrics.csv (so a newer seqlab redraws old runs);
        // the run's own history.png when that is all there is.
        let name = format!("history_{}_{}.png", r.experiment, r.cell);
        let title = if r.title.is_empty() {
            label(r)
        } else {
            format!("{} — {}", r.title, r.cell)
        };
        let baseline = crate::results::baseline::value(root, &r.baseline);
        let metrics: Vec<PathBuf> = r.run_dirs().iter().map(|d| d.join("metrics.csv")).collect();
        let drawn = plot::history_of(&metrics, &title, baseline, &dir.join(&name));
        let src = r.first_run_dir().join("history.png");
        if drawn.is_ok() || (src.exists() && std::fs::copy(&src, dir.join(&name)).is_ok()) {
            out.push((title, format!("figures/{name}")));
        }
    }
    out.extend(temperature_figures(&dir, &complete));
    Ok(out)
}

/// A bar for a row: plain for a single run, with the interval and the
/// replicates' values for a cell of replicates.
fn bar(label: String, value: f64, r: &Row, samples: Vec<f64>) -> Bar {
    if !r.replicated() {
        return Bar::single(label, value);
    }
    Bar {
        label,
        value,
        ci: super::stats::spread(&samples).and_then(|s| s.ci95),
        dots: samples,
    }
}

/// For experiments with several cells: the headline metric against each
/// numeric grid key read back from the cell names (`units=32,lr=0.001`).
fn grid_figures(dir: &Path, rows: &[&Row]) -> anyhow::Result<Figures> {
    let mut by_exp: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_exp.entry(&r.experiment).or_default().push(r);
    }
    let mut out = Figures::new();
    for (exp, cells) in by_exp {
        if cells.len() < 2 {
            continue;
        }
        let mut keys: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &cells {
            let Some(value) = r.best_val_mae_degc.or(r.best_val_accuracy).or(r.best_val) else {
                continue;
            };
            for part in r.cell.split(',') {
                if let Some((k, v)) = part.split_once('=') {
                    if let Ok(x) = v.parse::<f64>() {
                        keys.entry(k.to_string()).or_default().push((x, value));
                    }
                }
            }
        }
        for (key, mut points) in keys {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let ylabel = if cells.iter().any(|r| r.best_val_mae_degc.is_some()) {
                "best validation MAE (°C)"
            } else if cells.iter().any(|r| r.best_val_accuracy.is_some()) {
                "best validation accuracy"
            } else {
                "best validation value"
            };
            let safe: String = key
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let name = format!("grid_{exp}_{safe}.png");
            plot::line(
                &format!("{exp}: {ylabel} against {key}"),
                &key,
                ylabel,
                &points,
                true,
                &dir.join(&name),
            )?;
            out.push((
                format!("{exp}: {ylabel} against {key}"),
                format!("figures/{name}"),
            ));
        }
    }
    Ok(out)
}

/// The Jena CSV a complete Jena cell used, from its config.toml.
fn jena_source(rows: &[&Row]) -> Option<PathBuf> {
    for r in rows {
        let cfg: toml::Table =
            toml::from_str(&std::fs::read_to_string(r.first_run_dir().join("config.toml")).ok()?)
                .ok()?;
        let data = cfg.get("data")?.as_table()?;
        if data.get("source")?.as_str()? != "jena" {
            continue;
        }
        let path = data.get("path").and_then(|p| p.as_str()).unwrap_or("");
        let p = if path.is_empty() {
            crate::data::data_dir().join("jena_climate_2009_2016.csv")
        } else {
            PathBuf::from(path)
        };
        if p.exists() {
            return Some(p);
        }
    }
    None
}

/// Book figures 6.18 and 6.19: temperature over the whole record and over the first ten days.
fn temperature_figures(dir: &Path, rows: &[&Row]) -> Figures {
    let Some(src) = jena_source(rows) else {
        return vec![];
    };
    let Ok(table) = crate::data::jena::read_csv(&src) else {
        return vec![];
    };
    let Some(col) = table.columns.iter().position(|c| c == "T (degC)") else {
        return vec![];
    };
    let cols = table.columns.len();
    let temp = |i: usize| table.values[i * cols + col] as f64;
    let whole: Vec<(f64, f64)> = (0..table.rows)
        .step_by(6)
        .map(|i| (i as f64 / 144.0, temp(i)))
        .collect();
    let ten: Vec<(f64, f64)> = (0..table.rows.min(1440))
        .map(|i| (i as f64 / 144.0, temp(i)))
        .collect();
    let mut out = Figures::new();
    let shown = src
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if plot::line(
        &format!("Temperature over the whole record ({shown})"),
        "days",
        "temperature (°C)",
        &whole,
        false,
        &dir.join("jena_temperature.png"),
    )
    .is_ok()
    {
        out.push((
            "Temperature over the full timeline of the dataset (book fig. 6.18)".into(),
            "figures/jena_temperature.png".into(),
        ));
    }
    if plot::line(
        &format!("Temperature over the first 10 days ({shown})"),
        "days",
        "temperature (°C)",
        &ten,
        false,
        &dir.join("jena_temperature_10_days.png"),
    )
    .is_ok()
    {
        out.push((
            "Temperature over the first 10 days (book fig. 6.19)".into(),
            "figures/jena_temperature_10_days.png".into(),
        ));
    }
    out
}
