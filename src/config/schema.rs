//! The experiment file's schema: serde types with Keras names, every default
//! explicit so that a resolved config records everything that shaped a run.
//!
//! Unknown keys are errors everywhere (`deny_unknown_fields`); `seqlab schema`
//! prints the JSON Schema derived from these types.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One experiment file after layering. `extends` and `grid` are read from the
/// file but never written into a cell's resolved config.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Path of a base file whose values this file overrides (relative to this file).
    #[serde(default, skip_serializing)]
    pub extends: Option<String>,
    pub experiment: Experiment,
    pub data: DataSpec,
    #[serde(default)]
    pub train: TrainSpec,
    #[serde(default)]
    pub model: ModelSpec,
    #[serde(default)]
    pub layers: Vec<LayerSpec>,
    /// Dotted key paths mapped to lists of values: one run per combination.
    #[serde(default, skip_serializing)]
    pub grid: Grid,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    #[serde(default)]
    pub title: String,
    /// The book figure or listing this experiment reproduces.
    #[serde(default)]
    pub figure: String,
    #[serde(default)]
    pub notes: String,
    /// Name of an experiment whose best validation value is drawn as a
    /// horizontal reference line in this experiment's figure.
    #[serde(default)]
    pub baseline: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSpec {
    Jena(JenaData),
    Imdb(ImdbData),
    Csv(Box<CsvData>),
    Text(Box<TextData>),
}

impl DataSpec {
    pub fn batch_size(&self) -> usize {
        match self {
            DataSpec::Jena(j) => j.batch_size,
            DataSpec::Imdb(i) => i.batch_size,
            DataSpec::Csv(c) => c.batch_size,
            DataSpec::Text(t) => t.batch_size,
        }
    }
    pub fn path(&self) -> &str {
        match self {
            DataSpec::Jena(j) => &j.path,
            DataSpec::Imdb(i) => &i.path,
            DataSpec::Csv(c) => &c.path,
            DataSpec::Text(t) => &t.path,
        }
    }
}

/// Any time-series table (`source = "csv"`): a CSV, TSV or `.csv.gz` file
/// with one row per time step (and optionally several series, long format).
///
/// A window ending before row `t` has inputs rows `t - lookback, …, t - 1`
/// (every `step`-th) and targets rows `t + delay, …, t + delay + horizon - 1`.
/// A split names the rows where targets lie; inputs may reach back into the
/// rows before it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvData {
    /// The table: `.csv`, `.tsv`, `.txt` or `.csv.gz`. Relative paths are
    /// taken from the directory `seqlab` runs in.
    pub path: String,
    /// Field delimiter; empty: detected among `,`, `;` and tab from the header.
    #[serde(default)]
    pub delimiter: String,
    /// Column of timestamps (ISO 8601, `dd.mm.yyyy HH:MM:SS`, or `time_format`); empty: none.
    #[serde(default)]
    pub time_column: String,
    /// strftime-style format of `time_column` (e.g. `%d/%m/%Y %H:%M`); empty: detected.
    #[serde(default)]
    pub time_format: String,
    /// Input columns, in order; empty: every numeric column but the time and series columns.
    #[serde(default)]
    pub features: Vec<String>,
    /// Columns to forecast (inside or outside the features).
    pub targets: Vec<String>,
    /// Column naming the series of each row (long format); empty: one series.
    #[serde(default)]
    pub series_column: String,
    /// Normalisation statistics per series instead of over all series.
    #[serde(default)]
    pub normalize_per_series: bool,
    /// Rows of history in a sample.
    pub lookback: usize,
    /// Keep one row in `step` inside the window.
    #[serde(default = "d_one")]
    pub step: usize,
    /// Rows between the window's end (`t`) and the first target row.
    #[serde(default)]
    pub delay: usize,
    /// Consecutive target steps; a sample's target is (horizon, targets), or (targets) when 1.
    #[serde(default = "d_one")]
    pub horizon: usize,
    /// Distance in rows between consecutive validation/test windows.
    #[serde(default = "d_one")]
    pub stride: usize,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// `random`: training windows drawn at random with replacement (the
    /// book's generator); `epoch`: every training window once per epoch, in
    /// a seeded shuffled order.
    #[serde(default)]
    pub train_order: TrainOrder,
    pub splits: CsvSplits,
    #[serde(default)]
    pub normalize: Normalize,
    /// Expected time between rows (`10min`, `1h`, `1d`, `30s`); empty: inferred from the timestamps.
    #[serde(default)]
    pub freq: String,
    /// A missing or non-numeric cell: `error`, or `ffill`, `interpolate`, `drop_windows`.
    #[serde(default)]
    pub missing: Missing,
    /// Flip each sample along time.
    #[serde(default)]
    pub reverse: bool,
    /// `targets` (default): a window belongs to the split holding its target
    /// rows. `book`: the book generator's rules (Deep Learning with Python,
    /// listing 6.33) — see [`SplitRule::Book`].
    #[serde(default, skip_serializing_if = "SplitRule::is_targets")]
    pub split_rule: SplitRule,
    /// The unit metrics of a single target are named `mae_<unit_suffix>`;
    /// empty: from the column's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit_suffix: String,
}

