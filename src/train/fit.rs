//! The training loop, as Keras' `fit` runs it: an epoch is `steps_per_epoch`
//! training batches, then `val_steps` validation batches in evaluation mode
//! (no dropout); at the end the test split, optionally with the best epoch's
//! weights. A non-finite loss fails the run with the epoch and step.
//! [`fit_from`] also resumes from a checkpoint and saves one at the end of
//! every epoch (see `checkpoint`).
use super::checkpoint::{Meta, Resume, RngState};
use super::loss::{loss, metric_value};
use super::optim;
use super::progress::Progress;
use crate::config::{Config, Loss, Metric};
use crate::data::{Batcher, Prepared, TargetUnit};
use crate::model::Model;
use crate::results::weights::Stored;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::Tensor;

/// A run stopped by Ctrl-C/SIGTERM between two steps.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Seconds and throughput of one epoch (kept apart: never reproducible).
#[derive(Debug, Clone)]
pub struct EpochTiming {
    pub train_seconds: f64,
    pub val_seconds: f64,
    pub samples_per_second: f64,
    /// Writing the epoch's checkpoint: seconds and bytes (0 when none).
    pub checkpoint_seconds: f64,
    pub checkpoint_bytes: f64,
}

/// What a finished (or failed) fit produced.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// Column names after `epoch`: train_loss, val_loss, train_<m>, val_<m>, …
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
    pub timing: Vec<EpochTiming>,
    /// 1-based; 0 when no epoch completed.
    pub best_epoch: usize,
    /// Test metrics (loss, metrics, de-normalised MAE) when evaluated.
    pub test: Vec<(String, f64)>,
    /// `None` when complete, else why the run failed.
    pub failure: Option<String>,
    /// A few test windows' forecasts in the targets' units (tables only).
    pub forecasts: Vec<ForecastRow>,
}

/// One horizon step of one target of a sample test window.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastRow {
    /// The window's end row in the table (inputs end the row before).
    pub window_end: i64,
    /// 1-based horizon step.
    pub step: usize,
    pub target: String,
    pub truth: f64,
    pub forecast: f64,
}

/// The first, middle and last test windows of a table, forecast and
/// written back in the targets' units.
fn sample_forecasts(
    model: &Model,
    config: &Config,
    batcher: &Batcher,
    units: &[TargetUnit],
) -> Vec<ForecastRow> {
    let Batcher::Series(w) = batcher else {
        return vec![];
    };
    let Some(ends) = w.list_ends() else {
        return vec![];
    };
    if ends.is_empty() || units.is_empty() {
        return vec![];
    }
    let mut rows = vec![ends[0], ends[ends.len() / 2], ends[ends.len() - 1]];
    rows.dedup();
    let _guard = tch::no_grad_guard();
    let (x, y) = w.gather(&rows);
    let out = output(model, config.train.loss, &x, &y, false);
    let targets = units.len() as i64;
    let (b, steps) = (
        rows.len() as i64,
        y.numel() as i64 / rows.len() as i64 / targets,
    );
    let (out, y) = (
        out.reshape([b, steps, targets]),
        y.reshape([b, steps, targets]),
    );
    let mut v = Vec::new();
    for (i, &end) in rows.iter().enumerate() {
        for h in 0..steps {
            for (k, u) in units.iter().enumerate() {
                let idx = [i as i64, h, k as i64];
                v.push(ForecastRow {
                    window_end: end,
                    step: h as usize + 1,
                    target: u.name.clone(),
                    truth: y.double_value(&idx) * u.scale + u.shift,
                    forecast: out.double_value(&idx) * u.scale + u.shift,
                });
            }
        }
    }
    v
}

/// A metric in a target's own units: MAE (× scale) or MSE (× scale²).
#[derive(Debug, Clone, Copy, PartialEq)]
enum UnitKind {
    Mae,
    Mse,
}

/// The metrics reported in the targets' units: `mae_<target>` when MAE is a
/// metric, `mse_<target>` when the loss or a metric is MSE.
fn unit_metrics(config: &Config, units: &[TargetUnit]) -> Vec<(UnitKind, TargetUnit)> {
    let t = &config.train;
    let mut v = Vec::new();
    for kind in [UnitKind::Mae, UnitKind::Mse] {
        let wanted = match kind {
            UnitKind::Mae => t.metrics.contains(&Metric::Mae),
            UnitKind::Mse => t.loss == Loss::Mse || t.metrics.contains(&Metric::Mse),
        };
        if wanted {
            v.extend(units.iter().map(|u| (kind, u.clone())));
        }
    }
    v
}

