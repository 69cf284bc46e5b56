//! Checkpoints and resume inside a cell: a run stopped by SIGINT, SIGTERM
//! or SIGKILL at steps drawn at random, then run again, ends byte for byte
//! where an uninterrupted run ends (metrics.csv, summary.toml, weights),
//! with dropout and without; a crash while a checkpoint is written leaves
//! the previous one; a damaged checkpoint is named and ignored; a failed
//! write is a clear error that leaves a complete result alone; a second
//! process on the cell is refused. The stop points come from test hooks
//! (`SEQLAB_TEST_SIGNAL_AT_STEP`, `SEQLAB_TEST_CHECKPOINT_FAULT`), never
//! from timing.
mod common;
use common::*;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DROPOUT_GRU: &str = "[[layers]]\ntype = \"gru\"\nunits = 8\ndropout = 0.3\nrecurrent_dropout = 0.3\n\n[[layers]]\ntype = \"dense\"\nunits = 1\n";

/// Self-attention with dropout on its weights, around a residual: the
/// attention kernel, whose masks come from a seed drawn each step.
const ATTENTION: &str = "[[layers]]\ntype = \"dense\"\nunits = 8\nname = \"x0\"\n\n[[layers]]\ntype = \"multi_head_attention\"\nnum_heads = 2\nkey_dim = 4\ndropout = 0.3\nname = \"att\"\ninputs = [\"x0\"]\n\n[[layers]]\ntype = \"add\"\nname = \"res\"\ninputs = [\"x0\", \"att\"]\n\n[[layers]]\ntype = \"flatten\"\n\n[[layers]]\ntype = \"dense\"\nunits = 1\n";

/// 4 epochs of 8 steps.
const STEPS: u64 = 8;
const EPOCHS: u64 = 4;

struct Case {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    file: PathBuf,
    name: String,
    sets: Vec<String>,
    /// Training steps per epoch.
    steps: u64,
}

impl Case {
    fn new(name: &str, layers: &str, sets: &[&str]) -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let file = tiny_jena(tmp.path(), name, layers, "");
        Case::with_file(tmp, file, name, STEPS, sets)
    }

    /// An experiment file of its own (`{dir}` in `text`: the test's folder).
    fn from_text(name: &str, text: &str, steps: u64, sets: &[&str]) -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&file, text).unwrap();
        Case::with_file(tmp, file, name, steps, sets)
    }

    fn with_file(
        tmp: tempfile::TempDir,
        file: PathBuf,
        name: &str,
        steps: u64,
        sets: &[&str],
    ) -> Case {
        let mut all = vec![format!("train.epochs={EPOCHS}")];
        all.extend(sets.iter().map(|s| s.to_string()));
        Case {
            dir: tmp.path().to_path_buf(),
            _tmp: tmp,
            file,
            name: name.into(),
            sets: all,
            steps,
        }
    }

    fn results(&self, tag: &str) -> PathBuf {
        self.dir.join(tag)
    }

    fn cmd(&self, results: &Path) -> Command {
        let mut c = run_cmd(&self.dir, &self.file, results);
        c.arg("--no-report");
        for s in &self.sets {
            c.arg("--set").arg(s);
        }
        c
    }

    fn cell(&self, results: &Path) -> PathBuf {
        results.join(&self.name).join("default")
    }

    fn checkpoint(&self, results: &Path) -> PathBuf {
        results.join(&self.name).join(".default.checkpoint")
    }

    /// The files that must match an uninterrupted run byte for byte.
    fn outputs(&self, results: &Path) -> Vec<(String, Vec<u8>)> {
        ["metrics.csv", "summary.toml", "weights.safetensors"]
            .iter()
            .map(|f| {
                let p = self.cell(results).join(f);
                (
                    f.to_string(),
                    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
                )
            })
            .collect()
    }

    fn reference(&self) -> Vec<(String, Vec<u8>)> {
        let r = self.results("reference");
        run_ok(&mut self.cmd(&r));
        assert!(
            !self.checkpoint(&r).exists(),
            "a complete cell keeps no checkpoint"
        );
        self.outputs(&r)
    }
}

fn checkpoint_epoch(dir: &Path) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&read(&dir.join("state.json"))).expect("state.json parses");
    v["epoch"].as_u64().unwrap()
}

