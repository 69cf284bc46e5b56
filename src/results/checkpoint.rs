//! A running cell's checkpoint: `<experiment>/.<cell>.checkpoint/` beside
//! the cell folder (for a replicate, `.seed=<S>.checkpoint/` inside its
//! cell folder), holding `state.safetensors` (weights, optimizer buffers,
//! best weights: f32 tensors) and `state.json` (counters, generator and
//! sampler states, metrics rows so far, ids and versions; see
//! `train::checkpoint`).
//!
//! Written whole into `.<cell>.ckpt-tmp-<pid>/`, every file and the folder
//! synced, then exchanged with the previous checkpoint in one rename, so a
//! crash at any point leaves the previous checkpoint or the new one, never
//! a mix; temporary folders of dead processes are swept at the next run.
//! Read as untrusted input: sizes capped, the safetensors image parsed by
//! the checked reader of `weights`, JSON into a typed structure.
//!
//! Test hook (for tests only, never set it otherwise):
//! `SEQLAB_TEST_CHECKPOINT_FAULT=abort:N` aborts the process in the middle
//! of its N-th checkpoint write (half of `state.safetensors` written);
//! `SEQLAB_TEST_CHECKPOINT_FAULT=error:N` makes the N-th write fail as a
//! full disk would.
use super::store;
use super::weights::{self, Stored};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const TENSORS: &str = "state.safetensors";
pub const META: &str = "state.json";
/// The largest `state.json` read back.
const META_LIMIT: u64 = 256 << 20;
/// The largest `state.safetensors` read back.
const TENSORS_LIMIT: u64 = 16 << 30;
/// Name part of a checkpoint being written: `.<cell>.ckpt-tmp-<pid>`.
pub const TMP_MARK: &str = ".ckpt-tmp-";

/// `<root>/<experiment>/.<cell>.checkpoint` (the unit's name for a replicate).
pub fn dir(root: &Path, unit: &crate::config::Cell) -> PathBuf {
    beside(&store::unit_dir(root, unit), "checkpoint")
}

fn beside(cell_dir: &Path, suffix: &str) -> PathBuf {
    let name = cell_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    cell_dir.with_file_name(format!(".{name}.{suffix}"))
}

/// What a checkpoint folder holds, read back.
#[derive(Debug)]
pub struct Loaded {
    pub meta: String,
    pub tensors: BTreeMap<String, Stored>,
}

/// Reads the checkpoint at `dir`: `Ok(None)` when there is none.
pub fn read(dir: &Path) -> Result<Option<Loaded>> {
    if !dir.exists() {
        return Ok(None);
    }
    let capped = |name: &str, limit: u64| -> Result<Vec<u8>> {
        let path = dir.join(name);
        let len = std::fs::metadata(&path)
            .with_context(|| format!("{name} is missing"))?
            .len();
        if len > limit {
            bail!("{name} has {len} bytes, more than the {limit} a checkpoint may have");
        }
        std::fs::read(&path).with_context(|| format!("reading {name}"))
    };
    let meta = String::from_utf8(capped(META, META_LIMIT)?).context("state.json is not UTF-8")?;
    let tensors = weights::parse(&capped(TENSORS, TENSORS_LIMIT)?)
        .context("state.safetensors is damaged (truncated?)")?;
    Ok(Some(Loaded { meta, tensors }))
}

/// Which write of this process this is (for the test hook).
static WRITES: AtomicUsize = AtomicUsize::new(0);

/// The fault the test hook asks for at this write, if any.
fn fault() -> Option<&'static str> {
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    let spec = std::env::var("SEQLAB_TEST_CHECKPOINT_FAULT").ok()?;
    let (kind, at) = spec.split_once(':')?;
    (at.trim().parse::<usize>().ok()? == n).then_some(match kind {
        "abort" => "abort",
        _ => "error",
    })
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes a checkpoint to `dir` atomically, replacing the one there only
/// once the new one is complete and on disk; returns its size in bytes. On
/// an error nothing of the new checkpoint is left and the previous one is
/// untouched.
pub fn write(dir: &Path, meta: &str, tensors: &[(String, tch::Tensor)]) -> Result<u64> {
    let parent = dir.parent().context("a checkpoint folder has a parent")?;
    std::fs::create_dir_all(parent)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let base = name.strip_suffix(".checkpoint").unwrap_or(&name);
    let tmp = parent.join(format!("{base}{TMP_MARK}{}", std::process::id()));
    let result = write_into(&tmp, meta, tensors).and_then(|bytes| {
        replace(&tmp, dir)?;
        Ok(bytes)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.with_context(|| format!("writing the checkpoint {}", dir.display()))
}

fn write_into(tmp: &Path, meta: &str, tensors: &[(String, tch::Tensor)]) -> Result<u64> {
    if tmp.exists() {
        std::fs::remove_dir_all(tmp)?;
    }
    std::fs::create_dir_all(tmp)?;
    let fault = fault();
    let path = tmp.join(TENSORS);
    let named: Vec<(&str, &tch::Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    tch::Tensor::write_safetensors(&named, &path)?;
    if let Some(kind) = fault {
        // Half a file, as a crash or a full disk in mid-write leaves it.
        let len = std::fs::metadata(&path)?.len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)?
            .set_len(len / 2)?;
        if kind == "abort" {
            eprintln!("seqlab: test hook: aborting in the middle of a checkpoint write");
            std::process::abort();
        }
        bail!(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "No space left on device (injected by SEQLAB_TEST_CHECKPOINT_FAULT)"
        ));
    }
    std::fs::File::open(&path)?.sync_all()?;
    let mut f = std::fs::File::create(tmp.join(META))?;
    f.write_all(meta.as_bytes())?;
    f.sync_all()?;
    sync_dir(tmp)?;
    Ok(std::fs::metadata(&path)?.len() + meta.len() as u64)
}

/// Puts the complete folder `tmp` at `dir`: one exchange when there is a
/// previous checkpoint (then removed), one rename when there is none.
fn replace(tmp: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        if store::exchange(tmp, dir).is_ok() {
            std::fs::remove_dir_all(tmp)?;
        } else {
            // No atomic exchange here: the old one goes first (a crash in
            // between loses it, and the cell starts over).
            std::fs::remove_dir_all(dir)?;
            std::fs::rename(tmp, dir)?;
        }
    } else {
        std::fs::rename(tmp, dir)?;
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Removes the checkpoint at `dir` (a complete cell keeps none; `--restart`).
pub fn remove(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The last completed epoch a checkpoint folder records (for `seqlab
/// status`), without reading its tensors; `None` when unreadable.
pub fn epoch(dir: &Path) -> Option<usize> {
    if std::fs::metadata(dir.join(META)).ok()?.len() > META_LIMIT {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(META)).ok()?).ok()?;
    usize::try_from(v.get("epoch")?.as_u64()?).ok()
}
