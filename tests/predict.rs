//! `seqlab predict` and `seqlab evaluate` on a cell trained on the ETTh1
//! fixture: forecasts equal the model's outputs in training, evaluation
//! equals the summary's test section, a backtest equals evaluation, every
//! refusal says what is wrong, and the cell's own files never change.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Device;

const LAYERS: &str =
    "[[layers]]\ntype = \"gru\"\nunits = 4\n\n[[layers]]\ntype = \"dense\"\nunits = 8\n";

/// Trains a tiny two-target, four-step cell on the fixture; returns its folder.
fn train(dir: &Path, name: &str, layers: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[experiment]
name = "{name}"

[data]
source = "csv"
path = "{csv}"
time_column = "date"
targets = ["OT", "HUFL"]
lookback = 48
horizon = 4
batch_size = 16
splits = {{ train = [0, 600], val = [600, 800], test = [800, 1000] }}

[train]
epochs = 2
steps_per_epoch = 5
seed = 3
threads = 1
loss = "mse"
evaluate_test = true
optimizer = {{ name = "rmsprop", lr = 0.005 }}

{layers}"#,
            csv = fixture("etth1_head.csv").display()
        ),
    )
    .unwrap();
    let results = dir.join("results");
    run_ok(run_cmd(dir, &path, &results).arg("--no-report"));
    results.join(name).join("default")
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_file() {
            out.insert(e.path(), std::fs::read(e.path()).unwrap());
        }
    }
    out
}

fn copy_cell(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for (path, bytes) in snapshot(from) {
        std::fs::write(to.join(path.file_name().unwrap()), bytes).unwrap();
    }
}

/// The time of data row `r` of the fixture.
fn time_of_row(r: usize) -> String {
    let text = read(&fixture("etth1_head.csv"));
    let line = text.lines().nth(r + 1).unwrap();
    line.split(',').next().unwrap().to_string()
}

fn predict(dir: &Path, cell: &Path, args: &[&str]) -> std::process::Output {
    seqlab(dir)
        .arg("predict")
        .arg(cell)
        .arg("--data")
        .arg(fixture("etth1_head.csv"))
        .args(args)
        .output()
        .unwrap()
}

