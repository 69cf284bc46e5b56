//! CPU kernels that run outside libtorch's autograd, each with a
//! hand-written backward pass replayed from the [`tape::Tape`].
//!
//! `rnn` runs the time loop of a GRU (`gru`) or LSTM (`lstm`) cell;
//! `conv` runs a Conv1D without unfolding its windows; `embed_conv` turns
//! an Embedding feeding a Conv1D into table lookups (`rnn::Lookup` does the
//! same for a recurrent layer's input projection); `window_mean` is the
//! forecasters' moving average; `attention` is multi-head self-attention;
//! `dense` runs a Dense layer on the tape where a recurrent kernel reads
//! its output.
//! `small_gemm`, `fastmath` and `team` are their building blocks: register-
//! blocked small products, vectorisable activations, and libtorch's own
//! OpenMP threads. This file holds the plain-buffer views they share.
pub mod attention;
pub mod compact;
pub mod conv;
pub mod dense;
pub mod embed_conv;
pub mod fastmath;
pub mod gru;
pub mod lstm;
pub mod mask;
pub mod rnn;
pub mod small_gemm;
pub mod tape;
pub mod team;
pub mod weighted_sum;
pub mod window_mean;

use std::ops::Range;
use tch::{Kind, Tensor};

/// Whether autograd records operations on this thread right now (false
/// inside `tch::no_grad`).
pub fn grad_enabled() -> bool {
    // SAFETY: sets this thread's grad mode and at once restores the
    // previous one, which the first call returns.
    unsafe {
        let previous = torch_sys::at_grad_set_enabled(0);
        torch_sys::at_grad_set_enabled(previous);
        previous != 0
    }
}

/// The floats of a contiguous CPU f32 tensor.
pub fn floats(t: &Tensor) -> &[f32] {
    assert!(t.is_contiguous() && t.kind() == Kind::Float && t.device() == tch::Device::Cpu);
    // SAFETY: a contiguous CPU f32 tensor owns numel() floats at data_ptr;
    // the borrow of `t` keeps the storage alive.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel()) }
}

/// The floats of a contiguous CPU f32 tensor, writable. Callers only use
/// this on tensors they just created, and never hold two views of one.
#[allow(clippy::mut_from_ref)]
pub fn floats_mut(t: &Tensor) -> &mut [f32] {
    assert!(t.is_contiguous() && t.kind() == Kind::Float && t.device() == tch::Device::Cpu);
    // SAFETY: as `floats`; exclusive use is the caller's contract above.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel()) }
}

/// Token ids as row numbers, each checked against the vocabulary.
pub fn token_rows(tokens: &Tensor, vocab: i64) -> Vec<usize> {
    let ids = Vec::<i64>::try_from(tokens.flatten(0, -1)).expect("int64 token ids");
    ids.into_iter()
        .map(|id| {
            assert!(
                (0..vocab).contains(&id),
                "token id {id} outside the embedding's input_dim {vocab}; \
                 raise input_dim to the data's max_features"
            );
            id as usize
        })
        .collect()
}

/// Splits a (steps, batch, width) buffer into each chunk of batch rows'
/// per-step slices: `result[chunk][step]`.
pub fn split_rows<'a>(
    buf: &'a mut [f32],
    batch: usize,
    width: usize,
    chunks: &[Range<usize>],
) -> Vec<Vec<&'a mut [f32]>> {
    let mut parts: Vec<Vec<&mut [f32]>> = chunks.iter().map(|_| Vec::new()).collect();
    for step in buf.chunks_exact_mut(batch * width) {
        let mut rest = step;
        for (part, rows) in parts.iter_mut().zip(chunks) {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(rows.len() * width);
            part.push(head);
            rest = tail;
        }
    }
    parts
}

/// Splits a (batch, width) buffer into each chunk of batch rows' slice.
pub fn split_chunks<'a>(
    buf: &'a mut [f32],
    batch: usize,
    width: usize,
    chunks: &[Range<usize>],
) -> Vec<&'a mut [f32]> {
    assert_eq!(buf.len(), batch * width, "one (batch, width) buffer");
    split_rows(buf, batch, width, chunks)
        .into_iter()
        .flatten()
        .collect()
}
