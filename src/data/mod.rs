//! The `data` stage: from files on disk (or a download) to batches of tensors
//! on the run's device.
//!
//! Jena: CSV → [`JenaTable`] → normalised on the training rows → one
//! `(rows, 14)` tensor on the device → [`Windows`] (the book's generator).
//! Any table (`source = "csv"`): CSV / TSV / `.csv.gz` / `.parquet` → [`Table`] →
//! missing cells, splits, normalisation, valid window ends → [`Windows`]
//! (see `series`). IMDB: archive → reviews → tokens → padded ids (cached on
//! disk) → [`TokenBatches`]. Any text collection (`source = "text"`): the
//! same tokenizer, vocabulary and padding (see `text`), cached on disk too
//! (`text_cache`) → [`TokenBatches`]. The trainer sees only [`prepare`] and [`Batcher`].
pub mod archive;
pub mod bench;
pub mod book;
pub mod describe;
pub mod download;
pub mod fetch;
pub mod imdb;
pub mod imdb_cache;
pub mod jena;
pub mod normalise;
pub mod pad;
pub mod parquet_table;
pub mod preprocess;
pub mod reviews;
pub mod series;
pub mod synth;
pub mod table;
pub mod text;
pub mod text_cache;
pub mod text_info;
pub mod text_read;
pub mod text_state;
pub mod timestamp;
pub mod token_batches;
pub mod tokenize;
pub mod vocab;
pub mod window;

pub use bench::{bench_batches, BenchReport};
pub use fetch::{data_dir, fetch_all, info};
pub use jena::{read_csv, JenaTable};
pub use normalise::Normaliser;
pub use preprocess::Preprocess;
pub use synth::write_synthetic_jena;
pub use table::Table;
pub use token_batches::TokenBatches;
pub use window::{RowSelector, WindowSpec, Windows};

use crate::config::{DataSpec, ImdbData, JenaData, TextData};
use anyhow::{Context, Result};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use tch::{Device, Tensor};

/// The three splits, ready to batch, and what the model needs to know.
#[derive(Debug)]
pub struct Prepared {
    pub train: Batcher,
    pub val: Batcher,
    pub test: Batcher,
    /// Jena: the target column's std (to report MAE in °C) and its index; None for IMDB
    pub target_std: Option<f64>,
    pub target_column: Option<usize>,
    /// The targets' columns among the model's inputs (for the naive baseline).
    pub target_inputs: Vec<usize>,
    /// Metrics in the targets' own units (`mae_<suffix>`), one per target.
    pub units: Vec<TargetUnit>,
    /// per-sample input shape without batch: Jena (lookback/step, 14 features); IMDB (maxlen,) token ids
    pub input_time: usize,
    pub input_features: Option<usize>,
    /// What a trained model needs to read new rows (tables only).
    pub preprocess: Option<Preprocess>,
    /// The class list and vocabulary (text collections only).
    pub text: Option<TextOutputs>,
}

/// What a text collection writes into the cell folder.
#[derive(Debug, Clone)]
pub struct TextOutputs {
    /// Class names in id order.
    pub classes: Vec<String>,
    /// `vocab.txt`: line `i` is token id `i`.
    pub vocab_txt: String,
    /// `text.toml`: classes and encoding settings.
    pub text_toml: String,
    /// Whether to write `confusion.csv` (one more pass over the test split).
    pub confusion: bool,
}

/// A target whose metrics are also reported in its own units: the
/// normalised MAE × `scale` (MSE × `scale²`), named `mae_<suffix>`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetUnit {
    /// The target's column name.
    pub name: String,
    pub suffix: String,
    /// Original units: `x = x' · scale + shift`.
    pub scale: f64,
    pub shift: f64,
    /// The target's index in the last output dimension; `None`: the only target.
    pub column: Option<usize>,
}

/// Batches of one split.
#[derive(Debug)]
pub enum Batcher {
    /// Windows of a table (Jena or any CSV).
    Series(Windows),
    Imdb(TokenBatches),
}

impl Batcher {
    /// next batch on the device: x (B,T,F) f32 for Jena, (B,maxlen) i64 for IMDB; y (B,1) f32
    pub fn next_batch(&mut self, rng: &mut ChaCha8Rng) -> (Tensor, Tensor) {
        match self {
            Batcher::Series(w) => w.next_batch(rng),
            Batcher::Imdb(t) => t.next_batch(rng),
        }
    }

    /// number of batches in one full pass (book's val_steps/test_steps formula for Jena, ceil(n/batch) for IMDB)
    pub fn full_pass_steps(&self) -> usize {
        match self {
            Batcher::Series(w) => w.rows.full_pass_steps(),
            Batcher::Imdb(t) => t.full_pass_steps(),
        }
    }

    /// Where the batcher stands between two batches (see [`SamplerState`]).
    pub fn sampler_state(&self) -> SamplerState {
        match self {
            Batcher::Series(w) => w.rows.state(),
            Batcher::Imdb(t) => t.state(),
        }
    }

    /// Puts the batcher where [`sampler_state`](Self::sampler_state) found
    /// it; a state that does not fit this batcher (read from an untrusted
    /// file) is an error and changes nothing.
    pub fn restore_sampler(&mut self, state: &SamplerState) -> Result<()> {
        match self {
            Batcher::Series(w) => w.rows.restore(state),
            Batcher::Imdb(t) => t.restore(state),
        }
    }