fn leftovers(results: &Path, experiment: &str) -> Vec<String> {
    std::fs::read_dir(results.join(experiment))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.contains(".ckpt-tmp-") || n.contains(".partial-"))
                .collect()
        })
        .unwrap_or_default()
}

fn stop_and_resume(case: &Case, reference: &[(String, Vec<u8>)], signal: &str, step: u64) {
    let results = case.results(&format!("{signal}-{step}"));
    let out: Output = case
        .cmd(&results)
        .env("SEQLAB_TEST_SIGNAL_AT_STEP", format!("{step}:{signal}"))
        .output()
        .unwrap();
    let msg = text(&out);
    assert!(
        !out.status.success(),
        "{signal} at {step} did not stop the run: {msg}"
    );
    let done = step / case.steps;
    let ckpt = case.checkpoint(&results);
    if done > 0 {
        assert_eq!(checkpoint_epoch(&ckpt), done, "{signal} at {step}: {msg}");
        let status = seqlab(&case.dir)
            .arg("status")
            .arg(&results)
            .output()
            .unwrap();
        let status = text(&status);
        assert!(
            status.contains(&format!("interrupted at epoch {done}, checkpoint present")),
            "{signal} at {step}: {status}"
        );
    } else {
        assert!(
            !ckpt.exists(),
            "{signal} at {step}: a checkpoint before the first epoch ended"
        );
    }
    assert!(!case.cell(&results).join("summary.toml").exists() || signal == "KILL");
    let again = run_ok(&mut case.cmd(&results));
    let msg = text(&again);
    if done > 0 {
        assert!(
            msg.contains(&format!(
                "resuming {}/default at epoch {}/{EPOCHS}",
                case.name,
                done + 1
            )),
            "{msg}"
        );
    }
    for ((f, want), (_, got)) in reference.iter().zip(case.outputs(&results)) {
        assert!(
            *want == got,
            "{signal} at step {step}: {f} differs from the uninterrupted run"
        );
    }
    assert!(!ckpt.exists(), "the complete cell kept its checkpoint");
    assert!(leftovers(&results, &case.name).is_empty());
}

/// Steps drawn at random (seeded, so a failure can be replayed), plus the
/// first step of the second epoch.
fn points(seed: u64, steps: u64) -> Vec<u64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut v: Vec<u64> = (0..2).map(|_| rng.gen_range(1..steps * EPOCHS)).collect();
    v.push(steps);
    v
}

fn signals_at_random_steps(case: &Case, seed: u64) {
    let reference = case.reference();
    for (i, signal) in ["INT", "TERM", "KILL"].iter().enumerate() {
        for step in points(seed + i as u64, case.steps) {
            stop_and_resume(case, &reference, signal, step);
        }
    }
}

#[test]
fn signals_at_random_steps_resume_byte_identical_without_dropout() {
    let case = Case::new("plain", GRU, &["train.optimizer.name=adam"]);
    signals_at_random_steps(&case, 1);
}

#[test]
fn signals_at_random_steps_resume_byte_identical_with_dropout() {
    let case = Case::new("drop", DROPOUT_GRU, &["train.restore_best=true"]);
    signals_at_random_steps(&case, 2);
}

/// The attention kernel draws its dropout masks from a seed it takes from
/// libtorch's generator each step: a resumed run draws those seeds again.
#[test]
fn the_attention_kernel_with_dropout_resumes_byte_identical() {
    let case = Case::new("att", ATTENTION, &[]);
    let reference = case.reference();
    let model = read(&case.cell(&case.results("reference")).join("model.txt"));
    assert!(
        model.contains("att + res: runs in the attention kernel"),
        "{model}"
    );
    for (signal, step) in [("KILL", STEPS + 3), ("INT", 2 * STEPS + 5)] {
        stop_and_resume(&case, &reference, signal, step);
    }
}

