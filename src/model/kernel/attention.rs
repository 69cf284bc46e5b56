//! Multi-head self-attention on the CPU: softmax(Q·Kᵀ/√k)·V for each sample
//! and head, dropout on the weights, and the backward pass by hand.
//!
//! The patch transformer's matrices are tiny (6 patches, heads of 8): in
//! libtorch each product falls to a scalar batched-matmul loop and each
//! softmax row to a parallel region, a dozen of them a layer and step. Here
//! one pass per sample does a head's scores, softmax, dropout and weighted
//! sum, and one more its gradients. The projections stay libtorch products
//! (Q, K and V from one product, the three kernels side by side), run
//! outside the graph with their gradients by hand: the layer is one leaf,
//! and when its only consumer is `x + attention` that residual sum is in
//! the leaf too, so the backward pass reaches `x` once, through one
//! surrogate product, not once per path.
//!
//! Every (sample, head) is computed by one thread in a fixed order: the bits
//! do not depend on the thread count. The dropout mask on the weights comes
//! from a counter-based generator (`mask`) seeded from libtorch's, element
//! by element as libtorch's `dropout` would lay it out ((b, h, T, T)).
use super::fastmath::exp;
use super::mask::Mask;
use super::tape::{accumulate, Entry, Tape};
use super::{floats, floats_mut, team};
use tch::{Kind, Tensor};

/// Sizes of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    /// Number of heads.
    pub count: usize,
    /// Width of each head's query, key and value.
    pub width: usize,
}

/// The layer's weights, as (out, in) matrices: q, k, v (h·k, F), o (F, h·k).
#[derive(Debug)]
pub struct Weights {
    pub wq: Tensor,
    pub bq: Tensor,
    pub wk: Tensor,
    pub bk: Tensor,
    pub wv: Tensor,
    pub bv: Tensor,
    pub wo: Tensor,
    pub bo: Tensor,
}

impl Weights {
    /// Each weight through `f`, in the same places.
    pub fn map(&self, f: impl Fn(&Tensor) -> Tensor) -> Weights {
        Weights {
            wq: f(&self.wq),
            bq: f(&self.bq),
            wk: f(&self.wk),
            bk: f(&self.bk),
            wv: f(&self.wv),
            bv: f(&self.bv),
            wo: f(&self.wo),
            bo: f(&self.bo),
        }
    }
}

/// A recorded attention run awaiting its backward pass.
pub struct Pending {
    /// The layer input as the graph holds it.
    x: Tensor,
    /// Its values, contiguous: (b, T, F).
    x_values: Tensor,
    residual: bool,
    /// Q, K and V side by side: (b, T, 3·h·k), and the kernels and biases that made them.
    values: Tensor,
    w_qkv: Tensor,
    /// The heads' outputs before the output projection: (b, T, h·k).
    heads_out: Tensor,
    /// Softmax weights before dropout, each sample's column by column
    /// (T, h·T) as `sample_forward` keeps them.
    probs: Tensor,
    /// Dropout's kept-and-scaled factors: (b, h, T, T).
    noise: Option<Tensor>,
    weights: Weights,
    heads: Heads,
    leaf: Tensor,
}

