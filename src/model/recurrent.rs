//! GRU, LSTM and SimpleRNN with Keras semantics, and Bidirectional.
//!
//! Shapes: (batch, time, features) → (batch, units), or (batch, time, units)
//! with `return_sequences`. Weights are stored in libtorch's layout (gates
//! stacked r,z,n for GRU and i,f,g,o for LSTM) so the fused kernel can run
//! them:
//!
//! GRU (reset_after, Keras 2 default = libtorch): r = σ(xWᵢᵣ + bᵢᵣ + hWₕᵣ + bₕᵣ),
//! z likewise, n = act(xWᵢₙ + bᵢₙ + r ⊙ (hWₕₙ + bₕₙ)), h' = (1 − z) ⊙ n + z ⊙ h.
//! Parameters 3·(f·u + u·u + 2u).
//! LSTM: i, f, o = σ(…), g = act(…), c' = f ⊙ c + i ⊙ g, h' = o ⊙ act(c');
//! one bias vector as Keras (libtorch's second bias is a constant zero), 4·(f·u + u·u + u).
//!
//! Dropout follows Keras: in training, `dropout` draws one mask per sequence
//! for the inputs and `recurrent_dropout` one mask per sequence for the state
//! entering the recurrent product, each reused at every step. The fused
//! kernel runs whenever it computes the same function (no recurrent mask,
//! default activations); otherwise the input projections of all steps are one
//! matrix product and only the recurrent part is unrolled.
//!
//! A layer fed only by an Embedding reads the token ids (`Embedded`): on the
//! CPU kernel its input projections are looked up in a table over the
//! vocabulary (`rnn::Lookup`), with the same bits as over the embedded values.
use super::activation;
use super::dense::Embedding;
use super::init;
use super::kernel::rnn::{self, Pending, Weights};
use super::kernel::tape::{Entry, Tape};
use super::kernel::{embed_conv, fastmath, gru::Gru, lstm::Lstm, token_rows};
use crate::config::{Activation, CellKind, Init, MergeMode, Recurrent};
use std::sync::Arc;
use tch::{nn, Kind, Tensor};

/// An Embedding's tokens (batch, time) as a recurrent layer's input: the
/// kernel then looks each step's input projections up in a table over the
/// vocabulary (`rnn::Lookup`) instead of multiplying the embedded values.
pub struct Embedded<'a> {
    pub embedding: &'a Embedding,
    pub tokens: &'a Tensor,
}

impl Embedded<'_> {
    /// The embedding's output, as the layer would read it written apart.
    fn values(&self) -> Tensor {
        self.embedding.forward(self.tokens)
    }

    /// Whether the batch repays a table over the vocabulary: at least
    /// twice as many tokens as the vocabulary has rows.
    fn worthwhile(&self) -> bool {
        let vocab = self.embedding.w.size()[0];
        self.tokens.dim() == 2 && embed_conv::worthwhile(vocab, self.tokens.numel() as i64)
    }

    /// The tokens as checked row numbers, shared by every table built on them.
    fn rows(&self) -> Tokens<'_> {
        let (b, t) = self.tokens.size2().expect("(batch, time) token ids");
        Tokens {
            embeddings: &self.embedding.w,
            rows: token_rows(self.tokens, self.embedding.w.size()[0]).into(),
            batch: b as usize,
            steps: t as usize,
        }
    }
}

/// An Embedding's weights and a batch's tokens as row numbers.
struct Tokens<'a> {
    embeddings: &'a Tensor,
    rows: Arc<[usize]>,
    batch: usize,
    steps: usize,
}

impl Tokens<'_> {
    /// The table of `layer`'s input projections over the vocabulary.
    fn lookup(&self, layer: &RecurrentLayer) -> rnn::Lookup {
        rnn::Lookup::new(
            self.embeddings,
            &layer.weights(),
            self.rows.clone(),
            self.batch,
            self.steps,
        )
    }
}

/// Which code path a forward pass takes (reported in model.txt and benches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// libtorch's own RNN kernel (cuDNN on CUDA).
    Fused,
    /// Input projections in one product, the recurrence unrolled under autograd.
    Unrolled,
    /// seqlab's GRU/LSTM loop with a hand-written backward pass (CPU; `kernel::rnn`).
    Kernel,
}

#[derive(Debug)]
pub struct RecurrentLayer {
    pub kind: CellKind,
    pub spec: Recurrent,
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    pub b_ih: Tensor,
    pub b_hh: Tensor,
    /// Tests set this to compare the unrolled path with the fused kernel.
    pub force_unrolled: bool,
    /// Whether the CPU kernel may run (tests turn it off to reach the others).
    pub allow_kernel: bool,
}