/// A table whose training windows are walked in a shuffled order per pass
/// (`train_order = "epoch"`), with epochs shorter than a pass: the epoch
/// ends in the middle of a permutation, which the checkpoint carries.
#[test]
fn an_epoch_ordered_sampler_resumes_mid_permutation_byte_identical() {
    let text = format!(
        r#"[experiment]
name = "perm"

[data]
source = "csv"
path = "{csv}"
time_column = "date"
targets = ["OT"]
lookback = 24
batch_size = 16
train_order = "epoch"
splits = {{ train = [0, 600], val = [600, 800], test = [800, 1000] }}

[train]
steps_per_epoch = 7
val_steps = 3
test_steps = 3
seed = 5
threads = 1
optimizer = {{ name = "sgd", lr = 0.01, momentum = 0.9, nesterov = true }}

{GRU}"#,
        csv = fixture("etth1_head.csv").display()
    );
    let case = Case::from_text("perm", &text, 7, &[]);
    let reference = case.reference();
    for (signal, step) in [("TERM", 10), ("KILL", 22)] {
        stop_and_resume(&case, &reference, signal, step);
    }
}

/// Token batches (IMDB's reader on the tiny archive): the training order is
/// a permutation per pass, and an epoch of 3 steps ends inside a pass of 4.
#[test]
fn token_batches_resume_mid_pass_byte_identical() {
    let text = format!(
        "[experiment]\nname = \"tokens\"\n[data]\nsource = \"imdb\"\npath = \"{}\"\nmax_features = 200\nmaxlen = 40\nbatch_size = 4\n[train]\nsteps_per_epoch = 3\nloss = \"binary_crossentropy\"\nmetrics = [\"accuracy\"]\nthreads = 1\nseed = 9\n[[layers]]\ntype = \"embedding\"\ninput_dim = 200\noutput_dim = 8\n[[layers]]\ntype = \"conv1d\"\nfilters = 4\nkernel_size = 3\nactivation = \"relu\"\n[[layers]]\ntype = \"global_max_pool1d\"\n[[layers]]\ntype = \"dense\"\nunits = 1\nactivation = \"sigmoid\"\n",
        fixture("imdb_tiny.tar.gz").display()
    );
    let case = Case::from_text("tokens", &text, 3, &[]);
    let reference = case.reference();
    for (signal, step) in [("INT", 4), ("KILL", 8)] {
        stop_and_resume(&case, &reference, signal, step);
    }
}

#[test]
fn a_crash_while_writing_a_checkpoint_leaves_the_previous_one() {
    let case = Case::new("crash", GRU, &[]);
    let reference = case.reference();
    let results = case.results("r");
    let out = case
        .cmd(&results)
        .env("SEQLAB_TEST_CHECKPOINT_FAULT", "abort:3")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let ckpt = case.checkpoint(&results);
    assert_eq!(checkpoint_epoch(&ckpt), 2, "the previous checkpoint");
    assert!(
        leftovers(&results, "crash")
            .iter()
            .any(|n| n.contains(".ckpt-tmp-")),
        "the half-written checkpoint is left under its temporary name"
    );
    let again = run_ok(&mut case.cmd(&results));
    assert!(text(&again).contains("resuming crash/default at epoch 3/4"));
    assert_eq!(case.outputs(&results), reference);
    assert!(leftovers(&results, "crash").is_empty(), "swept");
}

