//! A labelled text collection (`source = "text"`) encoded as IMDB is, on the
//! same code: documents (see `text_read`) → words (`tokenize`, under
//! `data.standardize`) → ids (`vocab`, ranked on the training split, 0 pad,
//! 1 start, 2 out of vocabulary) → padded rows (`pad`) → [`TokenSplit`]s
//! that `TokenBatches` serves.
//!
//! Classes: `data.classes` in id order, else the labels found, sorted; a
//! label outside a listed `classes` is an error. Splits: with `test_path`,
//! its documents are the test split; otherwise one `ChaCha8Rng(shuffle_seed)`
//! shuffles the collection and the LAST `test_split` fraction is the test
//! split. Then the training documents are shuffled with the same generator and
//! their last `validation_split` fraction is the validation split (IMDB's rule).
//!
//! [`load`] goes through the on-disk cache (`text_cache`), keyed by the
//! collection's content and the settings.
use crate::config::{Standardize, TextData, TextSplitRule};
use crate::data::imdb_cache::{ImdbArrays, TokenSplit};
use crate::data::pad::pad_into;
use crate::data::text_cache;
use crate::data::text_read::{read_collection, Collection, Columns, Doc};
use crate::data::text_state::TextState;
use crate::data::tokenize::standardized_words;
use crate::data::vocab::Vocabulary;
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Most classes a collection may have (labels are stored as `u8`).
pub const MAX_CLASSES: usize = 255;

/// The encoded splits, the class names (id order) and the vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct TextArrays {
    pub arrays: ImdbArrays,
    pub classes: Vec<String>,
    /// The kept words in index order: `vocab[i]` has id `i + 3`.
    pub vocab: Vec<String>,
    /// Documents decoded lossily (not valid UTF-8).
    pub lossy: usize,
}

impl TextArrays {
    /// `vocab.txt`: one token per line, line `i` (from 0) is id `i`.
    pub fn vocab_txt(&self) -> String {
        super::text_state::vocab_txt(&self.vocab)
    }

    /// `text.toml`: what a trained model needs to encode new text.
    pub fn text_toml(&self, spec: &TextData) -> String {
        let mut state = TextState::new(
            self.classes.clone(),
            spec.standardize,
            (spec.max_features, spec.maxlen),
        );
        state.padding = spec.padding;
        state.truncating = spec.truncating;
        state.reverse = spec.reverse;
        state.to_toml()
    }
}

/// Checks the settings that need no data.
pub fn check(spec: &TextData) -> Result<()> {
    super::imdb::check_sizes(spec.max_features, spec.maxlen)?;
    for (key, v) in [
        ("validation_split", spec.validation_split),
        ("test_split", spec.test_split),
    ] {
        if !(v > 0.0 && v < 1.0) {
            bail!("data.{key} = {v}: must be in (0, 1)");
        }
    }
    if spec.classes.len() == 1 || spec.classes.len() > MAX_CLASSES {
        bail!(
            "data.classes lists {} class(es); list between 2 and {MAX_CLASSES}, or leave it empty to infer them",
            spec.classes.len()
        );
    }
    Ok(())
}

fn columns(spec: &TextData) -> Columns<'_> {
    Columns {
        text: &spec.text_column,
        label: &spec.label_column,
    }
}

/// Reads one path of the collection, reporting lossy decoding on stderr.
pub fn read(spec: &TextData, path: &Path) -> Result<Collection> {
    let c = read_collection(path, columns(spec))?;
    if c.lossy > 0 {
        eprintln!(
            "seqlab: {}: {} document(s) or cell(s) were not valid UTF-8 and were decoded lossily (invalid bytes read as U+FFFD)",
            path.display(),
            c.lossy
        );
    }
    Ok(c)
}

