//! A GRU time loop outside autograd, with a hand-written backward pass
//! through time (CPU). libtorch's autograd never sees the 240 steps: the
//! layer's output enters the graph as a fresh leaf recorded on the `Tape`,
//! and once the loss has been back-propagated to it, [`Pending::backward`]
//! runs BPTT and feeds the gradients back through one surrogate `backward`.
//!
//! The input projections of all steps and the weight gradients are single
//! libtorch products; the per-step recurrent product (`small_gemm`) and the
//! gate arithmetic run here over contiguous buffers, with a vectorisable
//! `exp`. The batch's rows are split between libtorch's intra-op thread
//! count of threads, each running its own time loop (rows never interact),
//! and each row is computed the same way whichever thread runs it.
//! Same function as the fused kernel and the unrolled autograd path (tests in
//! `recurrent.rs` check forward and gradients, |Δ| < 1e-5):
//!
//! r = σ(gᵢᵣ + gₕᵣ), z = σ(gᵢ𝓏 + gₕ𝓏), n = act(gᵢₙ + r ⊙ gₕₙ), h' = n + z ⊙ (h − n),
//! with gᵢ = x Wᵢₕᵀ + bᵢₕ (all steps in one product) and gₕ = (h ⊙ m) Wₕₕᵀ + bₕₕ.
use super::{small_gemm, team};
use crate::config::Activation;
use std::ops::Range;
use tch::{Kind, Tensor};

/// `exp` without branches, so loops over slices vectorise (Cephes' expf
/// polynomial after Cody–Waite range reduction; ≈ 1 ulp).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = clampf(x, -87.3, 88.7);
    // round(x / ln 2) with the 1.5·2²³ trick: the low bits of `t` hold n
    // as an integer, so 2ⁿ comes from integer arithmetic on those bits (a
    // float-to-int cast would saturate and stop the loop vectorising).
    let t = x * std::f32::consts::LOG2_E + 12_582_912.0;
    let n = t - 12_582_912.0;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(t.to_bits().wrapping_sub(0x4B40_0000 - 127) << 23)
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
        // Gate blocks as their own slices (no index arithmetic, so no bounds
        // checks) and separate simple passes: each one vectorises on its own.
        let (gir, giz, gin) = (&gi[..u], &gi[u..2 * u], &gi[2 * u..]);
        let (ghr, ghz) = (&gh[..u], &gh[u..2 * u]);
        for ((r, &a), &b) in r.iter_mut().zip(gir).zip(ghr) {
            *r = ract(a + b);
        }
        for ((z, &a), &b) in z.iter_mut().zip(giz).zip(ghz) {
            *z = ract(a + b);
        }
        g.copy_from_slice(&gh[2 * u..]);
        for (((n, &a), &r), &g) in n.iter_mut().zip(gin).zip(r.iter()).zip(g.iter()) {
            *n = act(a + r * g);
        }
        for (((h, &n), &z), &hp) in h.iter_mut().zip(n.iter()).zip(z.iter()).zip(hp) {
            *h = n + z * (hp - n);
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

/// Rows of the batch each worker thread takes: the recurrence of one row
/// never reads another row, so the batch splits into independent time loops.
fn row_chunks(batch: usize) -> Vec<Range<usize>> {
    team::split(batch, 16)
}

/// Splits a (steps, batch, width) buffer into each chunk's per-step row slices.
fn split_rows<'a>(
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

/// Flush-to-zero and denormals-are-zero on this thread while alive:
/// gradients fading through hundreds of steps reach the denormal range,
/// where x86 arithmetic slows down many times over. Restored on drop.
struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl FlushDenormals {
    #[allow(deprecated)] // _mm_getcsr/_mm_setcsr: the only stable way to set FTZ/DAZ
    fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: reading and writing MXCSR only changes this thread's
            // floating-point mode; the old value is restored on drop.
            let saved = unsafe { std::arch::x86_64::_mm_getcsr() };
            unsafe { std::arch::x86_64::_mm_setcsr(saved | 0x8040) };
            Self { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Drop for FlushDenormals {
    #[allow(deprecated)]
    fn drop(&mut self) {
        // SAFETY: restores the mode saved in `new`.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::x86_64::_mm_setcsr(self.saved)
        };
    }
}

/// Runs `work` on every part, on libtorch's thread team.
fn run_parts<P: Send>(parts: Vec<P>, work: impl Fn(P) + Sync) {
    team::run(parts, &|p| {
        let _mode = FlushDenormals::new();
        work(p)
    });
}

/// One worker's rows of the forward buffers, per step.
struct ForwardRows<'a> {
    rows: Range<usize>,
    h: Vec<&'a mut [f32]>,
    hm: Option<Vec<&'a mut [f32]>>,
    r: Vec<&'a mut [f32]>,
    z: Vec<&'a mut [f32]>,
    n: Vec<&'a mut [f32]>,
    ghn: Vec<&'a mut [f32]>,
}

/// What every forward worker reads.
struct ForwardShared<'a> {
    gi: &'a [f32],
    mask: Option<&'a [f32]>,
    whh_t: &'a [f32],
    b_hh: &'a [f32],
    batch: usize,
    units: usize,
    activation: Activation,
    recurrent_activation: Activation,
}