/// `x` (b, T, F) → the output projection of the heads' attention, plus `x`
/// when `residual`. With a tape (training) the output is a leaf whose
/// gradients reach `x` and the weights when the tape runs backward;
/// `dropout` then applies to the attention weights.
pub fn forward(
    x: &Tensor,
    weights: &Weights,
    heads: Heads,
    dropout: f64,
    residual: bool,
    tape: Option<&Tape>,
) -> Tensor {
    let (b, t, _) = x.size3().expect("(batch, steps, features)");
    let (h, k) = (heads.count as i64, heads.width as i64);
    let train = tape.is_some();
    let w = weights;
    let (out, x_values, values, w_qkv, heads_out, probs, noise) = tch::no_grad(|| {
        let x_values = x.detach().contiguous();
        let w_qkv = Tensor::cat(&[&w.wq, &w.wk, &w.wv], 0);
        let b_qkv = Tensor::cat(&[&w.bq, &w.bk, &w.bv], 0);
        let values = x_values.linear(&w_qkv, Some(&b_qkv)).contiguous();
        let mask = (train && dropout > 0.0).then(|| Mask {
            seed: crate::model::draws::seed(),
            rate: dropout,
        });
        let noise = mask.map(|_| Tensor::empty([b, h, t, t], (Kind::Float, x.device())));
        let heads_out = Tensor::zeros([b, t, h * k], (Kind::Float, x.device()));
        let probs = Tensor::empty(
            [if train { b } else { 0 }, h, t, t],
            (Kind::Float, x.device()),
        );
        let (t, hk, tt) = (t as usize, (h * k) as usize, (h * t * t) as usize);
        let src = floats(&values);
        let kept = per_sample(train.then_some(&probs), b as usize, tt);
        let drops = per_sample(noise.as_ref(), b as usize, tt);
        let outs = floats_mut(&heads_out).chunks_exact_mut(t * hk);
        let samples: Vec<_> = outs.zip(kept).zip(drops).enumerate().collect();
        team::run(team::deal(samples, 4), &|part| {
            let r_len = heads.count * t;
            let mut scratch = vec![0f32; tt + 2 * r_len + t];
            let mut kt = vec![0f32; heads.width * padded(t)];
            for (n, ((out, kept), drop)) in part {
                let rows = &src[n * t * 3 * hk..(n + 1) * t * 3 * hk];
                let drop = drop.map(|d| {
                    mask.expect("a mask to draw").fill(n * tt, d);
                    &*d
                });
                sample_forward(rows, drop, t, heads, out, kept, &mut scratch, &mut kt);
            }
        });
        let mut out = heads_out.linear(&w.wo, Some(&w.bo));
        if residual {
            out = &x_values + out;
        }
        (out, x_values, values, w_qkv, heads_out, probs, noise)
    });
    let Some(tape) = tape else { return out };
    let leaf = out.set_requires_grad(true);
    tape.record(Entry::Attention(Pending {
        x: x.shallow_clone(),
        x_values,
        residual,
        values,
        w_qkv,
        heads_out,
        probs,
        noise,
        weights: w.map(Tensor::shallow_clone),
        heads,
        leaf: leaf.shallow_clone(),
    }));
    leaf
}

/// A (b, …) tensor's samples of `len` floats each, writable; `b` times
/// `None` without one.
fn per_sample(t: Option<&Tensor>, b: usize, len: usize) -> Vec<Option<&mut [f32]>> {
    match t {
        Some(t) => floats_mut(t).chunks_exact_mut(len).map(Some).collect(),
        None => (0..b).map(|_| None).collect(),
    }
}

/// `acc += w · v` over a head's width: `K` when known at compile time
/// (then the loop is a few register operations), else `acc.len()`.
#[inline(always)]
fn axpy<const K: usize>(w: f32, v: &[f32], acc: &mut [f32]) {
    let n = if K > 0 { K } else { acc.len() };
    for (a, x) in acc[..n].iter_mut().zip(&v[..n]) {
        *a += w * x;
    }
}

/// Lanes of one block of products (one AVX-512 register).
const LANES: usize = 16;

/// Steps rounded up to whole blocks of `LANES`.
fn padded(t: usize) -> usize {
    t.div_ceil(LANES) * LANES
}

/// `dst = Σ w · v` over `terms` in order, from zero; `dst` must be zero
/// (it is the sum's register when `K` is not known at compile time).
#[inline(always)]
fn weighted_sum<'a, const K: usize>(
    terms: impl Iterator<Item = (f32, &'a [f32])>,
    dst: &mut [f32],
) {
    if K > 0 {
        let mut acc = [0f32; K];
        for (w, v) in terms {
            axpy::<K>(w, v, &mut acc);
        }
        dst[..K].copy_from_slice(&acc);
    } else {
        for (w, v) in terms {
            axpy::<K>(w, v, dst);
        }
    }
}

/// Column `part` (0 = Q, 1 = K, 2 = V) of head `h` in `rows` (T, 3·h·k),
/// transposed into `out` (k, padded T): one head's keys or values as rows
/// over the steps, so that a row's products with every key are register
/// updates. The padding stays zero.
#[inline(always)]
fn transpose_head(rows: &[f32], t: usize, heads: Heads, h: usize, part: usize, out: &mut [f32]) {
    let (k, hk, tp) = (heads.width, heads.count * heads.width, padded(t));
    for j in 0..t {
        let at = j * 3 * hk + part * hk + h * k;
        for (d, &v) in rows[at..at + k].iter().enumerate() {
            out[d * tp + j] = v;
        }
    }
}

