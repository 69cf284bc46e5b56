//! Optimizers with Keras' defaults, built on libtorch's implementations.
//!
//! RMSprop: v ← ρv + (1 − ρ)g², θ ← θ − lr·g/(√v + ε) (Keras 2 and libtorch
//! agree; only the defaults differ: Keras ρ = 0.9, ε = 1e-7).
use crate::config::Optimizer as Spec;
use tch::nn::{self, OptimizerConfig};

pub fn build(spec: &Spec, vs: &nn::VarStore) -> anyhow::Result<nn::Optimizer> {
    Ok(match *spec {
        Spec::Rmsprop { lr, rho, epsilon } => nn::RmsProp {
            alpha: rho,
            eps: epsilon,
            wd: 0.0,
            momentum: 0.0,
            centered: false,
        }
        .build(vs, lr)?,
        Spec::Adam {
            lr,
            beta_1,
            beta_2,
            epsilon,
        } => nn::Adam {
            beta1: beta_1,
            beta2: beta_2,
            wd: 0.0,
            eps: epsilon,
            amsgrad: false,
        }
        .build(vs, lr)?,
        Spec::Sgd {
            lr,
            momentum,
            nesterov,
        } => nn::Sgd {
            momentum,
            dampening: 0.0,
            wd: 0.0,
            nesterov,
        }
        .build(vs, lr)?,
    })
}
