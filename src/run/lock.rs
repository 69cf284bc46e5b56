//! Per-cell lock files, so two seqlab processes (two terminals, two Slurm
//! tasks) never run the same cell at once. `flock` locks vanish with their
//! process, so a killed run never leaves a cell locked.
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// A held lock; released when dropped.
pub struct CellLock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the lock of a cell (`<experiment>/.<cell>.lock`) or of one of its
/// replicates (`cell` = `<cell>/seed=<S>`: `<experiment>/<cell>/.seed=<S>.lock`),
/// or says which process holds it.
pub fn lock_cell(root: &Path, experiment: &str, cell: &str) -> Result<CellLock, String> {
    let target = root.join(experiment).join(cell);
    let dir = target.parent().unwrap_or(root).to_path_buf();
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!(".{name}.lock"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(format!(
            "{experiment}/{cell} is being run by process {} (lock {}); wait for it or stop it",
            holder.trim(),
            path.display()
        ));
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(CellLock { _file: file, path })
}

/// The process holding a cell's lock file, if one does (`None` when the
/// lock is free or the file cannot be read). Leaves the file as it is.
pub fn holder(path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if rc == 0 {
        // SAFETY: as above; releases the probe's own lock.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        return None;
    }
    let mut pid = String::new();
    let _ = file.read_to_string(&mut pid);
    Some(pid.trim().to_string())
}
