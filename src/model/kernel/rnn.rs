//! The time loop of a recurrent layer outside autograd (CPU), for a `gru`
//! or `lstm` cell, with its backward pass through time.
//!
//! libtorch's autograd never sees the steps: the layer's output enters the
//! graph as a fresh leaf recorded on the tape, and once the loss has been
//! back-propagated to it, [`Pending::backward`] runs BPTT and hands the
//! weight gradients and dL/dx back to the graph (`tape::accumulate`,
//! `tape::feed_back`).
//!
//! Everything runs per step, on the rows of one thread, while the step's
//! values are in cache: the input projection gᵢ = x Wᵢₕᵀ + bᵢₕ and the
//! recurrent product gₕ = (h ⊙ m) Wₕₕᵀ + bₕₕ in `small_gemm`, the cell's
//! arithmetic over contiguous buffers; backward, the gate gradients, dL/dx
//! and the step's share of the weight and bias gradients. No product over
//! all T·B rows is ever formed (those were memory-bound BLAS calls). The
//! batch's rows are split between libtorch's threads, each running its own
//! time loop (rows never interact); every row is computed the same way
//! whichever thread runs it, and the weight gradients are summed per group
//! of 16 rows, the groups added in order (each thread a range of gate
//! rows), so a layer gives the same bits with any thread count. The cells
//! equal libtorch's fused kernels and the unrolled autograd path (tests in
//! `recurrent.rs`, forward and gradients).
use super::tape::{Handoff, Held};
use super::{floats, floats_mut, small_gemm, split_chunks, split_rows, team};
use crate::config::{Activation, CellKind};
use std::ops::Range;
use tch::{Kind, Tensor};

/// The weights of one direction (libtorch layout, gates stacked).
pub struct Weights<'a> {
    pub w_ih: &'a Tensor,
    pub w_hh: &'a Tensor,
    pub b_ih: &'a Tensor,
    pub b_hh: &'a Tensor,
    pub activation: Activation,
    pub recurrent_activation: Activation,
}

/// One step of one thread's rows, forward: (rows, GATES·U) gate inputs,
/// (rows, U) states.
pub struct ForwardStep<'a> {
    pub gi: &'a [f32],
    pub gh: &'a [f32],
    pub prev: &'a [f32],
    /// The previous carried state (LSTM's c; empty for a GRU).
    pub prev_c: &'a [f32],
    pub h: &'a mut [f32],
    pub c: &'a mut [f32],
    /// This step's rows of the cell's saved buffers.
    pub saved: Vec<&'a mut [f32]>,
    pub units: usize,
}

/// One step of one thread's rows, backward.
pub struct BackwardStep<'a> {
    pub saved: Vec<&'a [f32]>,
    pub prev: &'a [f32],
    pub prev_c: &'a [f32],
    /// dL/dh at this step, everything included.
    pub dh: &'a [f32],
    /// In: dL/dc at this step from later steps; out: dL/dc one step earlier.
    pub dc: &'a mut [f32],
    pub dgi: &'a mut [f32],
    /// dL/dgₕ where it differs from dL/dgᵢ.
    pub dgh: Option<&'a mut [f32]>,
    /// The part of dL/dh one step earlier that bypasses the recurrent product.
    pub direct: &'a mut [f32],
    pub units: usize,
}