/// Which windows a split holds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SplitRule {
    /// Windows whose target rows all lie in the split (inputs may reach back).
    #[default]
    Targets,
    /// The book's generator: a split `[min, max]` of rows holds the windows
    /// whose current row `t` lies in `[min + lookback, min(max, rows − delay − 1))`
    /// (the target may lie past `max`); training rows are drawn uniformly with
    /// replacement; a sequential pass wraps before a batch would reach `max`
    /// and has `(max − min − lookback) // batch_size` batches; the
    /// normalisation is fitted on rows `[0, train max)`; the time column's
    /// order is not checked. Needs row splits, one target, one series,
    /// horizon 1, stride 1.
    Book,
}

impl SplitRule {
    pub fn is_targets(&self) -> bool {
        *self == SplitRule::Targets
    }
}

/// How training windows are drawn.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TrainOrder {
    #[default]
    Random,
    Epoch,
}

/// Per-column scaling fitted on the training rows.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// `(x - mean) / std`, population std (ddof 0).
    #[default]
    Standard,
    /// `(x - min) / (max - min)`.
    Minmax,
    None,
}

/// What to do with a missing or non-numeric cell.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Stop with the file, line and column.
    #[default]
    Error,
    /// Carry the last value of the same series forward.
    Ffill,
    /// Linear interpolation between the neighbours in the same series.
    Interpolate,
    /// Keep the gap; drop every window that touches it.
    DropWindows,
}

/// The three splits of a table, all in one of three forms: row ranges
/// `[start, end)`, fractions of the rows (in order), or timestamp ranges
/// `["2016-07-01", "2017-07-01"]` (half-open).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvSplits {
    pub train: SplitRange,
    pub val: SplitRange,
    pub test: SplitRange,
}

/// One split: `[start, end)` rows, a fraction, or `[from, to)` timestamps.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum SplitRange {
    Rows([usize; 2]),
    Fraction(f64),
    Times([String; 2]),
}

/// Jena climate windows, with the semantics of the book's `generator`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JenaData {
    /// CSV file; empty: `jena_climate_2009_2016.csv` in the data directory.
    #[serde(default)]
    pub path: String,
    /// How many rows back each sample starts (1440 = 10 days of 10-minute rows).
    #[serde(default = "d_lookback")]
    pub lookback: usize,
    /// Keep one row in `step` inside the window (6 = hourly).
    #[serde(default = "d_step")]
    pub step: usize,
    /// How many rows ahead the target lies (144 = 24 hours).
    #[serde(default = "d_delay")]
    pub delay: usize,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default)]
    pub splits: Splits,
    /// Target column by its header name.
    #[serde(default = "d_target")]
    pub target: String,
    /// Flip each sample along time (book §6.3.8).
    #[serde(default)]
    pub reverse: bool,
}

