//! Branch-free activations for the kernels' element loops (so they
//! vectorise), their derivatives written in terms of the activation's
//! output, and the dispatch that compiles each loop once per activation
//! pair and once more with AVX2.
use crate::config::Activation;

/// `exp` without branches (Cephes' expf polynomial after Cody–Waite range
/// reduction; ≈ 1 ulp).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
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
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
pub fn hard_sigmoid(x: f32) -> f32 {
    clampf(0.2 * x + 0.5, 0.0, 1.0)
}

#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    2.0 * sigmoid(2.0 * x) - 1.0
}

#[inline(always)]
pub fn relu(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

#[inline(always)]
pub fn linear(x: f32) -> f32 {
    x
}

#[inline(always)]
pub fn d_sigmoid(y: f32) -> f32 {
    y * (1.0 - y)
}

#[inline(always)]
pub fn d_hard_sigmoid(y: f32) -> f32 {
    if y > 0.0 && y < 1.0 {
        0.2
    } else {
        0.0
    }
}

#[inline(always)]
pub fn d_tanh(y: f32) -> f32 {
    1.0 - y * y
}

#[inline(always)]
pub fn d_relu(y: f32) -> f32 {
    if y > 0.0 {
        1.0
    } else {
        0.0
    }
}

#[inline(always)]
pub fn d_linear(_: f32) -> f32 {
    1.0
}

/// Whether the kernels compute a cell with these activations.
pub fn supports(activation: Activation, recurrent_activation: Activation) -> bool {
    matches!(
        activation,
        Activation::Tanh | Activation::Relu | Activation::Linear
    ) && matches!(
        recurrent_activation,
        Activation::Sigmoid | Activation::HardSigmoid
    )
}

/// `$f(act, ract, d_act, d_ract, args…)` with the pair's functions as
/// zero-sized fn items, so every supported pair gets its own inlined copy.
macro_rules! with_activations {
    ($act:expr, $ract:expr, $f:path, $($arg:expr),* $(,)?) => {{
        use $crate::config::Activation as A;
        use $crate::model::kernel::fastmath as m;
        match ($act, $ract) {
            (A::Tanh, A::Sigmoid) => $f(m::tanh, m::sigmoid, m::d_tanh, m::d_sigmoid, $($arg),*),
            (A::Tanh, _) => $f(m::tanh, m::hard_sigmoid, m::d_tanh, m::d_hard_sigmoid, $($arg),*),
            (A::Relu, A::Sigmoid) => $f(m::relu, m::sigmoid, m::d_relu, m::d_sigmoid, $($arg),*),
            (A::Relu, _) => $f(m::relu, m::hard_sigmoid, m::d_relu, m::d_hard_sigmoid, $($arg),*),
            (_, A::Sigmoid) => $f(m::linear, m::sigmoid, m::d_linear, m::d_sigmoid, $($arg),*),
            _ => $f(m::linear, m::hard_sigmoid, m::d_linear, m::d_hard_sigmoid, $($arg),*),
        }
    }};
}
pub(crate) use with_activations;

/// Defines `fn $name(args)` running `$inner(args)` compiled for AVX-512 or
/// AVX2 when the CPU has them (checked at run time), portable otherwise. No
/// FMA: every build does the same IEEE operations per element and rounds the
/// same way, only more elements at a time. `$inner` must be `#[inline(always)]`.
macro_rules! avx2_dispatch {
    ($vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $inner:path) => {
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,avx512f")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) {
                    $inner($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) {
                    $inner($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $inner($($arg),*)
        }
    };
}
pub(crate) use avx2_dispatch;

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

    #[test]
    fn derivatives_from_outputs_match_finite_differences() {
        use super::*;
        type Activation = fn(f32) -> f32;
        let pairs: [(Activation, Activation); 5] = [
            (sigmoid, d_sigmoid),
            (tanh, d_tanh),
            (hard_sigmoid, d_hard_sigmoid),
            (relu, d_relu),
            (linear, d_linear),
        ];
        for (f, d) in pairs {
            for x in [-3.1f32, -0.7, 0.4, 1.9] {
                let h = 1e-3;
                let numeric = (f(x + h) - f(x - h)) / (2.0 * h);
                assert!(
                    (numeric - d(f(x))).abs() < 2e-3,
                    "at {x}: {numeric} vs {}",
                    d(f(x))
                );
            }
        }
    }
}