/// The values one pass produces, in order: loss, each metric, each metric in units.
fn names(config: &Config, units: &[TargetUnit]) -> Vec<String> {
    let mut n = vec!["loss".to_string()];
    n.extend(config.train.metrics.iter().map(|m| m.name().to_string()));
    for (kind, u) in unit_metrics(config, units) {
        let k = if kind == UnitKind::Mae { "mae" } else { "mse" };
        n.push(format!("{k}_{}", u.suffix));
    }
    n
}

/// One batch's values of the unit metrics, on the normalised scale; a
/// lone target reuses the batch's MAE/MSE already computed.
fn unit_values(
    config: &Config,
    units: &[(UnitKind, TargetUnit)],
    out: &Tensor,
    y: &Tensor,
    loss_value: f64,
    metric_values: &[f64],
) -> Vec<f64> {
    let t = &config.train;
    units
        .iter()
        .map(|(kind, u)| {
            let whole = |m: Metric| -> f64 {
                match t.metrics.iter().position(|x| *x == m) {
                    Some(i) => metric_values[i],
                    None if m == Metric::Mse && t.loss == Loss::Mse => loss_value,
                    None => metric_value(m, t.loss, out, y, loss_value),
                }
            };
            match (kind, u.column) {
                (UnitKind::Mae, None) => whole(Metric::Mae),
                (UnitKind::Mse, None) => whole(Metric::Mse),
                (k, Some(c)) => {
                    let d = out.select(-1, c as i64) - y.select(-1, c as i64);
                    let v = if *k == UnitKind::Mae {
                        d.abs()
                    } else {
                        d.square()
                    };
                    v.mean(tch::Kind::Float).double_value(&[])
                }
            }
        })
        .collect()
}

fn output(model: &Model, loss_kind: Loss, x: &Tensor, y: &Tensor, train: bool) -> Tensor {
    let out = if loss_kind.from_logits() {
        model.forward_logits(x, train)
    } else {
        model.forward(x, train)
    };
    // A flat (B, horizon × targets) output is read as the targets' (B, horizon, targets).
    if out.size() != y.size() && out.numel() == y.numel() {
        out.view_as(y)
    } else {
        out
    }
}

/// Loss, metrics and metrics in the targets' units over one full pass of
/// `batcher`, named `<prefix>_<name>` as the summary's `test` section names
/// them (`test_loss`, `test_mae_OT`): what training's test evaluation
/// computes, for `seqlab evaluate` and backtests.
pub fn evaluate_pass(
    model: &Model,
    config: &Config,
    batcher: &mut Batcher,
    units: &[TargetUnit],
    prefix: &str,
) -> Vec<(String, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.train.seed);
    let values = evaluate(model, config, batcher, 0, &mut rng, units);
    names(config, units)
        .iter()
        .map(|n| format!("{prefix}_{n}"))
        .zip(values)
        .collect()
}

/// Sample-weighted means of loss and metrics over a split from its first
/// batch: `steps` batches, or one full pass when `steps` is 0. No gradients.
fn evaluate(
    model: &Model,
    config: &Config,
    batcher: &mut Batcher,
    steps: usize,
    rng: &mut ChaCha8Rng,
    units: &[TargetUnit],
) -> Vec<f64> {
    let _guard = tch::no_grad_guard();
    let t = &config.train;
    let steps = if steps == 0 {
        batcher.full_pass_steps()
    } else {
        steps
    };
    batcher.reset();
    let unit_metrics = unit_metrics(config, units);
    let mut sums = vec![0.0; 1 + t.metrics.len() + unit_metrics.len()];
    let mut count = 0.0;
    for _ in 0..steps {
        let (x, y) = batcher.next_batch(rng);
        let out = output(model, t.loss, &x, &y, false);
        let n = y.size()[0] as f64;
        let l = loss(t.loss, &out, &y).double_value(&[]);
        let ms: Vec<f64> = t
            .metrics
            .iter()
            .map(|m| metric_value(*m, t.loss, &out, &y, l))
            .collect();
        let us = unit_values(config, &unit_metrics, &out, &y, l, &ms);
        for (s, v) in sums.iter_mut().zip(std::iter::once(l).chain(ms).chain(us)) {
            *s += v * n;
        }
        count += n;
    }
    finish(config, sums, count, units)
}

