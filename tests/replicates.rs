//! Replicates end to end: layout and seeds, replicate 0 equal to the single
//! run, aggregation into summary.csv / replicates.csv / statistics.csv, a
//! failing replicate, resume in the middle of a cell's replicates, `--sweep`
//! against `[grid]`, Slurm task lists, and the diff's significance test.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DENSE: &str = "[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = 1\n";

/// A tiny Jena file in a folder of its own (so equal names do not collide).
fn file_in(dir: &Path, sub: &str, name: &str, layers: &str, extra: &str) -> PathBuf {
    let d = dir.join(sub);
    std::fs::create_dir_all(&d).unwrap();
    tiny_jena(&d, name, layers, extra)
}

/// A CSV file as rows of column → value.
fn csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = read(path);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

fn num(row: &BTreeMap<String, String>, key: &str) -> f64 {
    row[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} = {:?}", row[key]))
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

#[test]
fn replicates_have_their_own_folders_and_seeds_and_replicate_zero_is_the_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let single = file_in(tmp.path(), "one", "rep", GRU, "");
    let three = file_in(tmp.path(), "three", "rep", GRU, "repeats = 3\n");
    let (r1, r3) = (tmp.path().join("r1"), tmp.path().join("r3"));
    run_ok(run_cmd(tmp.path(), &single, &r1).arg("--no-report"));
    let out = run_ok(run_cmd(tmp.path(), &three, &r3).args(["--jobs", "2"]));
    assert!(
        text(&out).contains("3 cell(s) to run, 2 at a time"),
        "{}",
        text(&out)
    );

    let cell = r3.join("rep/default");
    assert!(!cell.join("summary.toml").exists());
    for f in ["metrics.csv", "summary.toml"] {
        assert_eq!(
            read(&cell.join("seed=7").join(f)),
            read(&r1.join("rep/default").join(f)),
            "replicate 0 (seed 7) must be the single run byte for byte: {f}"
        );
    }
    assert_ne!(
        read(&cell.join("seed=7/metrics.csv")),
        read(&cell.join("seed=8/metrics.csv")),
        "another seed, other numbers"
    );
    let single_config = read(&r1.join("rep/default/config.toml"));
    assert!(
        !single_config.contains("repeats =") && !single_config.contains("replicate ="),
        "{single_config}"
    );
    let config: toml::Table = toml::from_str(&read(&cell.join("seed=9/config.toml"))).unwrap();
    assert_eq!(config["train"]["seed"].as_integer(), Some(9));
    assert!(config["train"].get("repeats").is_none());
    assert_eq!(config["run"]["replicate"].as_integer(), Some(2));
    assert_eq!(config["run"]["replicates"].as_integer(), Some(3));
    assert_eq!(config["run"]["base_seed"].as_integer(), Some(7));

    // The plan: replicate 0 has the single run's content id.
    let plan = |file: &Path| {
        let out = run_ok(
            seqlab(tmp.path())
                .arg("plan")
                .arg(file)
                .arg("--results")
                .arg(&r3),
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let id = |line: &str| line.split_whitespace().nth(2).unwrap().to_string();
    let p1 = plan(&single);
    let p3 = plan(&three);
    let lines: Vec<&str> = p3.lines().collect();
    assert_eq!(lines.len(), 3, "{p3}");
    assert!(
        lines[2].contains("default/seed=9") && lines[2].contains("  complete  "),
        "{p3}"
    );
    assert_eq!(id(lines[0]), id(p1.lines().next().unwrap()));

    // summary.csv: one row, the means of replicates.csv's rows.
    let summary = csv(&r3.join("summary.csv"));
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["status"], "complete");
    let reps = csv(&r3.join("replicates.csv"));
    let seeds: Vec<&str> = reps.iter().map(|r| r["seed"].as_str()).collect();
    assert_eq!(seeds, ["7", "8", "9"]);
    let maes: Vec<f64> = reps.iter().map(|r| num(r, "best_val_mae_degc")).collect();
    let mean = maes.iter().sum::<f64>() / 3.0;
    assert!((num(&summary[0], "best_val_mae_degc") - mean).abs() < 2e-6);

    // statistics.csv: mean, sample std and the Student-t interval, by hand.
    let stats = csv(&r3.join("statistics.csv"));
    let row = stats
        .iter()
        .find(|r| r["value"] == "best.val_mae_degc")
        .expect("a statistics row for best.val_mae_degc");
    assert_eq!(
        (
            &row["replicates"][..],
            &row["complete"][..],
            &row["failed"][..]
        ),
        ("3", "3", "0")
    );
    let sd = (maes.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let h = 4.302652729911275 * sd / 3f64.sqrt(); // t(0.975; 2)
    for (key, want) in [
        ("mean", mean),
        ("std", sd),
        ("ci95_low", mean - h),
        ("ci95_high", mean + h),
    ] {
        assert!(
            (num(row, key) - want).abs() < 2e-6,
            "{key}: {} vs {want}",
            row[key]
        );
    }

    let md = read(&r3.join("summary.md"));
    assert!(
        md.contains("| rep | default | complete (3 replicates) |"),
        "{md}"
    );
    assert!(md.contains(" ± "), "{md}");
    for figure in ["history_rep_default.png", "jena_val_mae.png"] {
        assert!(r3.join("figures").join(figure).exists(), "{figure}");
    }
    let html = read(&r3.join("index.html"));
    for part in html.split("href=\"").skip(1) {
        let target = part.split('"').next().unwrap();
        assert!(
            r3.join(target).exists(),
            "index.html links to missing {target}"
        );
    }
    assert!(
        html.contains("rep/default/seed=8/summary.toml"),
        "links per replicate"
    );
}

#[test]
fn a_failing_replicate_is_counted_excluded_and_flagged_and_rerun_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_jena(tmp.path(), "flaky", DENSE, "repeats = 3\nloss = \"mse\"\n");
    let results = tmp.path().join("results");
    run_ok(&mut run_cmd(tmp.path(), &file, &results));
    let before = csv(&results.join("replicates.csv"));
    // Seed 8 again, with a learning rate that makes its loss explode.
    std::fs::remove_dir_all(results.join("flaky/default/seed=8")).unwrap();
    let out = run_cmd(tmp.path(), &file, &results)
        .args([
            "--only",
            "flaky/default/seed=8",
            "--set",
            "train.optimizer.lr=1e30",
        ])
        .output()
        .unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("flaky/default/seed=8: loss became"), "{msg}");

    let summary = csv(&results.join("summary.csv"));
    assert_eq!(summary[0]["status"], "partial", "{summary:?}");
    let kept: Vec<f64> = before
        .iter()
        .filter(|r| r["seed"] != "8")
        .map(|r| num(r, "best_val"))
        .collect();
    assert!(
        (num(&summary[0], "best_val") - (kept[0] + kept[1]) / 2.0).abs() < 2e-6,
        "the failed replicate is left out of the mean"
    );
    let stats = csv(&results.join("statistics.csv"));
    let row = stats
        .iter()
        .find(|r| r["value"] == "best.val_loss")
        .unwrap();
    assert_eq!((&row["complete"][..], &row["failed"][..]), ("2", "1"));
    let reps = csv(&results.join("replicates.csv"));
    assert_eq!(reps[1]["seed"], "8");
    assert_eq!(reps[1]["status"], "failed");
    let md = read(&results.join("summary.md"));
    assert!(md.contains("partial: 2 of 3 complete"), "{md}");
    let html = read(&results.join("index.html"));
    assert!(
        html.contains("1 of 3 replicates failed (seed=8: loss became"),
        "{html}"
    );
    let status = text(&run_ok(
        seqlab(tmp.path())
            .env("PATH", "/nonexistent")
            .arg("status")
            .arg(&results),
    ));
    assert!(
        status.contains("3 cell(s): 2 complete, 1 failed"),
        "{status}"
    );

    // The plain command reruns the failed replicate alone.
    let seven = snapshot(&results.join("flaky/default/seed=7"));
    let out = text(&run_ok(&mut run_cmd(tmp.path(), &file, &results)));
    assert!(out.contains("flaky/default/seed=8: complete"), "{out}");
    assert_eq!(out.matches("skipped (complete)").count(), 2, "{out}");
    assert_eq!(seven, snapshot(&results.join("flaky/default/seed=7")));
    assert_eq!(csv(&results.join("summary.csv"))[0]["status"], "complete");
    assert_eq!(csv(&results.join("replicates.csv")), before);
}

