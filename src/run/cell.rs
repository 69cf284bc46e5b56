//! One cell (or one replicate of a cell) from resolved config to complete
//! results folder: data, model, fit, then `config.toml`, `metrics.csv`,
//! `timing.csv`, `model.txt`, `history.png` and — last — `summary.toml`.
//!
//! A replicate writes the same files as a single run; only `config.toml`'s
//! `[run]` table adds `replicate`, `replicates` and `base_seed`. Its
//! `summary.toml` is the one a single run with its seed writes.
use crate::config::Cell;
use crate::model::{self, Model};
use crate::results::checkpoint;
use crate::results::store::{self, Staging};
use crate::train::checkpoint::{self as train_checkpoint, Resume};
use crate::train::fit::{fit_from, BadCheckpoint};
use crate::train::progress::{Progress, Sink};
use crate::train::{Fitted, Interrupted};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// How a cell ended.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub experiment: String,
    /// The unit: `<cell>`, or `<cell>/seed=<S>` for a replicate.
    pub cell: String,
    pub status: Status,
    pub best_epoch: usize,
    /// (name, value) of the monitored validation value at the best epoch.
    pub best: Option<(String, f64)>,
    pub test: Option<(String, f64)>,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    Complete,
    Skipped,
    Failed(String),
    Interrupted,
    /// Not started: `--fail-fast` after another cell failed.
    NotRun,
    Busy(String),
}

impl Outcome {
    /// A cell's outcome with nothing measured yet.
    pub fn new(cell: &Cell, status: Status, seconds: f64) -> Outcome {
        Outcome {
            experiment: cell.experiment.clone(),
            cell: cell.unit(),
            status,
            best_epoch: 0,
            best: None,
            test: None,
            seconds,
        }
    }
}

impl Status {
    pub fn label(&self) -> String {
        match self {
            Status::Complete => "complete".into(),
            Status::Skipped => "skipped (complete)".into(),
            Status::Failed(r) => format!("failed: {r}"),
            Status::Interrupted => "interrupted".into(),
            Status::NotRun => "not run (fail-fast)".into(),
            Status::Busy(r) => format!("busy: {r}"),
        }
    }
}

/// Floats in results files: fixed, locale-free, six decimals.
pub fn num(v: f64) -> String {
    format!("{v:.6}")
}

/// The metrics CSV: `epoch,train_loss,val_loss,…`, one row per epoch.
pub fn metrics_csv(f: &Fitted) -> String {
    let mut s = format!("epoch,{}\n", f.columns.join(","));
    for (i, row) in f.rows.iter().enumerate() {
        let vals: Vec<String> = row.iter().map(|v| num(*v)).collect();
        let _ = writeln!(s, "{},{}", i + 1, vals.join(","));
    }
    s
}

fn timing_csv(f: &Fitted) -> String {
    let mut s =
        "epoch,train_seconds,val_seconds,samples_per_second,checkpoint_seconds,checkpoint_bytes\n"
            .to_string();
    for (i, t) in f.timing.iter().enumerate() {
        let _ = writeln!(
            s,
            "{},{:.3},{:.3},{:.1},{:.4},{}",
            i + 1,
            t.train_seconds,
            t.val_seconds,
            t.samples_per_second,
            t.checkpoint_seconds,
            t.checkpoint_bytes
        );
    }
    s
}

