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
}

impl DataSpec {
    pub fn batch_size(&self) -> usize {
        match self {
            DataSpec::Jena(j) => j.batch_size,
            DataSpec::Imdb(i) => i.batch_size,
        }
    }
    pub fn path(&self) -> &str {
        match self {
            DataSpec::Jena(j) => &j.path,
            DataSpec::Imdb(i) => &i.path,
        }
    }
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
    #[serde(default)]
    pub save_weights: bool,
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
            | LayerSpec::Add { name, inputs } => (name, inputs),
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
