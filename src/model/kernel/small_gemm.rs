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
//! windows are read in place.

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
    #[cfg(target_arch = "x86_64")]
    if n.is_multiple_of(16) && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above); the
        // lengths were asserted just above.
        return unsafe { avx512::gemm(a, lda, rows, k, w, n, bias, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above); the
        // lengths were asserted just above.
        return unsafe { avx2::gemm(a, lda, rows, k, w, n, bias, out) };
    }
    portable(a, lda, rows, k, w, n, bias, out)
}

#[allow(clippy::too_many_arguments)]
fn portable(
    a: &[f32],
    lda: usize,
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    for (i, or) in out.chunks_exact_mut(n).take(rows).enumerate() {
        let ar = &a[i * lda..i * lda + k];
        match bias {
            Some(b) => or.copy_from_slice(b),
            None => or.fill(0.0),
        }
        for (&s, wr) in ar.iter().zip(w.chunks_exact(n)) {
            for (o, &x) in or.iter_mut().zip(wr) {
                *o += s * x;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Columns `col .. col + 8·NV` of MR consecutive output rows, held in
    /// MR × NV registers: each loaded vector of `w` serves MR rows.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const MR: usize, const NV: usize>(
        a: &[f32],
        lda: usize,
        k: usize,
        w: &[f32],
        n: usize,
        col: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let mut acc = [[_mm256_setzero_ps(); NV]; MR];
        if let Some(b) = bias {
            for row in acc.iter_mut() {
                for (v, a) in row.iter_mut().enumerate() {
                    *a = _mm256_loadu_ps(b.as_ptr().add(col + 8 * v));
                }
            }
        }
        let (ap, wp) = (a.as_ptr(), w.as_ptr().add(col));
        for kk in 0..k {
            let wr = wp.add(kk * n);
            let mut wv = [_mm256_setzero_ps(); NV];
            for (v, x) in wv.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(wr.add(8 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let s = _mm256_broadcast_ss(&*ap.add(i * lda + kk));
                for (a, &x) in row.iter_mut().zip(&wv) {
                    *a = _mm256_fmadd_ps(s, x, *a);
                }
            }
        }
        let op = out.as_mut_ptr().add(col);
        for (i, row) in acc.iter().enumerate() {
            for (v, a) in row.iter().enumerate() {
                _mm256_storeu_ps(op.add(i * n + 8 * v), *a);
            }
        }
    }

    /// All column blocks of MR rows (`a`: MR rows `lda` apart, `out`: MR × n).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows<const MR: usize>(
        a: &[f32],
        lda: usize,
        k: usize,
        w: &[f32],
        n: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let mut col = 0;
        while col + 24 <= n {
            block::<MR, 3>(a, lda, k, w, n, col, bias, out);
            col += 24;
        }
        while col + 8 <= n {
            block::<MR, 1>(a, lda, k, w, n, col, bias, out);
            col += 8;
        }
        for c in col..n {
            for i in 0..MR {
                let mut s = bias.map_or(0.0, |b| b[c]);
                for kk in 0..k {
                    s = a[i * lda + kk].mul_add(w[kk * n + c], s);
                }
                out[i * n + c] = s;
            }
        }
    }

    /// The caller has checked that `a` holds `rows` rows `lda` apart, `w`
    /// k × n values, `out` rows × n and `bias` n.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gemm(
        a: &[f32],
        lda: usize,
        rows_total: usize,
        k: usize,
        w: &[f32],
        n: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        const MR: usize = 4;
        let mut i = 0;
        while i + MR <= rows_total {
            rows::<MR>(&a[i * lda..], lda, k, w, n, bias, &mut out[i * n..]);
            i += MR;
        }
        while i < rows_total {
            rows::<1>(&a[i * lda..], lda, k, w, n, bias, &mut out[i * n..]);
            i += 1;
        }
    }
}

/// 16-float vectors where the CPU has them: the same multiply-adds in the
/// same order per element as the AVX2 path (so the same results), fewer
/// instructions.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const MR: usize, const NV: usize>(
        a: &[f32],
        lda: usize,
        k: usize,
        w: &[f32],
        n: usize,
        col: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        if let Some(b) = bias {
            for row in acc.iter_mut() {
                for (v, a) in row.iter_mut().enumerate() {
                    *a = _mm512_loadu_ps(b.as_ptr().add(col + 16 * v));
                }
            }
        }
        let (ap, wp) = (a.as_ptr(), w.as_ptr().add(col));
        for kk in 0..k {
            let wr = wp.add(kk * n);
            let mut wv = [_mm512_setzero_ps(); NV];
            for (v, x) in wv.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(wr.add(16 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let s = _mm512_set1_ps(*ap.add(i * lda + kk));
                for (a, &x) in row.iter_mut().zip(&wv) {
                    *a = _mm512_fmadd_ps(s, x, *a);
                }
            }
        }
        let op = out.as_mut_ptr().add(col);
        for (i, row) in acc.iter().enumerate() {
            for (v, a) in row.iter().enumerate() {
                _mm512_storeu_ps(op.add(i * n + 16 * v), *a);
            }
        }
    }

    /// As `avx2::gemm`, for n a multiple of 16.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gemm(
        a: &[f32],
        lda: usize,
        rows: usize,
        k: usize,
        w: &[f32],
        n: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        const MR: usize = 8;
        let mut i = 0;
        while i + MR <= rows {
            let (a, out) = (&a[i * lda..], &mut out[i * n..]);
            let mut col = 0;
            while col + 32 <= n {
                block::<MR, 2>(a, lda, k, w, n, col, bias, out);
                col += 32;
            }
            if col < n {
                block::<MR, 1>(a, lda, k, w, n, col, bias, out);
            }
            i += MR;
        }
        while i < rows {
            let (a, out) = (&a[i * lda..], &mut out[i * n..]);
            for col in (0..n).step_by(16) {
                block::<1, 1>(a, lda, k, w, n, col, bias, out);
            }
            i += 1;
        }
    }
}

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
                portable(&a, k, rows, k, &w, n, bias, &mut slow);
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
                    avx2::gemm(&a, k, rows, k, &w, n, bias, &mut narrow);
                    avx512::gemm(&a, k, rows, k, &w, n, bias, &mut wide);
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
}
