//! `source = "csv"`: any time-series table end to end (the ETTh1 fixture),
//! the window protocol, missing cells, several series, and every bad input
//! with its message — nothing written into the results folder.
mod common;
use common::*;
use seqlab::config::{CsvData, DataSpec};
use std::path::{Path, PathBuf};

/// An experiment on a table; `data` is the `[data]` body after `source`.
fn table_experiment(dir: &Path, name: &str, data: &str, layers: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[experiment]\nname = \"{name}\"\n\n[data]\nsource = \"csv\"\n{data}\n\n[train]\nepochs = 2\nsteps_per_epoch = 5\nval_steps = 3\ntest_steps = 3\nseed = 3\nthreads = 1\noptimizer = {{ name = \"rmsprop\", lr = 0.005 }}\n{extra}\n{layers}"
        ),
    )
    .unwrap();
    path
}

fn ett(extra: &str) -> String {
    let targets = if extra.contains("targets") {
        ""
    } else {
        "targets = [\"OT\"]\n"
    };
    format!(
        "path = \"{}\"\ntime_column = \"date\"\n{targets}lookback = 48\nbatch_size = 16\nsplits = {{ train = [0, 600], val = [600, 800], test = [800, 1000] }}\n{extra}",
        fixture("etth1_head.csv").display(),
    )
}

fn csv_spec(text: &str) -> CsvData {
    let t: toml::Table = toml::from_str(&format!("source = \"csv\"\n{text}")).unwrap();
    match toml::Value::Table(t).try_into::<DataSpec>().unwrap() {
        DataSpec::Csv(c) => *c,
        other => panic!("{other:?}"),
    }
}

const GRU_HEAD: &str =
    "[[layers]]\ntype = \"gru\"\nunits = 4\n\n[[layers]]\ntype = \"dense\"\nunits = 8\n";

