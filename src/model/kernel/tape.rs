//! The tape: kernel runs of one training step that happened outside
//! libtorch's autograd, waiting for their hand-written backward passes.
//!
//! Each kernel hands the graph a fresh leaf in place of its output. After
//! `loss.backward()` has filled those leaves' gradients, [`Tape::backward`]
//! replays the entries last first, each feeding its own inputs' gradients
//! back into the graph. Those passes keep the graph's saved tensors: two
//! entries may read the same upstream graph (a Bidirectional's directions
//! share their input), which the first pass would otherwise free. A run
//! whose input is an earlier run's output leaf (convolutions in a row, a
//! recurrent layer after a taped Dense) hands dL/dx straight to it instead
//! ([`Handoff`]): libtorch passes over the gradient fewer, the same values.
//!
//! In training, the weights' gradients need not reach the graph at all:
//! [`Tape::backward_holding`] returns those of weights without one yet
//! (kernel weights, which nothing else in the graph uses) for the optimizer
//! to read (`train::optim::Optimizer::step_with`), the values a surrogate
//! pass would have put there (g · 1 = g); only inputs' gradients still take
//! a surrogate pass. A step of the book's convnet runs no surrogate at all.
use super::{attention, conv, dense, embed_conv, rnn, window_mean};
use std::cell::RefCell;
use std::ffi::CStr;
use std::sync::Mutex;
use tch::Tensor;

/// One recorded kernel run.
pub enum Entry {
    Rnn(rnn::Pending),
    /// A Bidirectional's two directions, recorded forward first: their
    /// BPTT runs side by side where there are two threads.
    RnnPair(rnn::Pending, rnn::Pending),
    Conv(conv::Pending),
    /// A Dense layer feeding a recurrent run (see `kernel::dense`).
    Dense(dense::Pending),
    WindowSum(embed_conv::Pending),
    WindowMean(window_mean::Pending),
    Attention(attention::Pending),
}

/// Weight gradients held back from the graph: (weight, gradient) pairs.
pub type Held = Vec<(Tensor, Tensor)>;

/// Kernel runs of one training step, in order.
#[derive(Default)]
pub struct Tape {
    entries: RefCell<Vec<Entry>>,
}

impl Tape {
    pub fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }

    pub fn clear(&self) {
        self.entries.borrow_mut().clear();
    }

    pub fn record(&self, entry: Entry) {
        self.entries.borrow_mut().push(entry);
    }

    /// How many Bidirectional pairs are waiting (tests check the path).
    #[cfg(test)]
    pub fn pairs(&self) -> usize {
        self.entries
            .borrow()
            .iter()
            .filter(|e| matches!(e, Entry::RnnPair(..)))
            .count()
    }

    /// After `loss.backward()`: every recorded backward pass, last first;
    /// every gradient ends in the graph's `.grad`.
    pub fn backward(&self) {
        self.replay(None);
    }

    /// As `backward`, but the gradients of weights that have none yet are
    /// held back and returned, in the order the passes produced them.
    pub fn backward_holding(&self) -> Held {
        let mut held = Held::new();
        self.replay(Some(&mut held));
        held
    }

    fn replay(&self, mut hold: Option<&mut Held>) {
        let entries: Vec<Entry> = self.entries.borrow_mut().drain(..).collect();
        // Input gradients runs hold for the earlier runs whose output leaves
        // they read. A leaf has nothing upstream, so a gradient waiting for
        // one changes nothing else the passes read in between; runs that
        // read their leaf's `.grad` themselves get what waits first.
        let mut handed: Vec<Handoff> = Vec::new();
        for entry in entries.into_iter().rev() {
            if matches!(
                entry,
                Entry::WindowSum(_) | Entry::WindowMean(_) | Entry::Attention(_)
            ) {
                handed.drain(..).for_each(Handoff::flush);
            }
            match entry {
                Entry::Rnn(p) => p.backward(&mut handed, hold.as_deref_mut()),
                Entry::RnnPair(first, second) => {
                    pair_backward(first, second, &mut handed, hold.as_deref_mut())
                }
                Entry::Conv(p) => p.backward(&mut handed, hold.as_deref_mut()),
                Entry::Dense(p) => p.backward(&mut handed, hold.as_deref_mut()),
                Entry::WindowSum(p) => p.backward(),
                Entry::WindowMean(p) => p.backward(),
                Entry::Attention(p) => p.backward(hold.as_deref_mut()),
            }
        }
        handed.into_iter().for_each(Handoff::flush);
    }
}

/// The backward passes of a pair, the second (recorded last) first as the
/// tape's order has it; their BPTT side by side, one thread each.
fn pair_backward(
    first: rnn::Pending,
    second: rnn::Pending,
    handed: &mut Vec<Handoff>,
    mut hold: Option<&mut Held>,
) {
    if tch::get_num_threads() < 2 {
        second.backward(handed, hold.as_deref_mut());
        first.backward(handed, hold);
        return;
    }
    type Slot = Mutex<Option<(rnn::Pending, Option<rnn::Grads>)>>;
    let slots: [Slot; 2] = Default::default();
    let (g_first, g_second) = (
        received(&first.leaf, handed),
        received(&second.leaf, handed),
    );
    let items = vec![(0usize, first, g_first), (1, second, g_second)];
    super::team::run(items, &|(i, p, g): (usize, rnn::Pending, Tensor)| {
        let grads = p.grads(&g);
        *slots[i].lock().expect("one writer") = Some((p, grads));
    });
    let [first, second] = slots.map(|s| s.into_inner().expect("one writer").expect("both ran"));
    for (p, grads) in [second, first] {
        if let Some(g) = grads {
            p.apply(g, handed, hold.as_deref_mut());
        }
    }
}

