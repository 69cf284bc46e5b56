//! The evaluations a report lists under their cells: every
//! `<cell>/eval/<name>/summary.toml` that `seqlab evaluate` wrote (for a
//! cell of replicates, those of each replicate).
use super::summary::Row;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One evaluation, as its summary says.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// `experiment/cell`, with `/seed=<S>` for a replicate.
    pub cell: String,
    pub name: String,
    pub data: String,
    pub split: String,
    /// Windows (tables) or documents (text collections) evaluated.
    pub windows: i64,
    /// The split's metrics, in the summary's order.
    pub metrics: Vec<(String, f64)>,
    pub dir: PathBuf,
}

/// The evaluations of `rows`' cells, cell by cell, names sorted.
pub fn collect(rows: &[Row]) -> Vec<Evaluation> {
    let mut out = Vec::new();
    for r in rows {
        let label = format!("{}/{}", r.experiment, r.cell);
        if r.runs.is_empty() {
            out.extend(of_cell(&r.dir, &label));
        }
        for run in &r.runs {
            let seed = run.dir.file_name().unwrap_or_default().to_string_lossy();
            out.extend(of_cell(&run.dir, &format!("{label}/{seed}")));
        }
    }
    out
}

fn of_cell(dir: &Path, label: &str) -> Vec<Evaluation> {
    let Ok(entries) = std::fs::read_dir(dir.join(crate::results::EVAL)) else {
        return vec![];
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .starts_with('.')
        })
        .collect();
    dirs.sort();
    dirs.into_iter().filter_map(|d| read(&d, label)).collect()
}

fn read(dir: &Path, label: &str) -> Option<Evaluation> {
    let s: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("summary.toml")).ok()?).ok()?;
    let text = |k: &str| s.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let split = text("split");
    let metrics = s
        .get(&split)
        .and_then(|v| v.as_table())
        .map(|t| {
            t.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_float()?)))
                .collect()
        })
        .unwrap_or_default();
    Some(Evaluation {
        cell: label.to_string(),
        name: dir.file_name()?.to_string_lossy().to_string(),
        data: text("data"),
        split,
        // Tables count windows, text collections documents.
        windows: s
            .get("windows")
            .or_else(|| s.get("documents"))
            .and_then(|v| v.as_integer())
            .unwrap_or(0),
        metrics,
        dir: dir.to_path_buf(),
    })
}

fn metrics_text(e: &Evaluation) -> String {
    e.metrics
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Markdown section, empty when there are no evaluations.
pub fn markdown(evals: &[Evaluation]) -> String {
    if evals.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n## Evaluations (`seqlab evaluate`)\n\n| cell | evaluation | data | split | windows / documents | metrics |\n|---|---|---|---|---|---|\n");
    for e in evals {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            e.cell,
            e.name,
            e.data,
            e.split,
            e.windows,
            metrics_text(e)
        );
    }
    s
}

/// An HTML section linking each evaluation's folder, empty when there are none.
pub fn html(evals: &[Evaluation], root: &Path, esc: impl Fn(&str) -> String) -> String {
    if evals.is_empty() {
        return String::new();
    }
    let mut h = String::from("<h2>Evaluations</h2>\n<table><thead><tr><th>cell</th><th>evaluation</th><th>data</th><th>split</th><th>windows / documents</th><th>metrics</th></tr></thead><tbody>\n");
    for e in evals {
        let figure = ["forecast.png", "confusion.png"]
            .into_iter()
            .find(|f| e.dir.join(f).exists())
            .unwrap_or("summary.toml");
        let rel = e
            .dir
            .strip_prefix(root)
            .unwrap_or(&e.dir)
            .to_string_lossy()
            .to_string();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><a href=\"{}/summary.toml\">{}</a> <a href=\"{}/{}\">figure</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.cell),
            esc(&rel),
            esc(&e.name),
            esc(&rel),
            figure,
            esc(&e.data),
            esc(&e.split),
            e.windows,
            esc(&metrics_text(e))
        );
    }
    h.push_str("</tbody></table>\n");
    h
}