#[test]
fn etth1_runs_with_a_horizon_of_two_targets_and_reports_their_units() {
    let tmp = tempfile::tempdir().unwrap();
    let file = table_experiment(
        tmp.path(),
        "ett_multi",
        &ett("targets = [\"OT\", \"HUFL\"]\nhorizon = 4\ntrain_order = \"epoch\""),
        GRU_HEAD,
        "loss = \"mse\"\nevaluate_test = true",
    );
    let results = tmp.path().join("r");
    run_ok(run_cmd(tmp.path(), &file, &results).arg("--no-report"));
    let cell = results.join("ett_multi/default");
    let metrics = read(&cell.join("metrics.csv"));
    let header = metrics.lines().next().unwrap();
    assert_eq!(
        header,
        "epoch,train_loss,val_loss,train_mae,val_mae,train_mae_OT,val_mae_OT,train_mae_HUFL,val_mae_HUFL,train_mse_OT,val_mse_OT,train_mse_HUFL,val_mse_HUFL"
    );
    let pre: toml::Table = toml::from_str(&read(&cell.join("preprocess.toml"))).unwrap();
    assert_eq!(pre["targets"].as_array().unwrap().len(), 2);
    assert_eq!(pre["freq"].as_str(), Some("1h"));
    // The statistics are those of the training rows, computed here by hand.
    let text = read(&fixture("etth1_head.csv"));
    let ot: Vec<f64> = text
        .lines()
        .skip(1)
        .take(600)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let mean = ot.iter().sum::<f64>() / 600.0;
    let columns: Vec<&str> = pre["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let k = columns.iter().position(|c| *c == "OT").unwrap();
    let shift = pre["shift"].as_array().unwrap()[k].as_float().unwrap();
    assert!((shift - mean).abs() < 1e-9, "{shift} vs {mean}");
    assert_eq!(
        pre["windows"].as_array().unwrap()[0].as_integer(),
        Some(600 - 48 - 3)
    );
    let summary = read(&cell.join("summary.toml"));
    assert!(summary.contains("test_mse_HUFL"), "{summary}");
}

#[test]
fn protocol_window_counts_follow_the_split_semantics() {
    // ETTh1's protocol at H = 96: 2,785 test windows; here on the fixture's rows.
    let cfg = csv_spec(&format!(
        "path = \"{}\"\ntime_column = \"date\"\ntargets = [\"OT\"]\nlookback = 96\nhorizon = 96\nsplits = {{ train = [0, 600], val = [600, 900], test = [900, 1200] }}",
        fixture("etth1_head.csv").display()
    ));
    let counts = seqlab::data::series::check(&cfg).unwrap();
    // train: t from 96 to 600 - 96; val/test: targets inside, inputs reach back.
    assert_eq!(counts, [600 - 96 - 96 + 1, 300 - 96 + 1, 300 - 96 + 1]);
    let strided = csv_spec(&format!(
        "path = \"{}\"\ntargets = [\"OT\"]\nlookback = 96\nhorizon = 96\nstride = 10\nsplits = {{ train = 0.5, val = 0.25, test = 0.25 }}",
        fixture("etth1_head.csv").display()
    ));
    let counts = seqlab::data::series::check(&strided).unwrap();
    assert_eq!(
        counts,
        [600 - 192 + 1, (300 - 96) / 10 + 1, (300 - 96) / 10 + 1]
    );
}

#[test]
fn repeating_the_last_value_matches_a_hand_computation() {
    let tmp = tempfile::tempdir().unwrap();
    let file = table_experiment(
        tmp.path(),
        "ett_naive",
        &ett("horizon = 24"),
        "[model]\nkind = \"naive_last\"",
        "loss = \"mse\"\nevaluate_test = true\nepochs = 1",
    );
    let text = read(&file)
        .replace("test_steps = 3", "test_steps = 0")
        .replace("epochs = 2\n", "");
    std::fs::write(&file, text).unwrap();
    let results = tmp.path().join("r");
    run_ok(run_cmd(tmp.path(), &file, &results).arg("--no-report"));
    let summary: toml::Table =
        toml::from_str(&read(&results.join("ett_naive/default/summary.toml"))).unwrap();
    let test = summary["test"].as_table().unwrap();
    // By hand: OT normalised with the training rows' mean and std (ddof 0);
    // every test window (targets in rows [800, 1000)) repeats row t - 1.
    let ot: Vec<f64> = read(&fixture("etth1_head.csv"))
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let mean = ot[..600].iter().sum::<f64>() / 600.0;
    let std = (ot[..600].iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 600.0).sqrt();
    let z = |v: f64| ((v - mean) / std) as f32 as f64;
    let (mut se, mut ae, mut n) = (0.0, 0.0, 0.0);
    for t in 800..=(1000 - 24) {
        for h in 0..24 {
            let d = z(ot[t + h]) - z(ot[t - 1]);
            se += d * d;
            ae += d.abs();
            n += 1.0;
        }
    }
    let (mse, mae) = (se / n, ae / n);
    let got_mse = test["test_loss"].as_float().unwrap();
    let got_mae = test["test_mae"].as_float().unwrap();
    assert!((got_mse - mse).abs() < 2e-6, "{got_mse} vs {mse}");
    assert!((got_mae - mae).abs() < 2e-6, "{got_mae} vs {mae}");
    let mse_ot = test["test_mse_OT"].as_float().unwrap();
    assert!((mse_ot - mse * std * std).abs() < 1e-3 * mse_ot, "{mse_ot}");
}

/// A small long-format table: two stores, hourly, one missing cell.
fn stores_csv(dir: &Path, missing: bool) -> PathBuf {
    let mut text = String::from("time,store,sales,price\n");
    for store in ["north", "south"] {
        for h in 0..60 {
            let sales = if missing && store == "south" && h == 30 {
                String::new()
            } else {
                format!(
                    "{}",
                    (h % 7) as f64 + if store == "north" { 0.0 } else { 100.0 }
                )
            };
            text += &format!(
                "2024-01-{:02} {:02}:00:00,{store},{sales},{}\n",
                1 + h / 24,
                h % 24,
                1.0 + h as f64 * 0.1
            );
        }
    }
    let p = dir.join("stores.csv");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn windows_never_cross_series_and_missing_cells_follow_the_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let base = |missing: &str| {
        csv_spec(&format!(
            "path = \"{}\"\ntime_column = \"time\"\nseries_column = \"store\"\ntargets = [\"sales\"]\nlookback = 10\nhorizon = 2\nsplits = {{ train = [0, 40], val = [40, 50], test = [50, 60] }}\n{missing}",
            stores_csv(tmp.path(), true).display()
        ))
    };
    // train per series: t from 10 to 38 → 29 windows, two series.
    let dropped = seqlab::data::series::check(&base("missing = \"drop_windows\"")).unwrap();
    // Row 30 of "south" is missing: windows whose rows [t-10, t+2) hold it are dropped.
    assert_eq!(dropped[0], 29 + (29 - 10));
    let filled = seqlab::data::series::check(&base("missing = \"interpolate\"")).unwrap();
    assert_eq!(filled, [58, 2 * 9, 2 * 9]);
    let err = seqlab::data::series::check(&base("")).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("stores.csv:92") && msg.contains("\"sales\"") && msg.contains("data.missing"),
        "{msg}"
    );
    // Interpolation is linear inside the series.
    let mut t = seqlab::data::series::read(&base("missing = \"interpolate\"")).unwrap();
    seqlab::data::series::fill_missing(&mut t, seqlab::config::Missing::Interpolate, "x").unwrap();
    let sales = t.columns.iter().position(|c| c == "sales").unwrap();
    let v = |r: usize| t.values[r * t.columns.len() + sales];
    assert_eq!(v(60 + 30), (v(60 + 29) + v(60 + 31)) / 2.0);
}

