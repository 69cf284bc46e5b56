//! The scheduler: skip complete cells, run the rest in parallel on a rayon
//! pool with a thread budget, longest expected work first (each worker takes
//! the next cell from one queue), isolate failures, stop cleanly on Ctrl-C.
//!
//! Budget: `jobs × threads ≤ cores` by default (on 2 cores: two cells with
//! one libtorch thread each). Every cell runs in a worker process of its own
//! (see `worker`), which sets libtorch's intra-op threads for that cell.
//!
//! The unit of scheduling is a cell, or one replicate of a cell with
//! `[train] repeats = N`: replicates are skipped, locked, resumed, run in
//! parallel and fail one by one, exactly like cells.
use super::budget::MemoryBudget;
use super::cell::{Outcome, Status};
use super::lock;
use super::worker;
use crate::config::Cell;
use crate::model::memory::{self, Pool};
use crate::results::store::{self, State};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// What `seqlab run` was asked to do, beyond the cells themselves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Results root.
    pub results: PathBuf,
    /// Cells run in parallel (default: as many as cores allow with ≥ 1 thread each).
    pub jobs: Option<usize>,
    /// libtorch intra-op threads per cell (default: cores / jobs).
    pub threads: Option<usize>,
    /// Redo complete cells too.
    pub force: bool,
    /// Stop scheduling new cells after the first failure.
    pub fail_fast: bool,
    /// Discard the checkpoints of the cells to run (else they resume).
    pub restart: bool,
    /// Only cells whose `experiment/cell` contains this text.
    pub only: Option<String>,
    /// The `seqlab` executable each cell's worker process runs.
    pub worker: PathBuf,
}

/// The process-wide stop flag: the first Ctrl-C/SIGTERM sets it and passes
/// it on to the running workers (they stop at the next step boundary); the
/// second kills the workers and exits.
pub fn stop_flag() -> Arc<AtomicBool> {
    STOP.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let presses = AtomicUsize::new(0);
        let _ = ctrlc::set_handler(move || {
            if presses.fetch_add(1, Ordering::SeqCst) == 0 {
                f.store(true, Ordering::SeqCst);
                worker::signal_all(libc::SIGTERM);
                eprintln!("\nseqlab: stopping at the next step boundary (press Ctrl-C again to exit now; complete results are safe)");
            } else {
                eprintln!("\nseqlab: exiting now");
                worker::signal_all(libc::SIGKILL);
                std::process::exit(130);
            }
        });
        flag
    })
    .clone()
}

/// The stop flag of a worker process: every SIGINT/SIGTERM (its scheduler's,
/// Slurm's, or both) only asks it to stop at the next step boundary.
pub fn worker_stop_flag() -> Arc<AtomicBool> {
    STOP.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let _ = ctrlc::set_handler(move || f.store(true, Ordering::SeqCst));
        flag
    })
    .clone()
}

/// Chooses (jobs, threads per job) for `pending` cells.
pub fn budget(pending: usize, jobs: Option<usize>, threads: Option<usize>) -> (usize, usize) {
    let cores = crate::runtime::cores();
    let jobs = jobs.unwrap_or_else(|| match threads {
        Some(t) => (cores / t.max(1)).max(1),
        None => cores,
    });
    let jobs = jobs.clamp(1, pending.max(1));
    let threads = threads.unwrap_or((cores / jobs).max(1));
    (jobs, threads)
}

/// Threads for cells on a GPU and for cells on the CPU, when both run in one
/// plan: a GPU cell needs one core to feed its device, so the CPU cells
/// share the cores (a GPU cell's run is short beside theirs, see
/// `placement`). Otherwise every cell gets the budget's `threads`.
pub fn split_threads(
    cores: usize,
    jobs: usize,
    threads: usize,
    gpu_cells: usize,
    cpu_cells: usize,
    explicit: bool,
) -> (usize, usize) {
    if explicit || gpu_cells == 0 || cpu_cells == 0 {
        return (threads, threads);
    }
    (1, (cores / cpu_cells.min(jobs).max(1)).max(threads))
}

