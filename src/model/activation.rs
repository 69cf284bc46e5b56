//! Element-wise activations by their Keras names.
//!
//! `hard_sigmoid` is Keras 2's: clip(0.2·x + 0.5, 0, 1).
use crate::config::Activation;
use tch::Tensor;

pub fn apply(act: Activation, x: &Tensor) -> Tensor {
    match act {
        Activation::Linear => x.shallow_clone(),
        Activation::Relu => x.relu(),
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => x.sigmoid(),
        Activation::HardSigmoid => (x * 0.2 + 0.5).clamp(0.0, 1.0),
        Activation::Softmax => x.softmax(-1, x.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_sigmoid_is_keras_2() {
        let x = Tensor::from_slice(&[-3.0f32, 0.0, 1.0, 3.0]);
        let y: Vec<f32> = Vec::try_from(apply(Activation::HardSigmoid, &x)).unwrap();
        assert_eq!(y, vec![0.0, 0.5, 0.7, 1.0]);
    }
}
