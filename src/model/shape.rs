//! Shape inference and parameter counts, before any weight exists.
//!
//! Shapes exclude the batch axis and follow Keras: (time, features) between
//! layers. Every error names the layer, the shape it received, what it needs
//! and the likely fix. Parameter counts equal Keras' for the same layers.
use super::graph::{label, wire, Src, Wiring};
use crate::config::{CellKind, Config, DataSpec, LayerSpec, MergeMode, ModelKind, Padding};
use std::fmt;

/// Number of float columns of the Jena climate record.
pub const JENA_FEATURES: usize = 14;

/// A per-sample shape; `tokens` marks integer token ids (IMDB input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub dims: Vec<usize>,
    pub tokens: bool,
}

impl Shape {
    pub fn floats(dims: Vec<usize>) -> Self {
        Shape {
            dims,
            tokens: false,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = std::iter::once("batch".to_string())
            .chain(self.dims.iter().map(|d| d.to_string()))
            .collect();
        write!(f, "({})", dims.join(", "))
    }
}

/// One layer's inferred output and parameter count.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    pub label: String,
    pub name: String,
    pub output: Shape,
    pub params: usize,
}

/// The checked graph: wiring, every layer's output shape, and totals.
#[derive(Debug, Clone)]
pub struct Inferred {
    pub wiring: Wiring,
    pub input: Shape,
    pub layers: Vec<LayerInfo>,
    pub total_params: usize,
}

/// The per-sample input shape a data section produces (a table without a
/// `features` list: its numeric columns, from the file's first row).
pub fn input_shape(data: &DataSpec) -> Result<Shape, String> {
    Ok(match data {
        DataSpec::Jena(j) => Shape::floats(vec![j.lookback / j.step.max(1), JENA_FEATURES]),
        DataSpec::Imdb(i) => Shape {
            dims: vec![i.maxlen],
            tokens: true,
        },
        DataSpec::Text(t) => Shape {
            dims: vec![t.maxlen],
            tokens: true,
        },
        DataSpec::Csv(c) => {
            let features = crate::data::series::feature_count(c).map_err(|e| format!("{e:#}"))?;
            Shape::floats(vec![c.lookback / c.step.max(1), features])
        }
    })
}

/// The output shapes a data section's targets accept (per sample), the
/// first being the one to suggest.
pub fn target_shapes(data: &DataSpec) -> Vec<Vec<usize>> {
    match data {
        DataSpec::Csv(c) if c.horizon > 1 => {
            vec![
                vec![c.horizon * c.targets.len()],
                vec![c.horizon, c.targets.len()],
            ]
        }
        DataSpec::Csv(c) => vec![vec![c.targets.len()]],
        // Binary: one logit (binary_crossentropy) or two (sparse_categorical_crossentropy).
        DataSpec::Text(t) if t.classes.len() == 2 => vec![vec![1], vec![2]],
        DataSpec::Text(t) if t.classes.len() > 2 => vec![vec![t.classes.len()]],
        // Classes not listed: checked once the data is read (`check_classes`).
        DataSpec::Text(_) => vec![],
        _ => vec![vec![1]],
    }
}

/// Once a text collection is read: the output layer's units must fit its
/// `classes` (1 or 2 for two classes, one per class otherwise) and the loss
/// (binary_crossentropy: 1 unit, two classes; sparse_categorical_crossentropy:
/// one unit per class).
pub fn check_classes(
    inferred: &Inferred,
    loss: crate::config::Loss,
    classes: &[String],
) -> Result<(), String> {
    use crate::config::Loss;
    let Some(last) = inferred.layers.get(inferred.wiring.output) else {
        return Ok(());
    };
    let n = classes.len();
    let units = last.output.dims.clone();
    let ok = match loss {
        Loss::BinaryCrossentropy => n == 2 && units == [1],
        Loss::SparseCategoricalCrossentropy => units == [n],
        Loss::Mae | Loss::Mse => n == 2 && units == [1],
    };
    if ok {
        return Ok(());
    }
    let fix = if n == 2 {
        "end with a dense layer with units = 1 and train.loss = \"binary_crossentropy\" (or units = 2 and \"sparse_categorical_crossentropy\")".to_string()
    } else {
        format!("end with a dense layer with units = {n} and set train.loss = \"sparse_categorical_crossentropy\"")
    };
    Err(format!(
        "{} is the output and returns {}, but the data has {n} classes ({}); {fix}",
        last.label,
        last.output,
        classes.join(", ")
    ))
}

