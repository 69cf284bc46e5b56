//! The scheduler, report and diff: skip and resume, failure isolation,
//! --fail-fast, lock contention, SIGINT, report contents and diff exit codes.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DENSE: &str = "[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = 1\n";

fn grid_file(dir: &Path, name: &str, grid: &str, extra: &str) -> PathBuf {
    tiny_jena(dir, name, &format!("{DENSE}\n[grid]\n{grid}\n"), extra)
}

/// Whether a run of `experiment` is writing a staging folder.
fn staging_exists(results: &Path, experiment: &str) -> bool {
    std::fs::read_dir(results.join(experiment))
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().contains(".partial-"))
        })
        .unwrap_or(false)
}

/// Waits (up to a minute) until a spawned run has started writing.
fn wait_for_staging(results: &Path, experiment: &str) {
    let start = Instant::now();
    while !staging_exists(results, experiment) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// With one worker the queue is visible: the cell with the most expected
/// work (here: epochs) runs first, whatever the grid's order.
#[test]
fn longest_cells_run_first() {
    let tmp = tempfile::tempdir().unwrap();
    let file = grid_file(tmp.path(), "order", "\"train.epochs\" = [1, 3, 2]", "");
    let results = tmp.path().join("results");
    let err = String::from_utf8_lossy(
        &run_ok(run_cmd(tmp.path(), &file, &results).args(["--jobs", "1", "--no-report"])).stderr,
    )
    .to_string();
    let finished: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("order/") && l.contains(": complete ("))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        finished,
        ["order/epochs=3", "order/epochs=2", "order/epochs=1"],
        "{err}"
    );
}

#[test]
fn complete_cells_are_skipped_and_changed_or_incomplete_ones_redone() {
    let tmp = tempfile::tempdir().unwrap();
    let file = grid_file(
        tmp.path(),
        "resume",
        "\"train.seed\" = [1, 2]",
        "loss = \"mse\"\n",
    );
    let results = tmp.path().join("results");
    let run = |extra: &[&str]| text(&run_ok(run_cmd(tmp.path(), &file, &results).args(extra)));
    run(&[]);
    let a = results.join("resume/seed=1");
    let b = results.join("resume/seed=2");
    let before_a = snapshot(&a);
    let out = run(&[]);
    assert!(out.contains("skipped (complete)"), "{out}");
    assert_eq!(
        before_a,
        snapshot(&a),
        "a complete cell must be untouched (bytes and mtimes)"
    );
    // An incomplete folder (no summary.toml) is redone.
    std::fs::remove_file(b.join("summary.toml")).unwrap();
    let out = run(&[]);
    assert!(b.join("summary.toml").exists(), "{out}");
    assert_eq!(before_a, snapshot(&a));
    // An edited config reruns: the content id no longer matches.
    std::fs::write(&file, read(&file).replace("epochs = 3", "epochs = 2")).unwrap();
    run(&[]);
    assert_eq!(
        read(&a.join("metrics.csv")).lines().count(),
        3,
        "rerun with 2 epochs"
    );
    // --force redoes complete cells.
    let before = snapshot(&a);
    std::thread::sleep(Duration::from_millis(20));
    run(&["--force", "--only", "seed=1"]);
    assert_ne!(
        before.iter().map(|f| f.2).collect::<Vec<_>>(),
        snapshot(&a).iter().map(|f| f.2).collect::<Vec<_>>()
    );
}

#[test]
fn a_failing_cell_does_not_stop_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let file = grid_file(
        tmp.path(),
        "iso",
        "\"train.optimizer.lr\" = [1e30, 0.001]",
        "loss = \"mse\"\n",
    );
    let results = tmp.path().join("results");
    let out = run_cmd(tmp.path(), &file, &results).output().unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("failed: loss became"), "{msg}");
    let ok: toml::Table =
        toml::from_str(&read(&results.join("iso/lr=0.001/summary.toml"))).unwrap();
    assert_eq!(ok["status"].as_str(), Some("complete"));
    let csv = read(&results.join("summary.csv"));
    assert!(
        csv.contains("iso,lr=1e30,failed") && csv.contains("iso,lr=0.001,complete"),
        "{csv}"
    );
}

