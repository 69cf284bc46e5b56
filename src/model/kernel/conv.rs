//! Conv1D over (batch, time, channels) on the CPU, without unfolding, with
//! the max pool that follows it fused in.
//!
//! With stride s and no dilation, window t of a sequence is one contiguous
//! run x[t·s·C .. t·s·C + K·C] of its (time, channels) buffer, so the
//! convolution is a product whose rows overlap (`small_gemm::gemm_strided`)
//! against the kernel laid out as (K·C, F): no window is ever copied. The
//! activation (linear or ReLU) is applied in place, and a MaxPool1D (valid
//! padding) or GlobalMaxPool1D behind the layer is taken in the same pass
//! over each sequence, keeping the position of every maximum (the first on
//! ties; NaN wins, as in libtorch).
//!
//! Backward (from the tape): only the kept maxima receive a gradient, so
//! the weight and input gradients are sums over those entries alone:
//! dW[f] += dz · window and dx[window] += dz · W[f], with dz = dy ⊙ act'(y).
//! Without a pool the same sums skip the zero entries ReLU leaves. The
//! entries that carry a gradient are found one output step at a time
//! (`compact`) and listed under their filter; each filter's dW row is then
//! summed over them in registers (`weighted_sum`), the terms in the order
//! of a pass over rows and steps. The batch is cut into fixed chunks of
//! rows, each with its own partial dW, summed in chunk order: no result
//! depends on the number of threads, and every row of the forward pass is
//! computed the same way whichever thread runs it.
use super::tape::{hand_back, received, Entry, Handoff, Held, Tape};
use super::{compact, floats, floats_mut, small_gemm, team, weighted_sum};
use crate::config::Activation;
use std::ops::Range;
use tch::{Kind, Tensor};

/// Batch rows per backward work item: fixed, so sums never depend on threads.
const CHUNK: usize = 8;

/// Whether the kernel computes this layer: no dilation, linear or ReLU.
pub fn supports(activation: Activation, dilation: i64) -> bool {
    dilation == 1 && matches!(activation, Activation::Linear | Activation::Relu)
}

/// The max pool taken in the same pass, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    None,
    /// MaxPool1D, valid padding: (B, T', F) → (B, (T' − size)/stride + 1, F).
    Max {
        size: usize,
        stride: usize,
    },
    /// GlobalMaxPool1D: (B, T', F) → (B, F).
    GlobalMax,
}

/// A recorded convolution awaiting its backward pass.
pub struct Pending {
    /// The kernel (F, C, K) and bias (F) as the graph holds them.
    w: Tensor,
    b: Tensor,
    /// The (already padded) input as the graph saw it; may require grad.
    x: Tensor,
    /// Its values, contiguous.
    xs: Tensor,
    /// The output values (after the activation and the pool).
    y: Tensor,
    /// For each output value, the convolution step it came from (pooled).
    from: Option<Vec<u32>>,
    stride: usize,
    relu: bool,
    /// The output the rest of the graph consumed.
    leaf: Tensor,
}

/// pool(act(b + conv(x, w))) with stride `stride`, no padding: x (B, T, C),
/// w (F, C, K) → (B, T', F) with T' = (T − K)/s + 1, pooled as `pool` says.
/// With a tape, the output is a leaf whose gradient reaches w, b and x when
/// the tape runs backward.
pub fn forward(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stride: i64,
    activation: Activation,
    pool: Pool,
    tape: Option<&Tape>,
) -> Tensor {
    let relu = activation == Activation::Relu;
    let (xs, y, from) = tch::no_grad(|| {
        let xs = x.detach().contiguous();
        let (y, from) = forward_values(&xs, w, b, stride as usize, relu, pool);
        (xs, y, from)
    });
    let Some(tape) = tape else { return y };
    let leaf = y.detach().set_requires_grad(true);
    tape.record(Entry::Conv(Pending {
        w: w.shallow_clone(),
        b: b.shallow_clone(),
        x: x.shallow_clone(),
        xs,
        y,
        from,
        stride: stride as usize,
        relu,
        leaf: leaf.shallow_clone(),
    }));
    leaf
}

/// The pooled length of `steps` convolution steps.
fn pooled_len(steps: usize, pool: Pool) -> usize {
    match pool {
        Pool::None => steps,
        Pool::Max { size, stride } if steps >= size => (steps - size) / stride + 1,
        Pool::Max { .. } => 0,
        Pool::GlobalMax => 1,
    }
}