fn d_lookback() -> usize {
    1440
}
fn d_step() -> usize {
    6
}
fn d_delay() -> usize {
    144
}
fn d_batch() -> usize {
    128
}
fn d_target() -> String {
    "T (degC)".into()
}

/// Row ranges `[min_index, max_index]` as the book's generators take them.
/// A `max_index` past the data is clamped to `rows - delay - 1`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Splits {
    pub train: [usize; 2],
    pub val: [usize; 2],
    pub test: [usize; 2],
}

impl Default for Splits {
    fn default() -> Self {
        Splits {
            train: [0, 200_000],
            val: [200_001, 300_000],
            test: [300_001, 420_551],
        }
    }
}

/// IMDB reviews as Keras' `imdb.load_data` + `pad_sequences` shape them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImdbData {
    /// `aclImdb_v1.tar.gz` or an unpacked `aclImdb/` folder; empty: the data directory's.
    #[serde(default)]
    pub path: String,
    /// Vocabulary size, indices 0 (padding), 1 (start), 2 (out of vocabulary) included.
    #[serde(default = "d_max_features")]
    pub max_features: usize,
    #[serde(default = "d_maxlen")]
    pub maxlen: usize,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Fraction of the (shuffled) training reviews held out for validation, from the end.
    #[serde(default = "d_validation_split")]
    pub validation_split: f64,
    /// `pre` or `post`, as Keras' `pad_sequences`.
    #[serde(default = "d_pre")]
    pub padding: Side,
    #[serde(default = "d_pre")]
    pub truncating: Side,
    /// Reverse each review's word order (book §6.3.8).
    #[serde(default)]
    pub reverse: bool,
    /// Seed of the shuffle before the validation split (Keras uses 113).
    #[serde(default = "d_shuffle_seed")]
    pub shuffle_seed: u64,
}

/// Any labelled text collection (`source = "text"`): a folder with one
/// subfolder of `.txt` files per class (Keras' `text_dataset_from_directory`
/// layout), a `.tar.gz` of such a folder, a CSV / TSV file with a text and
/// a label column, or a JSON-lines file (`.jsonl`) with a text and a label
/// key. Tokenised, ranked and padded as IMDB is (0 padding, 1 start, 2 out of
/// vocabulary, words from 3 by frequency in the training split).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextData {
    /// A class-per-subfolder folder, its `.tar.gz`, or a `.csv` / `.tsv` / `.jsonl` file.
    pub path: String,
    /// The test collection (same layout); empty: `test_split` of `path` is held out.
    #[serde(default)]
    pub test_path: String,
    /// CSV / TSV / JSON lines: the column (key) holding the text.
    #[serde(default)]
    pub text_column: String,
    /// CSV / TSV / JSON lines: the column (key) holding the class label.
    #[serde(default)]
    pub label_column: String,
    /// Class names in id order; empty: the labels found, sorted.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Vocabulary size, indices 0 (padding), 1 (start), 2 (out of vocabulary) included.
    #[serde(default = "d_max_features")]
    pub max_features: usize,
    #[serde(default = "d_maxlen")]
    pub maxlen: usize,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Fraction of the (shuffled) training documents held out for validation.
    #[serde(default = "d_validation_split")]
    pub validation_split: f64,
    /// Fraction of the (shuffled) collection held out for testing when `test_path` is empty.
    #[serde(default = "d_validation_split")]
    pub test_split: f64,
    /// `pre` or `post`, as Keras' `pad_sequences`.
    #[serde(default = "d_pre")]
    pub padding: Side,
    #[serde(default = "d_pre")]
    pub truncating: Side,
    /// Keras TextVectorization's names: `lower_and_strip_punctuation`, `lower` or `none`.
    #[serde(default)]
    pub standardize: Standardize,
    /// Seed of the shuffle before the splits.
    #[serde(default = "d_shuffle_seed")]
    pub shuffle_seed: u64,
    /// Reverse each document's ids before padding (the book's reversed IMDB).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reverse: bool,
    /// `shuffle` (default): splits as described above. `keras_imdb`: `path`
    /// is the Large Movie Review Dataset (`aclImdb/{train,test}/{pos,neg}`,
    /// its `.tar.gz` or folder) cut as Keras' `imdb.load_data` does — see
    /// [`TextSplitRule::KerasImdb`].
    #[serde(default, skip_serializing_if = "TextSplitRule::is_shuffle")]
    pub split_rule: TextSplitRule,
}