/// Runs `seqlab run` on a bad table and returns the message; checks that
/// nothing was written.
fn refused(dir: &Path, csv: &str, data: &str) -> String {
    refused_with(dir, csv, data, 1)
}

/// [`refused`] with a model whose output has `units` values.
fn refused_with(dir: &Path, csv: &str, data: &str, units: usize) -> String {
    let table = dir.join("bad.csv");
    std::fs::write(&table, csv).unwrap();
    let file = table_experiment(
        dir,
        "bad",
        &format!("path = \"{}\"\n{data}", table.display()),
        &format!(
            "[[layers]]\ntype = \"flatten\"\n\n[[layers]]\ntype = \"dense\"\nunits = {units}\n"
        ),
        "",
    );
    let results = dir.join("results");
    let out = run_cmd(dir, &file, &results).output().unwrap();
    assert!(!out.status.success());
    assert!(!results.join("bad").exists(), "nothing may be written");
    text(&out)
}

const SPLIT: &str =
    "targets = [\"y\"]\nlookback = 2\nsplits = { train = [0, 4], val = [4, 6], test = [6, 8] }";

#[test]
fn bad_tables_are_refused_with_file_line_column_and_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let good_rows = |n: usize| -> String {
        (0..n)
            .map(|i| format!("2024-01-01 {i:02}:00:00,{i},{}\n", i * 2))
            .collect()
    };
    let timed = format!("time_column = \"t\"\n{SPLIT}");
    // Duplicate timestamp.
    let mut rows = good_rows(8);
    rows = rows.replace("2024-01-01 03:00:00", "2024-01-01 02:00:00");
    let msg = refused(d, &format!("t,x,y\n{rows}"), &timed);
    assert!(
        msg.contains("bad.csv:5") && msg.contains("repeats") && msg.contains("sort"),
        "{msg}"
    );
    // Decreasing timestamp.
    let rows = good_rows(8).replace("2024-01-01 05:00:00", "2024-01-01 01:30:00");
    let msg = refused(d, &format!("t,x,y\n{rows}"), &timed);
    assert!(
        msg.contains("bad.csv:7") && msg.contains("goes back"),
        "{msg}"
    );
    // A non-numeric cell.
    let rows = good_rows(8).replace(",6,12", ",six,12");
    let msg = refused(d, &format!("t,x,y\n{rows}"), &timed);
    assert!(
        msg.contains("bad.csv:8") && msg.contains("column \"x\"") && msg.contains("\"six\""),
        "{msg}"
    );
    // A target that is not in the header.
    let msg = refused(d, &format!("t,x,yy\n{}", good_rows(8)), &timed);
    assert!(
        msg.contains("data.targets") && msg.contains("did you mean \"yy\""),
        "{msg}"
    );
    // A series column that is not in the header.
    let msg = refused(
        d,
        &format!("t,x,y\n{}", good_rows(8)),
        &format!("series_column = \"store\"\n{timed}"),
    );
    assert!(
        msg.contains("data.series_column") && msg.contains("\"store\""),
        "{msg}"
    );
    // An empty file, and a header only.
    let msg = refused(d, "", &timed);
    assert!(msg.contains("empty"), "{msg}");
    let msg = refused(d, "t,x,y\n", &timed);
    assert!(msg.contains("no rows"), "{msg}");
    // Ragged rows.
    let rows = good_rows(8).replace(",4,8\n", ",4,8,99\n");
    let msg = refused(d, &format!("t,x,y\n{rows}"), &timed);
    assert!(
        msg.contains("bad.csv:6") && msg.contains("expected 3 fields"),
        "{msg}"
    );
    // A split with no complete window, and a horizon longer than the split.
    let msg = refused_with(
        d,
        &format!("t,x,y\n{}", good_rows(8)),
        "targets = [\"y\"]\nlookback = 2\nsplits = { train = [0, 4], val = [4, 5], test = [5, 8] }\nhorizon = 2",
        2,
    );
    assert!(
        msg.contains("data.splits.val") && msg.contains("no complete window"),
        "{msg}"
    );
    let msg = refused_with(
        d,
        &format!("t,x,y\n{}", good_rows(8)),
        "targets = [\"y\"]\nlookback = 2\nhorizon = 5\nsplits = { train = [0, 4], val = [4, 6], test = [6, 8] }",
        5,
    );
    assert!(
        msg.contains("no complete window") && msg.contains("horizon 5"),
        "{msg}"
    );
}

