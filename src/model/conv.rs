//! Conv1D and pooling over time, with Keras' padding rules.
//!
//! Conv1D: y[t] = act(b + Σₖ w[k] · x[t·s + k·d]); (batch, time, channels) →
//! (batch, time', filters), parameters kernel·channels·filters + filters.
//! `valid`: time' = ⌊(time − d(k−1) − 1)/s⌋ + 1; `same`: ⌈time/s⌉ (zeros split
//! left/right, left ≤ right); `causal`: d(k−1) zeros on the left.
//! Pooling uses the same formulas with d = 1. Layers transpose to libtorch's
//! (batch, channels, time) inside `forward` only.
use super::activation;
use super::dense::Embedding;
use super::init;
use super::kernel::tape::Tape;
use super::kernel::{self, conv, embed_conv};
use crate::config::{Activation, Init, Padding};
use tch::{nn, Kind, Tensor};

/// Left and right zero padding for a window of `span` steps with stride `s`.
pub fn pad_amounts(len: i64, span: i64, stride: i64, padding: Padding) -> (i64, i64) {
    match padding {
        Padding::Valid => (0, 0),
        Padding::Causal => (span - 1, 0),
        Padding::Same => {
            let out = (len + stride - 1) / stride;
            let total = ((out - 1) * stride + span - len).max(0);
            (total / 2, total - total / 2)
        }
    }
}

#[derive(Debug)]
pub struct Conv1d {
    pub w: Tensor,
    pub b: Tensor,
    pub kernel: i64,
    pub stride: i64,
    pub dilation: i64,
    pub padding: Padding,
    pub activation: Activation,
}

impl Conv1d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        p: &nn::Path,
        channels: i64,
        filters: i64,
        kernel: i64,
        stride: i64,
        dilation: i64,
        padding: Padding,
        activation: Activation,
        how: Init,
    ) -> Self {
        let _guard = tch::no_grad_guard();
        let dims = [filters, channels, kernel];
        let (w, b) = match how {
            Init::Keras => (
                init::glorot(&dims, channels * kernel, filters * kernel, p.device()),
                Tensor::zeros([filters], (Kind::Float, p.device())),
            ),
            Init::Torch => {
                let lim = 1.0 / ((channels * kernel) as f64).sqrt();
                (
                    init::uniform(&dims, lim, p.device()),
                    init::uniform(&[filters], lim, p.device()),
                )
            }
        };
        Conv1d {
            w: p.var_copy("kernel", &w),
            b: p.var_copy("bias", &b),
            kernel,
            stride,
            dilation,
            padding,
            activation,
        }
    }

    /// (batch, time, channels) → (batch, time', filters), without a tape.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_taped(x, train, None)
    }

    /// (batch, time, channels) → (batch, time', filters). On the CPU, without
    /// dilation and with a linear or ReLU activation, the `conv` kernel runs
    /// (in training only with a tape for its backward pass, else only where
    /// no gradient is recorded); otherwise, in training, one matrix product
    /// over unfolded windows in this layout, and libtorch's convolution
    /// (oneDNN on the CPU) everywhere else.
    pub fn forward_taped(&self, x: &Tensor, train: bool, tape: Option<&Tape>) -> Tensor {
        if self.kernel_path(x, train, tape.is_some()) {
            return self.forward_kernel(x, conv::Pool::None, if train { tape } else { None });
        }
        if train && x.device() == tch::Device::Cpu {
            return self.forward_unfolded(x);
        }
        let x = x.transpose(1, 2);
        let span = self.dilation * (self.kernel - 1) + 1;
        let (l, r) = pad_amounts(x.size()[2], span, self.stride, self.padding);
        let x = if l + r > 0 {
            x.constant_pad_nd([l, r])
        } else {
            x
        };
        let y = x.conv1d(
            &self.w,
            Some(&self.b),
            [self.stride],
            [0],
            [self.dilation],
            1,
        );
        activation::apply(self.activation, &y.transpose(1, 2))
    }
}

impl Conv1d {
    /// Whether `forward_taped` runs the `conv` kernel for this input.
    pub fn kernel_path(&self, x: &Tensor, train: bool, taped: bool) -> bool {
        x.device() == tch::Device::Cpu
            && x.kind() == Kind::Float
            && conv::supports(self.activation, self.dilation)
            && if train {
                taped
            } else {
                !kernel::grad_enabled()
            }
    }