/// One thread's batch rows: their output rows and, pooled, the steps the
/// maxima came from.
struct Rows<'a> {
    rows: Range<usize>,
    out: &'a mut [f32],
    from: &'a mut [u32],
}

fn forward_values(
    xs: &Tensor,
    w: &Tensor,
    b: &Tensor,
    s: usize,
    relu: bool,
    pool: Pool,
) -> (Tensor, Option<Vec<u32>>) {
    let (batch, time, c) = xs.size3().expect("(batch, time, channels)");
    let (f, _, k) = w.size3().expect("(filters, channels, kernel)");
    let (batch, time, c, f, k) = (
        batch as usize,
        time as usize,
        c as usize,
        f as usize,
        k as usize,
    );
    let t_out = (time - k) / s + 1;
    let t_pool = pooled_len(t_out, pool);
    let global = pool == Pool::GlobalMax;
    let pool = match pool {
        Pool::GlobalMax => Pool::Max {
            size: t_out,
            stride: 1,
        },
        p => p,
    };
    let wt = w.detach().permute([2, 1, 0]).contiguous(); // (K, C, F)
    let bias = b.detach().contiguous();
    let out = Tensor::empty(
        [batch as i64, t_pool as i64, f as i64],
        (Kind::Float, xs.device()),
    );
    let pooled = pool != Pool::None;
    let mut from = vec![0u32; if pooled { batch * t_pool * f } else { 0 }];
    let (x, wt, bias) = (floats(xs), floats(&wt), floats(&bias));
    let mut items: Vec<Rows> = Vec::new();
    let (mut rest, mut from_rest) = (floats_mut(&out), from.as_mut_slice());
    for rows in team::split(batch, 4) {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(rows.len() * t_pool * f);
        let n = if pooled { rows.len() * t_pool * f } else { 0 };
        let (from_head, from_tail) = std::mem::take(&mut from_rest).split_at_mut(n);
        items.push(Rows {
            rows,
            out: head,
            from: from_head,
        });
        rest = tail;
        from_rest = from_tail;
    }
    team::run(items, &|part: Rows| {
        let mut scratch = vec![0f32; if pooled { t_out * f } else { 0 }];
        let Rows { rows, out, from } = part;
        for (i, row) in rows.enumerate() {
            let xb = &x[row * time * c..(row + 1) * time * c];
            let y = &mut out[i * t_pool * f..(i + 1) * t_pool * f];
            let conv = if pooled { &mut scratch[..] } else { &mut *y };
            small_gemm::gemm_strided(xb, s * c, t_out, k * c, wt, f, Some(bias), conv);
            if relu {
                clamp_negative(conv);
            }
            if let Pool::Max { size, stride } = pool {
                let from = &mut from[i * t_pool * f..(i + 1) * t_pool * f];
                max_pool(&scratch, f, size, stride, y, from);
            }
        }
    });
    let out = if global {
        out.view([batch as i64, f as i64])
    } else {
        out
    };
    (out, pooled.then_some(from))
}

/// Max over each pool window of (steps, F) values, and the step it sits at.
#[inline(always)]
fn max_pool_body(
    conv: &[f32],
    f: usize,
    size: usize,
    stride: usize,
    out: &mut [f32],
    from: &mut [u32],
) {
    for (j, (best, at)) in out
        .chunks_exact_mut(f)
        .zip(from.chunks_exact_mut(f))
        .enumerate()
    {
        let first = j * stride;
        best.copy_from_slice(&conv[first * f..(first + 1) * f]);
        at.fill(first as u32);
        for t in first + 1..first + size {
            for ((b, a), &v) in best
                .iter_mut()
                .zip(at.iter_mut())
                .zip(&conv[t * f..(t + 1) * f])
            {
                if v > *b || v.is_nan() {
                    *b = v;
                    *a = t as u32;
                }
            }
        }
    }
}

super::fastmath::avx2_dispatch!(fn max_pool(
    conv: &[f32],
    f: usize,
    size: usize,
    stride: usize,
    out: &mut [f32],
    from: &mut [u32],
) => max_pool_body);