#[test]
fn fail_fast_stops_scheduling_after_the_first_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let file = grid_file(
        tmp.path(),
        "ff",
        "\"train.optimizer.lr\" = [1e30, 0.001, 0.002]",
        "loss = \"mse\"\n",
    );
    let results = tmp.path().join("results");
    let out = run_cmd(tmp.path(), &file, &results)
        .args(["--jobs", "1", "--fail-fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        results.join("ff/lr=1e30/summary.toml").exists(),
        "the first cell ran and failed: {}",
        text(&out)
    );
    assert!(
        !results.join("ff/lr=0.001/summary.toml").exists(),
        "{}",
        text(&out)
    );
    assert!(!results.join("ff/lr=0.002/summary.toml").exists());
}

#[test]
fn a_locked_cell_names_the_process_holding_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_jena(tmp.path(), "locked", DENSE, "");
    let results = tmp.path().join("results");
    let _held = seqlab::run::lock::lock_cell(&results, "locked", "default").unwrap();
    let out = run_cmd(tmp.path(), &file, &results).output().unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains(&format!("is being run by process {}", std::process::id())),
        "{msg}"
    );
    assert!(!results.join("locked/default/summary.toml").exists());
}

#[test]
fn sigint_leaves_the_running_cell_incomplete_and_others_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let done = tiny_jena(tmp.path(), "neighbour", DENSE, "");
    run_ok(&mut run_cmd(tmp.path(), &done, &results));
    let neighbour = snapshot(&results.join("neighbour/default"));
    let slow = tiny_jena(tmp.path(), "slow", GRU, "");
    std::fs::write(&slow, read(&slow).replace("epochs = 3", "epochs = 100000")).unwrap();
    let child = seqlab(tmp.path())
        .arg("run")
        .arg(&slow)
        .arg(&done)
        .arg("--results")
        .arg(&results)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_staging(&results, "slow");
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(130), "{msg}");
    assert!(
        msg.contains("Run the same command again to resume"),
        "{msg}"
    );
    assert!(!results.join("slow/default/summary.toml").exists());
    assert_eq!(
        neighbour,
        snapshot(&results.join("neighbour/default")),
        "a complete folder must not change"
    );
}

/// A hand-made cell folder.
fn cell(root: &Path, exp: &str, cell: &str, status: &str, best_mae: f64, config: &str) {
    let dir = root.join(exp).join(cell);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("summary.toml"),
        format!("status = \"{status}\"\nreason = \"\"\nexperiment = \"{exp}\"\ncell = \"{cell}\"\ncontent_id = \"abc\"\nepochs_run = 2\nbest_epoch = 2\nmonitor = \"val_loss\"\nparams = 33\n\n[best]\nval_loss = {v}\nval_mae_degc = {best_mae}\n\n[test]\ntest_mae_degc = {t}\n", v = best_mae / 10.0, t = best_mae + 0.5),
    )
    .unwrap();
    std::fs::write(
        dir.join("metrics.csv"),
        "epoch,train_loss,val_loss\n1,0.5,0.4\n2,0.3,0.2\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("timing.csv"),
        "epoch,train_seconds,val_seconds,samples_per_second\n1,1.5,0.5,10\n2,2.5,0.5,10\n",
    )
    .unwrap();
    std::fs::write(dir.join("config.toml"), config).unwrap();
}

#[test]
fn report_tables_and_page_from_known_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("results");
    cell(
        &root,
        "jena_naive",
        "default",
        "complete",
        2.57,
        "[experiment]\nname = \"jena_naive\"\n",
    );
    cell(
        &root,
        "jena_gru",
        "default",
        "complete",
        2.35,
        "[experiment]\nname = \"jena_gru\"\ntitle = \"GRU\"\n",
    );
    cell(
        &root,
        "jena_gru",
        "units=8",
        "complete",
        2.45,
        "[experiment]\nname = \"jena_gru\"\n",
    );
    run_ok(seqlab(tmp.path()).arg("report").arg(&root));
    let csv = read(&root.join("summary.csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("experiment,cell,status,epochs,best_epoch"));
    assert_eq!(
        lines[1],
        "jena_gru,default,complete,2,2,val_loss,0.235000,,2.350000,,,,2.850000,,33,4.0,abc"
    );
    assert!(lines[3].starts_with("jena_naive,default,complete"));
    let md = read(&root.join("summary.md"));
    assert!(
        md.contains(
            "| jena_gru | default | complete | 2 | 2 | 0.2350 (2.35 °C) | 2.85 °C | 33 | 4 s |"
        ),
        "{md}"
    );
    assert!(root.join("figures/jena_val_mae.png").exists());
    let html = read(&root.join("index.html"));
    let mut refs = 0;
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let target = part.split('"').next().unwrap();
            assert!(
                root.join(target).exists(),
                "index.html references missing {target}"
            );
            refs += 1;
        }
    }
    assert!(refs >= 10, "only {refs} references");
    assert!(html.contains("figures/jena_val_mae.png"));
}