fn forward_rows(p: ForwardRows, c: &ForwardShared) {
    let (u, u3) = (c.units, 3 * c.units);
    let rows = p.rows;
    let mut gh = vec![0f32; rows.len() * u3];
    let mask = c.mask.map(|m| &m[rows.start * u..rows.end * u]);
    let (mut h, mut hm) = (p.h, p.hm);
    let (mut r, mut z, mut n, mut ghn) = (p.r, p.z, p.n, p.ghn);
    for step in 0..r.len() {
        let (before, after) = h.split_at_mut(step + 1);
        let prev: &[f32] = before[step];
        if let (Some(hm), Some(m)) = (hm.as_mut(), mask) {
            for ((d, &x), &k) in hm[step].iter_mut().zip(prev).zip(m) {
                *d = x * k;
            }
        }
        let input: &[f32] = match &hm {
            Some(hm) => hm[step],
            None => prev,
        };
        small_gemm::gemm(input, u, c.whh_t, u3, Some(c.b_hh), &mut gh);
        let at = step * c.batch;
        let gi = &c.gi[(at + rows.start) * u3..(at + rows.end) * u3];
        let out = StepOut {
            h: after[0],
            r: r[step],
            z: z[step],
            n: n[step],
            ghn: ghn[step],
        };
        step_gates(c.activation, c.recurrent_activation, gi, &gh, prev, out, u);
    }
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
    let b_hh = w.b_hh.detach().contiguous();
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
    let (bs, us) = (b as usize, u as usize);
    let chunks = row_chunks(bs);
    fn split<'a>(
        t: &'a Tensor,
        chunks: &[Range<usize>],
        b: usize,
        u: usize,
    ) -> Vec<Vec<&'a mut [f32]>> {
        split_rows(slice_mut(t), b, u, chunks)
    }
    let mut hm_parts: Vec<Option<Vec<&mut [f32]>>> = match mask {
        Some(_) => split(&hm, &chunks, bs, us).into_iter().map(Some).collect(),
        None => chunks.iter().map(|_| None).collect(),
    };
    let (mut hp, mut rp, mut zp, mut np, mut gp) = (
        split(&h, &chunks, bs, us),
        split(&r, &chunks, bs, us),
        split(&z, &chunks, bs, us),
        split(&n, &chunks, bs, us),
        split(&ghn, &chunks, bs, us),
    );
    let parts: Vec<ForwardRows> = chunks
        .iter()
        .rev()
        .map(|rows| ForwardRows {
            rows: rows.clone(),
            h: hp.pop().expect("one part per chunk"),
            hm: hm_parts.pop().expect("one part per chunk"),
            r: rp.pop().expect("one part per chunk"),
            z: zp.pop().expect("one part per chunk"),
            n: np.pop().expect("one part per chunk"),
            ghn: gp.pop().expect("one part per chunk"),
        })
        .collect();
    let shared = ForwardShared {
        gi: slice(&gi),
        mask: mask.as_ref().map(slice),
        whh_t: slice(&whh_t),
        b_hh: slice(&b_hh),
        batch: bs,
        units: us,
        activation: w.activation,
        recurrent_activation: w.recurrent_activation,
    };
    run_parts(parts, |p| forward_rows(p, &shared));
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
        let (gir, rest) = gi.split_at_mut(u);
        let (giz, gin) = rest.split_at_mut(u);
        for ((o, &d), &z) in direct.iter_mut().zip(d).zip(z) {
            *o = d * z;
        }
        for (((o, &d), &z), &n) in gin.iter_mut().zip(d).zip(z).zip(n) {
            *o = d * (1.0 - z) * act(n); // da_n
        }
        for ((((o, &d), &hp), &n), &z) in giz.iter_mut().zip(d).zip(hp).zip(n).zip(z) {
            *o = d * (hp - n) * ract(z); // da_z
        }
        for (((o, &an), &g), &r) in gir.iter_mut().zip(gin.iter()).zip(g).zip(r) {
            *o = an * g * ract(r); // da_r
        }
        let (ghrz, ghn) = gh.split_at_mut(2 * u);
        ghrz[..u].copy_from_slice(gir);
        ghrz[u..].copy_from_slice(giz);
        for ((o, &an), &r) in ghn.iter_mut().zip(gin.iter()).zip(r) {
            *o = an * r;
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
    /// dL/dx, (B, T, F), when asked for.
    pub x: Option<Tensor>,
}

