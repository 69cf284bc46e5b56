//! The results folder format: the files of a cell folder and reading a
//! complete cell back (its config, summary, preprocessing state and
//! weights) — what `predict` and `evaluate` start from.
pub mod baseline;
pub mod cell;
pub mod checkpoint;
pub mod store;
pub mod weights;

pub use cell::Trained;

/// The resolved config plus `[run]` (content id, versions, device).
pub const CONFIG: &str = "config.toml";
/// Status, best/last/test metrics; written last: a cell is complete once it exists.
pub const SUMMARY: &str = "summary.toml";
/// Normalisation statistics, columns, targets, frequency (tables).
pub const PREPROCESS: &str = "preprocess.toml";
/// The trained weights (`train.save_weights`, on by default).
pub const WEIGHTS: &str = "weights.safetensors";
/// Evaluations of the cell on other files or splits: `eval/<name>/`.
pub const EVAL: &str = "eval";