#[test]
fn an_interrupted_cell_resumes_with_only_its_missing_replicates() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_jena(tmp.path(), "resume", GRU, "repeats = 3\n");
    let results = tmp.path().join("results");
    run_ok(run_cmd(tmp.path(), &file, &results).args(["--no-report", "--jobs", "1"]));
    let cell = results.join("resume/default");
    let (seven, nine) = (
        snapshot(&cell.join("seed=7")),
        snapshot(&cell.join("seed=9")),
    );
    let eight = read(&cell.join("seed=8/metrics.csv"));
    // As an interrupted run leaves it: no seed=8 folder, a dead process' staging folder.
    std::fs::remove_dir_all(cell.join("seed=8")).unwrap();
    std::fs::create_dir_all(cell.join(".seed=8.partial-999999")).unwrap();
    let plan = text(&run_ok(
        seqlab(tmp.path())
            .arg("plan")
            .arg(&file)
            .arg("--results")
            .arg(&results),
    ));
    assert!(
        plan.contains("default/seed=8") && plan.contains("pending"),
        "{plan}"
    );
    let out = text(&run_ok(
        run_cmd(tmp.path(), &file, &results).arg("--no-report"),
    ));
    assert!(out.contains("1 cell(s) to run"), "{out}");
    assert!(out.contains("resume/default/seed=8: complete"), "{out}");
    assert_eq!(
        seven,
        snapshot(&cell.join("seed=7")),
        "untouched: bytes and mtimes"
    );
    assert_eq!(nine, snapshot(&cell.join("seed=9")));
    assert_eq!(
        read(&cell.join("seed=8/metrics.csv")),
        eight,
        "same seed, same numbers"
    );
    assert!(
        !cell.join(".seed=8.partial-999999").exists(),
        "stale staging swept"
    );
}

