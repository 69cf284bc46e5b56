//! What a trained text model needs to encode new text the way its training
//! text was encoded: `text.toml` (classes, standardisation, sizes, padding,
//! reversal) and `vocab.txt` (line `i`, from 0, is token id `i`: `<pad>`,
//! `<start>`, `<oov>`, then the kept words by rank). Written into the cell
//! folder by a run, read back by `seqlab predict`.
use crate::config::{Side, Standardize};
use crate::data::pad::pad_into;
use crate::data::tokenize::standardized_words;
use crate::data::vocab::{Vocabulary, FIRST_WORD};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The file names in a cell folder.
pub const TEXT_TOML: &str = "text.toml";
pub const VOCAB_TXT: &str = "vocab.txt";
const RESERVED: [&str; 3] = ["<pad>", "<start>", "<oov>"];

/// `text.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextState {
    /// Class names in id order.
    pub classes: Vec<String>,
    pub standardize: Standardize,
    pub max_features: usize,
    pub maxlen: usize,
    pub padding: Side,
    pub truncating: Side,
    /// Each document's ids reversed before padding (the book's reversed IMDB).
    #[serde(default)]
    pub reverse: bool,
    #[serde(default = "d_vocabulary")]
    pub vocabulary: String,
    #[serde(default)]
    pub ids: String,
}

fn d_vocabulary() -> String {
    VOCAB_TXT.into()
}

impl TextState {
    pub fn new(classes: Vec<String>, standardize: Standardize, sizes: (usize, usize)) -> Self {
        TextState {
            classes,
            standardize,
            max_features: sizes.0,
            maxlen: sizes.1,
            padding: Side::Pre,
            truncating: Side::Pre,
            reverse: false,
            vocabulary: d_vocabulary(),
            ids: "0 padding, 1 start of every document, 2 out of vocabulary, words from 3 (vocab.txt line = id)".into(),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// `vocab.txt` for the kept words in id order (`words[i]` has id `i + 3`).
pub fn vocab_txt(words: &[String]) -> String {
    let mut s = RESERVED.join("\n");
    s.push('\n');
    for w in words {
        s.push_str(w);
        s.push('\n');
    }
    s
}

/// The kept words of `vocab`, in id order.
pub fn ranked_words(vocab: &Vocabulary) -> Vec<String> {
    let mut ranked: Vec<(&String, &i32)> = vocab.index.iter().collect();
    ranked.sort_by_key(|(_, &i)| i);
    debug_assert!(ranked.first().is_none_or(|(_, &i)| i == FIRST_WORD));
    ranked.into_iter().map(|(w, _)| w.clone()).collect()
}

/// A saved encoder: the state and its vocabulary, checked against each other.
#[derive(Debug, Clone)]
pub struct Encoder {
    pub state: TextState,
    vocab: Vocabulary,
}

impl Encoder {
    /// From the two files' texts; `file` names `vocab.txt` in errors.
    pub fn parse(state: TextState, vocab_txt: &str, file: &str) -> Result<Encoder> {
        let mut lines = vocab_txt.lines();
        for (i, want) in RESERVED.iter().enumerate() {
            if lines.next() != Some(want) {
                bail!(
                    "{file}: line {} should be {want}; the file is damaged — rerun the cell",
                    i + 1
                );
            }
        }
        let mut index = HashMap::new();
        for (k, w) in lines.enumerate() {
            let id = FIRST_WORD as usize + k;
            if id >= state.max_features {
                bail!(
                    "{file}: {} ids but text.toml says max_features = {}; the files do not belong together — rerun the cell",
                    id + 1,
                    state.max_features
                );
            }
            if w.is_empty() || index.insert(w.to_string(), id as i32).is_some() {
                bail!("{file}: line {}: empty or repeated word {w:?}; the file is damaged — rerun the cell", id + 1);
            }
        }
        if state.classes.len() < 2 {
            bail!("text.toml: {} class(es); a classifier has at least 2 — the file is damaged, rerun the cell", state.classes.len());
        }
        Ok(Encoder {
            state,
            vocab: Vocabulary { index },
        })
    }

    /// Token ids (the vocabulary's size, reserved ids included).
    pub fn size(&self) -> usize {
        self.vocab.index.len() + FIRST_WORD as usize
    }

    /// One document as a padded row of `maxlen` ids, as training encoded it.
    pub fn encode(&self, text: &str) -> Vec<i32> {
        let s = &self.state;
        let mut ids = self.vocab.encode(&standardized_words(text, s.standardize));
        if s.reverse {
            ids.reverse();
        }
        let mut row = Vec::with_capacity(s.maxlen);
        pad_into(&mut row, &ids, s.maxlen, s.padding, s.truncating);
        row
    }
}
