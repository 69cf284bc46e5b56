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
