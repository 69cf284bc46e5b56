//! `seqlab submit --dry-run`, `seqlab status` and exact `--only` selection,
//! without a Slurm cluster (the real cluster test is `make test-slurm`).
mod common;
use common::{read, run_ok, seqlab, text, tiny_jena, GRU};

#[test]
fn only_with_a_whole_key_runs_exactly_that_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = format!("{GRU}\n[grid]\n\"layers.0.units\" = [3, 32]\n");
    let file = tiny_jena(tmp.path(), "exact", &grid, "");
    let results = tmp.path().join("results");
    run_ok(
        seqlab(tmp.path())
            .arg("run")
            .arg(&file)
            .args(["--only", "exact/units=3", "--no-report", "--results"])
            .arg(&results),
    );
    assert!(results.join("exact/units=3/summary.toml").exists());
    assert!(!results.join("exact/units=32").exists());
}

#[test]
fn dry_run_prints_both_scripts_and_submits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = format!("{GRU}\n[grid]\n\"layers.0.units\" = [3, 32]\n");
    let file = tiny_jena(tmp.path(), "dry", &grid, "");
    let results = tmp.path().join("results");
    let out = run_ok(
        seqlab(tmp.path())
            .arg("submit")
            .arg(&file)
            .args(["--dry-run", "--max-parallel", "1", "--partition", "gpu"])
            .args(["--gpus-per-task", "1", "--sbatch-arg=--account=lab"])
            .args(["--set", "train.epochs=2", "--results"])
            .arg(&results),
    );
    let s = text(&out);
    for want in [
        "#SBATCH --array=0-1%1",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab",
        "--only \"$cell\" --jobs 1 --threads 1",
        "--no-report --set train.epochs=2",
        "--dependency=afterany:",
        " report ",
        "dry/units=3 dry/units=32",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    assert!(!results.join(".slurm").exists(), "a dry run writes nothing");
}

#[test]
fn status_reads_the_folders_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = format!("{GRU}\n[grid]\n\"train.optimizer.lr\" = [1e30, 0.005]\n");
    let file = tiny_jena(tmp.path(), "st", &grid, "loss = \"mse\"\n");
    let results = tmp.path().join("results");
    let out = seqlab(tmp.path())
        .arg("run")
        .arg(&file)
        .args(["--no-report", "--results"])
        .arg(&results)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let slurm = results.join(".slurm/20260101-000000");
    std::fs::create_dir_all(&slurm).unwrap();
    std::fs::write(slurm.join("cells"), "st/lr=0.005\nst/lr=0.001\n").unwrap();
    let out = run_ok(
        seqlab(tmp.path())
            .env("PATH", "/nonexistent")
            .arg("status")
            .arg(&results),
    );
    let s = text(&out);
    let line = |key: &str| {
        s.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} in\n{s}"))
            .to_string()
    };
    assert!(line("st/lr=0.005").contains(" complete"), "{s}");
    assert!(line("st/lr=1e30").contains(" failed: loss became"), "{s}");
    assert!(line("st/lr=0.001").contains(" pending"), "{s}");
    assert!(
        s.contains("3 cell(s): 1 complete, 1 failed, 1 pending"),
        "{s}"
    );
    assert!(read(&results.join("st/lr=0.005/summary.toml")).contains("complete"));
}

/// The job array script without Slurm: a task warned with USR1 mid-cell
/// stops at a step boundary, asks `scontrol` to requeue exactly itself and
/// exits 0; run again (as the requeued task), it resumes from the
/// checkpoint and ends byte for byte as a local uninterrupted run.
#[test]
fn a_warned_array_task_requeues_itself_and_resumes_byte_identical() {
    use seqlab::run::slurm::{array_script, JobPlan};
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_jena(tmp.path(), "warned", GRU, "");
    let local = tmp.path().join("local");
    run_ok(
        seqlab(tmp.path())
            .arg("run")
            .arg(&file)
            .args(["--no-report", "--jobs", "1", "--threads", "1", "--results"])
            .arg(&local),
    );
    let results = tmp.path().join("slurm");
    let folder = results.join(".slurm/test");
    std::fs::create_dir_all(folder.join("logs")).unwrap();
    std::fs::write(folder.join("cells"), "warned/default\n").unwrap();
    let plan = JobPlan {
        binary: env!("CARGO_BIN_EXE_seqlab").into(),
        files: vec![file.clone()],
        sets: vec![],
        sweeps: vec![],
        root: results.clone(),
        folder: folder.clone(),
        cells: vec!["warned/default".into()],
        partition: None,
        time: None,
        cpus_per_task: 1,
        gpus_per_task: None,
        max_parallel: None,
        sbatch_args: vec![],
    };
    let script = folder.join("array.sbatch");
    std::fs::write(&script, array_script(&plan)).unwrap();
    // A stand-in for Slurm's scontrol that records what it was asked.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = tmp.path().join("scontrol.args");
    std::fs::write(
        bin.join("scontrol"),
        format!("#!/bin/sh\necho \"$@\" >> {}\n", asked.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("scontrol"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let task = |hook: Option<&str>| {
        let mut c = std::process::Command::new("bash");
        c.arg(&script)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("SEQLAB_DATA", tmp.path())
            .env("SLURM_ARRAY_TASK_ID", "0")
            .env("SLURM_ARRAY_JOB_ID", "41");
        if let Some(h) = hook {
            c.env("SEQLAB_TEST_SIGNAL_AT_STEP", h);
        }
        c.output().unwrap()
    };
    let first = task(Some("11:USR1"));
    let msg = text(&first);
    assert!(first.status.success(), "{msg}");
    assert!(msg.contains("requeueing it"), "{msg}");
    assert_eq!(read(&asked).trim(), "requeue 41_0");
    assert!(!results.join("warned/default/summary.toml").exists());
    assert!(results.join("warned/.default.checkpoint").is_dir());
    let again = task(None);
    let msg = text(&again);
    assert!(again.status.success(), "{msg}");
    assert!(
        msg.contains("resuming warned/default at epoch 2/3"),
        "{msg}"
    );
    assert_eq!(read(&asked).trim(), "requeue 41_0", "requeued once only");
    for f in ["metrics.csv", "summary.toml", "weights.safetensors"] {
        assert!(
            std::fs::read(local.join("warned/default").join(f)).unwrap()
                == std::fs::read(results.join("warned/default").join(f)).unwrap(),
            "{f} differs from the local run"
        );
    }
}