/// Means of the summed batch values; unit metrics scaled to the targets' units.
fn finish(config: &Config, sums: Vec<f64>, count: f64, units: &[TargetUnit]) -> Vec<f64> {
    let mut v: Vec<f64> = sums.into_iter().map(|s| s / count.max(1.0)).collect();
    let first = 1 + config.train.metrics.len();
    for (i, (kind, u)) in unit_metrics(config, units).iter().enumerate() {
        v[first + i] *= match kind {
            UnitKind::Mae => u.scale,
            UnitKind::Mse => u.scale * u.scale,
        };
    }
    v
}

/// Test hook (for tests only, never set it otherwise):
/// `SEQLAB_TEST_SIGNAL_AT_STEP=<step>:<INT|TERM|KILL|USR1>` sends the signal, as
/// the training step with that 0-based global index starts, to the
/// `seqlab run` that started this worker (INT, TERM: a user's Ctrl-C or a
/// scheduler's stop, which reaches this worker as SIGTERM) or to this
/// worker (KILL: killed at once, as the out-of-memory killer does), or to
/// the process that started that `seqlab run` (USR1: Slurm's warning to a
/// job array's batch shell). Lets tests stop a run at an exact step
/// without timing.
fn test_hook_signal(global_step: u64, stop: &AtomicBool) {
    static HOOK: std::sync::OnceLock<Option<(u64, i32)>> = std::sync::OnceLock::new();
    let hook = HOOK.get_or_init(|| {
        let v = std::env::var("SEQLAB_TEST_SIGNAL_AT_STEP").ok()?;
        let (step, sig) = v.split_once(':')?;
        let sig = match sig {
            "INT" => libc::SIGINT,
            "TERM" => libc::SIGTERM,
            "KILL" => libc::SIGKILL,
            "USR1" => libc::SIGUSR1,
            _ => return None,
        };
        Some((step.parse().ok()?, sig))
    });
    if let Some((step, sig)) = *hook {
        if step == global_step {
            // SAFETY: kill(2) on this process's parent or on itself.
            unsafe {
                if sig == libc::SIGKILL {
                    libc::kill(libc::getpid(), sig);
                } else if sig == libc::SIGUSR1 {
                    if let Some(shell) = parent_of(libc::getppid()) {
                        libc::kill(shell, sig);
                    }
                } else {
                    libc::kill(libc::getppid(), sig);
                }
            }
            // The stop reaches this worker as the scheduler passes it on:
            // wait for it here, so that this step boundary is the one.
            for _ in 0..6000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

/// The parent of process `pid` (Linux: from `/proc/<pid>/stat`).
fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn lower_is_better(monitor: &str) -> bool {
    !monitor.ends_with("accuracy")
}

/// A checkpoint that does not fit the run it was read for (another model,
/// sampler or optimizer): the caller starts the cell over.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadCheckpoint(pub String);

/// Called at the end of every epoch with the state to save: the numbers
/// (`content_id`, `seqlab` and `libtorch` left for the caller to fill) and
/// the tensors; returns the bytes written. An error stops the run.
pub type SaveCheckpoint<'a> = &'a mut dyn FnMut(Meta, Vec<(String, Tensor)>) -> anyhow::Result<u64>;

/// Trains `model` on `data` as `config` says. `stop` is polled at every step.
pub fn fit(
    config: &Config,
    model: &Model,
    data: &mut Prepared,
    progress: &Progress,
    stop: &AtomicBool,
) -> anyhow::Result<Fitted> {
    fit_from(config, model, data, progress, stop, None, None)
}

/// Copies stored tensors into `vars` after checking that names and shapes
/// match exactly; on any difference nothing is copied.
fn copy_checked(
    what: &str,
    stored: &BTreeMap<String, Stored>,
    vars: &std::collections::HashMap<String, Tensor>,
    apply: bool,
) -> Result<(), BadCheckpoint> {
    for (name, var) in vars {
        match stored.get(name) {
            Some(s) if s.shape == var.size() => {}
            Some(s) => {
                return Err(BadCheckpoint(format!(
                    "{what} tensor {name} has shape {:?}, the model {:?}",
                    s.shape,
                    var.size()
                )))
            }
            None => return Err(BadCheckpoint(format!("{what} tensor {name} is missing"))),
        }
    }
    if let Some(extra) = stored.keys().find(|k| !vars.contains_key(*k)) {
        return Err(BadCheckpoint(format!(
            "{what} tensor {extra} is not in the model"
        )));
    }
    if apply {
        tch::no_grad(|| {
            for (name, var) in vars {
                crate::results::weights::assign(var, &stored[name]);
            }
        });
    }
    Ok(())
}

fn stored_tensors(stored: &BTreeMap<String, Stored>, device: tch::Device) -> Vec<(String, Tensor)> {
    stored
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                Tensor::from_slice(&s.values)
                    .view(s.shape.as_slice())
                    .to_device(device),
            )
        })
        .collect()
}