/// The class names: `data.classes`, else the labels found (sorted).
pub fn classes_of(spec: &TextData, path: &Path, docs: &[Doc]) -> Result<Vec<String>> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for d in docs {
        *counts.entry(d.label.as_str()).or_insert(0) += 1;
    }
    if spec.classes.is_empty() {
        if counts.len() < 2 {
            let found = counts.keys().next().copied().unwrap_or("");
            let key = if spec.label_column.is_empty() {
                "class folder".to_string()
            } else {
                format!("label column `{}`", spec.label_column)
            };
            bail!(
                "{}: the {key} has one class (`{found}`); a classifier needs at least two — add documents of another class",
                path.display()
            );
        }
        if counts.len() > MAX_CLASSES {
            bail!(
                "{}: {} classes found; at most {MAX_CLASSES} are supported (is data.label_column the right column?)",
                path.display(),
                counts.len()
            );
        }
        return Ok(counts.keys().map(|k| k.to_string()).collect());
    }
    for label in counts.keys() {
        if !spec.classes.iter().any(|c| c == label) {
            bail!(
                "{}: label `{label}` is not in data.classes = {:?}; add it to the list (or leave data.classes empty to infer the classes)",
                path.display(),
                spec.classes
            );
        }
    }
    if let Some(empty) = spec
        .classes
        .iter()
        .find(|c| !counts.contains_key(c.as_str()))
    {
        bail!(
            "{}: class `{empty}` of data.classes has no documents; add some or remove it from the list",
            path.display()
        );
    }
    Ok(spec.classes.clone())
}

/// How many of `n` documents stay when `fraction` is held out from the end.
fn kept(n: usize, fraction: f64) -> usize {
    (n as f64 * (1.0 - fraction)) as usize
}

/// Documents in the training, validation and test splits, from the
/// collection's size alone (for `seqlab plan`'s step counts).
pub fn split_sizes(spec: &TextData) -> Result<[usize; 3]> {
    let count = |p: &str| -> Result<usize> {
        let path = crate::data::series::resolve_path(p);
        Ok(read_collection(&path, columns(spec))?.docs.len())
    };
    let (train, test) = if spec.test_path.is_empty() {
        let n = count(&spec.path)?;
        let train = kept(n, spec.test_split);
        (train, n - train)
    } else {
        (count(&spec.path)?, count(&spec.test_path)?)
    };
    let fit = kept(train, spec.validation_split);
    Ok([fit, train - fit, test])
}

/// Reads and encodes the collection of a config, as a run would, and returns
/// its classes (the check before anything runs).
pub fn check_collection(spec: &TextData) -> Result<Vec<String>> {
    let path = crate::data::series::resolve_path(&spec.path);
    let test_path =
        (!spec.test_path.is_empty()).then(|| crate::data::series::resolve_path(&spec.test_path));
    let cache_dir = crate::data::data_dir().join(".cache");
    Ok(load(spec, &path, test_path.as_deref(), &cache_dir)?
        .text
        .classes)
}

/// The encoded collection and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub text: TextArrays,
    pub from_cache: bool,
}

/// [`encode`] through the cache in `cache_dir` (the data directory's
/// `.cache/` in a run; see `text_cache`): a second cell on the same
/// collection and settings reads the encoded arrays back.
pub fn load(
    spec: &TextData,
    path: &Path,
    test_path: Option<&Path>,
    cache_dir: &Path,
) -> Result<Loaded> {
    check(spec)?;
    if spec.split_rule == TextSplitRule::KerasImdb {
        return keras_imdb(spec, path, cache_dir);
    }
    let cache = text_cache::cache_path(spec, path, test_path, cache_dir)?;
    if let Some(text) = text_cache::load(&cache) {
        if text.lossy > 0 {
            eprintln!(
                "seqlab: {}: {} document(s) or cell(s) were not valid UTF-8 and were decoded lossily (invalid bytes read as U+FFFD; from the cache)",
                path.display(),
                text.lossy
            );
        }
        return Ok(Loaded {
            text,
            from_cache: true,
        });
    }
    let text = encode(spec, path, test_path)?;
    if let Err(e) = text_cache::store(&cache, &text) {
        eprintln!("seqlab: warning: {e:#} (the data is used anyway, uncached)");
    }
    Ok(Loaded {
        text,
        from_cache: false,
    })
}

/// The IMDB settings of a `keras_imdb` collection.
pub fn as_imdb(spec: &TextData) -> crate::config::ImdbData {
    crate::config::ImdbData {
        path: spec.path.clone(),
        max_features: spec.max_features,
        maxlen: spec.maxlen,
        batch_size: spec.batch_size,
        validation_split: spec.validation_split,
        padding: spec.padding,
        truncating: spec.truncating,
        reverse: spec.reverse,
        shuffle_seed: spec.shuffle_seed,
    }
}

