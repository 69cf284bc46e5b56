//! Row-by-row products of small matrices for the recurrent step,
//! `out = a · w (+ bias)` with `a` (rows × k), `w` (k × n), all row-major.
//!
//! The GRU kernel multiplies a 128 × 32 state by a 32 × 96 weight 240 times
//! per pass; a BLAS call per step spends more on dispatch and packing than on
//! arithmetic. Here blocks of 4 rows × 24 columns of the output live in
//! registers, so each vector loaded from `w` serves four rows. Every row is computed on its own, in a fixed
//! order, so splitting rows between threads never changes a result. AVX2+FMA
//! when the CPU has it (checked at run time), portable loops otherwise.

/// `out = a · w + bias` (bias of length n, or none).
pub fn gemm(a: &[f32], k: usize, w: &[f32], n: usize, bias: Option<&[f32]>, out: &mut [f32]) {
    debug_assert_eq!(a.len() % k, 0);
    debug_assert_eq!(w.len(), k * n);
    debug_assert_eq!(out.len(), a.len() / k * n);
    debug_assert!(bias.is_none_or(|b| b.len() == n));
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above); the
        // lengths were checked by the callers' shapes (asserted in debug).
        return unsafe { avx2::gemm(a, k, w, n, bias, out) };
    }
    portable(a, k, w, n, bias, out)
}

fn portable(a: &[f32], k: usize, w: &[f32], n: usize, bias: Option<&[f32]>, out: &mut [f32]) {
    for (ar, or) in a.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
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
    unsafe fn block<const MR: usize, const NV: usize>(
        a: &[f32],
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
                let s = _mm256_broadcast_ss(&*ap.add(i * k + kk));
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

    /// All column blocks of MR rows (`a`: MR × k, `out`: MR × n).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows<const MR: usize>(
        a: &[f32],
        k: usize,
        w: &[f32],
        n: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let mut col = 0;
        while col + 24 <= n {
            block::<MR, 3>(a, k, w, n, col, bias, out);
            col += 24;
        }
        while col + 8 <= n {
            block::<MR, 1>(a, k, w, n, col, bias, out);
            col += 8;
        }
        for c in col..n {
            for i in 0..MR {
                let mut s = bias.map_or(0.0, |b| b[c]);
                for kk in 0..k {
                    s = a[i * k + kk].mul_add(w[kk * n + c], s);
                }
                out[i * n + c] = s;
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gemm(
        a: &[f32],
        k: usize,
        w: &[f32],
        n: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        assert!(w.len() >= k * n && bias.is_none_or(|b| b.len() >= n));
        assert!(a.len() / k * n <= out.len());
        const MR: usize = 4;
        let (mut a_blocks, mut o_blocks) = (a.chunks_exact(MR * k), out.chunks_exact_mut(MR * n));
        for (ab, ob) in (&mut a_blocks).zip(&mut o_blocks) {
            rows::<MR>(ab, k, w, n, bias, ob);
        }
        let rest = a_blocks.remainder();
        for (ar, or) in rest
            .chunks_exact(k)
            .zip(o_blocks.into_remainder().chunks_exact_mut(n))
        {
            rows::<1>(ar, k, w, n, bias, or);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(a: &[f32], k: usize, w: &[f32], n: usize, bias: Option<&[f32]>) -> Vec<f64> {
        let rows = a.len() / k;
        let mut out = vec![0f64; rows * n];
        for i in 0..rows {
            for c in 0..n {
                let mut s = bias.map_or(0.0, |b| b[c] as f64);
                for kk in 0..k {
                    s += a[i * k + kk] as f64 * w[kk * n + c] as f64;
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
                portable(&a, k, &w, n, bias, &mut slow);
                for ((f, s), r) in fast.iter().zip(&slow).zip(&want) {
                    assert!((*f as f64 - r).abs() < 1e-5, "{rows}x{k}x{n}: {f} vs {r}");
                    assert!((*s as f64 - r).abs() < 1e-5, "{rows}x{k}x{n}: {s} vs {r}");
                }
            }
        }
    }
}
