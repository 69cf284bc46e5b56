//! A GRU time loop outside autograd, with a hand-written backward pass
//! through time (CPU). libtorch's autograd never sees the 240 steps: the
//! layer's output enters the graph as a fresh leaf, and once the loss has
//! been back-propagated to it, [`Tape::backward`] runs BPTT and feeds the
//! gradients back through one surrogate `backward` call.
//!
//! Per step only the recurrent product runs in libtorch (`addmm`); the gate
//! arithmetic runs here over contiguous buffers, with a vectorisable `exp`.
//! Same function as the fused kernel and the unrolled autograd path (tests in
//! `recurrent.rs` check forward and gradients, |Δ| < 1e-5):
//!
//! r = σ(gᵢᵣ + gₕᵣ), z = σ(gᵢ𝓏 + gₕ𝓏), n = act(gᵢₙ + r ⊙ gₕₙ), h' = n + z ⊙ (h − n),
//! with gᵢ = x Wᵢₕᵀ + bᵢₕ (all steps in one product) and gₕ = (h ⊙ m) Wₕₕᵀ + bₕₕ.
use crate::config::Activation;
use std::cell::RefCell;
use tch::{Kind, Tensor};

/// `exp` without branches, so loops over slices vectorise (Cephes' expf
/// polynomial after Cody–Waite range reduction; ≈ 1 ulp).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = clampf(x, -87.3, 88.7);
    // round(x / ln 2) with the 1.5·2²³ trick (no floor call, SSE2 friendly)
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// `clamp` as two selects (no NaN bookkeeping), which vectorises.
#[inline(always)]
fn clampf(x: f32, lo: f32, hi: f32) -> f32 {
    let x = if x < lo { lo } else { x };
    if x > hi {
        hi
    } else {
        x
    }
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
fn apply(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Sigmoid => sigmoid(x),
        Activation::HardSigmoid => (0.2 * x + 0.5).clamp(0.0, 1.0),
        Activation::Tanh => 2.0 * sigmoid(2.0 * x) - 1.0,
        Activation::Relu => x.max(0.0),
        Activation::Linear | Activation::Softmax => x,
    }
}

/// Whether this kernel computes a GRU with these activations.
pub fn supports(activation: Activation, recurrent_activation: Activation) -> bool {
    matches!(
        activation,
        Activation::Tanh | Activation::Relu | Activation::Linear
    ) && matches!(
        recurrent_activation,
        Activation::Sigmoid | Activation::HardSigmoid
    )
}

fn slice(t: &Tensor) -> &[f32] {
    debug_assert!(t.is_contiguous() && t.kind() == Kind::Float && t.device() == tch::Device::Cpu);
    // SAFETY: a contiguous CPU f32 tensor owns numel() floats at data_ptr; the
    // borrow of `t` keeps the storage alive.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel()) }
}

#[allow(clippy::mut_from_ref)]
fn slice_mut(t: &Tensor) -> &mut [f32] {
    debug_assert!(t.is_contiguous() && t.kind() == Kind::Float && t.device() == tch::Device::Cpu);
    // SAFETY: as `slice`; callers never hold two views of one buffer at once.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel()) }
}

/// The weights of one GRU direction (libtorch layout, gates r, z, n).
pub struct Weights<'a> {
    pub w_ih: &'a Tensor,
    pub w_hh: &'a Tensor,
    pub b_ih: &'a Tensor,
    pub b_hh: &'a Tensor,
    pub activation: Activation,
    pub recurrent_activation: Activation,
}

/// What the backward pass needs from the forward pass.
pub struct Saved {
    /// Inputs, time-major (T, B, F).
    xt: Tensor,
    /// States h₀ … h_T, (T+1, B, U).
    h: Tensor,
    /// State entering the recurrent product, h ⊙ mask, (T, B, U).
    hm: Tensor,
    /// Gates r, z, n and the recurrent candidate term gₕₙ, (T, B, U) each.
    r: Tensor,
    z: Tensor,
    n: Tensor,
    ghn: Tensor,
    mask: Option<Tensor>,
}

