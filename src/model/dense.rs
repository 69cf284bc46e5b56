//! Dense and Embedding layers.
//!
//! Dense: `y = act(x @ wᵀ + b)` over the last axis; (batch, …, in) → (batch, …, units);
//! parameters in·units + units. Embedding: token ids (batch, time) →
//! (batch, time, output_dim); parameters input_dim·output_dim.
use super::activation;
use super::init;
use crate::config::{Activation, Init};
use tch::{nn, Tensor};

#[derive(Debug)]
pub struct Dense {
    pub w: Tensor,
    pub b: Option<Tensor>,
    pub activation: Activation,
}

impl Dense {
    pub fn new(
        p: &nn::Path,
        inputs: i64,
        units: i64,
        bias: bool,
        activation: Activation,
        how: Init,
    ) -> Self {
        let _guard = tch::no_grad_guard();
        let w = match how {
            Init::Keras => init::glorot(&[units, inputs], inputs, units, p.device()),
            Init::Torch => {
                init::uniform(&[units, inputs], 1.0 / (inputs as f64).sqrt(), p.device())
            }
        };
        let b = bias.then(|| match how {
            Init::Keras => Tensor::zeros([units], (tch::Kind::Float, p.device())),
            Init::Torch => init::uniform(&[units], 1.0 / (inputs as f64).sqrt(), p.device()),
        });
        Dense {
            w: p.var_copy("kernel", &w),
            b: b.map(|b| p.var_copy("bias", &b)),
            activation,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        activation::apply(self.activation, &x.linear(&self.w, self.b.as_ref()))
    }

    /// The pre-activation output (logits when the activation is a sigmoid).
    pub fn forward_linear(&self, x: &Tensor) -> Tensor {
        x.linear(&self.w, self.b.as_ref())
    }
}

#[derive(Debug)]
pub struct Embedding {
    pub w: Tensor,
}

impl Embedding {
    pub fn new(p: &nn::Path, input_dim: i64, output_dim: i64, how: Init) -> Self {
        let _guard = tch::no_grad_guard();
        let w = match how {
            Init::Keras => init::uniform(&[input_dim, output_dim], 0.05, p.device()),
            Init::Torch => Tensor::randn([input_dim, output_dim], (tch::Kind::Float, p.device())),
        };
        Embedding {
            w: p.var_copy("embeddings", &w),
        }
    }

    pub fn forward(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.w, ids, -1, false, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device};

    #[test]
    fn dense_computes_affine_map_over_last_axis() {
        let _rng = crate::model::rng_lock();
        let vs = VarStore::new(Device::Cpu);
        let mut d = Dense::new(&vs.root(), 2, 1, true, Activation::Linear, Init::Keras);
        tch::no_grad(|| {
            d.w.copy_(&Tensor::from_slice(&[2.0f32, -1.0]).view([1, 2]));
            d.b.as_mut().unwrap().copy_(&Tensor::from_slice(&[0.5f32]));
        });
        // (batch 1, time 2, features 2) → (1, 2, 1)
        let x = Tensor::from_slice(&[1.0f32, 1.0, 3.0, 2.0]).view([1, 2, 2]);
        let y: Vec<f32> = Vec::try_from(d.forward(&x).flatten(0, -1)).unwrap();
        assert_eq!(y, vec![1.5, 4.5]);
    }

    #[test]
    fn embedding_looks_up_rows() {
        let _rng = crate::model::rng_lock();
        let vs = VarStore::new(Device::Cpu);
        let e = Embedding::new(&vs.root(), 5, 3, Init::Keras);
        let ids = Tensor::from_slice(&[4i64, 0]).view([1, 2]);
        let y = e.forward(&ids);
        assert_eq!(y.size(), vec![1, 2, 3]);
        assert!(y.get(0).get(0).allclose(&e.w.get(4), 0.0, 0.0, false));
    }
}