/// One cell kind's step arithmetic.
pub trait Cell {
    /// Gate blocks: gᵢ and gₕ are GATES·U wide.
    const GATES: usize;
    /// (T, B, U) buffers the backward pass needs besides the states.
    const SAVED: usize;
    /// Whether the cell carries a second state (LSTM's c).
    const CARRY: bool;
    /// Whether dL/dgₕ differs from dL/dgᵢ.
    const SEPARATE_DGH: bool;
    fn forward(act: Activation, ract: Activation, step: ForwardStep<'_>);
    fn backward(act: Activation, ract: Activation, step: BackwardStep<'_>);
}

/// `impl Cell for $cell` from a cell module's `forward_body` and
/// `backward_body` (generic over the activation functions):
/// one copy of each body per activation pair, each compiled with AVX2 when
/// the CPU has it.
macro_rules! impl_cell {
    ($cell:ty { GATES: $gates:expr, SAVED: $saved:expr, CARRY: $carry:expr, SEPARATE_DGH: $sep:expr }) => {
        impl $crate::model::kernel::rnn::Cell for $cell {
            const GATES: usize = $gates;
            const SAVED: usize = $saved;
            const CARRY: bool = $carry;
            const SEPARATE_DGH: bool = $sep;

            fn forward(
                act: $crate::config::Activation,
                ract: $crate::config::Activation,
                step: $crate::model::kernel::rnn::ForwardStep<'_>,
            ) {
                forward_step(act, ract, step)
            }

            fn backward(
                act: $crate::config::Activation,
                ract: $crate::config::Activation,
                step: $crate::model::kernel::rnn::BackwardStep<'_>,
            ) {
                backward_step(act, ract, step)
            }
        }

        $crate::model::kernel::fastmath::avx2_dispatch!(fn forward_step(
            act: $crate::config::Activation,
            ract: $crate::config::Activation,
            step: $crate::model::kernel::rnn::ForwardStep<'_>,
        ) => forward_pair);
        $crate::model::kernel::fastmath::avx2_dispatch!(fn backward_step(
            act: $crate::config::Activation,
            ract: $crate::config::Activation,
            step: $crate::model::kernel::rnn::BackwardStep<'_>,
        ) => backward_pair);

        #[inline(always)]
        fn forward_pair(
            act: $crate::config::Activation,
            ract: $crate::config::Activation,
            step: $crate::model::kernel::rnn::ForwardStep<'_>,
        ) {
            $crate::model::kernel::fastmath::with_activations!(act, ract, forward_body, step)
        }

        #[inline(always)]
        fn backward_pair(
            act: $crate::config::Activation,
            ract: $crate::config::Activation,
            step: $crate::model::kernel::rnn::BackwardStep<'_>,
        ) {
            $crate::model::kernel::fastmath::with_activations!(act, ract, backward_body, step)
        }
    };
}
pub(crate) use impl_cell;

/// Where the rows of each step lie in the input's buffer, whichever of
/// batch-major (B, T, F) or time-major (T, B, F) it is: no copy to put it
/// in one order, and a `go_backwards` layer reads its steps from the end
/// instead of a flipped copy.
#[derive(Clone, Copy)]
struct Layout {
    steps: usize,
    /// Distance between consecutive time steps, and between batch rows.
    step_stride: usize,
    row_stride: usize,
    reversed: bool,
}

impl Layout {
    /// The input's buffer (contiguous in one of the two orders) and where
    /// its rows are.
    fn of(x: &Tensor, reversed: bool) -> (Tensor, Layout) {
        let (b, t, f) = x.size3().expect("(batch, time, features)");
        let (b, t, f) = (b as usize, t as usize, f as usize);
        let batch_major = Layout {
            steps: t,
            step_stride: f,
            row_stride: t * f,
            reversed,
        };
        let time_major = Layout {
            step_stride: b * f,
            row_stride: f,
            ..batch_major
        };
        let x = x.detach();
        if x.is_contiguous() {
            (x, batch_major)
        } else {
            (x.transpose(0, 1).contiguous(), time_major)
        }
    }

    /// The time step that processing step `step` reads.
    fn time(&self, step: usize) -> usize {
        if self.reversed {
            self.steps - 1 - step
        } else {
            step
        }
    }

    /// Offset of batch row `row` at processing step `step`.
    fn at(&self, step: usize, row: usize) -> usize {
        self.time(step) * self.step_stride + row * self.row_stride
    }
}

/// What a forward run reads: values x (B, T, F), or the tokens of the
/// Embedding feeding the layer with their gate inputs looked up; `values`
/// (the embedding's output) is what a backward pass reads for dWᵢₕ and dL/dx.
pub enum Input<'a> {
    Values(&'a Tensor),
    Tokens {
        lookup: &'a Lookup,
        values: Option<&'a Tensor>,
    },
}

/// The input projections of an Embedding's whole vocabulary, for a layer it
/// feeds: gᵢ of token v is row v of P = E Wᵢₕᵀ + bᵢₕ (vocabulary, GATES·U),
/// so a step looks its rows up instead of multiplying. P is computed by the
/// same small products as a step's projection, bias added last, so every
/// gᵢ has the bits the step would have computed. For the book's IMDB LSTM
/// (10,000 words, 32 dimensions, 128 × 500 tokens a batch) P costs 41 M
/// multiply-adds where the steps' projections cost 262 M. Forward only: the
/// backward pass reads the embedding's output as it does any input.
pub struct Lookup {
    table: Tensor,
    /// Token ids as checked row numbers, (batch, time) row-major.
    tokens: std::sync::Arc<[usize]>,
    batch: usize,
    steps: usize,
}

impl Lookup {
    /// P for `embeddings` (vocabulary, F) and this direction's weights;
    /// `tokens` are the (batch, time) ids as row numbers (each below the
    /// vocabulary size: see `kernel::token_rows`).
    pub fn new(
        embeddings: &Tensor,
        w: &Weights,
        tokens: std::sync::Arc<[usize]>,
        batch: usize,
        steps: usize,
    ) -> Lookup {
        let _guard = tch::no_grad_guard();
        assert_eq!(tokens.len(), batch * steps, "one token per (row, step)");
        let e = embeddings.detach().contiguous();
        let (vocab, f) = e.size2().expect("(vocabulary, dims)");
        let wih_t = transposed(w.w_ih);
        let b_ih = w.b_ih.detach().contiguous();
        let gu = w.w_ih.size()[0];
        let table = Tensor::empty([vocab, gu], (Kind::Float, e.device()));
        let (ef, b, (f, gu)) = (floats(&e), floats(&b_ih), (f as usize, gu as usize));
        // each thread's rows of P
        let chunks = team::split(vocab as usize, 64);
        let parts = split_chunks(floats_mut(&table), vocab as usize, gu, &chunks);
        let parts: Vec<_> = chunks.into_iter().zip(parts).collect();
        team::run(parts, &|(rows, out): (Range<usize>, &mut [f32])| {
            small_gemm::gemm(&ef[rows.start * f..rows.end * f], f, &wih_t, gu, None, out);
            add_bias(out, b);
        });
        Lookup {
            table,
            tokens,
            batch,
            steps,
        }
    }
}

/// What the backward pass needs from the forward pass.
pub struct Saved {
    /// The input's buffer and where its rows are (absent where a lookup
    /// ran without values: no backward pass follows).
    x: Option<Tensor>,
    layout: Layout,
    /// States h₀ … h_T, (T+1, B, U), and c₀ … c_T for a carrying cell.
    h: Tensor,
    c: Option<Tensor>,
    /// State entering the recurrent product, h ⊙ mask, (T, B, U).
    hm: Tensor,
    /// The cell's saved buffers, (T, B, U) each.
    buffers: Vec<Tensor>,
    mask: Option<Tensor>,
}

impl Saved {
    fn steps_batch_units(&self) -> (i64, i64, i64) {
        self.hm.size3().expect("(T, B, U)")
    }
}

/// One thread's rows of the forward buffers, per step.
struct ForwardRows<'a> {
    rows: Range<usize>,
    h: Vec<&'a mut [f32]>,
    c: Option<Vec<&'a mut [f32]>>,
    hm: Option<Vec<&'a mut [f32]>>,
    /// [buffer][step]
    buffers: Vec<Vec<&'a mut [f32]>>,
}

/// What every forward thread reads.
struct ForwardShared<'a> {
    /// The input's buffer and where its rows are, and Wᵢₕᵀ (F, GATES·U);
    /// or the looked-up projections and the tokens, (batch, time) row-major.
    x: &'a [f32],
    lookup: Option<(&'a [f32], &'a [usize])>,
    layout: Layout,
    features: usize,
    wih_t: &'a [f32],
    b_ih: &'a [f32],
    mask: Option<&'a [f32]>,
    whh_t: &'a [f32],
    b_hh: &'a [f32],
    units: usize,
    activation: Activation,
    recurrent_activation: Activation,
}