impl RecurrentLayer {
    pub fn new(p: &nn::Path, kind: CellKind, spec: &Recurrent, features: i64, how: Init) -> Self {
        let _guard = tch::no_grad_guard();
        let u = spec.units as i64;
        let g = kind.gates() as i64;
        let dev = p.device();
        let zeros = || Tensor::zeros([g * u], (Kind::Float, dev));
        let (w_ih, w_hh, b_ih, b_hh) = match how {
            Init::Keras => {
                let b_ih = zeros();
                if kind == CellKind::Lstm {
                    // unit_forget_bias: the forget gate (second chunk) starts at 1.
                    let _ = b_ih.narrow(0, u, u).fill_(1.0);
                }
                (
                    init::glorot(&[g * u, features], features, g * u, dev),
                    init::orthogonal(g * u, u, dev),
                    b_ih,
                    zeros(),
                )
            }
            Init::Torch => {
                let lim = 1.0 / (u as f64).sqrt();
                (
                    init::uniform(&[g * u, features], lim, dev),
                    init::uniform(&[g * u, u], lim, dev),
                    init::uniform(&[g * u], lim, dev),
                    if kind == CellKind::Gru {
                        init::uniform(&[g * u], lim, dev)
                    } else {
                        zeros()
                    },
                )
            }
        };
        let w_ih = p.var_copy("kernel", &w_ih);
        let w_hh = p.var_copy("recurrent_kernel", &w_hh);
        let b_ih = p.var_copy("bias", &b_ih);
        // GRU (reset_after) trains both biases; LSTM and SimpleRNN have one, as Keras.
        let b_hh = if kind == CellKind::Gru {
            p.var_copy("recurrent_bias", &b_hh)
        } else {
            b_hh
        };
        RecurrentLayer {
            kind,
            spec: spec.clone(),
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            force_unrolled: false,
            allow_kernel: true,
        }
    }

    /// Whether libtorch's fused kernel computes this layer's function.
    fn fusable(&self) -> bool {
        let s = &self.spec;
        match self.kind {
            CellKind::Gru | CellKind::Lstm => {
                s.activation == Activation::Tanh && s.recurrent_activation == Activation::Sigmoid
            }
            CellKind::SimpleRnn => matches!(s.activation, Activation::Tanh | Activation::Relu),
        }
    }

    /// The path a forward pass in this mode takes.
    pub fn path(&self, train: bool) -> Path {
        let masked = train && self.spec.recurrent_dropout > 0.0;
        let kernel = self.allow_kernel
            && matches!(self.kind, CellKind::Gru | CellKind::Lstm)
            && self.w_ih.device() == tch::Device::Cpu
            && fastmath::supports(self.spec.activation, self.spec.recurrent_activation);
        if kernel && !self.force_unrolled {
            Path::Kernel
        } else if self.force_unrolled || masked || !self.fusable() {
            Path::Unrolled
        } else {
            Path::Fused
        }
    }