/// CSV rows of `origin,time,step,target,forecast,truth`.
fn lines(text: &str) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        ["origin", "time", "step", "target", "forecast", "truth"]
    );
    r.records()
        .map(|x| x.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn toml_section(text: &str, name: &str) -> toml::Table {
    let t: toml::Table = toml::from_str(text).unwrap();
    t[name].as_table().unwrap().clone()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * (1.0 + b.abs())
}

#[test]
fn forecasts_and_metrics_are_those_of_training() {
    let tmp = tempfile::tempdir().unwrap();
    let cell = train(tmp.path(), "ett", LAYERS);
    let before = snapshot(&cell);
    let summary: toml::Table = toml::from_str(&read(&cell.join("summary.toml"))).unwrap();
    let weights = std::fs::metadata(cell.join("weights.safetensors"))
        .unwrap()
        .len();
    assert_eq!(summary["weights_bytes"].as_integer(), Some(weights as i64));

    // A validation window: the same numbers the training data path and model give.
    let loaded = seqlab::predict::load(&cell, Some("cpu")).unwrap();
    let data = seqlab::data::prepare(&loaded.config().data, Device::Cpu).unwrap();
    let seqlab::data::Batcher::Series(val) = &data.val else {
        panic!("a table's batches")
    };
    let end = val.list_ends().unwrap()[7];
    let (x, y) = val.gather(&[end]);
    let out = loaded.model.forward(&x, false).reshape([1, 4, 2]);
    let y = y.reshape([1, 4, 2]);
    let at = time_of_row(end as usize - 1);
    let out_cli = predict(tmp.path(), &cell, &["--at", &at]);
    assert!(out_cli.status.success(), "{}", text(&out_cli));
    let got = lines(&String::from_utf8_lossy(&out_cli.stdout));
    assert_eq!(got.len(), 8, "4 steps × 2 targets");
    let units = loaded.units();
    for (i, row) in got.iter().enumerate() {
        let (h, k) = (i / 2, i % 2);
        assert_eq!(row[0], at);
        assert_eq!(row[1], time_of_row(end as usize + h));
        assert_eq!(row[2], (h + 1).to_string());
        assert_eq!(row[3], units[k].name);
        let normalised = out.double_value(&[0, h as i64, k as i64]);
        let forecast: f64 = row[4].parse().unwrap();
        assert!(
            close(forecast, normalised * units[k].scale + units[k].shift),
            "{row:?}"
        );
        let truth: f64 = row[5].parse().unwrap();
        let expected = y.double_value(&[0, h as i64, k as i64]) * units[k].scale + units[k].shift;
        assert!(close(truth, expected), "{row:?} vs {expected}");
    }

    // The test windows training wrote to forecasts.csv.
    let written = read(&cell.join("forecasts.csv"));
    let mut rows = csv::Reader::from_reader(written.as_bytes());
    let first: Vec<String> = rows
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let end: usize = first[0].parse().unwrap();
    let out_cli = predict(tmp.path(), &cell, &["--at", &time_of_row(end - 1)]);
    let got = lines(&String::from_utf8_lossy(&out_cli.stdout));
    assert_eq!(got[0][3], first[2]);
    let (a, b): (f64, f64) = (got[0][4].parse().unwrap(), first[4].parse().unwrap());
    assert!(close(a, b), "predict {a} vs training {b}");

    // evaluate on the training file: the summary's test section and the last epoch's validation.
    let eval = seqlab(tmp.path())
        .arg("evaluate")
        .arg(&cell)
        .args(["--data", fixture("etth1_head.csv").to_str().unwrap()])
        .args(["--split", "test", "--name", "again"])
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", text(&eval));
    let written = read(&cell.join("eval/again/summary.toml"));
    assert_eq!(
        toml_section(&written, "test"),
        summary["test"].as_table().unwrap().clone()
    );
    assert!(cell.join("eval/again/forecast.png").exists());
    let eval = seqlab(tmp.path())
        .arg("evaluate")
        .arg(&cell)
        .args(["--data", fixture("etth1_head.csv").to_str().unwrap()])
        .args(["--split", "val"])
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", text(&eval));
    let val = toml_section(&read(&cell.join("eval/etth1_head-val/summary.toml")), "val");
    let last = summary["last"].as_table().unwrap();
    assert!(!val.is_empty());
    for (k, v) in &val {
        assert_eq!(Some(v), last.get(k), "{k}");
    }

    // The report lists both evaluations under their cell, with their metrics.
    let results = cell.parent().unwrap().parent().unwrap();
    run_ok(seqlab(tmp.path()).arg("report").arg(results));
    let md = read(&results.join("summary.md"));
    let listed: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| ett/default |"))
        .collect();
    assert_eq!(listed.len(), 2, "{md}");
    assert!(
        listed[0].starts_with("| ett/default | again |") && listed[0].contains("| test | "),
        "{md}"
    );
    let test_mae = summary["test"]["test_mae"].as_float().unwrap();
    assert!(
        listed[0].contains(&format!("test_mae {test_mae:.4}")),
        "{md}"
    );
    assert!(
        listed[1].starts_with("| ett/default | etth1_head-val |"),
        "{md}"
    );
    let html = read(&results.join("index.html"));
    assert!(
        html.contains("ett/default/eval/again/summary.toml"),
        "evaluations linked"
    );

    // A backtest over the test split's windows (first targets in rows 800 … 996).
    let metrics = tmp.path().join("bt.toml");
    let bt = predict(
        tmp.path(),
        &cell,
        &[
            "--from",
            &time_of_row(800),
            "--to",
            &time_of_row(997),
            "--metrics",
            metrics.to_str().unwrap(),
        ],
    );
    assert!(bt.status.success(), "{}", text(&bt));
    let bt_lines = lines(&String::from_utf8_lossy(&bt.stdout));
    assert_eq!(bt_lines.len(), 197 * 8);
    let m = read(&metrics);
    assert!(m.contains("windows = 197"), "{m}");
    let backtest = toml_section(&m, "backtest");
    let test = summary["test"].as_table().unwrap();
    assert_eq!(backtest.len(), test.len());
    for (k, v) in test {
        let key = k.replacen("test_", "backtest_", 1);
        assert_eq!(backtest.get(&key), Some(v), "{key}");
    }

    // --last: the window after the file's last row, timestamps from the frequency, no truth.
    let last = predict(tmp.path(), &cell, &["--last"]);
    let got = lines(&String::from_utf8_lossy(&last.stdout));
    assert_eq!(got.len(), 8);
    assert_eq!(got[0][0], time_of_row(1199));
    assert_eq!(got[0][1], "2016-08-20 00:00:00");
    assert_eq!(got[7][1], "2016-08-20 03:00:00");
    assert!(got.iter().all(|r| r[5].is_empty()));

    assert_eq!(snapshot(&cell), before, "the cell's own files changed");
}

fn refused(out: &std::process::Output, needles: &[&str]) {
    let t = text(out);
    assert!(!out.status.success(), "expected a refusal:\n{t}");
    for n in needles {
        assert!(t.contains(n), "missing {n:?} in:\n{t}");
    }
    assert!(!t.contains("panicked"), "{t}");
}

#[test]
fn refusals_name_what_differs_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cell = train(tmp.path(), "ett", LAYERS);
    let other = train(
        tmp.path(),
        "wider",
        &LAYERS.replace("units = 4", "units = 6"),
    );
    let out = tmp.path().join("forecast.csv");
    let out_arg = ["--out", out.to_str().unwrap()];

    // A file without one of the cell's columns.
    let text_in = read(&fixture("etth1_head.csv"));
    let dropped: String = text_in
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(2);
            f.join(",") + "\n"
        })
        .collect();
    let short = tmp.path().join("short.csv");
    std::fs::write(&short, dropped).unwrap();
    let o = seqlab(tmp.path())
        .arg("predict")
        .arg(&cell)
        .arg("--data")
        .arg(&short)
        .args(out_arg)
        .output()
        .unwrap();
    refused(&o, &["short.csv", "\"HULL\"", "trained on the columns"]);
    let o = seqlab(tmp.path())
        .arg("evaluate")
        .arg(&cell)
        .arg("--data")
        .arg(&short)
        .output()
        .unwrap();
    refused(&o, &["\"HULL\""]);
    assert!(!cell.join("eval").exists());

    // Truncated weights.
    let broken = tmp.path().join("broken");
    copy_cell(&cell, &broken);
    let w = std::fs::read(broken.join("weights.safetensors")).unwrap();
    std::fs::write(broken.join("weights.safetensors"), &w[..w.len() - 10]).unwrap();
    refused(
        &predict(tmp.path(), &broken, &out_arg),
        &["weights.safetensors", "truncated or corrupt"],
    );
    std::fs::write(broken.join("weights.safetensors"), b"not weights").unwrap();
    refused(
        &predict(tmp.path(), &broken, &out_arg),
        &["weights.safetensors", "truncated or corrupt"],
    );

    // Weights of another model: the tensor and both shapes.
    let swapped = tmp.path().join("swapped");
    copy_cell(&cell, &swapped);
    std::fs::copy(
        other.join("weights.safetensors"),
        swapped.join("weights.safetensors"),
    )
    .unwrap();
    refused(
        &predict(tmp.path(), &swapped, &out_arg),
        &[
            "tensor dense_1.kernel has shape [8, 6] in the file but [8, 4] in the model",
            "another model",
        ],
    );

    // A config edited after the run.
    let edited = tmp.path().join("edited");
    copy_cell(&cell, &edited);
    let config = read(&edited.join("config.toml")).replace("lookback = 48", "lookback = 24");
    std::fs::write(edited.join("config.toml"), config).unwrap();
    refused(
        &predict(tmp.path(), &edited, &out_arg),
        &["config.toml", "edited after the run"],
    );

    // A failed cell and an incomplete one.
    let failed = tmp.path().join("failed");
    copy_cell(&cell, &failed);
    let summary = read(&failed.join("summary.toml"))
        .replace("status = \"complete\"", "status = \"failed\"")
        .replace(
            "reason = \"\"",
            "reason = \"loss became NaN at epoch 1, step 3\"",
        );
    std::fs::write(failed.join("summary.toml"), summary).unwrap();
    refused(
        &predict(tmp.path(), &failed, &out_arg),
        &["the cell failed", "loss became NaN at epoch 1, step 3"],
    );
    let o = seqlab(tmp.path())
        .arg("evaluate")
        .arg(&failed)
        .args(["--data", fixture("etth1_head.csv").to_str().unwrap()])
        .output()
        .unwrap();
    refused(&o, &["the cell failed"]);
    let incomplete = tmp.path().join("incomplete");
    copy_cell(&cell, &incomplete);
    std::fs::remove_file(incomplete.join("summary.toml")).unwrap();
    refused(
        &predict(tmp.path(), &incomplete, &out_arg),
        &["incomplete", "summary.toml"],
    );

    // A time the file does not hold; a window without enough rows before it.
    refused(
        &predict(tmp.path(), &cell, &["--at", "2030-01-01 00:00"]),
        &["no row at 2030-01-01 00:00:00", "2016-07-01 00:00:00"],
    );
    refused(
        &predict(tmp.path(), &cell, &["--at", &time_of_row(10)]),
        &["needs 48 rows before its end"],
    );
    assert!(!out.exists(), "a refusal wrote {}", out.display());
}

