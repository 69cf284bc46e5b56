//! Row-by-row products of small matrices for the recurrent step,
//! `out = a · w (+ bias)` with `a` (rows × k), `w` (k × n), all row-major.
//!
//! The GRU kernel multiplies a 128 × 32 state by a 32 × 96 weight 240 times
//! per pass; a BLAS call per step spends more on dispatch and packing than on
//! arithmetic. Here blocks of the output live in registers (4 rows × 24
//! columns with AVX2, 8 rows × 32 columns with AVX-512), so each vector
//! loaded from `w` serves several rows. Every output element is the same
//! chain of fused multiply-adds over k in order, whichever block or vector
//! width computes it, so splitting rows between threads, or a CPU with or
//! without AVX-512, never changes a result. AVX-512 where the CPU has it and
//! n is a multiple of 16, else AVX2+FMA (checked at run time), else portable
//! loops. The rows of `a` may overlap (`gemm_strided`): a convolution's
//! windows are read in place. `gemm_tn_acc` adds `aᵀ · b` to what `out`
//! holds (a step's share of a weight gradient) with the same blocks,
//! reading `a` down its columns.

/// Where a block's sums start: at zero, at the bias (one value per
/// column), or at what `out` already holds (accumulating).
#[derive(Clone, Copy)]
enum Start<'a> {
    Zero,
    Bias(&'a [f32]),
    Out,
}

impl<'a> Start<'a> {
    fn of(bias: Option<&'a [f32]>) -> Self {
        bias.map_or(Start::Zero, Start::Bias)
    }

    /// The starting value of output element (row, col) in a portable loop.
    fn value(self, out: &[f32], n: usize, row: usize, col: usize) -> f32 {
        match self {
            Start::Zero => 0.0,
            Start::Bias(b) => b[col],
            Start::Out => out[row * n + col],
        }
    }
}

/// `out = a · w + bias` (bias of length n, or none).
pub fn gemm(a: &[f32], k: usize, w: &[f32], n: usize, bias: Option<&[f32]>, out: &mut [f32]) {
    debug_assert_eq!(a.len() % k, 0);
    gemm_strided(a, k, a.len() / k, k, w, n, bias, out)
}

/// `out = a · w + bias` where row i of `a` is `a[i·lda .. i·lda + k]`:
/// rows may overlap (`lda < k`), as the windows of a convolution do.
/// Each output element is the same sequence of multiply-adds as in `gemm`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_strided(
    a: &[f32],
    lda: usize,
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    if rows == 0 {
        return;
    }
    assert!(a.len() >= (rows - 1) * lda + k, "a holds {rows} rows");
    assert!(w.len() >= k * n && out.len() >= rows * n);
    assert!(bias.is_none_or(|b| b.len() >= n));
    dispatch(a, (lda, 1), rows, k, w, n, Start::of(bias), out)
}

/// `out += aᵀ · b` where `a` is k × m with rows `lda` apart and `b` is
/// k × n (row-major), `out` m × n: out[i][j] += Σ a[kk][i] · b[kk][j], kk
/// in order, one fused multiply-add chain per element starting from what
/// `out` holds. A weight gradient summed step by step (`a` the inputs of
/// one step's rows, `b` their gate gradients), while both are in cache.
pub fn gemm_tn_acc(
    a: &[f32],
    lda: usize,
    m: usize,
    k: usize,
    b: &[f32],
    n: usize,
    out: &mut [f32],
) {
    if k == 0 || m == 0 {
        return;
    }
    assert!(
        lda >= m && a.len() >= (k - 1) * lda + m,
        "a holds {k} rows of {m}"
    );
    assert!(b.len() >= k * n && out.len() >= m * n);
    dispatch(a, (1, lda), m, k, b, n, Start::Out, out)
}

/// The fastest implementation this CPU has; element (i, kk) of the left
/// operand is `a[i·strides.0 + kk·strides.1]`.
#[allow(clippy::too_many_arguments)]
fn dispatch(
    a: &[f32],
    strides: (usize, usize),
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    start: Start,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if n.is_multiple_of(16) && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above); the
        // callers asserted the lengths.
        return unsafe { avx512::gemm(a, strides, rows, k, w, n, start, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above); the
        // callers asserted the lengths.
        return unsafe { avx2::gemm(a, strides, rows, k, w, n, start, out) };
    }
    portable(a, strides, rows, k, w, n, start, out)
}