/// Which documents a text split holds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TextSplitRule {
    /// One seeded shuffle; the last fractions are test and validation.
    #[default]
    Shuffle,
    /// Keras' `imdb.load_data`: the archive's `train` and `test` reviews (in
    /// the reader's order: `pos` then `neg`, by id), the vocabulary ranked on
    /// every training review, one generator shuffling train then test, the
    /// last `validation_split` of the training reviews held out. The IMDB
    /// preset is this rule.
    KerasImdb,
}

impl TextSplitRule {
    pub fn is_shuffle(&self) -> bool {
        *self == TextSplitRule::Shuffle
    }
}

/// How text is standardised before splitting into words.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Standardize {
    /// Lowercase; words are runs of letters, digits and apostrophes (IMDB's tokenizer).
    #[default]
    LowerAndStripPunctuation,
    /// Lowercase; words are separated by whitespace.
    Lower,
    /// As written; words are separated by whitespace.
    None,
}

fn d_max_features() -> usize {
    10_000
}
fn d_maxlen() -> usize {
    500
}
fn d_validation_split() -> f64 {
    0.2
}
fn d_pre() -> Side {
    Side::Pre
}
fn d_shuffle_seed() -> u64 {
    113
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Pre,
    Post,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    /// Training batches per epoch; 0 means the book's default (Jena: 500,
    /// IMDB: one pass over the training split).
    #[serde(default)]
    pub steps_per_epoch: usize,
    /// Validation batches per epoch; 0 means the whole validation split.
    #[serde(default)]
    pub val_steps: usize,
    /// Test batches; 0 means the whole test split.
    #[serde(default)]
    pub test_steps: usize,
    #[serde(default)]
    pub optimizer: Optimizer,
    #[serde(default = "d_loss")]
    pub loss: Loss,
    /// Metrics besides the loss; empty means the loss' natural one
    /// (`mae` for regression, `accuracy` for binary cross-entropy).
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Replicates: run the cell this many times, replicate k (0 … repeats − 1)
    /// with seed `seed + k`, so replicate 0 is the run `repeats = 1` makes.
    /// Written into a resolved config only when above 1 (so it never changes
    /// the content id of a single run); each replicate's own config has
    /// `repeats = 1` and its own seed.
    #[serde(default = "d_repeats", skip_serializing_if = "is_one")]
    pub repeats: usize,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "d_device")]
    pub device: String,
    /// libtorch intra-op threads; 0 = chosen by the scheduler.
    #[serde(default)]
    pub threads: usize,
    #[serde(default = "d_true")]
    pub evaluate_test: bool,
    /// Stop after this many epochs without improvement of `monitor`; 0 = never.
    #[serde(default)]
    pub patience: usize,
    /// The metric watched for the best epoch and early stopping.
    #[serde(default = "d_monitor")]
    pub monitor: String,
    /// Evaluate the test split with the best epoch's weights.
    #[serde(default)]
    pub restore_best: bool,
    /// Keep the trained weights as `weights.safetensors` in the cell's
    /// folder (what `seqlab predict` and `seqlab evaluate` load). Not part
    /// of the content id: it changes what is kept, not what is computed.
    #[serde(default = "d_true")]
    pub save_weights: bool,
    /// The learning rate per epoch: `constant`, `halve_each_epoch`
    /// (lr·0.5^(epoch−1), the Informer/Autoformer scripts' "type1"), or
    /// `cosine` (lr·½(1 + cos(π·(epoch−1)/epochs))).
    #[serde(default, skip_serializing_if = "LrSchedule::is_constant")]
    pub lr_schedule: LrSchedule,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    #[default]
    Constant,
    HalveEachEpoch,
    Cosine,
}

