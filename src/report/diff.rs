//! `seqlab diff A B`: match cells of two results folders by experiment and
//! cell name, show config differences key by key and metric deltas, and fail
//! (exit 1) when a watched metric got worse.
//!
//! Where both sides have at least two complete replicates of a cell, each
//! metric is compared as mean ± 95 % interval on each side, with Welch's
//! t-test of the difference: `REGRESSED` only when it is worse beyond the
//! tolerance **and** significant at `alpha`, `improved` when better beyond
//! the tolerance and significant, `~ (not significant)` when the test cannot
//! tell it from noise, `~ (within tolerance)` when it can but the change is
//! small. With one replicate on a side significance cannot be judged: the
//! tolerance rule alone decides, as for single runs.
use super::stats::{self, Spread, Welch};
use super::summary::{collect, Row};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

/// How much worse a metric may get: absolute, or relative to A's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    Absolute(f64),
    Relative(f64),
}

impl Tolerance {
    pub fn parse(text: &str) -> anyhow::Result<Tolerance> {
        let t = text.trim();
        let bad =
            || anyhow::anyhow!("--tolerance `{text}`: use a number (0.01) or a percentage (5%)");
        Ok(match t.strip_suffix('%') {
            Some(p) => Tolerance::Relative(p.trim().parse::<f64>().map_err(|_| bad())? / 100.0),
            None => Tolerance::Absolute(t.parse().map_err(|_| bad())?),
        })
    }

    fn allows(&self, a: f64, worsening: f64) -> bool {
        match *self {
            Tolerance::Absolute(t) => worsening <= t + 1e-12,
            Tolerance::Relative(r) => worsening <= r * a.abs() + 1e-12,
        }
    }
}

/// What `seqlab diff` was asked to do.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    pub a: PathBuf,
    pub b: PathBuf,
    /// Metrics to watch; empty: every best/test value.
    pub metrics: Vec<String>,
    pub tolerance: Tolerance,
    /// The tolerance as the user wrote it (for messages).
    pub tolerance_text: String,
    /// Significance level of Welch's t-test.
    pub alpha: f64,
    pub timing: bool,
    pub json: bool,
}

impl DiffOptions {
    /// Options with the tolerance parsed and alpha checked.
    pub fn new(
        a: PathBuf,
        b: PathBuf,
        metrics: Vec<String>,
        tolerance: &str,
        alpha: f64,
        timing: bool,
        json: bool,
    ) -> anyhow::Result<DiffOptions> {
        anyhow::ensure!(
            alpha > 0.0 && alpha < 1.0,
            "--alpha {alpha}: a significance level lies between 0 and 1, e.g. 0.05"
        );
        Ok(DiffOptions {
            a,
            b,
            metrics,
            tolerance: Tolerance::parse(tolerance)?,
            tolerance_text: tolerance.to_string(),
            alpha,
            timing,
            json,
        })
    }
}

/// Accuracy-like metrics improve upwards, losses and errors downwards.
pub fn higher_is_better(name: &str) -> bool {
    name.contains("accuracy")
}

/// What the comparison of one watched metric concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse beyond the tolerance (and, with replicates, significantly).
    Regressed,
    /// Better beyond the tolerance and significantly (replicates only).
    Improved,
    /// Welch's test cannot tell the change from noise at `alpha`.
    NotSignificant,
    /// Significant, but no larger than the tolerance.
    WithinTolerance,
    /// One replicate on a side: not worse beyond the tolerance (significance not judged).
    NoRegression,
}

impl Verdict {
    fn mark(self) -> &'static str {
        match self {
            Verdict::Regressed => "REGRESSED",
            Verdict::Improved => "improved",
            Verdict::NotSignificant => "~ (not significant)",
            Verdict::WithinTolerance => "~ (within tolerance)",
            Verdict::NoRegression => "",
        }
    }
}

/// The verdict on a watched metric whose mean went from `a` to `a + delta`;
/// `welch` is the test where both sides have ≥ 2 replicates.
pub fn verdict(
    name: &str,
    a: f64,
    delta: f64,
    welch: Option<&Welch>,
    tolerance: Tolerance,
    alpha: f64,
) -> Verdict {
    let worsening = if higher_is_better(name) {
        -delta
    } else {
        delta
    };
    let beyond = |change: f64| change > 0.0 && !tolerance.allows(a, change);
    match welch {
        None if beyond(worsening) => Verdict::Regressed,
        None => Verdict::NoRegression,
        Some(w) if w.p >= alpha => Verdict::NotSignificant,
        Some(_) if beyond(worsening) => Verdict::Regressed,
        Some(_) if beyond(-worsening) => Verdict::Improved,
        Some(_) => Verdict::WithinTolerance,
    }
}