/// The state before `step` and the one it writes: steps `step` and
/// `step + 1` of all T + 1, or of two reused in turn.
fn adjacent<'a>(states: &'a mut [&mut [f32]], step: usize) -> (&'a [f32], &'a mut [f32]) {
    let (from, to) = (step % states.len(), (step + 1) % states.len());
    if from < to {
        let (before, after) = states.split_at_mut(to);
        (&*before[from], &mut *after[0])
    } else {
        let (before, after) = states.split_at_mut(from);
        (&*after[0], &mut *before[to])
    }
}

fn forward_rows<C: Cell>(p: ForwardRows, s: &ForwardShared) {
    let (u, gu) = (s.units, C::GATES * s.units);
    let rows = p.rows;
    let f = s.features;
    let mut gh = vec![0f32; rows.len() * gu];
    let mut gi = vec![0f32; rows.len() * gu];
    let mask = s.mask.map(|m| &m[rows.start * u..rows.end * u]);
    let (mut h, mut c, mut hm, mut buffers) = (p.h, p.c, p.hm, p.buffers);
    for step in 0..s.layout.steps {
        let (prev, next) = adjacent(&mut h, step);
        if let (Some(hm), Some(m)) = (hm.as_mut(), mask) {
            for ((d, &x), &k) in hm[step].iter_mut().zip(prev).zip(m) {
                *d = x * k;
            }
        }
        let input: &[f32] = match &hm {
            Some(hm) => hm[step],
            None => prev,
        };
        small_gemm::gemm(input, u, s.whh_t, gu, Some(s.b_hh), &mut gh);
        if let Some((table, tokens)) = s.lookup {
            let time = s.layout.time(step);
            for (row, g) in rows.clone().zip(gi.chunks_exact_mut(gu)) {
                let token = tokens[row * s.layout.steps + time];
                g.copy_from_slice(&table[token * gu..][..gu]);
            }
        } else {
            // gᵢ = x Wᵢₕᵀ + bᵢₕ for this step's rows, summed from zero and
            // the bias added last, as a BLAS product with a bias does
            let x = &s.x[s.layout.at(step, rows.start)..];
            let lda = s.layout.row_stride;
            small_gemm::gemm_strided(x, lda, rows.len(), f, s.wih_t, gu, None, &mut gi);
            add_bias(&mut gi, s.b_ih);
        }
        let (prev_c, next_c): (&[f32], &mut [f32]) = match c.as_mut() {
            Some(c) => adjacent(c, step),
            None => (&[], &mut []),
        };
        C::forward(
            s.activation,
            s.recurrent_activation,
            ForwardStep {
                gi: &gi,
                gh: &gh,
                prev,
                prev_c,
                h: next,
                c: next_c,
                saved: buffers
                    .iter_mut()
                    .map(|b| {
                        let kept = step.min(b.len() - 1);
                        &mut *b[kept]
                    })
                    .collect(),
                units: u,
            },
        );
    }
}