    /// The `conv` kernel, `pool` fused behind (see `kernel_path`).
    pub fn forward_kernel(&self, x: &Tensor, pool: conv::Pool, tape: Option<&Tape>) -> Tensor {
        let (l, r) = pad_amounts(x.size()[1], self.kernel, self.stride, self.padding);
        let x = if l + r > 0 {
            x.constant_pad_nd([0, 0, l, r])
        } else {
            x.shallow_clone()
        };
        conv::forward(
            &x,
            &self.w,
            &self.b,
            self.stride,
            self.activation,
            pool,
            tape,
        )
    }

    /// The same convolution as one matrix product over the unfolded windows,
    /// in the (batch, time, channels) layout: no transposes in or out.
    fn forward_unfolded(&self, x: &Tensor) -> Tensor {
        let span = self.dilation * (self.kernel - 1) + 1;
        let (l, r) = pad_amounts(x.size()[1], span, self.stride, self.padding);
        let x = if l + r > 0 {
            x.constant_pad_nd([0, 0, l, r])
        } else {
            x.shallow_clone()
        };
        let (b, c) = (x.size()[0], x.size()[2]);
        let windows = x.unfold(1, span, self.stride); // (b, t', c, span)
        let windows = if self.dilation > 1 {
            windows.slice(3, 0, span, self.dilation)
        } else {
            windows
        };
        let t_out = windows.size()[1];
        let f = self.w.size()[0];
        let cols = windows.reshape([b * t_out, c * self.kernel]);
        let y = self
            .b
            .addmm(&cols, &self.w.view([f, c * self.kernel]).tr())
            .view([b, t_out, f]);
        activation::apply(self.activation, &y)
    }

    /// Whether this layer, fed straight by an embedding, can run as table
    /// lookups (`embed_conv`): valid padding, stride 1, on the CPU.
    pub fn fusable_after_embedding(&self) -> bool {
        self.padding == Padding::Valid && self.stride == 1 && self.w.device() == tch::Device::Cpu
    }

    /// This layer over `embedding(tokens)`: table lookups when the batch
    /// repays them, else the two layers as written. Pass the tape in training.
    pub fn forward_embedded(&self, e: &Embedding, tokens: &Tensor, tape: Option<&Tape>) -> Tensor {
        let (b, t) = (tokens.size()[0], tokens.size()[1]);
        let windows = b * (t - self.dilation * (self.kernel - 1));
        if !(self.fusable_after_embedding() && embed_conv::worthwhile(e.w.size()[0], windows)) {
            return self.forward_taped(&e.forward(tokens), tape.is_some(), tape);
        }
        let y = embed_conv::forward(&e.w, &self.w, tokens, self.dilation, tape) + &self.b;
        activation::apply(self.activation, &y)
    }
}

/// MaxPool1D / AveragePool1D over time.
#[derive(Debug)]
pub struct Pool1d {
    pub max: bool,
    pub size: i64,
    pub stride: i64,
    pub padding: Padding,
}

