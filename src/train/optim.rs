//! Optimizers with Keras' defaults, written over tensors so that their state
//! can be saved in a checkpoint, and computing exactly what libtorch's C++
//! `torch::optim` computes (the same operations in the same order, so the
//! weights are bit for bit those the earlier tch optimizers produced).
//!
//! RMSprop: v ← ρv + (1 − ρ)g², θ ← θ − lr·g/(√v + ε) (Keras 2 and libtorch
//! agree; only the defaults differ: Keras ρ = 0.9, ε = 1e-7).
//! Adam: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g²,
//! θ ← θ − lr/(1 − β₁ᵗ) · m/(√v/√(1 − β₂ᵗ) + ε).
//! SGD: b ← μb + g (b = g at the first step), θ ← θ − lr·(g + μb) with
//! Nesterov, θ ← θ − lr·b without, θ ← θ − lr·g without momentum.
//!
//! tch exposes libtorch's `addcmul_`/`addcdiv_` without their `value`
//! argument and `add_` without `alpha`. The scaled forms are rebuilt from
//! what the kernels compute: `addcmul_(a, b, value)` is `self + (value·a)·b`,
//! so it equals `addcmul_(value·a, b)` (value·a is rounded the same way in
//! both); `addcdiv_` likewise; `add_(x, alpha)` is one fused multiply-add,
//! which `addcmul_(x, alpha)` with a 0-dimensional `alpha` reproduces. The
//! test `tests/optim.rs` checks every optimizer against libtorch's, bit for bit.
//!
//! Adam and RMSprop update a contiguous f32 CPU parameter through the loops
//! of `update` (the same bits, one pass instead of a dozen libtorch calls);
//! any other parameter, and SGD, through libtorch operations.
//!
//! Gradients are cleared as libtorch's `zero_grad()` clears them (set to
//! none, not filled with zeros: a −0.0 gradient stays −0.0), through a tch
//! optimizer that is used for nothing else.
use super::update;
use crate::config::Optimizer as Spec;
use crate::model::kernel::{floats, floats_mut};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use tch::nn::{self, OptimizerConfig};
use tch::{Kind, Tensor};

/// One parameter's state: its buffers by name and its step count.
#[derive(Debug, Default)]
struct ParamState {
    step: i64,
    buffers: BTreeMap<&'static str, Tensor>,
    /// Where the loops of `update` have libtorch put a buffer's square
    /// root (scratch, never saved).
    root: Option<Tensor>,
}

/// An optimizer over the trainable variables of a var store.
pub struct Optimizer {
    spec: Spec,
    lr: f64,
    /// Trainable variables by name (sorted: the order never matters, each
    /// parameter's update is independent of the others).
    params: Vec<(String, Tensor)>,
    state: Vec<ParamState>,
    /// Only for `zero_grad`: libtorch's set-to-none clearing.
    clearer: nn::Optimizer,
    /// Update contiguous f32 CPU parameters in one loop each (`update`);
    /// off, every update is libtorch operations (tests compare the two).
    pub fused: bool,
}

impl std::fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer")
            .field("spec", &self.spec)
            .field("lr", &self.lr)
            .field("params", &self.params.len())
            .finish()
    }
}

/// The buffer names an optimizer keeps per parameter.
fn buffer_names(spec: &Spec) -> &'static [&'static str] {
    match spec {
        Spec::Rmsprop { .. } => &["square_avg"],
        Spec::Adam { .. } => &["exp_avg", "exp_avg_sq"],
        Spec::Sgd { momentum, .. } if *momentum != 0.0 => &["momentum_buffer"],
        Spec::Sgd { .. } => &[],
    }
}

/// Whether `t` is a contiguous f32 tensor on the CPU, which the loops of
/// `update` can update in place.
fn plain(t: &Tensor) -> bool {
    t.device() == tch::Device::Cpu && t.kind() == Kind::Float && t.is_contiguous()
}

/// `t ← t + alpha·x` as libtorch's `t.add_(x, alpha)` computes it.
fn add_scaled_(t: &mut Tensor, x: &Tensor, alpha: f64) {
    if alpha == 1.0 {
        let _ = t.g_add_(x);
    } else {
        let a = Tensor::from(alpha).to_kind(t.kind()).to_device(t.device());
        let _ = t.addcmul_(x, &a);
    }
}

