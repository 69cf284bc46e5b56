//! The layers long-horizon forecasters use (DLinear, NLinear, PatchTST,
//! SegRNN), and the per-window frame around a model.
//!
//! | layer | math | shape in → out | parameters |
//! |---|---|---|---|
//! | `reshape` | same values, new per-sample shape (one `-1` inferred) | (b, …) → (b, target) | 0 |
//! | `permute` | `y[b, i₁…] = x[b, i_dims…]` (axes from 1) | (b, d₁…dₙ) → (b, d_dims…) | 0 |
//! | `subtract`, `multiply` | `a − b`, `a ⊙ b ⊙ …` | equal shapes → same | 0 |
//! | `moving_average` | `y[t] = mean(x̃[t … t+k−1])`, x̃ = x with its first row repeated ⌊(k−1)/2⌋ times in front and its last row ⌈(k−1)/2⌉ times behind | (b, T, C) → (b, T, C) | 0 |
//! | `layer_normalization` | `y = γ (x − μ) / √(σ² + ε) + β` over the last axis | same | 2·F |
//! | `multi_head_attention` | `softmax(QKᵀ/√k) V`, heads concatenated, projected back | (b, T, F) → (b, T, F) | 3·(F·h·k + h·k) + h·k·F + F |
//! | `positional_embedding` | `y = x + P`, P a learned (T, F) table | same | T·F |
//!
//! The frame (`[model] channel_independent`, `normalize`): each column as its
//! own series, (b, L, C) → (b·C, L, 1) → layers → (b, H, C); and the window's
//! last value (or mean/std) taken off the input and put back on the output.
use super::init;
use super::kernel::{self, attention::Weights, tape::Tape, window_mean};
use crate::config::{Init, WindowNorm};
use tch::{nn, Kind, Tensor};

/// The per-sample dims of `target` (one `-1` allowed) for `total` values.
pub fn reshape_dims(target: &[i64], total: usize) -> Result<Vec<usize>, String> {
    let unknown = target.iter().filter(|&&d| d == -1).count();
    if unknown > 1 || target.iter().any(|&d| d == 0 || d < -1) {
        return Err(format!(
            "target_shape {target:?}: use positive sizes and at most one -1"
        ));
    }
    let known: usize = target
        .iter()
        .filter(|&&d| d > 0)
        .map(|&d| d as usize)
        .product();
    if known == 0 || !total.is_multiple_of(known) || (unknown == 0 && known != total) {
        return Err(format!(
            "target_shape {target:?} does not hold exactly {total} values"
        ));
    }
    Ok(target
        .iter()
        .map(|&d| if d == -1 { total / known } else { d as usize })
        .collect())
}

/// `x` (b, …) viewed as (b, dims…).
pub fn reshape(x: &Tensor, dims: &[usize]) -> Tensor {
    let mut shape = vec![x.size()[0]];
    shape.extend(dims.iter().map(|&d| d as i64));
    x.reshape(shape.as_slice())
}

/// Keras' 1-based `dims` applied after the batch axis.
pub fn permute(x: &Tensor, dims: &[usize]) -> Tensor {
    let mut order = vec![0i64];
    order.extend(dims.iter().map(|&d| d as i64));
    x.permute(order.as_slice()).contiguous()
}

/// The moving average of (b, T, C) over time, with replicate padding: the
/// output has T steps, the first averaging x[0] repeated ⌊(k−1)/2⌋ times.
pub fn moving_average(x: &Tensor, k: usize) -> Tensor {
    moving_average_taped(x, k, false, None)
}

/// `moving_average`; on the CPU the window means run in the `window_mean`
/// kernel (libtorch's bits, much faster for one channel): in training with
/// a tape for its backward pass, else where no gradient is recorded.
pub fn moving_average_taped(x: &Tensor, k: usize, train: bool, tape: Option<&Tape>) -> Tensor {
    let front = ((k - 1) / 2) as i64;
    let back = (k - 1) as i64 - front;
    let t = x.size()[1];
    let mut parts = Vec::new();
    if front > 0 {
        parts.push(x.narrow(1, 0, 1).repeat([1, front, 1]));
    }
    parts.push(x.shallow_clone());
    if back > 0 {
        parts.push(x.narrow(1, t - 1, 1).repeat([1, back, 1]));
    }
    let padded = Tensor::cat(&parts, 1); // (b, T + k − 1, C)
    let cpu = padded.device() == tch::Device::Cpu && padded.kind() == Kind::Float;
    if cpu && train && tape.is_some() {
        return window_mean::forward(&padded, k, tape);
    }
    if cpu && !train && !kernel::grad_enabled() {
        return window_mean::forward(&padded, k, None);
    }
    padded
        .transpose(1, 2)
        .avg_pool1d([k as i64], [1], [0], false, true)
        .transpose(1, 2)
}

