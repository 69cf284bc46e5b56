//! Memory before training: estimates against measured peaks, the refusal of
//! a cell that cannot fit (and `--force`), a libtorch allocation failure as a
//! one-line reason with the whole text in error.log, and the scheduler
//! keeping cells that do not fit together apart.
mod common;
use common::*;
use std::path::Path;

fn estimate(file: &Path, sets: &[String]) -> usize {
    let loaded = seqlab::config::load(file, sets).unwrap();
    let cell = &seqlab::config::expand(&loaded).unwrap()[0];
    seqlab::model::memory::estimate(&cell.config)
        .unwrap()
        .total()
}

/// `seqlab bench`'s peak resident memory (MiB) of one book model on a
/// generated Jena-format record, each in a process of its own.
#[test]
fn estimates_are_within_30_percent_of_measured_peaks() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("jena.csv");
    run_ok(
        seqlab(tmp.path())
            .args(["data", "synth-jena", "--rows", "8000", "--out"])
            .arg(&csv),
    );
    let sets = vec![
        format!("data.path={:?}", csv.display().to_string()),
        "data.splits={train=[0,3000],val=[3001,5500],test=[5501,8000]}".to_string(),
    ];
    for name in ["jena_dense", "jena_gru", "jena_conv1d"] {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("experiments/{name}.toml"));
        let out = tmp.path().join(format!("{name}.csv"));
        let mut cmd = seqlab(tmp.path());
        cmd.arg("bench").arg(&file);
        for s in &sets {
            cmd.arg("--set").arg(s);
        }
        run_ok(
            cmd.args(["--steps", "3", "--repeat", "1", "--threads", "1", "--out"])
                .arg(&out),
        );
        let mut reader = csv::Reader::from_path(&out).unwrap();
        let col = reader
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "peak_mib")
            .unwrap();
        let row = reader.records().next().unwrap().unwrap();
        let measured: f64 = row[col].parse().unwrap();
        let estimated = estimate(&file, &sets) as f64 / (1 << 20) as f64;
        let ratio = estimated / measured;
        assert!(
            (0.7..=1.3).contains(&ratio),
            "{name}: estimated {estimated:.0} MiB, measured {measured:.0} MiB"
        );
    }
}

fn huge_gru(dir: &Path) -> std::path::PathBuf {
    tiny_jena(
        dir,
        "huge",
        "[[layers]]\ntype = \"gru\"\nunits = 1000000\n\n[[layers]]\ntype = \"dense\"\nunits = 1\n",
        "",
    )
}

#[test]
fn a_cell_that_cannot_fit_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let file = huge_gru(tmp.path());
    let out = seqlab(tmp.path()).arg("check").arg(&file).output().unwrap();
    let msg = text(&out);
    assert!(!out.status.success(), "{msg}");
    assert!(
        msg.contains("huge/default: needs about") && msg.contains("TiB"),
        "{msg}"
    );
    assert!(
        msg.contains("layers[0] (gru)") && msg.contains("fewer units"),
        "{msg}"
    );
    assert!(msg.contains("--force"), "{msg}");
    // run refuses too, before anything is written.
    let results = tmp.path().join("r");
    let out = run_cmd(tmp.path(), &file, &results).output().unwrap();
    assert!(!out.status.success());
    assert!(!results.join("huge").exists());
    // --force: check passes; describe shows the estimate.
    run_ok(seqlab(tmp.path()).arg("check").arg(&file).arg("--force"));
    let d = text(&run_ok(seqlab(tmp.path()).arg("describe").arg(&file)));
    assert!(d.contains("Memory (estimate, batch 16): 32.7 TiB"), "{d}");
}

#[test]
fn a_forced_allocation_failure_is_one_line_with_the_whole_text_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let file = huge_gru(tmp.path());
    let results = tmp.path().join("r");
    let out = run_cmd(tmp.path(), &file, &results)
        .args(["--force", "--no-report"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let summary: toml::Table =
        toml::from_str(&read(&results.join("huge/default/summary.toml"))).unwrap();
    let reason = summary["reason"].as_str().unwrap();
    assert!(reason.contains("can't allocate memory"), "{reason}");
    assert!(
        !reason.contains("frame #"),
        "no C++ frames in the reason: {reason}"
    );
    assert!(reason.len() < 300, "{reason}");
    let log = read(&results.join("huge/default/error.log"));
    assert!(log.contains("frame #"), "the whole text is kept: {log}");
    assert!(
        !text(&out).contains("frame #1"),
        "the terminal sees one line: {}",
        text(&out)
    );
}

#[test]
fn cells_whose_estimates_exceed_the_limit_together_run_one_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tiny_jena(tmp.path(), "first", GRU, "");
    let b = tiny_jena(tmp.path(), "second", GRU, "");
    let each = estimate(&a, &[]);
    // Room for one and a half: alone each fits, together they do not.
    let limit = each + each / 2;
    let out = run_ok(
        seqlab(tmp.path())
            .env("SEQLAB_MEMORY_LIMIT", limit.to_string())
            .arg("run")
            .arg(&a)
            .arg(&b)
            .arg("--results")
            .arg(tmp.path().join("r"))
            .args(["--jobs", "2", "--no-report"]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("waiting for memory"), "{err}");
    // With room for both, nobody waits.
    let out = run_ok(
        seqlab(tmp.path())
            .env("SEQLAB_MEMORY_LIMIT", (3 * each).to_string())
            .arg("run")
            .arg(&a)
            .arg(&b)
            .arg("--results")
            .arg(tmp.path().join("r2"))
            .args(["--jobs", "2", "--no-report"]),
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("waiting for memory"));
}
