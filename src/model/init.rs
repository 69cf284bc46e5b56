//! Weight initialisers: Keras' defaults (glorot_uniform kernels, orthogonal
//! recurrent kernels, zero biases, uniform(±0.05) embeddings) or libtorch's own.
//!
//! All draws use libtorch's generator, seeded by `tch::manual_seed`.
use tch::{Device, Kind, Tensor};

/// uniform(−limit, limit) of the given shape.
pub fn uniform(dims: &[i64], limit: f64, device: Device) -> Tensor {
    Tensor::empty(dims, (Kind::Float, device)).uniform_(-limit, limit)
}

/// Keras glorot_uniform: limit = sqrt(6 / (fan_in + fan_out)).
pub fn glorot(dims: &[i64], fan_in: i64, fan_out: i64, device: Device) -> Tensor {
    uniform(dims, (6.0 / (fan_in + fan_out) as f64).sqrt(), device)
}

/// A (rows, cols) matrix with orthonormal columns (rows ≥ cols) or rows,
/// as Keras' `orthogonal` initializer (QR of a normal matrix, sign-fixed).
pub fn orthogonal(rows: i64, cols: i64, device: Device) -> Tensor {
    let (tall, short) = (rows.max(cols), rows.min(cols));
    let a = Tensor::randn([tall, short], (Kind::Float, device));
    let (q, r) = Tensor::linalg_qr(&a, "reduced");
    let q = q * r.diagonal(0, 0, 1).sign().unsqueeze(0);
    if rows >= cols {
        q
    } else {
        q.transpose(0, 1).contiguous()
    }
}