#[test]
fn the_output_layer_must_fit_targets_times_horizon() {
    let tmp = tempfile::tempdir().unwrap();
    let file = table_experiment(
        tmp.path(),
        "wrong_units",
        &ett("horizon = 4\ntargets = [\"OT\", \"HUFL\"]"),
        "[[layers]]\ntype = \"gru\"\nunits = 4\n\n[[layers]]\ntype = \"dense\"\nunits = 4\n",
        "",
    );
    let out = seqlab(tmp.path()).arg("check").arg(&file).output().unwrap();
    let msg = text(&out);
    assert!(!out.status.success());
    assert!(
        msg.contains("(batch, 8) or (batch, 4, 2)") && msg.contains("units = 8"),
        "{msg}"
    );
}

#[test]
fn data_info_describes_a_table_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let p = stores_csv(tmp.path(), true);
    let before: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let out = run_ok(
        seqlab(tmp.path())
            .args(["data", "info"])
            .arg(&p)
            .args(["--series-column", "store"]),
    );
    let msg = text(&out);
    assert!(msg.contains("rows: 120"), "{msg}");
    assert!(msg.contains("series: 2"), "{msg}");
    assert!(msg.contains("frequency: 1h"), "{msg}");
    assert!(msg.contains("missing cells: 1"), "{msg}");
    assert!(
        msg.contains("time: 2024-01-01 00:00:00 to 2024-01-03 11:00:00"),
        "{msg}"
    );
    let after: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn the_leaderboard_sets_seqlab_beside_the_published_table() {
    let tmp = tempfile::tempdir().unwrap();
    let naive = table_experiment(
        tmp.path(),
        "lb_repeat",
        &ett("features = [\"HUFL\", \"OT\"]\ntargets = [\"HUFL\", \"OT\"]"),
        "[model]\nkind = \"naive_last\"",
        "loss = \"mse\"\nevaluate_test = true\n[grid]\n\"data.horizon\" = [4, 8]",
    );
    let linear = table_experiment(
        tmp.path(),
        "lb_linear",
        &ett("features = [\"HUFL\", \"OT\"]\ntargets = [\"HUFL\", \"OT\"]"),
        "[model]\nchannel_independent = true\nnormalize = \"last_value\"\n\n[[layers]]\ntype = \"flatten\"\n\n[[layers]]\ntype = \"dense\"\nunits = 4\n",
        "loss = \"mse\"\nevaluate_test = true\n[grid]\nmode = \"zip\"\n\"data.horizon\" = [4, 8]\n\"layers.1.units\" = [4, 8]",
    );
    let results = tmp.path().join("r");
    run_ok(
        seqlab(tmp.path())
            .arg("run")
            .arg(&naive)
            .arg(&linear)
            .arg("--results")
            .arg(&results)
            .arg("--no-report"),
    );
    let reference = tmp.path().join("published.csv");
    std::fs::write(
        &reference,
        "model,horizon,mse,mae\nPaper,4,0.5,0.4\nPaper,8,0.6,0.5\n",
    )
    .unwrap();
    run_ok(
        seqlab(tmp.path())
            .arg("report")
            .arg(&results)
            .arg("--reference")
            .arg(&reference),
    );
    let md = read(&results.join("summary.md"));
    assert!(md.contains("| model | H=4 | H=8 |"), "{md}");
    assert!(
        md.contains("| Paper (published) | 0.500 / 0.400 | 0.600 / 0.500 |"),
        "{md}"
    );
    // The repeat row's numbers are its summary's test MSE / MAE.
    let s: toml::Table =
        toml::from_str(&read(&results.join("lb_repeat/horizon=4/summary.toml"))).unwrap();
    let t = s["test"].as_table().unwrap();
    let row = format!(
        "| seqlab `lb_repeat` | {:.3} / {:.3} |",
        t["test_loss"].as_float().unwrap(),
        t["test_mae"].as_float().unwrap()
    );
    assert!(md.contains(&row), "{row}\n{md}");
    assert!(md.contains("**"), "the best model is in bold: {md}");
    for f in ["mse.png", "forecast_H4.png", "forecast_H8.png"] {
        let png = std::fs::read(results.join(f)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{f}");
    }
    // Grid cells' names hold commas: summary.csv quotes them.
    let mut summary = csv::Reader::from_path(results.join("summary.csv")).unwrap();
    let cells: Vec<String> = summary
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    assert!(
        cells.contains(&"horizon=8,units=8".to_string()),
        "{cells:?}"
    );
    let forecasts = read(&results.join("lb_linear/horizon=8,units=8/forecasts.csv"));
    assert_eq!(
        forecasts.lines().count(),
        1 + 3 * 8 * 2,
        "3 windows × 8 steps × 2 targets"
    );
}

/// A column for [`write_parquet`]: timestamps (ms), strings or numbers; `None` is null.
enum PqCol {
    Millis(Vec<i64>),
    Text(Vec<Option<String>>),
    F64(Vec<Option<f64>>),
}

/// Writes a flat Parquet file with the crate's writer, `group` rows per row group.
fn write_parquet(path: &Path, cols: &[(&str, PqCol)], group: usize) {
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;
    let fields: String = cols
        .iter()
        .map(|(n, c)| match c {
            PqCol::Millis(_) => format!("REQUIRED INT64 {n} (TIMESTAMP(MILLIS,false));\n"),
            PqCol::Text(_) => format!("OPTIONAL BYTE_ARRAY {n} (UTF8);\n"),
            PqCol::F64(_) => format!("OPTIONAL DOUBLE {n};\n"),
        })
        .collect();
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type(&format!("message t {{\n{fields}}}")).unwrap(),
    );
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build(),
    );
    let mut w =
        SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, props).unwrap();
    let rows = match &cols[0].1 {
        PqCol::Millis(v) => v.len(),
        PqCol::Text(v) => v.len(),
        PqCol::F64(v) => v.len(),
    };
    fn split<T: Clone>(v: &[Option<T>]) -> (Vec<T>, Vec<i16>) {
        (
            v.iter().flatten().cloned().collect(),
            v.iter().map(|x| x.is_some() as i16).collect(),
        )
    }
    let mut start = 0;
    while start < rows {
        let end = (start + group).min(rows);
        let mut rg = w.next_row_group().unwrap();
        for (_, c) in cols {
            let mut col = rg.next_column().unwrap().unwrap();
            match c {
                PqCol::Millis(v) => {
                    col.typed::<Int64Type>()
                        .write_batch(&v[start..end], None, None)
                        .unwrap();
                }
                PqCol::Text(v) => {
                    let (vals, defs) = split(&v[start..end]);
                    let vals: Vec<ByteArray> =
                        vals.iter().map(|s| ByteArray::from(s.as_str())).collect();
                    col.typed::<ByteArrayType>()
                        .write_batch(&vals, Some(&defs), None)
                        .unwrap();
                }
                PqCol::F64(v) => {
                    let (vals, defs) = split(&v[start..end]);
                    col.typed::<DoubleType>()
                        .write_batch(&vals, Some(&defs), None)
                        .unwrap();
                }
            }
            col.close().unwrap();
        }
        rg.close().unwrap();
        start = end;
    }
    w.close().unwrap();
}

