//! The time loop of a recurrent layer outside autograd (CPU), for a `gru`
//! or `lstm` cell, with its backward pass through time.
//!
//! libtorch's autograd never sees the steps: the layer's output enters the
//! graph as a fresh leaf recorded on the tape, and once the loss has been
//! back-propagated to it, [`Pending::backward`] runs BPTT and feeds the
//! gradients back through one surrogate `backward` call.
//!
//! The input projections of all steps, gᵢ = x Wᵢₕᵀ + bᵢₕ, and the weight
//! gradients are single libtorch products; per step, the recurrent product
//! gₕ = (h ⊙ m) Wₕₕᵀ + bₕₕ runs in `small_gemm` and the cell's arithmetic
//! over contiguous buffers. The batch's rows are split between libtorch's
//! threads, each running its own time loop (rows never interact), and every
//! row is computed the same way whichever thread runs it. The cells equal
//! libtorch's fused kernels and the unrolled autograd path (tests in
//! `recurrent.rs`, forward and gradients).
use super::{floats, floats_mut, small_gemm, split_rows, team};
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
    /// dL/dbₕₕ from dL/dbᵢₕ and dL/dgₕ over all steps, (T·B, GATES·U).
    fn bias_hh_grad(b_ih: &Tensor, dgh: &Tensor, units: i64) -> Tensor;
}