    /// Forward without a tape: the kernel path only runs where no gradient is needed.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_taped(x, train, None)
    }

    /// Forward; in training, kernel runs are recorded on `tape` for their backward pass.
    pub fn forward_taped(&self, x: &Tensor, train: bool, tape: Option<&Tape>) -> Tensor {
        let path = match self.path(train) {
            Path::Kernel if train && tape.is_none() => Path::Unrolled,
            p => p,
        };
        // the kernel reads a go_backwards layer's steps from the end itself
        let x = if self.spec.go_backwards && path != Path::Kernel {
            x.flip([1])
        } else {
            x.shallow_clone()
        };
        let (b, f) = (x.size()[0], x.size()[2]);
        let u = self.spec.units as i64;
        let x = if train && self.spec.dropout > 0.0 {
            &x * dropout_mask(b, f, self.spec.dropout, x.device()).unsqueeze(1)
        } else {
            x
        };
        let seq = match path {
            Path::Kernel => {
                let mask = (train && self.spec.recurrent_dropout > 0.0)
                    .then(|| dropout_mask(b, u, self.spec.recurrent_dropout, x.device()));
                return self.kernel(&x, u, mask.as_ref(), if train { tape } else { None });
            }
            Path::Fused => self.fused(&x, b, u, train),
            Path::Unrolled => {
                let mask = (train && self.spec.recurrent_dropout > 0.0)
                    .then(|| dropout_mask(b, u, self.spec.recurrent_dropout, x.device()));
                return self.unrolled(&x, b, u, mask.as_ref());
            }
        };
        if self.spec.return_sequences {
            seq
        } else {
            seq.select(1, -1)
        }
    }

    fn kernel(&self, x: &Tensor, u: i64, mask: Option<&Tensor>, tape: Option<&Tape>) -> Tensor {
        let run = self.kernel_run(rnn::Input::Values(x), u, mask, tape.is_some());
        self.kernel_record(x.size()[1], Some(x), run, tape)
    }

    /// The kernel's output, its backward pass recorded on `tape` if any.
    fn kernel_record(
        &self,
        t: i64,
        x: Option<&Tensor>,
        run: (Tensor, rnn::Saved),
        tape: Option<&Tape>,
    ) -> Tensor {
        let (out, pending) = self.kernel_finish(t, x, run, tape.is_some());
        if let (Some(tape), Some(p)) = (tape, pending) {
            tape.record(Entry::Rnn(p));
        }
        out
    }

    /// Whether this layer, in this mode, may look its input projections up
    /// over an embedding: the kernel runs and no input dropout is drawn.
    fn looks_up(&self, train: bool, taped: bool) -> bool {
        self.path(train) == Path::Kernel && !(train && (!taped || self.spec.dropout > 0.0))
    }

    /// Whether `forward_embedded` looks the input projections up for this batch.
    pub fn looks_up_over(&self, src: &Embedded, train: bool, taped: bool) -> bool {
        src.worthwhile() && self.looks_up(train, taped)
    }

    /// This layer over `embedding(tokens)`: the input projections looked up
    /// (`rnn::Lookup`) where the kernel runs, no input dropout is drawn and
    /// the batch repays the table; otherwise the two layers as written. The
    /// same bits either way (tested). Pass the tape in training.
    pub fn forward_embedded(&self, src: &Embedded, train: bool, tape: Option<&Tape>) -> Tensor {
        if !self.looks_up_over(src, train, tape.is_some()) {
            return self.forward_taped(&src.values(), train, tape);
        }
        // the backward pass reads the embedded values, as for any input
        let values = train.then(|| src.values());
        self.kernel_looked_up(
            &src.rows(),
            values.as_ref(),
            if train { tape } else { None },
        )
    }

    fn kernel_looked_up(&self, tokens: &Tokens, x: Option<&Tensor>, tape: Option<&Tape>) -> Tensor {
        let u = self.spec.units as i64;
        let mask = (tape.is_some() && self.spec.recurrent_dropout > 0.0).then(|| {
            let device = self.w_ih.device();
            dropout_mask(tokens.batch as i64, u, self.spec.recurrent_dropout, device)
        });
        let lookup = tokens.lookup(self);
        let input = rnn::Input::Tokens {
            lookup: &lookup,
            values: x,
        };
        let run = self.kernel_run(input, u, mask.as_ref(), tape.is_some());
        self.kernel_record(tokens.steps as i64, x, run, tape)
    }

    fn weights(&self) -> Weights<'_> {
        Weights {
            w_ih: &self.w_ih,
            w_hh: &self.w_hh,
            b_ih: &self.b_ih,
            b_hh: &self.b_hh,
            activation: self.spec.activation,
            recurrent_activation: self.spec.recurrent_activation,
        }
    }

    /// The kernel's time loop: all states, and what its backward pass needs
    /// where `keep`.
    fn kernel_run(
        &self,
        input: rnn::Input,
        u: i64,
        mask: Option<&Tensor>,
        keep: bool,
    ) -> (Tensor, rnn::Saved) {
        let w = self.weights();
        let run = rnn::Run {
            keep,
            reversed: self.spec.go_backwards,
            all_states: self.spec.return_sequences,
        };
        match self.kind {
            CellKind::Lstm => rnn::forward::<Lstm>(&w, input, u, mask, run),
            _ => rnn::forward::<Gru>(&w, input, u, mask, run),
        }
    }

    /// This layer's training time loop over `x` (its input projections
    /// looked up where `lookup` is given) without a mask, as a job another
    /// thread can run (it owns its handles to the weights).
    fn job(&self, x: &Tensor, u: i64, lookup: Option<rnn::Lookup>) -> KernelJob {
        KernelJob {
            lookup,
            layer: RecurrentLayer {
                w_ih: self.w_ih.shallow_clone(),
                w_hh: self.w_hh.shallow_clone(),
                b_ih: self.b_ih.shallow_clone(),
                b_hh: self.b_hh.shallow_clone(),
                spec: self.spec.clone(),
                ..*self
            },
            x: x.shallow_clone(),
            units: u,
        }
    }

    /// The layer's output from the kernel's states; where `taped`, a fresh
    /// leaf in its place and the backward pass that waits for its gradient.
    fn kernel_finish(
        &self,
        t: i64,
        x: Option<&Tensor>,
        (states, saved): (Tensor, rnn::Saved),
        taped: bool,
    ) -> (Tensor, Option<Pending>) {
        let out = if self.spec.return_sequences {
            // a view: a following kernel reads it time-major without a copy
            states.narrow(0, 1, t).transpose(0, 1)
        } else {
            // the last of T + 1 states, or of two used in turn
            states.get(t % states.size()[0])
        };
        let Some(x) = x.filter(|_| taped) else {
            return (out, None);
        };
        let leaf = out.detach().set_requires_grad(true);
        let pending = Pending {
            kind: self.kind,
            w_ih: self.w_ih.shallow_clone(),
            w_hh: self.w_hh.shallow_clone(),
            b_ih: self.b_ih.shallow_clone(),
            b_hh: self.b_hh.shallow_clone(),
            activation: self.spec.activation,
            recurrent_activation: self.spec.recurrent_activation,
            x: x.shallow_clone(),
            saved,
            leaf: leaf.shallow_clone(),
            return_sequences: self.spec.return_sequences,
        };
        (leaf, Some(pending))
    }

    fn fused(&self, x: &Tensor, b: i64, u: i64, train: bool) -> Tensor {
        let h0 = Tensor::zeros([1, b, u], (Kind::Float, x.device()));
        let params = [&self.w_ih, &self.w_hh, &self.b_ih, &self.b_hh];
        match self.kind {
            CellKind::Gru => x.gru(&h0, &params, true, 1, 0.0, train, false, true).0,
            CellKind::Lstm => {
                x.lstm(&[&h0, &h0], &params, true, 1, 0.0, train, false, true)
                    .0
            }
            CellKind::SimpleRnn if self.spec.activation == Activation::Relu => {
                x.rnn_relu(&h0, &params, true, 1, 0.0, train, false, true).0
            }
            CellKind::SimpleRnn => x.rnn_tanh(&h0, &params, true, 1, 0.0, train, false, true).0,
        }
    }

    /// Input projections for all steps in one product; the recurrence in a loop.
    fn unrolled(&self, x: &Tensor, b: i64, u: i64, rec_mask: Option<&Tensor>) -> Tensor {
        let act = self.spec.activation;
        let ract = self.spec.recurrent_activation;
        let projected = x.linear(&self.w_ih, Some(&self.b_ih));
        let mut h = Tensor::zeros([b, u], (Kind::Float, x.device()));
        let mut c = h.shallow_clone();
        let mut outputs = Vec::new();
        for gi in projected.unbind(1) {
            let hm = match rec_mask {
                Some(m) => &h * m,
                None => h.shallow_clone(),
            };
            let gh = hm.linear(&self.w_hh, Some(&self.b_hh));
            h = match self.kind {
                CellKind::Gru => {
                    let i = gi.chunk(3, 1);
                    let r = activation::apply(ract, &(&i[0] + gh.narrow(1, 0, u)));
                    let z = activation::apply(ract, &(&i[1] + gh.narrow(1, u, u)));
                    let n = activation::apply(act, &(&i[2] + r * gh.narrow(1, 2 * u, u)));
                    &n + z * (&h - &n)
                }
                CellKind::Lstm => {
                    let s = (gi + gh).chunk(4, 1);
                    let i = activation::apply(ract, &s[0]);
                    let f = activation::apply(ract, &s[1]);
                    let g = activation::apply(act, &s[2]);
                    let o = activation::apply(ract, &s[3]);
                    c = f * &c + i * g;
                    o * activation::apply(act, &c)
                }
                CellKind::SimpleRnn => activation::apply(act, &(gi + gh)),
            };
            if self.spec.return_sequences {
                outputs.push(h.shallow_clone());
            }
        }
        if self.spec.return_sequences {
            Tensor::stack(&outputs, 1)
        } else {
            h
        }
    }
}