/// The ETTh1 fixture as Parquet: typed timestamps, float64 columns, row groups of 500.
fn etth1_parquet(dir: &Path) -> PathBuf {
    let text = read(&fixture("etth1_head.csv"));
    let mut lines = text.lines();
    let names: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let mut cols = vec![(
        names[0],
        PqCol::Millis(
            rows.iter()
                .map(|r| seqlab::data::timestamp::parse(r[0], "").unwrap() * 1000)
                .collect(),
        ),
    )];
    for (i, n) in names.iter().enumerate().skip(1) {
        cols.push((
            n,
            PqCol::F64(rows.iter().map(|r| Some(r[i].parse().unwrap())).collect()),
        ));
    }
    let p = dir.join("etth1_head.parquet");
    write_parquet(&p, &cols, 500);
    p
}

#[test]
fn parquet_trains_exactly_as_the_csv_it_was_written_from() {
    let tmp = tempfile::tempdir().unwrap();
    let pq = etth1_parquet(tmp.path());
    // The same table in memory (rows counted from 1 instead of file lines).
    let spec = |path: &Path| {
        csv_spec(&format!(
            "path = \"{}\"\ntime_column = \"date\"\ntargets = [\"OT\"]\nlookback = 48\nsplits = {{ train = [0, 600], val = [600, 800], test = [800, 1000] }}",
            path.display()
        ))
    };
    let a = seqlab::data::series::read(&spec(&fixture("etth1_head.csv"))).unwrap();
    let b = seqlab::data::series::read(&spec(&pq)).unwrap();
    assert_eq!(
        (&a.columns, &a.values, &a.times, &a.series),
        (&b.columns, &b.values, &b.times, &b.series)
    );
    assert_eq!(b.lines[..3], [1, 2, 3]);
    // The same run: identical metrics and preprocessing state.
    let mut cells = vec![];
    for (name, path) in [
        ("from_csv", fixture("etth1_head.csv")),
        ("from_parquet", pq),
    ] {
        let data = format!(
            "path = \"{}\"\ntime_column = \"date\"\ntargets = [\"OT\"]\nlookback = 48\nbatch_size = 16\nsplits = {{ train = [0, 600], val = [600, 800], test = [800, 1000] }}",
            path.display()
        );
        let file = table_experiment(
            tmp.path(),
            name,
            &data,
            GRU_HEAD.replace("units = 8", "units = 1").as_str(),
            "evaluate_test = true",
        );
        let results = tmp.path().join("r");
        run_ok(run_cmd(tmp.path(), &file, &results).arg("--no-report"));
        cells.push(results.join(name).join("default"));
    }
    for f in ["metrics.csv", "preprocess.toml"] {
        assert_eq!(read(&cells[0].join(f)), read(&cells[1].join(f)), "{f}");
    }
    let test = |c: &Path| {
        let s: toml::Table = toml::from_str(&read(&c.join("summary.toml"))).unwrap();
        s["test"].clone()
    };
    assert_eq!(test(&cells[0]), test(&cells[1]));
}