/// One step's outputs, (B, U) each.
struct StepOut<'a> {
    h: &'a mut [f32],
    r: &'a mut [f32],
    z: &'a mut [f32],
    n: &'a mut [f32],
    ghn: &'a mut [f32],
}

/// The gate arithmetic of one step for every row, monomorphised per
/// activation pair so the inner loop vectorises.
#[inline(always)]
fn gates_body(
    act: impl Fn(f32) -> f32,
    ract: impl Fn(f32) -> f32,
    gi: &[f32],
    gh: &[f32],
    prev: &[f32],
    out: StepOut,
    u: usize,
) {
    let rows = prev.len() / u;
    for row in 0..rows {
        let (gi, gh) = (
            &gi[row * 3 * u..(row + 1) * 3 * u],
            &gh[row * 3 * u..(row + 1) * 3 * u],
        );
        let cells = row * u..(row + 1) * u;
        let (hp, h) = (&prev[cells.clone()], &mut out.h[cells.clone()]);
        let (r, z) = (&mut out.r[cells.clone()], &mut out.z[cells.clone()]);
        let (n, g) = (&mut out.n[cells.clone()], &mut out.ghn[cells]);
        // Separate simple passes: each one vectorises on its own.
        for j in 0..u {
            r[j] = ract(gi[j] + gh[j]);
        }
        for j in 0..u {
            z[j] = ract(gi[u + j] + gh[u + j]);
        }
        g.copy_from_slice(&gh[2 * u..3 * u]);
        for j in 0..u {
            n[j] = act(gi[2 * u + j] + r[j] * g[j]);
        }
        for j in 0..u {
            h[j] = n[j] + z[j] * (hp[j] - n[j]);
        }
    }
}

#[inline(always)]
fn gates_dispatch(
    act: Activation,
    ract: Activation,
    gi: &[f32],
    gh: &[f32],
    prev: &[f32],
    out: StepOut,
    u: usize,
) {
    let hard = |x: f32| clampf(0.2 * x + 0.5, 0.0, 1.0);
    match (act, ract) {
        (Activation::Tanh, Activation::Sigmoid) => gates_body(
            |x| apply(Activation::Tanh, x),
            sigmoid,
            gi,
            gh,
            prev,
            out,
            u,
        ),
        (Activation::Tanh, _) => {
            gates_body(|x| apply(Activation::Tanh, x), hard, gi, gh, prev, out, u)
        }
        (Activation::Relu, Activation::Sigmoid) => gates_body(
            |x| if x > 0.0 { x } else { 0.0 },
            sigmoid,
            gi,
            gh,
            prev,
            out,
            u,
        ),
        (Activation::Relu, _) => gates_body(
            |x| if x > 0.0 { x } else { 0.0 },
            hard,
            gi,
            gh,
            prev,
            out,
            u,
        ),
        (_, Activation::Sigmoid) => gates_body(|x| x, sigmoid, gi, gh, prev, out, u),
        _ => gates_body(|x| x, hard, gi, gh, prev, out, u),
    }
}

/// AVX2 build of the same code (no FMA contraction, so results are
/// identical to the portable build).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gates_avx2(
    act: Activation,
    ract: Activation,
    gi: &[f32],
    gh: &[f32],
    prev: &[f32],
    out: StepOut,
    u: usize,
) {
    gates_dispatch(act, ract, gi, gh, prev, out, u)
}

fn step_gates(
    act: Activation,
    ract: Activation,
    gi: &[f32],
    gh: &[f32],
    prev: &[f32],
    out: StepOut,
    u: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { gates_avx2(act, ract, gi, gh, prev, out, u) };
    }
    gates_dispatch(act, ract, gi, gh, prev, out, u)
}