    /// restart a sequential batcher at its first row (validation at every epoch starts from the beginning, as a fresh Keras generator does)
    pub fn reset(&mut self) {
        match self {
            Batcher::Series(w) => w.rows.reset(),
            Batcher::Imdb(t) => t.reset(),
        }
    }
}

/// The host-side position of a batcher, for checkpoints: the next row or
/// index of a pass and the current pass's order (empty when the batcher
/// has none). With the random generator's state it decides every later batch.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplerState {
    pub position: usize,
    pub order: Vec<usize>,
}

impl SamplerState {
    /// Checks that `order` is empty or a permutation of `0..n` and that
    /// `position` is at most `limit`.
    pub fn check(&self, n: usize, limit: usize) -> Result<()> {
        if self.position > limit {
            anyhow::bail!("sampler position {} is past {limit}", self.position);
        }
        if self.order.is_empty() {
            return Ok(());
        }
        if self.order.len() != n {
            anyhow::bail!(
                "sampler order has {} entries, the split {n}",
                self.order.len()
            );
        }
        let mut seen = vec![false; n];
        for &i in &self.order {
            if i >= n || std::mem::replace(&mut seen[i], true) {
                anyhow::bail!("sampler order is not a permutation of the split");
            }
        }
        Ok(())
    }
}

/// Loads (downloading if needed) and prepares the data a run's config asks for.
pub fn prepare(spec: &DataSpec, device: Device) -> Result<Prepared> {
    let dir = data_dir();
    match spec {
        DataSpec::Csv(c) => series::prepare(c, device),
        // The Jena preset: the book's table with the book generator's rules.
        DataSpec::Jena(j) => {
            let path = fetch::locate_jena(&j.path, &dir)?;
            jena::check_header(&path)?;
            let csv = jena::as_table(j, &path.display().to_string())?;
            series::prepare(&csv, device).with_context(|| format!("preparing {}", path.display()))
        }
        DataSpec::Imdb(i) => {
            let source = fetch::locate_imdb(&i.path, &dir)?;
            prepare_imdb(i, &source, device)
        }
        DataSpec::Text(t) => prepare_text(t, device),
    }
}

/// Jena batchers from a table already read (the preset's rules, see
/// `book`): train shuffled (rows with replacement), validation and test
/// sequential.
pub fn prepare_jena(cfg: &JenaData, table: &JenaTable, device: Device) -> Result<Prepared> {
    let csv = jena::as_table(cfg, "")?;
    let t = table::Table {
        columns: table.columns.clone(),
        values: table.values.clone(),
        rows: table.rows,
        times: None,
        series: vec![(String::new(), 0..table.rows)],
        lines: (2..table.rows as u64 + 2).collect(),
        missing: 0,
    };
    book::prepare(&csv, &t, device)
}

/// The IMDB preset: a text collection cut by Keras' `imdb.load_data` rule
/// (`split_rule = "keras_imdb"`, see `text`), the archive or folder located
/// (downloaded if needed) at `source`.
pub fn imdb_as_text(cfg: &ImdbData, source: &Path) -> TextData {
    TextData {
        path: source.display().to_string(),
        test_path: String::new(),
        text_column: String::new(),
        label_column: String::new(),
        classes: vec![],
        max_features: cfg.max_features,
        maxlen: cfg.maxlen,
        batch_size: cfg.batch_size,
        validation_split: cfg.validation_split,
        test_split: 0.2,
        padding: cfg.padding,
        truncating: cfg.truncating,
        standardize: crate::config::Standardize::LowerAndStripPunctuation,
        shuffle_seed: cfg.shuffle_seed,
        reverse: cfg.reverse,
        split_rule: crate::config::TextSplitRule::KerasImdb,
    }
}

/// IMDB batchers from an archive or unpacked folder (the preset, through the cache).
pub fn prepare_imdb(cfg: &ImdbData, source: &Path, device: Device) -> Result<Prepared> {
    prepare_text(&imdb_as_text(cfg, source), device)
}

/// Batchers over encoded token ids (IMDB and text collections alike):
/// training shuffled, validation and test in order.
fn token_batches(
    a: &imdb_cache::ImdbArrays,
    batch_size: usize,
    device: Device,
    text: Option<TextOutputs>,
) -> Prepared {
    let batches =
        |s, shuffle| Batcher::Imdb(TokenBatches::new(s, a.maxlen, batch_size, shuffle, device));
    Prepared {
        train: batches(&a.train, true),
        val: batches(&a.val, false),
        test: batches(&a.test, false),
        target_std: None,
        target_column: None,
        target_inputs: vec![],
        units: vec![],
        input_time: a.maxlen,
        input_features: None,
        preprocess: None,
        text,
    }
}

/// Text-collection batchers: the same token batches as IMDB, the class ids
/// as labels (0/1 for two classes).
pub fn prepare_text(cfg: &TextData, device: Device) -> Result<Prepared> {
    let path = series::resolve_path(&cfg.path);
    let test_path = (!cfg.test_path.is_empty()).then(|| series::resolve_path(&cfg.test_path));
    let encoded = text::load(cfg, &path, test_path.as_deref(), &data_dir().join(".cache"))?.text;
    let outputs = TextOutputs {
        classes: encoded.classes.clone(),
        vocab_txt: encoded.vocab_txt(),
        text_toml: encoded.text_toml(cfg),
        // The book's IMDB cells keep their time: no extra pass over the test reviews.
        confusion: cfg.split_rule != crate::config::TextSplitRule::KerasImdb,
    };
    Ok(token_batches(
        &encoded.arrays,
        cfg.batch_size,
        device,
        Some(outputs),
    ))
}