/// What every backward worker reads: the saved forward buffers and dL/dh.
struct BackwardShared<'a> {
    h: &'a [f32],
    r: &'a [f32],
    z: &'a [f32],
    n: &'a [f32],
    ghn: &'a [f32],
    dout: &'a [f32],
    mask: Option<&'a [f32]>,
    w_hh: &'a [f32],
    batch: usize,
    units: usize,
    activation: Activation,
    recurrent_activation: Activation,
}

/// One worker's rows of the gate gradients, per step.
struct BackwardRows<'a> {
    rows: Range<usize>,
    dgi: Vec<&'a mut [f32]>,
    dgh: Vec<&'a mut [f32]>,
}

fn backward_rows(p: BackwardRows, c: &BackwardShared) {
    let (u, u3) = (c.units, 3 * c.units);
    let rows = p.rows;
    let len = rows.len() * u;
    let (mut dh, mut direct, mut dhm) = (vec![0f32; len], vec![0f32; len], vec![0f32; len]);
    let mask = c.mask.map(|m| &m[rows.start * u..rows.end * u]);
    let (mut dgi, mut dgh) = (p.dgi, p.dgh);
    for step in (0..dgi.len()).rev() {
        let o = (step * c.batch + rows.start) * u..(step * c.batch + rows.end) * u;
        for (d, &g) in dh.iter_mut().zip(&c.dout[o.clone()]) {
            *d += g;
        }
        let saved = StepSaved {
            r: &c.r[o.clone()],
            z: &c.z[o.clone()],
            n: &c.n[o.clone()],
            ghn: &c.ghn[o.clone()],
            prev: &c.h[o],
        };
        step_backward(
            c.activation,
            c.recurrent_activation,
            &saved,
            &dh,
            dgi[step],
            dgh[step],
            &mut direct,
            u,
        );
        small_gemm::gemm(dgh[step], u3, c.w_hh, u, None, &mut dhm);
        match mask {
            Some(m) => {
                for i in 0..len {
                    dh[i] = direct[i] + dhm[i] * m[i];
                }
            }
            None => {
                for i in 0..len {
                    dh[i] = direct[i] + dhm[i];
                }
            }
        }
    }
}

