//! Tiny end-to-end runs on the fixtures: every results file with the right
//! content, a loss that decreases on a learnable signal, byte-for-byte
//! determinism, and a forced NaN recorded as a failure.
mod common;
use common::*;
use std::path::Path;

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    (info.width, info.height)
}

fn summary(dir: &Path) -> toml::Table {
    toml::from_str(&read(&dir.join("summary.toml"))).unwrap()
}

/// Runs one tiny experiment and checks its folder.
fn check_run(name: &str, layers: &str, extra: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_jena(tmp.path(), name, layers, extra);
    let results = tmp.path().join("results");
    run_ok(&mut run_cmd(tmp.path(), &file, &results));
    let dir = results.join(name).join("default");
    for f in [
        "config.toml",
        "metrics.csv",
        "summary.toml",
        "timing.csv",
        "model.txt",
        "history.png",
    ] {
        assert!(dir.join(f).is_file(), "{name}: {f} missing");
    }
    let metrics = read(&dir.join("metrics.csv"));
    let mut lines = metrics.lines();
    assert_eq!(
        lines.next().unwrap(),
        "epoch,train_loss,val_loss,train_mae,val_mae,train_mae_degc,val_mae_degc",
        "{name}: metrics columns"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{name}: one row per epoch");
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[0], (i + 1).to_string());
        assert!(
            cells[1..]
                .iter()
                .all(|c| c.parse::<f64>().unwrap().is_finite()
                    && c.split('.').nth(1).unwrap().len() == 6),
            "{name}: {row}"
        );
    }
    let s = summary(&dir);
    assert_eq!(s["status"].as_str(), Some("complete"), "{name}");
    assert_eq!(s["epochs_run"].as_integer(), Some(3));
    assert!(s["test"]["test_mae_degc"].as_float().unwrap() > 0.0);
    let best = s["best_epoch"].as_integer().unwrap() as usize;
    let best_val: f64 = rows[best - 1].split(',').nth(2).unwrap().parse().unwrap();
    assert_eq!(
        s["best"]["val_loss"].as_float(),
        Some(best_val),
        "{name}: summary agrees with metrics.csv"
    );
    for row in &rows {
        let v: f64 = row.split(',').nth(2).unwrap().parse().unwrap();
        assert!(v >= best_val, "{name}: best epoch is the lowest val_loss");
    }
    let config = read(&dir.join("config.toml"));
    assert!(
        config.contains("[run]")
            && config.contains("device = \"cpu\"")
            && config.contains("libtorch = \"2.13.0\""),
        "{config}"
    );
    assert!(read(&dir.join("model.txt")).contains("Total params"));
    let (w, h) = png_size(&dir.join("history.png"));
    assert!(w >= 800 && h >= 600, "{name}: figure {w}x{h}");
    let timing = read(&dir.join("timing.csv"));
    assert_eq!(timing.lines().count(), 4, "{timing}");
}

#[test]
fn dense_model_run() {
    check_run("dense", "[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = 8\nactivation = \"relu\"\n[[layers]]\ntype = \"dense\"\nunits = 1\n", "");
}

#[test]
fn gru_model_run() {
    check_run("gru", GRU, "");
}

#[test]
fn recurrent_dropout_gru_run() {
    check_run("gru_dropout", "[[layers]]\ntype = \"gru\"\nunits = 8\ndropout = 0.2\nrecurrent_dropout = 0.2\n[[layers]]\ntype = \"dense\"\nunits = 1\n", "");
}

#[test]
fn bidirectional_run_with_restore_best() {
    check_run("bidi", "[[layers]]\ntype = \"bidirectional\"\nlayer = { type = \"gru\", units = 4 }\n[[layers]]\ntype = \"dense\"\nunits = 1\n", "restore_best = true\n");
}

#[test]
fn conv_model_run() {
    check_run("conv", "[[layers]]\ntype = \"conv1d\"\nfilters = 4\nkernel_size = 3\nactivation = \"relu\"\n[[layers]]\ntype = \"max_pool1d\"\npool_size = 2\n[[layers]]\ntype = \"global_max_pool1d\"\n[[layers]]\ntype = \"dense\"\nunits = 1\n", "");
}

