//! The preprocessing state of a table run, written as `preprocess.toml` in
//! the cell's folder: column order, features and targets, the normalisation
//! fitted on the training rows, frequency and last training timestamp —
//! what a trained model needs to read new rows the same way.
use crate::config::Normalize;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// The table's numeric columns as read, in order.
    pub columns: Vec<String>,
    /// The model's input columns, in order.
    pub features: Vec<String>,
    pub targets: Vec<String>,
    pub normalize: Normalize,
    /// Per column of `columns`: `x' = (x - shift) / scale` (mean/std, or min/range).
    pub shift: Vec<f64>,
    pub scale: Vec<f64>,
    /// Time between rows (`10min`, `1h`), when known.
    pub freq: Option<String>,
    pub last_train_time: Option<String>,
    /// Series names (long format), empty for one series.
    pub series: Vec<String>,
    /// Windows per split: train, val, test (0 when the split is drawn by the book's generator).
    pub windows: [usize; 3],
}

impl Preprocess {
    /// The TOML text of `preprocess.toml`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}
