//! Where the datasets live and how they get there: the data folder
//! (`SEQLAB_DATA`, else `data/`), an explicit `data.path`, or a download from
//! the official URL (overridable with `SEQLAB_JENA_URL` / `SEQLAB_IMDB_URL`),
//! verified before it is put in place.
use crate::data::archive::extract_single_csv;
use crate::data::download::{download_to_temp, TempPath, MAX_DOWNLOAD_BYTES};
use crate::data::imdb_cache::sha256_file;
use crate::data::jena::{read_csv, HEADER, OFFICIAL_ROWS};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub const JENA_FILE: &str = "jena_climate_2009_2016.csv";
/// The zip the Keras URL serves; put in the data folder by hand, it is unzipped on first use.
pub const JENA_ZIP: &str = "jena_climate_2009_2016.csv.zip";
pub const IMDB_FILE: &str = "aclImdb_v1.tar.gz";
pub const IMDB_DIR: &str = "aclImdb";
pub const JENA_URL: &str = "https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip";
pub const IMDB_URL: &str = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz";
pub const IMDB_SHA256: &str = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe";

/// `SEQLAB_DATA` if set (and not empty), else `data/`.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("SEQLAB_DATA") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("data"),
    }
}

pub fn jena_url() -> String {
    std::env::var("SEQLAB_JENA_URL").unwrap_or_else(|_| JENA_URL.to_string())
}

pub fn imdb_url() -> String {
    std::env::var("SEQLAB_IMDB_URL").unwrap_or_else(|_| IMDB_URL.to_string())
}

fn explicit(path: &str, what: &str) -> Result<PathBuf> {
    let p = PathBuf::from(path);
    if !p.exists() {
        bail!(
            "data.path = {path:?}: no such {what}; fix data.path, or leave it empty to use the data folder ({})",
            data_dir().display()
        );
    }
    Ok(p)
}

/// The Jena CSV for `data.path` (empty: the data folder's; else unzipped from
/// the data folder's `jena_climate_2009_2016.csv.zip`; else downloaded).
pub fn locate_jena(path: &str, dir: &Path) -> Result<PathBuf> {
    if !path.is_empty() {
        return explicit(path, "file");
    }
    let p = dir.join(JENA_FILE);
    let zip = dir.join(JENA_ZIP);
    if !p.exists() {
        if zip.is_file() {
            install_jena_zip(&zip, dir, Some(OFFICIAL_ROWS))
                .with_context(|| format!("cannot use {}", zip.display()))?;
        } else {
            fetch_jena_from(&jena_url(), dir, Some(OFFICIAL_ROWS))?;
        }
    }
    Ok(p)
}

/// The IMDB archive or unpacked folder for `data.path` (empty: the data
/// folder's `aclImdb_v1.tar.gz`, else its `aclImdb/`, else a download).
pub fn locate_imdb(path: &str, dir: &Path) -> Result<PathBuf> {
    if !path.is_empty() {
        return explicit(path, "file or folder");
    }
    let archive = dir.join(IMDB_FILE);
    if archive.is_file() {
        return Ok(archive);
    }
    let folder = dir.join(IMDB_DIR);
    if folder.is_dir() {
        return Ok(folder);
    }
    fetch_imdb_from(&imdb_url(), dir, Some(IMDB_SHA256))?;
    Ok(archive)
}

/// Downloads the Jena zip from `url`, unzips its single CSV, checks the
/// header (and the row count, when given) and puts it at `dir/jena_climate_2009_2016.csv`.
pub fn fetch_jena_from(url: &str, dir: &Path, expected_rows: Option<usize>) -> Result<PathBuf> {
    let zip = download_to_temp(url, dir, &dir.join(JENA_ZIP), MAX_DOWNLOAD_BYTES)?;
    install_jena_zip(zip.path(), dir, expected_rows)
        .with_context(|| format!("the download from {url} is not the Jena record"))
}