/// ReLU in place (NaN stays NaN, as in libtorch).
#[inline(always)]
fn clamp_negative_body(y: &mut [f32]) {
    for v in y.iter_mut() {
        *v = if *v < 0.0 { 0.0 } else { *v };
    }
}

super::fastmath::avx2_dispatch!(fn clamp_negative(y: &mut [f32]) => clamp_negative_body);

/// What every backward work item reads.
struct Shared<'a> {
    x: &'a [f32],
    y: &'a [f32],
    dy: &'a [f32],
    /// The convolution step of each output value (pooled layers).
    from: Option<&'a [u32]>,
    /// The kernel as (F, K·C) rows.
    wf: &'a [f32],
    time: usize,
    c: usize,
    kc: usize,
    f: usize,
    /// Output steps per sequence (after the pool).
    t_out: usize,
    stride: usize,
    relu: bool,
}

/// One chunk of batch rows: its partial (F, K·C + 1) weight-and-bias
/// gradient, and its rows of dL/dx when asked for.
struct Chunk<'a> {
    rows: Range<usize>,
    dw: &'a mut [f32],
    dx: Option<&'a mut [f32]>,
}

#[inline(always)]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Each filter's entries over one chunk, in order: the offset of the input
/// window in `x` and dz. Kept per thread, so chunks do not allocate.
#[derive(Default)]
struct Windows {
    offsets: Vec<usize>,
    dz: Vec<f32>,
    count: Vec<usize>,
}

thread_local! {
    static WINDOWS: std::cell::RefCell<Windows> = std::cell::RefCell::default();
}

#[inline(always)]
fn chunk_body(s: &Shared<'_>, part: Chunk<'_>, windows: &mut Windows) {
    let (kc, f) = (s.kc, s.f);
    let Chunk { rows, dw, mut dx } = part;
    dw.fill(0.0);
    if let Some(dx) = dx.as_mut() {
        dx.fill(0.0);
    }
    let first = rows.start;
    // Room for every entry of the chunk under each filter.
    let cap = rows.len() * s.t_out;
    if windows.offsets.len() < f * cap {
        windows.offsets.resize(f * cap, 0);
        windows.dz.resize(f * cap, 0.0);
    }
    windows.count.clear();
    windows.count.resize(f, 0);
    let Windows { offsets, dz, count } = windows;
    // One output step's entries that carry a gradient, in filter order.
    let (mut filter, mut value, mut step) =
        (vec![0u32; f + 16], vec![0f32; f + 16], vec![0u32; f + 16]);
    // db, every filter at once: dz of each step added whether kept or not.
    // An entry not kept adds ±0, which leaves a running sum as it was
    // (one that flushing a denormal made −0 may turn +0, and the chunks'
    // total, summed from +0, is the same either way).
    let mut db = vec![0f32; f];
    for row in rows {
        let seq = row * s.time * s.c;
        let outs = row * s.t_out * f..(row + 1) * s.t_out * f;
        let (yb, gb) = (&s.y[outs.clone()], &s.dy[outs.clone()]);
        let from = s.from.map(|from| &from[outs]);
        let mut dxb = dx
            .as_mut()
            .map(|d| &mut d[(row - first) * s.time * s.c..][..s.time * s.c]);
        for j in 0..s.t_out {
            let at = j * f..(j + 1) * f;
            let kept = compact::Kept {
                filter: &mut filter,
                dz: &mut value,
                step: &mut step,
            };
            for ((b, &y), &g) in db.iter_mut().zip(&yb[at.clone()]).zip(&gb[at.clone()]) {
                *b += if s.relu && y <= 0.0 { 0.0 } else { g };
            }
            let from = from.map(|from| &from[at.clone()]);
            let n = compact::nonzero(&yb[at.clone()], &gb[at], from, j as u32, s.relu, kept);
            let kept = filter[..n].iter().zip(&value[..n]).zip(&step[..n]);
            // Listed under each filter, in the order of rows and steps.
            for ((&ff, &d), &t) in kept.clone() {
                let slot = ff as usize * cap + count[ff as usize];
                offsets[slot] = seq + t as usize * s.stride * s.c;
                dz[slot] = d;
                count[ff as usize] += 1;
            }
            if let Some(dxb) = dxb.as_mut() {
                for ((&ff, &d), &t) in kept {
                    let (ff, at) = (ff as usize, t as usize * s.stride * s.c);
                    axpy(d, &s.wf[ff * kc..(ff + 1) * kc], &mut dxb[at..at + kc]);
                }
            }
        }
    }
    // dW[f]: the same sums in the same order, one filter at a time.
    for (ff, acc) in dw.chunks_exact_mut(kc + 1).enumerate() {
        let kept = ff * cap..ff * cap + count[ff];
        let (offsets, dz) = (&offsets[kept.clone()], &dz[kept]);
        weighted_sum::add_windows(s.x, offsets, dz, &mut acc[..kc]);
        acc[kc] = db[ff];
    }
}

