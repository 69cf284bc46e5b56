//! The results store: where a cell's folder lives, whether it is complete
//! and current, and atomic writes.
//!
//! A cell run once lives in `<experiment>/<cell>/`; a cell with
//! `repeats = N > 1` in `<experiment>/<cell>/seed=<S>/`, one folder per
//! replicate, each a complete run folder of its own. A cell folder holds one
//! layout at a time: when a cell's replicates first run where its single run
//! lies, that run becomes replicate 0 if it is complete and current (it is
//! the same config and seed), and is removed otherwise ([`settle`]).
//!
//! A run writes into a staging folder next to its cell folder
//! (`<experiment>/.<cell>.partial-<pid>`) and swaps it in only once
//! `summary.toml` is written, so an interrupted or crashed run never damages
//! a complete folder — neither a neighbour's nor an earlier result of the
//! same cell.
use crate::config::Cell;
use std::path::{Path, PathBuf};

/// What the store holds for a cell.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Missing,
    /// Complete, and its content id matches the cell's.
    Complete,
    /// Complete, but for another config (the file changed since).
    Stale,
    Failed(String),
}

impl State {
    pub fn label(&self) -> String {
        match self {
            State::Missing => "pending".into(),
            State::Complete => "complete".into(),
            State::Stale => "stale (config changed)".into(),
            State::Failed(r) => format!("failed: {r}"),
        }
    }
}

/// `<root>/<experiment>/<cell>`, where `cell` may also be a replicate's
/// `<cell>/seed=<S>` (a unit, see [`Cell::unit`]).
pub fn cell_dir(root: &Path, experiment: &str, cell: &str) -> PathBuf {
    root.join(experiment).join(cell)
}

/// The folder of a unit: the cell's, or its replicate's inside it.
pub fn unit_dir(root: &Path, unit: &Cell) -> PathBuf {
    cell_dir(root, &unit.experiment, &unit.unit())
}

/// The parsed `summary.toml` of a folder, if there is one.
pub fn read_summary(dir: &Path) -> Option<toml::Table> {
    toml::from_str(&std::fs::read_to_string(dir.join("summary.toml")).ok()?).ok()
}

/// What the store holds for a unit. A replicate whose folder is missing but
/// whose cell folder still holds the same run (same content id, see
/// [`settle`]) counts as complete.
pub fn state(root: &Path, cell: &Cell) -> State {
    let own = read_summary(&unit_dir(root, cell));
    let summary = match (own, &cell.replicate) {
        (Some(s), _) => s,
        (None, Some(_)) => {
            let single = read_summary(&cell_dir(root, &cell.experiment, &cell.name));
            match single {
                Some(s) if is_complete_as(&s, &cell.id) => return State::Complete,
                _ => return State::Missing,
            }
        }
        (None, None) => return State::Missing,
    };
    let id = summary
        .get("content_id")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    match summary.get("status").and_then(|v| v.as_str()) {
        Some("complete") if id == cell.id => State::Complete,
        Some("complete") => State::Stale,
        _ => State::Failed(
            summary
                .get("reason")
                .and_then(|v| v.as_str())
                .unwrap_or("unknown")
                .to_string(),
        ),
    }
}

fn is_complete_as(summary: &toml::Table, id: &str) -> bool {
    summary.get("status").and_then(|v| v.as_str()) == Some("complete")
        && summary.get("content_id").and_then(|v| v.as_str()) == Some(id)
}