/// A (rows, cols) weight's floats transposed, (cols, rows) row-major.
fn transposed(w: &Tensor) -> Vec<f32> {
    let w = w.detach().contiguous();
    let (rows, cols) = w.size2().expect("a weight matrix");
    let (rows, cols) = (rows as usize, cols as usize);
    let mut t = vec![0f32; rows * cols];
    for (i, row) in floats(&w).chunks_exact(cols).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            t[j * rows + i] = v;
        }
    }
    t
}

/// How a forward run goes.
#[derive(Clone, Copy)]
pub struct Run {
    /// A backward pass will follow: keep everything it needs.
    pub keep: bool,
    /// Steps from the last to the first (`go_backwards`), without a
    /// flipped copy of the input; states come in processing order.
    pub reversed: bool,
    /// Return every state; without it (and without `keep`) two state
    /// buffers are used in turn and only the last state is meaningful.
    pub all_states: bool,
}

/// Runs the cell over x (B, T, F); returns the states h (T+1, B, U) (or
/// two, the last at index T mod 2) and what backward needs. `mask` (B, U)
/// multiplies h before the recurrent product. Without `keep` (no backward
/// pass will follow), the cell's buffers hold one step, overwritten at
/// every step: the same arithmetic without writing (and first touching) T
/// steps of them.
pub fn forward<C: Cell>(
    w: &Weights,
    input: Input,
    units: i64,
    mask: Option<&Tensor>,
    run: Run,
) -> (Tensor, Saved) {
    let _guard = tch::no_grad_guard();
    let (x, lookup) = match input {
        Input::Values(x) => (Some(x), None),
        Input::Tokens { lookup, values } => (values, Some(lookup)),
    };
    let (b, t, f) = match (x, lookup) {
        (Some(x), _) => x.size3().expect("(batch, time, features)"),
        (None, Some(l)) => (l.batch as i64, l.steps as i64, 0),
        (None, None) => unreachable!("values or a lookup"),
    };
    if let Some(l) = lookup {
        assert_eq!(
            (l.batch as i64, l.steps as i64),
            (b, t),
            "tokens match the values"
        );
    }
    let u = units;
    let keep = run.keep;
    assert!(
        !keep || x.is_some(),
        "a backward pass reads the input's values"
    );
    let (xs, layout) = match x {
        Some(x) => {
            let (xs, layout) = Layout::of(x, run.reversed);
            (Some(xs), layout)
        }
        None => (
            None,
            Layout {
                steps: t as usize,
                step_stride: 0,
                row_stride: 0,
                reversed: run.reversed,
            },
        ),
    };
    let device = x.map_or_else(|| lookup.expect("a lookup").table.device(), Tensor::device);
    let (wih_t, whh_t) = (transposed(w.w_ih), transposed(w.w_hh));
    let b_ih = w.b_ih.detach().contiguous();
    let b_hh = w.b_hh.detach().contiguous();
    let opts = (Kind::Float, device);
    let kept_states = if keep || run.all_states { t + 1 } else { 2 };
    let zero_start = || {
        let s = Tensor::empty([kept_states, b, u], opts);
        let _ = s.get(0).zero_();
        s
    };
    let h = zero_start();
    let c = C::CARRY.then(zero_start);
    let hm = if mask.is_some() {
        Tensor::empty([t, b, u], opts)
    } else {
        h.narrow(0, 0, kept_states - 1)
    };
    let kept_steps = if keep { t } else { 1 };
    let buffers: Vec<Tensor> = (0..C::SAVED)
        .map(|_| Tensor::empty([kept_steps, b, u], opts))
        .collect();
    let mask = mask.map(|m| m.detach().contiguous());
    let (bs, us) = (b as usize, u as usize);
    let chunks = team::split(bs, 16);
    fn split<'a>(
        t: &'a Tensor,
        b: usize,
        u: usize,
        chunks: &[Range<usize>],
    ) -> Vec<Vec<&'a mut [f32]>> {
        split_rows(floats_mut(t), b, u, chunks)
    }
    let mut h_parts = split(&h, bs, us, &chunks);
    let mut c_parts = c.as_ref().map(|c| split(c, bs, us, &chunks));
    let mut hm_parts = mask.as_ref().map(|_| split(&hm, bs, us, &chunks));
    let mut buffer_parts: Vec<_> = buffers.iter().map(|t| split(t, bs, us, &chunks)).collect();
    let mut parts: Vec<ForwardRows> = chunks
        .iter()
        .rev()
        .map(|rows| ForwardRows {
            rows: rows.clone(),
            h: h_parts.pop().expect("one part per chunk"),
            c: c_parts.as_mut().and_then(Vec::pop),
            hm: hm_parts.as_mut().and_then(Vec::pop),
            buffers: buffer_parts
                .iter_mut()
                .map(|b| b.pop().expect("one part per chunk"))
                .collect(),
        })
        .collect();
    parts.reverse();
    let shared = ForwardShared {
        x: xs.as_ref().map_or(&[], floats),
        lookup: lookup.map(|l| (floats(&l.table), &l.tokens[..])),
        layout,
        features: f as usize,
        wih_t: &wih_t,
        b_ih: floats(&b_ih),
        mask: mask.as_ref().map(floats),
        whh_t: &whh_t,
        b_hh: floats(&b_hh),
        units: us,
        activation: w.activation,
        recurrent_activation: w.recurrent_activation,
    };
    team::run(parts, &|p| forward_rows::<C>(p, &shared));
    let saved = Saved {
        x: xs,
        layout,
        h: h.shallow_clone(),
        c,
        hm,
        buffers,
        mask,
    };
    (h, saved)
}