super::fastmath::avx2_dispatch!(fn run_chunk(s: &Shared<'_>, part: Chunk<'_>, windows: &mut Windows) => chunk_body);

/// (dW (F, C, K), db (F), dL/dx when `with_input`).
fn gradients(p: &Pending, dy: &Tensor, with_input: bool) -> (Tensor, Tensor, Option<Tensor>) {
    let (batch, time, c) = p.xs.size3().expect("(batch, time, channels)");
    let (f, _, k) = p.w.size3().expect("(filters, channels, kernel)");
    let t_out = p.y.numel() as i64 / (batch * f);
    let dy = dy.contiguous();
    let wf = p.w.detach().permute([0, 2, 1]).contiguous(); // (F, K, C)
    let (bs, fs, kc) = (batch as usize, f as usize, (k * c) as usize);
    let chunks: Vec<Range<usize>> = (0..bs)
        .step_by(CHUNK)
        .map(|r| r..(r + CHUNK).min(bs))
        .collect();
    let opts = (Kind::Float, p.xs.device());
    // Zeroed by their chunks, each on the thread that fills it.
    let partial = Tensor::empty([chunks.len() as i64, f, kc as i64 + 1], opts);
    let dx = with_input.then(|| Tensor::empty([batch, time, c], opts));
    let shared = Shared {
        x: floats(&p.xs),
        y: floats(&p.y),
        dy: floats(&dy),
        from: p.from.as_deref(),
        wf: floats(&wf),
        time: time as usize,
        c: c as usize,
        kc,
        f: fs,
        t_out: t_out as usize,
        stride: p.stride,
        relu: p.relu,
    };
    let seq = time as usize * c as usize;
    let mut dx_rest = dx.as_ref().map(floats_mut);
    let items: Vec<Chunk> = chunks
        .iter()
        .zip(floats_mut(&partial).chunks_exact_mut(fs * (kc + 1)))
        .map(|(rows, dw)| Chunk {
            rows: rows.clone(),
            dw,
            dx: dx_rest.as_mut().map(|rest| {
                let (head, tail) = std::mem::take(rest).split_at_mut(rows.len() * seq);
                *rest = tail;
                head
            }),
        })
        .collect();
    team::run(items, &|part| {
        WINDOWS.with_borrow_mut(|windows| run_chunk(&shared, part, windows))
    });
    // The chunks' partial sums, added in chunk order.
    let mut total = vec![0f32; fs * (kc + 1)];
    for part in floats(&partial).chunks_exact(fs * (kc + 1)) {
        for (t, &v) in total.iter_mut().zip(part) {
            *t += v;
        }
    }
    let total = Tensor::from_slice(&total).view([f, kc as i64 + 1]);
    let dw = total
        .narrow(1, 0, kc as i64)
        .view([f, k, c])
        .permute([0, 2, 1])
        .contiguous();
    let db = total.select(1, kc as i64).contiguous();
    (dw, db, dx)
}

