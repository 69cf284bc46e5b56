//! The value a baseline experiment sets for other cells' figures: its best
//! validation MAE in the targets' units (or its best validation loss), read
//! from its complete results — the mean over its replicates when it has several.
use super::store;
use std::path::Path;

/// `(experiment, value)` of the baseline named `name` under `root`, or
/// `None` when it has no complete result yet.
pub fn value(root: &Path, name: &str) -> Option<(String, f64)> {
    if name.is_empty() {
        return None;
    }
    let dir = store::cell_dir(root, name, "default");
    if let Some(s) = store::read_summary(&dir) {
        return Some((name.to_string(), best(&s)?));
    }
    let mut replicates: Vec<(u64, f64)> = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let seed = crate::config::replicate_seed(e.file_name().to_str()?)?;
            Some((seed, best(&store::read_summary(&e.path())?)?))
        })
        .collect();
    if replicates.is_empty() {
        return None;
    }
    replicates.sort_by_key(|(seed, _)| *seed);
    let mean = replicates.iter().map(|(_, v)| v).sum::<f64>() / replicates.len() as f64;
    Some((name.to_string(), mean))
}

fn best(summary: &toml::Table) -> Option<f64> {
    let best = summary.get("best")?.as_table()?;
    best.get("val_mae_degc")
        .or_else(|| best.get("val_loss"))?
        .as_float()
}
