//! Reads the Large Movie Review Dataset (`aclImdb`) from its `.tar.gz`
//! (streamed, never unpacked to disk) or from an unpacked `aclImdb/` folder.
//!
//! Only `train/{pos,neg}/*.txt` and `test/{pos,neg}/*.txt` are read (`unsup`
//! and everything else is ignored). Order is deterministic: within a split,
//! all `pos` reviews then all `neg` ones, each folder sorted by the numeric id
//! in the file name (`<id>_<rating>.txt`), then by name. Labels: pos = 1, neg = 0.
use crate::data::archive::for_each_tar_gz_file;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// One review's text and label (1 = positive).
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub label: u8,
    pub text: String,
}

/// Reviews of the train and test splits, in the documented order.
#[derive(Debug, Clone, Default)]
pub struct Reviews {
    pub train: Vec<Review>,
    pub test: Vec<Review>,
}

/// Where a review file lies: (split, label, file name) from a path like
/// `aclImdb/train/pos/12_8.txt`.
fn classify(path: &str) -> Option<(bool, u8, &str)> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let [.., split, label, name] = parts.as_slice() else {
        return None;
    };
    if parts.len() != 4 || !name.ends_with(".txt") {
        return None;
    }
    let train = match *split {
        "train" => true,
        "test" => false,
        _ => return None,
    };
    let label = match *label {
        "pos" => 1,
        "neg" => 0,
        _ => return None,
    };
    Some((train, label, name))
}

fn sort_key(name: &str) -> (u64, String) {
    let id = name.split(['_', '.']).next().and_then(|s| s.parse().ok());
    (id.unwrap_or(u64::MAX), name.to_string())
}

/// Reads the reviews from `aclImdb_v1.tar.gz` (any `*.tar.gz`) or an unpacked folder.
pub fn read_reviews(source: &Path) -> Result<Reviews> {
    let mut found: Vec<(bool, u8, (u64, String), String)> = Vec::new();
    if source.is_dir() {
        for (split, train) in [("train", true), ("test", false)] {
            for (label_dir, label) in [("pos", 1u8), ("neg", 0u8)] {
                let dir = source.join(split).join(label_dir);
                let names = list_txt(&dir)?;
                let texts: Vec<Result<(String, String)>> = names
                    .into_par_iter()
                    .map(|name| {
                        let p = dir.join(&name);
                        let text = std::fs::read_to_string(&p)
                            .with_context(|| format!("cannot read review {}", p.display()))?;
                        Ok((name, text))
                    })
                    .collect();
                for t in texts {
                    let (name, text) = t?;
                    found.push((train, label, sort_key(&name), text));
                }
            }
        }
    } else {
        for_each_tar_gz_file(source, |path, reader| {
            if let Some((train, label, name)) = classify(path) {
                let mut text = String::new();
                reader.read_to_string(&mut text).with_context(|| {
                    format!(
                        "{}: cannot read {path} (not UTF-8 text, or a damaged archive)",
                        source.display()
                    )
                })?;
                found.push((train, label, sort_key(name), text));
            }
            Ok(())
        })?;
    }
    // pos (label 1) before neg, then by id
    found.sort_by(|a, b| (b.0, b.1, &a.2).cmp(&(a.0, a.1, &b.2)));
    let mut reviews = Reviews::default();
    for (train, label, _, text) in found {
        let r = Review { label, text };
        if train {
            reviews.train.push(r);
        } else {
            reviews.test.push(r);
        }
    }
    if reviews.train.is_empty() || reviews.test.is_empty() {
        bail!(
            "{}: found {} training and {} test reviews; expected the aclImdb layout \
             (aclImdb/train/{{pos,neg}}/*.txt, aclImdb/test/{{pos,neg}}/*.txt); \
             point data.path at aclImdb_v1.tar.gz or the unpacked aclImdb folder",
            source.display(),
            reviews.train.len(),
            reviews.test.len()
        );
    }
    Ok(reviews)
}

fn list_txt(dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!("cannot list {}; an unpacked aclImdb folder needs train/pos, train/neg, test/pos and test/neg", dir.display())
    })?;
    let mut names = Vec::new();
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".txt") && e.file_type()?.is_file() {
            names.push(name);
        }
    }
    Ok(names)
}

/// A fingerprint of an unpacked folder: its review files' names, sizes and
/// modification times (the cache key of a folder source).
pub fn folder_listing(dir: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for split in ["train", "test"] {
        for label in ["pos", "neg"] {
            let d: PathBuf = dir.join(split).join(label);
            let mut names = list_txt(&d)?;
            names.sort();
            for n in names {
                let m = std::fs::metadata(d.join(&n))?;
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                out.extend(format!("{split}/{label}/{n}\t{}\t{mtime}\n", m.len()).bytes());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_train_and_test_pos_neg_are_reviews() {
        assert_eq!(
            classify("aclImdb/train/pos/3_9.txt"),
            Some((true, 1, "3_9.txt"))
        );
        assert_eq!(
            classify("aclImdb/test/neg/0_2.txt"),
            Some((false, 0, "0_2.txt"))
        );
        assert_eq!(classify("aclImdb/train/unsup/0_0.txt"), None);
        assert_eq!(classify("aclImdb/imdb.vocab"), None);
        assert_eq!(classify("aclImdb/train/labeledBow.feat"), None);
        assert!(sort_key("10_1.txt") > sort_key("9_3.txt"));
    }
}