/// Runs the GRU over x (B, T, F); returns all states (T+1, B, U) and what backward needs.
pub fn forward(w: &Weights, x: &Tensor, units: i64, mask: Option<&Tensor>) -> (Tensor, Saved) {
    let _guard = tch::no_grad_guard();
    let (b, t, f) = x.size3().expect("(batch, time, features)");
    let u = units;
    let xt = x.detach().transpose(0, 1).contiguous();
    let gi = w
        .b_ih
        .detach()
        .addmm(&xt.view([t * b, f]), &w.w_ih.detach().tr())
        .contiguous();
    let whh_t = w.w_hh.detach().tr().contiguous();
    let b_hh = w.b_hh.detach();
    let opts = (Kind::Float, x.device());
    let h = Tensor::zeros([t + 1, b, u], opts);
    let hm = if mask.is_some() {
        Tensor::empty([t, b, u], opts)
    } else {
        h.narrow(0, 0, t)
    };
    let (r, z, n, ghn) = (
        Tensor::empty([t, b, u], opts),
        Tensor::empty([t, b, u], opts),
        Tensor::empty([t, b, u], opts),
        Tensor::empty([t, b, u], opts),
    );
    let mask = mask.map(|m| m.detach().contiguous());
    let (hs, rs, zs, ns, gs) = (
        slice_mut(&h),
        slice_mut(&r),
        slice_mut(&z),
        slice_mut(&n),
        slice_mut(&ghn),
    );
    let gis = slice(&gi);
    let (bu, u3, uu) = ((b * u) as usize, (3 * u) as usize, u as usize);
    for step in 0..t as usize {
        let hm_t = match &mask {
            Some(m) => {
                let out = hm.get(step as i64);
                let (src, dst, ms) = (&hs[step * bu..(step + 1) * bu], slice_mut(&out), slice(m));
                for i in 0..bu {
                    dst[i] = src[i] * ms[i];
                }
                out
            }
            None => h.get(step as i64),
        };
        let gh = b_hh.addmm(&hm_t, &whh_t);
        let ghs = slice(&gh);
        let gi_t = &gis[step * b as usize * u3..(step + 1) * b as usize * u3];
        let (prev, next) = hs[step * bu..(step + 2) * bu].split_at_mut(bu);
        let o = step * bu..(step + 1) * bu;
        let out = StepOut {
            h: next,
            r: &mut rs[o.clone()],
            z: &mut zs[o.clone()],
            n: &mut ns[o.clone()],
            ghn: &mut gs[o],
        };
        step_gates(
            w.activation,
            w.recurrent_activation,
            gi_t,
            ghs,
            prev,
            out,
            uu,
        );
    }
    let saved = Saved {
        xt,
        h: h.shallow_clone(),
        hm,
        r,
        z,
        n,
        ghn,
        mask,
    };
    (h, saved)
}

/// One step's saved activations, (B, U) each.
struct StepSaved<'a> {
    r: &'a [f32],
    z: &'a [f32],
    n: &'a [f32],
    ghn: &'a [f32],
    prev: &'a [f32],
}

