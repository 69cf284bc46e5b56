//! Dropout masks from a counter-based generator: element `i` of a step's
//! mask is a function of the step's seed and `i` alone, so a kernel can draw
//! its mask in pieces, on any thread, in any order, and get the same bits.
//!
//! libtorch's CPU `bernoulli_` draws one element at a time from its global
//! generator (about 5 ns each); the attention weights of the patch
//! transformer are 32,000 elements a layer and step. Here each element is two
//! rounds of a 32-bit integer hash (multiply, xor-shift), which vectorise.
//! The seed itself comes from libtorch's generator (`draws::seed`), so a run
//! stays a function of its configured seed and a resumed run draws it again.

/// A mask's parameters: `rate` of the elements are dropped, the others are
/// scaled by 1 / (1 − rate).
#[derive(Clone, Copy, Debug)]
pub struct Mask {
    pub seed: u64,
    pub rate: f64,
}

/// The 32-bit "lowbias32" integer hash (a bijection with good avalanche).
#[inline(always)]
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

#[inline(always)]
fn fill_body(seed: u64, threshold: u32, kept: f32, first: u32, out: &mut [f32]) {
    let (k0, k1) = (seed as u32, (seed >> 32) as u32);
    for (i, o) in out.iter_mut().enumerate() {
        let u = mix(mix(first.wrapping_add(i as u32) ^ k0) ^ k1);
        *o = if u >= threshold { kept } else { 0.0 };
    }
}

super::fastmath::avx2_dispatch!(fn fill_dispatch(seed: u64, threshold: u32, kept: f32, first: u32, out: &mut [f32]) => fill_body);

impl Mask {
    /// Elements `first ..` of the mask into `out`: 0 or 1 / (1 − rate).
    pub fn fill(&self, first: usize, out: &mut [f32]) {
        let threshold = (self.rate * 4_294_967_296.0).clamp(0.0, 4_294_967_295.0) as u32;
        let kept = (1.0 / (1.0 - self.rate)) as f32;
        fill_dispatch(self.seed, threshold, kept, first as u32, out);
    }
}

#[cfg(test)]
mod tests {
    use super::Mask;

    #[test]
    fn keeps_the_expected_share_with_the_expected_scale() {
        for rate in [0.1, 0.5] {
            let mask = Mask { seed: 42, rate };
            let mut m = vec![0f32; 200_000];
            mask.fill(0, &mut m);
            let kept = m.iter().filter(|&&v| v != 0.0).count() as f64 / m.len() as f64;
            assert!(
                (kept - (1.0 - rate)).abs() < 0.005,
                "rate {rate}: kept {kept}"
            );
            let scale = (1.0 / (1.0 - rate)) as f32;
            assert!(m.iter().all(|&v| v == 0.0 || v == scale));
            // neighbours are not correlated: kept-after-kept as often as kept
            let pairs = m.windows(2).filter(|w| w[0] != 0.0 && w[1] != 0.0).count() as f64;
            let both = pairs / (m.len() - 1) as f64;
            assert!(
                (both - (1.0 - rate) * (1.0 - rate)).abs() < 0.005,
                "rate {rate}: {both}"
            );
        }
    }

    #[test]
    fn pieces_equal_the_whole_and_seeds_differ() {
        let mask = Mask { seed: 7, rate: 0.3 };
        let mut whole = vec![0f32; 1000];
        mask.fill(0, &mut whole);
        let mut pieces = vec![0f32; 1000];
        let (a, b) = pieces.split_at_mut(337);
        mask.fill(337, b);
        mask.fill(0, a);
        assert_eq!(whole, pieces);
        let mut other = vec![0f32; 1000];
        Mask { seed: 8, rate: 0.3 }.fill(0, &mut other);
        assert_ne!(whole, other);
    }
}