/// Unzips the Jena CSV from `zip` (a download, or a zip put in the data
/// folder by hand), verifies it and puts it at `dir/jena_climate_2009_2016.csv`.
pub fn install_jena_zip(zip: &Path, dir: &Path, expected_rows: Option<usize>) -> Result<PathBuf> {
    let dest = dir.join(JENA_FILE);
    let csv = TempPath::new(dir, JENA_FILE);
    extract_single_csv(zip, csv.path())?;
    let table = read_csv(csv.path()).context("the unzipped CSV does not parse")?;
    let header: Vec<&str> = HEADER[1..].to_vec();
    if table.columns != header {
        bail!(
            "the unzipped CSV has columns {:?}, not Jena's {header:?}",
            table.columns
        );
    }
    if let Some(rows) = expected_rows.filter(|&r| r != table.rows) {
        bail!(
            "the unzipped CSV has {} rows, not {rows}; {}",
            table.rows,
            crate::data::download::by_hand(JENA_URL, &dir.join(JENA_ZIP))
        );
    }
    csv.persist(&dest)?;
    Ok(dest)
}

/// Downloads the IMDB archive from `url`, checks its SHA-256 (when given) and
/// puts it at `dir/aclImdb_v1.tar.gz`.
pub fn fetch_imdb_from(url: &str, dir: &Path, expected_sha256: Option<&str>) -> Result<PathBuf> {
    let dest = dir.join(IMDB_FILE);
    let tmp = download_to_temp(url, dir, &dest, MAX_DOWNLOAD_BYTES)?;
    let sum = sha256_file(tmp.path())?;
    if let Some(want) = expected_sha256.filter(|w| !w.eq_ignore_ascii_case(&sum)) {
        bail!(
            "the archive downloaded from {url} has SHA-256 {sum}, not {want}: corrupt or not the official file; \
             try again, or {}",
            crate::data::download::by_hand(IMDB_URL, &dest)
        );
    }
    tmp.persist(&dest)?;
    Ok(dest)
}

/// Downloads whichever of the two datasets is missing from `dir`.
pub fn fetch_all(dir: &Path) -> Result<()> {
    locate_jena("", dir)?;
    locate_imdb("", dir)?;
    Ok(())
}

/// What is in `dir`: files, row and review counts, SHA-256.
pub fn info(dir: &Path) -> Result<String> {
    let mut out = format!("data folder: {}\n", dir.display());
    let jena = dir.join(JENA_FILE);
    if jena.is_file() {
        let table = read_csv(&jena)?;
        out += &format!(
            "jena: {} ({} rows{}, {} to {}) sha256 {}\n",
            jena.display(),
            table.rows,
            if table.rows == OFFICIAL_ROWS {
                ""
            } else {
                ", not the official 420,551"
            },
            table.timestamps.first().map(String::as_str).unwrap_or("-"),
            table.timestamps.last().map(String::as_str).unwrap_or("-"),
            sha256_file(&jena)?
        );
    } else {
        out += &format!("jena: missing ({JENA_FILE}; `seqlab data fetch` downloads it)\n");
    }
    let archive = dir.join(IMDB_FILE);
    let folder = dir.join(IMDB_DIR);
    let source = if archive.is_file() {
        Some(archive)
    } else if folder.is_dir() {
        Some(folder)
    } else {
        None
    };
    match source {
        Some(src) => {
            let r = crate::data::reviews::read_reviews(&src)?;
            let sum = if src.is_file() {
                let s = sha256_file(&src)?;
                let official = if s == IMDB_SHA256 { " (official)" } else { "" };
                format!(" sha256 {s}{official}")
            } else {
                String::new()
            };
            out += &format!(
                "imdb: {} ({} training, {} test reviews){sum}\n",
                src.display(),
                r.train.len(),
                r.test.len()
            );
        }
        None => {
            out += &format!(
                "imdb: missing ({IMDB_FILE} or {IMDB_DIR}/; `seqlab data fetch` downloads it)\n"
            )
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_follows_seqlab_data() {
        let old = std::env::var_os("SEQLAB_DATA");
        std::env::set_var("SEQLAB_DATA", "/somewhere/else");
        assert_eq!(data_dir(), PathBuf::from("/somewhere/else"));
        std::env::set_var("SEQLAB_DATA", "");
        assert_eq!(data_dir(), PathBuf::from("data"));
        match old {
            Some(v) => std::env::set_var("SEQLAB_DATA", v),
            None => std::env::remove_var("SEQLAB_DATA"),
        }
    }
}