/// The gate derivatives of one step: dgi = [da_r, da_z, da_n],
/// dgh = [da_r, da_z, da_n ⊙ r], and the direct part of dh_{t−1} = dh ⊙ z.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_body(
    act: impl Fn(f32) -> f32,
    ract: impl Fn(f32) -> f32,
    s: &StepSaved,
    dh: &[f32],
    dgi: &mut [f32],
    dgh: &mut [f32],
    direct: &mut [f32],
    u: usize,
) {
    let rows = dh.len() / u;
    for row in 0..rows {
        let c = row * u..(row + 1) * u;
        let (r, z, n, g, hp, d) = (
            &s.r[c.clone()],
            &s.z[c.clone()],
            &s.n[c.clone()],
            &s.ghn[c.clone()],
            &s.prev[c.clone()],
            &dh[c.clone()],
        );
        let direct = &mut direct[c];
        let (gi, gh) = (
            &mut dgi[row * 3 * u..(row + 1) * 3 * u],
            &mut dgh[row * 3 * u..(row + 1) * 3 * u],
        );
        for j in 0..u {
            direct[j] = d[j] * z[j];
        }
        for j in 0..u {
            // da_n
            gi[2 * u + j] = d[j] * (1.0 - z[j]) * act(n[j]);
        }
        for j in 0..u {
            // da_z
            gi[u + j] = d[j] * (hp[j] - n[j]) * ract(z[j]);
        }
        for j in 0..u {
            // da_r
            gi[j] = gi[2 * u + j] * g[j] * ract(r[j]);
        }
        gh[..2 * u].copy_from_slice(&gi[..2 * u]);
        for j in 0..u {
            gh[2 * u + j] = gi[2 * u + j] * r[j];
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_dispatch(
    act: Activation,
    ract: Activation,
    s: &StepSaved,
    dh: &[f32],
    dgi: &mut [f32],
    dgh: &mut [f32],
    direct: &mut [f32],
    u: usize,
) {
    let hard = |y: f32| if y > 0.0 && y < 1.0 { 0.2 } else { 0.0 };
    let sig = |y: f32| y * (1.0 - y);
    let tanh = |y: f32| 1.0 - y * y;
    let relu = |y: f32| if y > 0.0 { 1.0 } else { 0.0 };
    let linear = |_: f32| 1.0;
    match (act, ract) {
        (Activation::Tanh, Activation::Sigmoid) => {
            backward_body(tanh, sig, s, dh, dgi, dgh, direct, u)
        }
        (Activation::Tanh, _) => backward_body(tanh, hard, s, dh, dgi, dgh, direct, u),
        (Activation::Relu, Activation::Sigmoid) => {
            backward_body(relu, sig, s, dh, dgi, dgh, direct, u)
        }
        (Activation::Relu, _) => backward_body(relu, hard, s, dh, dgi, dgh, direct, u),
        (_, Activation::Sigmoid) => backward_body(linear, sig, s, dh, dgi, dgh, direct, u),
        _ => backward_body(linear, hard, s, dh, dgi, dgh, direct, u),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_avx2(
    act: Activation,
    ract: Activation,
    s: &StepSaved,
    dh: &[f32],
    dgi: &mut [f32],
    dgh: &mut [f32],
    direct: &mut [f32],
    u: usize,
) {
    backward_dispatch(act, ract, s, dh, dgi, dgh, direct, u)
}

#[allow(clippy::too_many_arguments)]
fn step_backward(
    act: Activation,
    ract: Activation,
    s: &StepSaved,
    dh: &[f32],
    dgi: &mut [f32],
    dgh: &mut [f32],
    direct: &mut [f32],
    u: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { backward_avx2(act, ract, s, dh, dgi, dgh, direct, u) };
    }
    backward_dispatch(act, ract, s, dh, dgi, dgh, direct, u)
}

/// Gradients of one GRU direction.
pub struct Grads {
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    pub b_ih: Tensor,
    pub b_hh: Tensor,
    /// dL/dx, (B, T, F).
    pub x: Tensor,
}

/// BPTT: `dstates` is dL/dh for h₁ … h_T, (T, B, U) (zeros where nothing flows in).
pub fn backward(w: &Weights, s: &Saved, dstates: &Tensor) -> Grads {
    let _guard = tch::no_grad_guard();
    let (t, b, u) = s.r.size3().expect("(T, B, U)");
    let f = s.xt.size()[2];
    let opts = (Kind::Float, s.r.device());
    let dgi = Tensor::empty([t, b, 3 * u], opts);
    let dgh = Tensor::empty([t, b, 3 * u], opts);
    let dh = Tensor::zeros([b, u], opts);
    let w_hh = w.w_hh.detach().contiguous();
    let dout = dstates.contiguous();
    let (dis, dhs_all, dh_s) = (slice_mut(&dgi), slice_mut(&dgh), slice_mut(&dh));
    let (hs, rs, zs, ns, gs, dos) = (
        slice(&s.h),
        slice(&s.r),
        slice(&s.z),
        slice(&s.n),
        slice(&s.ghn),
        slice(&dout),
    );
    let (bu, uu, u3) = ((b * u) as usize, u as usize, (3 * u) as usize);
    let mask = s.mask.as_ref().map(slice);
    let mut direct = vec![0f32; bu];
    for step in (0..t as usize).rev() {
        let o = step * bu;
        for i in 0..bu {
            dh_s[i] += dos[o + i];
        }
        let drow = &mut dis[step * b as usize * u3..(step + 1) * b as usize * u3];
        let hrow = &mut dhs_all[step * b as usize * u3..(step + 1) * b as usize * u3];
        let saved = StepSaved {
            r: &rs[o..o + bu],
            z: &zs[o..o + bu],
            n: &ns[o..o + bu],
            ghn: &gs[o..o + bu],
            prev: &hs[o..o + bu],
        };
        step_backward(
            w.activation,
            w.recurrent_activation,
            &saved,
            dh_s,
            drow,
            hrow,
            &mut direct,
            uu,
        );
        let dhm = dgh.get(step as i64).mm(&w_hh);
        let dhm_s = slice(&dhm);
        match mask {
            Some(m) => {
                for i in 0..bu {
                    dh_s[i] = direct[i] + dhm_s[i] * m[i];
                }
            }
            None => {
                for i in 0..bu {
                    dh_s[i] = direct[i] + dhm_s[i];
                }
            }
        }
    }
    let dgi2 = dgi.view([t * b, 3 * u]);
    let dgh2 = dgh.view([t * b, 3 * u]);
    Grads {
        w_ih: dgi2.tr().mm(&s.xt.view([t * b, f])),
        w_hh: dgh2.tr().mm(&s.hm.contiguous().view([t * b, u])),
        b_ih: dgi2.sum_dim_intlist(0, false, Kind::Float),
        b_hh: dgh2.sum_dim_intlist(0, false, Kind::Float),
        x: dgi2.mm(&w.w_ih.detach()).view([t, b, f]).transpose(0, 1),
    }
}

/// One recorded kernel forward waiting for its backward pass.
pub struct Pending {
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    pub b_ih: Tensor,
    pub b_hh: Tensor,
    pub activation: Activation,
    pub recurrent_activation: Activation,
    /// The input as the graph saw it (may require grad).
    pub x: Tensor,
    pub saved: Saved,
    /// The leaf the rest of the graph consumed, and how it maps to states.
    pub leaf: Tensor,
    pub return_sequences: bool,
}

/// Kernel forwards of one training step, in order.
#[derive(Default)]
pub struct Tape {
    pending: RefCell<Vec<Pending>>,
}

impl Tape {
    pub fn clear(&self) {
        self.pending.borrow_mut().clear();
    }

    pub fn record(&self, p: Pending) {
        self.pending.borrow_mut().push(p);
    }

    /// After `loss.backward()`: BPTT for every recorded layer, last first,
    /// each feeding its input gradient back into the graph.
    pub fn backward(&self) {
        let pending: Vec<Pending> = self.pending.borrow_mut().drain(..).collect();
        for p in pending.into_iter().rev() {
            let g = p.leaf.grad();
            if !g.defined() {
                continue;
            }
            let (t, b, u) = p.saved.r.size3().expect("(T, B, U)");
            let dstates = {
                let _guard = tch::no_grad_guard();
                if p.return_sequences {
                    g.transpose(0, 1).contiguous()
                } else {
                    let d = Tensor::zeros([t, b, u], (Kind::Float, g.device()));
                    d.get(t - 1).copy_(&g);
                    d
                }
            };
            let w = Weights {
                w_ih: &p.w_ih,
                w_hh: &p.w_hh,
                b_ih: &p.b_ih,
                b_hh: &p.b_hh,
                activation: p.activation,
                recurrent_activation: p.recurrent_activation,
            };
            let grads = backward(&w, &p.saved, &dstates);
            let mut surrogate = (&p.w_ih * &grads.w_ih).sum(Kind::Float)
                + (&p.w_hh * &grads.w_hh).sum(Kind::Float)
                + (&p.b_ih * &grads.b_ih).sum(Kind::Float);
            if p.b_hh.requires_grad() {
                surrogate += (&p.b_hh * &grads.b_hh).sum(Kind::Float);
            }
            if p.x.requires_grad() {
                surrogate += (&p.x * &grads.x).sum(Kind::Float);
            }
            surrogate.backward();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0f32;
        let mut x = -80.0f32;
        while x < 80.0 {
            let rel = ((super::exp(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 4e-7, "relative error {worst}");
    }
}
