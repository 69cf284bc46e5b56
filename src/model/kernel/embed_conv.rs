//! An Embedding feeding a Conv1D directly, computed as table lookups (CPU).
//!
//! For token ids s, embedding rows E[s] and a valid, stride-1 Conv1D,
//! y[t] = b + Σₖ Wₖ E[s[t + k·d]] = b + Σₖ Pₖ[s[t + k·d]] with the tables
//! Pₖ = E Wₖ (vocabulary × filters). For the book's IMDB convnet (10,000
//! words, 128 dimensions, kernel 7, 32 filters, 128 × 494 windows a batch)
//! the tables cost 287 M multiply-adds where the convolution costs 1.81 G,
//! and the same holds for the gradients. libtorch computes the tables (so
//! autograd derives dE and dW from dP); the window sums and their backward,
//! a scatter-add into dP, are loops here, split between threads by batch
//! rows (forward) and by kernel tap (backward); every sum runs in the same
//! order however the work is split. Used when the vocabulary is at most half
//! the windows of a batch; otherwise the layers run as written.
use super::tape::{Entry, Tape};
use super::{floats, floats_mut, team, token_rows};
use tch::{Kind, Tensor};

/// Whether `windows` output positions a batch repay tables of `vocab` rows.
pub fn worthwhile(vocab: i64, windows: i64) -> bool {
    2 * vocab <= windows
}

/// A recorded window sum awaiting its backward pass.
pub struct Pending {
    /// Pₖ, (k, vocabulary, filters), still attached to E and W in the graph.
    tables: Tensor,
    /// The token ids as checked row numbers, (batch, time) row-major.
    rows: Vec<usize>,
    time: usize,
    dilation: i64,
    /// The output the rest of the graph consumed (bias not included).
    leaf: Tensor,
}

/// Conv1D(Embedding(tokens)) without the bias: tokens (batch, time) →
/// (batch, time − d(k−1), filters). `embeddings` is (vocabulary, dims), the
/// conv kernel (filters, dims, k). With a tape, the output is a leaf whose
/// gradient reaches E and W when the tape runs backward.
pub fn forward(
    embeddings: &Tensor,
    kernel: &Tensor,
    tokens: &Tensor,
    dilation: i64,
    tape: Option<&Tape>,
) -> Tensor {
    let tables = embeddings.matmul(&kernel.permute([2, 1, 0]));
    let (batch, time) = tokens.size2().expect("(batch, time)");
    let rows = token_rows(tokens, embeddings.size()[0]);
    let out =
        tch::no_grad(|| window_sums(&tables.detach().contiguous(), &rows, batch, time, dilation));
    let Some(tape) = tape else { return out };
    let leaf = out.set_requires_grad(true);
    tape.record(Entry::WindowSum(Pending {
        tables,
        rows,
        time: time as usize,
        dilation,
        leaf: leaf.shallow_clone(),
    }));
    leaf
}

/// y[b, t] = Σₖ P[k, s[b, t + k·d]] over (k, vocabulary, filters) tables;
/// `rows` are the (b, t) token ids as row numbers.
fn window_sums(tables: &Tensor, rows: &[usize], b: i64, t: i64, dilation: i64) -> Tensor {
    let (k, vocab, f) = tables.size3().expect("(k, vocabulary, filters)");
    let out_len = t - dilation * (k - 1);
    let out = Tensor::empty([b, out_len, f], (Kind::Float, tables.device()));
    let p = floats(tables);
    let (k, f, t, d, out_len) = (
        k as usize,
        f as usize,
        t as usize,
        dilation as usize,
        out_len as usize,
    );
    let table = |kk: usize, row: usize| &p[(kk * vocab as usize + row) * f..][..f];
    let mut parts = Vec::new();
    let mut rest = floats_mut(&out);
    for range in team::split(b as usize, 8) {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(range.len() * out_len * f);
        parts.push((range, head));
        rest = tail;
    }
    team::run(parts, &|(range, out): (
        std::ops::Range<usize>,
        &mut [f32],
    )| {
        for (bi, seq_out) in range.zip(out.chunks_exact_mut(out_len * f)) {
            let ids = &rows[bi * t..(bi + 1) * t];
            for (ti, o) in seq_out.chunks_exact_mut(f).enumerate() {
                o.copy_from_slice(table(0, ids[ti]));
                for kk in 1..k {
                    for (o, &x) in o.iter_mut().zip(table(kk, ids[ti + kk * d])) {
                        *o += x;
                    }
                }
            }
        }
    });
    out
}

