//! Weighted sums of windows of one buffer: `acc += Σₑ dₑ · x[offₑ ..
//! offₑ + n]`, entries in order, each term rounded (a multiply, then an
//! add, as `acc[i] += d * x[i]` does).
//!
//! A convolution's weight gradient is such a sum for every filter: its
//! kept output entries, each scaling the input window it came from. Adding
//! one window at a time reads and writes the whole gradient row per entry;
//! here, with AVX-512, up to 12 vectors of the row stay in registers across
//! all the entries, so each entry costs its loads and arithmetic only. The
//! result is the same per element whichever path runs, since every element
//! sees the same operations in the same order.

/// Vectors of the row held in registers at once (AVX-512: 192 floats).
#[cfg(target_arch = "x86_64")]
const GROUP: usize = 12;

/// `acc += Σₑ weights[e] · x[offsets[e] .. offsets[e] + acc.len()]`, e in
/// order. Panics when a window runs past the end of `x`.
pub fn add_windows(x: &[f32], offsets: &[usize], weights: &[f32], acc: &mut [f32]) {
    let n = acc.len();
    assert_eq!(offsets.len(), weights.len(), "one weight per window");
    if n == 0 || offsets.is_empty() {
        return;
    }
    let last = offsets.iter().copied().max().unwrap_or(0);
    assert!(last + n <= x.len(), "a window runs past the input");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above) and every
        // window lies inside `x` (asserted above).
        return unsafe { avx512::add_windows(x, offsets, weights, acc) };
    }
    portable(x, offsets, weights, acc);
}

super::fastmath::avx2_dispatch!(fn portable(x: &[f32], offsets: &[usize], weights: &[f32], acc: &mut [f32]) => portable_body);

#[inline(always)]
fn portable_body(x: &[f32], offsets: &[usize], weights: &[f32], acc: &mut [f32]) {
    let n = acc.len();
    for (&off, &d) in offsets.iter().zip(weights) {
        for (a, &v) in acc.iter_mut().zip(&x[off..off + n]) {
            *a += d * v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::GROUP;
    use std::arch::x86_64::*;

    /// The lanes of the vector starting at `col` that lie inside n.
    #[inline(always)]
    fn lanes(col: usize, n: usize) -> __mmask16 {
        let left = n - col;
        if left >= 16 {
            0xFFFF
        } else {
            ((1u32 << left) - 1) as __mmask16
        }
    }

    /// The caller has checked that every window lies inside `x`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn add_windows(x: &[f32], offsets: &[usize], weights: &[f32], acc: &mut [f32]) {
        let n = acc.len();
        let vectors = n.div_ceil(16);
        let mut first = 0;
        while first < vectors {
            let col = first * 16;
            match (vectors - first).min(GROUP) {
                1 => group::<1>(x, offsets, weights, acc, col),
                2 => group::<2>(x, offsets, weights, acc, col),
                3 => group::<3>(x, offsets, weights, acc, col),
                4 => group::<4>(x, offsets, weights, acc, col),
                5 => group::<5>(x, offsets, weights, acc, col),
                6 => group::<6>(x, offsets, weights, acc, col),
                7 => group::<7>(x, offsets, weights, acc, col),
                8 => group::<8>(x, offsets, weights, acc, col),
                9 => group::<9>(x, offsets, weights, acc, col),
                10 => group::<10>(x, offsets, weights, acc, col),
                11 => group::<11>(x, offsets, weights, acc, col),
                _ => group::<12>(x, offsets, weights, acc, col),
            }
            first += GROUP;
        }
    }

    /// Columns col .. col + 16·V of the sum, held in V registers over all
    /// the entries; masked loads and stores past the row's end (masked
    /// lanes are never read, so no window is read beyond `x`).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn group<const V: usize>(
        x: &[f32],
        offsets: &[usize],
        weights: &[f32],
        acc: &mut [f32],
        col: usize,
    ) {
        let n = acc.len();
        let mut mask = [0 as __mmask16; V];
        let mut sum = [_mm512_setzero_ps(); V];
        for v in 0..V {
            mask[v] = lanes(col + 16 * v, n);
            sum[v] = _mm512_maskz_loadu_ps(mask[v], acc.as_ptr().add(col + 16 * v));
        }
        let xp = x.as_ptr().add(col);
        for (&off, &d) in offsets.iter().zip(weights) {
            let dv = _mm512_set1_ps(d);
            let w = xp.add(off);
            for v in 0..V {
                let xv = _mm512_maskz_loadu_ps(mask[v], w.add(16 * v));
                sum[v] = _mm512_add_ps(sum[v], _mm512_mul_ps(dv, xv));
            }
        }
        for v in 0..V {
            _mm512_mask_storeu_ps(acc.as_mut_ptr().add(col + 16 * v), mask[v], sum[v]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Whatever path this CPU takes gives the bits of the one-window-at-a-
    /// time loop, for row lengths below, at and past a register group, and
    /// with windows ending at the buffer's last element.
    #[test]
    fn equals_adding_one_window_at_a_time() {
        for n in [1usize, 5, 16, 70, 160, 191, 192, 193, 400] {
            let x = values(3 * n + 40, n as u32);
            let d = values(25, 7 + n as u32);
            let entries: Vec<(usize, f32)> = (0..25)
                .map(|e| ((e * 37) % (x.len() - n + 1), d[e] * 3.0))
                .chain([(x.len() - n, 0.25)])
                .collect();
            let start = values(n, 99);
            let mut want = start.clone();
            for &(off, d) in &entries {
                for (a, &v) in want.iter_mut().zip(&x[off..off + n]) {
                    *a += d * v;
                }
            }
            let mut got = start.clone();
            let (offsets, weights): (Vec<usize>, Vec<f32>) = entries.iter().copied().unzip();
            add_windows(&x, &offsets, &weights, &mut got);
            let (want, got): (Vec<u32>, Vec<u32>) = (
                want.iter().map(|v| v.to_bits()).collect(),
                got.iter().map(|v| v.to_bits()).collect(),
            );
            assert_eq!(want, got, "row of {n}");
        }
    }

    #[test]
    #[should_panic(expected = "past the input")]
    fn refuses_a_window_past_the_end() {
        add_windows(&[0.0; 10], &[8], &[1.0], &mut [0.0; 4]);
    }
}
