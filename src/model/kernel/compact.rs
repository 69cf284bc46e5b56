//! The entries of one convolution output step that carry a gradient:
//! dz = dy, or 0 where ReLU's output was not positive, kept where dz ≠ 0
//! (NaN included), with the filter and the convolution step each came from.
//!
//! A pooled convolution's backward pass visits every output value once and
//! most of them carry nothing; this is the loop that finds the others. With
//! AVX-512 it takes 16 filters at a time and packs the kept ones with
//! `vcompressps` (register form: the memory form is microcoded on some
//! CPUs); otherwise a branch-free scalar loop. Both list the same entries
//! in filter order.

/// The kept entries of one step; the buffers hold at least `f + 16` values.
pub struct Kept<'a> {
    pub filter: &'a mut [u32],
    pub dz: &'a mut [f32],
    pub step: &'a mut [u32],
}

/// Fills `kept` with step `j`'s entries that carry a gradient, in filter
/// order, and returns how many there are. `y` and `dy` hold the step's f
/// outputs and their gradients; `from` the convolution step of each
/// (pooled layers), else every entry came from step `j`.
pub fn nonzero(
    y: &[f32],
    dy: &[f32],
    from: Option<&[u32]>,
    j: u32,
    relu: bool,
    kept: Kept,
) -> usize {
    let f = y.len();
    assert!(dy.len() == f && from.is_none_or(|from| from.len() == f));
    assert!(kept.filter.len() >= f + 16 && kept.dz.len() >= f + 16 && kept.step.len() >= f + 16);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above); the lengths
        // were asserted above.
        return unsafe { avx512::nonzero(y, dy, from, j, relu, kept) };
    }
    portable(y, dy, from, j, relu, kept)
}

fn portable(y: &[f32], dy: &[f32], from: Option<&[u32]>, j: u32, relu: bool, kept: Kept) -> usize {
    let mut n = 0;
    for (ff, (&y, &g)) in y.iter().zip(dy).enumerate() {
        let d = if relu && y <= 0.0 { 0.0 } else { g };
        kept.filter[n] = ff as u32;
        kept.dz[n] = d;
        kept.step[n] = from.map_or(j, |from| from[ff]);
        n += (d != 0.0) as usize;
    }
    n
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Kept;
    use std::arch::x86_64::*;

    /// The caller has checked the lengths (`kept` has 16 values of room
    /// past f: every block stores all 16 lanes).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn nonzero(
        y: &[f32],
        dy: &[f32],
        from: Option<&[u32]>,
        j: u32,
        relu: bool,
        kept: Kept,
    ) -> usize {
        let f = y.len();
        let zero = _mm512_setzero_ps();
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let mut n = 0;
        let mut first = 0;
        while first < f {
            let left = f - first;
            let inside: __mmask16 = if left >= 16 {
                0xFFFF
            } else {
                ((1u32 << left) - 1) as __mmask16
            };
            let g = _mm512_maskz_loadu_ps(inside, dy.as_ptr().add(first));
            let d = if relu {
                let v = _mm512_maskz_loadu_ps(inside, y.as_ptr().add(first));
                // y ≤ 0 (false for NaN, as in the scalar loop) → 0.
                let off = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(v, zero);
                _mm512_mask_mov_ps(g, off, zero)
            } else {
                g
            };
            // d ≠ 0, NaN included (unordered compare).
            let keep = _mm512_mask_cmp_ps_mask::<_CMP_NEQ_UQ>(inside, d, zero);
            let t = match from {
                Some(from) => {
                    _mm512_maskz_loadu_epi32(inside, from.as_ptr().add(first) as *const i32)
                }
                None => _mm512_set1_epi32(j as i32),
            };
            let filter = _mm512_add_epi32(lanes, _mm512_set1_epi32(first as i32));
            _mm512_storeu_ps(
                kept.dz.as_mut_ptr().add(n),
                _mm512_maskz_compress_ps(keep, d),
            );
            _mm512_storeu_si512(
                kept.filter.as_mut_ptr().add(n) as *mut __m512i,
                _mm512_maskz_compress_epi32(keep, filter),
            );
            _mm512_storeu_si512(
                kept.step.as_mut_ptr().add(n) as *mut __m512i,
                _mm512_maskz_compress_epi32(keep, t),
            );
            n += keep.count_ones() as usize;
            first += 16;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This CPU's path lists the same entries as the scalar loop, for
    /// filter counts below, at and past a vector, with ReLU zeros, zero
    /// gradients, NaN outputs and NaN gradients.
    #[test]
    fn equals_the_scalar_loop() {
        for f in [1usize, 7, 16, 32, 37] {
            let y: Vec<f32> = (0..f)
                .map(|i| match i % 5 {
                    0 => -1.0,
                    1 => 0.0,
                    2 => f32::NAN,
                    _ => i as f32,
                })
                .collect();
            let dy: Vec<f32> = (0..f)
                .map(|i| match i % 7 {
                    0 => 0.0,
                    3 => f32::NAN,
                    _ => i as f32 * 0.5 - 2.0,
                })
                .collect();
            let from: Vec<u32> = (0..f as u32).map(|i| i * 3 % 11).collect();
            for relu in [true, false] {
                for from in [None, Some(&from[..])] {
                    let run = |fast: bool| {
                        let (mut a, mut b, mut c) =
                            (vec![0u32; f + 16], vec![0f32; f + 16], vec![0u32; f + 16]);
                        let kept = Kept {
                            filter: &mut a,
                            dz: &mut b,
                            step: &mut c,
                        };
                        let n = if fast {
                            nonzero(&y, &dy, from, 4, relu, kept)
                        } else {
                            portable(&y, &dy, from, 4, relu, kept)
                        };
                        let bits: Vec<u32> = b[..n].iter().map(|v| v.to_bits()).collect();
                        (a[..n].to_vec(), bits, c[..n].to_vec())
                    };
                    let want = run(false);
                    assert!(f < 7 || !want.0.is_empty(), "the case keeps some entries");
                    assert_eq!(
                        run(true),
                        want,
                        "{f} filters, relu {relu}, pooled {}",
                        from.is_some()
                    );
                }
            }
        }
    }
}