impl LrSchedule {
    pub fn is_constant(&self) -> bool {
        *self == LrSchedule::Constant
    }

    /// The factor on the base learning rate in `epoch` (1-based) of `epochs`.
    pub fn factor(&self, epoch: usize, epochs: usize) -> f64 {
        let k = epoch.saturating_sub(1) as f64;
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::HalveEachEpoch => 0.5f64.powf(k),
            LrSchedule::Cosine => {
                0.5 * (1.0 + (std::f64::consts::PI * k / epochs.max(1) as f64).cos())
            }
        }
    }
}

fn d_epochs() -> usize {
    20
}
fn d_loss() -> Loss {
    Loss::Mae
}
fn d_seed() -> u64 {
    42
}
fn d_repeats() -> usize {
    1
}
fn is_one(n: &usize) -> bool {
    *n == 1
}
fn d_device() -> String {
    "auto".into()
}
fn d_true() -> bool {
    true
}
fn d_monitor() -> String {
    "val_loss".into()
}

impl Default for TrainSpec {
    fn default() -> Self {
        toml::from_str("").expect("TrainSpec defaults")
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    Mae,
    Mse,
    BinaryCrossentropy,
    /// Softmax from logits over the classes; targets are class ids.
    SparseCategoricalCrossentropy,
}

impl Loss {
    /// Whether the loss is computed from logits (the output's sigmoid or softmax stripped).
    pub fn from_logits(self) -> bool {
        matches!(
            self,
            Loss::BinaryCrossentropy | Loss::SparseCategoricalCrossentropy
        )
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Mae,
    Mse,
    Accuracy,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Mae => "mae",
            Metric::Mse => "mse",
            Metric::Accuracy => "accuracy",
        }
    }
}

/// Optimizers with Keras' defaults (not libtorch's).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum Optimizer {
    Rmsprop {
        #[serde(default = "d_lr")]
        lr: f64,
        #[serde(default = "d_rho")]
        rho: f64,
        #[serde(default = "d_eps")]
        epsilon: f64,
    },
    Adam {
        #[serde(default = "d_lr")]
        lr: f64,
        #[serde(default = "d_beta1")]
        beta_1: f64,
        #[serde(default = "d_beta2")]
        beta_2: f64,
        #[serde(default = "d_eps")]
        epsilon: f64,
    },
    Sgd {
        #[serde(default = "d_sgd_lr")]
        lr: f64,
        #[serde(default)]
        momentum: f64,
        #[serde(default)]
        nesterov: bool,
    },
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::Rmsprop {
            lr: d_lr(),
            rho: d_rho(),
            epsilon: d_eps(),
        }
    }
}

impl Optimizer {
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::Rmsprop { lr, .. }
            | Optimizer::Adam { lr, .. }
            | Optimizer::Sgd { lr, .. } => *lr,
        }
    }
}

fn d_lr() -> f64 {
    1e-3
}
fn d_sgd_lr() -> f64 {
    1e-2
}
fn d_rho() -> f64 {
    0.9
}
fn d_eps() -> f64 {
    1e-7
}
fn d_beta1() -> f64 {
    0.9
}
fn d_beta2() -> f64 {
    0.999
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// `layers` (the `[[layers]]` graph) or `naive_last` (predict the last
    /// observed target value: the book's common-sense baseline).
    #[serde(default)]
    pub kind: ModelKind,
    /// Name of the layer whose output is the model's; empty: the last layer.
    #[serde(default)]
    pub output: String,
    /// `keras` (glorot_uniform, orthogonal, zeros, unit forget bias) or `torch`.
    #[serde(default)]
    pub init: Init,
    /// Each column its own series through the layers: (batch, L, C) →
    /// (batch·C, L, 1) → … → (batch, H, C), one set of weights for all columns.
    #[serde(default, skip_serializing_if = "is_false")]
    pub channel_independent: bool,
    /// Per-window input normalisation undone at the output.
    #[serde(default, skip_serializing_if = "WindowNorm::is_none")]
    pub normalize: WindowNorm,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Per-window normalisation of a model's input, added back at its output.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WindowNorm {
    #[default]
    None,
    /// Subtract each column's last value in the window (NLinear, SegRNN).
    LastValue,
    /// Subtract each column's window mean and divide by its std (RevIN without affine).
    Revin,
}

