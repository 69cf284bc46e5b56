//! `seqlab predict` and `seqlab evaluate`: a complete cell's model on new
//! rows of a table.
//!
//! cell folder → [`Trained`] (config checked against its content id,
//! preprocessing state) → model built from the config, weights loaded and
//! checked ([`load`]) → the new file read with the cell's columns and
//! normalised with the saved statistics ([`rows`]) → one window's forecast
//! or a backtest ([`forecast`]), or the metrics of a split ([`evaluate`]).
pub mod command;
pub mod evaluate;
pub mod forecast;
pub mod rows;
mod tail;
pub mod text;

use crate::config::{Config, CsvData, DataSpec};
use crate::data::series::metric_suffix;
use crate::data::{Preprocess, TargetUnit};
use crate::model::Model;
use crate::results::{weights, Trained};
use anyhow::{bail, Result};
use std::path::Path;
use tch::Device;

/// A trained table model, ready to forecast.
pub struct Loaded {
    pub trained: Trained,
    pub model: Model,
    /// The cell's data section (`source = "csv"`).
    pub table: CsvData,
    pub preprocess: Preprocess,
    pub device: Device,
}

impl Loaded {
    pub fn config(&self) -> &Config {
        &self.trained.config
    }

    /// Indices of the model's input columns among `preprocess.columns`.
    pub fn feature_columns(&self) -> Vec<usize> {
        index_of(&self.preprocess.columns, &self.preprocess.features)
    }

    /// Indices of the targets among `preprocess.columns`.
    pub fn target_columns(&self) -> Vec<usize> {
        index_of(&self.preprocess.columns, &self.preprocess.targets)
    }

    /// The targets with their saved statistics, as training reported them.
    pub fn units(&self) -> Vec<TargetUnit> {
        let p = &self.preprocess;
        self.target_columns()
            .into_iter()
            .enumerate()
            .map(|(k, c)| TargetUnit {
                name: p.columns[c].clone(),
                suffix: metric_suffix(&p.columns[c]),
                scale: p.scale[c],
                shift: p.shift[c],
                column: (p.targets.len() > 1).then_some(k),
            })
            .collect()
    }
}

fn index_of(all: &[String], names: &[String]) -> Vec<usize> {
    names
        .iter()
        .filter_map(|n| all.iter().position(|c| c == n))
        .collect()
}

/// Opens the cell at `dir`, rebuilds its model on `device` (default: the
/// cell's `train.device`) and loads its weights.
pub fn load(dir: &Path, device: Option<&str>) -> Result<Loaded> {
    load_table(Trained::open(dir)?, device)
}

/// [`load`] for a cell already opened.
pub fn load_table(trained: Trained, device: Option<&str>) -> Result<Loaded> {
    let dir = trained.dir.clone();
    let dir = dir.as_path();
    let shown = dir.display();
    let table = match &trained.config.data {
        DataSpec::Csv(table) => table.as_ref().clone(),
        DataSpec::Jena(j) => jena_table(j)?,
        DataSpec::Text(_) | DataSpec::Imdb(_) => {
            bail!("{shown}: a text classifier; it reads texts (--text or --input), not tables")
        }
    };
    let Some(preprocess) = trained.preprocess.clone() else {
        bail!(
            "{shown}: no {} (the cell ran before the preprocessing state was kept); rerun it",
            crate::results::PREPROCESS
        );
    };
    check_preprocess(&preprocess, dir)?;
    if table.normalize_per_series && preprocess.series.len() > 1 {
        bail!("{shown}: the cell normalised each series on its own (data.normalize_per_series), and only the first series' statistics are kept; predict cannot read its series the same way");
    }
    let device = crate::model::device(device.unwrap_or(&trained.config.train.device))?;
    // Build from the saved column lists, so the training file need not exist.
    let mut config = trained.config.clone();
    if let DataSpec::Csv(c) = &mut config.data {
        c.features = preprocess.features.clone();
    }
    let target_inputs: Vec<usize> = preprocess
        .targets
        .iter()
        .map(|t| preprocess.features.iter().position(|f| f == t))
        .collect::<Option<Vec<usize>>>()
        .unwrap_or_default();
    let model = Model::build(&config, device, &target_inputs)?;
    weights::load_into(&model.vs, &trained.weights()?)?;
    Ok(Loaded {
        trained,
        model,
        table,
        preprocess,
        device,
    })
}

/// The Jena preset read as the table it is, its windows cut by the targets
/// rule (a backtest or evaluation names windows by their target rows).
fn jena_table(j: &crate::config::JenaData) -> Result<CsvData> {
    let mut t = crate::data::jena::as_table(j, "")?;
    t.split_rule = crate::config::SplitRule::Targets;
    Ok(t)
}

/// The saved state must be self-consistent before it is trusted.
fn check_preprocess(p: &Preprocess, dir: &Path) -> Result<()> {
    let file = dir.join(crate::results::PREPROCESS);
    let n = p.columns.len();
    if p.shift.len() != n || p.scale.len() != n {
        bail!(
            "{}: {n} columns but {} shifts and {} scales; the file is damaged — rerun the cell",
            file.display(),
            p.shift.len(),
            p.scale.len()
        );
    }
    if let Some(c) = p.scale.iter().position(|s| !s.is_finite() || *s == 0.0) {
        bail!(
            "{}: column {:?} has scale {}; the file is damaged — rerun the cell",
            file.display(),
            p.columns[c],
            p.scale[c]
        );
    }
    for name in p.features.iter().chain(&p.targets) {
        if !p.columns.contains(name) {
            bail!("{}: {name:?} is a feature or target but not among the columns; the file is damaged — rerun the cell", file.display());
        }
    }
    if p.targets.is_empty() {
        bail!(
            "{}: no targets; the file is damaged — rerun the cell",
            file.display()
        );
    }
    Ok(())
}