/// A parameter's gradient: the graph's, plus any held back for it. A held
/// gradient belongs to a weight that had none when its kernel's pass ran,
/// so the graph's surrogate pass would have made it the gradient and added
/// anything arriving later: the same sum (two terms add the same either way
/// round).
fn gradient(p: &Tensor, held: &[(Tensor, Tensor)]) -> Tensor {
    let mut grad = p.grad();
    for (_, g) in held.iter().filter(|(w, _)| w.data_ptr() == p.data_ptr()) {
        grad = if grad.defined() {
            &grad + g
        } else {
            g.shallow_clone()
        };
    }
    grad
}

pub fn build(spec: &Spec, vs: &nn::VarStore) -> Result<Optimizer> {
    let mut params: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let state = params.iter().map(|_| ParamState::default()).collect();
    let clearer = nn::Sgd::default().build(vs, 0.0)?;
    Ok(Optimizer {
        spec: spec.clone(),
        lr: spec.lr(),
        params,
        state,
        clearer,
        fused: true,
    })
}

impl Optimizer {
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Clears every gradient (set to none, as libtorch does).
    pub fn zero_grad(&mut self) {
        self.clearer.zero_grad();
    }

    /// One update of every parameter that has a gradient.
    pub fn step(&mut self) {
        self.step_with(&[]);
    }

    /// One update of every parameter that has a gradient, in the graph or
    /// `held` back from it by the kernels' backward passes
    /// (`Tape::backward_holding`).
    pub fn step_with(&mut self, held: &[(Tensor, Tensor)]) {
        let _guard = tch::no_grad_guard();
        let lr = self.lr;
        for ((_, p), state) in self.params.iter().zip(self.state.iter_mut()) {
            let grad = gradient(p, held);
            if !grad.defined() {
                continue;
            }
            let mut p = p.shallow_clone();
            match self.spec {
                Spec::Rmsprop {
                    rho: alpha,
                    epsilon: eps,
                    ..
                } => {
                    let sq = state
                        .buffers
                        .entry("square_avg")
                        .or_insert_with(|| p.zeros_like());
                    state.step += 1;
                    if self.fused && plain(&p) && plain(&grad) && plain(sq) {
                        let c = update::Rmsprop {
                            rho: alpha as f32,
                            keep: (1.0 - alpha) as f32,
                            epsilon: eps as f32,
                            step: -lr as f32,
                        };
                        update::rmsprop_average(floats(&grad), floats_mut(sq), c);
                        let root = state.root.get_or_insert_with(|| sq.empty_like());
                        let _ = sq.sqrt_out(root);
                        update::rmsprop_apply(floats_mut(&p), floats(&grad), floats(root), c);
                        continue;
                    }
                    // square_avg.mul_(alpha).addcmul_(grad, grad, 1 - alpha)
                    let _ = sq.g_mul_scalar_(alpha);
                    let _ = sq.addcmul_(&(&grad * (1.0 - alpha)), &grad);
                    // avg = square_avg.sqrt().add_(eps); p.addcdiv_(grad, avg, -lr)
                    let mut avg = sq.sqrt();
                    let _ = avg.g_add_scalar_(eps);
                    let _ = p.addcdiv_(&(&grad * -lr), &avg);
                }
                Spec::Adam {
                    beta_1,
                    beta_2,
                    epsilon,
                    ..
                } => {
                    if state.buffers.is_empty() {
                        state.buffers.insert("exp_avg", p.zeros_like());
                        state.buffers.insert("exp_avg_sq", p.zeros_like());
                    }
                    state.step += 1;
                    let bias_correction1 = 1.0 - beta_1.powf(state.step as f64);
                    let bias_correction2 = 1.0 - beta_2.powf(state.step as f64);
                    let (m, v) = (&state.buffers["exp_avg"], &state.buffers["exp_avg_sq"]);
                    if self.fused && plain(&p) && plain(&grad) && plain(m) && plain(v) {
                        let c = update::Adam {
                            beta_1: beta_1 as f32,
                            keep_1: (1.0 - beta_1) as f32,
                            beta_2: beta_2 as f32,
                            keep_2: (1.0 - beta_2) as f32,
                            correction_2: bias_correction2.sqrt() as f32,
                            epsilon: epsilon as f32,
                            step: -(lr / bias_correction1) as f32,
                        };
                        update::adam_moments(floats(&grad), floats_mut(m), floats_mut(v), c);
                        let root = state.root.get_or_insert_with(|| v.empty_like());
                        let _ = v.sqrt_out(root);
                        update::adam_apply(floats_mut(&p), floats(m), floats(root), c);
                        continue;
                    }
                    {
                        let m = state.buffers.get_mut("exp_avg").expect("exp_avg");
                        let _ = m.g_mul_scalar_(beta_1);
                        add_scaled_(m, &grad, 1.0 - beta_1);
                    }
                    let v = state.buffers.get_mut("exp_avg_sq").expect("exp_avg_sq");
                    let _ = v.g_mul_scalar_(beta_2);
                    let _ = v.addcmul_(&(&grad * (1.0 - beta_2)), &grad);
                    let mut denom = v.sqrt() / bias_correction2.sqrt();
                    let _ = denom.g_add_scalar_(epsilon);
                    let step_size = lr / bias_correction1;
                    let m = &state.buffers["exp_avg"];
                    let _ = p.addcdiv_(&(m * -step_size), &denom);
                }
                Spec::Sgd {
                    momentum, nesterov, ..
                } => {
                    let mut d_p = grad.shallow_clone();
                    if momentum != 0.0 {
                        let buf = match state.buffers.get_mut("momentum_buffer") {
                            None => {
                                let b = d_p.copy().detach();
                                state.buffers.insert("momentum_buffer", b.shallow_clone());
                                b
                            }
                            Some(buf) => {
                                let _ = buf.g_mul_scalar_(momentum);
                                // dampening 0: add_(d_p, 1 - 0)
                                add_scaled_(buf, &d_p, 1.0);
                                buf.shallow_clone()
                            }
                        };
                        state.step += 1;
                        d_p = if nesterov {
                            let mut n = d_p.copy();
                            add_scaled_(&mut n, &buf, momentum);
                            n
                        } else {
                            buf
                        };
                    }
                    add_scaled_(&mut p, &d_p, -lr);
                }
            }
        }
    }

