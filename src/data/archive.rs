//! Rules for reading untrusted archives (the downloads): entry names must be
//! relative and stay inside the archive (no absolute path, no `..`), links are
//! refused, and entry and total sizes are capped. Nothing is ever executed.
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// Largest single file we read from an archive.
pub const MAX_ENTRY_BYTES: u64 = 512 << 20;
/// Largest total (uncompressed) size of an archive.
pub const MAX_TOTAL_BYTES: u64 = 2 << 30;

/// Checks an entry name (as stored, `/`-separated).
pub fn check_name(archive: &Path, name: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(name);
    let bad = name.is_empty()
        || name[0] == b'/'
        || name[0] == b'\\'
        || text.contains(':')
        || text.split(['/', '\\']).any(|c| c == "..");
    if bad {
        bail!(
            "{}: unsafe entry name {text:?} (absolute, or leaving the archive with `..`); \
             the archive is not the official one: delete it and download it again",
            archive.display()
        );
    }
    Ok(())
}

/// Calls `each(relative path, size, reader)` for every regular file of a
/// `.tar.gz`, after the safety checks; the reader is capped at `MAX_ENTRY_BYTES`.
pub fn for_each_tar_gz_file(
    archive: &Path,
    mut each: impl FnMut(&str, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let file = std::fs::File::open(archive)
        .with_context(|| format!("cannot open {}", archive.display()))?;
    let gz = flate2::read::GzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file));
    let mut tar = tar::Archive::new(gz);
    let mut total = 0u64;
    let entries = tar
        .entries()
        .with_context(|| format!("{}: not a tar.gz archive", archive.display()))?;
    for entry in entries {
        let mut entry = entry.with_context(|| {
            format!(
                "{}: damaged or truncated archive; delete it and download it again",
                archive.display()
            )
        })?;
        let name = entry.path_bytes().into_owned();
        check_name(archive, &name)?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            bail!(
                "{}: entry {:?} is a link; links are refused in downloaded archives",
                archive.display(),
                String::from_utf8_lossy(&name)
            );
        }
        let size = entry.size();
        total += size;
        if size > MAX_ENTRY_BYTES || total > MAX_TOTAL_BYTES {
            bail!(
                "{}: entry {:?} is too large ({size} bytes; {total} in all); the archive is not the official one",
                archive.display(),
                String::from_utf8_lossy(&name)
            );
        }
        if !kind.is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&name).into_owned();
        each(&name, &mut (&mut entry).take(MAX_ENTRY_BYTES))?;
    }
    Ok(())
}

/// Extracts the single `.csv` file of a zip archive to `out`.
pub fn extract_single_csv(archive: &Path, out: &Path) -> Result<()> {
    let file = std::fs::File::open(archive)
        .with_context(|| format!("cannot open {}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(file).with_context(|| {
        format!(
            "{}: not a zip archive (damaged or truncated download)",
            archive.display()
        )
    })?;
    let mut found = None;
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = zip.by_index(i)?;
        check_name(archive, entry.name().as_bytes())?;
        if entry.is_symlink() {
            bail!(
                "{}: entry {:?} is a link; refused",
                archive.display(),
                entry.name()
            );
        }
        total += entry.size();
        if entry.size() > MAX_ENTRY_BYTES || total > MAX_TOTAL_BYTES {
            bail!(
                "{}: entry {:?} is too large ({} bytes)",
                archive.display(),
                entry.name(),
                entry.size()
            );
        }
        if entry.is_file() && entry.name().ends_with(".csv") && !entry.name().contains("__MACOSX") {
            if found.is_some() {
                bail!(
                    "{}: more than one CSV file in the archive",
                    archive.display()
                );
            }
            found = Some(i);
        }
    }
    let Some(i) = found else {
        bail!("{}: no CSV file in the archive", archive.display());
    };
    let mut entry = zip.by_index(i)?;
    let mut dst =
        std::fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    let copied = std::io::copy(&mut (&mut entry).take(MAX_ENTRY_BYTES + 1), &mut dst)
        .with_context(|| format!("{}: cannot unzip {:?}", archive.display(), entry.name()))?;
    if copied > MAX_ENTRY_BYTES {
        bail!(
            "{}: {:?} is larger than its header says",
            archive.display(),
            entry.name()
        );
    }
    dst.sync_all()?;
    Ok(())
}