/// `resumes`: whether the damage shows only once the tensors meet the model
/// (the run announces the resume first).
fn damaged_checkpoint_is_ignored(damage: impl Fn(&Path), why: &str, resumes: bool) {
    let case = Case::new("damaged", GRU, &[]);
    let reference = case.reference();
    let results = case.results("r");
    let out = case
        .cmd(&results)
        .env(
            "SEQLAB_TEST_SIGNAL_AT_STEP",
            format!("{}:TERM", 2 * STEPS + 3),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let ckpt = case.checkpoint(&results);
    assert_eq!(checkpoint_epoch(&ckpt), 2);
    damage(&ckpt);
    let again = run_ok(&mut case.cmd(&results));
    let msg = text(&again);
    assert!(
        msg.contains(&format!("ignoring the checkpoint {}", ckpt.display()))
            && msg.contains(why)
            && msg.contains("the cell starts over"),
        "{msg}"
    );
    assert_eq!(msg.contains("resuming"), resumes, "{msg}");
    assert_eq!(case.outputs(&results), reference);
    assert!(!ckpt.exists());
}

#[test]
fn a_truncated_checkpoint_is_named_and_ignored() {
    damaged_checkpoint_is_ignored(
        |c| {
            let p = c.join("state.safetensors");
            let len = std::fs::metadata(&p).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.set_len(len - 100).unwrap();
        },
        "state.safetensors is damaged",
        false,
    );
}

#[test]
fn a_corrupt_checkpoint_is_named_and_ignored() {
    damaged_checkpoint_is_ignored(
        |c| std::fs::write(c.join("state.json"), b"{\"epoch\": 2, garbage").unwrap(),
        "state.json is damaged",
        false,
    );
}

#[test]
fn a_checkpoint_of_another_version_is_named_and_ignored() {
    damaged_checkpoint_is_ignored(
        |c| {
            let p = c.join("state.json");
            let t = read(&p).replace(
                &format!("\"seqlab\":\"{}\"", env!("CARGO_PKG_VERSION")),
                "\"seqlab\":\"0.0.1\"",
            );
            std::fs::write(p, t).unwrap();
        },
        "made by seqlab 0.0.1",
        false,
    );
}

#[test]
fn a_checkpoint_that_does_not_fit_the_model_is_named_and_ignored() {
    damaged_checkpoint_is_ignored(
        |c| {
            // A well-formed file whose tensors belong to no model here.
            let t = tch::Tensor::zeros([3], (tch::Kind::Float, tch::Device::Cpu));
            tch::Tensor::write_safetensors(&[("model/x", &t)], c.join("state.safetensors"))
                .unwrap();
        },
        "is missing",
        true,
    );
}

#[test]
fn a_failed_checkpoint_write_is_a_clear_error_and_keeps_the_complete_result() {
    let case = Case::new("full", GRU, &[]);
    let reference = case.reference();
    let results = case.results("reference");
    // Rerun the complete cell with a write that fails as a full disk does.
    let out = case
        .cmd(&results)
        .arg("--force")
        .env("SEQLAB_TEST_CHECKPOINT_FAULT", "error:2")
        .output()
        .unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains("No space left on device") && msg.contains(".default.checkpoint"),
        "{msg}"
    );
    assert_eq!(
        case.outputs(&results),
        reference,
        "the complete result survives"
    );
    assert!(
        leftovers(&results, "full").is_empty(),
        "nothing half-written is left"
    );
    // The checkpoint of epoch 1 is whole; the one that failed never appeared.
    assert_eq!(checkpoint_epoch(&case.checkpoint(&results)), 1);

    // Without an earlier result: the cell fails with the reason, and the
    // next run resumes from the last whole checkpoint.
    let fresh = case.results("fresh");
    let out = case
        .cmd(&fresh)
        .env("SEQLAB_TEST_CHECKPOINT_FAULT", "error:2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let summary = read(&case.cell(&fresh).join("summary.toml"));
    assert!(
        summary.contains("status = \"failed\"") && summary.contains("No space left on device"),
        "{summary}"
    );
    assert!(!case.cell(&fresh).join("weights.safetensors").exists());
    let again = run_ok(&mut case.cmd(&fresh));
    assert!(text(&again).contains("resuming full/default at epoch 2/4"));
    assert_eq!(case.outputs(&fresh), reference);
}

#[test]
fn restart_discards_the_checkpoint() {
    let case = Case::new("restart", GRU, &[]);
    let reference = case.reference();
    let results = case.results("r");
    let out = case
        .cmd(&results)
        .env("SEQLAB_TEST_SIGNAL_AT_STEP", format!("{}:INT", STEPS + 1))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(case.checkpoint(&results).exists());
    let again = run_ok(case.cmd(&results).arg("--restart"));
    assert!(!text(&again).contains("resuming"), "{}", text(&again));
    assert_eq!(case.outputs(&results), reference);
}

#[test]
fn a_second_process_on_a_checkpointed_cell_is_refused_with_the_holders_pid() {
    let case = Case::new("held", GRU, &[]);
    let results = case.results("r");
    let out = case
        .cmd(&results)
        .env("SEQLAB_TEST_SIGNAL_AT_STEP", format!("{}:TERM", STEPS + 2))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let ckpt = case.checkpoint(&results);
    let before = std::fs::read(ckpt.join("state.safetensors")).unwrap();
    let _held = seqlab::run::lock::lock_cell(&results, "held", "default").unwrap();
    let out = case.cmd(&results).output().unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains(&format!("is being run by process {}", std::process::id())),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(ckpt.join("state.safetensors")).unwrap(),
        before
    );
}
