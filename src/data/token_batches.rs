//! Batches of padded IMDB reviews on the device, as Keras' `fit` feeds them:
//! the training split walks a fresh seeded permutation each epoch
//! (`shuffle=True`), validation and test are read in order. A pass is
//! `ceil(n / batch_size)` batches, the last one shorter.
use crate::data::imdb_cache::TokenSplit;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

#[derive(Debug)]
pub struct TokenBatches {
    /// `(n, maxlen)` i64 token ids on the device.
    x: Tensor,
    /// `(n, 1)` f32 labels on the device.
    y: Tensor,
    n: usize,
    batch_size: usize,
    shuffle: bool,
    order: Vec<i64>,
    pos: usize,
}

impl TokenBatches {
    /// Copies the split to `device` once.
    pub fn new(
        split: &TokenSplit,
        maxlen: usize,
        batch_size: usize,
        shuffle: bool,
        device: Device,
    ) -> TokenBatches {
        let n = split.len();
        let x = Tensor::from_slice(&split.x)
            .view([n as i64, maxlen as i64])
            .to_device(device)
            .to_kind(Kind::Int64);
        let y = Tensor::from_slice(&split.y)
            .view([n as i64, 1])
            .to_device(device)
            .to_kind(Kind::Float);
        TokenBatches {
            x,
            y,
            n,
            batch_size: batch_size.max(1),
            shuffle,
            order: (0..n as i64).collect(),
            pos: if shuffle { n } else { 0 },
        }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// `ceil(n / batch_size)`.
    pub fn full_pass_steps(&self) -> usize {
        self.n.div_ceil(self.batch_size)
    }

    /// Back to the start of a pass (a new permutation for the training split).
    pub fn reset(&mut self) {
        self.pos = if self.shuffle { self.n } else { 0 };
    }

    /// The position between batches, for checkpoints.
    pub fn state(&self) -> super::SamplerState {
        super::SamplerState {
            position: self.pos,
            order: self.order.iter().map(|&i| i as usize).collect(),
        }
    }

    /// Back to a position [`state`](Self::state) returned (checked first).
    pub fn restore(&mut self, state: &super::SamplerState) -> anyhow::Result<()> {
        state.check(self.n, self.n)?;
        if state.order.len() != self.n {
            anyhow::bail!(
                "sampler order has {} entries, the split {}",
                state.order.len(),
                self.n
            );
        }
        self.pos = state.position;
        self.order = state.order.iter().map(|&i| i as i64).collect();
        Ok(())
    }

    /// The indices of the next batch (host side).
    pub fn next_indices(&mut self, rng: &mut ChaCha8Rng) -> Vec<i64> {
        if self.pos >= self.n {
            self.pos = 0;
            if self.shuffle {
                self.order = (0..self.n as i64).collect();
                self.order.shuffle(rng);
            }
        }
        let end = (self.pos + self.batch_size).min(self.n);
        let idx = self.order[self.pos..end].to_vec();
        self.pos = end;
        idx
    }

    /// `x (B, maxlen)` i64 and `y (B, 1)` f32 on the device.
    pub fn next_batch(&mut self, rng: &mut ChaCha8Rng) -> (Tensor, Tensor) {
        let idx = Tensor::from_slice(&self.next_indices(rng)).to_device(self.x.device());
        (self.x.index_select(0, &idx), self.y.index_select(0, &idx))
    }
}