/// One metric of one matched cell.
#[derive(Debug, Clone, Serialize)]
pub struct MetricDiff {
    /// `best.<column>`, `last.<column>` or `test.<metric>`.
    pub name: String,
    pub watched: bool,
    pub a: Spread,
    pub b: Spread,
    /// B's mean minus A's.
    pub delta: f64,
    /// `delta / |A's mean|`; `None` when A's mean is 0.
    pub relative: Option<f64>,
    /// Welch's t-test of A against B, where both sides have ≥ 2 replicates.
    pub welch: Option<Welch>,
    /// For watched metrics.
    pub verdict: Option<Verdict>,
}

/// Runs of one side of a matched cell.
#[derive(Debug, Clone, Serialize)]
pub struct Replicates {
    pub complete: usize,
    pub failed: usize,
    /// Replicates the cell asked for.
    pub expected: usize,
}

/// A key whose value differs between the two configs.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigChange {
    pub key: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// One cell present on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct CellDiff {
    /// `experiment/cell`.
    pub cell: String,
    pub status: (String, String),
    pub replicates: (Replicates, Replicates),
    /// Whether Welch's test judged this cell's metrics (≥ 2 replicates on both sides).
    pub significance_judged: bool,
    pub config: Vec<ConfigChange>,
    pub metrics: Vec<MetricDiff>,
    /// Training seconds (sum over replicates) on each side.
    pub train_seconds: (f64, f64),
}

impl CellDiff {
    fn changed(&self, timing: bool) -> bool {
        self.status.0 != self.status.1
            || !self.config.is_empty()
            || self
                .metrics
                .iter()
                .any(|m| m.delta != 0.0 || m.verdict == Some(Verdict::Regressed))
            || (timing && self.train_seconds.0 != self.train_seconds.1)
    }
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: PathBuf,
    pub b: PathBuf,
    pub tolerance: String,
    pub alpha: f64,
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
    pub cells: Vec<CellDiff>,
    /// Counts of each verdict over every watched metric.
    pub verdicts: BTreeMap<String, usize>,
    pub regressed: bool,
}