impl Pool1d {
    /// The same pool, taken inside the `conv` kernel of the layer before:
    /// max pools with valid padding only.
    pub fn fused(&self) -> Option<conv::Pool> {
        (self.max && self.padding == Padding::Valid).then_some(conv::Pool::Max {
            size: self.size as usize,
            stride: self.stride as usize,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let x = x.transpose(1, 2);
        let (l, r) = pad_amounts(x.size()[2], self.size, self.stride, self.padding);
        let y = if self.max {
            let x = if l + r > 0 {
                x.pad([l, r], "constant", f64::NEG_INFINITY)
            } else {
                x
            };
            x.max_pool1d([self.size], [self.stride], [0], [1], false)
        } else if l + r > 0 {
            // Keras averages over the real steps only.
            let sums =
                x.constant_pad_nd([l, r])
                    .avg_pool1d([self.size], [self.stride], [0], false, true);
            let ones = Tensor::ones([1, 1, x.size()[2]], (Kind::Float, x.device()))
                .constant_pad_nd([l, r]);
            let counts = ones.avg_pool1d([self.size], [self.stride], [0], false, true);
            sums / counts
        } else {
            x.avg_pool1d([self.size], [self.stride], [0], false, true)
        };
        y.transpose(1, 2)
    }
}

/// GlobalMaxPool1D / GlobalAveragePool1D: (batch, time, channels) → (batch, channels).
pub fn global_pool(x: &Tensor, max: bool) -> Tensor {
    if max {
        x.amax([1], false)
    } else {
        x.mean_dim(Some([1i64].as_slice()), false, Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device};

    fn seq(v: &[f32]) -> Tensor {
        Tensor::from_slice(v).view([1, v.len() as i64, 1])
    }

    #[test]
    fn padding_formulas_match_keras() {
        let _rng = crate::model::rng_lock();
        assert_eq!(pad_amounts(10, 3, 1, Padding::Same), (1, 1));
        assert_eq!(pad_amounts(10, 4, 1, Padding::Same), (1, 2));
        assert_eq!(pad_amounts(10, 5, 1, Padding::Causal), (4, 0));
    }

    #[test]
    fn conv_with_known_kernel() {
        let _rng = crate::model::rng_lock();
        let vs = VarStore::new(Device::Cpu);
        let c = Conv1d::new(
            &vs.root(),
            1,
            1,
            2,
            1,
            1,
            Padding::Valid,
            Activation::Linear,
            Init::Keras,
        );
        tch::no_grad(|| {
            c.w.shallow_clone()
                .copy_(&Tensor::from_slice(&[1.0f32, 10.0]).view([1, 1, 2]));
        });
        for train in [false, true] {
            let y: Vec<f32> =
                Vec::try_from(c.forward(&seq(&[1.0, 2.0, 3.0]), train).flatten(0, -1)).unwrap();
            assert_eq!(y, vec![21.0, 32.0], "train = {train}");
        }
        let causal = Conv1d {
            padding: Padding::Causal,
            ..c
        };
        for train in [false, true] {
            let y: Vec<f32> =
                Vec::try_from(causal.forward(&seq(&[1.0, 2.0, 3.0]), train).flatten(0, -1))
                    .unwrap();
            assert_eq!(y, vec![10.0, 21.0, 32.0], "train = {train}");
        }
    }

    /// The unfolded product (training on the CPU) equals libtorch's
    /// convolution: strides, dilations, every padding; outputs and gradients.
    #[test]
    fn unfolded_convolution_equals_libtorch() {
        let _rng = crate::model::rng_lock();
        tch::manual_seed(2);
        let vs = VarStore::new(Device::Cpu);
        let x = Tensor::randn([3, 17, 4], (Kind::Float, Device::Cpu));
        for (stride, dilation, padding) in [
            (1, 1, Padding::Valid),
            (2, 1, Padding::Same),
            (1, 2, Padding::Causal),
            (3, 2, Padding::Valid),
        ] {
            let c = Conv1d::new(
                &vs.root(),
                4,
                5,
                3,
                stride,
                dilation,
                padding,
                Activation::Relu,
                Init::Torch,
            );
            let run = |train: bool| {
                c.w.shallow_clone().zero_grad();
                let y = c.forward(&x, train);
                (&y * &y).sum(Kind::Float).backward();
                (y.detach(), c.w.grad().copy())
            };
            let ((y1, g1), (y2, g2)) = (run(true), run(false));
            let case = format!("stride {stride}, dilation {dilation}, {padding:?}");
            assert_eq!(y1.size(), y2.size(), "{case}");
            assert!(
                y1.allclose(&y2, 1e-5, 1e-5, false),
                "{case}: outputs differ"
            );
            assert!(
                g1.allclose(&g2, 1e-4, 1e-4, false),
                "{case}: gradients differ"
            );
        }
    }

    #[test]
    fn pools_and_global_pools() {
        let _rng = crate::model::rng_lock();
        let x = seq(&[1.0, 5.0, 2.0, -1.0, 7.0]);
        let max = Pool1d {
            max: true,
            size: 2,
            stride: 2,
            padding: Padding::Valid,
        };
        assert_eq!(
            Vec::<f32>::try_from(max.forward(&x).flatten(0, -1)).unwrap(),
            vec![5.0, 2.0]
        );
        let same = Pool1d {
            max: true,
            size: 2,
            stride: 2,
            padding: Padding::Same,
        };
        assert_eq!(
            Vec::<f32>::try_from(same.forward(&(&x * -1.0)).flatten(0, -1)).unwrap(),
            vec![-1.0, 1.0, -7.0]
        );
        let avg = Pool1d {
            max: false,
            size: 2,
            stride: 2,
            padding: Padding::Same,
        };
        assert_eq!(
            Vec::<f32>::try_from(avg.forward(&x).flatten(0, -1)).unwrap(),
            vec![3.0, 0.5, 7.0]
        );
        assert_eq!(
            Vec::<f32>::try_from(global_pool(&x, true).flatten(0, -1)).unwrap(),
            vec![7.0]
        );
        assert_eq!(
            Vec::<f32>::try_from(global_pool(&x, false).flatten(0, -1)).unwrap(),
            vec![2.8]
        );
    }
}
