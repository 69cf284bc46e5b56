//! The builder: a checked layer graph becomes a libtorch module on a device.
//!
//! Shapes are inferred first (`shape::infer`), so every weight is created with
//! the right size and a wrong stack fails before any allocation.
use super::activation;
use super::conv::{global_pool, Conv1d, Pool1d};
use super::dense::{Dense, Embedding};
use super::forecast::{self, Attention, Frame, LayerNorm, PositionalEmbedding};
use super::graph::Src;
use super::kernel::tape::Tape;
use super::kernel::{self, conv};
use super::recurrent::{Bidirectional, Embedded, Path, RecurrentLayer};
use super::shape::{infer, Inferred};
use crate::config::{Activation, Config, DataSpec, LayerSpec, ModelKind, WindowNorm};
use tch::{nn, Device, Tensor};

/// One node's computation.
#[derive(Debug)]
pub enum Op {
    Dense(Dense),
    Flatten,
    Dropout(f64),
    Activation(Activation),
    Embedding(Embedding),
    Conv(Conv1d),
    Pool(Pool1d),
    GlobalPool {
        max: bool,
    },
    Recurrent(RecurrentLayer),
    Bidirectional(Bidirectional),
    /// Join along a libtorch dimension (batch included).
    Concatenate(i64),
    Add,
    Subtract,
    Multiply,
    /// Per-sample dims after the batch axis.
    Reshape(Vec<usize>),
    /// Keras' 1-based axes after the batch axis.
    Permute(Vec<usize>),
    MovingAverage(usize),
    LayerNorm(LayerNorm),
    Attention(Attention),
    Positional(PositionalEmbedding),
}

/// A built model: weights in a VarStore, ops in graph order.
pub struct Model {
    pub vs: nn::VarStore,
    pub ops: Vec<Op>,
    pub inferred: Inferred,
    /// The naive baseline: the last observed value of these input columns
    /// (reversed samples: the first), repeated over the horizon.
    naive: Option<(Tensor, bool, i64)>,
    /// Channel independence and per-window normalisation around the layers.
    frame: Option<Frame>,
    /// Kernel runs of the current training step, awaiting their backward pass.
    tape: Tape,
    /// For a Conv1D or recurrent layer fed only by an embedding: that
    /// embedding's node (the two run as one, see `embed_conv` and
    /// `rnn::Lookup`; the embedding alone is skipped).
    embedded: Vec<Option<usize>>,
    /// For a Conv1D feeding only a max pool: that pool's node (taken inside
    /// the `conv` kernel when it runs; the pool alone is then skipped).
    pooled: Vec<Option<usize>>,
    /// For a multi-head attention whose only consumer adds it to its own
    /// input (a residual): that add's node (summed inside the `attention`
    /// kernel when it runs; the add alone is then skipped).
    residual: Vec<Option<usize>>,
    /// For a Dense layer (linear or ReLU) whose only consumer is a GRU or
    /// LSTM: that layer's node (in training, with the recurrent kernel, the
    /// Dense runs on the tape too, see `kernel::dense`).
    feeding: Vec<Option<usize>>,
}

/// Resolves `auto`, `cpu`, `cuda`, `cuda:N` to a device that exists.
pub fn device(name: &str) -> anyhow::Result<Device> {
    let cuda_missing = if name == "cpu" {
        None
    } else {
        crate::runtime::load_cuda()
    };
    Ok(match name {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        other => {
            let n: usize = if other == "cuda" {
                0
            } else {
                other.trim_start_matches("cuda:").parse()?
            };
            if n >= tch::Cuda::device_count() as usize {
                let why = cuda_missing.map(|w| format!(" ({w})")).unwrap_or_default();
                anyhow::bail!("train.device = \"{other}\" but this machine has {} CUDA device(s){why}; use \"auto\" or \"cpu\"", tch::Cuda::device_count());
            }
            Device::Cuda(n)
        }
    })
}