/// `s[j] = Σ_d a[d] · bt[d][j]` (d ascending, from zero): the products of
/// one row with every column of `bt` (k, padded T), a block of `LANES`
/// columns summed in registers.
#[inline(always)]
fn products<const K: usize>(a: &[f32], bt: &[f32], s: &mut [f32]) {
    let tp = padded(s.len());
    let a = if K > 0 { &a[..K] } else { a };
    for (c, chunk) in s.chunks_mut(LANES).enumerate() {
        let mut acc = [0f32; LANES];
        for (d, &x) in a.iter().enumerate() {
            let col = &bt[d * tp + c * LANES..][..LANES];
            for (a, &b) in acc.iter_mut().zip(col) {
                *a += x * b;
            }
        }
        chunk.copy_from_slice(&acc[..chunk.len()]);
    }
}

/// One sample: `rows` (T, 3·h·k) → `out` (T, h·k); the softmax weights
/// into `kept` when training, column by column: (T, h·T), the weight of
/// step j for row h·T + i at j·h·T + h·T + i. `scratch` (h·T·T + 2·h·T + T)
/// and `kt` (k · padded T) are scratch.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sample_forward_body(
    rows: &[f32],
    mask: Option<&[f32]>,
    t: usize,
    heads: Heads,
    out: &mut [f32],
    kept: Option<&mut [f32]>,
    scratch: &mut [f32],
    kt: &mut [f32],
) {
    match heads.width {
        8 => forward_sample::<8>(rows, mask, t, heads, out, kept, scratch, kt),
        16 => forward_sample::<16>(rows, mask, t, heads, out, kept, scratch, kt),
        32 => forward_sample::<32>(rows, mask, t, heads, out, kept, scratch, kt),
        _ => forward_sample::<0>(rows, mask, t, heads, out, kept, scratch, kt),
    }
}

/// `sample_forward_body` for heads `K` wide (0: any width).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_sample<const K: usize>(
    rows: &[f32],
    mask: Option<&[f32]>,
    t: usize,
    heads: Heads,
    out: &mut [f32],
    kept: Option<&mut [f32]>,
    scratch: &mut [f32],
    kt: &mut [f32],
) {
    let (k, hk) = (heads.width, heads.count * heads.width);
    let scale = (k as f32).sqrt();
    // the weights column by column: p[j·R + r] for row r = h·T + i of R,
    // so that each softmax step runs over every row at once
    let r_len = heads.count * t;
    let (p, rest) = scratch.split_at_mut(t * r_len);
    let (max, rest) = rest.split_at_mut(r_len);
    let (sum, s) = rest.split_at_mut(r_len);
    for h in 0..heads.count {
        transpose_head(rows, t, heads, h, 1, kt);
        for i in 0..t {
            products::<K>(&rows[i * 3 * hk + h * k..][..k], kt, &mut s[..t]);
            for (j, &v) in s[..t].iter().enumerate() {
                p[j * r_len + h * t + i] = v;
            }
        }
    }
    for v in p.iter_mut() {
        *v /= scale;
    }
    // softmax as libtorch's: less the row's maximum, exp, times 1 / sum
    max.fill(f32::NEG_INFINITY);
    for col in p.chunks_exact(r_len) {
        for (m, &v) in max.iter_mut().zip(col) {
            *m = m.max(v);
        }
    }
    for col in p.chunks_exact_mut(r_len) {
        for (v, &m) in col.iter_mut().zip(max.iter()) {
            *v = exp(*v - m);
        }
    }
    sum.fill(0.0);
    for col in p.chunks_exact(r_len) {
        for (a, &v) in sum.iter_mut().zip(col) {
            *a += v;
        }
    }
    for a in sum.iter_mut() {
        *a = 1.0 / *a;
    }
    for col in p.chunks_exact_mut(r_len) {
        for (v, &inv) in col.iter_mut().zip(sum.iter()) {
            *v *= inv;
        }
    }
    if let Some(kept) = kept {
        kept.copy_from_slice(p);
    }
    if let Some(mask) = mask {
        // the mask is (h, T, T) row by row, as libtorch's dropout draws it
        for (r, m) in mask.chunks_exact(t).enumerate() {
            for (j, &m) in m.iter().enumerate() {
                p[j * r_len + r] *= m;
            }
        }
    }
    for h in 0..heads.count {
        for i in 0..t {
            let terms = (0..t).map(|j| {
                let v = &rows[j * 3 * hk + 2 * hk + h * k..][..k];
                (p[j * r_len + h * t + i], v)
            });
            weighted_sum::<K>(terms, &mut out[i * hk + h * k..][..k]);
        }
    }
}

