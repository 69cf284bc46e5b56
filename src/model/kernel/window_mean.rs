//! The moving average of a padded sequence (CPU): y[t] = (Σⱼ x[t + j]) / k
//! over (batch, time, channels), with its backward pass.
//!
//! libtorch's `avg_pool1d` takes a slow generic path for one channel (the
//! channel-independent forecasters' layout). Here each window sum is the same
//! chain of float additions in the same order (j ascending from zero), then
//! one division by k, and the backward pass adds g[t] / k to each input in
//! ascending t, as libtorch's pooling does: the bits are libtorch's. The
//! loops run over whole contiguous rows (for each j, all t at once), so they
//! vectorise even with one channel.
use super::tape::{Entry, Tape};
use super::{floats, floats_mut, team};
use tch::{Kind, Tensor};

/// A recorded moving average awaiting its backward pass.
pub struct Pending {
    /// The padded input as the graph holds it.
    x: Tensor,
    k: usize,
    leaf: Tensor,
}

/// (B, P, C) → (B, P − k + 1, C). With a tape, the output is a leaf whose
/// gradient reaches `x` when the tape runs backward.
pub fn forward(x: &Tensor, k: usize, tape: Option<&Tape>) -> Tensor {
    let y = tch::no_grad(|| {
        let xs = x.detach().contiguous();
        let (b, p, c) = xs.size3().expect("(batch, time, channels)");
        let t = p - k as i64 + 1;
        let y = Tensor::zeros([b, t, c], (Kind::Float, xs.device()));
        let (p, t, c) = (p as usize, t as usize, c as usize);
        let src = floats(&xs);
        let rows: Vec<(usize, &mut [f32])> =
            floats_mut(&y).chunks_exact_mut(t * c).enumerate().collect();
        team::run(team::deal(rows, 8), &|part: Vec<(usize, &mut [f32])>| {
            for (row, out) in part {
                sums(&src[row * p * c..(row + 1) * p * c], k, c, out);
            }
        });
        y
    });
    let Some(tape) = tape else { return y };
    let leaf = y.set_requires_grad(true);
    tape.record(Entry::WindowMean(Pending {
        x: x.shallow_clone(),
        k,
        leaf: leaf.shallow_clone(),
    }));
    leaf
}

#[inline(always)]
fn sums_body(x: &[f32], k: usize, c: usize, out: &mut [f32]) {
    let n = out.len();
    for j in 0..k {
        for (o, &v) in out.iter_mut().zip(&x[j * c..j * c + n]) {
            *o += v;
        }
    }
    let k = k as f32;
    for o in out.iter_mut() {
        *o /= k;
    }
}

super::fastmath::avx2_dispatch!(fn sums(x: &[f32], k: usize, c: usize, out: &mut [f32]) => sums_body);

#[inline(always)]
fn spread_body(g: &[f32], k: usize, c: usize, dx: &mut [f32]) {
    let n = g.len();
    let kf = k as f32;
    let shares: Vec<f32> = g.iter().map(|&v| v / kf).collect();
    // Input i receives g[t]/k for t = i − j: j descending is t ascending.
    for j in (0..k).rev() {
        for (d, &s) in dx[j * c..j * c + n].iter_mut().zip(&shares) {
            *d += s;
        }
    }
}

super::fastmath::avx2_dispatch!(fn spread(g: &[f32], k: usize, c: usize, dx: &mut [f32]) => spread_body);

impl Pending {
    /// dL/dx from the leaf's gradient, fed back through one surrogate
    /// `backward` call.
    pub fn backward(self) {
        let g = self.leaf.grad();
        if !g.defined() || !self.x.requires_grad() {
            return;
        }
        let dx = tch::no_grad(|| {
            let g = g.contiguous();
            let (b, t, c) = g.size3().expect("(batch, time, channels)");
            let p = t + self.k as i64 - 1;
            let dx = Tensor::zeros([b, p, c], (Kind::Float, g.device()));
            let (p, t, c) = (p as usize, t as usize, c as usize);
            let gs = floats(&g);
            let rows: Vec<(usize, &mut [f32])> = floats_mut(&dx)
                .chunks_exact_mut(p * c)
                .enumerate()
                .collect();
            team::run(team::deal(rows, 8), &|part: Vec<(usize, &mut [f32])>| {
                for (row, d) in part {
                    spread(&gs[row * t * c..(row + 1) * t * c], self.k, c, d);
                }
            });
            dx
        });
        super::tape::backward_keeping_graph(&super::tape::inner(&self.x, &dx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The same bits as libtorch's avg_pool1d, forward and backward, for one
    /// channel and several.
    #[test]
    fn equals_libtorch_average_pooling_bit_for_bit() {
        let _rng = crate::model::rng_lock();
        tch::manual_seed(21);
        let opts = (Kind::Float, Device::Cpu);
        for (b, p, c, k) in [(37, 120, 1, 25), (5, 40, 7, 5), (3, 9, 2, 9)] {
            let x = Tensor::randn([b, p, c], opts).set_requires_grad(true);
            let up = Tensor::randn([b, p - k + 1, c], opts);
            let pool = x
                .transpose(1, 2)
                .avg_pool1d([k], [1], [0], false, true)
                .transpose(1, 2);
            (&pool * &up).sum(Kind::Float).backward();
            let want = x.grad().copy();
            x.shallow_clone().zero_grad();
            let tape = Tape::default();
            let y = forward(&x, k as usize, Some(&tape));
            (&y * &up).sum(Kind::Float).backward();
            tape.backward();
            assert!(
                y.detach().equal(&pool.detach()),
                "forward {b}×{p}×{c}, k {k}"
            );
            assert!(x.grad().equal(&want), "backward {b}×{p}×{c}, k {k}");
        }
    }
}