/// `impl Cell for $cell` from a cell module's `forward_body` and
/// `backward_body` (generic over the activation functions) and its bias rule:
/// one copy of each body per activation pair, each compiled with AVX2 when
/// the CPU has it.
macro_rules! impl_cell {
    ($cell:ty { GATES: $gates:expr, SAVED: $saved:expr, CARRY: $carry:expr, SEPARATE_DGH: $sep:expr }, $bias:path) => {
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

            fn bias_hh_grad(b_ih: &tch::Tensor, dgh: &tch::Tensor, units: i64) -> tch::Tensor {
                $bias(b_ih, dgh, units)
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

/// What the backward pass needs from the forward pass.
pub struct Saved {
    /// Inputs, time-major (T, B, F).
    xt: Tensor,
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
    gi: &'a [f32],
    mask: Option<&'a [f32]>,
    whh_t: &'a [f32],
    b_hh: &'a [f32],
    batch: usize,
    units: usize,
    activation: Activation,
    recurrent_activation: Activation,
}

fn forward_rows<C: Cell>(p: ForwardRows, s: &ForwardShared) {
    let (u, gu) = (s.units, C::GATES * s.units);
    let rows = p.rows;
    let mut gh = vec![0f32; rows.len() * gu];
    let mask = s.mask.map(|m| &m[rows.start * u..rows.end * u]);
    let (mut h, mut c, mut hm, mut buffers) = (p.h, p.c, p.hm, p.buffers);
    for step in 0..h.len() - 1 {
        let (before, after) = h.split_at_mut(step + 1);
        let prev: &[f32] = before[step];
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
        let at = step * s.batch;
        let (prev_c, next_c): (&[f32], &mut [f32]) = match c.as_mut() {
            Some(c) => {
                let (before, after) = c.split_at_mut(step + 1);
                (before[step], after[0])
            }
            None => (&[], &mut []),
        };
        C::forward(
            s.activation,
            s.recurrent_activation,
            ForwardStep {
                gi: &s.gi[(at + rows.start) * gu..(at + rows.end) * gu],
                gh: &gh,
                prev,
                prev_c,
                h: after[0],
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

/// Runs the cell over x (B, T, F); returns all states h (T+1, B, U) and
/// what backward needs. `mask` (B, U) multiplies h before the recurrent product.
/// Without `keep` (no backward pass will follow), the cell's buffers hold
/// one step, overwritten at every step: the same arithmetic without writing
/// (and first touching) T steps of them.
pub fn forward<C: Cell>(
    w: &Weights,
    x: &Tensor,
    units: i64,
    mask: Option<&Tensor>,
    keep: bool,
) -> (Tensor, Saved) {
    let _guard = tch::no_grad_guard();
    let (b, t, f) = x.size3().expect("(batch, time, features)");
    let u = units;
    let xt = x.detach().transpose(0, 1).contiguous();
    let gi = w
        .b_ih
        .detach()
        .addmm(&xt.view([t * b, f]), &w.w_ih.detach().tr())
        .contiguous();
    let whh_t = w.w_hh.detach().tr().contiguous();
    let b_hh = w.b_hh.detach().contiguous();
    let opts = (Kind::Float, x.device());
    let h = Tensor::zeros([t + 1, b, u], opts);
    let c = C::CARRY.then(|| Tensor::zeros([t + 1, b, u], opts));
    let hm = if mask.is_some() {
        Tensor::empty([t, b, u], opts)
    } else {
        h.narrow(0, 0, t)
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
        gi: floats(&gi),
        mask: mask.as_ref().map(floats),
        whh_t: floats(&whh_t),
        b_hh: floats(&b_hh),
        batch: bs,
        units: us,
        activation: w.activation,
        recurrent_activation: w.recurrent_activation,
    };
    team::run(parts, &|p| forward_rows::<C>(p, &shared));
    let saved = Saved {
        xt,
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
    dout: &'a [f32],
    mask: Option<&'a [f32]>,
    w_hh: &'a [f32],
    batch: usize,
    units: usize,
    activation: Activation,
    recurrent_activation: Activation,
}

/// One thread's rows of the gate gradients, per step.
struct BackwardRows<'a> {
    rows: Range<usize>,
    dgi: Vec<&'a mut [f32]>,
    dgh: Option<Vec<&'a mut [f32]>>,
}

fn backward_rows<C: Cell>(p: BackwardRows, s: &BackwardShared) {
    let (u, gu) = (s.units, C::GATES * s.units);
    let rows = p.rows;
    let len = rows.len() * u;
    let (mut dh, mut direct, mut dhm) = (vec![0f32; len], vec![0f32; len], vec![0f32; len]);
    let mut dc = vec![0f32; if C::CARRY { len } else { 0 }];
    let mask = s.mask.map(|m| &m[rows.start * u..rows.end * u]);
    let (mut dgi, mut dgh) = (p.dgi, p.dgh);
    for step in (0..dgi.len()).rev() {
        let o = (step * s.batch + rows.start) * u..(step * s.batch + rows.end) * u;
        for (d, &g) in dh.iter_mut().zip(&s.dout[o.clone()]) {
            *d += g;
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
                dgi: dgi[step],
                dgh: dgh.as_mut().map(|d| &mut *d[step]),
                direct: &mut direct,
                units: u,
            },
        );
        let recurrent: &[f32] = match &dgh {
            Some(d) => d[step],
            None => dgi[step],
        };
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
    }
}

/// BPTT: `dstates` is dL/dh for h₁ … h_T, (T, B, U) (zeros where nothing
/// flows in); dL/dx only `with_input_grad`.
pub fn backward<C: Cell>(w: &Weights, s: &Saved, dstates: &Tensor, with_input_grad: bool) -> Grads {
    let _guard = tch::no_grad_guard();
    let (t, b, u) = s.steps_batch_units();
    let f = s.xt.size()[2];
    let gu = C::GATES as i64 * u;
    let opts = (Kind::Float, s.hm.device());
    let dgi = Tensor::empty([t, b, gu], opts);
    let dgh = C::SEPARATE_DGH.then(|| Tensor::empty([t, b, gu], opts));
    let w_hh = w.w_hh.detach().contiguous();
    let dout = dstates.contiguous();
    let (bs, us) = (b as usize, u as usize);
    let chunks = team::split(bs, 16);
    let mut dgi_parts = split_rows(floats_mut(&dgi), bs, gu as usize, &chunks);
    let mut dgh_parts = dgh
        .as_ref()
        .map(|d| split_rows(floats_mut(d), bs, gu as usize, &chunks));
    let mut parts: Vec<BackwardRows> = chunks
        .iter()
        .rev()
        .map(|rows| BackwardRows {
            rows: rows.clone(),
            dgi: dgi_parts.pop().expect("one part per chunk"),
            dgh: dgh_parts.as_mut().and_then(Vec::pop),
        })
        .collect();
    parts.reverse();
    let shared = BackwardShared {
        h: floats(&s.h),
        c: s.c.as_ref().map(floats),
        buffers: s.buffers.iter().map(floats).collect(),
        dout: floats(&dout),
        mask: s.mask.as_ref().map(floats),
        w_hh: floats(&w_hh),
        batch: bs,
        units: us,
        activation: w.activation,
        recurrent_activation: w.recurrent_activation,
    };
    team::run(parts, &|p| backward_rows::<C>(p, &shared));
    let dgi2 = dgi.view([t * b, gu]);
    let dgh2 = dgh
        .as_ref()
        .map_or(dgi2.shallow_clone(), |d| d.view([t * b, gu]));
    let b_ih = dgi2.sum_dim_intlist(0, false, Kind::Float);
    Grads {
        w_ih: dgi2.tr().mm(&s.xt.view([t * b, f])),
        w_hh: dgh2.tr().mm(&s.hm.contiguous().view([t * b, u])),
        b_hh: C::bias_hh_grad(&b_ih, &dgh2, u),
        b_ih,
        x: with_input_grad.then(|| dgi2.mm(&w.w_ih.detach()).view([t, b, f]).transpose(0, 1)),
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
    /// BPTT once the loss has been back-propagated to `leaf`; the gradients
    /// of the weights and the input go back into the graph through one
    /// surrogate `backward` call.
    pub fn backward(self) {
        if let Some(grads) = self.grads() {
            self.apply(grads);
        }
    }

    /// BPTT: the gradients of the weights and the input, once the loss has
    /// reached `leaf` (none where it did not).
    pub fn grads(&self) -> Option<Grads> {
        let g = self.leaf.grad();
        if !g.defined() {
            return None;
        }
        let (t, b, u) = self.saved.steps_batch_units();
        let dstates = {
            let _guard = tch::no_grad_guard();
            if self.return_sequences {
                g.transpose(0, 1).contiguous()
            } else {
                let d = Tensor::zeros([t, b, u], (Kind::Float, g.device()));
                d.get(t - 1).copy_(&g);
                d
            }
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
            CellKind::Lstm => backward::<super::lstm::Lstm>(&w, &self.saved, &dstates, with_input),
            _ => backward::<super::gru::Gru>(&w, &self.saved, &dstates, with_input),
        })
    }

    /// Feeds `grads` back into the graph through one surrogate `backward`.
    pub fn apply(self, grads: Grads) {
        let mut surrogate = (&self.w_ih * &grads.w_ih).sum(Kind::Float)
            + (&self.w_hh * &grads.w_hh).sum(Kind::Float)
            + (&self.b_ih * &grads.b_ih).sum(Kind::Float);
        if self.b_hh.requires_grad() {
            surrogate += (&self.b_hh * &grads.b_hh).sum(Kind::Float);
        }
        if let Some(dx) = &grads.x {
            surrogate += (&self.x * dx).sum(Kind::Float);
        }
        super::tape::backward_keeping_graph(&surrogate);
    }
}