#[allow(clippy::too_many_arguments)]
fn portable(
    a: &[f32],
    (sa, ska): (usize, usize),
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    start: Start,
    out: &mut [f32],
) {
    for i in 0..rows {
        for c in 0..n {
            let mut s = start.value(out, n, i, c);
            for kk in 0..k {
                s = a[i * sa + kk * ska].mul_add(w[kk * n + c], s);
            }
            out[i * n + c] = s;
        }
    }
}

/// One module of register-blocked products for one vector width: `$w`
/// floats a vector, blocks of `$mr` rows × `$wide` vectors, then one
/// vector, then scalar columns. Every element is the same chain of fused
/// multiply-adds over k in order, whatever the width, so the AVX2 and the
/// AVX-512 modules give the same bits.
#[cfg(target_arch = "x86_64")]
macro_rules! simd_gemm {
    ($module:ident, $feature:literal, $vec:ty, $w:literal, $wide:literal, $mr:literal,
     $zero:ident, $load:ident, $store:ident, $set1:ident, $fmadd:ident) => {
        mod $module {
            use super::Start;
            use std::arch::x86_64::*;

            /// Columns `col .. col + $w·NV` of MR consecutive output rows,
            /// held in MR × NV registers: each loaded vector of `w` serves
            /// MR rows. Element (i, kk) of the left operand is
            /// `a[i·sa + kk·ska]`.
            #[inline]
            #[target_feature(enable = $feature)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn block<const MR: usize, const NV: usize>(
                a: *const f32,
                (sa, ska): (usize, usize),
                k: usize,
                w: &[f32],
                n: usize,
                col: usize,
                start: Start,
                out: *mut f32,
            ) {
                let mut acc = [[$zero(); NV]; MR];
                for (i, row) in acc.iter_mut().enumerate() {
                    for (v, x) in row.iter_mut().enumerate() {
                        match start {
                            Start::Zero => {}
                            Start::Bias(b) => *x = $load(b.as_ptr().add(col + $w * v)),
                            Start::Out => *x = $load(out.add(i * n + col + $w * v)),
                        }
                    }
                }
                let wp = w.as_ptr().add(col);
                for kk in 0..k {
                    let wr = wp.add(kk * n);
                    let mut wv = [$zero(); NV];
                    for (v, x) in wv.iter_mut().enumerate() {
                        *x = $load(wr.add($w * v));
                    }
                    let ak = a.add(kk * ska);
                    for (i, row) in acc.iter_mut().enumerate() {
                        let s: $vec = $set1(*ak.add(i * sa));
                        for (x, &y) in row.iter_mut().zip(&wv) {
                            *x = $fmadd(s, y, *x);
                        }
                    }
                }
                for (i, row) in acc.iter().enumerate() {
                    for (v, x) in row.iter().enumerate() {
                        $store(out.add(i * n + col + $w * v), *x);
                    }
                }
            }

            /// All columns of MR rows (`a` at their first row, `out`: MR × n).
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn rows<const MR: usize>(
                a: *const f32,
                strides: (usize, usize),
                k: usize,
                w: &[f32],
                n: usize,
                start: Start,
                out: *mut f32,
            ) {
                let mut col = 0;
                while col + $w * $wide <= n {
                    block::<MR, $wide>(a, strides, k, w, n, col, start, out);
                    col += $w * $wide;
                }
                while col + $w <= n {
                    block::<MR, 1>(a, strides, k, w, n, col, start, out);
                    col += $w;
                }
                let (sa, ska) = strides;
                for c in col..n {
                    for i in 0..MR {
                        let o = out.add(i * n + c);
                        let mut s = match start {
                            Start::Zero => 0.0,
                            Start::Bias(b) => b[c],
                            Start::Out => *o,
                        };
                        for kk in 0..k {
                            s = (*a.add(i * sa + kk * ska)).mul_add(w[kk * n + c], s);
                        }
                        *o = s;
                    }
                }
            }

            /// The caller has checked that `a` holds `rows_total` rows of k
            /// values (element (i, kk) at `i·strides.0 + kk·strides.1`), `w`
            /// k × n values, `out` rows × n and a bias n. The rows left over
            /// after the full blocks go as one narrower block.
            #[allow(clippy::too_many_arguments)]
            #[target_feature(enable = $feature)]
            pub unsafe fn gemm(
                a: &[f32],
                strides: (usize, usize),
                rows_total: usize,
                k: usize,
                w: &[f32],
                n: usize,
                start: Start,
                out: &mut [f32],
            ) {
                const MR: usize = $mr;
                let (ap, op) = (a.as_ptr(), out.as_mut_ptr());
                let mut i = 0;
                while i + MR <= rows_total {
                    rows::<MR>(
                        ap.add(i * strides.0),
                        strides,
                        k,
                        w,
                        n,
                        start,
                        op.add(i * n),
                    );
                    i += MR;
                }
                let (a, out) = (ap.add(i * strides.0), op.add(i * n));
                match rows_total - i {
                    0 => {}
                    1 => rows::<1>(a, strides, k, w, n, start, out),
                    2 => rows::<2>(a, strides, k, w, n, start, out),
                    3 => rows::<3>(a, strides, k, w, n, start, out),
                    4 => rows::<4>(a, strides, k, w, n, start, out),
                    5 => rows::<5>(a, strides, k, w, n, start, out),
                    6 => rows::<6>(a, strides, k, w, n, start, out),
                    _ => rows::<7>(a, strides, k, w, n, start, out),
                }
            }
        }
    };
}

