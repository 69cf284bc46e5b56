//! Statistics of replicates: the mean, the sample standard deviation, the
//! 95 % confidence interval of the mean (Student t) and Welch's t-test of
//! two means with unequal variances. The t distribution (quantiles, tails)
//! is `statrs`'.
//!
//! ```text
//! mean  x̄ = Σ xᵢ / n
//! std   s = √( Σ (xᵢ − x̄)² / (n − 1) )
//! CI95  x̄ ± t(0.975; n − 1) · s / √n
//! Welch t = (x̄_a − x̄_b) / √(s_a²/n_a + s_b²/n_b)
//!       df = (s_a²/n_a + s_b²/n_b)² / ( (s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1) )
//!       p = 2 · P(T_df > |t|)            (two-sided)
//! ```
//!
//! ```
//! use seqlab::report::stats::{spread, welch};
//! let s = spread(&[1.0, 2.0, 3.0]).unwrap();
//! assert_eq!((s.mean, s.std), (2.0, Some(1.0)));
//! let w = welch(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]).unwrap();
//! assert_eq!((w.t, w.p), (0.0, 1.0));
//! ```
use statrs::distribution::{ContinuousCDF, StudentsT};

/// What a set of replicate values says about their mean.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator); `None` below two values.
    pub std: Option<f64>,
    /// The 95 % confidence interval of the mean; `None` below two values.
    pub ci95: Option<(f64, f64)>,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// Half the width of the 95 % interval: the `± h` of `mean ± h`.
    pub fn half_width(&self) -> Option<f64> {
        self.ci95.map(|(lo, hi)| (hi - lo) / 2.0)
    }
}

/// The arithmetic mean (NaN for no values).
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The sample standard deviation, n − 1 in the denominator.
pub fn sample_std(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

/// The `p` quantile of Student's t distribution with `df` degrees of freedom.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df)
        .expect("positive degrees of freedom")
        .inverse_cdf(p)
}

/// Mean, spread and 95 % interval of `xs`; `None` for no values.
pub fn spread(xs: &[f64]) -> Option<Spread> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len();
    let m = mean(xs);
    let std = sample_std(xs);
    let ci95 = std.map(|s| {
        let h = t_quantile(0.975, (n - 1) as f64) * s / (n as f64).sqrt();
        (m - h, m + h)
    });
    Some(Spread {
        n,
        mean: m,
        std,
        ci95,
        min: xs.iter().copied().fold(f64::INFINITY, f64::min),
        max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// Welch's unequal-variances t-test of `a` against `b` (the sign of `t` is
/// that of x̄_a − x̄_b, as `scipy.stats.ttest_ind(a, b, equal_var=False)`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Welch {
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom (NaN when both sides have no spread).
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// The test, or `None` when a side has fewer than two values. When neither
/// side varies at all the means are either equal (p = 1) or certainly
/// different (p = 0).
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    let (va, vb) = (sample_std(a)?.powi(2), sample_std(b)?.powi(2));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (qa, qb) = (va / na, vb / nb);
    let diff = mean(a) - mean(b);
    let se2 = qa + qb;
    if se2 == 0.0 {
        return Some(if diff == 0.0 {
            Welch {
                t: 0.0,
                df: f64::NAN,
                p: 1.0,
            }
        } else {
            Welch {
                t: diff.signum() * f64::INFINITY,
                df: f64::NAN,
                p: 0.0,
            }
        });
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (qa * qa / (na - 1.0) + qb * qb / (nb - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).expect("positive degrees of freedom");
    let p = (2.0 * dist.sf(t.abs())).min(1.0);
    Some(Welch { t, df, p })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b} (tolerance {tol})");
    }

    /// x = 2, 4, 4, 4, 5, 5, 7, 9: Σx = 40, x̄ = 5; Σ(x − x̄)² = 9+1+1+1+0+0+4+16
    /// = 32, s² = 32/7, s = 2.138089935299395; t(0.975; 7) = 2.364624251592785
    /// (tables: 2.365), s/√8 = 0.7559289460184544, h = 2.3646243 · 0.7559289 = 1.787488.
    #[test]
    fn mean_std_and_interval_by_hand() {
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let s = spread(&x).unwrap();
        assert_eq!(s.n, 8);
        assert_eq!(s.mean, 5.0);
        close(s.std.unwrap(), (32.0f64 / 7.0).sqrt(), 1e-12);
        close(t_quantile(0.975, 7.0), 2.364624251592785, 1e-9);
        let h = 2.364624251592785 * (32.0f64 / 7.0).sqrt() / 8f64.sqrt();
        close(h, 1.787488, 1e-6);
        let (lo, hi) = s.ci95.unwrap();
        close(lo, 5.0 - h, 1e-9);
        close(hi, 5.0 + h, 1e-9);
        close(s.half_width().unwrap(), h, 1e-9);
        assert_eq!((s.min, s.max), (2.0, 9.0));
    }

    /// Five replicates of a validation MAE: x̄ = 2.0, deviations −0.1, 0.1,
    /// 0, −0.05, 0.05: Σd² = 0.025, s² = 0.00625, s = 0.0790569415;
    /// t(0.975; 4) = 2.776445105 (tables: 2.776), s/√5 = 0.0353553391,
    /// h = 2.776445105 · 0.0353553391 = 0.0981622.
    #[test]
    fn five_replicates_by_hand() {
        let s = spread(&[1.9, 2.1, 2.0, 1.95, 2.05]).unwrap();
        close(s.mean, 2.0, 1e-12);
        close(s.std.unwrap(), 0.00625f64.sqrt(), 1e-12);
        close(t_quantile(0.975, 4.0), 2.776445105, 1e-8);
        close(s.half_width().unwrap(), 0.0981622, 1e-6);
    }

    #[test]
    fn one_value_has_a_mean_but_no_spread() {
        let s = spread(&[3.5]).unwrap();
        assert_eq!((s.n, s.mean, s.std, s.ci95), (1, 3.5, None, None));
        assert!(spread(&[]).is_none());
        assert!(welch(&[1.0], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn no_spread_on_either_side() {
        let same = welch(&[1.0, 1.0], &[1.0, 1.0, 1.0]).unwrap();
        assert_eq!((same.t, same.p), (0.0, 1.0));
        let apart = welch(&[1.0, 1.0], &[2.0, 2.0]).unwrap();
        assert_eq!((apart.t, apart.p), (f64::NEG_INFINITY, 0.0));
    }
}