/// The Jena preset is a table too: a backtest over exactly the windows of
/// the last epoch's validation pass (4 sequential batches of 16 from the
/// split's first window) gives that epoch's validation loss and MAE in °C.
#[test]
fn a_jena_preset_cell_backtests_its_validation_pass_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tiny_jena(tmp.path(), "j", GRU, "");
    let results = tmp.path().join("results");
    run_ok(run_cmd(tmp.path(), &file, &results).arg("--no-report"));
    let cell = results.join("j/default");
    let metrics = read(&cell.join("metrics.csv"));
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    let last: Vec<&str> = metrics.lines().last().unwrap().split(',').collect();
    let col = |name: &str| last[header.iter().position(|h| *h == name).unwrap()];
    // Windows end at rows 301 + 24 … 301 + 24 + 63; their targets lie 6 rows later.
    let jena_time = |r: usize| {
        let text = read(&fixture("jena_head.csv"));
        text.lines()
            .nth(r + 1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_string()
    };
    let (from, to) = (jena_time(325 + 6), jena_time(325 + 6 + 64));
    let out = seqlab(tmp.path())
        .arg("predict")
        .arg(&cell)
        .arg("--data")
        .arg(fixture("jena_head.csv"))
        .args(["--from", &from, "--to", &to])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("windows = 64"), "{err}");
    assert!(
        err.contains(&format!("backtest_loss = {}\n", col("val_loss"))),
        "{err}\nvs {metrics}"
    );
    assert!(
        err.contains(&format!("backtest_mae_T__degC = {}\n", col("val_mae_degc"))),
        "{err}\nvs {metrics}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        65,
        "a header and 64 forecasts"
    );
}