// 8-float vectors, 4 rows × 24 columns a block.
#[cfg(target_arch = "x86_64")]
simd_gemm!(
    avx2,
    "avx2,fma",
    __m256,
    8,
    3,
    4,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps
);

// 16-float vectors where the CPU has them (n a multiple of 16), 8 rows ×
// 32 columns a block: the same multiply-adds per element, fewer instructions.
#[cfg(target_arch = "x86_64")]
simd_gemm!(
    avx512,
    "avx512f",
    __m512,
    16,
    2,
    8,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps
);

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(a: &[f32], k: usize, w: &[f32], n: usize, bias: Option<&[f32]>) -> Vec<f64> {
        reference_strided(a, k, a.len() / k, k, w, n, bias)
    }

    fn reference_strided(
        a: &[f32],
        lda: usize,
        rows: usize,
        k: usize,
        w: &[f32],
        n: usize,
        bias: Option<&[f32]>,
    ) -> Vec<f64> {
        let mut out = vec![0f64; rows * n];
        for i in 0..rows {
            for c in 0..n {
                let mut s = bias.map_or(0.0, |b| b[c] as f64);
                for kk in 0..k {
                    s += a[i * lda + kk] as f64 * w[kk * n + c] as f64;
                }
                out[i * n + c] = s;
            }
        }
        out
    }

    #[test]
    fn matches_a_double_precision_product_for_every_block_width() {
        let mut seed = 1u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        // 4-row blocks and leftover rows; 24- and 8-column blocks and a scalar tail
        for &(rows, k, n) in &[
            (5, 32, 96),
            (9, 64, 192),
            (4, 96, 32),
            (6, 7, 203),
            (3, 16, 5),
        ] {
            let a: Vec<f32> = (0..rows * k).map(|_| next()).collect();
            let w: Vec<f32> = (0..k * n).map(|_| next()).collect();
            let b: Vec<f32> = (0..n).map(|_| next()).collect();
            for bias in [None, Some(b.as_slice())] {
                let want = reference(&a, k, &w, n, bias);
                let mut fast = vec![f32::NAN; rows * n];
                gemm(&a, k, &w, n, bias, &mut fast);
                let mut slow = vec![f32::NAN; rows * n];
                portable(&a, (k, 1), rows, k, &w, n, Start::of(bias), &mut slow);
                for ((f, s), r) in fast.iter().zip(&slow).zip(&want) {
                    assert!((*f as f64 - r).abs() < 1e-5, "{rows}x{k}x{n}: {f} vs {r}");
                    assert!((*s as f64 - r).abs() < 1e-5, "{rows}x{k}x{n}: {s} vs {r}");
                }
            }
        }
    }

    /// The AVX-512 blocks give exactly the AVX2 blocks' results.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx512_equals_avx2_bit_for_bit() {
        if !(std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            eprintln!("no AVX-512 here: nothing to compare");
            return;
        }
        let mut seed = 3u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for &(rows, k, n) in &[
            (5, 32, 96),
            (19, 64, 192),
            (13, 70, 32),
            (9, 7, 16),
            (3, 160, 48),
        ] {
            let a: Vec<f32> = (0..rows * k).map(|_| next()).collect();
            let w: Vec<f32> = (0..k * n).map(|_| next()).collect();
            let b: Vec<f32> = (0..n).map(|_| next()).collect();
            for bias in [None, Some(b.as_slice())] {
                let mut narrow = vec![f32::NAN; rows * n];
                let mut wide = vec![f32::NAN; rows * n];
                // SAFETY: the features were checked above; the buffers have
                // the sizes the functions read and write.
                unsafe {
                    avx2::gemm(&a, (k, 1), rows, k, &w, n, Start::of(bias), &mut narrow);
                    avx512::gemm(&a, (k, 1), rows, k, &w, n, Start::of(bias), &mut wide);
                }
                assert_eq!(narrow, wide, "{rows}x{k}x{n}");
            }
        }
    }

    /// Overlapping rows (a convolution's windows, `lda` < k) give the same
    /// product as the windows copied out, element for element.
    #[test]
    fn overlapping_rows_equal_copied_windows() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for &(rows, lda, k, n) in &[(9, 14, 70, 32), (6, 32, 160, 32), (3, 5, 12, 27)] {
            let a: Vec<f32> = (0..(rows - 1) * lda + k).map(|_| next()).collect();
            let w: Vec<f32> = (0..k * n).map(|_| next()).collect();
            let b: Vec<f32> = (0..n).map(|_| next()).collect();
            let copied: Vec<f32> = (0..rows)
                .flat_map(|i| a[i * lda..i * lda + k].to_vec())
                .collect();
            let mut want = vec![f32::NAN; rows * n];
            gemm(&copied, k, &w, n, Some(&b), &mut want);
            let mut got = vec![f32::NAN; rows * n];
            gemm_strided(&a, lda, rows, k, &w, n, Some(&b), &mut got);
            assert_eq!(got, want, "{rows} rows {lda} apart, k {k}, n {n}");
            let exact = reference_strided(&a, lda, rows, k, &w, n, Some(&b));
            for (g, r) in got.iter().zip(&exact) {
                assert!((*g as f64 - r).abs() < 1e-5);
            }
        }
    }

    /// `out += aᵀ · b` (weight gradients step by step): a double-precision
    /// sum for every block shape (8-row blocks and 1–7 rows left over,
    /// AVX-512 and AVX2 widths), rows of `a` spaced wider than m, and the
    /// AVX-512 and AVX2 paths give the same bits.
    #[test]
    fn transposed_products_accumulate() {
        let mut seed = 11u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for &(k, lda, m, n) in &[
            (16, 14, 14, 96),
            (128, 32, 32, 192),
            (37, 40, 13, 128),
            (9, 5, 5, 24),
            (3, 7, 7, 20),
        ] {
            let a: Vec<f32> = (0..(k - 1) * lda + m).map(|_| next()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| next()).collect();
            let before: Vec<f32> = (0..m * n).map(|_| next()).collect();
            let mut got = before.clone();
            gemm_tn_acc(&a, lda, m, k, &b, n, &mut got);
            for i in 0..m {
                for j in 0..n {
                    let mut want = before[i * n + j] as f64;
                    for kk in 0..k {
                        want += a[kk * lda + i] as f64 * b[kk * n + j] as f64;
                    }
                    let g = got[i * n + j] as f64;
                    assert!(
                        (g - want).abs() < 1e-5,
                        "{k}x{m}x{n} [{i}][{j}]: {g} vs {want}"
                    );
                }
            }
            let mut slow = before.clone();
            portable(&a, (1, lda), m, k, &b, n, Start::Out, &mut slow);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                let mut narrow = before.clone();
                // SAFETY: the features were checked just above; the buffers
                // have the sizes the function reads and writes.
                unsafe { avx2::gemm(&a, (1, lda), m, k, &b, n, Start::Out, &mut narrow) };
                assert_eq!(narrow, got, "{k}x{m}x{n}: AVX2 and the dispatched path");
                assert_eq!(slow, got, "{k}x{m}x{n}: portable and the dispatched path");
            }
        }
    }
}