impl Model {
    /// Builds the model of `config` on `device`. `target_inputs` are the
    /// targets' columns among the inputs (used by the naive baseline).
    pub fn build(
        config: &Config,
        device: Device,
        target_inputs: &[usize],
    ) -> anyhow::Result<Model> {
        let inferred = infer(config).map_err(|e| anyhow::anyhow!(e.join("\n")))?;
        let vs = nn::VarStore::new(device);
        let naive = if config.model.kind == ModelKind::NaiveLast {
            let (reverse, horizon) = match &config.data {
                DataSpec::Jena(j) => (j.reverse, 1),
                DataSpec::Csv(c) => (c.reverse, c.horizon as i64),
                DataSpec::Imdb(_) | DataSpec::Text(_) => (false, 1),
            };
            if target_inputs.is_empty() {
                anyhow::bail!("model.kind = \"naive_last\" repeats the last value of each target, so every target must also be a feature; add the targets to data.features");
            }
            let cols: Vec<i64> = target_inputs.iter().map(|&c| c as i64).collect();
            Some((
                Tensor::from_slice(&cols).to_device(device),
                reverse,
                horizon,
            ))
        } else {
            None
        };
        let frame = frame(config, device, target_inputs)?;
        let how = config.model.init;
        let mut ops = Vec::new();
        for (i, layer) in config.layers.iter().enumerate() {
            let p = vs.root() / inferred.layers[i].name.as_str();
            let src = inferred.wiring.sources[i][0];
            let in_shape = match src {
                Src::Input => inferred.input.clone(),
                Src::Layer(j) => inferred.layers[j].output.clone(),
            };
            let last_dim = *in_shape.dims.last().unwrap_or(&1) as i64;
            ops.push(match layer {
                LayerSpec::Dense {
                    units,
                    activation,
                    use_bias,
                    ..
                } => Op::Dense(Dense::new(
                    &p,
                    last_dim,
                    *units as i64,
                    *use_bias,
                    *activation,
                    how,
                )),
                LayerSpec::Flatten { .. } => Op::Flatten,
                LayerSpec::Dropout { rate, .. } => Op::Dropout(*rate),
                LayerSpec::Activation { activation, .. } => Op::Activation(*activation),
                LayerSpec::Embedding {
                    input_dim,
                    output_dim,
                    ..
                } => Op::Embedding(Embedding::new(
                    &p,
                    *input_dim as i64,
                    *output_dim as i64,
                    how,
                )),
                LayerSpec::Conv1d {
                    filters,
                    kernel_size,
                    strides,
                    padding,
                    dilation_rate,
                    activation,
                    ..
                } => Op::Conv(Conv1d::new(
                    &p,
                    last_dim,
                    *filters as i64,
                    *kernel_size as i64,
                    *strides as i64,
                    *dilation_rate as i64,
                    *padding,
                    *activation,
                    how,
                )),
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
                } => Op::Pool(Pool1d {
                    max: matches!(layer, LayerSpec::MaxPool1d { .. }),
                    size: *pool_size as i64,
                    stride: if *strides == 0 {
                        *pool_size as i64
                    } else {
                        *strides as i64
                    },
                    padding: *padding,
                }),
                LayerSpec::GlobalMaxPool1d { .. } => Op::GlobalPool { max: true },
                LayerSpec::GlobalAveragePool1d { .. } => Op::GlobalPool { max: false },
                LayerSpec::Gru(r) | LayerSpec::Lstm(r) | LayerSpec::SimpleRnn(r) => {
                    let kind = layer.recurrent().expect("recurrent").0;
                    Op::Recurrent(RecurrentLayer::new(&p, kind, r, last_dim, how))
                }
                LayerSpec::Bidirectional {
                    layer: inner,
                    merge_mode,
                    ..
                } => {
                    let (kind, r) = inner.parts();
                    Op::Bidirectional(Bidirectional::new(&p, kind, r, last_dim, *merge_mode, how))
                }
                LayerSpec::Concatenate { axis, .. } => {
                    let rank = in_shape.dims.len() as i64;
                    Op::Concatenate(if *axis < 0 { rank + 1 + axis } else { *axis })
                }
                LayerSpec::Add { .. } => Op::Add,
                LayerSpec::Subtract { .. } => Op::Subtract,
                LayerSpec::Multiply { .. } => Op::Multiply,
                LayerSpec::Reshape { .. } => Op::Reshape(inferred.layers[i].output.dims.clone()),
                LayerSpec::Permute { dims, .. } => Op::Permute(dims.clone()),
                LayerSpec::MovingAverage { kernel_size, .. } => Op::MovingAverage(*kernel_size),
                LayerSpec::LayerNormalization { epsilon, .. } => {
                    Op::LayerNorm(LayerNorm::new(&p, last_dim, *epsilon))
                }
                LayerSpec::MultiHeadAttention {
                    num_heads,
                    key_dim,
                    dropout,
                    ..
                } => Op::Attention(Attention::new(
                    &p,
                    last_dim,
                    *num_heads as i64,
                    *key_dim as i64,
                    *dropout,
                    how,
                )),
                LayerSpec::PositionalEmbedding { .. } => Op::Positional(PositionalEmbedding::new(
                    &p,
                    in_shape.dims[0] as i64,
                    last_dim,
                    how,
                )),
            });
        }
        let embedded = embedded_layers(&ops, &inferred);
        let pooled = pooled_convs(&ops, &inferred, &embedded);
        let residual = residual_attentions(&ops, &inferred);
        let feeding = dense_feeding_recurrent(&ops, &inferred);
        Ok(Model {
            vs,
            ops,
            inferred,
            naive,
            frame,
            tape: Tape::default(),
            embedded,
            pooled,
            residual,
            feeding,
        })
    }

    /// Gradients of `loss` for every weight: autograd, then the backward
    /// passes of the kernel runs recorded during the forward pass.
    pub fn backward(&self, loss: &Tensor) {
        if self.tape.is_empty() {
            loss.backward();
        } else {
            // the kernels' passes may still run through graph parts this one reaches
            super::kernel::tape::backward_keeping_graph(loss);
            self.tape.backward();
        }
    }

    /// One optimizer step on `loss`: zero grads, backward, update. The
    /// kernels' weight gradients go to the optimizer directly, not through
    /// the graph (`Tape::backward_holding`): the same values, fewer passes.
    pub fn backward_step(&self, opt: &mut crate::train::optim::Optimizer, loss: &Tensor) {
        opt.zero_grad();
        if self.tape.is_empty() {
            loss.backward();
            opt.step();
        } else {
            super::kernel::tape::backward_keeping_graph(loss);
            let held = self.tape.backward_holding();
            opt.step_with(&held);
        }
    }

    /// Trainable parameters actually allocated.
    pub fn trainable_params(&self) -> usize {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel())
            .sum()
    }

    /// The model's output (probabilities when the output layer has a sigmoid).
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.run(x, train, false)
    }

    /// The output before a final sigmoid, if the output layer has one: the
    /// logits a numerically stable binary cross-entropy needs.
    pub fn forward_logits(&self, x: &Tensor, train: bool) -> Tensor {
        self.run(x, train, true)
    }

    /// Whether the output layer ends in a sigmoid.
    pub fn ends_with_sigmoid(&self) -> bool {
        matches!(
            self.ops.get(self.inferred.wiring.output),
            Some(
                Op::Dense(Dense {
                    activation: Activation::Sigmoid,
                    ..
                }) | Op::Activation(Activation::Sigmoid)
            )
        )
    }

    /// Names of the Conv1D layers that run as table lookups over the
    /// embedding feeding them (see `kernel::embed_conv`).
    pub fn lookup_convs(&self) -> Vec<String> {
        self.embedded_of(|op| matches!(op, Op::Conv(_)))
    }

    /// Names of the recurrent layers (on the CPU kernel) that look their
    /// input projections up over the embedding feeding them (see
    /// `kernel::rnn::Lookup`).
    pub fn lookup_recurrents(&self) -> Vec<String> {
        let on_kernel = |r: &super::recurrent::RecurrentLayer| r.path(false) == Path::Kernel;
        self.embedded_of(|op| match op {
            Op::Recurrent(r) => on_kernel(r),
            Op::Bidirectional(b) => on_kernel(&b.forward) && on_kernel(&b.backward),
            _ => false,
        })
    }

    /// Whether Dense node `i` runs on the tape in training with input `x`:
    /// it feeds a recurrent layer on the kernel path (which hands it dL/dy).
    fn taped_dense(&self, i: usize, x: &Tensor) -> bool {
        self.feeding[i].is_some_and(|j| self.on_kernel(j)) && kernel::dense::supports(x)
    }

    /// Whether node `j` is a GRU or LSTM that trains on the kernel path.
    fn on_kernel(&self, j: usize) -> bool {
        matches!(&self.ops[j], Op::Recurrent(r) if r.path(true) == Path::Kernel)
    }

    /// Dense layers that run on the tape in training, each with the
    /// recurrent layer that hands it its gradient: `dense_1 → gru_2`.
    pub fn taped_denses(&self) -> Vec<String> {
        let names = &self.inferred.layers;
        self.feeding
            .iter()
            .enumerate()
            .filter_map(|(i, j)| {
                let j = (*j).filter(|&j| self.on_kernel(j))?;
                Some(format!("{} → {}", names[i].name, names[j].name))
            })
            .collect()
    }

    /// Names of the layers fed by an embedding they run with, among `ops`.
    fn embedded_of(&self, ops: impl Fn(&Op) -> bool) -> Vec<String> {
        self.embedded
            .iter()
            .enumerate()
            .filter(|(i, e)| e.is_some() && ops(&self.ops[*i]))
            .map(|(i, _)| self.inferred.layers[i].name.clone())
            .collect()
    }

    /// The embedding feeding node `i` and its tokens, where the two run as one.
    fn embedded_input<'a>(
        &'a self,
        i: usize,
        x: &'a Tensor,
        outs: &'a [Option<Tensor>],
    ) -> Option<Embedded<'a>> {
        let j = self.embedded[i]?;
        let Op::Embedding(embedding) = &self.ops[j] else {
            return None;
        };
        let tokens = match self.inferred.wiring.sources[j][0] {
            Src::Input => x,
            Src::Layer(k) => outs[k].as_ref().expect("topological order"),
        };
        Some(Embedded { embedding, tokens })
    }

    /// The Conv1D layers the `conv` kernel runs on this model's device (in
    /// training, and in evaluation without gradients), each with the max
    /// pool it takes in the same pass: `conv1d_0 + max_pool1d_1`.
    pub fn kernel_convs(&self) -> Vec<String> {
        let names = &self.inferred.layers;
        self.ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                Op::Conv(c)
                    if self.embedded[i].is_none()
                        && self.vs.device() == Device::Cpu
                        && conv::supports(c.activation, c.dilation) =>
                {
                    Some(match self.pooled[i] {
                        Some(j) => format!("{} + {}", names[i].name, names[j].name),
                        None => names[i].name.clone(),
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// Multi-head attention layers that run in the `attention` kernel (CPU),
    /// each with the residual add it takes: `att1 + res1`.
    pub fn kernel_attentions(&self) -> Vec<String> {
        let names = &self.inferred.layers;
        if self.vs.device() != Device::Cpu {
            return Vec::new();
        }
        self.ops
            .iter()
            .enumerate()
            .filter(|(_, op)| matches!(op, Op::Attention(_)))
            .map(|(i, _)| match self.residual[i] {
                Some(j) => format!("{} + {}", names[i].name, names[j].name),
                None => names[i].name.clone(),
            })
            .collect()
    }

    /// Paths the recurrent layers take in training (for reports and benches).
    pub fn recurrent_paths(&self, train: bool) -> Vec<Path> {
        self.ops
            .iter()
            .flat_map(|op| match op {
                Op::Recurrent(r) => vec![r.path(train)],
                Op::Bidirectional(b) => vec![b.forward.path(train), b.backward.path(train)],
                _ => vec![],
            })
            .collect()
    }

    fn run(&self, x: &Tensor, train: bool, logits: bool) -> Tensor {
        if let Some((cols, reverse, horizon)) = &self.naive {
            let t = if *reverse { 0 } else { x.size()[1] - 1 };
            let last = x.select(1, t).index_select(1, cols);
            return if *horizon == 1 {
                last
            } else {
                let (b, k) = (last.size()[0], last.size()[1]);
                last.unsqueeze(1)
                    .expand([b, *horizon, k], false)
                    .contiguous()
            };
        }
        if train {
            self.tape.clear();
        }
        match &self.frame {
            Some(frame) => {
                let (inner, taken) = frame.enter(x);
                let out = self.run_layers(&inner, train, logits);
                frame.leave(&out, &taken)
            }
            None => self.run_layers(x, train, logits),
        }
    }

    fn run_layers(&self, x: &Tensor, train: bool, logits: bool) -> Tensor {
        let w = &self.inferred.wiring;
        let mut outs: Vec<Option<Tensor>> = (0..self.ops.len()).map(|_| None).collect();
        for &i in &w.order {
            if self.embedded.contains(&Some(i)) || outs[i].is_some() {
                continue; // computed inside the Conv1D it feeds or follows
            }
            let ins: Vec<&Tensor> = w.sources[i]
                .iter()
                .filter_map(|s| match s {
                    Src::Input => Some(x),
                    Src::Layer(j) => outs[*j].as_ref(),
                })
                .collect();
            let strip = logits && i == w.output;
            let y = match &self.ops[i] {
                Op::Dense(d) if strip && d.activation == Activation::Sigmoid => {
                    d.forward_linear(ins[0])
                }
                Op::Dense(d) if strip && d.activation == Activation::Softmax => {
                    d.forward_linear(ins[0])
                }
                Op::Activation(Activation::Sigmoid | Activation::Softmax) if strip => {
                    ins[0].shallow_clone()
                }
                Op::Dense(d) if train && self.taped_dense(i, ins[0]) => {
                    let b = d.b.as_ref().expect("taped Dense layers have a bias");
                    let relu = d.activation == Activation::Relu;
                    kernel::dense::forward(ins[0], &d.w, b, relu, &self.tape)
                }
                Op::Dense(d) => d.forward(ins[0]),
                Op::Flatten => ins[0].flatten(1, -1),
                Op::Dropout(rate) => super::draws::dropout(ins[0], *rate, train),
                Op::Activation(a) => activation::apply(*a, ins[0]),
                Op::Embedding(e) => e.forward(ins[0]),
                Op::Conv(c) => match self.embedded_input(i, x, &outs) {
                    Some(src) => {
                        c.forward_embedded(src.embedding, src.tokens, train.then_some(&self.tape))
                    }
                    None => match self.pooled[i].map(|j| (j, &self.ops[j])) {
                        Some((j, pool)) if c.kernel_path(ins[0], train, true) => {
                            let pool = match pool {
                                Op::Pool(p) => p.fused().expect("only fusable pools are listed"),
                                _ => conv::Pool::GlobalMax,
                            };
                            outs[j] =
                                Some(c.forward_kernel(ins[0], pool, train.then_some(&self.tape)));
                            continue;
                        }
                        _ => c.forward_taped(ins[0], train, Some(&self.tape)),
                    },
                },
                Op::Pool(p) => p.forward(ins[0]),
                Op::GlobalPool { max } => global_pool(ins[0], *max),
                Op::Recurrent(r) => match self.embedded_input(i, x, &outs) {
                    Some(src) => r.forward_embedded(&src, train, Some(&self.tape)),
                    None => r.forward_taped(ins[0], train, Some(&self.tape)),
                },
                Op::Bidirectional(b) => match self.embedded_input(i, x, &outs) {
                    Some(src) => b.forward_embedded(&src, train, Some(&self.tape)),
                    None => b.forward(ins[0], train, Some(&self.tape)),
                },
                Op::Concatenate(dim) => Tensor::cat(&ins, *dim),
                Op::Add => ins[1..]
                    .iter()
                    .fold(ins[0].shallow_clone(), |acc, t| acc + *t),
                Op::Subtract => ins[0] - ins[1],
                Op::Multiply => ins[1..]
                    .iter()
                    .fold(ins[0].shallow_clone(), |acc, t| acc * *t),
                Op::Reshape(dims) => forecast::reshape(ins[0], dims),
                Op::Permute(dims) => forecast::permute(ins[0], dims),
                Op::MovingAverage(k) => {
                    forecast::moving_average_taped(ins[0], *k, train, Some(&self.tape))
                }
                Op::LayerNorm(l) => l.forward(ins[0]),
                Op::Attention(a) if a.kernel_path(ins[0], train) => {
                    let tape = train.then_some(&self.tape);
                    match self.residual[i] {
                        Some(j) => {
                            outs[j] = Some(a.forward_kernel(ins[0], true, tape));
                            continue;
                        }
                        None => a.forward_kernel(ins[0], false, tape),
                    }
                }
                Op::Attention(a) => a.forward(ins[0], train),
                Op::Positional(p) => p.forward(ins[0]),
            };
            outs[i] = Some(y);
        }
        outs[w.output].take().expect("output computed")
    }
}

/// The frame a config asks for (`[model] channel_independent`, `normalize`):
/// `target_inputs` are the targets' columns among the inputs.
fn frame(
    config: &Config,
    device: Device,
    target_inputs: &[usize],
) -> anyhow::Result<Option<Frame>> {
    let m = &config.model;
    if !m.channel_independent && m.normalize == WindowNorm::None {
        return Ok(None);
    }
    let DataSpec::Csv(c) = &config.data else {
        anyhow::bail!(
            "model.channel_independent and model.normalize need a table (data.source = \"csv\")"
        );
    };
    if target_inputs.len() != c.targets.len() {
        anyhow::bail!("model.normalize / channel_independent put each target's window value back on its forecast, so every target must also be a feature; add the targets to data.features");
    }
    let columns = super::shape::input_shape(&config.data)
        .map_err(anyhow::Error::msg)?
        .dims
        .get(1)
        .copied()
        .unwrap_or(0);
    let in_order: Vec<usize> = (0..columns).collect();
    if m.channel_independent && target_inputs != in_order.as_slice() {
        anyhow::bail!("model.channel_independent forecasts every input column: list the same columns, in the same order, in data.features and data.targets");
    }
    let targets: Vec<i64> = target_inputs.iter().map(|&t| t as i64).collect();
    Ok(Some(Frame {
        normalize: m.normalize,
        channel_independent: m.channel_independent,
        targets: Tensor::from_slice(&targets).to_device(device),
        horizon: c.horizon as i64,
    }))
}

/// Conv1D nodes (not already fed by an embedding lookup) whose output only
/// feeds a max pool the `conv` kernel can take (valid padding) or a global
/// max pool: the pool's node.
fn pooled_convs(ops: &[Op], inferred: &Inferred, embedded: &[Option<usize>]) -> Vec<Option<usize>> {
    let w = &inferred.wiring;
    (0..ops.len())
        .map(|i| {
            if !matches!(ops[i], Op::Conv(_)) || embedded[i].is_some() || i == w.output {
                return None;
            }
            let consumers: Vec<usize> = (0..ops.len())
                .filter(|&j| w.sources[j].contains(&Src::Layer(i)))
                .collect();
            match consumers.as_slice() {
                [j] if w.sources[*j].len() == 1 => match &ops[*j] {
                    Op::Pool(p) if p.fused().is_some() => Some(*j),
                    Op::GlobalPool { max: true } => Some(*j),
                    _ => None,
                },
                _ => None,
            }
        })
        .collect()
}

/// Dense nodes with a bias, linear or ReLU, whose output only feeds a GRU
/// or LSTM layer (its only input): that layer's node.
fn dense_feeding_recurrent(ops: &[Op], inferred: &Inferred) -> Vec<Option<usize>> {
    let w = &inferred.wiring;
    (0..ops.len())
        .map(|i| {
            let Op::Dense(d) = &ops[i] else {
                return None;
            };
            if d.b.is_none()
                || !matches!(d.activation, Activation::Linear | Activation::Relu)
                || i == w.output
            {
                return None;
            }
            let consumers: Vec<usize> = (0..ops.len())
                .filter(|&j| w.sources[j].contains(&Src::Layer(i)))
                .collect();
            match consumers.as_slice() {
                [j] if w.sources[*j].len() == 1 && matches!(ops[*j], Op::Recurrent(_)) => Some(*j),
                _ => None,
            }
        })
        .collect()
}

/// Multi-head attention nodes whose output only feeds an add of two
/// inputs, the other being the attention's own input: that add's node.
fn residual_attentions(ops: &[Op], inferred: &Inferred) -> Vec<Option<usize>> {
    let w = &inferred.wiring;
    (0..ops.len())
        .map(|i| {
            if !matches!(ops[i], Op::Attention(_)) || i == w.output {
                return None;
            }
            let own = w.sources[i].first()?;
            let consumers: Vec<usize> = (0..ops.len())
                .filter(|&j| w.sources[j].contains(&Src::Layer(i)))
                .collect();
            match consumers.as_slice() {
                [j] if matches!(ops[*j], Op::Add) => match w.sources[*j].as_slice() {
                    [a, b]
                        if (*a == Src::Layer(i) && b == own)
                            || (a == own && *b == Src::Layer(i)) =>
                    {
                        Some(*j)
                    }
                    _ => None,
                },
                _ => None,
            }
        })
        .collect()
}

/// Conv1D and recurrent nodes whose only input is an embedding that feeds
/// nothing else.
fn embedded_layers(ops: &[Op], inferred: &Inferred) -> Vec<Option<usize>> {
    let w = &inferred.wiring;
    let mut consumers = vec![0usize; ops.len()];
    for src in w.sources.iter().flatten() {
        if let Src::Layer(j) = src {
            consumers[*j] += 1;
        }
    }
    (0..ops.len())
        .map(|i| match (&ops[i], w.sources[i].as_slice()) {
            (op, [Src::Layer(j)])
                if matches!(ops[*j], Op::Embedding(_)) && consumers[*j] == 1 && *j != w.output =>
            {
                match op {
                    Op::Conv(c) if c.fusable_after_embedding() => Some(*j),
                    Op::Recurrent(_) | Op::Bidirectional(_) => Some(*j),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect()
}