/// One direction's training time loop, run on a thread of its own (it
/// keeps what the backward pass needs).
struct KernelJob {
    layer: RecurrentLayer,
    x: Tensor,
    lookup: Option<rnn::Lookup>,
    units: i64,
}

impl KernelJob {
    fn run(self) -> (Tensor, rnn::Saved) {
        let input = match &self.lookup {
            Some(lookup) => rnn::Input::Tokens {
                lookup,
                values: Some(&self.x),
            },
            None => rnn::Input::Values(&self.x),
        };
        self.layer.kernel_run(input, self.units, None, true)
    }
}

/// An inverted-dropout mask (kept entries scaled by 1/(1 − rate)).
fn dropout_mask(rows: i64, cols: i64, rate: f64, device: tch::Device) -> Tensor {
    super::draws::dropout(
        &Tensor::ones([rows, cols], (Kind::Float, device)),
        rate,
        true,
    )
}

/// Keras' Bidirectional: a forward layer and a `go_backwards` copy whose
/// output sequence is flipped back to forward time, merged.
#[derive(Debug)]
pub struct Bidirectional {
    pub forward: RecurrentLayer,
    pub backward: RecurrentLayer,
    pub merge: MergeMode,
}

impl Bidirectional {
    pub fn new(
        p: &nn::Path,
        kind: CellKind,
        spec: &Recurrent,
        features: i64,
        merge: MergeMode,
        how: Init,
    ) -> Self {
        let forward = RecurrentLayer::new(&(p / "forward"), kind, spec, features, how);
        let mut back_spec = spec.clone();
        back_spec.go_backwards = !spec.go_backwards;
        let backward = RecurrentLayer::new(&(p / "backward"), kind, &back_spec, features, how);
        Bidirectional {
            forward,
            backward,
            merge,
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool, tape: Option<&Tape>) -> Tensor {
        let (y, y_rev) = self.both_at_once(x, None, train, tape).unwrap_or_else(|| {
            (
                self.forward.forward_taped(x, train, tape),
                self.backward.forward_taped(x, train, tape),
            )
        });
        self.merged(y, y_rev)
    }

    /// Both directions over `embedding(tokens)`, each looking its input
    /// projections up where `RecurrentLayer::forward_embedded` would.
    pub fn forward_embedded(&self, src: &Embedded, train: bool, tape: Option<&Tape>) -> Tensor {
        let taped = tape.is_some();
        let looks_up = [&self.forward, &self.backward]
            .iter()
            .all(|l| l.looks_up_over(src, train, taped));
        if !looks_up {
            return self.forward(&src.values(), train, tape);
        }
        let values = train.then(|| src.values());
        let tokens = src.rows();
        let pair = values
            .as_ref()
            .and_then(|x| self.both_at_once(x, Some(&tokens), train, tape));
        let (y, y_rev) = pair.unwrap_or_else(|| {
            let tape = if train { tape } else { None };
            (
                self.forward
                    .kernel_looked_up(&tokens, values.as_ref(), tape),
                self.backward
                    .kernel_looked_up(&tokens, values.as_ref(), tape),
            )
        });
        self.merged(y, y_rev)
    }

    /// The two directions' outputs merged (the backward one's sequence
    /// flipped back to forward time).
    fn merged(&self, y: Tensor, mut y_rev: Tensor) -> Tensor {
        if self.backward.spec.return_sequences {
            y_rev = y_rev.flip([1]);
        }
        match self.merge {
            MergeMode::Concat => Tensor::cat(&[y, y_rev], -1),
            MergeMode::Sum => y + y_rev,
            MergeMode::Mul => y * y_rev,
            MergeMode::Ave => (y + y_rev) * 0.5,
        }
    }

    /// In training, both directions' time loops side by side, one per
    /// thread, where both run the CPU kernel with two or more threads and
    /// draw no dropout mask (draws must keep their order); their backward
    /// passes then run side by side too (`Entry::RnnPair`). Each direction
    /// computes what it computes alone and the gradients go back into the
    /// graph in the same order: the same bits as one after the other
    /// (tested). Measured on 2 threads, in one process, alternating: a
    /// train step of the book's Bidirectional GRU 40.1 → 37.1 ms, of the
    /// IMDB Bidirectional LSTM 121.5 → 104.6 ms; an evaluation pass gained
    /// nothing (10.5 against 11.1 ms), so it keeps the directions in turn.
    fn both_at_once(
        &self,
        x: &Tensor,
        tokens: Option<&Tokens>,
        train: bool,
        tape: Option<&Tape>,
    ) -> Option<(Tensor, Tensor)> {
        let tape = tape.filter(|_| train)?;
        let layers = [&self.forward, &self.backward];
        let drawn = |l: &RecurrentLayer| l.spec.dropout > 0.0 || l.spec.recurrent_dropout > 0.0;
        let runs = tch::get_num_threads() >= 2
            && layers
                .iter()
                .all(|l| l.path(true) == Path::Kernel && !drawn(l));
        if !runs {
            return None;
        }
        let u = self.forward.spec.units as i64;
        let slots: [std::sync::Mutex<Option<(Tensor, rnn::Saved)>>; 2] = Default::default();
        // Tensors may move between threads but not be shared: each job
        // owns handles to its layer's weights and input (both read x, each
        // kernel its own direction's steps).
        let jobs: Vec<_> = layers
            .iter()
            .enumerate()
            .map(|(i, l)| (i, l.job(x, u, tokens.map(|t| t.lookup(l)))))
            .collect();
        super::kernel::team::run(jobs, &|(i, job): (usize, KernelJob)| {
            *slots[i].lock().expect("one writer") = Some(job.run());
        });
        let [a, b] = slots.map(|s| s.into_inner().expect("one writer").expect("both ran"));
        let t = x.size()[1];
        let (y, pa) = self.forward.kernel_finish(t, Some(x), a, true);
        let (y_rev, pb) = self.backward.kernel_finish(t, Some(x), b, true);
        if let (Some(pa), Some(pb)) = (pa, pb) {
            tape.record(Entry::RnnPair(pa, pb));
        }
        Some((y, y_rev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device};

    fn spec(units: usize, return_sequences: bool) -> Recurrent {
        toml::from_str::<Recurrent>(&format!(
            "units = {units}\nreturn_sequences = {return_sequences}"
        ))
        .unwrap()
    }

    /// The unrolled path equals the fused kernel on the same weights (no
    /// masks), forward and gradients, for GRU and LSTM.
    #[test]
    fn unrolled_equals_fused() {
        let _rng = crate::model::rng_lock();
        for kind in [CellKind::Gru, CellKind::Lstm, CellKind::SimpleRnn] {
            for seqs in [false, true] {
                tch::manual_seed(7);
                let vs = VarStore::new(Device::Cpu);
                let mut layer =
                    RecurrentLayer::new(&vs.root(), kind, &spec(5, seqs), 3, Init::Torch);
                layer.allow_kernel = false;
                let x = Tensor::randn([4, 6, 3], (Kind::Float, Device::Cpu));
                let grads = |layer: &RecurrentLayer| {
                    for mut v in vs.trainable_variables() {
                        v.zero_grad();
                    }
                    let y = layer.forward(&x, true);
                    (y.square().sum(Kind::Float)).backward();
                    let g: Vec<Tensor> = vs
                        .trainable_variables()
                        .iter()
                        .map(|v| v.grad().copy())
                        .collect();
                    (y.detach(), g)
                };
                assert_eq!(layer.path(true), Path::Fused);
                let (y_fused, g_fused) = grads(&layer);
                layer.force_unrolled = true;
                let (y_loop, g_loop) = grads(&layer);
                let dy = (&y_fused - &y_loop).abs().max().double_value(&[]);
                assert!(dy < 1e-5, "{kind:?} seqs={seqs}: forward differs by {dy}");
                for (a, b) in g_fused.iter().zip(&g_loop) {
                    let dg = (a - b).abs().max().double_value(&[]);
                    assert!(dg < 1e-5, "{kind:?} seqs={seqs}: gradient differs by {dg}");
                }
            }
        }
    }

    #[test]
    fn recurrent_dropout_takes_unrolled_path_in_training_only() {
        let _rng = crate::model::rng_lock();
        let vs = VarStore::new(Device::Cpu);
        let mut s = spec(4, false);
        s.recurrent_dropout = 0.5;
        let mut layer = RecurrentLayer::new(&vs.root(), CellKind::Gru, &s, 2, Init::Keras);
        layer.allow_kernel = false;
        assert_eq!(layer.path(true), Path::Unrolled);
        assert_eq!(layer.path(false), Path::Fused);
        // In evaluation there is no mask: two passes agree.
        let x = Tensor::randn([3, 5, 2], (Kind::Float, Device::Cpu));
        assert!(layer
            .forward(&x, false)
            .allclose(&layer.forward(&x, false), 0.0, 0.0, false));
        // In training the masks differ between calls.
        assert!(!layer
            .forward(&x, true)
            .allclose(&layer.forward(&x, true), 1e-6, 1e-6, false));
    }

    #[test]
    fn gradients_match_finite_differences() {
        let _rng = crate::model::rng_lock();
        // Both the autograd path and the kernel's hand-written backward.
        for kernel in [false, true] {
            tch::manual_seed(3);
            let vs = VarStore::new(Device::Cpu);
            let mut s = spec(3, false);
            s.recurrent_activation = Activation::HardSigmoid;
            let mut layer = RecurrentLayer::new(&vs.root(), CellKind::Gru, &s, 2, Init::Keras);
            layer.allow_kernel = kernel;
            let x = Tensor::randn([2, 4, 2], (Kind::Float, Device::Cpu));
            let tape = Tape::default();
            let loss = |l: &RecurrentLayer| {
                l.forward_taped(&x, true, Some(&tape))
                    .tanh()
                    .sum(Kind::Float)
            };
            loss(&layer).backward();
            tape.backward();
            let grads: Vec<Tensor> = [&layer.w_hh, &layer.w_ih, &layer.b_hh]
                .iter()
                .map(|w| w.grad().copy())
                .collect();
            let eps = 1e-2;
            for (w, g) in [&layer.w_hh, &layer.w_ih, &layer.b_hh].iter().zip(&grads) {
                for idx in [0i64, 4, 7] {
                    let flat = w.view([-1]);
                    let orig = flat.double_value(&[idx]);
                    let at = |v: f64| {
                        tch::no_grad(|| {
                            let _ = flat.get(idx).fill_(v);
                        });
                        let l = tch::no_grad(|| loss(&layer).double_value(&[]));
                        tape.clear();
                        l
                    };
                    let numeric = (at(orig + eps) - at(orig - eps)) / (2.0 * eps);
                    at(orig);
                    let analytic = g.view([-1]).double_value(&[idx]);
                    assert!(
                        (numeric - analytic).abs() < 2e-3,
                        "kernel={kernel} [{idx}]: numeric {numeric} vs backward {analytic}"
                    );
                }
            }
        }
    }

    #[test]
    fn lstm_counts_one_bias_and_starts_forget_gate_at_one() {
        let _rng = crate::model::rng_lock();
        let vs = VarStore::new(Device::Cpu);
        let layer = RecurrentLayer::new(
            &vs.root(),
            CellKind::Lstm,
            &spec(32, false),
            32,
            Init::Keras,
        );
        let n: i64 = vs
            .trainable_variables()
            .iter()
            .map(|v| v.numel() as i64)
            .sum();
        assert_eq!(n, 4 * (32 * 32 + 32 * 32 + 32));
        assert_eq!(
            layer
                .b_ih
                .narrow(0, 32, 32)
                .sum(Kind::Float)
                .double_value(&[]),
            32.0
        );
    }

    /// Forward output, weight gradients and input gradient of one training
    /// pass (kernel runs go through a tape and its backward).
    fn pass(
        layer: &RecurrentLayer,
        vs: &VarStore,
        x: &Tensor,
        seed: i64,
    ) -> (Tensor, Vec<Tensor>, Tensor) {
        for mut v in vs.trainable_variables() {
            v.zero_grad();
        }
        let mut x = x.detach().set_requires_grad(true);
        tch::manual_seed(seed);
        let tape = Tape::default();
        let y = layer.forward_taped(&(&x * 1.5), true, Some(&tape));
        (y.square().sum(Kind::Float) + y.sum(Kind::Float)).backward();
        tape.backward();
        let g = vs
            .trainable_variables()
            .iter()
            .map(|v| v.grad().copy())
            .collect();
        let gx = x.grad().copy();
        x.zero_grad();
        (y.detach(), g, gx)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// max |a − b| relative to the size of b (sums over many steps grow).
    fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
        max_diff(a, b) / (1.0 + b.abs().max().double_value(&[]))
    }

    /// The CPU kernel (GRU and LSTM cells) equals the fused kernel (no
    /// masks) and the unrolled autograd path (with dropout masks, relu and
    /// hard_sigmoid): forward, weight gradients and input gradients, in
    /// training and in evaluation (where a last-state layer keeps two
    /// states), forwards and `go_backwards` (read from the end, no copy),
    /// with the input batch-major or a time-major view.
    #[test]
    fn kernel_equals_fused_and_unrolled() {
        let _rng = crate::model::rng_lock();
        let cases = [
            (false, 0.0, Activation::Tanh, Activation::Sigmoid, false),
            (true, 0.0, Activation::Tanh, Activation::Sigmoid, true),
            (false, 0.4, Activation::Relu, Activation::HardSigmoid, true),
            (true, 0.3, Activation::Tanh, Activation::Sigmoid, false),
            (true, 0.2, Activation::Linear, Activation::Sigmoid, true),
            (false, 0.0, Activation::Tanh, Activation::Sigmoid, true),
        ];
        for kind in [CellKind::Gru, CellKind::Lstm] {
            for (i, (seqs, dropout, act, ract, backwards)) in cases.into_iter().enumerate() {
                tch::manual_seed(11);
                let vs = VarStore::new(Device::Cpu);
                let mut s = spec(6, seqs);
                s.dropout = dropout;
                s.recurrent_dropout = dropout;
                s.activation = act;
                s.recurrent_activation = ract;
                s.go_backwards = backwards;
                let mut layer = RecurrentLayer::new(&vs.root(), kind, &s, 4, Init::Torch);
                let x = if i % 2 == 0 {
                    Tensor::randn([5, 9, 4], (Kind::Float, Device::Cpu))
                } else {
                    Tensor::randn([9, 5, 4], (Kind::Float, Device::Cpu)).transpose(0, 1)
                };
                assert_eq!(layer.path(true), Path::Kernel);
                let (yk, gk, xk) = pass(&layer, &vs, &x, 3);
                let eval_k = tch::no_grad(|| layer.forward(&x, false));
                layer.allow_kernel = false;
                let eval_r = tch::no_grad(|| layer.forward(&x, false));
                assert!(
                    max_diff(&eval_k, &eval_r) < 1e-5,
                    "{kind:?} case {i}: evaluation differs by {}",
                    max_diff(&eval_k, &eval_r)
                );
                let reference = if dropout == 0.0 && act == Activation::Tanh {
                    Path::Fused
                } else {
                    Path::Unrolled
                };
                assert_eq!(layer.path(true), reference);
                let (yr, gr, xr) = pass(&layer, &vs, &x, 3);
                let case = format!(
                    "{kind:?} seqs={seqs} dropout={dropout} {act:?}/{ract:?} backwards={backwards} vs {reference:?}"
                );
                assert!(
                    max_diff(&yk, &yr) < 1e-5,
                    "{case}: forward differs by {}",
                    max_diff(&yk, &yr)
                );
                for (a, b) in gk.iter().zip(&gr) {
                    assert!(
                        rel_diff(a, b) < 1e-6,
                        "{case}: weight gradient differs by {} (relative)",
                        rel_diff(a, b)
                    );
                }
                assert!(
                    rel_diff(&xk, &xr) < 1e-6,
                    "{case}: input gradient differs by {} (relative)",
                    rel_diff(&xk, &xr)
                );
            }
        }
    }

    /// At book sizes (32 units: the 4-row × 24-column register blocks; a
    /// batch split between threads) the kernel matches the unrolled path,
    /// and it gives the same bits with 1 or 2 threads.
    #[test]
    fn kernel_at_book_size_matches_with_one_or_two_threads() {
        let _rng = crate::model::rng_lock();
        for kind in [CellKind::Gru, CellKind::Lstm] {
            tch::manual_seed(3);
            let vs = VarStore::new(Device::Cpu);
            let mut s = spec(32, true);
            s.recurrent_dropout = 0.25;
            let mut layer = RecurrentLayer::new(&vs.root(), kind, &s, 14, Init::Keras);
            let x = Tensor::randn([70, 40, 14], (Kind::Float, Device::Cpu));
            let threads = tch::get_num_threads();
            let runs: Vec<_> = [1, 2]
                .into_iter()
                .map(|n| {
                    tch::set_num_threads(n);
                    pass(&layer, &vs, &x, 9)
                })
                .collect();
            tch::set_num_threads(threads);
            let ((y1, g1, x1), (y2, g2, x2)) = (&runs[0], &runs[1]);
            // every row, and every group of rows' weight-gradient sums, is
            // computed the same whichever thread runs it: the same bits
            for (a, b) in g1.iter().zip(g2).chain([(x1, x2), (y1, y2)]) {
                assert!(
                    a.equal(b),
                    "{kind:?}: 1 and 2 threads differ by {}",
                    max_diff(a, b)
                );
            }
            layer.allow_kernel = false;
            let (yr, gr, xr) = pass(&layer, &vs, &x, 9);
            assert!(max_diff(y1, &yr) < 1e-5, "forward: {}", max_diff(y1, &yr));
            for (a, b) in g1.iter().zip(&gr).chain([(x1, &xr)]) {
                // sums over 2,800 steps × rows: compare relative to the size
                let scale = 1.0 + b.abs().max().double_value(&[]);
                let rel = max_diff(a, b) / scale;
                assert!(rel < 1e-6, "gradient differs by {rel} (relative)");
            }
        }
    }

    #[test]
    fn gru_kernel_in_a_stack_matches_autograd() {
        let _rng = crate::model::rng_lock();
        // Two GRUs, the first returning sequences: the tape replays both
        // backward passes, the second feeding the first.
        tch::manual_seed(5);
        let vs = VarStore::new(Device::Cpu);
        let mut first = RecurrentLayer::new(
            &(vs.root() / "a"),
            CellKind::Gru,
            &spec(4, true),
            3,
            Init::Keras,
        );
        let mut second = RecurrentLayer::new(
            &(vs.root() / "b"),
            CellKind::Gru,
            &spec(5, false),
            4,
            Init::Keras,
        );
        let x = Tensor::randn([3, 7, 3], (Kind::Float, Device::Cpu));
        let run = |a: &RecurrentLayer, b: &RecurrentLayer| {
            for mut v in vs.trainable_variables() {
                v.zero_grad();
            }
            let tape = Tape::default();
            let y = b.forward_taped(&a.forward_taped(&x, true, Some(&tape)), true, Some(&tape));
            y.tanh().sum(Kind::Float).backward();
            tape.backward();
            vs.trainable_variables()
                .iter()
                .map(|v| v.grad().copy())
                .collect::<Vec<_>>()
        };
        let kernel = run(&first, &second);
        first.allow_kernel = false;
        second.allow_kernel = false;
        let fused = run(&first, &second);
        for (a, b) in kernel.iter().zip(&fused) {
            assert!(
                max_diff(a, b) < 1e-5,
                "stacked gradient differs by {}",
                max_diff(a, b)
            );
        }
    }

    /// In training, a Bidirectional's directions run side by side where
    /// there are two threads: output, every weight gradient and the input
    /// gradient equal the two layers run one after the other, bit for bit
    /// (GRU and LSTM, last state and sequences); evaluation runs them in
    /// turn, to the same output.
    #[test]
    fn both_directions_at_once_equal_one_after_the_other() {
        let _rng = crate::model::rng_lock();
        let before = tch::get_num_threads();
        tch::set_num_threads(2);
        for kind in [CellKind::Gru, CellKind::Lstm] {
            for seqs in [false, true] {
                tch::manual_seed(5);
                let vs = VarStore::new(Device::Cpu);
                let bi = Bidirectional::new(
                    &vs.root(),
                    kind,
                    &spec(8, seqs),
                    3,
                    MergeMode::Concat,
                    Init::Keras,
                );
                let x =
                    Tensor::randn([40, 7, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
                let weight = Tensor::randn(
                    [40, if seqs { 7 } else { 1 }, 16],
                    (Kind::Float, Device::Cpu),
                );
                let run = |together: bool| {
                    for v in vs
                        .trainable_variables()
                        .iter_mut()
                        .chain([&mut x.shallow_clone()])
                    {
                        let mut g = v.grad();
                        if g.defined() {
                            let _ = g.zero_();
                        }
                    }
                    let tape = Tape::default();
                    let y = if together {
                        bi.forward(&x, true, Some(&tape))
                    } else {
                        let y = bi.forward.forward_taped(&x, true, Some(&tape));
                        let mut y_rev = bi.backward.forward_taped(&x, true, Some(&tape));
                        if seqs {
                            y_rev = y_rev.flip([1]);
                        }
                        Tensor::cat(&[y, y_rev], -1)
                    };
                    assert_eq!(tape.pairs(), usize::from(together));
                    let y = if seqs { y } else { y.unsqueeze(1) };
                    (&y * &weight).sum(Kind::Float).backward();
                    tape.backward();
                    let mut out = vec![y.detach(), x.grad().copy()];
                    out.extend(vs.trainable_variables().iter().map(|v| v.grad().copy()));
                    out
                };
                let together = run(true);
                let apart = run(false);
                for (a, b) in together.iter().zip(&apart) {
                    assert!(a.equal(b), "{kind:?} seqs {seqs}");
                }
                let _guard = tch::no_grad_guard();
                let eval = bi.forward(&x, false, None);
                let y = bi.forward.forward_taped(&x, false, None);
                let mut y_rev = bi.backward.forward_taped(&x, false, None);
                if seqs {
                    y_rev = y_rev.flip([1]);
                }
                assert!(eval.equal(&Tensor::cat(&[y, y_rev], -1)));
            }
        }
        tch::set_num_threads(before);
    }

    /// A layer fed by an Embedding looks its input projections up
    /// (`rnn::Lookup`) and computes the same bits as over the embedded
    /// values: output in evaluation, and in training the output and every
    /// gradient (embedding included), for GRU and LSTM, last state or
    /// sequences, forwards or `go_backwards`, with a recurrent dropout mask,
    /// alone and as a Bidirectional (both directions side by side), with
    /// one and two threads.
    #[test]
    fn embedding_lookup_equals_embedded_values() {
        let _rng = crate::model::rng_lock();
        let threads = tch::get_num_threads();
        let cases = [(false, false, 0.0), (true, true, 0.0), (false, true, 0.3)];
        for n in [1, 2] {
            tch::set_num_threads(n);
            for kind in [CellKind::Gru, CellKind::Lstm] {
                for (seqs, backwards, rec_drop) in cases {
                    tch::manual_seed(11);
                    let vs = VarStore::new(Device::Cpu);
                    let embedding = Embedding::new(&(vs.root() / "e"), 20, 5, Init::Keras);
                    let mut sp = spec(8, seqs);
                    sp.go_backwards = backwards;
                    sp.recurrent_dropout = rec_drop;
                    let layer = RecurrentLayer::new(&(vs.root() / "r"), kind, &sp, 5, Init::Keras);
                    let bi = Bidirectional::new(
                        &(vs.root() / "b"),
                        kind,
                        &spec(8, seqs),
                        5,
                        MergeMode::Concat,
                        Init::Keras,
                    );
                    // 21 rows × 6 steps: 126 tokens, more than twice the vocabulary
                    let tokens = Tensor::randint(20, [21, 6], (Kind::Int64, Device::Cpu));
                    let src = Embedded {
                        embedding: &embedding,
                        tokens: &tokens,
                    };
                    let what = format!("{kind:?} seqs {seqs} backwards {backwards} threads {n}");
                    assert!(layer.looks_up_over(&src, false, false), "{what}");
                    assert!(layer.looks_up_over(&src, true, true), "{what}");
                    let eval = |looked_up: bool, bidirectional: bool| {
                        tch::no_grad(|| match (looked_up, bidirectional) {
                            (true, false) => layer.forward_embedded(&src, false, None),
                            (false, false) => layer.forward_taped(&src.values(), false, None),
                            (true, true) => bi.forward_embedded(&src, false, None),
                            (false, true) => bi.forward(&src.values(), false, None),
                        })
                    };
                    for bidirectional in [false, true] {
                        assert!(
                            eval(true, bidirectional).equal(&eval(false, bidirectional)),
                            "evaluation, {what}, bidirectional {bidirectional}"
                        );
                    }
                    let train = |looked_up: bool, bidirectional: bool| {
                        for mut v in vs.trainable_variables() {
                            v.zero_grad();
                        }
                        tch::manual_seed(3);
                        let tape = Tape::default();
                        let y = match (looked_up, bidirectional) {
                            (true, false) => layer.forward_embedded(&src, true, Some(&tape)),
                            (false, false) => layer.forward_taped(&src.values(), true, Some(&tape)),
                            (true, true) => bi.forward_embedded(&src, true, Some(&tape)),
                            (false, true) => bi.forward(&src.values(), true, Some(&tape)),
                        };
                        if bidirectional {
                            assert_eq!(tape.pairs(), usize::from(n >= 2), "{what}");
                        }
                        (y.square().sum(Kind::Float) + y.sum(Kind::Float)).backward();
                        tape.backward();
                        let mut out = vec![y.detach()];
                        out.extend(vs.trainable_variables().iter().map(|v| {
                            let g = v.grad();
                            if g.defined() {
                                g.copy()
                            } else {
                                Tensor::zeros([0], (Kind::Float, Device::Cpu))
                            }
                        }));
                        out
                    };
                    for bidirectional in [false, true] {
                        let (a, b) = (train(true, bidirectional), train(false, bidirectional));
                        assert!(a[0].abs().sum(Kind::Float).double_value(&[]) > 0.0);
                        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                            assert!(
                                a.equal(b),
                                "training, {what}, bidirectional {bidirectional}, tensor {i}"
                            );
                        }
                    }
                }
            }
        }
        tch::set_num_threads(threads);
    }
}
