//! The on-disk cache of an encoded text collection (`source = "text"`), so
//! that a second cell on the same collection does not re-read and
//! re-tokenize it — as the IMDB preset's cache (`imdb_cache`) does.
//!
//! File: `<data directory>/.cache/text-<key>.bin`. The key hashes every
//! setting that shapes the arrays (tokenizer version, standardize, classes,
//! columns, max_features, maxlen, padding, truncating, splits, shuffle seed)
//! and the CONTENT of the collection and its test path: a file's SHA-256,
//! or, for a folder, every file's relative name and SHA-256 — so an edited
//! document invalidates the cache even when its size and time are unchanged.
//! Layout: magic, the arrays as IMDB's cache lays them out, then the class
//! list, vocabulary and lossy count (JSON), then the SHA-256 of everything
//! before it. A file that does not check out is ignored and rebuilt.
use crate::config::{Side, TextData};
use crate::data::imdb_cache::{
    append_arrays, hex, read_arrays, read_checked, sha256_file, write_checked,
};
use crate::data::text::TextArrays;
use crate::data::tokenize::TOKENIZER_VERSION;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 12] = b"SEQLABTEXT\x00\x01";

/// What the cache keeps beside the arrays.
#[derive(Serialize, Deserialize)]
struct Meta {
    classes: Vec<String>,
    vocab: Vec<String>,
    lossy: usize,
}

/// Every file under `dir` (recursively), sorted by relative path.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("cannot list {}", d.display()))?;
            let kind = e.file_type()?;
            if kind.is_dir() {
                stack.push(e.path());
            } else if kind.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The content hash of a collection path: a file's SHA-256, or a folder's
/// relative names with each file's SHA-256 (files hashed in parallel).
pub fn content_hash(path: &Path) -> Result<String> {
    if !path.is_dir() {
        return sha256_file(path);
    }
    let files = files_under(path)?;
    let sums: Vec<String> = files
        .par_iter()
        .map(|f| sha256_file(f))
        .collect::<Result<_>>()?;
    let mut h = Sha256::new();
    for (f, sum) in files.iter().zip(sums) {
        let rel = f.strip_prefix(path).unwrap_or(f);
        h.update(format!("{}\t{sum}\n", rel.display()).as_bytes());
    }
    Ok(hex(&h.finalize()))
}

/// The cache file for these settings and these collection paths.
pub fn cache_path(
    spec: &TextData,
    path: &Path,
    test_path: Option<&Path>,
    dir: &Path,
) -> Result<PathBuf> {
    let side = |s: Side| if s == Side::Pre { "pre" } else { "post" };
    let mut h = Sha256::new();
    h.update(
        format!(
            "text-cache v1 tokenizer {TOKENIZER_VERSION} standardize {:?} classes {:?} text_column {:?} label_column {:?} \
             max_features {} maxlen {} padding {} truncating {} validation_split {} test_split {} shuffle_seed {} reverse {}\n",
            spec.standardize,
            spec.classes,
            spec.text_column,
            spec.label_column,
            spec.max_features,
            spec.maxlen,
            side(spec.padding),
            side(spec.truncating),
            spec.validation_split.to_bits(),
            spec.test_split.to_bits(),
            spec.shuffle_seed,
            spec.reverse,
        )
        .as_bytes(),
    );
    h.update(format!("path {}\n", content_hash(path)?).as_bytes());
    if let Some(t) = test_path {
        h.update(format!("test_path {}\n", content_hash(t)?).as_bytes());
    }
    let key = hex(&h.finalize()[..12]);
    Ok(dir.join(format!("text-{key}.bin")))
}

/// The encoded collection in the cache file, or `None` if it is missing or
/// does not check out.
pub fn load(path: &Path) -> Option<TextArrays> {
    let body = read_checked(path, MAGIC)?;
    let mut r: &[u8] = &body;
    let arrays = read_arrays(&mut r)?;
    let meta: Meta = serde_json::from_slice(r).ok()?;
    Some(TextArrays {
        arrays,
        classes: meta.classes,
        vocab: meta.vocab,
        lossy: meta.lossy,
    })
}

/// Writes the cache file atomically.
pub fn store(path: &Path, t: &TextArrays) -> Result<()> {
    let mut body = MAGIC.to_vec();
    append_arrays(&mut body, &t.arrays);
    let meta = Meta {
        classes: t.classes.clone(),
        vocab: t.vocab.clone(),
        lossy: t.lossy,
    };
    body.extend(serde_json::to_vec(&meta)?);
    write_checked(path, body).context("cannot write the text cache")
}
