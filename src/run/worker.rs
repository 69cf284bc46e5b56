//! One cell per process: the scheduler runs every cell in a fresh `seqlab`
//! worker process, so that nothing process-wide — libtorch's one global
//! random generator, its intra-op thread pool and OpenMP team, FTZ/DAZ
//! flags, the allocator's cache — passes from one cell to another. A cell's
//! numbers are then a function of its resolved config, seed, device and
//! thread count alone, whatever runs before or beside it; a crash, an abort
//! inside libtorch or an out-of-memory kill also stays inside its process.
//!
//! The protocol is plain text. The parent writes the resolved cell as TOML
//! on the worker's stdin and closes it; the worker answers on stdout with
//! event lines (`@seqlab start N`, `@seqlab step E S LOSS`,
//! `@seqlab epoch TEXT`) and, last, `@seqlab outcome JSON`. Its stderr is
//! the parent's. A worker runs in a process group of its own: a Ctrl-C on
//! the terminal reaches only the scheduler, which forwards one SIGTERM to
//! every worker (they stop at the next step boundary) and SIGKILL on a
//! second Ctrl-C.
use super::cell::{self, Outcome, Status};
use crate::config::{self, Cell};
use crate::train::progress::{Progress, Sink, EVENT};
use anyhow::{bail, Context, Result};
use indicatif::MultiProgress;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The hidden subcommand the scheduler starts a worker with.
pub const SUBCOMMAND: &str = "cell-worker";

/// Worker processes now running (pids).
static RUNNING: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// Sends `signal` to every running worker.
pub fn signal_all(signal: i32) {
    let pids: Vec<u32> = RUNNING
        .lock()
        .map(|r| r.iter().copied().collect())
        .unwrap_or_default();
    for pid in pids {
        // SAFETY: kill(2) with a pid of a child we started and have not reaped.
        unsafe {
            libc::kill(pid as libc::pid_t, signal);
        }
    }
}

/// The cell as the worker receives it.
pub fn encode(cell: &Cell) -> Result<String> {
    let value = toml::Value::try_from(cell).context("serialising the cell for its worker")?;
    Ok(toml::to_string(&value)?)
}

/// Reads a cell back and checks that it is the one the parent resolved:
/// its content id must match the config it carries.
pub fn decode(text: &str) -> Result<Cell> {
    let cell: Cell = toml::from_str(text).context("reading the cell sent by the scheduler")?;
    let id = config::content_id(&cell.config);
    if id != cell.id {
        bail!(
            "the cell {}/{} arrived with content id {} but its config hashes to {id}",
            cell.experiment,
            cell.name,
            cell.id
        );
    }
    Ok(cell)
}

/// Parent side: runs `cell` in a worker process started from `exe` and
/// draws its progress under `multi`. Never panics; a worker that dies
/// without an outcome becomes a failed cell with the reason.
pub fn run(
    exe: &Path,
    cell: &Cell,
    root: &Path,
    threads: usize,
    multi: Option<&MultiProgress>,
    stop: &AtomicBool,
) -> Outcome {
    let start = std::time::Instant::now();
    let failed = |reason: String| {
        cell::record_failure(cell, root, &reason, &reason);
        Outcome::new(cell, Status::Failed(reason), start.elapsed().as_secs_f64())
    };
    let payload = match encode(cell) {
        Ok(p) => p,
        Err(e) => return failed(format!("{e:#}")),
    };
    let mut command = Command::new(exe);
    command
        .arg(SUBCOMMAND)
        .arg("--results")
        .arg(root)
        .arg("--threads")
        .arg(threads.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            return failed(format!(
                "could not start a worker process ({}): {e}",
                exe.display()
            ))
        }
    };
    let pid = child.id();
    if let Ok(mut r) = RUNNING.lock() {
        r.insert(pid);
    }
    if stop.load(Ordering::SeqCst) {
        // A stop that came while the worker was starting: pass it on.
        // SAFETY: kill(2) on our own, not yet reaped child.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(payload.as_bytes());
    }
    let label = cell.key();
    let mut progress: Option<Progress> = None;
    let mut outcome: Option<Outcome> = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some(event) = line.strip_prefix(EVENT) else {
                eprintln!("{label}: {line}");
                continue;
            };
            let (kind, rest) = event.split_once(' ').unwrap_or((event, ""));
            match kind {
                "start" => {
                    let total = rest.trim().parse().unwrap_or(0);
                    progress = Some(Progress::new(Sink::Bars(multi), &label, total));
                }
                "step" => {
                    let mut parts = rest.split(' ');
                    let mut next = || parts.next().and_then(|p| p.parse::<f64>().ok());
                    if let (Some(p), Some(e), Some(s), Some(l)) =
                        (&progress, next(), next(), next())
                    {
                        p.step(e as usize, s as usize, l);
                    }
                }
                "epoch" => {
                    if let Some(p) = &progress {
                        p.epoch(rest);
                    }
                }
                "outcome" => outcome = serde_json::from_str(rest).ok(),
                _ => eprintln!("{label}: {line}"),
            }
        }
    }
    let status = child.wait();
    if let Ok(mut r) = RUNNING.lock() {
        r.remove(&pid);
    }
    if let Some(p) = &progress {
        p.finish();
    }
    match (outcome, status) {
        (Some(o), _) => o,
        (None, Ok(s)) if stop.load(Ordering::SeqCst) && s.signal().is_some() => {
            Outcome::new(cell, Status::Interrupted, start.elapsed().as_secs_f64())
        }
        (None, Ok(s)) => failed(match (s.code(), s.signal()) {
            (_, Some(libc::SIGKILL)) => {
                "the worker process was killed (SIGKILL; out of memory?)".to_string()
            }
            (_, Some(sig)) => format!("the worker process died of signal {sig}"),
            (Some(code), _) => {
                format!("the worker process exited with status {code} and no result")
            }
            _ => "the worker process ended without a result".to_string(),
        }),
        (None, Err(e)) => failed(format!("waiting for the worker process: {e}")),
    }
}

/// Worker side: reads one cell from stdin, runs it into `root` with
/// `threads` libtorch threads, writes the outcome line. The exit code is 0
/// whenever an outcome was written.
pub fn serve(root: &Path, threads: usize, stop: &AtomicBool) -> Result<i32> {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PDEATHSIG) only asks the kernel to signal this
    // process when its parent thread ends.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
    // A scheduler that died leaves a closed pipe: the worker still stops at
    // the next step boundary and cleans up its staging folder.
    // SAFETY: ignoring SIGPIPE only turns failed writes into errors.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // A panic's whole text goes to the cell's error.log; the terminal gets one line.
    std::panic::set_hook(Box::new(|info| {
        let msg = cell::panic_text(info.payload());
        eprintln!("seqlab worker: panicked: {}", cell::condense(&msg));
    }));
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the cell from stdin")?;
    let cell = decode(&text)?;
    let outcome = cell::run_caught(&cell, root, threads, Sink::Lines, stop);
    let line = serde_json::to_string(&outcome)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{EVENT}outcome {line}")?;
    out.flush()?;
    Ok(0)
}
