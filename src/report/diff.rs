//! `seqlab diff A B`: match cells of two results folders by experiment and
//! cell name, show config differences key by key and metric deltas, and fail
//! (exit 1) when a watched metric got worse beyond the tolerance.
use super::summary::{collect, Row};
use crate::cli::DiffArgs;
use std::collections::BTreeMap;
use std::path::Path;

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

/// Accuracy-like metrics improve upwards, losses and errors downwards.
pub fn higher_is_better(name: &str) -> bool {
    name.contains("accuracy")
}

/// `section.key` → value for every float of a summary's best/last/test tables.
fn metrics(dir: &Path) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if let Some(s) = crate::run::store::read_summary(dir) {
        for section in ["best", "last", "test"] {
            if let Some(t) = s.get(section).and_then(|v| v.as_table()) {
                for (k, v) in t {
                    if let Some(f) = v.as_float() {
                        out.insert(format!("{section}.{k}"), f);
                    }
                }
            }
        }
    }
    out
}

/// Dotted key → value text of a config.toml, `[run]` (versions, device) included.
fn flat_config(dir: &Path) -> BTreeMap<String, String> {
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
    if let Some(v) = std::fs::read_to_string(dir.join("config.toml"))
        .ok()
        .and_then(|t| toml::from_str::<toml::Value>(&t).ok())
    {
        walk("", &v, &mut out);
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

/// The diff as text, and whether anything regressed beyond tolerance.
pub fn compare(
    a: &Path,
    b: &Path,
    filters: &[String],
    tolerance: Tolerance,
    timing: bool,
) -> anyhow::Result<(String, bool)> {
    let key = |r: &Row| format!("{}/{}", r.experiment, r.cell);
    let rows_a: BTreeMap<String, Row> = collect(a)?.into_iter().map(|r| (key(&r), r)).collect();
    let rows_b: BTreeMap<String, Row> = collect(b)?.into_iter().map(|r| (key(&r), r)).collect();
    let mut out = String::new();
    let mut regressed = false;
    for k in rows_a.keys().filter(|k| !rows_b.contains_key(*k)) {
        out.push_str(&format!("only in {}: {k}\n", a.display()));
    }
    for k in rows_b.keys().filter(|k| !rows_a.contains_key(*k)) {
        out.push_str(&format!("only in {}: {k}\n", b.display()));
    }
    let mut same = 0;
    for (k, ra) in &rows_a {
        let Some(rb) = rows_b.get(k) else { continue };
        let whole = out;
        out = String::new();
        if ra.status != rb.status {
            out.push_str(&format!("  status: {} → {}\n", ra.status, rb.status));
        }
        let (ca, cb) = (flat_config(&ra.dir), flat_config(&rb.dir));
        for key in ca
            .keys()
            .chain(cb.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let (va, vb) = (ca.get(key), cb.get(key));
            if va != vb {
                let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(absent)".into());
                out.push_str(&format!("  config {key}: {} → {}\n", show(va), show(vb)));
            }
        }
        let (ma, mb) = (metrics(&ra.dir), metrics(&rb.dir));
        for (name, va) in &ma {
            let Some(vb) = mb.get(name) else { continue };
            let delta = vb - va;
            let rel = if *va != 0.0 {
                format!("{:+.2}%", 100.0 * delta / va.abs())
            } else {
                "-".into()
            };
            let worsening = if higher_is_better(name) {
                -delta
            } else {
                delta
            };
            let mark =
                if watched(name, filters) && worsening > 0.0 && !tolerance.allows(*va, worsening) {
                    regressed = true;
                    "  REGRESSED"
                } else {
                    ""
                };
            if delta != 0.0 || !mark.is_empty() {
                out.push_str(&format!(
                    "  {name:<28} {va:>12.6} {vb:>12.6} {delta:>+12.6} {rel:>9}{mark}\n"
                ));
            }
        }
        if timing && (ra.train_seconds - rb.train_seconds).abs() > 0.0 {
            out.push_str(&format!(
                "  train seconds {:>12.1} {:>12.1}\n",
                ra.train_seconds, rb.train_seconds
            ));
        }
        if out.is_empty() {
            same += 1;
            out = whole;
        } else {
            out = format!("{whole}{k}\n{out}");
        }
    }
    if same > 0 {
        out.push_str(&format!("{same} matched cell(s) identical\n"));
    }
    Ok((out, regressed))
}

pub fn run(args: &DiffArgs) -> anyhow::Result<i32> {
    for dir in [&args.a, &args.b] {
        anyhow::ensure!(dir.is_dir(), "{}: no such results folder", dir.display());
    }
    let tolerance = Tolerance::parse(&args.tolerance)?;
    let (text, regressed) = compare(&args.a, &args.b, &args.metric, tolerance, args.timing)?;
    print!("{text}");
    if regressed {
        println!("regression beyond tolerance {}", args.tolerance);
    }
    Ok(i32::from(regressed))
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
}