    /// The state as named tensors (`<param>/<buffer>`, f32, on the CPU)
    /// and step counts by parameter name.
    pub fn export(&self) -> (Vec<(String, Tensor)>, BTreeMap<String, i64>) {
        let mut tensors = Vec::new();
        let mut steps = BTreeMap::new();
        for ((name, _), state) in self.params.iter().zip(&self.state) {
            for (buf, t) in &state.buffers {
                tensors.push((
                    format!("{name}/{buf}"),
                    t.to_kind(Kind::Float).to_device(tch::Device::Cpu),
                ));
            }
            if state.step > 0 || !state.buffers.is_empty() {
                steps.insert(name.clone(), state.step);
            }
        }
        (tensors, steps)
    }

    /// Restores what [`export`](Self::export) wrote, after checking every
    /// name, buffer and shape; on any mismatch nothing changes.
    pub fn import(
        &mut self,
        tensors: &BTreeMap<String, crate::results::weights::Stored>,
        steps: &BTreeMap<String, i64>,
    ) -> Result<()> {
        let names = buffer_names(&self.spec);
        let known: std::collections::BTreeSet<&str> =
            self.params.iter().map(|(n, _)| n.as_str()).collect();
        for key in tensors.keys() {
            let Some((param, buf)) = key.rsplit_once('/') else {
                bail!("optimizer tensor {key}: not <parameter>/<buffer>");
            };
            if !known.contains(param) || !names.contains(&buf) {
                bail!(
                    "optimizer tensor {key}: no such parameter or buffer in this model's optimizer"
                );
            }
        }
        if let Some(k) = steps.keys().find(|k| !known.contains(k.as_str())) {
            bail!("optimizer step count for {k}: no such parameter");
        }
        let mut new_state = Vec::new();
        for (name, p) in &self.params {
            let step = steps.get(name).copied().unwrap_or(0);
            if !(0..=i64::MAX / 2).contains(&step) {
                bail!("optimizer step count {step} for {name} is out of range");
            }
            let mut buffers = BTreeMap::new();
            for buf in names {
                if let Some(s) = tensors.get(&format!("{name}/{buf}")) {
                    if s.shape != p.size() {
                        bail!(
                            "optimizer tensor {name}/{buf} has shape {:?}, the parameter {:?}",
                            s.shape,
                            p.size()
                        );
                    }
                    let t = Tensor::from_slice(&s.values)
                        .view(s.shape.as_slice())
                        .to_kind(p.kind())
                        .to_device(p.device());
                    buffers.insert(*buf, t);
                }
            }
            let complete = buffers.len() == names.len();
            if !buffers.is_empty() && !complete {
                bail!("optimizer state of {name} lacks some of its buffers {names:?}");
            }
            new_state.push(ParamState {
                step,
                buffers,
                root: None,
            });
        }
        self.state = new_state;
        Ok(())
    }
}