/// The stores table of [`stores_csv`] as Parquet: string times, a string series, one null.
fn stores_parquet(dir: &Path) -> PathBuf {
    let text = read(&stores_csv(dir, true));
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    let col = |i: usize| rows.iter().map(|r| Some(r[i].clone())).collect::<Vec<_>>();
    let num = |i: usize| PqCol::F64(rows.iter().map(|r| r[i].parse().ok()).collect());
    let p = dir.join("stores.parquet");
    write_parquet(
        &p,
        &[
            ("time", PqCol::Text(col(0))),
            ("store", PqCol::Text(col(1))),
            ("sales", num(2)),
            ("price", num(3)),
        ],
        50,
    );
    p
}

#[test]
fn parquet_series_string_times_and_missing_cells_follow_the_csv_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let pq = stores_parquet(tmp.path());
    let spec = |path: &Path, missing: &str| {
        csv_spec(&format!(
            "path = \"{}\"\ntime_column = \"time\"\nseries_column = \"store\"\ntargets = [\"sales\"]\nlookback = 10\nhorizon = 2\nsplits = {{ train = [0, 40], val = [40, 50], test = [50, 60] }}\n{missing}",
            path.display()
        ))
    };
    let csv = tmp.path().join("stores.csv");
    for missing in ["missing = \"drop_windows\"", "missing = \"interpolate\""] {
        assert_eq!(
            seqlab::data::series::check(&spec(&csv, missing)).unwrap(),
            seqlab::data::series::check(&spec(&pq, missing)).unwrap(),
            "{missing}"
        );
    }
    let a = seqlab::data::series::read(&spec(&csv, "missing = \"ffill\"")).unwrap();
    let b = seqlab::data::series::read(&spec(&pq, "missing = \"ffill\"")).unwrap();
    assert_eq!(
        (&a.times, &a.series, a.missing),
        (&b.times, &b.series, b.missing)
    );
    let bits = |t: &seqlab::data::Table| t.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a), bits(&b));
    // A missing cell without a policy: the row (counted from 1) and the fix.
    let msg = format!(
        "{:#}",
        seqlab::data::series::check(&spec(&pq, "")).unwrap_err()
    );
    assert!(
        msg.contains("stores.parquet: row 91")
            && msg.contains("\"sales\"")
            && msg.contains("data.missing"),
        "{msg}"
    );
    // A column that is not there: did you mean.
    let msg = format!(
        "{:#}",
        seqlab::data::series::check(&spec(&pq, "missing = \"ffill\"").clone_with_target("sale"))
            .unwrap_err()
    );
    assert!(msg.contains("did you mean \"sales\""), "{msg}");
}

