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
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::Path;

/// The arrays, the kept words in id order (`vocab[i]` has id `i + 3`) and
/// whether they came from the cache.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub arrays: ImdbArrays,
    pub vocab: Vec<String>,
    pub from_cache: bool,
}

/// Loads IMDB from an archive or folder, through the cache in `cache_dir`
/// (the data directory's `.cache/` in a run).
pub fn load(spec: &ImdbData, source: &Path, cache_dir: &Path) -> Result<Loaded> {
    check(spec)?;
    let cache = imdb_cache::cache_path(spec, source, cache_dir)?;
    // The vocabulary lies beside the arrays (a cache of an older seqlab has none).
    let vocab_path = cache.with_extension("vocab");
    if let (Some(arrays), Some(vocab)) = (imdb_cache::load(&cache), load_vocab(&vocab_path)) {
        return Ok(Loaded {
            arrays,
            vocab,
            from_cache: true,
        });
    }
    let (arrays, vocab) = encode_with_vocab(spec, source)?;
    let stored = imdb_cache::store(&cache, &arrays).and_then(|_| store_vocab(&vocab_path, &vocab));
    if let Err(e) = stored {
        eprintln!("seqlab: warning: {e:#} (the data is used anyway, uncached)");
    }
    Ok(Loaded {
        arrays,
        vocab,
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

/// The cached vocabulary: one word per line, then `sha256 <hex>` of the lines
/// before; `None` when absent or damaged.
fn load_vocab(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let body = text.strip_suffix('\n')?;
    let (words, sum) = body.rsplit_once('\n').unwrap_or(("", body));
    let words = if words.is_empty() {
        String::new()
    } else {
        format!("{words}\n")
    };
    (sum.strip_prefix("sha256 ")? == imdb_cache::hex(&Sha256::digest(words.as_bytes())))
        .then(|| words.lines().map(str::to_string).collect())
}

fn store_vocab(path: &Path, vocab: &[String]) -> Result<()> {
    let mut text: String = vocab.iter().map(|w| format!("{w}\n")).collect();
    let sum = imdb_cache::hex(&Sha256::digest(text.as_bytes()));
    text.push_str(&format!("sha256 {sum}\n"));
    crate::results::store::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads, tokenizes and encodes without the cache.
pub fn encode(spec: &ImdbData, source: &Path) -> Result<ImdbArrays> {
    Ok(encode_with_vocab(spec, source)?.0)
}

/// [`encode`], with the kept words in id order.
pub fn encode_with_vocab(spec: &ImdbData, source: &Path) -> Result<(ImdbArrays, Vec<String>)> {
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
    let arrays = ImdbArrays {
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
    };
    Ok((arrays, crate::data::text_state::ranked_words(&vocab)))
}