/// Gradients of one direction.
pub struct Grads {
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    pub b_ih: Tensor,
    pub b_hh: Tensor,
    /// dL/dx, (B, T, F), when asked for.
    pub x: Option<Tensor>,
}

/// What every backward thread reads: the saved forward buffers and dL/dh.
struct BackwardShared<'a> {
    h: &'a [f32],
    c: Option<&'a [f32]>,
    buffers: Vec<&'a [f32]>,
    /// The input's buffer and where its rows are, and the states entering
    /// the recurrent product (T, B, U), for the weight gradients.
    x: &'a [f32],
    layout: Layout,
    hm: &'a [f32],
    /// dL/dh from outside: (T, B, U), or (B, U) for the last state only.
    dout: &'a [f32],
    last_only: bool,
    mask: Option<&'a [f32]>,
    w_hh: &'a [f32],
    /// Wᵢₕ (GATES·U, F), for dL/dx.
    w_ih: &'a [f32],
    batch: usize,
    units: usize,
    features: usize,
    activation: Activation,
    recurrent_activation: Activation,
}

/// Rows whose weight-gradient sums run together: every group's sum is the
/// same whichever thread runs it, and the groups' sums are added in order,
/// so the gradients do not depend on the thread count.
const GROUP: usize = 16;

/// One thread's rows (whole groups): its rows of dL/dx (B, T, F), and the
/// slot for its groups' sums.
struct BackwardRows<'a> {
    rows: Range<usize>,
    dx: Option<&'a mut [f32]>,
    sums: &'a std::sync::Mutex<Vec<Sums>>,
}