trait WithTarget {
    fn clone_with_target(&self, t: &str) -> Self;
}

impl WithTarget for CsvData {
    fn clone_with_target(&self, t: &str) -> Self {
        let mut c = self.clone();
        c.targets = vec![t.to_string()];
        c
    }
}

#[test]
fn a_damaged_parquet_file_is_refused_with_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read(etth1_parquet(tmp.path())).unwrap();
    let cases: [(&str, Vec<u8>); 4] = [
        ("random.parquet", b"not parquet at all, just text".to_vec()),
        ("truncated.parquet", good[..good.len() / 2].to_vec()),
        ("empty.parquet", vec![]),
        // Pages overwritten with noise, footer intact.
        ("noise.parquet", {
            let mut b = good.clone();
            for (i, x) in b[4..good.len() / 2].iter_mut().enumerate() {
                *x = (i * 131 % 251) as u8;
            }
            b
        }),
    ];
    for (name, bytes) in cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let file = table_experiment(
            tmp.path(),
            "damaged",
            &format!(
                "path = \"{}\"\ntime_column = \"date\"\ntargets = [\"OT\"]\nlookback = 48\nsplits = {{ train = [0, 600], val = [600, 800], test = [800, 1000] }}",
                p.display()
            ),
            "[[layers]]\ntype = \"flatten\"\n\n[[layers]]\ntype = \"dense\"\nunits = 1\n",
            "",
        );
        let results = tmp.path().join("results");
        let out = run_cmd(tmp.path(), &file, &results).output().unwrap();
        let msg = text(&out);
        assert!(!out.status.success(), "{name}: {msg}");
        assert!(
            msg.contains(name) && msg.contains("Parquet"),
            "{name}: {msg}"
        );
        assert!(!msg.contains("panicked"), "{name}: {msg}");
        assert!(!results.join("damaged").exists(), "nothing may be written");
        let info = seqlab(tmp.path())
            .args(["data", "info"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            !info.status.success() && text(&info).contains(name),
            "{}",
            text(&info)
        );
    }
}