/// dP[k, v] = Σ over windows whose tap k reads token v of dL/dy there.
fn window_sums_backward(dy: &Tensor, p: &Pending) -> Tensor {
    let (k, vocab, f) = p.tables.size3().expect("(k, vocabulary, filters)");
    let d_tables = Tensor::zeros([k, vocab, f], (Kind::Float, p.tables.device()));
    let dy = dy.contiguous();
    let g = floats(&dy);
    let (rows, t, d, f) = (&p.rows, p.time, p.dilation as usize, f as usize);
    let out_len = g.len() / (rows.len() / t * f);
    let taps: Vec<(usize, &mut [f32])> = floats_mut(&d_tables)
        .chunks_exact_mut(vocab as usize * f)
        .enumerate()
        .collect();
    team::run(taps, &|(kk, dp): (usize, &mut [f32])| {
        for (bi, seq_grad) in g.chunks_exact(out_len * f).enumerate() {
            let ids = &rows[bi * t + kk * d..];
            for (ti, gr) in seq_grad.chunks_exact(f).enumerate() {
                let row = &mut dp[ids[ti] * f..][..f];
                for (o, &x) in row.iter_mut().zip(gr) {
                    *o += x;
                }
            }
        }
    });
    d_tables
}

impl Pending {
    /// dP from the leaf's gradient, then dE and dW through the tables' graph.
    pub fn backward(self) {
        let g = self.leaf.grad();
        if !g.defined() {
            return;
        }
        let d_tables = tch::no_grad(|| window_sums_backward(&g, &self));
        super::tape::backward_keeping_graph(&super::tape::inner(&self.tables, &d_tables));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The lookups equal embedding + conv1d, forward and gradients, with a
    /// dilation and tokens that repeat.
    #[test]
    fn equals_embedding_then_conv() {
        let _rng = crate::model::rng_lock();
        tch::manual_seed(4);
        let opts = (Kind::Float, Device::Cpu);
        let e = Tensor::randn([11, 5], opts).set_requires_grad(true);
        let w = Tensor::randn([3, 5, 4], opts).set_requires_grad(true);
        let tokens = Tensor::randint(11, [6, 17], (Kind::Int64, Device::Cpu));
        let up = Tensor::randn([6, 17 - 2 * 3, 3], opts);
        let grads = |y: Tensor, tape: Option<&Tape>| {
            for mut v in [e.shallow_clone(), w.shallow_clone()] {
                v.zero_grad();
            }
            (&y * &up).sum(Kind::Float).backward();
            if let Some(tape) = tape {
                tape.backward();
            }
            (y.detach(), e.grad().copy(), w.grad().copy())
        };
        let direct = grads(
            Tensor::embedding(&e, &tokens, -1, false, false)
                .transpose(1, 2)
                .conv1d(&w, None::<Tensor>, [1], [0], [2], 1)
                .transpose(1, 2),
            None,
        );
        let tape = Tape::default();
        let fused = grads(forward(&e, &w, &tokens, 2, Some(&tape)), Some(&tape));
        for (a, b) in [
            (&direct.0, &fused.0),
            (&direct.1, &fused.1),
            (&direct.2, &fused.2),
        ] {
            let diff = (a - b).abs().max().double_value(&[]);
            assert!(diff < 1e-4, "differs by {diff}");
        }
    }

    #[test]
    #[should_panic(expected = "outside the embedding's input_dim")]
    fn a_token_beyond_the_vocabulary_is_refused() {
        let _rng = crate::model::rng_lock();
        let e = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu));
        let w = Tensor::zeros([3, 2, 2], (Kind::Float, Device::Cpu));
        let tokens = Tensor::from_slice(&[1i64, 2, 4]).view([1, 3]);
        let _ = forward(&e, &w, &tokens, 1, None);
    }
}