/// Layer normalisation over the last axis with learned γ (ones) and β (zeros).
#[derive(Debug)]
pub struct LayerNorm {
    pub gamma: Tensor,
    pub beta: Tensor,
    pub epsilon: f64,
}

impl LayerNorm {
    pub fn new(p: &nn::Path, features: i64, epsilon: f64) -> Self {
        LayerNorm {
            gamma: p.var("gamma", &[features], nn::Init::Const(1.0)),
            beta: p.var("beta", &[features], nn::Init::Const(0.0)),
            epsilon,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let f = *x.size().last().expect("rank ≥ 1");
        x.layer_norm(
            [f],
            Some(&self.gamma),
            Some(&self.beta),
            self.epsilon,
            false,
        )
    }
}

/// Multi-head self-attention (Keras `MultiHeadAttention` called on one input).
#[derive(Debug)]
pub struct Attention {
    /// The q, k, v and output projections.
    pub weights: Weights,
    pub heads: i64,
    pub key_dim: i64,
    pub dropout: f64,
}

impl Attention {
    pub fn new(
        p: &nn::Path,
        features: i64,
        heads: i64,
        key_dim: i64,
        dropout: f64,
        how: Init,
    ) -> Self {
        let _guard = tch::no_grad_guard();
        let hk = heads * key_dim;
        let dev = p.device();
        let weight = |out: i64, inp: i64| match how {
            Init::Keras => init::glorot(&[out, inp], inp, out, dev),
            Init::Torch => init::uniform(&[out, inp], 1.0 / (inp as f64).sqrt(), dev),
        };
        let zeros = |n: i64| Tensor::zeros([n], (Kind::Float, dev));
        Attention {
            weights: Weights {
                wq: p.var_copy("query_kernel", &weight(hk, features)),
                bq: p.var_copy("query_bias", &zeros(hk)),
                wk: p.var_copy("key_kernel", &weight(hk, features)),
                bk: p.var_copy("key_bias", &zeros(hk)),
                wv: p.var_copy("value_kernel", &weight(hk, features)),
                bv: p.var_copy("value_bias", &zeros(hk)),
                wo: p.var_copy("output_kernel", &weight(features, hk)),
                bo: p.var_copy("output_bias", &zeros(features)),
            },
            heads,
            key_dim,
            dropout,
        }
    }

    /// (b, T, F) → (b, T, F); dropout on the attention weights in training.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let (b, t) = (x.size()[0], x.size()[1]);
        let w = &self.weights;
        let split = |m: &Tensor, bias: &Tensor| {
            x.linear(m, Some(bias))
                .view([b, t, self.heads, self.key_dim])
                .transpose(1, 2) // (b, h, T, k)
        };
        let (q, k, v) = (
            split(&w.wq, &w.bq),
            split(&w.wk, &w.bk),
            split(&w.wv, &w.bv),
        );
        let scores = q.matmul(&k.transpose(-2, -1)) / (self.key_dim as f64).sqrt();
        let weights =
            super::draws::dropout(&scores.softmax(-1, scores.kind()), self.dropout, train);
        let heads =
            weights
                .matmul(&v)
                .transpose(1, 2)
                .contiguous()
                .view([b, t, self.heads * self.key_dim]);
        heads.linear(&w.wo, Some(&w.bo))
    }

    /// Whether `forward_kernel` applies: a CPU f32 input, in training (with
    /// a tape) or in evaluation without gradients.
    pub fn kernel_path(&self, x: &Tensor, train: bool) -> bool {
        x.device() == tch::Device::Cpu
            && x.kind() == Kind::Float
            && (train || !kernel::grad_enabled())
    }

    /// The `attention` kernel: `x + attention(x)` when `residual`, else
    /// `attention(x)`; dropout on the weights when a tape is given.
    pub fn forward_kernel(&self, x: &Tensor, residual: bool, tape: Option<&Tape>) -> Tensor {
        use kernel::attention::{forward, Heads};
        let heads = Heads {
            count: self.heads as usize,
            width: self.key_dim as usize,
        };
        forward(x, &self.weights, heads, self.dropout, residual, tape)
    }
}

/// A learned (T, F) table added to every sample (Keras-hub `PositionEmbedding` + add).
#[derive(Debug)]
pub struct PositionalEmbedding {
    pub table: Tensor,
}