/// Dotted key → value text of a run's config.toml, `[run]` (versions,
/// device) included. For a cell of replicates: its first replicate's, with
/// the cell's `train.seed` and `train.repeats` in place of the replicate's
/// own seed, and the per-replicate `[run]` keys left out.
fn flat_config(row: &Row) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    walk(
                        &if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        },
                        v,
                        out,
                    );
                }
            }
            toml::Value::Array(a) if a.iter().any(|x| x.is_table()) => {
                for (i, v) in a.iter().enumerate() {
                    walk(&format!("{prefix}.{i}"), v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Some(v) = std::fs::read_to_string(row.first_run_dir().join("config.toml"))
        .ok()
        .and_then(|t| toml::from_str::<toml::Value>(&t).ok())
    {
        walk("", &v, &mut out);
    }
    if row.replicated() {
        for key in [
            "run.content_id",
            "run.replicate",
            "run.base_seed",
            "run.replicates",
        ] {
            out.remove(key);
        }
        if let Some(seed) = row.seed {
            out.insert("train.seed".into(), seed.to_string());
        }
        out.insert("train.repeats".into(), row.expected.to_string());
    }
    out
}

/// Whether metric `name` (e.g. `best.val_mae_degc`) is watched by `--metric` filters.
fn watched(name: &str, filters: &[String]) -> bool {
    if filters.is_empty() {
        return name.starts_with("best.") || name.starts_with("test.");
    }
    filters
        .iter()
        .any(|f| name == f || name.ends_with(&format!(".{f}")))
}

fn replicates(r: &Row) -> Replicates {
    Replicates {
        complete: r.complete_runs().len(),
        failed: r.failed_runs(),
        expected: r.expected,
    }
}

fn compare_cell(key: &str, ra: &Row, rb: &Row, opts: &DiffOptions) -> CellDiff {
    let (ca, cb) = (flat_config(ra), flat_config(rb));
    let keys: BTreeSet<&String> = ca.keys().chain(cb.keys()).collect();
    let config = keys
        .into_iter()
        .filter(|k| ca.get(*k) != cb.get(*k))
        .map(|k| ConfigChange {
            key: k.clone(),
            a: ca.get(k).cloned(),
            b: cb.get(k).cloned(),
        })
        .collect();
    let names: BTreeSet<String> = ra
        .complete_runs()
        .iter()
        .flat_map(|r| r.values.keys().cloned())
        .collect();
    let mut judged = false;
    let mut metrics = Vec::new();
    for name in names {
        let (xa, xb) = (ra.samples(&name), rb.samples(&name));
        let (Some(a), Some(b)) = (stats::spread(&xa), stats::spread(&xb)) else {
            continue;
        };
        let welch = stats::welch(&xa, &xb);
        judged |= welch.is_some();
        let delta = b.mean - a.mean;
        let watched = watched(&name, &opts.metrics);
        let verdict = watched.then(|| {
            verdict(
                &name,
                a.mean,
                delta,
                welch.as_ref(),
                opts.tolerance,
                opts.alpha,
            )
        });
        metrics.push(MetricDiff {
            relative: (a.mean != 0.0).then(|| delta / a.mean.abs()),
            name,
            watched,
            a,
            b,
            delta,
            welch,
            verdict,
        });
    }
    CellDiff {
        cell: key.to_string(),
        status: (ra.status.clone(), rb.status.clone()),
        replicates: (replicates(ra), replicates(rb)),
        significance_judged: judged,
        config,
        metrics,
        train_seconds: (ra.train_seconds, rb.train_seconds),
    }
}

/// Compares the two results folders of `opts`.
pub fn compare(opts: &DiffOptions) -> anyhow::Result<Comparison> {
    let key = |r: &Row| format!("{}/{}", r.experiment, r.cell);
    let rows_a: BTreeMap<String, Row> = collect(&opts.a)?
        .into_iter()
        .map(|r| (key(&r), r))
        .collect();
    let rows_b: BTreeMap<String, Row> = collect(&opts.b)?
        .into_iter()
        .map(|r| (key(&r), r))
        .collect();
    let only = |x: &BTreeMap<String, Row>, y: &BTreeMap<String, Row>| {
        x.keys().filter(|k| !y.contains_key(*k)).cloned().collect()
    };
    let cells: Vec<CellDiff> = rows_a
        .iter()
        .filter_map(|(k, ra)| Some(compare_cell(k, ra, rows_b.get(k)?, opts)))
        .collect();
    let mut verdicts = BTreeMap::new();
    for v in cells
        .iter()
        .flat_map(|c| &c.metrics)
        .filter_map(|m| m.verdict)
    {
        let name = serde_json::to_value(v)?
            .as_str()
            .unwrap_or_default()
            .to_string();
        *verdicts.entry(name).or_insert(0) += 1;
    }
    let regressed = verdicts.contains_key("regressed");
    Ok(Comparison {
        a: opts.a.clone(),
        b: opts.b.clone(),
        tolerance: opts.tolerance_text.clone(),
        alpha: opts.alpha,
        only_in_a: only(&rows_a, &rows_b),
        only_in_b: only(&rows_b, &rows_a),
        cells,
        verdicts,
        regressed,
    })
}

fn relative(m: &MetricDiff) -> String {
    m.relative
        .map(|r| format!("{:+.2}%", 100.0 * r))
        .unwrap_or_else(|| "-".into())
}

/// `mean ± h` of one side.
fn mean_ci(s: &Spread) -> String {
    match s.half_width() {
        Some(h) => format!("{:.6} ± {h:.6}", s.mean),
        None => format!("{:.6}", s.mean),
    }
}

fn side(r: &Replicates) -> String {
    let mut s = if r.complete == r.expected && r.failed == 0 {
        format!("{} replicate(s)", r.complete)
    } else {
        format!("{} of {} replicate(s) complete", r.complete, r.expected)
    };
    if r.failed > 0 {
        let _ = write!(s, ", {} failed (excluded)", r.failed);
    }
    s
}

/// The comparison as text.
pub fn render(c: &Comparison, timing: bool) -> String {
    let mut out = String::new();
    for k in &c.only_in_a {
        let _ = writeln!(out, "only in {}: {k}", c.a.display());
    }
    for k in &c.only_in_b {
        let _ = writeln!(out, "only in {}: {k}", c.b.display());
    }
    let mut same = 0;
    for cell in &c.cells {
        if !cell.changed(timing) {
            same += 1;
            continue;
        }
        let (ra, rb) = &cell.replicates;
        if ra.expected > 1 || rb.expected > 1 {
            let _ = writeln!(out, "{}  (A: {}; B: {})", cell.cell, side(ra), side(rb));
        } else {
            let _ = writeln!(out, "{}", cell.cell);
        }
        if cell.status.0 != cell.status.1 {
            let _ = writeln!(out, "  status: {} → {}", cell.status.0, cell.status.1);
        }
        for ch in &cell.config {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
            let _ = writeln!(
                out,
                "  config {}: {} → {}",
                ch.key,
                show(&ch.a),
                show(&ch.b)
            );
        }
        let shown: Vec<&MetricDiff> = cell
            .metrics
            .iter()
            .filter(|m| m.delta != 0.0 || m.verdict == Some(Verdict::Regressed))
            .collect();
        if cell.significance_judged {
            if !shown.is_empty() {
                let _ = writeln!(
                    out,
                    "  {:<28} {:>24} {:>24} {:>12} {:>9} {:>8}  verdict",
                    "metric (mean ± 95% CI)", "A", "B", "B − A", "", "p"
                );
            }
            for m in &shown {
                let p = m
                    .welch
                    .map(|w| format!("{:.4}", w.p))
                    .unwrap_or_else(|| "-".into());
                let mark = m.verdict.map(Verdict::mark).unwrap_or("");
                let line = format!(
                    "  {:<28} {:>24} {:>24} {:>+12.6} {:>9} {p:>8}  {mark}",
                    m.name,
                    mean_ci(&m.a),
                    mean_ci(&m.b),
                    m.delta,
                    relative(m)
                );
                let _ = writeln!(out, "{}", line.trim_end());
            }
        } else {
            for m in &shown {
                let mark = match m.verdict {
                    Some(Verdict::Regressed) => "  REGRESSED",
                    _ => "",
                };
                let _ = writeln!(
                    out,
                    "  {:<28} {:>12.6} {:>12.6} {:>+12.6} {:>9}{mark}",
                    m.name,
                    m.a.mean,
                    m.b.mean,
                    m.delta,
                    relative(m)
                );
            }
            if !shown.is_empty() {
                let which = if ra.complete < 2 && rb.complete < 2 {
                    "on each side"
                } else if ra.complete < 2 {
                    "in A"
                } else {
                    "in B"
                };
                let _ = writeln!(
                    out,
                    "  (one replicate {which}: significance cannot be judged, the tolerance rule alone decides; [train] repeats ≥ 2 on both sides gives a test)"
                );
            }
        }
        if timing && cell.train_seconds.0 != cell.train_seconds.1 {
            let _ = writeln!(
                out,
                "  train seconds {:>12.1} {:>12.1}",
                cell.train_seconds.0, cell.train_seconds.1
            );
        }
    }
    if same > 0 {
        let _ = writeln!(out, "{same} matched cell(s) identical");
    }
    let count = |k: &str| c.verdicts.get(k).copied().unwrap_or(0);
    if c.cells.iter().any(|cell| cell.significance_judged) {
        let _ = writeln!(
            out,
            "Welch's t-test at alpha {}: {} significant regression(s), {} significant improvement(s), {} change(s) not significant, {} within tolerance",
            c.alpha,
            count("regressed"),
            count("improved"),
            count("not_significant"),
            count("within_tolerance")
        );
    }
    if c.regressed {
        let _ = writeln!(out, "regression beyond tolerance {}", c.tolerance);
    }
    out
}

/// `seqlab diff`: prints the comparison (text or JSON); exit code 1 when a
/// watched metric regressed.
pub fn run(opts: &DiffOptions) -> anyhow::Result<i32> {
    for dir in [&opts.a, &opts.b] {
        anyhow::ensure!(dir.is_dir(), "{}: no such results folder", dir.display());
    }
    let comparison = compare(opts)?;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        print!("{}", render(&comparison, opts.timing));
    }
    Ok(i32::from(comparison.regressed))
}

/// The verdict of `a` against `b` as the diff would give it for one
/// watched metric (a convenience for tests and tools).
pub fn judge(name: &str, a: &[f64], b: &[f64], tolerance: Tolerance, alpha: f64) -> Verdict {
    let delta = stats::mean(b) - stats::mean(a);
    verdict(
        name,
        stats::mean(a),
        delta,
        stats::welch(a, b).as_ref(),
        tolerance,
        alpha,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_forms() {
        assert_eq!(Tolerance::parse("5%").unwrap(), Tolerance::Relative(0.05));
        assert_eq!(Tolerance::parse("0.01").unwrap(), Tolerance::Absolute(0.01));
        assert!(Tolerance::parse("abc").is_err());
        assert!(Tolerance::Relative(0.05).allows(2.0, 0.09));
        assert!(!Tolerance::Relative(0.05).allows(2.0, 0.11));
    }

    #[test]
    fn filters_match_suffixes() {
        assert!(watched("best.val_mae_degc", &[]));
        assert!(!watched("last.val_loss", &[]));
        assert!(watched("test.test_accuracy", &["test_accuracy".into()]));
        assert!(!watched("best.val_loss", &["val_mae_degc".into()]));
    }

    #[test]
    fn alpha_must_be_a_probability() {
        let new =
            |alpha| DiffOptions::new("a".into(), "b".into(), vec![], "0", alpha, false, false);
        assert!(new(0.05).is_ok());
        assert!(new(0.0).unwrap_err().to_string().contains("--alpha"));
        assert!(new(1.5).is_err());
    }
}