super::fastmath::avx2_dispatch!(fn sample_forward(
    rows: &[f32],
    mask: Option<&[f32]>,
    t: usize,
    heads: Heads,
    out: &mut [f32],
    kept: Option<&mut [f32]>,
    scratch: &mut [f32],
    kt: &mut [f32],
) => sample_forward_body);

/// One sample's gradients: `d_out` (T, h·k) → `d_rows` (T, 3·h·k);
/// `probs` as the forward pass kept them; `scratch` (4·h·T·T), `vt` (k · padded T).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sample_backward_body(
    rows: &[f32],
    probs: &[f32],
    mask: Option<&[f32]>,
    d_out: &[f32],
    t: usize,
    heads: Heads,
    d_rows: &mut [f32],
    scratch: &mut [f32],
    vt: &mut [f32],
) {
    match heads.width {
        8 => backward_sample::<8>(rows, probs, mask, d_out, t, heads, d_rows, scratch, vt),
        16 => backward_sample::<16>(rows, probs, mask, d_out, t, heads, d_rows, scratch, vt),
        32 => backward_sample::<32>(rows, probs, mask, d_out, t, heads, d_rows, scratch, vt),
        _ => backward_sample::<0>(rows, probs, mask, d_out, t, heads, d_rows, scratch, vt),
    }
}

/// `sample_backward_body` for heads `K` wide (0: any width).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_sample<const K: usize>(
    rows: &[f32],
    probs: &[f32],
    mask: Option<&[f32]>,
    d_out: &[f32],
    t: usize,
    heads: Heads,
    d_rows: &mut [f32],
    scratch: &mut [f32],
    vt: &mut [f32],
) {
    let (k, hk) = (heads.width, heads.count * heads.width);
    let scale = (k as f32).sqrt();
    let r_len = heads.count * t;
    let tt = r_len * t;
    // (h, T, T) each, row r = h·T + i: the weights, the weights after
    // dropout, the gradient of the latter turned into the scores', and
    // each row's Σ_j p·dp spread over the row
    let (p, rest) = scratch.split_at_mut(tt);
    let (pd, rest) = rest.split_at_mut(tt);
    let (ds, rest) = rest.split_at_mut(tt);
    let spread = &mut rest[..tt];
    for (r, row) in p.chunks_exact_mut(t).enumerate() {
        for (j, w) in row.iter_mut().enumerate() {
            *w = probs[j * r_len + r];
        }
    }
    for h in 0..heads.count {
        transpose_head(rows, t, heads, h, 2, vt);
        for i in 0..t {
            let r = h * t + i;
            products::<K>(&d_out[i * hk + h * k..][..k], vt, &mut ds[r * t..][..t]);
        }
    }
    match mask {
        Some(m) => {
            for ((kept, grad), (&pj, &mj)) in pd.iter_mut().zip(ds.iter_mut()).zip(p.iter().zip(m))
            {
                *kept = pj * mj;
                *grad *= mj;
            }
        }
        None => pd.copy_from_slice(p),
    }
    // softmax backward, then the 1/√k of the scores
    for ((row_p, row_d), row_s) in p
        .chunks_exact(t)
        .zip(ds.chunks_exact(t))
        .zip(spread.chunks_exact_mut(t))
    {
        let r = row_p.iter().zip(row_d).fold(0.0, |a, (x, y)| a + x * y);
        row_s.fill(r);
    }
    for ((d, &pj), &r) in ds.iter_mut().zip(p.iter()).zip(spread.iter()) {
        *d = pj * (*d - r) / scale;
    }
    // each gradient row summed over i (or j) ascending and written once
    for h in 0..heads.count {
        let at = |r: usize, part: usize| r * 3 * hk + part * hk + h * k;
        let (pd, ds) = (&pd[h * t * t..][..t * t], &ds[h * t * t..][..t * t]);
        for j in 0..t {
            let terms = (0..t).map(|i| (pd[i * t + j], &d_out[i * hk + h * k..][..k]));
            weighted_sum::<K>(terms, &mut d_rows[at(j, 2)..][..k]);
        }
        for i in 0..t {
            let terms = (0..t).map(|j| (ds[i * t + j], &rows[at(j, 1)..][..k]));
            weighted_sum::<K>(terms, &mut d_rows[at(i, 0)..][..k]);
        }
        for j in 0..t {
            let terms = (0..t).map(|i| (ds[i * t + j], &rows[at(i, 0)..][..k]));
            weighted_sum::<K>(terms, &mut d_rows[at(j, 1)..][..k]);
        }
    }
}