/// One group's sums over its rows and every step: the weight gradients
/// transposed, Wᵢₕᵀ (F, GATES·U) and Wₕₕᵀ (U, GATES·U), and both biases'.
#[derive(Default)]
struct Sums {
    w_ih_t: Vec<f32>,
    w_hh_t: Vec<f32>,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
}

impl Sums {
    fn zeros(f: usize, u: usize, gu: usize) -> Self {
        Self {
            w_ih_t: vec![0.0; f * gu],
            w_hh_t: vec![0.0; u * gu],
            b_ih: vec![0.0; gu],
            b_hh: vec![0.0; gu],
        }
    }
}

/// The groups' sums added in order, each element from zero as one running
/// total would add them, and turned back into the weights' layout: Wᵢₕ
/// (GATES·U, F), Wₕₕ (GATES·U, U) and the biases. The threads take ranges
/// of gate rows, so the bits do not depend on how many there are.
fn total(groups: &[Sums], f: usize, u: usize, gu: usize, opts: (Kind, tch::Device)) -> Grads {
    let gi = gu as i64;
    let (w_ih, w_hh) = (
        Tensor::empty([gi, f as i64], opts),
        Tensor::empty([gi, u as i64], opts),
    );
    let (b_ih, b_hh) = (Tensor::empty([gi], opts), Tensor::empty([gi], opts));
    let chunks = team::split(gu, 32);
    let rows_of = |buf, width| split_chunks(buf, gu, width, &chunks);
    let parts: Vec<_> = chunks
        .iter()
        .cloned()
        .zip(rows_of(floats_mut(&w_ih), f))
        .zip(rows_of(floats_mut(&w_hh), u))
        .zip(
            rows_of(floats_mut(&b_ih), 1)
                .into_iter()
                .zip(rows_of(floats_mut(&b_hh), 1)),
        )
        .collect();
    team::run(parts, &|(((rows, w_ih), w_hh), (b_ih, b_hh))| {
        let n = rows.len();
        // columns `rows` of a (width, GATES·U) sum over the groups (a group
        // at a time, its slab streamed once), written transposed
        let add = |pick: &dyn Fn(&Sums) -> &[f32], width: usize, out: &mut [f32]| {
            let mut acc = vec![0f32; width * n];
            for g in groups {
                let sum = pick(g);
                for (j, acc) in acc.chunks_exact_mut(n).enumerate() {
                    for (a, &x) in acc.iter_mut().zip(&sum[j * gu + rows.start..][..n]) {
                        *a += x;
                    }
                }
            }
            for (j, acc) in acc.chunks_exact(n).enumerate() {
                for (i, &a) in acc.iter().enumerate() {
                    out[i * width + j] = a;
                }
            }
        };
        add(&|g| &g.w_ih_t, f, w_ih);
        add(&|g| &g.w_hh_t, u, w_hh);
        add(&|g| &g.b_ih, 1, b_ih);
        add(&|g| &g.b_hh, 1, b_hh);
    });
    Grads {
        w_ih,
        w_hh,
        b_ih,
        b_hh,
        x: None,
    }
}

/// Adds `bias` to every row of `rows` (each `bias.len()` wide), after a
/// product summed from zero: the order a BLAS product with a bias uses.
fn add_bias(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (g, &b) in row.iter_mut().zip(bias) {
            *g += b;
        }
    }
}

/// Adds every row of `rows` (each `out.len()` wide) to `out`.
fn add_rows(out: &mut [f32], rows: &[f32]) {
    for row in rows.chunks_exact(out.len()) {
        for (o, &x) in out.iter_mut().zip(row) {
            *o += x;
        }
    }
}