#[test]
fn raising_repeats_keeps_the_single_run_as_replicate_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_jena(tmp.path(), "grow", GRU, "");
    let results = tmp.path().join("results");
    run_ok(run_cmd(tmp.path(), &file, &results).arg("--no-report"));
    let single = snapshot(&results.join("grow/default"));
    let out = text(&run_ok(run_cmd(tmp.path(), &file, &results).args([
        "--no-report",
        "--set",
        "train.repeats=2",
    ])));
    assert!(out.contains("1 cell(s) to run"), "only seed 8 runs: {out}");
    let cell = results.join("grow/default");
    assert!(!cell.join("summary.toml").exists());
    let moved: Vec<_> = snapshot(&cell.join("seed=7"))
        .into_iter()
        .map(|(n, bytes, _)| (n, bytes))
        .collect();
    let single: Vec<_> = single.into_iter().map(|(n, bytes, _)| (n, bytes)).collect();
    assert_eq!(moved, single, "the single run became replicate 0 unchanged");
    assert!(cell.join("seed=8/summary.toml").exists());
}

#[test]
fn sweep_gives_the_cells_of_the_same_grid_table() {
    let tmp = tempfile::tempdir().unwrap();
    let grid =
        "\n[grid]\n\"train.optimizer.lr\" = [0.001, 0.005]\n\"train.loss\" = [\"mae\", \"mse\"]\n";
    let with_grid = file_in(tmp.path(), "a", "sw", &format!("{DENSE}{grid}"), "");
    let plain = file_in(tmp.path(), "b", "sw", DENSE, "");
    let results = tmp.path().join("results");
    let plan = |file: &Path, extra: &[&str]| {
        let out = run_ok(
            seqlab(tmp.path())
                .arg("plan")
                .arg(file)
                .args(extra)
                .arg("--results")
                .arg(&results),
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let sweeps = [
        "--sweep",
        "train.optimizer.lr=0.001,0.005",
        "--sweep",
        "train.loss=mae,mse",
    ];
    let from_grid = plan(&with_grid, &[]);
    assert_eq!(from_grid.lines().count(), 4, "{from_grid}");
    assert!(from_grid.contains("loss=mse,lr=0.005"), "{from_grid}");
    assert_eq!(plan(&plain, &sweeps), from_grid, "names and content ids");
    let mut with_repeats = sweeps.to_vec();
    with_repeats.extend(["--set", "train.repeats=2"]);
    assert_eq!(
        plan(&plain, &with_repeats),
        plan(&with_grid, &["--set", "train.repeats=2"])
    );
    // A sweep replaces the file's axis of the same key.
    let replaced = plan(&with_grid, &["--sweep", "train.optimizer.lr=0.01"]);
    assert_eq!(replaced.lines().count(), 2, "{replaced}");
    assert!(replaced.contains("loss=mae,lr=0.01"), "{replaced}");
    // `run` takes it too.
    run_ok(run_cmd(tmp.path(), &plain, &results).args([
        "--no-report",
        "--sweep",
        "train.epochs=1,2",
    ]));
    assert!(results.join("sw/epochs=1/summary.toml").exists());
    assert!(results.join("sw/epochs=2/summary.toml").exists());
    // A wrong key names the --sweep and suggests the right one.
    let out = seqlab(tmp.path())
        .arg("plan")
        .arg(&plain)
        .args(["--sweep", "train.epoch=1,2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let msg = text(&out);
    assert!(
        msg.contains("--sweep train.epoch") && msg.contains("did you mean `train.epochs`"),
        "{msg}"
    );
}

#[test]
fn slurm_tasks_and_only_name_single_replicates() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_jena(tmp.path(), "dry", DENSE, "repeats = 2\n");
    let results = tmp.path().join("results");
    let out = run_ok(
        seqlab(tmp.path())
            .arg("submit")
            .arg(&file)
            .args(["--dry-run", "--sweep", "layers.1.units=1", "--results"])
            .arg(&results),
    );
    let s = text(&out);
    assert!(
        s.contains("# 2 cell(s): dry/units=1/seed=7 dry/units=1/seed=8"),
        "{s}"
    );
    assert!(s.contains("--sweep layers.1.units=1"), "{s}");
    run_ok(run_cmd(tmp.path(), &file, &results).args([
        "--no-report",
        "--only",
        "dry/default/seed=8",
    ]));
    assert!(results.join("dry/default/seed=8/summary.toml").exists());
    assert!(!results.join("dry/default/seed=7").exists());
    // A whole `experiment/cell` names every replicate of exactly that cell.
    run_ok(run_cmd(tmp.path(), &file, &results).args(["--no-report", "--only", "dry/default"]));
    assert!(results.join("dry/default/seed=7/summary.toml").exists());
}

/// A hand-made replicate folder with a known best validation MAE.
fn replicate(root: &Path, cell: &str, seed: u64, count: usize, status: &str, mae: f64) {
    let dir = root
        .join("jena_gru")
        .join(cell)
        .join(format!("seed={seed}"));
    std::fs::create_dir_all(&dir).unwrap();
    let values = if status == "complete" {
        format!(
            "\n[best]\nval_loss = {l}\nval_mae_degc = {mae}\n\n[test]\ntest_mae_degc = {t}\n",
            l = mae / 10.0,
            t = mae + 0.5
        )
    } else {
        String::new()
    };
    std::fs::write(
        dir.join("summary.toml"),
        format!("status = \"{status}\"\nreason = \"{}\"\nexperiment = \"jena_gru\"\ncell = \"{cell}\"\ncontent_id = \"id{seed}\"\nepochs_run = 2\nbest_epoch = 2\nmonitor = \"val_loss\"\nparams = 33\n{values}", if status == "complete" { "" } else { "loss became NaN" }),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!("[train]\nepochs = 20\nseed = {seed}\n\n[run]\nbase_seed = 1\nreplicate = {}\nreplicates = {count}\n", seed - 1),
    )
    .unwrap();
}

fn replicates(root: &Path, values: &[f64]) {
    for (i, v) in values.iter().enumerate() {
        replicate(root, "default", i as u64 + 1, values.len(), "complete", *v);
    }
}

#[test]
fn diff_with_replicates_tests_significance() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |n: &str| tmp.path().join(n);
    // The samples of tests/fixtures/welch.py: a real change (p = 5.8e-5) and noise.
    replicates(
        &dir("base"),
        &[1.977222, 2.012007, 1.995310, 2.031245, 1.988871],
    );
    replicates(
        &dir("worse"),
        &[2.104512, 2.087730, 2.120011, 2.075623, 2.098004],
    );
    replicates(&dir("noise_a"), &[0.2638, 0.2685, 0.2701, 0.2599, 0.2664]);
    replicates(&dir("noise_b"), &[0.2652, 0.2619, 0.2711, 0.2677, 0.2640]);
    let diff = |a: &str, b: &str, extra: &[&str]| {
        seqlab(tmp.path())
            .arg("diff")
            .arg(dir(a))
            .arg(dir(b))
            .args(extra)
            .output()
            .unwrap()
    };
    let out = diff("base", "worse", &["--metric", "val_mae_degc"]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains("jena_gru/default  (A: 5 replicate(s); B: 5 replicate(s))"),
        "{msg}"
    );
    let line = msg
        .lines()
        .find(|l| l.trim_start().starts_with("best.val_mae_degc"))
        .unwrap();
    assert!(
        line.contains("2.000931 ± ") && line.contains("0.0001") && line.ends_with("REGRESSED"),
        "{line}"
    );
    assert!(msg.contains("1 significant regression(s)"), "{msg}");
    // The same change within a 10 % tolerance, or judged at a stricter alpha.
    let out = diff(
        "base",
        "worse",
        &["--metric", "val_mae_degc", "--tolerance", "10%"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("~ (within tolerance)"));
    let out = diff(
        "base",
        "worse",
        &["--metric", "val_mae_degc", "--alpha", "0.00001"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("~ (not significant)"));
    // The other way round it is an improvement.
    let out = diff("worse", "base", &["--metric", "val_mae_degc"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out)
            .trim_end()
            .lines()
            .any(|l| l.ends_with("improved")),
        "{}",
        text(&out)
    );
    // Noise is not a regression, even at tolerance 0.
    let out = diff("noise_a", "noise_b", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("~ (not significant)"), "{}", text(&out));

    // JSON for CI pipelines.
    let out = diff("base", "worse", &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["regressed"], true);
    let metrics = json["cells"][0]["metrics"].as_array().unwrap();
    let mae = metrics
        .iter()
        .find(|m| m["name"] == "best.val_mae_degc")
        .unwrap();
    assert_eq!(mae["verdict"], "regressed");
    assert!((mae["welch"]["p"].as_f64().unwrap() - 5.848125433698062e-05).abs() < 1e-9);
    assert_eq!(mae["a"]["n"], 5);
    assert_eq!(json["cells"][0]["significance_judged"], true);

    // A failed replicate is counted and left out of the test.
    replicate(&dir("worse"), "default", 6, 6, "failed", 0.0);
    let msg = text(&diff("base", "worse", &["--metric", "val_mae_degc"]));
    assert!(
        msg.contains("B: 5 of 6 replicate(s) complete, 1 failed (excluded)"),
        "{msg}"
    );

    // One replicate on a side: no test, the tolerance rule decides.
    replicate(&dir("single"), "default", 1, 1, "complete", 2.05);
    let out = diff("base", "single", &["--metric", "val_mae_degc"]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains("one replicate in B: significance cannot be judged"),
        "{msg}"
    );
    assert!(msg.contains("REGRESSED"), "{msg}");
    let out = diff(
        "base",
        "single",
        &["--metric", "val_mae_degc", "--tolerance", "5%"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn repeats_are_checked_and_expand_into_seeded_units() {
    let tmp = tempfile::tempdir().unwrap();
    let expand = |extra: &str, layers: &str| {
        let file = tiny_jena(tmp.path(), "units", layers, extra);
        seqlab::config::load(&file, &[]).and_then(|l| seqlab::config::expand(&l))
    };
    let cells = expand("repeats = 3\n", DENSE).unwrap();
    let seeds: Vec<u64> = cells.iter().map(|c| c.config.train.seed).collect();
    assert_eq!(seeds, [7, 8, 9]);
    assert!(cells
        .iter()
        .all(|c| c.config.train.repeats == 1 && c.name == "default"));
    assert_eq!(cells[1].unit(), "default/seed=8");
    assert_eq!(cells[1].key(), "units/default/seed=8");
    let single = expand("", DENSE).unwrap();
    assert_eq!(single[0].id, cells[0].id, "replicate 0 is the single run");
    assert!(single[0].replicate.is_none());
    assert_eq!(seqlab::config::content_id(&single[0].config), single[0].id);

    let err = expand("repeats = 0\n", DENSE).unwrap_err().to_string();
    assert!(err.contains("train.repeats: must be at least 1"), "{err}");
    let overlapping = format!("{DENSE}\n[grid]\n\"train.seed\" = [1, 2]\n");
    let err = expand("repeats = 2\n", &overlapping)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("seed=1/seed=2 and seed=2/seed=2 resolve to the same config")
            && err.contains("at least `repeats` apart"),
        "{err}"
    );
    let spaced = format!("{DENSE}\n[grid]\n\"train.seed\" = [1, 11]\n");
    assert_eq!(expand("repeats = 2\n", &spaced).unwrap().len(), 4);
}
