//! The optimizers' per-parameter updates as loops over plain buffers
//! (contiguous f32 on the CPU), instead of a dozen libtorch calls each.
//!
//! A small model's step is mostly call overhead: DLinear has four
//! parameters, and Adam spent about a dozen libtorch operations (each with
//! its dispatch, and some with an allocation) on every one of them. Here an
//! update is two loops around one libtorch call, the square root (libtorch
//! takes it from MKL, whose last bit differs from a correctly rounded root
//! for about one value in seven, so it stays libtorch's). The loops do, per
//! element, the operations `optim` asks libtorch for, in the same order and
//! with the same roundings: libtorch's `add_` with a scale and its
//! `addcmul_` are each one fused multiply-add, every other operation rounds
//! on its own. `tests/optim.rs` checks the result against libtorch's
//! optimizers and against seqlab's tensor path, bit for bit.

/// Adam's per-step constants, as libtorch rounds them to f32.
#[derive(Clone, Copy)]
pub struct Adam {
    pub beta_1: f32,
    /// 1 − β₁
    pub keep_1: f32,
    pub beta_2: f32,
    /// 1 − β₂
    pub keep_2: f32,
    /// √(1 − β₂ᵗ)
    pub correction_2: f32,
    pub epsilon: f32,
    /// −lr / (1 − β₁ᵗ)
    pub step: f32,
}

/// RMSprop's constants, as libtorch rounds them to f32.
#[derive(Clone, Copy)]
pub struct Rmsprop {
    pub rho: f32,
    /// 1 − ρ
    pub keep: f32,
    pub epsilon: f32,
    /// −lr
    pub step: f32,
}

#[inline(always)]
fn adam_moments_body(g: &[f32], m: &mut [f32], v: &mut [f32], c: Adam) {
    for ((&g, m), v) in g.iter().zip(m.iter_mut()).zip(v.iter_mut()) {
        // m.mul_(β₁).add_(g, 1 − β₁)
        *m = g.mul_add(c.keep_1, *m * c.beta_1);
        // v.mul_(β₂).addcmul_(g·(1 − β₂), g)
        *v = (g * c.keep_2).mul_add(g, *v * c.beta_2);
    }
}

#[inline(always)]
fn adam_apply_body(p: &mut [f32], m: &[f32], root_v: &[f32], c: Adam) {
    for ((p, &m), &r) in p.iter_mut().zip(m).zip(root_v) {
        // denom = √v / √(1 − β₂ᵗ) + ε; p.addcdiv_(m·step, denom)
        let denom = r / c.correction_2 + c.epsilon;
        *p += (m * c.step) / denom;
    }
}

#[inline(always)]
fn rmsprop_average_body(g: &[f32], sq: &mut [f32], c: Rmsprop) {
    for (&g, sq) in g.iter().zip(sq.iter_mut()) {
        // sq.mul_(ρ).addcmul_(g·(1 − ρ), g)
        *sq = (g * c.keep).mul_add(g, *sq * c.rho);
    }
}

#[inline(always)]
fn rmsprop_apply_body(p: &mut [f32], g: &[f32], root_sq: &[f32], c: Rmsprop) {
    for ((p, &g), &r) in p.iter_mut().zip(g).zip(root_sq) {
        // p.addcdiv_(g·(−lr), √sq + ε)
        *p += (g * c.step) / (r + c.epsilon);
    }
}

/// `$name(args)` running `$inner(args)` compiled with AVX2 and FMA when the
/// CPU has them (checked at run time), portable otherwise; `mul_add` is one
/// rounding either way, so both give the same bits.
macro_rules! fma_dispatch {
    ($vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $inner:path) => {
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn fast($($arg: $ty),*) {
                    $inner($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                    return unsafe { fast($($arg),*) };
                }
            }
            $inner($($arg),*)
        }
    };
}

fma_dispatch!(pub fn adam_moments(g: &[f32], m: &mut [f32], v: &mut [f32], c: Adam) => adam_moments_body);
fma_dispatch!(pub fn adam_apply(p: &mut [f32], m: &[f32], root_v: &[f32], c: Adam) => adam_apply_body);
fma_dispatch!(pub fn rmsprop_average(g: &[f32], sq: &mut [f32], c: Rmsprop) => rmsprop_average_body);
fma_dispatch!(pub fn rmsprop_apply(p: &mut [f32], g: &[f32], root_sq: &[f32], c: Rmsprop) => rmsprop_apply_body);