super::fastmath::avx2_dispatch!(fn sample_backward(
    rows: &[f32],
    probs: &[f32],
    mask: Option<&[f32]>,
    d_out: &[f32],
    t: usize,
    heads: Heads,
    d_rows: &mut [f32],
    scratch: &mut [f32],
    vt: &mut [f32],
) => sample_backward_body);

impl Pending {
    /// Gradients of the weights (added to theirs) and of the input (fed
    /// back through one surrogate `backward` call) from the leaf's; weights
    /// without a gradient yet get theirs through `hold` when given.
    pub fn backward(self, hold: Option<&mut super::tape::Held>) {
        let g = self.leaf.grad();
        if !g.defined() {
            return;
        }
        let w = &self.weights;
        // (weight, gradient) pairs for weights without a gradient yet
        let mut first: Vec<(&Tensor, Tensor)> = Vec::new();
        let dx = tch::no_grad(|| {
            let g = g.contiguous();
            let (b, t, f) = g.size3().expect("(batch, steps, features)");
            let hk = (self.heads.count * self.heads.width) as i64;
            let g2 = g.view([b * t, f]);
            let rows = |t: &Tensor, n: i64| t.view([-1, n]);
            accumulate(&w.wo, &g2.tr().mm(&rows(&self.heads_out, hk)), &mut first);
            accumulate(
                &w.bo,
                &g2.sum_dim_intlist([0i64].as_slice(), false, Kind::Float),
                &mut first,
            );
            let d_heads = g2.mm(&w.wo).view([b, t, hk]).contiguous();
            let dqkv = Tensor::zeros_like(&self.values);
            let (t, hk) = (t as usize, hk as usize);
            let tt = self.heads.count * t * t;
            let (src, probs, dh) = (floats(&self.values), floats(&self.probs), floats(&d_heads));
            let masks = self.noise.as_ref().map(floats);
            let samples: Vec<_> = floats_mut(&dqkv)
                .chunks_exact_mut(t * 3 * hk)
                .enumerate()
                .collect();
            team::run(team::deal(samples, 4), &|part| {
                let (mut scratch, mut vt) =
                    (vec![0f32; 4 * tt], vec![0f32; self.heads.width * padded(t)]);
                for (n, d_rows) in part {
                    sample_backward(
                        &src[n * t * 3 * hk..(n + 1) * t * 3 * hk],
                        &probs[n * tt..(n + 1) * tt],
                        masks.map(|m| &m[n * tt..(n + 1) * tt]),
                        &dh[n * t * hk..(n + 1) * t * hk],
                        t,
                        self.heads,
                        d_rows,
                        &mut scratch,
                        &mut vt,
                    );
                }
            });
            let d2 = rows(&dqkv, 3 * hk as i64);
            let dw = d2.tr().mm(&rows(&self.x_values, f));
            let db = d2.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
            for (i, (wi, bi)) in [(&w.wq, &w.bq), (&w.wk, &w.bk), (&w.wv, &w.bv)]
                .into_iter()
                .enumerate()
            {
                let part = |t: &Tensor| t.narrow(0, i as i64 * hk as i64, hk as i64);
                accumulate(wi, &part(&dw), &mut first);
                accumulate(bi, &part(&db), &mut first);
            }
            let dx = d2.mm(&self.w_qkv).view([b, t as i64, f]);
            if self.residual {
                g + dx
            } else {
                dx
            }
        });
        let input = self.x.requires_grad().then_some((&self.x, &dx));
        super::tape::feed_back(first, input, hold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Init;
    use crate::model::forecast::Attention;
    use tch::{nn, Device};

    /// The kernel against the layer's libtorch ops: output, and the
    /// gradients of every weight and of the input, with and without the
    /// residual, dropout (the kernel's mask applied to libtorch's weights)
    /// and 1 or 2 threads; and the bits do not depend on the thread count.
    #[test]
    fn equals_the_libtorch_layer() {
        let _rng = crate::model::rng_lock();
        let threads = tch::get_num_threads();
        // (residual, dropout, features, heads, width, steps): any width, the
        // compiled widths, and more steps than one register holds
        for (residual, dropout, f, h, k, t) in [
            (false, 0.0, 12, 3, 4, 5),
            (true, 0.0, 16, 2, 8, 6),
            (true, 0.3, 12, 3, 4, 5),
            (true, 0.2, 16, 2, 8, 18),
            (false, 0.1, 32, 2, 16, 7),
        ] {
            let mut by_threads: Vec<Vec<Tensor>> = Vec::new();
            for n in [1, 2] {
                tch::set_num_threads(n);
                let vs = nn::VarStore::new(Device::Cpu);
                tch::manual_seed(5);
                let a = Attention::new(&vs.root(), f, h, k, dropout, Init::Keras);
                let x =
                    Tensor::randn([9, t, f], (Kind::Float, Device::Cpu)).set_requires_grad(true);
                let up = Tensor::randn([9, t, f], (Kind::Float, Device::Cpu));
                let w = &a.weights;
                let params = [&w.wq, &w.bq, &w.wk, &w.bk, &w.wv, &w.bv, &w.wo, &w.bo];
                let run = |kernel: bool| -> Vec<Tensor> {
                    for p in params.iter().chain([&&x]) {
                        p.shallow_clone().zero_grad();
                    }
                    tch::manual_seed(11);
                    let tape = Tape::default();
                    let y = if kernel {
                        a.forward_kernel(&x, residual, Some(&tape))
                    } else {
                        // the kernel's mask: its seed is the first draw after seeding
                        let noise = (dropout > 0.0).then(|| {
                            let mask = Mask {
                                seed: crate::model::draws::seed(),
                                rate: dropout,
                            };
                            let noise = Tensor::empty([9, h, t, t], (Kind::Float, Device::Cpu));
                            mask.fill(0, floats_mut(&noise));
                            noise
                        });
                        let y = reference(&a, &x, noise.as_ref());
                        if dropout == 0.0 {
                            assert!(y.equal(&a.forward(&x, true)), "the reference is the layer");
                        }
                        if residual {
                            &x + y
                        } else {
                            y
                        }
                    };
                    super::super::tape::backward_keeping_graph(&(&y * &up).sum(Kind::Float));
                    tape.backward();
                    let mut got = vec![y.detach().copy(), x.grad().copy()];
                    got.extend(params.iter().map(|p| p.grad().copy()));
                    got
                };
                // first without gradients yet (the surrogate creates them), then into existing ones
                let fresh = run(true);
                let want = run(false);
                let got = run(true);
                for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                    let err = (w - g).abs().max().double_value(&[]);
                    let size = w.abs().max().double_value(&[]);
                    assert!(
                        err <= 1e-5 * size.max(1.0),
                        "residual {residual}, dropout {dropout}, width {k}, steps {t}, {n} threads, tensor {i}: off by {err} (size {size})"
                    );
                    assert!(g.equal(&fresh[i]), "tensor {i}: a first step differs");
                }
                by_threads.push(got);
            }
            for (one, two) in by_threads[0].iter().zip(&by_threads[1]) {
                assert!(one.equal(two), "the thread count changed the bits");
            }
        }
        tch::set_num_threads(threads);
    }

    /// The layer's libtorch operations with a given dropout mask.
    fn reference(a: &Attention, x: &Tensor, noise: Option<&Tensor>) -> Tensor {
        let (b, t) = (x.size()[0], x.size()[1]);
        let w = &a.weights;
        let split = |m: &Tensor, bias: &Tensor| {
            x.linear(m, Some(bias))
                .view([b, t, a.heads, a.key_dim])
                .transpose(1, 2)
        };
        let (q, k, v) = (
            split(&w.wq, &w.bq),
            split(&w.wk, &w.bk),
            split(&w.wv, &w.bv),
        );
        let scores = q.matmul(&k.transpose(-2, -1)) / (a.key_dim as f64).sqrt();
        let probs = scores.softmax(-1, Kind::Float);
        // not in place: autograd keeps the softmax output for its backward pass
        let weights = match noise {
            Some(n) => probs * n,
            None => probs,
        };
        weights
            .matmul(&v)
            .transpose(1, 2)
            .contiguous()
            .view([b, t, a.heads * a.key_dim])
            .linear(&w.wo, Some(&w.bo))
    }

    /// Without a tape (evaluation) the output equals the training pass'
    /// output without dropout.
    #[test]
    fn evaluation_equals_training_without_dropout() {
        let _rng = crate::model::rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        tch::manual_seed(3);
        let a = Attention::new(&vs.root(), 8, 2, 4, 0.0, Init::Keras);
        let x = Tensor::randn([4, 6, 8], (Kind::Float, Device::Cpu));
        let tape = Tape::default();
        let trained = a.forward_kernel(&x, true, Some(&tape));
        let evaluated = tch::no_grad(|| a.forward_kernel(&x, true, None));
        assert!(trained.detach().equal(&evaluated));
    }
}