impl Pending {
    /// dW, db and dL/dx from the gradient that reached the leaf (from the
    /// graph, or handed over by the run after it: `tape::received`), given
    /// back by `tape::hand_back`: dL/dx to the run that produced an input
    /// leaf, or through one surrogate `backward` call, and the weights'
    /// gradients through `hold` when given.
    pub fn backward(self, handed: &mut Vec<Handoff>, hold: Option<&mut Held>) {
        let g = received(&self.leaf, handed);
        if !g.defined() {
            return;
        }
        let with_input = self.x.requires_grad();
        let (dw, db, dx) = tch::no_grad(|| gradients(&self, &g, with_input));
        hand_back(&[(&self.w, &dw), (&self.b, &db)], &self.x, dx, handed, hold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The output and the gradients of w, b and x through the kernel (with
    /// a tape) or through libtorch's convolution, ReLU and pooling; the loss
    /// is Σ output ⊙ `up(shape)`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        stride: i64,
        relu: bool,
        pool: Pool,
        kernel: bool,
        up: &dyn Fn(&[i64]) -> Tensor,
    ) -> Vec<Tensor> {
        for t in [x, w, b] {
            t.shallow_clone().zero_grad();
        }
        let act = if relu {
            Activation::Relu
        } else {
            Activation::Linear
        };
        let tape = Tape::default();
        let y = if kernel {
            forward(x, w, b, stride, act, pool, Some(&tape))
        } else {
            let y = x
                .transpose(1, 2)
                .conv1d(w, Some(b), [stride], [0], [1], 1)
                .transpose(1, 2);
            let y = if relu { y.relu() } else { y };
            match pool {
                Pool::None => y,
                Pool::Max { size, stride } => y
                    .transpose(1, 2)
                    .max_pool1d([size as i64], [stride as i64], [0], [1], false)
                    .transpose(1, 2),
                Pool::GlobalMax => y.amax([1], false),
            }
        };
        (&y * up(&y.size())).sum(Kind::Float).backward();
        tape.backward();
        vec![
            y.detach(),
            w.grad().copy(),
            b.grad().copy(),
            x.grad().copy(),
        ]
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// Forward, weight, bias and input gradients equal libtorch's, with
    /// strides, ReLU or linear, no pool, a max pool (overlapping or not) and
    /// a global max pool.
    #[test]
    fn equals_libtorch_convolution_and_pooling() {
        let _rng = crate::model::rng_lock();
        tch::manual_seed(11);
        let opts = (Kind::Float, Device::Cpu);
        let pools = [
            Pool::None,
            Pool::Max { size: 3, stride: 3 },
            Pool::Max { size: 3, stride: 2 },
            Pool::GlobalMax,
        ];
        for (stride, relu) in [(1, true), (1, false), (2, true), (3, false)] {
            for (channels, time, filters) in [(3, 19, 5), (14, 40, 32), (32, 26, 16)] {
                let x = Tensor::randn([9, time, channels], opts).set_requires_grad(true);
                let w = (Tensor::randn([filters, channels, 4], opts) * 0.3).set_requires_grad(true);
                let b = (Tensor::randn([filters], opts) * 0.1).set_requires_grad(true);
                for pool in pools {
                    let seed = tch::Tensor::randint(1 << 30, [1], (Kind::Int64, Device::Cpu));
                    let seed = seed.int64_value(&[0]);
                    let up = |shape: &[i64]| Tensor::randn(shape, opts);
                    tch::manual_seed(seed);
                    let want = run(&x, &w, &b, stride, relu, pool, false, &up);
                    tch::manual_seed(seed);
                    let got = run(&x, &w, &b, stride, relu, pool, true, &up);
                    for (name, (a, g)) in ["y", "dw", "db", "dx"].iter().zip(want.iter().zip(&got))
                    {
                        assert_eq!(a.size(), g.size(), "{name}, {pool:?}");
                        let d = max_diff(a, g);
                        assert!(
                            d < 1e-4,
                            "stride {stride}, relu {relu}, {channels}→{filters}, {pool:?}: {name} differs by {d}"
                        );
                    }
                }
            }
        }
    }

    /// Two kernel convolutions in a row: the second hands dL/dx to the
    /// first (its input is the first's output leaf). Every gradient is
    /// bit-equal to the same chain with a graph operation (× 1) between the
    /// two, where dL/dx goes through the graph; also when the first's
    /// output feeds the loss directly as well.
    #[test]
    fn handing_the_input_gradient_on_equals_the_graph() {
        let _rng = crate::model::rng_lock();
        tch::manual_seed(14);
        let opts = (Kind::Float, Device::Cpu);
        let x = Tensor::randn([10, 40, 6], opts).set_requires_grad(true);
        let w1 = (Tensor::randn([16, 6, 5], opts) * 0.3).set_requires_grad(true);
        let b1 = (Tensor::randn([16], opts) * 0.1).set_requires_grad(true);
        let w2 = (Tensor::randn([8, 16, 3], opts) * 0.3).set_requires_grad(true);
        let b2 = (Tensor::randn([8], opts) * 0.1).set_requires_grad(true);
        let up2 = Tensor::randn([10, 3, 8], opts);
        let up1 = Tensor::randn([10, 12, 16], opts);
        for direct in [false, true] {
            let run = |between: bool| {
                for t in [&x, &w1, &b1, &w2, &b2] {
                    t.shallow_clone().zero_grad();
                }
                let tape = Tape::default();
                let pool = Pool::Max { size: 3, stride: 3 };
                let y1 = forward(&x, &w1, &b1, 1, Activation::Relu, pool, Some(&tape));
                let x2 = if between {
                    &y1 * 1.0
                } else {
                    y1.shallow_clone()
                };
                let y2 = forward(&x2, &w2, &b2, 1, Activation::Relu, pool, Some(&tape));
                let mut loss = (&y2 * &up2).sum(Kind::Float);
                if direct {
                    loss += (&y1 * &up1).sum(Kind::Float);
                }
                loss.backward();
                tape.backward();
                [&x, &w1, &b1, &w2, &b2].map(|t| t.grad().copy())
            };
            let (graph, handed) = (run(true), run(false));
            for (name, (a, b)) in ["x", "w1", "b1", "w2", "b2"]
                .iter()
                .zip(graph.iter().zip(&handed))
            {
                assert!(
                    a.abs().sum(Kind::Float).double_value(&[]) > 0.0,
                    "{name} has a gradient"
                );
                assert!(
                    a.equal(b),
                    "{name} differs (loss reads the first output too: {direct})"
                );
            }
        }
    }

    /// The weight gradient against central differences of the loss
    /// (linear activation: the loss is quadratic, the differences exact up
    /// to rounding).
    #[test]
    fn weight_gradient_matches_finite_differences() {
        let _rng = crate::model::rng_lock();
        tch::manual_seed(12);
        let opts = (Kind::Float, Device::Cpu);
        let x = Tensor::randn([4, 12, 3], opts);
        let w = (Tensor::randn([5, 3, 3], opts) * 0.5).set_requires_grad(true);
        let b = Tensor::randn([5], opts).set_requires_grad(true);
        let loss = |y: &Tensor| (y * y).sum(Kind::Float) * 0.5;
        let tape = Tape::default();
        loss(&forward(
            &x,
            &w,
            &b,
            1,
            Activation::Linear,
            Pool::None,
            Some(&tape),
        ))
        .backward();
        tape.backward();
        let grad = Vec::<f32>::try_from(w.grad().flatten(0, -1)).unwrap();
        let eps = 1e-2;
        for i in [0usize, 7, 19, 44] {
            let at = |delta: f64| {
                let w2 = w.detach().copy();
                let flat = w2.view([-1]);
                let _ = flat.get(i as i64).g_add_(&Tensor::from(delta as f32));
                tch::no_grad(|| {
                    loss(&forward(
                        &x,
                        &w2,
                        &b,
                        1,
                        Activation::Linear,
                        Pool::None,
                        None,
                    ))
                })
                .double_value(&[])
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            let rel = (numeric - grad[i] as f64).abs() / numeric.abs().max(1.0);
            assert!(rel < 2e-3, "w[{i}]: numeric {numeric}, kernel {}", grad[i]);
        }
    }

    /// The backward pass sums in fixed chunks of rows: one thread or two
    /// give the same bits.
    #[test]
    fn gradients_do_not_depend_on_the_thread_count() {
        let _rng = crate::model::rng_lock();
        tch::manual_seed(13);
        let opts = (Kind::Float, Device::Cpu);
        let x = Tensor::randn([37, 30, 6], opts).set_requires_grad(true);
        let w = Tensor::randn([16, 6, 5], opts).set_requires_grad(true);
        let b = Tensor::randn([16], opts).set_requires_grad(true);
        let up = |shape: &[i64]| Tensor::ones(shape, opts) * 0.5;
        let before = tch::get_num_threads();
        let mut runs = Vec::new();
        for threads in [1, 2] {
            tch::set_num_threads(threads);
            for pool in [Pool::None, Pool::Max { size: 3, stride: 3 }] {
                runs.push(run(&x, &w, &b, 1, true, pool, true, &up));
            }
        }
        tch::set_num_threads(before);
        for (one, two) in runs[..2].iter().zip(&runs[2..]) {
            for (a, b) in one.iter().zip(two) {
                assert!(a.equal(b), "results differ between 1 and 2 threads");
            }
        }
    }
}