impl WindowNorm {
    pub fn is_none(&self) -> bool {
        *self == WindowNorm::None
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    #[default]
    Layers,
    NaiveLast,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    #[default]
    Keras,
    Torch,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Linear,
    Relu,
    Tanh,
    Sigmoid,
    HardSigmoid,
    Softmax,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    #[default]
    Valid,
    Same,
    Causal,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum MergeMode {
    #[default]
    Concat,
    Sum,
    Mul,
    Ave,
}

/// One node of the layer graph, named and parameterised as in Keras.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    Dense {
        units: usize,
        #[serde(default)]
        activation: Activation,
        #[serde(default = "d_true")]
        use_bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    Flatten {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    Dropout {
        rate: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    Activation {
        activation: Activation,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    Embedding {
        input_dim: usize,
        output_dim: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    Conv1d {
        filters: usize,
        kernel_size: usize,
        #[serde(default = "d_one")]
        strides: usize,
        #[serde(default)]
        padding: Padding,
        #[serde(default = "d_one")]
        dilation_rate: usize,
        #[serde(default)]
        activation: Activation,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    MaxPool1d {
        #[serde(default = "d_two")]
        pool_size: usize,
        /// 0 = `pool_size`, as Keras' `strides=None`.
        #[serde(default)]
        strides: usize,
        #[serde(default)]
        padding: Padding,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    AveragePool1d {
        #[serde(default = "d_two")]
        pool_size: usize,
        /// 0 = `pool_size`, as Keras' `strides=None`.
        #[serde(default)]
        strides: usize,
        #[serde(default)]
        padding: Padding,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    GlobalMaxPool1d {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    GlobalAveragePool1d {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    Gru(Recurrent),
    Lstm(Recurrent),
    SimpleRnn(Recurrent),
    Bidirectional {
        layer: RecurrentLayer,
        #[serde(default)]
        merge_mode: MergeMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    Concatenate {
        /// Keras axis over (batch, …): -1 is the feature axis.
        #[serde(default = "d_minus_one")]
        axis: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    Add {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    /// First input minus the second.
    Subtract {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    /// Element-wise product of the inputs.
    Multiply {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    /// The per-sample shape becomes `target_shape` (batch excluded; one `-1` is inferred).
    Reshape {
        target_shape: Vec<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    /// Reorders the per-sample axes: `dims` is a permutation of 1..=rank (Keras' 1-based).
    Permute {
        dims: Vec<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    /// Moving average over time with replicate padding at both ends (DLinear's trend).
    MovingAverage {
        kernel_size: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    /// Normalises each sample's last axis, then scales and shifts (γ, β).
    LayerNormalization {
        #[serde(default = "d_epsilon")]
        epsilon: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    /// Self-attention over time (one input is query, key and value).
    MultiHeadAttention {
        num_heads: usize,
        key_dim: usize,
        #[serde(default)]
        dropout: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
    /// A learned (time, features) table added to its input.
    PositionalEmbedding {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Vec<String>>,
    },
}

fn d_one() -> usize {
    1
}
fn d_two() -> usize {
    2
}
fn d_minus_one() -> i64 {
    -1
}
fn d_epsilon() -> f64 {
    1e-3
}

/// The recurrent layer a `bidirectional` wraps.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RecurrentLayer {
    Gru(Recurrent),
    Lstm(Recurrent),
    SimpleRnn(Recurrent),
}

/// GRU, LSTM and SimpleRNN arguments (Keras names and defaults; GRU uses
/// Keras 2's `reset_after = true`, which is libtorch's GRU).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Recurrent {
    pub units: usize,
    #[serde(default = "d_tanh")]
    pub activation: Activation,
    #[serde(default = "d_sigmoid")]
    pub recurrent_activation: Activation,
    #[serde(default)]
    pub return_sequences: bool,
    #[serde(default)]
    pub go_backwards: bool,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default)]
    pub recurrent_dropout: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<String>>,
}

fn d_tanh() -> Activation {
    Activation::Tanh
}
fn d_sigmoid() -> Activation {
    Activation::Sigmoid
}

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Gru,
    Lstm,
    SimpleRnn,
}

impl CellKind {
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Gru => "gru",
            CellKind::Lstm => "lstm",
            CellKind::SimpleRnn => "simple_rnn",
        }
    }
    /// Number of gates stacked in the weight matrices.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Gru => 3,
            CellKind::Lstm => 4,
            CellKind::SimpleRnn => 1,
        }
    }
}

impl RecurrentLayer {
    pub fn parts(&self) -> (CellKind, &Recurrent) {
        match self {
            RecurrentLayer::Gru(r) => (CellKind::Gru, r),
            RecurrentLayer::Lstm(r) => (CellKind::Lstm, r),
            RecurrentLayer::SimpleRnn(r) => (CellKind::SimpleRnn, r),
        }
    }
}

impl LayerSpec {
    /// The Keras-style type name, as written in `type = "…"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerSpec::Dense { .. } => "dense",
            LayerSpec::Flatten { .. } => "flatten",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::Activation { .. } => "activation",
            LayerSpec::Embedding { .. } => "embedding",
            LayerSpec::Conv1d { .. } => "conv1d",
            LayerSpec::MaxPool1d { .. } => "max_pool1d",
            LayerSpec::AveragePool1d { .. } => "average_pool1d",
            LayerSpec::GlobalMaxPool1d { .. } => "global_max_pool1d",
            LayerSpec::GlobalAveragePool1d { .. } => "global_average_pool1d",
            LayerSpec::Gru(_) => "gru",
            LayerSpec::Lstm(_) => "lstm",
            LayerSpec::SimpleRnn(_) => "simple_rnn",
            LayerSpec::Bidirectional { .. } => "bidirectional",
            LayerSpec::Concatenate { .. } => "concatenate",
            LayerSpec::Add { .. } => "add",
            LayerSpec::Subtract { .. } => "subtract",
            LayerSpec::Multiply { .. } => "multiply",
            LayerSpec::Reshape { .. } => "reshape",
            LayerSpec::Permute { .. } => "permute",
            LayerSpec::MovingAverage { .. } => "moving_average",
            LayerSpec::LayerNormalization { .. } => "layer_normalization",
            LayerSpec::MultiHeadAttention { .. } => "multi_head_attention",
            LayerSpec::PositionalEmbedding { .. } => "positional_embedding",
        }
    }

    /// The layer's `name` and `inputs` wiring.
    pub fn wiring(&self) -> (Option<&str>, Option<&[String]>) {
        let (n, i) = match self {
            LayerSpec::Gru(r) | LayerSpec::Lstm(r) | LayerSpec::SimpleRnn(r) => {
                (&r.name, &r.inputs)
            }
            LayerSpec::Dense { name, inputs, .. }
            | LayerSpec::Flatten { name, inputs }
            | LayerSpec::Dropout { name, inputs, .. }
            | LayerSpec::Activation { name, inputs, .. }
            | LayerSpec::Embedding { name, inputs, .. }
            | LayerSpec::Conv1d { name, inputs, .. }
            | LayerSpec::MaxPool1d { name, inputs, .. }
            | LayerSpec::AveragePool1d { name, inputs, .. }
            | LayerSpec::GlobalMaxPool1d { name, inputs }
            | LayerSpec::GlobalAveragePool1d { name, inputs }
            | LayerSpec::Bidirectional { name, inputs, .. }
            | LayerSpec::Concatenate { name, inputs, .. }
            | LayerSpec::Add { name, inputs }
            | LayerSpec::Subtract { name, inputs }
            | LayerSpec::Multiply { name, inputs }
            | LayerSpec::Reshape { name, inputs, .. }
            | LayerSpec::Permute { name, inputs, .. }
            | LayerSpec::MovingAverage { name, inputs, .. }
            | LayerSpec::LayerNormalization { name, inputs, .. }
            | LayerSpec::MultiHeadAttention { name, inputs, .. }
            | LayerSpec::PositionalEmbedding { name, inputs } => (name, inputs),
        };
        (n.as_deref(), i.as_deref())
    }

    /// The recurrent cell and arguments of `gru`/`lstm`/`simple_rnn`.
    pub fn recurrent(&self) -> Option<(CellKind, &Recurrent)> {
        match self {
            LayerSpec::Gru(r) => Some((CellKind::Gru, r)),
            LayerSpec::Lstm(r) => Some((CellKind::Lstm, r)),
            LayerSpec::SimpleRnn(r) => Some((CellKind::SimpleRnn, r)),
            _ => None,
        }
    }
}

/// `[grid]`: dotted key paths → lists of values, and how to combine them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct Grid {
    /// `product` (every combination) or `zip` (the i-th values together).
    #[serde(default)]
    pub mode: GridMode,
    #[serde(flatten)]
    #[schemars(with = "BTreeMap<String, Vec<serde_json::Value>>")]
    pub axes: BTreeMap<String, Vec<toml::Value>>,
    /// The keys whose axis came from `--sweep` rather than the file (for
    /// error messages); never read from or written to a file.
    #[serde(skip)]
    #[schemars(skip)]
    pub swept: std::collections::BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum GridMode {
    #[default]
    Product,
    Zip,
}

/// The keys the JSON Schema allows in the table at `path` (every variant of a
/// tagged enum together), each with the string values its schema lists (a
/// tag's variant names). `None` where the path is not a closed table.
pub fn keys_at(path: &[String]) -> Option<BTreeMap<String, Vec<String>>> {
    use serde_json::Value;
    /// The schema itself and everything it refers to or combines, `$ref`,
    /// `allOf`, `oneOf` and `anyOf` followed.
    fn expand<'a>(node: &'a Value, defs: &'a Value, out: &mut Vec<&'a Value>) {
        if let Some(name) = node["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/definitions/"))
        {
            expand(&defs[name], defs, out);
        }
        for combinator in ["allOf", "oneOf", "anyOf"] {
            for sub in node[combinator].as_array().into_iter().flatten() {
                expand(sub, defs, out);
            }
        }
        out.push(node);
    }
    let root = serde_json::to_value(schemars::schema_for!(Config)).ok()?;
    let defs = &root["definitions"];
    let mut nodes = Vec::new();
    expand(&root, defs, &mut nodes);
    for part in path {
        let mut next = Vec::new();
        for node in &nodes {
            if let Some(child) = node["properties"].get(part.as_str()) {
                expand(child, defs, &mut next);
            } else if part.parse::<usize>().is_ok() && node["items"].is_object() {
                expand(&node["items"], defs, &mut next);
            }
        }
        nodes = next;
    }
    let tables: Vec<&Value> = nodes
        .into_iter()
        .filter(|n| n["properties"].is_object())
        .collect();
    if tables.is_empty() || tables.iter().any(|t| t["additionalProperties"] != false) {
        return None;
    }
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, schema) in tables
        .iter()
        .flat_map(|t| t["properties"].as_object())
        .flatten()
    {
        let mut parts = Vec::new();
        expand(schema, defs, &mut parts);
        let values = keys.entry(key.clone()).or_default();
        for v in parts.iter().flat_map(|p| p["enum"].as_array()).flatten() {
            if let Some(s) = v.as_str().filter(|s| !values.iter().any(|x| x == s)) {
                values.push(s.to_string());
            }
        }
    }
    Some(keys)
}
