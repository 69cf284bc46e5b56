//! Semantic checks that need no data (sizes, probabilities, splits), and the
//! filling-in of defaults that depend on other keys.
use super::schema::*;
use super::ConfigErrors;

/// Fills defaults that depend on other values, so the resolved config says
/// exactly what runs: metrics from the loss, pooling strides from pool sizes,
/// Jena's 500 steps per epoch.
pub fn resolve(config: &mut Config) {
    let t = &mut config.train;
    if t.metrics.is_empty() {
        t.metrics = match t.loss {
            Loss::BinaryCrossentropy | Loss::SparseCategoricalCrossentropy => {
                vec![Metric::Accuracy]
            }
            Loss::Mae | Loss::Mse => vec![Metric::Mae],
        };
    }
    if t.steps_per_epoch == 0 {
        if let DataSpec::Jena(_) = config.data {
            t.steps_per_epoch = 500;
        }
    }
    for layer in &mut config.layers {
        if let LayerSpec::MaxPool1d {
            pool_size, strides, ..
        }
        | LayerSpec::AveragePool1d {
            pool_size, strides, ..
        } = layer
        {
            if *strides == 0 {
                *strides = *pool_size;
            }
        }
    }
}

/// Every semantic error of a config, each naming its key.
pub fn validate(config: &Config) -> Result<(), ConfigErrors> {
    let mut errors = Vec::new();
    let mut need = |ok: bool, msg: String| {
        if !ok {
            errors.push(msg)
        }
    };
    match &config.data {
        DataSpec::Jena(j) => {
            need(j.step >= 1, "data.step: must be at least 1".into());
            need(
                j.lookback >= j.step,
                format!("data.lookback: {} is shorter than data.step = {}; a sample needs at least one time step", j.lookback, j.step),
            );
            need(
                j.batch_size >= 1,
                "data.batch_size: must be at least 1".into(),
            );
            let s = &j.splits;
            for (name, [lo, hi]) in [("train", s.train), ("val", s.val), ("test", s.test)] {
                need(
                    lo + j.lookback < hi,
                    format!(
                        "data.splits.{name}: [{lo}, {hi}] leaves no room for a window of lookback {}; it needs max > min + lookback",
                        j.lookback
                    ),
                );
            }
            let mut ranges = [("train", s.train), ("val", s.val), ("test", s.test)];
            ranges.sort_by_key(|(_, r)| r[0]);
            for pair in ranges.windows(2) {
                let ((a, ra), (b, rb)) = (pair[0], pair[1]);
                need(
                    ra[1] < rb[0],
                    format!(
                        "data.splits: {a} [{}, {}] overlaps {b} [{}, {}]; make the ranges disjoint",
                        ra[0], ra[1], rb[0], rb[1]
                    ),
                );
            }
        }
        DataSpec::Imdb(i) => {
            need(i.max_features >= 4, "data.max_features: must be at least 4 (0 padding, 1 start, 2 unknown, words from 3)".into());
            need(i.maxlen >= 1, "data.maxlen: must be at least 1".into());
            need(
                i.batch_size >= 1,
                "data.batch_size: must be at least 1".into(),
            );
            need(
                (0.0..1.0).contains(&i.validation_split),
                format!(
                    "data.validation_split: {} must be in [0, 1)",
                    i.validation_split
                ),
            );
        }
        DataSpec::Text(x) => {
            need(
                !x.path.is_empty(),
                "data.path: required for source = \"text\"; give a folder with one subfolder per class, its .tar.gz, or a CSV / TSV / .jsonl file".into(),
            );
            need(x.max_features >= 4, "data.max_features: must be at least 4 (0 padding, 1 start, 2 unknown, words from 3)".into());
            need(x.maxlen >= 1, "data.maxlen: must be at least 1".into());
            for (key, v) in [
                ("validation_split", x.validation_split),
                ("test_split", x.test_split),
            ] {
                need(
                    v > 0.0 && v < 1.0,
                    format!("data.{key}: {v} must be in (0, 1)"),
                );
            }
            need(
                x.classes.len() != 1 && x.classes.len() <= 255,
                format!("data.classes: lists {} class(es); list between 2 and 255, or leave it empty to infer them", x.classes.len()),
            );
            need(
                x.batch_size >= 1,
                "data.batch_size: must be at least 1".into(),
            );
            need(
                x.text_column.is_empty() == x.label_column.is_empty(),
                "data.text_column and data.label_column: give both (a CSV / TSV collection) or neither (a folder)".into(),
            );
        }
        DataSpec::Csv(c) => {
            need(
                !c.path.is_empty(),
                "data.path: required for source = \"csv\"; give the table's file".into(),
            );
            need(
                !c.targets.is_empty(),
                "data.targets: name at least one column to forecast, e.g. targets = [\"OT\"]"
                    .into(),
            );
            need(c.step >= 1, "data.step: must be at least 1".into());
            need(
                c.lookback >= c.step,
                format!("data.lookback: {} is shorter than data.step = {}; a sample needs at least one time step", c.lookback, c.step),
            );
            need(c.horizon >= 1, "data.horizon: must be at least 1".into());
            need(c.stride >= 1, "data.stride: must be at least 1".into());
            need(
                c.batch_size >= 1,
                "data.batch_size: must be at least 1".into(),
            );
            if !c.freq.is_empty() {
                if let Err(e) = crate::data::timestamp::parse_freq(&c.freq) {
                    need(false, format!("data.freq: {e}"));
                }
            }
            let s = &c.splits;
            for (name, r) in [("train", &s.train), ("val", &s.val), ("test", &s.test)] {
                match r {
                    SplitRange::Rows([a, b]) => need(
                        a < b,
                        format!("data.splits.{name}: [{a}, {b}]: the end must be after the start (rows are [start, end))"),
                    ),
                    SplitRange::Fraction(f) => need(
                        (0.0..=1.0).contains(f),
                        format!("data.splits.{name}: {f} must be a fraction in [0, 1]"),
                    ),
                    SplitRange::Times(_) => need(
                        !c.time_column.is_empty(),
                        format!("data.splits.{name}: timestamp ranges need data.time_column"),
                    ),
                }
            }
        }
    }
    let t = &config.train;
    need(t.epochs >= 1, "train.epochs: must be at least 1".into());
    need(
        t.repeats >= 1,
        "train.repeats: must be at least 1 (1 runs the cell once; N runs N replicates with seeds train.seed … train.seed + N − 1)".into(),
    );
    need(
        t.seed
            .checked_add(t.repeats.saturating_sub(1) as u64)
            .is_some_and(|last| last <= i64::MAX as u64),
        format!(
            "train.seed: {} (+ {} more replicates) is beyond libtorch's largest seed {}; choose a smaller seed",
            t.seed,
            t.repeats.saturating_sub(1),
            i64::MAX
        ),
    );
    need(
        t.optimizer.lr() > 0.0,
        format!("train.optimizer.lr: {} must be positive", t.optimizer.lr()),
    );
    let device_ok = t.device == "auto"
        || t.device == "cpu"
        || t.device == "cuda"
        || t.device
            .strip_prefix("cuda:")
            .is_some_and(|n| n.parse::<usize>().is_ok());
    need(
        device_ok,
        format!(
            "train.device: `{}`: use auto, cpu, cuda or cuda:N",
            t.device
        ),
    );
    let mut monitors = vec!["loss".to_string(), "val_loss".to_string()];
    monitors.extend(t.metrics.iter().map(|m| format!("val_{}", m.name())));
    need(
        monitors.contains(&t.monitor),
        format!(
            "train.monitor: `{}` is not recorded; use one of {}",
            t.monitor,
            monitors.join(", ")
        ),
    );
    if matches!(t.loss, Loss::BinaryCrossentropy) {
        need(
            matches!(config.data, DataSpec::Imdb(_) | DataSpec::Text(_)),
            "train.loss: binary_crossentropy needs binary labels (data.source = \"imdb\" or \"text\")".into(),
        );
        if let DataSpec::Text(x) = &config.data {
            need(
                x.classes.len() <= 2,
                format!("train.loss: binary_crossentropy needs two classes, but data.classes lists {}; use loss = \"sparse_categorical_crossentropy\"", x.classes.len()),
            );
        }
    }
    if matches!(t.loss, Loss::SparseCategoricalCrossentropy) {
        need(
            matches!(config.data, DataSpec::Text(_)),
            "train.loss: sparse_categorical_crossentropy needs class labels (data.source = \"text\")".into(),
        );
    }
    if matches!(config.data, DataSpec::Text(_)) {
        need(
            t.loss.from_logits(),
            "train.loss: a text collection trains with binary_crossentropy (two classes) or sparse_categorical_crossentropy".into(),
        );
    }
    if config.model.kind == ModelKind::Layers {
        need(!config.layers.is_empty(), "layers: no layers; add at least one [[layers]] table (or set model.kind = \"naive_last\")".into());
    } else {
        need(
            matches!(config.data, DataSpec::Jena(_) | DataSpec::Csv(_)),
            "model.kind: naive_last needs a time series (data.source = \"jena\" or \"csv\")".into(),
        );
    }
    for (i, layer) in config.layers.iter().enumerate() {
        let at = format!("layers[{i}] ({})", layer.type_name());
        for (key, value) in sizes(layer) {
            need(
                value >= 1,
                format!("{at}: {key} must be a positive integer, found {value}"),
            );
        }
        for (key, p) in probabilities(layer) {
            need(
                (0.0..1.0).contains(&p),
                format!("{at}: {key} = {p} must be in [0, 1)"),
            );
        }
        let vocabulary = match &config.data {
            DataSpec::Imdb(d) => Some(d.max_features),
            DataSpec::Text(d) => Some(d.max_features),
            _ => None,
        };
        if let (LayerSpec::Embedding { input_dim, .. }, Some(words)) = (layer, vocabulary) {
            need(
                *input_dim >= words,
                format!("{at}: input_dim = {input_dim} is below data.max_features = {words}: token ids run up to {}; set input_dim to at least {words}", words - 1),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

fn recurrent_of(layer: &LayerSpec) -> Option<&Recurrent> {
    match layer {
        LayerSpec::Bidirectional { layer, .. } => Some(layer.parts().1),
        other => other.recurrent().map(|(_, r)| r),
    }
}

fn sizes(layer: &LayerSpec) -> Vec<(&'static str, usize)> {
    match layer {
        LayerSpec::Dense { units, .. } => vec![("units", *units)],
        LayerSpec::Embedding {
            input_dim,
            output_dim,
            ..
        } => vec![("input_dim", *input_dim), ("output_dim", *output_dim)],
        LayerSpec::Conv1d {
            filters,
            kernel_size,
            strides,
            dilation_rate,
            ..
        } => vec![
            ("filters", *filters),
            ("kernel_size", *kernel_size),
            ("strides", *strides),
            ("dilation_rate", *dilation_rate),
        ],
        LayerSpec::MaxPool1d {
            pool_size, strides, ..
        }
        | LayerSpec::AveragePool1d {
            pool_size, strides, ..
        } => {
            vec![("pool_size", *pool_size), ("strides", *strides)]
        }
        LayerSpec::MovingAverage { kernel_size, .. } => vec![("kernel_size", *kernel_size)],
        LayerSpec::MultiHeadAttention {
            num_heads, key_dim, ..
        } => vec![("num_heads", *num_heads), ("key_dim", *key_dim)],
        other => recurrent_of(other)
            .map(|r| vec![("units", r.units)])
            .unwrap_or_default(),
    }
}

fn probabilities(layer: &LayerSpec) -> Vec<(&'static str, f64)> {
    match layer {
        LayerSpec::Dropout { rate, .. } => vec![("rate", *rate)],
        LayerSpec::MultiHeadAttention { dropout, .. } => vec![("dropout", *dropout)],
        other => recurrent_of(other)
            .map(|r| {
                vec![
                    ("dropout", r.dropout),
                    ("recurrent_dropout", r.recurrent_dropout),
                ]
            })
            .unwrap_or_default(),
    }
}