/// `t.backward()` keeping the graph's saved tensors for later passes
/// (tch's own `backward` always frees them).
pub fn backward_keeping_graph(t: &Tensor) {
    // SAFETY: `t` is a live tensor handle; at_backward reports failure
    // through torch-sys' last-error slot, which is read (and freed) at once.
    let err = unsafe {
        torch_sys::at_backward(t.as_ptr() as *mut torch_sys::C_tensor, 1, 0);
        torch_sys::get_and_reset_last_err()
    };
    if !err.is_null() {
        // SAFETY: a non-null error is a C string allocated with malloc.
        let message = unsafe { CStr::from_ptr(err) }
            .to_string_lossy()
            .into_owned();
        unsafe { libc::free(err as *mut libc::c_void) };
        panic!("backward pass failed: {message}");
    }
}

/// dL/dx of a run whose input is another run's output leaf, held for that
/// run instead of passing through the graph.
pub struct Handoff {
    /// The input the gradient belongs to.
    pub to: Tensor,
    pub grad: Tensor,
}

impl Handoff {
    /// Into the graph after all: `to.grad += grad`, as the surrogate pass
    /// the consumer would have run.
    pub fn flush(self) {
        backward_keeping_graph(&inner(&self.to, &self.grad));
    }
}

/// The gradient of a run's output `leaf` once the later runs are done:
/// the one handed to it when the graph gave it nothing else (what the
/// graph would hold: g · 1), else the graph's, with anything handed added
/// through the graph first (in the order the surrogate passes would have
/// added it). Undefined where nothing reached the leaf.
pub fn received(leaf: &Tensor, handed: &mut Vec<Handoff>) -> Tensor {
    let owns = |t: &Tensor| t.data_ptr() == leaf.data_ptr() && t.size() == leaf.size();
    let (mine, others): (Vec<Handoff>, Vec<Handoff>) = std::mem::take(handed)
        .into_iter()
        .partition(|h| owns(&h.to));
    *handed = others;
    match <[Handoff; 1]>::try_from(mine) {
        Ok([h]) if !leaf.grad().defined() => h.grad,
        Ok([h]) => {
            h.flush();
            leaf.grad()
        }
        Err(mine) => {
            mine.into_iter().for_each(Handoff::flush);
            leaf.grad()
        }
    }
}

/// dL/dx for a run's input `x`: held in `handed` when x is a leaf that
/// wants a gradient (an earlier run's output, or an input of the caller's),
/// else returned for the surrogate pass. Where the leaf is nobody's output,
/// the gradient reaches it when the tape flushes what is left: the same
/// `x.grad` as the surrogate would give.
fn hand_on(x: &Tensor, dx: Tensor, handed: &mut Vec<Handoff>) -> Option<Tensor> {
    if x.is_leaf() && x.requires_grad() {
        handed.push(Handoff {
            to: x.shallow_clone(),
            grad: dx,
        });
        None
    } else {
        Some(dx)
    }
}

/// A run's gradients back where they belong: each weight's (`accumulate`,
/// then `hold` or the surrogate pass), and dL/dx for its input `x`,
/// handed on to the run that produced x or through that same pass.
pub fn hand_back(
    weights: &[(&Tensor, &Tensor)],
    x: &Tensor,
    dx: Option<Tensor>,
    handed: &mut Vec<Handoff>,
    hold: Option<&mut Held>,
) {
    let mut first = Vec::new();
    for (w, g) in weights {
        accumulate(w, g, &mut first);
    }
    let dx = dx.and_then(|dx| hand_on(x, dx, handed));
    feed_back(first, dx.as_ref().map(|dx| (x, dx)), hold);
}

/// Adds `g` to a weight's gradient; a weight without one yet is listed in
/// `first`, for `feed_back` to create it as autograd does.
pub fn accumulate<'a>(weight: &'a Tensor, g: &Tensor, first: &mut Vec<(&'a Tensor, Tensor)>) {
    if !weight.requires_grad() {
        return;
    }
    let _guard = tch::no_grad_guard();
    let mut grad = weight.grad();
    if grad.defined() {
        grad += g;
    } else {
        first.push((weight, g.contiguous()));
    }
}

/// Hands gradients back to the graph through one surrogate `backward`
/// pass: those of the weights in `first` (see `accumulate`), unless `hold`
/// takes them, and, for `input` = (x, dL/dx), x's, which flow on upstream.
/// Nothing runs where nothing is left to hand back.
pub fn feed_back(
    first: Vec<(&Tensor, Tensor)>,
    input: Option<(&Tensor, &Tensor)>,
    hold: Option<&mut Held>,
) {
    let first = match hold {
        Some(held) => {
            held.extend(first.into_iter().map(|(w, g)| (w.shallow_clone(), g)));
            Vec::new()
        }
        None => first,
    };
    let mut terms: Vec<Tensor> = first.iter().map(|(w, g)| inner(w, g)).collect();
    if let Some((x, dx)) = input {
        terms.push(inner(x, dx));
    }
    if let Some(sum) = terms.into_iter().reduce(|a, b| a + b) {
        backward_keeping_graph(&sum);
    }
}

/// Σ t ⊙ g as one dot product, whose backward pass hands `g` to `t` (g · 1,
/// the same values a product and a sum hand back) without the product's
/// forward buffer.
pub fn inner(t: &Tensor, g: &Tensor) -> Tensor {
    t.reshape([-1]).dot(&g.reshape([-1]))
}
