//! A Dense layer (linear or ReLU) run outside autograd because a recurrent
//! kernel reads its output: the kernel then hands dL/dy straight back
//! (`tape::Handoff`) instead of a surrogate pass through the graph's ReLU
//! and addmm nodes, and the layer's weight gradients are held for the
//! optimizer like the kernels' own (the segment embedding of a SegRNN-like
//! forecaster: Dense + ReLU before its GRU).
//!
//! The values are libtorch's own: forward is the graph's `linear` (one
//! addmm over (rows, in)) and ReLU under `no_grad`; backward takes the
//! products autograd's ReluBackward and AddmmBackward take (dz =
//! threshold_backward(g, y, 0), dW = dzᵀ·x, db = Σ_rows dz, dx = dz·W),
//! bit for bit the gradients of the graph (tested).
use super::tape::{hand_back, received, Entry, Handoff, Held, Tape};
use tch::{Kind, Tensor};

/// Whether the layer can run here: an input of (rows, in) or a contiguous
/// (batch, steps, in), whose `linear` is the single addmm above.
pub fn supports(x: &Tensor) -> bool {
    x.dim() == 2 || (x.dim() == 3 && x.is_contiguous())
}

/// A recorded Dense layer awaiting its backward pass.
pub struct Pending {
    w: Tensor,
    b: Tensor,
    /// The input as the graph saw it; may require grad.
    x: Tensor,
    /// The output values (after the ReLU).
    y: Tensor,
    relu: bool,
    /// The output the rest of the graph consumed.
    leaf: Tensor,
}

/// act(x·wᵀ + b), w (units, in), as a leaf whose gradient reaches w, b and
/// x when the tape runs backward.
pub fn forward(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool, tape: &Tape) -> Tensor {
    let y = tch::no_grad(|| {
        let z = x.linear(w, Some(b));
        if relu {
            z.relu()
        } else {
            z
        }
    });
    let leaf = y.detach().set_requires_grad(true);
    tape.record(Entry::Dense(Pending {
        w: w.shallow_clone(),
        b: b.shallow_clone(),
        x: x.shallow_clone(),
        y,
        relu,
        leaf: leaf.shallow_clone(),
    }));
    leaf
}

impl Pending {
    /// dW, db and dL/dx from the leaf's gradient (handed over by the run
    /// after it, or the graph's); dL/dx goes on to the run before, or
    /// through one surrogate pass, with the weights' gradients unless
    /// `hold` takes those.
    pub fn backward(self, handed: &mut Vec<Handoff>, hold: Option<&mut Held>) {
        let g = received(&self.leaf, handed);
        if !g.defined() {
            return;
        }
        let with_input = self.x.requires_grad();
        let (dw, db, dx) = tch::no_grad(|| {
            let dz = if self.relu {
                self.y.threshold_backward(&g, 0.0)
            } else {
                g
            };
            let (units, inputs) = (self.w.size()[0], self.w.size()[1]);
            let (dz2, x2) = (dz.reshape([-1, units]), self.x.reshape([-1, inputs]));
            let dw = dz2.tr().mm(&x2);
            let db = dz2.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
            let dx = with_input.then(|| dz2.mm(&self.w).view(self.x.size().as_slice()));
            (dw, db, dx)
        });
        hand_back(&[(&self.w, &dw), (&self.b, &db)], &self.x, dx, handed, hold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The output and the gradients of w, b and x, through the tape or
    /// through the graph's linear and ReLU; the loss is Σ y ⊙ up.
    fn run(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool, taped: bool) -> Vec<Tensor> {
        let [x, w, b] = [x, w, b].map(|t| t.copy().set_requires_grad(true));
        let (x, w, b) = (&x, &w, &b);
        let tape = Tape::default();
        let y = if taped {
            forward(x, w, b, relu, &tape)
        } else {
            let z = x.linear(w, Some(b));
            if relu {
                z.relu()
            } else {
                z
            }
        };
        let up = Tensor::randn(y.size(), (Kind::Float, Device::Cpu));
        (&y * up).sum(Kind::Float).backward();
        tape.backward();
        // Compared as bits: a −0.0 where the graph has +0.0 would show.
        let bits = |t: &Tensor| t.to_kind(Kind::Float).view_dtype(Kind::Int);
        [y.detach(), w.grad(), b.grad(), x.grad()]
            .iter()
            .map(bits)
            .collect()
    }

    /// Bit for bit the graph's output and gradients, 2-D and 3-D inputs,
    /// with and without ReLU (whose zeros stop part of the gradient).
    #[test]
    fn equals_the_graph_bit_for_bit() {
        let _rng = crate::model::rng_lock();
        for (shape, relu) in [
            (vec![13i64, 7], true),
            (vec![5, 4, 24], true),
            (vec![5, 4, 24], false),
        ] {
            let inputs = *shape.last().unwrap();
            let opts = (Kind::Float, Device::Cpu);
            tch::manual_seed(3);
            let x = Tensor::randn(shape.as_slice(), opts);
            let w = Tensor::randn([9, inputs], opts);
            let b = Tensor::randn([9], opts);
            tch::manual_seed(4);
            let taped = run(&x, &w, &b, relu, true);
            tch::manual_seed(4);
            let graph = run(&x, &w, &b, relu, false);
            let zeros = taped[0].eq(0).sum(Kind::Int64).int64_value(&[]);
            assert_eq!(zeros > 0, relu, "ReLU outputs of 0 where there is one");
            for (a, b) in taped.iter().zip(&graph) {
                assert!(a.ne(0).any().int64_value(&[]) == 1, "something to compare");
                assert!(a.equal(b), "{shape:?} relu {relu}: differs from the graph");
            }
        }
    }
}