fn backward_rows<C: Cell>(p: BackwardRows, s: &BackwardShared) {
    let (u, gu, f) = (s.units, C::GATES * s.units, s.features);
    let rows = p.rows;
    let n = rows.len();
    let len = n * u;
    let (mut dh, mut direct, mut dhm) = (vec![0f32; len], vec![0f32; len], vec![0f32; len]);
    let mut dc = vec![0f32; if C::CARRY { len } else { 0 }];
    let (mut dgi, mut dgh) = (
        vec![0f32; n * gu],
        vec![0f32; if C::SEPARATE_DGH { n * gu } else { 0 }],
    );
    let groups: Vec<Range<usize>> = (0..n)
        .step_by(GROUP)
        .map(|g| g..(g + GROUP).min(n))
        .collect();
    let mut sums: Vec<Sums> = groups.iter().map(|_| Sums::zeros(f, u, gu)).collect();
    let mask = s.mask.map(|m| &m[rows.start * u..rows.end * u]);
    let mut dx = p.dx;
    let mut dx_step = vec![0f32; if dx.is_some() { n * f } else { 0 }];
    let steps = s.layout.steps;
    for step in (0..steps).rev() {
        let first = step * s.batch + rows.start;
        let o = first * u..(first + n) * u;
        let from_outside = match (s.last_only, step + 1 == steps) {
            (false, _) => Some(&s.dout[o.clone()]),
            (true, true) => Some(&s.dout[rows.start * u..rows.end * u]),
            (true, false) => None,
        };
        match from_outside {
            Some(g) => {
                for (d, &g) in dh.iter_mut().zip(g) {
                    *d += g;
                }
            }
            // the zeros a whole (T, B, U) dL/dh would add: −0.0 turns +0.0
            None => dh.iter_mut().for_each(|d| *d += 0.0),
        }
        C::backward(
            s.activation,
            s.recurrent_activation,
            BackwardStep {
                saved: s.buffers.iter().map(|b| &b[o.clone()]).collect(),
                prev: &s.h[o.clone()],
                prev_c: s.c.map_or(&[], |c| &c[o.clone()]),
                dh: &dh,
                dc: &mut dc,
                dgi: &mut dgi,
                dgh: C::SEPARATE_DGH.then_some(&mut dgh[..]),
                direct: &mut direct,
                units: u,
            },
        );
        let recurrent: &[f32] = if C::SEPARATE_DGH { &dgh } else { &dgi };
        small_gemm::gemm(recurrent, gu, s.w_hh, u, None, &mut dhm);
        match mask {
            Some(m) => {
                for i in 0..len {
                    dh[i] = direct[i] + dhm[i] * m[i];
                }
            }
            None => {
                for i in 0..len {
                    dh[i] = direct[i] + dhm[i];
                }
            }
        }
        // this step's share of the weight and bias gradients, while its
        // gate gradients are in cache
        for (g, sums) in groups.iter().zip(sums.iter_mut()) {
            let (k, at) = (g.len(), first + g.start);
            let (dgi, rec) = (
                &dgi[g.start * gu..g.end * gu],
                &recurrent[g.start * gu..g.end * gu],
            );
            let x = &s.x[s.layout.at(step, rows.start + g.start)..];
            let lda = s.layout.row_stride;
            small_gemm::gemm_tn_acc(x, lda, f, k, dgi, gu, &mut sums.w_ih_t);
            small_gemm::gemm_tn_acc(&s.hm[at * u..], u, u, k, rec, gu, &mut sums.w_hh_t);
            add_rows(&mut sums.b_ih, dgi);
            if C::SEPARATE_DGH {
                add_rows(&mut sums.b_hh, rec);
            }
        }
        if let Some(dx) = dx.as_mut() {
            // dL/dx of this step's rows, into their places in (B, T, F)
            small_gemm::gemm(&dgi, gu, s.w_ih, f, None, &mut dx_step);
            let t = s.layout.time(step);
            for (i, row) in dx_step.chunks_exact(f).enumerate() {
                dx[(i * steps + t) * f..][..f].copy_from_slice(row);
            }
        }
    }
    if !C::SEPARATE_DGH {
        for sums in &mut sums {
            sums.b_hh.clone_from(&sums.b_ih);
        }
    }
    *p.sums.lock().expect("sums slot") = sums;
}

