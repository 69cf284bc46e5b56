//! Losses and metrics on one batch.
//!
//! Binary cross-entropy is computed from logits (log-sum-exp form, stable
//! for any magnitude); accuracy thresholds the logit at 0 (probability 0.5).
//! Sparse categorical cross-entropy takes `(B, classes)` logits (log-softmax)
//! and class ids; its accuracy is the argmax's.
use crate::config::{Loss, Metric};
use tch::{Kind, Reduction, Tensor};

/// The mean loss of a batch (a scalar tensor that can be back-propagated).
/// `out` holds logits for binary cross-entropy, predictions otherwise.
pub fn loss(kind: Loss, out: &Tensor, y: &Tensor) -> Tensor {
    match kind {
        Loss::Mae => (out - y).abs().mean(Kind::Float),
        Loss::Mse => (out - y).square().mean(Kind::Float),
        Loss::BinaryCrossentropy => {
            out.binary_cross_entropy_with_logits::<Tensor>(y, None, None, Reduction::Mean)
        }
        Loss::SparseCategoricalCrossentropy => out.cross_entropy_for_logits(&class_ids(y)),
    }
}

/// `(B, 1)` float class ids as `(B,)` int64 targets.
fn class_ids(y: &Tensor) -> Tensor {
    y.reshape([-1]).to_kind(Kind::Int64)
}

/// The mean of a metric over a batch.
pub fn metric(m: Metric, loss_kind: Loss, out: &Tensor, y: &Tensor) -> Tensor {
    match m {
        Metric::Mae => (out - y).abs().mean(Kind::Float),
        Metric::Mse => (out - y).square().mean(Kind::Float),
        Metric::Accuracy if loss_kind == Loss::SparseCategoricalCrossentropy => out
            .argmax(-1, false)
            .eq_tensor(&class_ids(y))
            .to_kind(Kind::Float)
            .mean(Kind::Float),
        Metric::Accuracy => {
            let threshold = if loss_kind == Loss::BinaryCrossentropy {
                0.0
            } else {
                0.5
            };
            out.gt(threshold)
                .to_kind(Kind::Float)
                .eq_tensor(y)
                .to_kind(Kind::Float)
                .mean(Kind::Float)
        }
    }
}

/// A metric's batch value; when it is the loss itself (MAE under an MAE
/// loss), the loss value already computed, without another pass.
pub fn metric_value(m: Metric, loss_kind: Loss, out: &Tensor, y: &Tensor, loss_value: f64) -> f64 {
    match (m, loss_kind) {
        (Metric::Mae, Loss::Mae) | (Metric::Mse, Loss::Mse) => loss_value,
        _ => metric(m, loss_kind, out, y).double_value(&[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bce_from_logits_is_stable_and_correct() {
        let logits = Tensor::from_slice(&[0.0f32, 100.0, -100.0]).view([3, 1]);
        let y = Tensor::from_slice(&[1.0f32, 1.0, 0.0]).view([3, 1]);
        let l = loss(Loss::BinaryCrossentropy, &logits, &y).double_value(&[]);
        assert!((l - (2f64.ln() / 3.0)).abs() < 1e-6, "{l}");
        let wrong = Tensor::from_slice(&[1.0f32, 0.0, 1.0]).view([3, 1]);
        assert!(loss(Loss::BinaryCrossentropy, &logits, &wrong)
            .double_value(&[])
            .is_finite());
        let acc = metric(Metric::Accuracy, Loss::BinaryCrossentropy, &logits, &y).double_value(&[]);
        assert!((acc - 2.0 / 3.0).abs() < 1e-6, "logit 0 is class 0: {acc}");
    }

    #[test]
    fn sparse_categorical_from_logits_and_argmax_accuracy() {
        let logits = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 5.0, 0.0, 0.0]).view([2, 3]);
        let y = Tensor::from_slice(&[2.0f32, 0.0]).view([2, 1]);
        let l = loss(Loss::SparseCategoricalCrossentropy, &logits, &y).double_value(&[]);
        let first = 3f64.ln();
        let second = -(5f64 - (5f64.exp() + 2.0).ln());
        assert!((l - (first + second) / 2.0).abs() < 1e-5, "{l}");
        let acc = metric(
            Metric::Accuracy,
            Loss::SparseCategoricalCrossentropy,
            &logits,
            &y,
        )
        .double_value(&[]);
        assert!(
            (acc - 0.5).abs() < 1e-6,
            "argmax of row 0 is class 0, not 2: {acc}"
        );
    }

    #[test]
    fn mae_and_mse() {
        let p = Tensor::from_slice(&[1.0f32, 3.0]).view([2, 1]);
        let y = Tensor::from_slice(&[2.0f32, 1.0]).view([2, 1]);
        assert_eq!(loss(Loss::Mae, &p, &y).double_value(&[]), 1.5);
        assert_eq!(
            metric(Metric::Mse, Loss::Mae, &p, &y).double_value(&[]),
            2.5
        );
    }
}
