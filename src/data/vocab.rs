//! The IMDB vocabulary, with Keras' `imdb.load_data` conventions: index 0 is
//! padding, 1 starts every review, 2 stands for a word out of the vocabulary,
//! and words take indices from 3 in order of frequency in the TRAINING reviews
//! (most frequent first, ties broken by the word itself, so it is
//! deterministic). Only indices below `max_features` are kept.
use crate::data::tokenize::words;
use rayon::prelude::*;
use std::collections::HashMap;

pub const PAD: i32 = 0;
pub const START: i32 = 1;
pub const OOV: i32 = 2;
/// Index of the most frequent word.
pub const FIRST_WORD: i32 = 3;

/// Word → index, for the words whose index is below `max_features`.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    pub index: HashMap<String, i32>,
}

impl Vocabulary {
    /// Ranks the words of the given normalised training reviews.
    pub fn build<S: AsRef<str> + Sync>(train: &[S], max_features: usize) -> Vocabulary {
        let counts = train
            .par_iter()
            .fold(HashMap::<&str, u64>::new, |mut m, review| {
                for w in words(review.as_ref()) {
                    *m.entry(w).or_insert(0) += 1;
                }
                m
            })
            .reduce(HashMap::new, |a, b| {
                let (mut big, small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
                for (w, c) in small {
                    *big.entry(w).or_insert(0) += c;
                }
                big
            });
        let mut ranked: Vec<(&str, u64)> = counts.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let keep = max_features.saturating_sub(FIRST_WORD as usize);
        let index = ranked
            .into_iter()
            .take(keep)
            .enumerate()
            .map(|(rank, (w, _))| (w.to_string(), rank as i32 + FIRST_WORD))
            .collect();
        Vocabulary { index }
    }

    /// `[START, index of each word (OOV when not kept)]`.
    pub fn encode(&self, normalised: &str) -> Vec<i32> {
        std::iter::once(START)
            .chain(words(normalised).map(|w| self.index.get(w).copied().unwrap_or(OOV)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranked_by_count_then_word_and_cut_at_max_features() {
        let train = ["b a c a", "b d d a", "c"];
        // counts: a 3, b 2, c 2, d 2 → a=3, b=4, c=5, d=6
        let v = Vocabulary::build(&train, 6);
        assert_eq!(v.index.get("a"), Some(&3));
        assert_eq!(v.index.get("b"), Some(&4));
        assert_eq!(v.index.get("c"), Some(&5));
        assert_eq!(v.index.get("d"), None, "index 6 is not below max_features");
        assert_eq!(v.encode("d a zz c"), vec![1, 2, 3, 2, 5]);
    }
}
