//! IMDB as Keras' `imdb.load_data(num_words=max_features)` followed by
//! `pad_sequences(maxlen)` shapes it, from the raw reviews.
//!
//! Steps: read the reviews (see `reviews`), tokenize them in parallel, rank
//! the vocabulary on the training reviews, encode each review as
//! `[1, word ids…]`, optionally reverse each review (book §6.3.8), pad; then
//! shuffle the training set, then the test set, with one
//! `ChaCha8Rng(shuffle_seed)` and hold out the training set's LAST
//! `validation_split` fraction for validation. The result is cached on disk.
use crate::config::ImdbData;
use crate::data::imdb_cache::{self, ImdbArrays, TokenSplit};
use crate::data::pad::pad_into;
use crate::data::reviews::{read_reviews, Review};
use crate::data::tokenize::normalised_words;
use crate::data::vocab::Vocabulary;
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::Path;

/// The arrays and whether they came from the cache.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub arrays: ImdbArrays,
    pub from_cache: bool,
}

/// Loads IMDB from an archive or folder, through the cache in `cache_dir`
/// (the data directory's `.cache/` in a run).
pub fn load(spec: &ImdbData, source: &Path, cache_dir: &Path) -> Result<Loaded> {
    check(spec)?;
    let cache = imdb_cache::cache_path(spec, source, cache_dir)?;
    if let Some(arrays) = imdb_cache::load(&cache) {
        return Ok(Loaded {
            arrays,
            from_cache: true,
        });
    }
    let arrays = encode(spec, source)?;
    if let Err(e) = imdb_cache::store(&cache, &arrays) {
        eprintln!("seqlab: warning: {e:#} (the data is used anyway, uncached)");
    }
    Ok(Loaded {
        arrays,
        from_cache: false,
    })
}

/// The vocabulary and padding sizes every token source needs.
pub fn check_sizes(max_features: usize, maxlen: usize) -> Result<()> {
    if max_features < 4 {
        bail!("data.max_features = {max_features}: must be at least 4 (0, 1, 2 are reserved)");
    }
    if maxlen == 0 {
        bail!("data.maxlen must be at least 1");
    }
    Ok(())
}

fn check(spec: &ImdbData) -> Result<()> {
    check_sizes(spec.max_features, spec.maxlen)?;
    if !(0.0..1.0).contains(&spec.validation_split) {
        bail!(
            "data.validation_split = {}: must be in [0, 1)",
            spec.validation_split
        );
    }
    Ok(())
}

/// Reads, tokenizes and encodes without the cache.
pub fn encode(spec: &ImdbData, source: &Path) -> Result<ImdbArrays> {
    check(spec)?;
    let reviews = read_reviews(source)?;
    let norm = |rs: &[Review]| -> Vec<String> {
        rs.par_iter().map(|r| normalised_words(&r.text)).collect()
    };
    let train_words = norm(&reviews.train);
    let test_words = norm(&reviews.test);
    let vocab = Vocabulary::build(&train_words, spec.max_features);
    let encode_all = |ws: &[String]| -> Vec<Vec<i32>> {
        ws.par_iter()
            .map(|w| {
                let mut s = vocab.encode(w);
                if spec.reverse {
                    s.reverse();
                }
                s
            })
            .collect()
    };
    let train_seqs = encode_all(&train_words);
    let test_seqs = encode_all(&test_words);

    // As Keras' load_data: one seeded generator shuffles the training set,
    // then the test set (so a partial test pass is not all one class).
    let mut rng = ChaCha8Rng::seed_from_u64(spec.shuffle_seed);
    let mut order: Vec<usize> = (0..train_seqs.len()).collect();
    order.shuffle(&mut rng);
    let mut test_order: Vec<usize> = (0..test_seqs.len()).collect();
    test_order.shuffle(&mut rng);
    let split_at = (train_seqs.len() as f64 * (1.0 - spec.validation_split)) as usize;
    let build = |idx: &mut dyn Iterator<Item = usize>, seqs: &[Vec<i32>], labels: &[Review]| {
        let mut s = TokenSplit::default();
        for i in idx {
            pad_into(
                &mut s.x,
                &seqs[i],
                spec.maxlen,
                spec.padding,
                spec.truncating,
            );
            s.y.push(labels[i].label);
        }
        s
    };
    Ok(ImdbArrays {
        maxlen: spec.maxlen,
        train: build(
            &mut order[..split_at].iter().copied(),
            &train_seqs,
            &reviews.train,
        ),
        val: build(
            &mut order[split_at..].iter().copied(),
            &train_seqs,
            &reviews.train,
        ),
        test: build(&mut test_order.into_iter(), &test_seqs, &reviews.test),
    })
}
