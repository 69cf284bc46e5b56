//! Keras' `pad_sequences`: every sequence becomes exactly `maxlen` long,
//! truncated and padded with 0 at the front (`pre`, Keras' default) or at the
//! back (`post`).
//!
//! `[1, 2, 3]`, maxlen 5, pre → `[0, 0, 1, 2, 3]`; maxlen 2, truncating pre → `[2, 3]`.
use crate::config::Side;
use crate::data::vocab::PAD;

/// Appends the padded `seq` (exactly `maxlen` values) to `out`.
pub fn pad_into(out: &mut Vec<i32>, seq: &[i32], maxlen: usize, padding: Side, truncating: Side) {
    let kept = if seq.len() > maxlen {
        match truncating {
            Side::Pre => &seq[seq.len() - maxlen..],
            Side::Post => &seq[..maxlen],
        }
    } else {
        seq
    };
    let fill = maxlen - kept.len();
    if padding == Side::Pre {
        out.extend(std::iter::repeat_n(PAD, fill));
    }
    out.extend_from_slice(kept);
    if padding == Side::Post {
        out.extend(std::iter::repeat_n(PAD, fill));
    }
}

/// A `(n, maxlen)` row-major matrix of the padded sequences.
pub fn pad_sequences(
    seqs: &[Vec<i32>],
    maxlen: usize,
    padding: Side,
    truncating: Side,
) -> Vec<i32> {
    let mut out = Vec::with_capacity(seqs.len() * maxlen);
    for s in seqs {
        pad_into(&mut out, s, maxlen, padding, truncating);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_pad_sequences_pre_and_post() {
        let s = vec![vec![1, 2, 3], vec![1, 4, 5, 6, 7]];
        assert_eq!(
            pad_sequences(&s, 4, Side::Pre, Side::Pre),
            vec![0, 1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(
            pad_sequences(&s, 4, Side::Post, Side::Post),
            vec![1, 2, 3, 0, 1, 4, 5, 6]
        );
        assert_eq!(
            pad_sequences(&s, 4, Side::Pre, Side::Post),
            vec![0, 1, 2, 3, 1, 4, 5, 6]
        );
        assert_eq!(
            pad_sequences(&s, 4, Side::Post, Side::Pre),
            vec![1, 2, 3, 0, 4, 5, 6, 7]
        );
    }
}