/// `forecasts.csv`: sample test windows in the targets' units.
fn forecasts_csv(f: &Fitted) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["window_end", "step", "target", "truth", "forecast"]);
    for r in &f.forecasts {
        let _ = w.write_record([
            r.window_end.to_string(),
            r.step.to_string(),
            r.target.clone(),
            num(r.truth),
            num(r.forecast),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The resolved config plus how it ran (`[run]`: id, versions, device, threads).
fn config_toml(cell: &Cell, device: tch::Device, threads: usize) -> String {
    let mut value = toml::Value::try_from(&cell.config).expect("config serialises");
    let mut run = toml::Table::new();
    run.insert("content_id".into(), cell.id.clone().into());
    run.insert("cell".into(), cell.name.clone().into());
    run.insert("seqlab".into(), env!("CARGO_PKG_VERSION").into());
    run.insert(
        "libtorch".into(),
        crate::doctor::libtorch_version().unwrap_or_default().into(),
    );
    run.insert("device".into(), format!("{device:?}").to_lowercase().into());
    run.insert("threads".into(), (threads as i64).into());
    if let Some(r) = &cell.replicate {
        run.insert("replicate".into(), (r.index as i64).into());
        run.insert("replicates".into(), (r.count as i64).into());
        run.insert("base_seed".into(), (r.base_seed as i64).into());
    }
    value
        .as_table_mut()
        .expect("table")
        .insert("run".into(), run.into());
    toml::to_string(&value).expect("prints")
}

/// `weights`: the size in bytes of `weights.safetensors` when the run kept it.
fn summary_toml(cell: &Cell, f: &Fitted, params: usize, weights: Option<u64>) -> String {
    let mut t = toml::Table::new();
    t.insert(
        "status".into(),
        if f.failure.is_some() {
            "failed"
        } else {
            "complete"
        }
        .into(),
    );
    t.insert(
        "reason".into(),
        f.failure.clone().unwrap_or_default().into(),
    );
    t.insert("experiment".into(), cell.experiment.clone().into());
    t.insert("cell".into(), cell.name.clone().into());
    t.insert("content_id".into(), cell.id.clone().into());
    t.insert("epochs_run".into(), (f.rows.len() as i64).into());
    t.insert("best_epoch".into(), (f.best_epoch as i64).into());
    t.insert("monitor".into(), cell.config.train.monitor.clone().into());
    t.insert("params".into(), (params as i64).into());
    t.insert("trainable_params".into(), (params as i64).into());
    if let Some(bytes) = weights {
        t.insert("weights_bytes".into(), (bytes as i64).into());
    }
    let row_table = |row: &Vec<f64>| -> toml::Table {
        f.columns
            .iter()
            .zip(row)
            .map(|(c, v)| (c.clone(), toml::Value::Float(round6(*v))))
            .collect()
    };
    if f.best_epoch > 0 {
        t.insert("best".into(), row_table(&f.rows[f.best_epoch - 1]).into());
    }
    if let Some(last) = f.rows.last() {
        t.insert("last".into(), row_table(last).into());
    }
    if !f.test.is_empty() {
        let test: toml::Table = f
            .test
            .iter()
            .map(|(k, v)| (k.clone(), toml::Value::Float(round6(*v))))
            .collect();
        t.insert("test".into(), test.into());
    }
    toml::to_string(&t).expect("prints")
}

/// Rounds as the CSV prints, so summary and metrics agree digit for digit.
fn round6(v: f64) -> f64 {
    num(v).parse().unwrap_or(v)
}

/// Runs one cell into `root`. Errors and failures become an `Outcome`;
/// only an interrupt leaves nothing behind.
pub fn run(cell: &Cell, root: &Path, threads: usize, sink: Sink, stop: &AtomicBool) -> Outcome {
    let start = Instant::now();
    let mut outcome = Outcome::new(cell, Status::Complete, 0.0);
    let result = execute(cell, root, threads, sink, stop, &mut outcome);
    outcome.seconds = start.elapsed().as_secs_f64();
    match result {
        Ok(()) => {}
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => outcome.status = Status::Interrupted,
        Err(e) => {
            let details = format!("{e:#}");
            let reason = condense(&details);
            record_failure(cell, root, &reason, &details);
            outcome.status = Status::Failed(reason);
        }
    }
    outcome
}

/// [`run`], with a panic anywhere in the cell turned into a failed outcome
/// (its reason one line) instead of unwinding into the caller.
pub fn run_caught(
    cell: &Cell,
    root: &Path,
    threads: usize,
    sink: Sink,
    stop: &AtomicBool,
) -> Outcome {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(cell, root, threads, sink, stop)
    }));
    result.unwrap_or_else(|panic| {
        let msg = panic_text(panic.as_ref());
        let reason = format!("panicked: {}", condense(&msg));
        record_failure(cell, root, &reason, &msg);
        Outcome::new(cell, Status::Failed(reason), 0.0)
    })
}

