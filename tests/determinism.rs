//! A cell's numbers depend on its config, seed, device and thread count
//! alone: the same cell run alone, beside a cell with dropout masks under
//! `--jobs 2`, and after another cell in the same `seqlab run`, writes the
//! same bytes; two parallel runs of a grid agree cell by cell.
mod common;
use common::*;
use std::path::Path;

const DROPOUT_GRU: &str = "[[layers]]\ntype = \"gru\"\nunits = 8\ndropout = 0.3\nrecurrent_dropout = 0.3\n\n[[layers]]\ntype = \"dense\"\nunits = 1\n";

/// The files whose bytes the promise covers.
const REPRODUCIBLE: [&str; 3] = ["config.toml", "metrics.csv", "summary.toml"];

fn cell_files(results: &Path, experiment: &str, cell: &str) -> Vec<(String, String)> {
    REPRODUCIBLE
        .iter()
        .map(|f| {
            (
                f.to_string(),
                read(&results.join(experiment).join(cell).join(f)),
            )
        })
        .collect()
}

#[test]
fn a_cell_writes_the_same_bytes_alone_beside_another_and_after_another() {
    let tmp = tempfile::tempdir().unwrap();
    let solo = tiny_jena(tmp.path(), "solo", GRU, "");
    // More epochs: the longest-first queue starts it before `solo`.
    let noisy = tiny_jena(tmp.path(), "noisy", DROPOUT_GRU, "");
    let noisy_text = read(&noisy).replace("epochs = 3", "epochs = 5");
    std::fs::write(&noisy, noisy_text).unwrap();

    let alone = tmp.path().join("alone");
    run_ok(run_cmd(tmp.path(), &solo, &alone).args([
        "--jobs",
        "1",
        "--threads",
        "1",
        "--no-report",
    ]));

    let beside = tmp.path().join("beside");
    let out = run_ok(
        seqlab(tmp.path())
            .arg("run")
            .arg(&noisy)
            .arg(&solo)
            .arg("--results")
            .arg(&beside)
            .args(["--jobs", "2", "--threads", "1", "--no-report"]),
    );
    assert!(text(&out).contains("2 at a time"), "{}", text(&out));

    let after = tmp.path().join("after");
    let out = run_ok(
        seqlab(tmp.path())
            .arg("run")
            .arg(&noisy)
            .arg(&solo)
            .arg("--results")
            .arg(&after)
            .args(["--jobs", "1", "--threads", "1", "--no-report"]),
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let noisy_done = err.find("noisy/default: complete").expect("noisy ran");
    let solo_done = err.find("solo/default: complete").expect("solo ran");
    assert!(noisy_done < solo_done, "noisy must run first:\n{err}");

    let reference = cell_files(&alone, "solo", "default");
    assert!(
        reference[1].1.lines().count() == 4,
        "3 epochs: {}",
        reference[1].1
    );
    for (label, root) in [("beside", &beside), ("after", &after)] {
        for ((name, want), (_, got)) in reference.iter().zip(cell_files(root, "solo", "default")) {
            assert_eq!(
                &got, want,
                "{label}: solo/default/{name} differs from the lone run"
            );
        }
    }
    // The neighbour is itself the same whether it ran beside or before.
    assert_eq!(
        cell_files(&beside, "noisy", "default"),
        cell_files(&after, "noisy", "default")
    );
}

#[test]
fn two_parallel_runs_of_a_grid_agree_cell_by_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_jena(tmp.path(), "grid4", DROPOUT_GRU, "");
    let mut text_ = read(&file);
    text_.push_str(
        "\n[grid]\n\"layers.0.units\" = [4, 8]\n\"layers.0.recurrent_dropout\" = [0.0, 0.3]\n",
    );
    std::fs::write(&file, text_).unwrap();
    let roots = ["first", "second"].map(|n| tmp.path().join(n));
    for root in &roots {
        run_ok(run_cmd(tmp.path(), &file, root).args([
            "--jobs",
            "2",
            "--threads",
            "1",
            "--no-report",
        ]));
    }
    let mut cells: Vec<String> = std::fs::read_dir(roots[0].join("grid4"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('.'))
        .collect();
    cells.sort();
    assert_eq!(cells.len(), 4, "{cells:?}");
    for cell in &cells {
        assert_eq!(
            cell_files(&roots[0], "grid4", cell),
            cell_files(&roots[1], "grid4", cell),
            "grid4/{cell} differs between two runs"
        );
    }
    // Different cells really differ (the comparison above can fail).
    assert_ne!(
        cell_files(&roots[0], "grid4", &cells[0])[1],
        cell_files(&roots[0], "grid4", &cells[3])[1]
    );
}

#[test]
fn a_worker_refuses_a_cell_whose_config_does_not_match_its_id() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_jena(tmp.path(), "tampered", GRU, "");
    let loaded = seqlab::config::load(&file, &[]).unwrap();
    let mut cell = seqlab::config::expand(&loaded).unwrap().remove(0);
    let honest = seqlab::run::worker::encode(&cell).unwrap();
    assert_eq!(seqlab::run::worker::decode(&honest).unwrap().id, cell.id);
    cell.config.train.epochs += 1;
    let payload = seqlab::run::worker::encode(&cell).unwrap();
    let mut child = seqlab(tmp.path())
        .args(["cell-worker", "--threads", "1", "--results"])
        .arg(tmp.path().join("r"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(payload.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("hashes to"), "{}", text(&out));
    assert!(!tmp.path().join("r").exists());
}

/// A worker that dies (here: SIGKILL, as the out-of-memory killer would)
/// fails its cell with a one-line reason; the scheduler and the other cells
/// carry on.
#[test]
fn a_dead_worker_fails_only_its_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let doomed = tiny_jena(tmp.path(), "doomed", GRU, "");
    std::fs::write(
        &doomed,
        read(&doomed).replace("epochs = 3", "epochs = 100000"),
    )
    .unwrap();
    let fine = tiny_jena(tmp.path(), "fine", GRU, "");
    let child = seqlab(tmp.path())
        .arg("run")
        .arg(&doomed)
        .arg(&fine)
        .arg("--results")
        .arg(&results)
        .args(["--jobs", "1", "--no-report"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The staging folder is named after the worker's pid.
    let start = std::time::Instant::now();
    let worker: i32 = loop {
        let found = std::fs::read_dir(results.join("doomed"))
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.split(".partial-").nth(1)?.parse().ok()
            });
        if let Some(pid) = found {
            break pid;
        }
        assert!(start.elapsed().as_secs() < 60, "the worker never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_ne!(
        worker,
        child.id() as i32,
        "the cell runs in its own process"
    );
    // SAFETY: SIGKILL to the worker process our child started.
    unsafe { libc::kill(worker, libc::SIGKILL) };
    let out = child.wait_with_output().unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    let summary = read(&results.join("doomed/default/summary.toml"));
    assert!(summary.contains("status = \"failed\""), "{summary}");
    assert!(summary.contains("killed (SIGKILL"), "{summary}");
    let fine_summary = read(&results.join("fine/default/summary.toml"));
    assert!(
        fine_summary.contains("status = \"complete\""),
        "{fine_summary}"
    );
}