impl PositionalEmbedding {
    pub fn new(p: &nn::Path, steps: i64, features: i64, how: Init) -> Self {
        let _guard = tch::no_grad_guard();
        let t = match how {
            Init::Keras => init::glorot(&[steps, features], steps, features, p.device()),
            Init::Torch => init::uniform(&[steps, features], 0.02, p.device()),
        };
        PositionalEmbedding {
            table: p.var_copy("embeddings", &t),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x + self.table.unsqueeze(0)
    }
}

/// What the frame took off a window, to put back on the output.
pub struct Taken {
    /// (b, 1, C) of the target columns: last value or mean.
    shift: Option<Tensor>,
    /// (b, 1, C): the window's std (RevIN).
    scale: Option<Tensor>,
    batch: i64,
    columns: i64,
}

/// The frame around a model: per-window normalisation and channel independence.
#[derive(Debug)]
pub struct Frame {
    pub normalize: WindowNorm,
    pub channel_independent: bool,
    /// The target columns among the inputs (for putting the shift back).
    pub targets: Tensor,
    pub horizon: i64,
}

/// ε added to the window variance before the square root (RevIN's default).
const REVIN_EPS: f64 = 1e-5;

impl Frame {
    /// (b, L, C) → what the layers see, and what was taken off.
    pub fn enter(&self, x: &Tensor) -> (Tensor, Taken) {
        let (b, l, c) = (x.size()[0], x.size()[1], x.size()[2]);
        let (x, shift, scale) = match self.normalize {
            WindowNorm::None => (x.shallow_clone(), None, None),
            WindowNorm::LastValue => {
                let last = x.narrow(1, l - 1, 1);
                (x - &last, Some(last), None)
            }
            WindowNorm::Revin => {
                let mean = x.mean_dim(Some([1i64].as_slice()), true, x.kind());
                let var = x.var_correction(Some([1i64].as_slice()), 0, true);
                let std = (var + REVIN_EPS).sqrt();
                ((x - &mean) / &std, Some(mean), Some(std))
            }
        };
        let x = if self.channel_independent {
            x.transpose(1, 2).reshape([b * c, l, 1])
        } else {
            x
        };
        let pick = |t: Tensor| t.index_select(2, &self.targets);
        (
            x,
            Taken {
                shift: shift.map(pick),
                scale: scale.map(pick),
                batch: b,
                columns: c,
            },
        )
    }