#[test]
fn data_info_describes_a_parquet_table() {
    let tmp = tempfile::tempdir().unwrap();
    let pq = etth1_parquet(tmp.path());
    let msg = text(&run_ok(seqlab(tmp.path()).args(["data", "info"]).arg(&pq)));
    assert!(
        msg.contains("rows: 1200") && msg.contains("format: parquet"),
        "{msg}"
    );
    assert!(msg.contains("frequency: 1h"), "{msg}");
    assert!(msg.contains("time: 2016-07-01 00:00:00"), "{msg}");
    let csv = text(&run_ok(
        seqlab(tmp.path())
            .args(["data", "info"])
            .arg(fixture("etth1_head.csv")),
    ));
    // The per-column figures agree with the CSV's.
    let stats = |s: &str| {
        s.lines()
            .filter(|l| l.contains("number"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(stats(&msg), stats(&csv));
}

#[test]
fn the_generic_reader_reads_the_jena_record_as_the_jena_reader_does() {
    // The first step of Jena as a preset of `source = "csv"` (see
    // docs/jena-preset.md): the same f32 values, columns and times.
    let path = fixture("jena_head.csv");
    let jena = seqlab::data::read_csv(&path).unwrap();
    let table = seqlab::data::table::read(
        &path,
        &seqlab::data::table::ReadOptions {
            time_column: "Date Time".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(table.columns, jena.columns);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&table.values), bits(&jena.values));
    let times: Vec<i64> = jena
        .timestamps
        .iter()
        .map(|s| seqlab::data::timestamp::parse(s, "%d.%m.%Y %H:%M:%S").unwrap())
        .collect();
    assert_eq!(table.times.as_deref(), Some(&times[..]));
}

/// The Jena preset is a table with the book generator's rules: the same
/// experiment written as `source = "csv"` settings trains to the same bytes.
#[test]
fn the_jena_preset_and_its_table_settings_train_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let layers =
        "[[layers]]\ntype = \"gru\"\nunits = 4\n\n[[layers]]\ntype = \"dense\"\nunits = 1\n";
    let preset = tiny_jena(tmp.path(), "preset", layers, "");
    let text = read(&preset).replace("name = \"preset\"", "name = \"table\"").replace(
        "source = \"jena\"",
        "source = \"csv\"\ntime_column = \"Date Time\"\ntime_format = \"%d.%m.%Y %H:%M:%S\"\ntargets = [\"T (degC)\"]\nsplit_rule = \"book\"\nunit_suffix = \"degc\"",
    );
    let table = tmp.path().join("table.toml");
    std::fs::write(&table, text).unwrap();
    let results = tmp.path().join("results");
    for file in [&preset, &table] {
        run_ok(run_cmd(tmp.path(), file, &results).arg("--no-report"));
    }
    for f in ["metrics.csv", "preprocess.toml"] {
        assert_eq!(
            read(&results.join("preset/default").join(f)),
            read(&results.join("table/default").join(f)),
            "{f}"
        );
    }
    let test = |name: &str| -> toml::Value {
        toml::from_str::<toml::Table>(&read(&results.join(name).join("default/summary.toml")))
            .unwrap()["test"]
            .clone()
    };
    assert_eq!(test("preset"), test("table"));
}

/// `split_rule = "book"` takes what the book's generator takes, and says so.
#[test]
fn the_book_split_rule_refuses_what_the_generator_cannot_cut() {
    let tmp = tempfile::tempdir().unwrap();
    for (change, expect) in [
        ("splits = { train = 0.6, val = 0.2, test = 0.2 }", "data.splits.train: data.split_rule = \"book\" takes rows"),
        ("splits = { train = [0, 600], val = [600, 800], test = [800, 1000] }\nstride = 2", "needs data.stride = 1"),
        ("splits = { train = [0, 600], val = [600, 800], test = [800, 1000] }\ntargets = [\"OT\", \"HUFL\"]", "forecasts one target"),
    ] {
        let file = tmp.path().join("book.toml");
        let targets = if change.contains("targets") { "" } else { "targets = [\"OT\"]\n" };
        std::fs::write(
            &file,
            format!(
                "[experiment]\nname = \"book\"\n[data]\nsource = \"csv\"\npath = \"{}\"\ntime_column = \"date\"\n{targets}lookback = 24\nsplit_rule = \"book\"\n{change}\n\
                 [[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = {}\n",
                fixture("etth1_head.csv").display(),
                if targets.is_empty() { 2 } else { 1 }
            ),
        )
        .unwrap();
        let out = seqlab(tmp.path()).arg("check").arg(&file).output().unwrap();
        assert!(!out.status.success(), "{change}");
        assert!(text(&out).contains(expect), "{change}: {}", text(&out));
    }
}