/// The text a panic carried.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// The longest failure reason kept in `summary.toml` and the run table.
const REASON_CHARS: usize = 400;

/// A failure's text as one line: libtorch's message without its C++
/// frames ("Exception raised from …", "frame #0: …") and without the Rust
/// wrappers around it (`called Result::unwrap() on an Err value: Torch("…`).
pub fn condense(text: &str) -> String {
    // A panic carries libtorch's error in Debug form: its newlines escaped.
    let text = text.replace("\\n", "\n");
    let mut kept: Vec<String> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if t.starts_with("Exception raised from") || t.starts_with("frame #") {
            break; // the rest is libtorch's backtrace
        }
        kept.push(t.to_string());
    }
    let mut one = kept.join("; ");
    for wrapper in [
        "called `Result::unwrap()` on an `Err` value: ",
        "Internal torch error: ",
    ] {
        if let Some(i) = one.find(wrapper) {
            one.replace_range(i..i + wrapper.len(), "");
        }
    }
    if let Some(i) = one.find("Torch(\"") {
        one.replace_range(i..i + 7, "");
        if one.ends_with("\")") {
            one.truncate(one.len() - 2);
        }
    }
    let one = one.trim_end_matches([';', ' ']).to_string();
    if one.chars().count() > REASON_CHARS {
        let cut: String = one.chars().take(REASON_CHARS).collect();
        format!("{cut}… (the whole text: error.log in the cell folder)")
    } else {
        one
    }
}

/// Writes a failed summary (and the failure's whole text as `error.log`
/// when the one-line reason leaves something out), unless a complete
/// earlier result would be lost.
pub fn record_failure(cell: &Cell, root: &Path, reason: &str, details: &str) {
    if matches!(
        store::state(root, cell),
        store::State::Complete | store::State::Stale
    ) {
        return;
    }
    let Ok(staging) = Staging::new(root, &cell.experiment, &cell.unit()) else {
        return;
    };
    let fitted = Fitted {
        columns: vec![],
        rows: vec![],
        timing: vec![],
        best_epoch: 0,
        test: vec![],
        failure: Some(reason.to_string()),
        forecasts: vec![],
    };
    let _ = staging.write("config.toml", cell.config_toml().as_bytes());
    if details.trim() != reason.trim() && !details.is_empty() {
        let _ = staging.write("error.log", details.as_bytes());
    }
    let _ = staging.write(
        "summary.toml",
        summary_toml(cell, &fitted, 0, None).as_bytes(),
    );
    let _ = staging.commit();
}

/// The cell's checkpoint, if one is there and belongs to this run; any
/// other is named with the reason and left for the run to replace.
fn read_checkpoint(cell: &Cell, dir: &Path, libtorch: &str) -> Option<Resume> {
    let read = checkpoint::read(dir).and_then(|l| {
        l.map(|l| train_checkpoint::parse(l, &cell.id, libtorch))
            .transpose()
    });
    match read {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "seqlab: {}: ignoring the checkpoint {}: {e:#}; the cell starts over",
                cell.key(),
                dir.display()
            );
            None
        }
    }
}