/// How many of `cells` run on a GPU; says once per experiment why `auto`
/// kept one on the CPU beside a GPU.
fn place_cells<'a>(cells: impl Iterator<Item = &'a Cell>) -> usize {
    let mut said = std::collections::HashSet::new();
    let mut gpu = 0;
    for c in cells {
        let Ok(p) = crate::model::placement::place(&c.config) else {
            continue;
        };
        gpu += usize::from(matches!(p.device, tch::Device::Cuda(_)));
        if let Some(why) = p.why_cpu {
            if said.insert(c.experiment.clone()) {
                eprintln!("seqlab: {} runs on the CPU: {why}", c.experiment);
            }
        }
    }
    gpu
}

/// Runs `cells`; returns the process exit code (130: interrupted).
pub fn run(cells: Vec<Cell>, args: &RunOptions) -> anyhow::Result<i32> {
    let root = &args.results;
    std::fs::create_dir_all(root)?;
    store::sweep_stale_partials(root);
    let selected = select(cells, args.only.as_deref());
    settle_layouts(root, &selected);
    let mut outcomes = Vec::new();
    let mut pending = Vec::new();
    for c in selected {
        if !args.force && store::state(root, &c) == State::Complete {
            outcomes.push(skipped(&c, root));
        } else {
            pending.push(c);
        }
    }
    // Experiments named as baselines run first, so others can draw them.
    let baselines: Vec<String> = pending
        .iter()
        .map(|c| c.config.experiment.baseline.clone())
        .filter(|b| !b.is_empty())
        .collect();
    let (first, rest): (Vec<Cell>, Vec<Cell>) = pending
        .into_iter()
        .partition(|c| baselines.contains(&c.experiment));
    // Longest first, so no long cell starts last while the other workers idle.
    let mut queue: Vec<(f64, Cell)> = rest.into_iter().map(|c| (expected_work(&c), c)).collect();
    queue.sort_by(|a, b| b.0.total_cmp(&a.0));
    let rest: Vec<Cell> = queue.into_iter().map(|(_, c)| c).collect();
    let total = first.len() + rest.len();
    let (jobs, threads) = budget(total, args.jobs, args.threads);
    let gpu_cells = place_cells(first.iter().chain(&rest));
    let (gpu_threads, cpu_threads) = split_threads(
        crate::runtime::cores(),
        jobs,
        threads,
        gpu_cells,
        total - gpu_cells,
        args.threads.is_some(),
    );
    let stop = stop_flag();
    let failed = AtomicBool::new(false);
    let terminal = std::io::stderr().is_terminal();
    let multi = terminal.then(MultiProgress::new);
    let overall = multi.as_ref().map(|m| {
        let b = m.add(ProgressBar::new(total as u64));
        b.set_style(
            ProgressStyle::with_template(
                "cells {pos}/{len} [{bar:30}] elapsed {elapsed} eta {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        b
    });
    if total > 0 {
        let each = if gpu_threads == cpu_threads {
            format!("{threads} libtorch thread(s) each")
        } else {
            format!(
                "{gpu_threads} libtorch thread for each of {gpu_cells} on the GPU, {cpu_threads} for each on the CPU"
            )
        };
        eprintln!(
            "seqlab: {total} cell(s) to run, {jobs} at a time with {each}; {} already complete",
            outcomes.len()
        );
    }
    // One budget per memory pool: the host's RAM, and each CUDA device's own.
    let pools: std::collections::HashMap<Pool, MemoryBudget> = first
        .iter()
        .chain(&rest)
        .map(|c| Pool::of_config(&c.config))
        .collect::<std::collections::HashSet<_>>()
        .into_iter()
        .map(|p| {
            (
                p,
                MemoryBudget::new(memory::available(p).unwrap_or(usize::MAX)),
            )
        })
        .collect();
    let run_one = |c: &Cell| -> Outcome {
        if args.fail_fast && failed.load(Ordering::SeqCst) {
            return Outcome {
                status: Status::NotRun,
                ..skipped(c, root)
            };
        }
        if stop.load(Ordering::SeqCst) {
            return Outcome {
                status: Status::Interrupted,
                ..skipped(c, root)
            };
        }
        let _lock = match lock::lock_cell(root, &c.experiment, &c.unit()) {
            Ok(l) => l,
            Err(holder) => {
                return Outcome {
                    status: Status::Busy(holder),
                    ..skipped(c, root)
                }
            }
        };
        if args.restart {
            let dir = crate::results::checkpoint::dir(root, c);
            if let Err(e) = crate::results::checkpoint::remove(&dir) {
                return Outcome {
                    status: Status::Failed(format!("--restart: removing {}: {e}", dir.display())),
                    ..skipped(c, root)
                };
            }
        }
        let pool = Pool::of_config(&c.config);
        // An explicit --threads wins; then the cell's own `train.threads`; then the budget.
        let threads = match (args.threads, c.config.train.threads) {
            (None, t) if t > 0 => t,
            _ if matches!(pool, Pool::Cuda(_)) => gpu_threads,
            _ => cpu_threads,
        };
        let estimate = memory::estimate(&c.config).map(|e| e.total()).unwrap_or(0);
        let budget = &pools[&pool];
        let _share = budget.take(estimate, || {
            eprintln!(
                "{}/{}: waiting for memory ({} estimated; {} of {} for cells side by side)",
                c.experiment,
                c.unit(),
                memory::human(estimate),
                memory::human(budget.limit()),
                pool.name()
            )
        });
        let outcome = worker::run(&args.worker, c, root, threads, multi.as_ref(), &stop);
        if matches!(outcome.status, Status::Failed(_)) {
            failed.store(true, Ordering::SeqCst);
        }
        if let Some(b) = &overall {
            b.inc(1);
        } else {
            eprintln!(
                "{}/{}: {} ({:.1} s)",
                outcome.experiment,
                outcome.cell,
                outcome.status.label(),
                outcome.seconds
            );
        }
        outcome
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    // Baselines (and their replicates) first, then the rest.
    for queue in [&first, &rest] {
        // Workers take the next cell in order from a shared queue.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::Mutex::new(Vec::new());
        pool.scope(|scope| {
            for _ in 0..jobs.min(queue.len()) {
                scope.spawn(|_| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(c) = queue.get(i) else { break };
                    let outcome = run_one(c);
                    done.lock().expect("outcomes").push((i, outcome));
                });
            }
        });
        let mut done = done.into_inner().expect("outcomes");
        done.sort_by_key(|(i, _)| *i);
        outcomes.extend(done.into_iter().map(|(_, o)| o));
    }
    if let Some(b) = &overall {
        b.finish_and_clear();
    }
    print_table(&outcomes);
    let interrupted = stop.load(Ordering::SeqCst);
    let any_failed = outcomes
        .iter()
        .any(|o| matches!(o.status, Status::Failed(_) | Status::Busy(_)));
    if interrupted {
        let done = outcomes
            .iter()
            .filter(|o| matches!(o.status, Status::Complete | Status::Skipped))
            .count();
        eprintln!("seqlab: interrupted; {done} of {} cell(s) complete. Run the same command again to resume.", outcomes.len());
        return Ok(130);
    }
    Ok(if any_failed { 1 } else { 0 })
}

/// A rough count of the multiply-adds a cell will do, to order the queue:
/// for every layer with weights (embeddings excluded: they are lookups),
/// parameters × the time steps it sees, per sample, times the samples of
/// its training and validation batches (validation counted at a third: no
/// backward pass). Only the order matters.
pub fn expected_work(c: &Cell) -> f64 {
    let Ok(inferred) = crate::model::infer(&c.config) else {
        return 0.0;
    };
    let per_sample: f64 = c
        .config
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| !matches!(l, crate::config::LayerSpec::Embedding { .. }))
        .map(|(i, _)| {
            let seen = match inferred.wiring.sources[i].first() {
                Some(crate::model::graph::Src::Layer(j)) => &inferred.layers[*j].output,
                _ => &inferred.input,
            };
            let steps = if seen.dims.len() >= 2 {
                seen.dims[0]
            } else {
                1
            };
            (inferred.layers[i].params * steps) as f64
        })
        .sum();
    let t = &c.config.train;
    // 0 means a full pass over the split; a few hundred batches is typical.
    let train_steps = if t.steps_per_epoch == 0 {
        200
    } else {
        t.steps_per_epoch
    };
    let val_steps = if t.val_steps == 0 { 200 } else { t.val_steps };
    let batches = t.epochs as f64 * (train_steps as f64 + val_steps as f64 / 3.0);
    per_sample * c.config.data.batch_size() as f64 * batches
}

/// The units `--only` names: when the pattern is a whole `experiment/cell`
/// key, exactly that cell with all its replicates, and when it is a whole
/// `experiment/cell/seed=<S>`, exactly that replicate (so `x/units=3` never
/// also picks `x/units=32`; Slurm tasks name their unit so); otherwise
/// every unit whose `experiment/cell[/seed=<S>]` contains the pattern.
pub fn select(cells: Vec<Cell>, only: Option<&str>) -> Vec<Cell> {
    let Some(pattern) = only else {
        return cells;
    };
    let whole = |c: &Cell| c.key() == pattern || c.cell_key() == pattern;
    let exact = cells.iter().any(whole);
    cells
        .into_iter()
        .filter(|c| {
            if exact {
                whole(c)
            } else {
                c.key().contains(pattern)
            }
        })
        .collect()
}

/// Turns cell folders that still hold a single run into folders of
/// replicates (see [`store::settle`]) before any state is read, under each
/// cell's lock; a cell whose lock another process holds is left alone.
fn settle_layouts(root: &Path, units: &[Cell]) {
    let mut seen = std::collections::BTreeSet::new();
    for unit in units.iter().filter(|u| u.replicate.is_some()) {
        let single = store::cell_dir(root, &unit.experiment, &unit.name).join("summary.toml");
        if !seen.insert(unit.cell_key()) || !single.exists() {
            continue;
        }
        let Ok(_lock) = lock::lock_cell(root, &unit.experiment, &unit.name) else {
            continue;
        };
        if let Err(e) = store::settle(root, unit) {
            eprintln!(
                "seqlab: {}: could not turn the single run into replicate folders: {e}",
                unit.cell_key()
            );
        }
    }
}

fn skipped(c: &Cell, root: &Path) -> Outcome {
    let dir = store::unit_dir(root, c);
    let summary = store::read_summary(&dir);
    let best_epoch = summary
        .as_ref()
        .and_then(|s| s.get("best_epoch")?.as_integer())
        .unwrap_or(0) as usize;
    let pick = |section: &str, keys: &[&str]| -> Option<(String, f64)> {
        let t = summary.as_ref()?.get(section)?.as_table()?;
        keys.iter()
            .find_map(|k| Some((k.to_string(), t.get(*k)?.as_float()?)))
    };
    Outcome {
        experiment: c.experiment.clone(),
        cell: c.unit(),
        status: Status::Skipped,
        best_epoch,
        best: pick("best", &["val_mae_degc", "val_accuracy", "val_loss"]),
        test: pick("test", &["test_mae_degc", "test_accuracy", "test_loss"]),
        seconds: 0.0,
    }
}

/// The final table: experiment, cell, status, best epoch, best val metric, test metric, wall time.
pub fn print_table(outcomes: &[Outcome]) {
    println!(
        "{:<26} {:<24} {:<22} {:>5} {:>24} {:>24} {:>8}",
        "experiment", "cell", "status", "best", "best val", "test", "time s"
    );
    for o in outcomes {
        let show = |v: &Option<(String, f64)>| {
            v.as_ref()
                .map(|(k, v)| format!("{k} {v:.4}"))
                .unwrap_or_else(|| "-".into())
        };
        let mut status = o.status.label();
        if status.len() > 22 {
            status.truncate(21);
            status.push('…');
        }
        println!(
            "{:<26} {:<24} {:<22} {:>5} {:>24} {:>24} {:>8.1}",
            o.experiment,
            o.cell,
            status,
            o.best_epoch,
            show(&o.best),
            show(&o.test),
            o.seconds
        );
    }
    for o in outcomes {
        if let Status::Failed(r) | Status::Busy(r) = &o.status {
            eprintln!("{}/{}: {r}", o.experiment, o.cell);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_threads;

    #[test]
    fn gpu_cells_take_a_thread_each_and_cpu_cells_share_the_cores() {
        // 16 cores, 9 cells at once: 6 on the GPU, 3 kept on the CPU
        assert_eq!(split_threads(16, 9, 1, 6, 3, false), (1, 5));
        // more CPU cells than run at once: the cores go to those that run
        assert_eq!(split_threads(16, 4, 4, 1, 10, false), (1, 4));
        // never fewer than the budget gave
        assert_eq!(split_threads(2, 2, 1, 1, 1, false), (1, 2));
        // one kind only, or --threads: the budget's count for all
        assert_eq!(split_threads(16, 9, 1, 9, 0, false), (1, 1));
        assert_eq!(split_threads(2, 2, 1, 0, 13, false), (1, 1));
        assert_eq!(split_threads(16, 9, 2, 6, 3, true), (2, 2));
    }
}