/// BPTT: `dstates` is dL/dh for h₁ … h_T, (T, B, U) (zeros where nothing
/// flows in); dL/dx only `with_input_grad`.
pub fn backward(w: &Weights, s: &Saved, dstates: &Tensor, with_input_grad: bool) -> Grads {
    let _guard = tch::no_grad_guard();
    let (t, b, u) = s.r.size3().expect("(T, B, U)");
    let f = s.xt.size()[2];
    let opts = (Kind::Float, s.r.device());
    let dgi = Tensor::empty([t, b, 3 * u], opts);
    let dgh = Tensor::empty([t, b, 3 * u], opts);
    let w_hh = w.w_hh.detach().contiguous();
    let dout = dstates.contiguous();
    let (bs, us) = (b as usize, u as usize);
    let chunks = row_chunks(bs);
    let mut dgi_parts = split_rows(slice_mut(&dgi), bs, 3 * us, &chunks);
    let mut dgh_parts = split_rows(slice_mut(&dgh), bs, 3 * us, &chunks);
    let parts: Vec<BackwardRows> = chunks
        .iter()
        .rev()
        .map(|rows| BackwardRows {
            rows: rows.clone(),
            dgi: dgi_parts.pop().expect("one part per chunk"),
            dgh: dgh_parts.pop().expect("one part per chunk"),
        })
        .collect();
    let shared = BackwardShared {
        h: slice(&s.h),
        r: slice(&s.r),
        z: slice(&s.z),
        n: slice(&s.n),
        ghn: slice(&s.ghn),
        dout: slice(&dout),
        mask: s.mask.as_ref().map(slice),
        w_hh: slice(&w_hh),
        batch: bs,
        units: us,
        activation: w.activation,
        recurrent_activation: w.recurrent_activation,
    };
    run_parts(parts, |p| backward_rows(p, &shared));
    let dgi2 = dgi.view([t * b, 3 * u]);
    let dgh2 = dgh.view([t * b, 3 * u]);
    let b_ih = dgi2.sum_dim_intlist(0, false, Kind::Float);
    // dgh equals dgi in the r and z blocks: only the n block needs its own sum.
    let b_hh = Tensor::cat(
        &[
            b_ih.narrow(0, 0, 2 * u),
            dgh2.narrow(1, 2 * u, u)
                .sum_dim_intlist(0, false, Kind::Float),
        ],
        0,
    );
    Grads {
        w_ih: dgi2.tr().mm(&s.xt.view([t * b, f])),
        w_hh: dgh2.tr().mm(&s.hm.contiguous().view([t * b, u])),
        b_ih,
        b_hh,
        x: with_input_grad.then(|| dgi2.mm(&w.w_ih.detach()).view([t, b, f]).transpose(0, 1)),
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

impl Pending {
    /// BPTT once the loss has been back-propagated to `leaf`; the gradients
    /// of the weights and the input go back into the graph through one
    /// surrogate `backward` call.
    pub fn backward(self) {
        let g = self.leaf.grad();
        if !g.defined() {
            return;
        }
        let (t, b, u) = self.saved.r.size3().expect("(T, B, U)");
        let dstates = {
            let _guard = tch::no_grad_guard();
            if self.return_sequences {
                g.transpose(0, 1).contiguous()
            } else {
                let d = Tensor::zeros([t, b, u], (Kind::Float, g.device()));
                d.get(t - 1).copy_(&g);
                d
            }
        };
        let w = Weights {
            w_ih: &self.w_ih,
            w_hh: &self.w_hh,
            b_ih: &self.b_ih,
            b_hh: &self.b_hh,
            activation: self.activation,
            recurrent_activation: self.recurrent_activation,
        };
        let grads = backward(&w, &self.saved, &dstates, self.x.requires_grad());
        let mut surrogate = (&self.w_ih * &grads.w_ih).sum(Kind::Float)
            + (&self.w_hh * &grads.w_hh).sum(Kind::Float)
            + (&self.b_ih * &grads.b_ih).sum(Kind::Float);
        if self.b_hh.requires_grad() {
            surrogate += (&self.b_hh * &grads.b_hh).sum(Kind::Float);
        }
        if let Some(dx) = &grads.x {
            surrogate += (&self.x * dx).sum(Kind::Float);
        }
        surrogate.backward();
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