fn execute(
    cell: &Cell,
    root: &Path,
    threads: usize,
    sink: Sink,
    stop: &AtomicBool,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let config = &cell.config;
    tch::set_num_threads(threads as i32);
    // Record what libtorch really uses in this worker, not what was asked.
    let threads = tch::get_num_threads().max(1) as usize;
    let device = model::placement::place(config)?.device;
    let build = || -> anyhow::Result<(crate::data::Prepared, Model)> {
        tch::manual_seed(config.train.seed as i64);
        let data = crate::data::prepare(&config.data, device)?;
        let model = Model::build(config, device, &data.target_inputs)?;
        Ok((data, model))
    };
    let (mut data, mut model) = build()?;
    if let Some(text) = &data.text {
        crate::model::shape::check_classes(&model.inferred, config.train.loss, &text.classes)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    let steps = if config.train.steps_per_epoch == 0 {
        data.train.full_pass_steps()
    } else {
        config.train.steps_per_epoch
    };
    let epochs = config.train.epochs;
    let libtorch = crate::doctor::libtorch_version().unwrap_or_default();
    let checkpoint_dir = checkpoint::dir(root, cell);
    let mut resume = read_checkpoint(cell, &checkpoint_dir, &libtorch);
    if let Some(r) = &resume {
        let done = r.meta.epoch;
        if done >= epochs || r.meta.stopped_early {
            eprintln!(
                "resuming {} after epoch {done}/{epochs} (its training is done)",
                cell.key()
            );
        } else {
            eprintln!("resuming {} at epoch {}/{epochs}", cell.key(), done + 1);
        }
    }
    let staging = Staging::new(root, &cell.experiment, &cell.unit())?;
    let mut save = |mut meta: train_checkpoint::Meta, tensors: Vec<(String, tch::Tensor)>| {
        meta.content_id = cell.id.clone();
        meta.seqlab = env!("CARGO_PKG_VERSION").to_string();
        meta.libtorch = libtorch.clone();
        let json = serde_json::to_string(&meta)?;
        checkpoint::write(&checkpoint_dir, &json, &tensors)
    };
    let fitted = loop {
        let done = resume.as_ref().map_or(0, |r| r.meta.epoch.min(epochs));
        let progress = Progress::new(sink, &cell.key(), (steps * (epochs - done)) as u64);
        let result = fit_from(
            config,
            &model,
            &mut data,
            &progress,
            stop,
            resume.take(),
            Some(&mut save),
        );
        progress.finish();
        match result {
            Ok(f) => break f,
            Err(e) if e.downcast_ref::<BadCheckpoint>().is_some() => {
                eprintln!(
                    "seqlab: {}: ignoring the checkpoint {}: {e:#}; the cell starts over",
                    cell.key(),
                    checkpoint_dir.display()
                );
                (data, model) = build()?;
            }
            Err(e) => {
                staging.discard();
                return Err(e);
            }
        }
    };
    let params = model.trainable_params();
    staging.write("config.toml", config_toml(cell, device, threads).as_bytes())?;
    staging.write("metrics.csv", metrics_csv(&fitted).as_bytes())?;
    staging.write("timing.csv", timing_csv(&fitted).as_bytes())?;
    let types: Vec<&str> = config.layers.iter().map(|l| l.type_name()).collect();
    let mut table = model::summary::table(&model.inferred, &types);
    let paths = model.recurrent_paths(true);
    if !paths.is_empty() {
        let _ = writeln!(
            table,
            "Recurrent path in training: {:?}; in evaluation: {:?}",
            paths,
            model.recurrent_paths(false)
        );
    }
    for name in model.kernel_convs() {
        let _ = writeln!(
            table,
            "{name}: runs in the conv kernel (CPU: windows read in place, pool in the same pass, backward through the kept maxima)"
        );
    }
    for name in model.kernel_attentions() {
        let _ = writeln!(
            table,
            "{name}: runs in the attention kernel (CPU: scores, softmax, dropout and weighted sum per sample and head, backward by hand)"
        );
    }
    for name in model.taped_denses() {
        let _ = writeln!(
            table,
            "{name}: the Dense layer runs outside autograd in training; the recurrent kernel hands it its gradient"
        );
    }
    for name in model.lookup_convs() {
        let _ = writeln!(
            table,
            "{name}: runs as table lookups over its embedding (CPU, batches with twice the vocabulary in windows)"
        );
    }
    for name in model.lookup_recurrents() {
        let _ = writeln!(
            table,
            "{name}: looks its input projections up in a table over its embedding's vocabulary (CPU kernel, batches with twice the vocabulary in tokens)"
        );
    }
    staging.write("model.txt", table.as_bytes())?;
    if !fitted.forecasts.is_empty() {
        staging.write("forecasts.csv", forecasts_csv(&fitted).as_bytes())?;
    }
    if let Some(pre) = &data.preprocess {
        staging.write("preprocess.toml", pre.to_toml().as_bytes())?;
    }
    if let Some(text) = &data.text {
        use crate::data::text_state::{TEXT_TOML, VOCAB_TXT};
        staging.write(VOCAB_TXT, text.vocab_txt.as_bytes())?;
        staging.write(TEXT_TOML, text.text_toml.as_bytes())?;
        if text.confusion && fitted.failure.is_none() {
            use crate::train::confusion::{confusion, confusion_csv};
            let counts = confusion(&model, &mut data.test, text.classes.len());
            staging.write(
                "confusion.csv",
                confusion_csv(&text.classes, &counts).as_bytes(),
            )?;
            crate::plot::confusion::figure(
                &staging.dir.join("confusion.csv"),
                &cell.experiment,
                &staging.dir.join("confusion.png"),
            )?;
        }
    }
    // A failed run's weights (a non-finite loss) are of no use to predict.
    let weights = if config.train.save_weights && fitted.failure.is_none() {
        let path = staging.dir.join(crate::results::WEIGHTS);
        model.vs.save(&path)?;
        Some(std::fs::metadata(&path)?.len())
    } else {
        None
    };
    if fitted.failure.is_none() {
        let title = if config.experiment.title.is_empty() {
            cell.experiment.clone()
        } else {
            config.experiment.title.clone()
        };
        crate::plot::history(
            &staging.dir.join("metrics.csv"),
            &format!("{title} — {}", cell.unit()),
            crate::results::baseline::value(root, &config.experiment.baseline),
            &staging.dir.join("history.png"),
        )?;
    }
    staging.write(
        "summary.toml",
        summary_toml(cell, &fitted, params, weights).as_bytes(),
    )?;
    let keeps_earlier = matches!(
        store::state(root, cell),
        store::State::Complete | store::State::Stale
    );
    if fitted.failure.is_some() && keeps_earlier {
        // A failed rerun never replaces an earlier complete result.
        staging.discard();
    } else {
        staging.commit()?;
    }
    // Finished (complete, or failed as it would fail again): no checkpoint.
    checkpoint::remove(&checkpoint_dir)?;
    outcome.best_epoch = fitted.best_epoch;
    // The lone target's MAE in its own units (°C for Jena), else the monitored value.
    let in_units: Vec<&String> = fitted
        .columns
        .iter()
        .filter(|c| c.starts_with("val_mae_"))
        .collect();
    if fitted.best_epoch > 0 {
        let row = &fitted.rows[fitted.best_epoch - 1];
        let key = match in_units[..] {
            [one] => one.as_str(),
            _ => config.train.monitor.as_str(),
        };
        if let Some(i) = fitted.columns.iter().position(|c| c == key) {
            outcome.best = Some((key.to_string(), row[i]));
        }
    }
    outcome.test = fitted
        .test
        .iter()
        .filter(|_| in_units.len() == 1)
        .find(|(k, _)| k.starts_with("test_mae_"))
        .or_else(|| fitted.test.iter().find(|(k, _)| k == "test_accuracy"))
        .or(fitted.test.first())
        .cloned();
    if let Some(reason) = fitted.failure {
        outcome.status = Status::Failed(reason);
    }
    Ok(())
}

#[cfg(test)]
mod condense_tests {
    use super::condense;

    #[test]
    fn libtorch_failures_become_one_line() {
        let text = "called `Result::unwrap()` on an `Err` value: Torch(\"DefaultCPUAllocator: can't allocate memory: you tried to allocate 12000000000000 bytes. Error code 12 (Cannot allocate memory)\nException raised from malloc at /pytorch/c10/core/impl/alloc_cpu.cpp:90 (most recent call first):\nframe #0: c10::Error::Error() + 0x9a\nframe #1: ...\")";
        assert_eq!(
            condense(text),
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 12000000000000 bytes. Error code 12 (Cannot allocate memory)"
        );
        assert_eq!(
            condense("preparing x.csv: bad\nmore"),
            "preparing x.csv: bad; more"
        );
        let escaped = "called `Result::unwrap()` on an `Err` value: Torch(\"[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory\\nframe #0: c10::ThrowEnforceNotMet\")";
        assert_eq!(
            condense(escaped),
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory"
        );
        assert!(condense(&"x".repeat(1000)).ends_with("error.log in the cell folder)"));
    }
}