    /// The layers' output back to the targets' frame: (b, H, T) or (b, T).
    pub fn leave(&self, out: &Tensor, taken: &Taken) -> Tensor {
        let out = if self.channel_independent {
            // (b·C, H) or (b·C, H, 1) → (b, H, C)
            out.reshape([taken.batch, taken.columns, self.horizon])
                .transpose(1, 2)
        } else {
            let t = self.targets.size()[0];
            out.reshape([taken.batch, self.horizon, t])
        };
        let out = match &taken.scale {
            Some(s) => out * s,
            None => out,
        };
        let out = match &taken.shift {
            Some(s) => out + s,
            None => out,
        };
        if self.horizon == 1 {
            out.squeeze_dim(1)
        } else {
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn t(v: &[f64], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    /// Largest gap between autograd's gradient of `f` at `x` and central
    /// differences, in double precision.
    fn gradient_gap(x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> f64 {
        let x = x.to_kind(Kind::Double).detach().set_requires_grad(true);
        let y = f(&x).sum(Kind::Double);
        y.backward();
        let grad = x.grad();
        let n = x.numel() as i64;
        let flat = x.detach().view([-1]);
        let mut worst: f64 = 0.0;
        for i in 0..n {
            let h = 1e-6;
            let plus = flat.copy();
            let _ = plus.get(i).f_add_(&Tensor::from(h)).unwrap();
            let minus = flat.copy();
            let _ = minus.get(i).f_sub_(&Tensor::from(h)).unwrap();
            let fp = f(&plus.view(x.size().as_slice()))
                .sum(Kind::Double)
                .double_value(&[]);
            let fm = f(&minus.view(x.size().as_slice()))
                .sum(Kind::Double)
                .double_value(&[]);
            let numeric = (fp - fm) / (2.0 * h);
            worst = worst.max((numeric - grad.view([-1]).double_value(&[i])).abs());
        }
        worst
    }

    #[test]
    fn reshape_infers_one_axis_and_refuses_bad_targets() {
        assert_eq!(reshape_dims(&[4, -1], 12), Ok(vec![4, 3]));
        assert_eq!(reshape_dims(&[12], 12), Ok(vec![12]));
        assert!(reshape_dims(&[5, -1], 12).is_err());
        assert!(reshape_dims(&[-1, -1], 12).is_err());
        assert!(reshape_dims(&[3, 3], 12).is_err());
        let x = Tensor::arange(24, (Kind::Float, Device::Cpu)).view([2, 3, 4]);
        assert_eq!(reshape(&x, &[4, 3]).size(), vec![2, 4, 3]);
        let p = permute(&x, &[2, 1]);
        assert_eq!(p.size(), vec![2, 4, 3]);
        assert_eq!(p.double_value(&[1, 3, 2]), x.double_value(&[1, 2, 3]));
    }

    #[test]
    fn moving_average_by_hand_and_its_gradient() {
        let _rng = crate::model::rng_lock();
        // One channel, T = 4, k = 3: padded [1, 1, 2, 4, 8, 8] → means of 3.
        let x = t(&[1.0, 2.0, 4.0, 8.0], &[1, 4, 1]);
        let y = moving_average(&x, 3);
        let got: Vec<f64> = Vec::try_from(y.view([-1])).unwrap();
        assert_eq!(got, vec![4.0 / 3.0, 7.0 / 3.0, 14.0 / 3.0, 20.0 / 3.0]);
        // Even k: one more repeat behind than in front; the length is kept.
        assert_eq!(moving_average(&x, 2).size(), vec![1, 4, 1]);
        let x = Tensor::randn([2, 5, 3], (Kind::Double, Device::Cpu));
        assert!(gradient_gap(&x, |x| moving_average(x, 3) * x) < 1e-6);
    }

    #[test]
    fn layer_normalization_by_hand_and_gradient() {
        let _rng = crate::model::rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let ln = LayerNorm::new(&vs.root(), 2, 1e-3);
        let y = ln.forward(&t(&[1.0, 3.0], &[1, 2]).to_kind(Kind::Float));
        // mean 2, variance 1: (±1) / √(1 + 0.001)
        let want = 1.0 / (1.0f64 + 1e-3).sqrt();
        assert!((y.double_value(&[0, 1]) - want).abs() < 1e-6);
        assert!((y.double_value(&[0, 0]) + want).abs() < 1e-6);
        let (g, b) = (
            ln.gamma.to_kind(Kind::Double),
            ln.beta.to_kind(Kind::Double),
        );
        let x = Tensor::randn([3, 2], (Kind::Double, Device::Cpu));
        let f = |x: &Tensor| x.layer_norm([2], Some(&g), Some(&b), 1e-3, false) * x;
        assert!(gradient_gap(&x, f) < 1e-5);
    }

    #[test]
    fn attention_with_one_step_returns_the_projected_value() {
        let _rng = crate::model::rng_lock();
        // With T = 1 the softmax is 1: y = (x Wvᵀ + bv) Woᵀ + bo.
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let a = Attention::new(&vs.root(), 4, 2, 3, 0.0, Init::Keras);
        let x = Tensor::randn([2, 1, 4], (Kind::Float, Device::Cpu));
        let w = &a.weights;
        let want = x.linear(&w.wv, Some(&w.bv)).linear(&w.wo, Some(&w.bo));
        assert!(a.forward(&x, false).allclose(&want, 1e-5, 1e-6, false));
        assert_eq!(
            a.forward(&Tensor::randn([2, 5, 4], (Kind::Float, Device::Cpu)), true)
                .size(),
            vec![2, 5, 4]
        );
    }

    #[test]
    fn attention_gradient_matches_finite_differences() {
        let _rng = crate::model::rng_lock();
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let a = Attention::new(&vs.root(), 4, 2, 2, 0.0, Init::Keras);
        let d = |w: &Tensor| w.to_kind(Kind::Double).detach();
        let mut weights = a.weights.map(d);
        weights.bq += 0.1;
        let a64 = Attention {
            weights,
            heads: 2,
            key_dim: 2,
            dropout: 0.0,
        };
        let x = Tensor::randn([1, 3, 4], (Kind::Double, Device::Cpu));
        assert!(gradient_gap(&x, |x| a64.forward(x, false) * x) < 1e-5);
    }

    #[test]
    fn reshape_permute_and_merges_by_hand_and_their_gradients() {
        let _rng = crate::model::rng_lock();
        // By hand: (1, 2, 3) values 0..6; permute [2, 1] puts x[0, j, i] at [0, i, j].
        let x = Tensor::arange(6, (Kind::Double, Device::Cpu)).view([1, 2, 3]);
        let p = permute(&x, &[2, 1]);
        assert_eq!(
            Vec::<f64>::try_from(p.view([-1])).unwrap(),
            vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );
        let r = reshape(&x, &[3, 2]);
        assert_eq!(
            Vec::<f64>::try_from(r.view([-1])).unwrap(),
            (0..6).map(f64::from).collect::<Vec<_>>()
        );
        let y = t(&[1.0, 2.0, 3.0], &[1, 3]);
        let z = t(&[4.0, 5.0, 6.0], &[1, 3]);
        assert_eq!(
            Vec::<f64>::try_from((&y - &z).view([-1])).unwrap(),
            vec![-3.0, -3.0, -3.0]
        );
        assert_eq!(
            Vec::<f64>::try_from((&y * &z).view([-1])).unwrap(),
            vec![4.0, 10.0, 18.0]
        );
        // Gradients through each, against central differences.
        let x = Tensor::randn([2, 3, 4], (Kind::Double, Device::Cpu));
        let w = Tensor::randn([2, 4, 3], (Kind::Double, Device::Cpu));
        assert!(gradient_gap(&x, |x| permute(x, &[2, 1]) * &w) < 1e-6);
        assert!(gradient_gap(&x, |x| reshape(x, &[4, 3]) * &w) < 1e-6);
        assert!(gradient_gap(&x, |x| (x - x.square()) * x) < 1e-5);
        let table = Tensor::randn([3, 4], (Kind::Double, Device::Cpu));
        let pe = PositionalEmbedding { table };
        assert!(gradient_gap(&x, |x| pe.forward(x) * x) < 1e-5);
    }

    #[test]
    fn positional_embedding_adds_its_table() {
        let _rng = crate::model::rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let p = PositionalEmbedding::new(&vs.root(), 3, 2, Init::Keras);
        let x = Tensor::ones([2, 3, 2], (Kind::Float, Device::Cpu));
        let y = p.forward(&x);
        assert!((y - 1.0).get(1).allclose(&p.table, 1e-6, 1e-6, false));
    }

    fn frame(normalize: WindowNorm, ci: bool, horizon: i64, targets: &[i64]) -> Frame {
        Frame {
            normalize,
            channel_independent: ci,
            targets: Tensor::from_slice(targets),
            horizon,
        }
    }

    #[test]
    fn an_identity_inside_the_frame_returns_the_window_shape_restored() {
        let _rng = crate::model::rng_lock();
        // Layers that pass their input through unchanged (L = H): the frame
        // must give back exactly the window, in (b, H, C).
        let x = Tensor::randn([2, 4, 3], (Kind::Float, Device::Cpu)) * 5.0 + 2.0;
        for norm in [WindowNorm::None, WindowNorm::LastValue, WindowNorm::Revin] {
            let f = frame(norm, true, 4, &[0, 1, 2]);
            let (inner, taken) = f.enter(&x);
            assert_eq!(inner.size(), vec![6, 4, 1]);
            let out = f.leave(&inner.squeeze_dim(2), &taken);
            assert!(out.allclose(&x, 1e-4, 1e-5, false), "{norm:?}");
        }
        // Without channel independence a flat (b, H·T) output is framed too.
        let f = frame(WindowNorm::LastValue, false, 4, &[0, 1, 2]);
        let (inner, taken) = f.enter(&x);
        let out = f.leave(&inner.reshape([2, 12]), &taken);
        assert!(out.allclose(&x, 1e-5, 1e-6, false));
    }

    #[test]
    fn last_value_normalisation_adds_back_the_targets_last_values() {
        // A model that outputs zeros forecasts "repeat the last value".
        let x = t(&[1.0, 10.0, 2.0, 20.0, 3.0, 30.0], &[1, 3, 2]).to_kind(Kind::Float);
        let f = frame(WindowNorm::LastValue, false, 2, &[1]);
        let (inner, taken) = f.enter(&x);
        assert_eq!(
            Vec::<f32>::try_from(inner.view([-1])).unwrap(),
            vec![-2.0, -20.0, -1.0, -10.0, 0.0, 0.0]
        );
        let out = f.leave(&Tensor::zeros([1, 2], (Kind::Float, Device::Cpu)), &taken);
        assert_eq!(
            Vec::<f32>::try_from(out.view([-1])).unwrap(),
            vec![30.0, 30.0]
        );
    }

    #[test]
    fn frame_gradients_match_finite_differences() {
        let _rng = crate::model::rng_lock();
        let x = Tensor::randn([2, 4, 2], (Kind::Double, Device::Cpu));
        let f = frame(WindowNorm::Revin, true, 4, &[0, 1]);
        let g = |x: &Tensor| {
            let (inner, taken) = f.enter(x);
            f.leave(&(inner.squeeze_dim(2) * 0.5), &taken) * x
        };
        assert!(gradient_gap(&x, g) < 1e-5);
    }
}
