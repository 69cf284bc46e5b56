//! Per-column standardisation as in the book: mean and population standard
//! deviation (ddof = 0) over the training rows only, applied to every row.
//!
//! `x' = (x - mean) / std`; statistics are accumulated in `f64`.

/// Column means and standard deviations of the training rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Normaliser {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Normaliser {
    /// Fits on rows `[0, train_max)` (as the book's `float_data[:200000]`, clamped to the data) of a
    /// row-major matrix with `features` columns. A constant column gets
    /// `std = 1` (it is only centred).
    pub fn fit(values: &[f32], features: usize, train_max: usize) -> Normaliser {
        let rows = values.len() / features;
        let n = train_max.min(rows);
        let mut sum = vec![0f64; features];
        for row in values[..n * features].chunks_exact(features) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v as f64;
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n.max(1) as f64).collect();
        let mut sq = vec![0f64; features];
        for row in values[..n * features].chunks_exact(features) {
            for ((s, &v), m) in sq.iter_mut().zip(row).zip(&mean) {
                let d = v as f64 - m;
                *s += d * d;
            }
        }
        let std = sq
            .iter()
            .map(|s| {
                let sd = (s / n.max(1) as f64).sqrt();
                if sd > 0.0 {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Normaliser { mean, std }
    }

    /// The normalised copy of a row-major matrix.
    pub fn apply(&self, values: &[f32]) -> Vec<f32> {
        let f = self.mean.len();
        let mut out = Vec::with_capacity(values.len());
        for row in values.chunks_exact(f) {
            for (c, &v) in row.iter().enumerate() {
                out.push(((v as f64 - self.mean[c]) / self.std[c]) as f32);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_std_over_training_rows_only() {
        // column 0: 1, 3 in training, 100 outside; column 1 constant.
        let v = [1.0, 5.0, 3.0, 5.0, 100.0, 5.0];
        let n = Normaliser::fit(&v, 2, 2);
        assert_eq!(n.mean, vec![2.0, 5.0]);
        assert_eq!(n.std, vec![1.0, 1.0]);
        assert_eq!(n.apply(&v), vec![-1.0, 0.0, 1.0, 0.0, 98.0, 0.0]);
    }
}