#[test]
fn diff_shows_changes_and_gates_on_regressions() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    cell(
        &a,
        "jena_gru",
        "default",
        "complete",
        2.30,
        "[train]\nepochs = 20\n",
    );
    cell(
        &b,
        "jena_gru",
        "default",
        "complete",
        2.40,
        "[train]\nepochs = 10\n",
    );
    cell(&a, "only_a", "default", "complete", 1.0, "");
    cell(&b, "only_b", "default", "complete", 1.0, "");
    let diff = |extra: &[&str]| {
        seqlab(tmp.path())
            .arg("diff")
            .arg(&a)
            .arg(&b)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = diff(&[]);
    let msg = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a worse MAE is a regression at tolerance 0:\n{msg}"
    );
    assert!(
        msg.contains("only in") && msg.contains("only_a/default") && msg.contains("only_b/default"),
        "{msg}"
    );
    assert!(msg.contains("config train.epochs: 20 → 10"), "{msg}");
    assert!(
        msg.contains("best.val_mae_degc") && msg.contains("+0.100000") && msg.contains("REGRESSED"),
        "{msg}"
    );
    assert_eq!(
        diff(&["--tolerance", "5%"]).status.code(),
        Some(0),
        "0.1 on 2.3 is within 5 %"
    );
    assert_eq!(
        diff(&["--tolerance", "0.05"]).status.code(),
        Some(1),
        "0.1 is beyond 0.05"
    );
    assert_eq!(
        diff(&["--tolerance", "0.2", "--metric", "val_mae_degc"])
            .status
            .code(),
        Some(0)
    );
    // An improvement is never a regression.
    let rev = seqlab(tmp.path())
        .arg("diff")
        .arg(&b)
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(rev.status.code(), Some(0), "{}", text(&rev));
}

#[test]
fn budget_splits_cores_between_jobs() {
    let cores = seqlab::runtime::cores();
    let (jobs, threads) = seqlab::run::scheduler::budget(8, None, None);
    assert!(jobs * threads <= cores.max(1));
    assert_eq!(jobs, cores.min(8));
    assert_eq!(seqlab::run::scheduler::budget(1, None, None), (1, cores));
    assert_eq!(seqlab::run::scheduler::budget(8, Some(1), None), (1, cores));
    assert_eq!(seqlab::run::scheduler::budget(8, None, Some(1)).1, 1);
}

#[test]
fn a_killed_run_leaves_no_summary_and_the_next_run_completes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let slow = tiny_jena(tmp.path(), "killed", GRU, "");
    std::fs::write(&slow, read(&slow).replace("epochs = 3", "epochs = 100000")).unwrap();
    let mut child = run_cmd(tmp.path(), &slow, &results).spawn().unwrap();
    wait_for_staging(&results, "killed");
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert!(!results.join("killed/default/summary.toml").exists());
    // The same command (with a sane epoch count) sweeps the dead staging folder and completes.
    std::fs::write(&slow, read(&slow).replace("epochs = 100000", "epochs = 2")).unwrap();
    run_ok(&mut run_cmd(tmp.path(), &slow, &results));
    assert!(results.join("killed/default/summary.toml").exists());
    assert!(
        !staging_exists(&results, "killed"),
        "stale staging folders are removed"
    );
}

#[test]
fn a_failed_rerun_keeps_the_earlier_complete_result() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let file = tiny_jena(tmp.path(), "keep", DENSE, "loss = \"mse\"\n");
    run_ok(&mut run_cmd(tmp.path(), &file, &results));
    let before = snapshot(&results.join("keep/default"));
    let out = run_cmd(tmp.path(), &file, &results)
        .args(["--set", "train.optimizer.lr=1e30"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("loss became"), "{}", text(&out));
    assert_eq!(
        before,
        snapshot(&results.join("keep/default")),
        "the earlier result must survive"
    );
}