/// Before the replicates of a cell run: a cell folder that still holds a
/// single run (the cell had `repeats = 1`) becomes a folder of replicates.
/// The run becomes replicate 0 (`seed=<train.seed>/`) when it is complete and
/// current — the same config and seed, so the same content id — and its files
/// are removed otherwise. Replicate folders already there stay as they are.
/// The caller holds the cell's lock.
pub fn settle(root: &Path, unit: &Cell) -> std::io::Result<()> {
    let Some(r) = unit.replicate else {
        return Ok(());
    };
    let dir = cell_dir(root, &unit.experiment, &unit.name);
    let Some(summary) = read_summary(&dir) else {
        return Ok(());
    };
    let mut first = unit.config.clone();
    first.train.seed = r.base_seed;
    let id = crate::config::content_id(&first);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    // summary.toml first: from then on the single run no longer counts as complete.
    files.sort_by_key(|p| p.file_name() != Some(std::ffi::OsStr::new("summary.toml")));
    let folder = crate::config::replicate_folder(r.base_seed);
    let target = dir.join(&folder);
    if is_complete_as(&summary, &id) && !target.exists() {
        let staging = dir.join(format!(".{folder}.partial-{}", std::process::id()));
        std::fs::create_dir_all(&staging)?;
        for f in &files {
            std::fs::rename(f, staging.join(f.file_name().expect("a file name")))?;
        }
        std::fs::rename(&staging, &target)?;
    } else {
        for f in &files {
            std::fs::remove_file(f)?;
        }
    }
    Ok(())
}

/// `<pid>-<n>`: a name part no other writer in any process uses at the same time.
pub fn unique_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// Writes `bytes` to `path` through a temporary name and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        unique_suffix()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// A cell's folder being written.
pub struct Staging {
    pub dir: PathBuf,
    target: PathBuf,
}

impl Staging {
    /// Staging for the unit `cell` (`<cell>` or `<cell>/seed=<S>`) of `experiment`.
    pub fn new(root: &Path, experiment: &str, cell: &str) -> std::io::Result<Staging> {
        let target = cell_dir(root, experiment, cell);
        let parent = target.parent().expect("cell folder has a parent");
        std::fs::create_dir_all(parent)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let dir = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Staging { dir, target })
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        write_atomic(&self.dir.join(name), bytes)
    }

    /// Swaps the staged folder in (atomically where the OS allows) and
    /// removes what it replaced.
    pub fn commit(self) -> std::io::Result<PathBuf> {
        if self.target.exists() {
            if exchange(&self.dir, &self.target).is_err() {
                let old = self.dir.with_extension("old");
                std::fs::rename(&self.target, &old)?;
                std::fs::rename(&self.dir, &self.target)?;
                std::fs::remove_dir_all(&old)?;
                return Ok(self.target);
            }
            std::fs::remove_dir_all(&self.dir)?;
        } else {
            std::fs::rename(&self.dir, &self.target)?;
        }
        Ok(self.target)
    }

    /// Drops the staged files (interrupted run).
    pub fn discard(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Atomically exchanges two paths (Linux `renameat2(RENAME_EXCHANGE)`).
pub(crate) fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let ca = CString::new(a.as_os_str().as_bytes())?;
        let cb = CString::new(b.as_os_str().as_bytes())?;
        // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them relative to the cwd.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        Err(std::io::Error::last_os_error())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Err(std::io::Error::other("no atomic exchange on this OS"))
    }
}

/// Removes staging folders (and half-written checkpoints) left by
/// processes that no longer run, beside cell folders and beside replicate
/// folders inside them. Checkpoints themselves (`.<cell>.checkpoint`) stay.
pub fn sweep_stale_partials(root: &Path) {
    let Ok(experiments) = std::fs::read_dir(root) else {
        return;
    };
    for exp in experiments.flatten() {
        sweep_partials_in(&exp.path(), 1);
    }
}

fn sweep_partials_in(dir: &Path, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if depth > 0 && !name.starts_with('.') && e.path().is_dir() {
            sweep_partials_in(&e.path(), depth - 1);
            continue;
        }
        // Staging folders, and checkpoints a dead process was writing.
        if let Some(pid) = name
            .rsplit_once(".partial-")
            .or_else(|| name.rsplit_once(super::checkpoint::TMP_MARK))
            .and_then(|(_, p)| p.parse::<i32>().ok())
        {
            // SAFETY: kill with signal 0 only checks whether the process exists.
            let alive = unsafe { libc::kill(pid, 0) } == 0;
            if !alive {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
