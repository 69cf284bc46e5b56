//! The confusion matrix of a classifier on one full pass of a split (the
//! test split after training): `counts[true][predicted]`. A single output is
//! a logit (class 1 when above 0); several outputs are per-class logits or
//! probabilities (the argmax).
use crate::data::Batcher;
use crate::model::Model;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Kind;

/// Counts over one full pass of `batcher` (left reset for the next user).
pub fn confusion(model: &Model, batcher: &mut Batcher, classes: usize) -> Vec<Vec<u64>> {
    let _guard = tch::no_grad_guard();
    let mut counts = vec![vec![0u64; classes]; classes];
    // Sequential splits ignore the generator; it is only the signature's.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    batcher.reset();
    for _ in 0..batcher.full_pass_steps() {
        let (x, y) = batcher.next_batch(&mut rng);
        let out = model.forward_logits(&x, false);
        let predicted = if out.size().last() == Some(&1) {
            out.reshape([-1]).gt(0.0).to_kind(Kind::Int64)
        } else {
            out.argmax(-1, false)
        };
        let truth = y.reshape([-1]).to_kind(Kind::Int64);
        let p: Vec<i64> = Vec::try_from(predicted.to_device(tch::Device::Cpu)).unwrap_or_default();
        let t: Vec<i64> = Vec::try_from(truth.to_device(tch::Device::Cpu)).unwrap_or_default();
        for (&t, &p) in t.iter().zip(&p) {
            if let (Ok(t), Ok(p)) = (usize::try_from(t), usize::try_from(p)) {
                if t < classes && p < classes {
                    counts[t][p] += 1;
                }
            }
        }
    }
    batcher.reset();
    counts
}

/// `confusion.csv`: one row per true class, one column per predicted class.
pub fn confusion_csv(classes: &[String], counts: &[Vec<u64>]) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::from("true\\predicted");
    for c in classes {
        out.push(',');
        out.push_str(&quote(c));
    }
    out.push('\n');
    for (c, row) in classes.iter().zip(counts) {
        out.push_str(&quote(c));
        for n in row {
            out.push_str(&format!(",{n}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_true_classes_and_names_are_quoted() {
        let classes = ["a".to_string(), "b,c".to_string()];
        let csv = confusion_csv(&classes, &[vec![3, 1], vec![0, 2]]);
        assert_eq!(csv, "true\\predicted,a,\"b,c\"\na,3,1\n\"b,c\",0,2\n");
    }
}