/// `--last` on a large file reads only its tail: the forecast is the same,
/// to the byte, as `--at` its last row, which reads the whole file.
#[test]
fn the_last_window_of_a_large_file_is_read_from_its_tail_with_the_same_forecast() {
    let tmp = tempfile::tempdir().unwrap();
    let cell = train(tmp.path(), "ett", LAYERS);
    // 40,000 hourly rows (about 5 MB): the fixture's values over and over.
    let fixture_text = read(&fixture("etth1_head.csv"));
    let values: Vec<&str> = fixture_text
        .lines()
        .skip(1)
        .map(|l| l.split_once(',').unwrap().1)
        .collect();
    let start = chrono::NaiveDate::from_ymd_opt(2016, 7, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut big = String::from("date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT\n");
    let mut last = String::new();
    for r in 0..40_000 {
        last = (start + chrono::Duration::hours(r as i64))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        big.push_str(&format!("{last},{}\n", values[r % values.len()]));
    }
    let path = tmp.path().join("big.csv");
    std::fs::write(&path, big).unwrap();
    let run = |args: &[&str]| {
        let out = seqlab(tmp.path())
            .arg("predict")
            .arg(&cell)
            .arg("--data")
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        out.stdout
    };
    let tail = run(&[]);
    assert_eq!(tail, run(&["--at", &last]));
    assert_eq!(
        String::from_utf8(tail).unwrap().lines().count(),
        1 + 4 * 2,
        "4 steps x 2 targets"
    );
}