/// `split_rule = "keras_imdb"`: the Large Movie Review Dataset as Keras'
/// `imdb.load_data` cuts it (`imdb`, through its cache), classes `neg`, `pos`.
fn keras_imdb(spec: &TextData, path: &Path, cache_dir: &Path) -> Result<Loaded> {
    if spec.standardize != Standardize::LowerAndStripPunctuation || !spec.classes.is_empty() {
        bail!("data.split_rule = \"keras_imdb\" reads the IMDB reviews with their own classes (neg, pos) and tokenizer; leave data.standardize and data.classes unset");
    }
    let l = super::imdb::load(&as_imdb(spec), path, cache_dir)?;
    Ok(Loaded {
        text: TextArrays {
            arrays: l.arrays,
            classes: vec!["neg".into(), "pos".into()],
            vocab: l.vocab,
            lossy: 0,
        },
        from_cache: l.from_cache,
    })
}

/// Reads and encodes the collection (and its test path), without the cache.
pub fn encode(spec: &TextData, path: &Path, test_path: Option<&Path>) -> Result<TextArrays> {
    check(spec)?;
    let main = read(spec, path)?;
    let classes = classes_of(spec, path, &main.docs)?;
    let mut lossy = main.lossy;
    let id_of = |d: &Doc| classes.iter().position(|c| *c == d.label).unwrap_or(0) as u8;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.shuffle_seed);
    let (train_docs, test_docs): (Vec<Doc>, Vec<Doc>) = match test_path {
        Some(tp) => {
            let test = read(spec, tp)?;
            lossy += test.lossy;
            // The test collection may lack a class, but not hold a new one.
            if let Some(d) = test.docs.iter().find(|d| !classes.contains(&d.label)) {
                bail!(
                    "{}: label `{}` is not a class of the training collection {} ({}); fix the label or data.classes",
                    tp.display(),
                    d.label,
                    path.display(),
                    classes.join(", ")
                );
            }
            (main.docs, test.docs)
        }
        None => {
            let mut docs = main.docs;
            docs.shuffle(&mut rng);
            let at = kept(docs.len(), spec.test_split);
            let test = docs.split_off(at);
            (docs, test)
        }
    };
    let words = |ds: &[Doc]| -> Vec<String> {
        ds.par_iter()
            .map(|d| standardized_words(&d.text, spec.standardize))
            .collect()
    };
    let mut order: Vec<usize> = (0..train_docs.len()).collect();
    order.shuffle(&mut rng);
    let at = kept(train_docs.len(), spec.validation_split);
    let (fit_idx, val_idx) = order.split_at(at);
    for (name, n) in [
        ("training", fit_idx.len()),
        ("validation", val_idx.len()),
        ("test", test_docs.len()),
    ] {
        if n == 0 {
            bail!(
                "{}: {} document(s) leave the {name} split empty (validation_split = {}, test_split = {}); add documents or change the fractions",
                path.display(),
                train_docs.len() + test_docs.len(),
                spec.validation_split,
                spec.test_split
            );
        }
    }
    let train_words = words(&train_docs);
    let test_words = words(&test_docs);
    let fit_words: Vec<&String> = fit_idx.iter().map(|&i| &train_words[i]).collect();
    let vocab = Vocabulary::build(&fit_words, spec.max_features);
    let build = |idx: &mut dyn Iterator<Item = usize>, ws: &[String], ds: &[Doc]| {
        let mut s = TokenSplit::default();
        for i in idx {
            let mut ids = vocab.encode(&ws[i]);
            if spec.reverse {
                ids.reverse();
            }
            pad_into(&mut s.x, &ids, spec.maxlen, spec.padding, spec.truncating);
            s.y.push(id_of(&ds[i]));
        }
        s
    };
    let arrays = ImdbArrays {
        maxlen: spec.maxlen,
        train: build(&mut fit_idx.iter().copied(), &train_words, &train_docs),
        val: build(&mut val_idx.iter().copied(), &train_words, &train_docs),
        test: build(&mut (0..test_docs.len()), &test_words, &test_docs),
    };
    Ok(TextArrays {
        arrays,
        classes,
        vocab: super::text_state::ranked_words(&vocab),
        lossy,
    })
}
