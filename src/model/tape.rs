//! The tape: kernel runs of one training step that happened outside
//! libtorch's autograd, waiting for their hand-written backward passes.
//!
//! Each kernel hands the graph a fresh leaf in place of its output. After
//! `loss.backward()` has filled those leaves' gradients, [`Tape::backward`]
//! replays the entries last first, each feeding its own inputs' gradients
//! back into the graph.
use super::{embed_conv, gru_kernel};
use std::cell::RefCell;

/// One recorded kernel run.
pub enum Entry {
    Gru(gru_kernel::Pending),
    WindowSum(embed_conv::Pending),
}

/// Kernel runs of one training step, in order.
#[derive(Default)]
pub struct Tape {
    entries: RefCell<Vec<Entry>>,
}

impl Tape {
    pub fn clear(&self) {
        self.entries.borrow_mut().clear();
    }

    pub fn record(&self, entry: Entry) {
        self.entries.borrow_mut().push(entry);
    }

    /// After `loss.backward()`: every recorded backward pass, last first.
    pub fn backward(&self) {
        let entries: Vec<Entry> = self.entries.borrow_mut().drain(..).collect();
        for entry in entries.into_iter().rev() {
            match entry {
                Entry::Gru(p) => p.backward(),
                Entry::WindowSum(p) => p.backward(),
            }
        }
    }
}