/// Parameters of one recurrent direction (GRU with reset_after: two biases;
/// LSTM and SimpleRNN: one bias, as Keras).
pub fn recurrent_params(kind: CellKind, features: usize, units: usize) -> usize {
    let g = kind.gates();
    let biases = if kind == CellKind::Gru { 2 } else { 1 };
    g * (features * units + units * units + biases * units)
}

/// Infers every layer's output shape and checks the last one fits the loss.
pub fn infer(config: &Config) -> Result<Inferred, Vec<String>> {
    let mut input = input_shape(&config.data).map_err(|e| vec![e])?;
    let mut wanted = target_shapes(&config.data);
    if config.model.channel_independent {
        // Each column alone: (L, 1) in, the horizon of that one column out.
        let horizon = match &config.data {
            DataSpec::Csv(c) => c.horizon,
            _ => 1,
        };
        input.dims[1] = 1;
        wanted = if horizon > 1 {
            vec![vec![horizon], vec![horizon, 1]]
        } else {
            vec![vec![1]]
        };
    }
    if config.model.kind == ModelKind::NaiveLast {
        let wiring = Wiring {
            names: vec![],
            sources: vec![],
            order: vec![],
            output: 0,
        };
        let info = LayerInfo {
            label: "naive_last".into(),
            name: "naive_last".into(),
            output: Shape::floats(wanted.first().cloned().unwrap_or_else(|| vec![1])),
            params: 0,
        };
        return Ok(Inferred {
            wiring,
            input,
            layers: vec![info],
            total_params: 0,
        });
    }
    let layers = &config.layers;
    let wiring = wire(layers, &config.model.output)?;
    let mut out: Vec<Option<LayerInfo>> = vec![None; layers.len()];
    let mut errors = Vec::new();
    for &i in &wiring.order {
        let ins: Vec<(String, Shape, Option<usize>)> = wiring.sources[i]
            .iter()
            .map(|s| match s {
                Src::Input => ("the model input".to_string(), input.clone(), None),
                Src::Layer(j) => match &out[*j] {
                    Some(info) => (info.label.clone(), info.output.clone(), Some(*j)),
                    None => (label(*j, &layers[*j]), Shape::floats(vec![]), Some(*j)),
                },
            })
            .collect();
        if ins.iter().any(|(_, s, j)| s.dims.is_empty() && j.is_some()) {
            continue; // an earlier layer failed; its error is already reported
        }
        match layer_output(i, &layers[i], &ins, layers) {
            Ok((shape, params)) => {
                if shape.dims.contains(&0) {
                    errors.push(format!(
                        "after {} the sequence has length 0 ({shape}); use fewer pooling layers, a smaller pool_size or kernel_size, or a longer lookback",
                        label(i, &layers[i])
                    ));
                    continue;
                }
                out[i] = Some(LayerInfo {
                    label: label(i, &layers[i]),
                    name: wiring.names[i].clone(),
                    output: shape,
                    params,
                });
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        let last = out[wiring.output].as_ref().expect("every layer inferred");
        if !wanted.is_empty() && !wanted.contains(&last.output.dims) {
            let units = wanted[0][0];
            let fix = if last.output.dims.len() > 1 {
                format!("add a flatten or global pooling layer, or set return_sequences = false, then a dense layer with units = {units}")
            } else {
                format!("end with a dense layer with units = {units}")
            };
            let need = wanted
                .iter()
                .map(|w| Shape::floats(w.clone()).to_string())
                .collect::<Vec<_>>()
                .join(" or ");
            let why = match &config.data {
                DataSpec::Csv(c) => {
                    format!(" ({} target(s) × horizon {})", c.targets.len(), c.horizon)
                }
                DataSpec::Text(t) => format!(" ({} classes in data.classes)", t.classes.len()),
                _ => String::new(),
            };
            errors.push(format!(
                "{} is the output and returns {}, but loss `{}` needs {need}{why}; {fix}",
                last.label,
                last.output,
                toml::Value::try_from(config.train.loss)
                    .map(|v| v.as_str().unwrap_or("").to_string())
                    .unwrap_or_default()
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let layers: Vec<LayerInfo> = out.into_iter().map(|o| o.expect("inferred")).collect();
    let total_params = layers.iter().map(|l| l.params).sum();
    Ok(Inferred {
        wiring,
        input,
        layers,
        total_params,
    })
}

fn rank2(at: &str, got: &Shape, from: &str, what: &str) -> Result<(usize, usize), String> {
    match got.dims[..] {
        [t, f] if !got.tokens => Ok((t, f)),
        _ if got.tokens => Err(format!(
            "{at} receives token ids {got} from {from}; start the model with an embedding layer"
        )),
        _ => Err(format!(
            "{at} needs (batch, time, features) for {what} but {from} returns {got}"
        )),
    }
}

/// Output length of a sliding window over `len` steps, Keras' formulas.
fn windowed(len: usize, size: usize, stride: usize, dilation: usize, padding: Padding) -> usize {
    let span = dilation * (size - 1) + 1;
    match padding {
        Padding::Valid => {
            if len < span {
                0
            } else {
                (len - span) / stride + 1
            }
        }
        Padding::Same => len.div_ceil(stride),
        Padding::Causal => (len - 1) / stride + 1,
    }
}

fn layer_output(
    i: usize,
    layer: &LayerSpec,
    ins: &[(String, Shape, Option<usize>)],
    all: &[LayerSpec],
) -> Result<(Shape, usize), String> {
    let at = label(i, layer);
    let merge = matches!(
        layer,
        LayerSpec::Concatenate { .. }
            | LayerSpec::Add { .. }
            | LayerSpec::Subtract { .. }
            | LayerSpec::Multiply { .. }
    );
    if !merge && ins.len() != 1 {
        return Err(format!("{at} takes one input but `inputs` names {}; join branches with a concatenate or add layer first", ins.len()));
    }
    let (from, got, from_idx) = (&ins[0].0, &ins[0].1, ins[0].2);
    let not_tokens = |what: &str| -> Result<(), String> {
        if got.tokens {
            Err(format!("{at} receives token ids {got} from {from}; {what} needs floats: start the model with an embedding layer"))
        } else {
            Ok(())
        }
    };
    let recurrent_in = || -> Result<(usize, usize), String> {
        if got.tokens {
            return Err(format!(
                "{at} receives token ids {got} from {from}; put an embedding layer before it"
            ));
        }
        match got.dims[..] {
            [t, f] => Ok((t, f)),
            _ => {
                let fix = match from_idx.map(|j| &all[j]) {
                    Some(prev) if prev.recurrent().is_some_and(|(_, p)| !p.return_sequences) => {
                        format!("set `return_sequences = true` on {from}")
                    }
                    Some(LayerSpec::Bidirectional { layer, .. })
                        if !layer.parts().1.return_sequences =>
                    {
                        format!("set `return_sequences = true` on the layer inside {from}")
                    }
                    _ => "feed it a sequence: remove the flatten/global pooling before it"
                        .to_string(),
                };
                Err(format!(
                    "{at} needs (batch, time, features) but {from} returns {got}: {fix}"
                ))
            }
        }
    };
    Ok(match layer {
        LayerSpec::Dense {
            units, use_bias, ..
        } => {
            not_tokens("dense")?;
            let f = *got
                .dims
                .last()
                .ok_or_else(|| format!("{at} receives a scalar from {from}"))?;
            let mut dims = got.dims.clone();
            *dims.last_mut().expect("non-empty") = *units;
            (
                Shape::floats(dims),
                f * units + if *use_bias { *units } else { 0 },
            )
        }
        LayerSpec::Flatten { .. } => {
            not_tokens("flatten")?;
            (Shape::floats(vec![got.dims.iter().product()]), 0)
        }
        LayerSpec::Dropout { .. } | LayerSpec::Activation { .. } => {
            not_tokens(layer.type_name())?;
            (got.clone(), 0)
        }
        LayerSpec::Embedding {
            input_dim,
            output_dim,
            ..
        } => {
            if !got.tokens {
                return Err(format!("{at} needs token ids (batch, time) but {from} returns floats {got}; embedding must come first, on IMDB data"));
            }
            (
                Shape::floats(vec![got.dims[0], *output_dim]),
                input_dim * output_dim,
            )
        }
        LayerSpec::Conv1d {
            filters,
            kernel_size,
            strides,
            padding,
            dilation_rate,
            ..
        } => {
            let (t, c) = rank2(&at, got, from, "a 1D convolution")?;
            let t2 = windowed(t, *kernel_size, *strides, *dilation_rate, *padding);
            (
                Shape::floats(vec![t2, *filters]),
                kernel_size * c * filters + filters,
            )
        }
        LayerSpec::MaxPool1d {
            pool_size,
            strides,
            padding,
            ..
        }
        | LayerSpec::AveragePool1d {
            pool_size,
            strides,
            padding,
            ..
        } => {
            let (t, c) = rank2(&at, got, from, "pooling")?;
            let stride = if *strides == 0 { *pool_size } else { *strides };
            (
                Shape::floats(vec![windowed(t, *pool_size, stride, 1, *padding), c]),
                0,
            )
        }
        LayerSpec::GlobalMaxPool1d { .. } | LayerSpec::GlobalAveragePool1d { .. } => {
            let (_, c) = rank2(&at, got, from, "global pooling")?;
            (Shape::floats(vec![c]), 0)
        }
        LayerSpec::Gru(r) | LayerSpec::Lstm(r) | LayerSpec::SimpleRnn(r) => {
            let kind = layer.recurrent().expect("recurrent").0;
            let (t, f) = recurrent_in()?;
            let dims = if r.return_sequences {
                vec![t, r.units]
            } else {
                vec![r.units]
            };
            (Shape::floats(dims), recurrent_params(kind, f, r.units))
        }
        LayerSpec::Bidirectional {
            layer: inner,
            merge_mode,
            ..
        } => {
            let (kind, r) = inner.parts();
            let (t, f) = recurrent_in()?;
            let u = if *merge_mode == MergeMode::Concat {
                2 * r.units
            } else {
                r.units
            };
            let dims = if r.return_sequences {
                vec![t, u]
            } else {
                vec![u]
            };
            (Shape::floats(dims), 2 * recurrent_params(kind, f, r.units))
        }
        LayerSpec::Concatenate { axis, .. } => {
            let rank = got.dims.len() as i64;
            let ax = if *axis < 0 { rank + axis } else { axis - 1 };
            if ax < 0 || ax >= rank {
                return Err(format!(
                    "{at}: axis {axis} is outside inputs of shape {got}; use -1 for features"
                ));
            }
            let ax = ax as usize;
            let mut dims = got.dims.clone();
            dims[ax] = 0;
            for (name, s, _) in ins {
                let same = s.dims.len() == got.dims.len()
                    && s.dims
                        .iter()
                        .zip(&got.dims)
                        .enumerate()
                        .all(|(k, (a, b))| k == ax || a == b);
                if !same || s.tokens {
                    return Err(format!(
                        "{at}: inputs do not fit along axis {axis}: {from} returns {got} but {name} returns {s}; all axes but the joined one must match"
                    ));
                }
                dims[ax] += s.dims[ax];
            }
            (Shape::floats(dims), 0)
        }
        LayerSpec::Add { .. } | LayerSpec::Multiply { .. } | LayerSpec::Subtract { .. } => {
            if matches!(layer, LayerSpec::Subtract { .. }) && ins.len() != 2 {
                return Err(format!(
                    "{at} takes exactly two inputs (first minus second), but `inputs` names {}",
                    ins.len()
                ));
            }
            if ins.len() < 2 {
                return Err(format!(
                    "{at} joins branches: name two or more layers in `inputs`"
                ));
            }
            for (name, s, _) in ins {
                if s != got {
                    return Err(format!("{at}: inputs must have the same shape: {from} returns {got} but {name} returns {s}"));
                }
            }
            (got.clone(), 0)
        }
        LayerSpec::Reshape { target_shape, .. } => {
            not_tokens("reshape")?;
            let total: usize = got.dims.iter().product();
            let dims = super::forecast::reshape_dims(target_shape, total).map_err(|e| {
                format!("{at}: {e} (the input {got} holds {total} values per sample)")
            })?;
            (Shape::floats(dims), 0)
        }
        LayerSpec::Permute { dims, .. } => {
            not_tokens("permute")?;
            let rank = got.dims.len();
            let mut sorted = dims.clone();
            sorted.sort_unstable();
            if sorted != (1..=rank).collect::<Vec<_>>() {
                return Err(format!("{at}: dims {dims:?} must be a permutation of 1..={rank} for the input {got} (axes counted from 1, batch excluded, as Keras)"));
            }
            (
                Shape::floats(dims.iter().map(|&d| got.dims[d - 1]).collect()),
                0,
            )
        }
        LayerSpec::MovingAverage { kernel_size, .. } => {
            let (t, c) = rank2(&at, got, from, "a moving average")?;
            if *kernel_size == 0 || *kernel_size > t {
                return Err(format!(
                    "{at}: kernel_size {kernel_size} must lie in 1..={t} (the input's time steps)"
                ));
            }
            (Shape::floats(vec![t, c]), 0)
        }
        LayerSpec::LayerNormalization { .. } => {
            not_tokens("layer normalization")?;
            let f = *got
                .dims
                .last()
                .ok_or_else(|| format!("{at} receives a scalar from {from}"))?;
            (got.clone(), 2 * f)
        }
        LayerSpec::MultiHeadAttention {
            num_heads, key_dim, ..
        } => {
            let (t, f) = rank2(&at, got, from, "attention")?;
            let hk = num_heads * key_dim;
            (Shape::floats(vec![t, f]), 3 * (f * hk + hk) + hk * f + f)
        }
        LayerSpec::PositionalEmbedding { .. } => {
            let (t, f) = rank2(&at, got, from, "a positional embedding")?;
            (Shape::floats(vec![t, f]), t * f)
        }
    })
}
