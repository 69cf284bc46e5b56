//! The on-disk cache of encoded IMDB arrays, so that a second run does not
//! re-read and re-tokenize 50,000 reviews.
//!
//! File: `<data directory>/.cache/imdb-<key>.bin`, where the key hashes
//! every setting that shapes the arrays (tokenizer version, max_features,
//! maxlen, padding, truncating, reverse, shuffle seed, validation split) and
//! the source (the archive's SHA-256, or an unpacked folder's listing).
//! Layout: magic, maxlen, three splits (count, `u16`/`i32` ids, `u8` labels),
//! then the SHA-256 of everything before it. Written to a temporary file and
//! renamed; a file that does not check out is ignored and rebuilt.
use crate::config::{ImdbData, Side};
use crate::data::reviews::folder_listing;
use crate::data::tokenize::TOKENIZER_VERSION;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 12] = b"SEQLABIMDB\x00\x01";

/// One split: `x` is `(n, maxlen)` row-major token ids, `y` the labels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenSplit {
    pub x: Vec<i32>,
    pub y: Vec<u8>,
}

impl TokenSplit {
    pub fn len(&self) -> usize {
        self.y.len()
    }
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// The three encoded splits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImdbArrays {
    pub maxlen: usize,
    pub train: TokenSplit,
    pub val: TokenSplit,
    pub test: TokenSplit,
}

/// SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache file for these settings and this source.
pub fn cache_path(spec: &ImdbData, source: &Path, dir: &Path) -> Result<PathBuf> {
    let mut h = Sha256::new();
    let side = |s: Side| if s == Side::Pre { "pre" } else { "post" };
    h.update(
        format!(
            "imdb-cache v2 tokenizer {TOKENIZER_VERSION} max_features {} maxlen {} padding {} truncating {} \
             reverse {} shuffle_seed {} validation_split {}\n",
            spec.max_features,
            spec.maxlen,
            side(spec.padding),
            side(spec.truncating),
            spec.reverse,
            spec.shuffle_seed,
            spec.validation_split.to_bits()
        )
        .as_bytes(),
    );
    if source.is_dir() {
        h.update(folder_listing(source)?);
    } else {
        h.update(sha256_file(source)?.as_bytes());
    }
    let key = hex(&h.finalize()[..12]);
    Ok(dir.join(format!("imdb-{key}.bin")))
}

/// The arrays in the cache file, or `None` if it is missing or does not check out.
pub fn load(path: &Path) -> Option<ImdbArrays> {
    let mut r: &[u8] = &read_checked(path, MAGIC)?;
    let arrays = read_arrays(&mut r)?;
    r.is_empty().then_some(arrays)
}

/// The body of a checksummed cache file after `magic`, or `None` if the
/// file is missing, damaged or of another kind.
pub(crate) fn read_checked(path: &Path, magic: &[u8]) -> Option<Vec<u8>> {
    let mut bytes = std::fs::read(path).ok()?;
    if bytes.len() < magic.len() + 32 {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum || !body.starts_with(magic) {
        return None;
    }
    bytes.truncate(bytes.len() - 32);
    bytes.drain(..magic.len());
    Some(bytes)
}

/// Encoded arrays as [`append_arrays`] wrote them, advancing `r`.
pub(crate) fn read_arrays(r: &mut &[u8]) -> Option<ImdbArrays> {
    let maxlen = read_u64(r)? as usize;
    let wide = read_u64(r)? == 1;
    let mut split = || -> Option<TokenSplit> {
        let n = read_u64(r)? as usize;
        let ids = n.checked_mul(maxlen)?;
        let width = if wide { 4 } else { 2 };
        let raw = take(r, ids.checked_mul(width)?)?;
        let x = if wide {
            raw.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            raw.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as i32)
                .collect()
        };
        let y = take(r, n)?.to_vec();
        Some(TokenSplit { x, y })
    };
    let (train, val, test) = (split()?, split()?, split()?);
    Some(ImdbArrays {
        maxlen,
        train,
        val,
        test,
    })
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if r.len() < n {
        return None;
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Some(head)
}

fn read_u64(r: &mut &[u8]) -> Option<u64> {
    take(r, 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()))
}

/// Writes the cache file atomically (temporary file, then rename).
pub fn store(path: &Path, arrays: &ImdbArrays) -> Result<()> {
    let mut body = MAGIC.to_vec();
    append_arrays(&mut body, arrays);
    write_checked(path, body).context("cannot write the IMDB cache")
}

/// Appends `arrays`: maxlen, id width, then per split its count, ids
/// (`u16`, or `i32` when an id does not fit) and labels.
pub(crate) fn append_arrays(body: &mut Vec<u8>, arrays: &ImdbArrays) {
    let wide = arrays
        .train
        .x
        .iter()
        .chain(&arrays.val.x)
        .chain(&arrays.test.x)
        .any(|&v| !(0..=u16::MAX as i32).contains(&v));
    body.extend_from_slice(&(arrays.maxlen as u64).to_le_bytes());
    body.extend_from_slice(&(wide as u64).to_le_bytes());
    for s in [&arrays.train, &arrays.val, &arrays.test] {
        body.extend_from_slice(&(s.len() as u64).to_le_bytes());
        for &v in &s.x {
            if wide {
                body.extend_from_slice(&v.to_le_bytes());
            } else {
                body.extend_from_slice(&(v as u16).to_le_bytes());
            }
        }
        body.extend_from_slice(&s.y);
    }
}

/// Writes `body` and its SHA-256 to `path` atomically (temporary file, then rename).
pub(crate) fn write_checked(path: &Path, body: Vec<u8>) -> Result<()> {
    let sum = Sha256::digest(&body);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        crate::results::store::unique_suffix()
    ));
    let write = || -> Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.write_all(&sum)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    };
    write()
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("{}", path.display()))
}