/// dL/dh flowing into a layer's states from the rest of the graph.
#[derive(Clone, Copy)]
pub enum Dout<'a> {
    /// For every state h₁ … h_T, (T, B, U).
    Every(&'a Tensor),
    /// For the last state only, (B, U): the others get none.
    Last(&'a Tensor),
}

/// BPTT from `dout`; dL/dx only `with_input_grad`. The weight gradients are
/// summed step by step per group of rows, the groups' sums added in the
/// order of their rows: the same result with any thread count.
pub fn backward<C: Cell>(w: &Weights, s: &Saved, dout: Dout, with_input_grad: bool) -> Grads {
    let _guard = tch::no_grad_guard();
    let (t, b, u) = s.steps_batch_units();
    let x = s.x.as_ref().expect("a forward run that kept its input");
    let f = x.size()[2];
    let gu = C::GATES as i64 * u;
    let opts = (Kind::Float, s.hm.device());
    let w_hh = w.w_hh.detach().contiguous();
    let w_ih = w.w_ih.detach().contiguous();
    let hm = s.hm.contiguous();
    let (dout, last_only) = match dout {
        Dout::Every(d) => (d.contiguous(), false),
        Dout::Last(d) => (d.contiguous(), true),
    };
    let dx = with_input_grad.then(|| Tensor::empty([b, t, f], opts));
    let (bs, us, fs, gus) = (b as usize, u as usize, f as usize, gu as usize);
    let chunks = team::split_groups(bs, GROUP);
    let slots: Vec<std::sync::Mutex<Vec<Sums>>> =
        chunks.iter().map(|_| Default::default()).collect();
    // each thread's rows of dL/dx, (rows, T, F) each: one "step" of B
    // rows, T·F wide
    let mut dx_parts: Option<Vec<&mut [f32]>> = dx
        .as_ref()
        .map(|d| split_chunks(floats_mut(d), bs, t as usize * fs, &chunks));
    let mut parts: Vec<BackwardRows> = chunks
        .iter()
        .zip(&slots)
        .rev()
        .map(|(rows, sums)| BackwardRows {
            rows: rows.clone(),
            dx: dx_parts.as_mut().and_then(Vec::pop),
            sums,
        })
        .collect();
    parts.reverse();
    let shared = BackwardShared {
        h: floats(&s.h),
        c: s.c.as_ref().map(floats),
        buffers: s.buffers.iter().map(floats).collect(),
        x: floats(x),
        layout: s.layout,
        hm: floats(&hm),
        dout: floats(&dout),
        last_only,
        mask: s.mask.as_ref().map(floats),
        w_hh: floats(&w_hh),
        w_ih: floats(&w_ih),
        batch: bs,
        units: us,
        features: fs,
        activation: w.activation,
        recurrent_activation: w.recurrent_activation,
    };
    team::run(parts, &|p| backward_rows::<C>(p, &shared));
    let groups: Vec<Sums> = slots
        .into_iter()
        .flat_map(|s| s.into_inner().expect("sums slot"))
        .collect();
    Grads {
        x: dx,
        ..total(&groups, fs, us, gus, opts)
    }
}

/// One recorded kernel forward waiting for its backward pass.
pub struct Pending {
    pub kind: CellKind,
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    pub b_ih: Tensor,
    pub b_hh: Tensor,
    pub activation: Activation,
    pub recurrent_activation: Activation,
    /// The input as the graph saw it (may require grad).
    pub x: Tensor,
    pub saved: Saved,
    /// The leaf the rest of the graph consumed, and how it maps to states.
    pub leaf: Tensor,
    pub return_sequences: bool,
}

impl Pending {
    /// BPTT from the gradient that reached `leaf` (from the graph, or handed
    /// over by the run after it), then `apply`.
    pub fn backward(self, handed: &mut Vec<Handoff>, hold: Option<&mut Held>) {
        let g = super::tape::received(&self.leaf, handed);
        if let Some(grads) = self.grads(&g) {
            self.apply(grads, handed, hold);
        }
    }

    /// BPTT: the gradients of the weights and the input from `g`, the
    /// gradient that reached `leaf` (none where nothing did).
    pub fn grads(&self, g: &Tensor) -> Option<Grads> {
        if !g.defined() {
            return None;
        }
        let sequences;
        let dout = if self.return_sequences {
            sequences = g.transpose(0, 1);
            Dout::Every(&sequences)
        } else {
            Dout::Last(g)
        };
        let w = Weights {
            w_ih: &self.w_ih,
            w_hh: &self.w_hh,
            b_ih: &self.b_ih,
            b_hh: &self.b_hh,
            activation: self.activation,
            recurrent_activation: self.recurrent_activation,
        };
        let with_input = self.x.requires_grad();
        Some(match self.kind {
            CellKind::Lstm => backward::<super::lstm::Lstm>(&w, &self.saved, dout, with_input),
            _ => backward::<super::gru::Gru>(&w, &self.saved, dout, with_input),
        })
    }

    /// The weights' gradients and dL/dx back where they belong
    /// (`tape::hand_back`).
    pub fn apply(self, grads: Grads, handed: &mut Vec<Handoff>, hold: Option<&mut Held>) {
        let weights = [
            (&self.w_ih, &grads.w_ih),
            (&self.w_hh, &grads.w_hh),
            (&self.b_ih, &grads.b_ih),
            (&self.b_hh, &grads.b_hh),
        ];
        super::tape::hand_back(&weights, &self.x, grads.x, handed, hold);
    }
}