#[test]
fn imdb_conv_run_reports_accuracy() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("imdb_tiny.toml");
    std::fs::write(
        &file,
        format!(
            "[experiment]\nname = \"imdb_tiny\"\n[data]\nsource = \"imdb\"\npath = \"{}\"\nmax_features = 200\nmaxlen = 40\nbatch_size = 16\n[train]\nepochs = 2\nloss = \"binary_crossentropy\"\nthreads = 1\n[[layers]]\ntype = \"embedding\"\ninput_dim = 200\noutput_dim = 8\n[[layers]]\ntype = \"conv1d\"\nfilters = 4\nkernel_size = 3\nactivation = \"relu\"\n[[layers]]\ntype = \"global_max_pool1d\"\n[[layers]]\ntype = \"dense\"\nunits = 1\n",
            fixture("imdb_tiny.tar.gz").display()
        ),
    )
    .unwrap();
    let results = tmp.path().join("results");
    run_ok(&mut run_cmd(tmp.path(), &file, &results));
    let dir = results.join("imdb_tiny/default");
    assert_eq!(
        read(&dir.join("metrics.csv")).lines().next().unwrap(),
        "epoch,train_loss,val_loss,train_accuracy,val_accuracy"
    );
    // 16 reviews × 38 windows ≥ 2 × 200 words: the conv runs as lookups
    assert!(
        read(&dir.join("model.txt")).contains("conv1d_1: runs as table lookups"),
        "{}",
        read(&dir.join("model.txt"))
    );
    let s = summary(&dir);
    let acc = s["test"]["test_accuracy"].as_float().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    let (w, h) = png_size(&dir.join("history.png"));
    assert!(
        w >= 800 && h >= 1200,
        "two panels (loss and accuracy): {w}x{h}"
    );
}

#[test]
fn training_loss_decreases_on_a_learnable_signal() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("synth.csv");
    run_ok(
        seqlab(tmp.path())
            .args(["data", "synth-jena", "--rows", "3000", "--out"])
            .arg(&csv),
    );
    let file = tmp.path().join("learn.toml");
    std::fs::write(
        &file,
        format!(
            "[experiment]\nname = \"learn\"\n[data]\nsource = \"jena\"\npath = \"{}\"\nlookback = 48\nstep = 4\ndelay = 6\nbatch_size = 32\nsplits = {{ train = [0, 2000], val = [2001, 2500], test = [2501, 2990] }}\n[train]\nepochs = 6\nsteps_per_epoch = 20\nval_steps = 5\ntest_steps = 5\nthreads = 1\n[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = 16\nactivation = \"relu\"\n[[layers]]\ntype = \"dense\"\nunits = 1\n",
            csv.display()
        ),
    )
    .unwrap();
    let results = tmp.path().join("results");
    run_ok(&mut run_cmd(tmp.path(), &file, &results));
    let metrics = read(&results.join("learn/default/metrics.csv"));
    let train: Vec<f64> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(
        train.last().unwrap() < &(train[0] * 0.8),
        "training loss should fall: {train:?}"
    );
}

#[test]
fn same_config_and_seed_give_identical_files() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_jena(tmp.path(), "det", "[[layers]]\ntype = \"gru\"\nunits = 6\ndropout = 0.1\nrecurrent_dropout = 0.3\n[[layers]]\ntype = \"dense\"\nunits = 1\n", "");
    for r in ["r1", "r2"] {
        run_ok(&mut run_cmd(tmp.path(), &file, &tmp.path().join(r)));
    }
    for f in ["config.toml", "metrics.csv", "summary.toml"] {
        let a = std::fs::read(tmp.path().join("r1/det/default").join(f)).unwrap();
        let b = std::fs::read(tmp.path().join("r2/det/default").join(f)).unwrap();
        assert!(a == b, "{f} differs between two runs of the same config");
    }
    // A different seed gives different metrics.
    run_ok(run_cmd(tmp.path(), &file, &tmp.path().join("r3")).args(["--set", "train.seed=8"]));
    assert_ne!(
        read(&tmp.path().join("r1/det/default/metrics.csv")),
        read(&tmp.path().join("r3/det/default/metrics.csv"))
    );
}

#[test]
fn absurd_learning_rate_fails_the_run_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_jena(
        tmp.path(),
        "nan",
        "[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = 1\n",
        "loss = \"mse\"\n",
    );
    let out = run_cmd(tmp.path(), &file, &tmp.path().join("results"))
        .args(["--set", "train.optimizer={ name = \"sgd\", lr = 1e30 }"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = summary(&tmp.path().join("results/nan/default"));
    assert_eq!(s["status"].as_str(), Some("failed"));
    let reason = s["reason"].as_str().unwrap();
    assert!(reason.contains("epoch 1, step"), "{reason}");
}
