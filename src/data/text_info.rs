//! `seqlab data info PATH` for a text collection (a class-per-subfolder
//! folder, its `.tar.gz`, or a CSV / TSV with text and label columns):
//! classes with their counts, document lengths in words (percentiles), and
//! the vocabulary — distinct words and the share of word occurrences that a
//! few `max_features` keep. Read only, nothing written.
use super::text_read::{is_table, read_collection, Columns};
use super::tokenize::{normalised_words, words};
use anyhow::Result;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// `max_features` values whose coverage is reported.
pub const MAX_FEATURES: [usize; 4] = [1_000, 5_000, 10_000, 20_000];

/// Whether `path` looks like a text collection rather than a table: a
/// folder, a `.tar.gz`, or a CSV / TSV when text and label columns are named.
pub fn is_text(path: &Path, columns_named: bool) -> bool {
    path.is_dir()
        || path.to_string_lossy().ends_with(".tar.gz")
        || path.to_string_lossy().ends_with(".tgz")
        || (columns_named && is_table(path))
}

/// The report, as printed.
pub fn text_info(path: &Path, text_column: &str, label_column: &str) -> Result<String> {
    let c = read_collection(
        path,
        Columns {
            text: text_column,
            label: label_column,
        },
    )?;
    let mut out = String::new();
    let _ = writeln!(out, "{}: {} documents", path.display(), c.docs.len());
    if c.lossy > 0 {
        let _ = writeln!(
            out,
            "not valid UTF-8 (decoded lossily): {} document(s) or cell(s)",
            c.lossy
        );
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &c.docs {
        *counts.entry(d.label.as_str()).or_insert(0) += 1;
    }
    let _ = writeln!(
        out,
        "classes: {} (sorted: class id order when inferred)",
        counts.len()
    );
    for (label, n) in &counts {
        let _ = writeln!(
            out,
            "  {label:<20} {n:>8}  {:>5.1}%",
            100.0 * *n as f64 / c.docs.len().max(1) as f64
        );
    }
    let normalised: Vec<String> = c
        .docs
        .par_iter()
        .map(|d| normalised_words(&d.text))
        .collect();
    let mut lengths: Vec<usize> = normalised.iter().map(|n| words(n).count()).collect();
    lengths.sort_unstable();
    let pct = |p: f64| lengths[((lengths.len() - 1) as f64 * p).round() as usize];
    if !lengths.is_empty() {
        let _ = writeln!(
            out,
            "length in words (lower_and_strip_punctuation): min {}, p50 {}, p90 {}, p95 {}, p99 {}, max {}",
            lengths[0],
            pct(0.5),
            pct(0.9),
            pct(0.95),
            pct(0.99),
            lengths[lengths.len() - 1]
        );
    }
    let mut freq: HashMap<&str, u64> = HashMap::new();
    for n in &normalised {
        for w in words(n) {
            *freq.entry(w).or_insert(0) += 1;
        }
    }
    let mut ranked: Vec<u64> = freq.values().copied().collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    let total: u64 = ranked.iter().sum();
    let _ = writeln!(
        out,
        "vocabulary: {} distinct words, {total} occurrences",
        ranked.len()
    );
    for mf in MAX_FEATURES {
        // ids 0, 1, 2 are reserved: max_features keeps max_features - 3 words
        let kept = mf.saturating_sub(3).min(ranked.len());
        let covered: u64 = ranked[..kept].iter().sum();
        let _ = writeln!(
            out,
            "  max_features = {mf:>6}: {kept:>6} words kept, {:>5.1}% of occurrences in vocabulary",
            100.0 * covered as f64 / total.max(1) as f64
        );
    }
    Ok(out)
}
