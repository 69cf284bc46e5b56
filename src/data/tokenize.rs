//! The IMDB tokenizer: lowercase, `<br />` read as a space, and words are runs
//! of letters, digits and apostrophes (any Unicode letter). A run made of
//! apostrophes only (a stray quote mark) is not a word.
//!
//! `"It's <br />GREAT, 10/10!"` → `["it's", "great", "10", "10"]`.

use crate::config::Standardize;

/// Bumped whenever the rules above change: it is part of the cache key.
pub const TOKENIZER_VERSION: u32 = 1;

/// The review's words joined by single spaces (a compact form that keeps
/// 50,000 tokenized reviews in about the size of their text).
pub fn normalised_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word_start = 0;
    let mut has_alnum = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '<' && (rest.starts_with("<br />") || rest.starts_with("<br/>")) {
            end_word(&mut out, &mut word_start, &mut has_alnum);
            rest = &rest[if rest.starts_with("<br />") { 6 } else { 5 }..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        if c.is_alphanumeric() || c == '\'' {
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
            has_alnum |= c != '\'';
        } else {
            end_word(&mut out, &mut word_start, &mut has_alnum);
        }
    }
    end_word(&mut out, &mut word_start, &mut has_alnum);
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

fn end_word(out: &mut String, word_start: &mut usize, has_alnum: &mut bool) {
    if out.len() > *word_start {
        if *has_alnum {
            out.push(' ');
        } else {
            out.truncate(*word_start);
        }
    }
    *word_start = out.len();
    *has_alnum = false;
}

/// The document's words joined by single spaces, under one of Keras
/// TextVectorization's `standardize` modes: `lower_and_strip_punctuation` is
/// the IMDB tokenizer above; `lower` and `none` split on whitespace only.
pub fn standardized_words(text: &str, mode: Standardize) -> String {
    match mode {
        Standardize::LowerAndStripPunctuation => normalised_words(text),
        Standardize::Lower => text
            .split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" "),
        Standardize::None => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// The words of a normalised review.
pub fn words(normalised: &str) -> impl Iterator<Item = &str> {
    normalised.split(' ').filter(|w| !w.is_empty())
}

/// The review's words.
pub fn tokenize(text: &str) -> Vec<String> {
    words(&normalised_words(text)).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercase_runs_of_letters_digits_apostrophes() {
        assert_eq!(
            tokenize("It's <br />GREAT, 10/10!<br /><br />Ünïcode déjà-vu ' '' x"),
            ["it's", "great", "10", "10", "ünïcode", "déjà", "vu", "x"]
        );
        assert_eq!(tokenize("a<br />b"), ["a", "b"]);
        assert!(tokenize("  ...  ").is_empty());
    }

    #[test]
    fn standardize_modes() {
        let t = "Hi, THERE  you!";
        assert_eq!(
            standardized_words(t, Standardize::LowerAndStripPunctuation),
            "hi there you"
        );
        assert_eq!(standardized_words(t, Standardize::Lower), "hi, there you!");
        assert_eq!(standardized_words(t, Standardize::None), "Hi, THERE you!");
    }
}