/// [`fit`] from a checkpoint (`resume`), saving one at the end of every
/// epoch through `save`. The dropout masks a run draws are logged
/// (`model::draws`) into its checkpoints; a resumed run draws them again
/// after its model's initialisation, so libtorch's generator continues
/// exactly where the interrupted run's was.
pub fn fit_from(
    config: &Config,
    model: &Model,
    data: &mut Prepared,
    progress: &Progress,
    stop: &AtomicBool,
    resume: Option<Resume>,
    mut save: Option<SaveCheckpoint>,
) -> anyhow::Result<Fitted> {
    let t = &config.train;
    let mut rng = ChaCha8Rng::seed_from_u64(t.seed);
    let trainable = model.trainable_params() > 0;
    let mut opt = if trainable {
        Some(optim::build(&t.optimizer, &model.vs)?)
    } else {
        None
    };
    // The dropout masks drawn so far, replayed on resume (see `model::draws`).
    crate::model::draws::reset();
    let mut global_step: u64 = 0;
    let mut first_epoch = 1;
    let mut stopped_early = false;
    let steps = if t.steps_per_epoch == 0 {
        data.train.full_pass_steps()
    } else {
        t.steps_per_epoch
    };
    let pass = names(config, &data.units);
    let units = unit_metrics(config, &data.units);
    let mut columns: Vec<String> = Vec::new();
    for name in &pass {
        columns.push(format!("train_{name}"));
        columns.push(format!("val_{name}"));
    }
    let monitor_col = columns
        .iter()
        .position(|c| *c == t.monitor || (t.monitor == "loss" && c == "train_loss"));
    let better = |a: f64, b: f64| {
        if lower_is_better(&t.monitor) {
            a < b
        } else {
            a > b
        }
    };
    let mut fitted = Fitted {
        columns,
        rows: vec![],
        timing: vec![],
        best_epoch: 0,
        test: vec![],
        failure: None,
        forecasts: vec![],
    };
    let mut best_value = f64::NAN;
    let mut best_weights: Option<Vec<(String, Tensor)>> = None;
    if let Some(r) = resume {
        let m = &r.meta;
        let bad = |why: String| -> anyhow::Error { BadCheckpoint(why).into() };
        if m.columns != fitted.columns {
            return Err(bad(format!(
                "its metrics columns {:?} are not this run's",
                m.columns
            )));
        }
        if m.epochs != t.epochs || m.global_step != (m.epoch * steps) as u64 {
            return Err(bad(format!(
                "its step count {} is not {} epoch(s) of {steps} steps",
                m.global_step, m.epoch
            )));
        }
        let vars = model.vs.variables();
        copy_checked("model", &r.parts.model, &vars, false)?;
        if m.best_weights {
            copy_checked("best", &r.parts.best, &vars, false)?;
        } else if !r.parts.best.is_empty() {
            return Err(bad("it holds best weights it does not announce".into()));
        }
        match opt.as_mut() {
            Some(o) => o
                .import(&r.parts.optim, &m.optimizer_steps)
                .map_err(|e| bad(format!("{e:#}")))?,
            None if r.parts.optim.is_empty() => {}
            None => {
                return Err(bad(
                    "it holds optimizer state for a model without weights to train".into(),
                ))
            }
        }
        data.train
            .restore_sampler(&m.sampler)
            .map_err(|e| bad(format!("{e:#}")))?;
        rng = m.rng.build().map_err(|e| bad(format!("{e:#}")))?;
        crate::model::draws::replay(&m.draws, model.vs.device());
        copy_checked("model", &r.parts.model, &vars, true)?;
        if m.best_weights {
            best_weights = Some(stored_tensors(&r.parts.best, model.vs.device()));
        }
        fitted.rows = m
            .rows
            .iter()
            .map(|r| r.iter().map(|b| f64::from_bits(*b)).collect())
            .collect();
        fitted.timing = m
            .timing
            .iter()
            .map(|[a, b, c, d, e]| EpochTiming {
                train_seconds: *a,
                val_seconds: *b,
                samples_per_second: *c,
                checkpoint_seconds: *d,
                checkpoint_bytes: *e,
            })
            .collect();
        fitted.best_epoch = m.best_epoch;
        best_value = f64::from_bits(m.best_value);
        global_step = m.global_step;
        first_epoch = m.epoch + 1;
        stopped_early = m.stopped_early;
    }
    for epoch in first_epoch..=t.epochs {
        if stopped_early {
            break;
        }
        if let Some(opt) = opt.as_mut() {
            if !t.lr_schedule.is_constant() {
                opt.set_lr(t.optimizer.lr() * t.lr_schedule.factor(epoch, t.epochs));
            }
        }
        let start = Instant::now();
        let mut sums = vec![0.0; 1 + t.metrics.len() + units.len()];
        let mut count = 0.0;
        for step in 1..=steps {
            if stop.load(Ordering::Relaxed) {
                return Err(Interrupted.into());
            }
            test_hook_signal(global_step, stop);
            if stop.load(Ordering::Relaxed) {
                return Err(Interrupted.into());
            }
            global_step += 1;
            let (x, y) = data.train.next_batch(&mut rng);
            let n = y.size()[0] as f64;
            let (batch_loss, metric_values) = match opt.as_mut() {
                Some(opt) => {
                    let out = output(model, t.loss, &x, &y, true);
                    let l = loss(t.loss, &out, &y);
                    let value = l.double_value(&[]);
                    if !value.is_finite() {
                        fitted.failure = Some(format!("loss became {value} at epoch {epoch}, step {step}; lower the learning rate or check the data"));
                        return Ok(fitted);
                    }
                    model.backward_step(opt, &l);
                    let _guard = tch::no_grad_guard();
                    let out = out.detach();
                    let ms: Vec<f64> = t
                        .metrics
                        .iter()
                        .map(|m| metric_value(*m, t.loss, &out, &y, value))
                        .collect();
                    let us = unit_values(config, &units, &out, &y, value, &ms);
                    (value, ms.into_iter().chain(us).collect::<Vec<f64>>())
                }
                None => {
                    let _guard = tch::no_grad_guard();
                    let out = output(model, t.loss, &x, &y, false);
                    let value = loss(t.loss, &out, &y).double_value(&[]);
                    let ms: Vec<f64> = t
                        .metrics
                        .iter()
                        .map(|m| metric_value(*m, t.loss, &out, &y, value))
                        .collect();
                    let us = unit_values(config, &units, &out, &y, value, &ms);
                    (value, ms.into_iter().chain(us).collect())
                }
            };
            crate::model::draws::end_step();
            sums[0] += batch_loss * n;
            for (k, v) in metric_values.into_iter().enumerate() {
                sums[k + 1] += v * n;
            }
            count += n;
            progress.step(epoch, step, sums[0] / count);
        }
        let train = finish(config, sums, count, &data.units);
        let train_seconds = start.elapsed().as_secs_f64();
        if stop.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        let val_start = Instant::now();
        let val = evaluate(
            model,
            config,
            &mut data.val,
            t.val_steps,
            &mut rng,
            &data.units,
        );
        let val_seconds = val_start.elapsed().as_secs_f64();
        let row: Vec<f64> = train.iter().zip(&val).flat_map(|(a, b)| [*a, *b]).collect();
        if row.iter().any(|v| !v.is_finite()) {
            fitted.failure = Some(format!("a metric became non-finite at epoch {epoch}; lower the learning rate or check the data"));
            return Ok(fitted);
        }
        let shown: Vec<String> = fitted
            .columns
            .iter()
            .zip(&row)
            .map(|(c, v)| format!("{c} {v:.4}"))
            .collect();
        progress.epoch(&format!("epoch {epoch}/{}: {}", t.epochs, shown.join(", ")));
        fitted.timing.push(EpochTiming {
            train_seconds,
            val_seconds,
            samples_per_second: count / train_seconds.max(1e-9),
            checkpoint_seconds: 0.0,
            checkpoint_bytes: 0.0,
        });
        let watched = monitor_col.map(|c| row[c]).unwrap_or(row[1]);
        fitted.rows.push(row);
        if fitted.best_epoch == 0 || better(watched, best_value) {
            best_value = watched;
            fitted.best_epoch = epoch;
            if t.restore_best && trainable {
                best_weights = Some(
                    model
                        .vs
                        .variables()
                        .into_iter()
                        .map(|(k, v)| (k, v.detach().copy()))
                        .collect(),
                );
            }
        } else if t.patience > 0 && epoch - fitted.best_epoch >= t.patience {
            progress.epoch(&format!(
                "early stop: no better {} for {} epochs",
                t.monitor, t.patience
            ));
            stopped_early = true;
        }
        if let Some(save) = save.as_mut() {
            let (optim_tensors, optimizer_steps) = match opt.as_ref() {
                Some(o) => o.export(),
                None => (vec![], BTreeMap::new()),
            };
            let cpu = |name: String, t: &Tensor| {
                (
                    name,
                    t.detach()
                        .to_kind(tch::Kind::Float)
                        .to_device(tch::Device::Cpu),
                )
            };
            let mut tensors: Vec<(String, Tensor)> = model
                .vs
                .variables()
                .iter()
                .map(|(k, v)| cpu(format!("model/{k}"), v))
                .collect();
            tensors.extend(
                optim_tensors
                    .into_iter()
                    .map(|(k, v)| (format!("optim/{k}"), v)),
            );
            if let Some(best) = &best_weights {
                tensors.extend(best.iter().map(|(k, v)| cpu(format!("best/{k}"), v)));
            }
            let meta = Meta {
                format: super::checkpoint::FORMAT,
                content_id: String::new(),
                seqlab: String::new(),
                libtorch: String::new(),
                epoch,
                epochs: t.epochs,
                global_step,
                stopped_early,
                rng: RngState::of(&rng),
                sampler: data.train.sampler_state(),
                columns: fitted.columns.clone(),
                rows: fitted
                    .rows
                    .iter()
                    .map(|r| r.iter().map(|v| v.to_bits()).collect())
                    .collect(),
                timing: fitted
                    .timing
                    .iter()
                    .map(|e| {
                        [
                            e.train_seconds,
                            e.val_seconds,
                            e.samples_per_second,
                            e.checkpoint_seconds,
                            e.checkpoint_bytes,
                        ]
                    })
                    .collect(),
                best_epoch: fitted.best_epoch,
                best_value: best_value.to_bits(),
                best_weights: best_weights.is_some(),
                optimizer_steps,
                draws: crate::model::draws::snapshot(),
            };
            let start = Instant::now();
            let bytes = save(meta, tensors)?;
            if let Some(last) = fitted.timing.last_mut() {
                last.checkpoint_seconds = start.elapsed().as_secs_f64();
                last.checkpoint_bytes = bytes as f64;
            }
        }
        if stopped_early {
            break;
        }
    }
    if let Some(best) = best_weights {
        let vars = model.vs.variables();
        tch::no_grad(|| {
            for (name, value) in &best {
                vars[name].shallow_clone().copy_(value);
            }
        });
    }
    if t.evaluate_test {
        let values = evaluate(
            model,
            config,
            &mut data.test,
            t.test_steps,
            &mut rng,
            &data.units,
        );
        fitted.test = pass
            .iter()
            .map(|n| format!("test_{n}"))
            .zip(values)
            .collect();
        fitted.forecasts = sample_forecasts(model, config, &data.test, &data.units);
    }
    Ok(fitted)
}
