//! The Jena CSV reader on the real format (a 600-row head of the official
//! file), its error messages, and the synthetic Jena generator.
use seqlab::data::jena::HEADER;
use seqlab::data::{read_csv, write_synthetic_jena};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn reads_the_real_format() {
    let t = read_csv(&fixture("jena_head.csv")).unwrap();
    assert_eq!(t.rows, 600);
    assert_eq!(t.columns, HEADER[1..].to_vec());
    assert_eq!(t.values.len(), 600 * 14);
    assert_eq!(t.timestamps[0], "01.01.2009 00:10:00");
    assert_eq!(t.timestamps[599], "05.01.2009 04:00:00");
    assert_eq!(
        t.row(0),
        &[
            996.52, -8.02, 265.40, -8.90, 93.30, 3.33, 3.11, 0.22, 1.94, 3.12, 1307.75, 1.03, 1.75,
            152.30
        ]
    );
    assert_eq!(t.column("T (degC)").unwrap(), 1);
}

#[test]
fn reads_a_file_without_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("jena_head.csv")).unwrap();
    let p = dir.path().join("j.csv");
    std::fs::write(&p, text.trim_end()).unwrap();
    let t = read_csv(&p).unwrap();
    assert_eq!(t.rows, 600);
    assert_eq!(
        t.row(599)[13],
        read_csv(&fixture("jena_head.csv")).unwrap().row(599)[13]
    );
}

fn with_line(line_no: usize, replace: impl Fn(&str) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("jena_head.csv")).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line_no {
                replace(l)
            } else {
                l.to_string()
            }
        })
        .collect();
    let p = dir.path().join("bad.csv");
    std::fs::write(&p, lines.join("\n")).unwrap();
    (dir, p)
}

#[test]
fn a_bad_number_names_file_line_and_column() {
    let (_d, p) = with_line(7, |l| l.replacen(",-8.", ",-8.x", 1));
    let e = format!("{:#}", read_csv(&p).unwrap_err());
    assert!(e.contains("bad.csv:7:"), "{e}");
    assert!(e.contains("\"T (degC)\""), "{e}");
    assert!(e.contains("-8.x"), "{e}");
}

#[test]
fn a_short_row_is_an_error() {
    let (_d, p) = with_line(300, |l| l.rsplit_once(',').unwrap().0.to_string());
    let e = format!("{:#}", read_csv(&p).unwrap_err());
    assert!(e.contains("bad.csv:300:") && e.contains("found 14"), "{e}");
    let (_d, p) = with_line(1, |l| l.replace(",\"wd (deg)\"", ""));
    let e = format!("{:#}", read_csv(&p).unwrap_err());
    assert!(e.contains("bad.csv:1:") && e.contains("header"), "{e}");
}

#[test]
fn synthetic_jena_is_deterministic_parses_and_is_physical() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.csv"),
        dir.path().join("b.csv"),
        dir.path().join("c.csv"),
    );
    write_synthetic_jena(5000, 7, &a).unwrap();
    write_synthetic_jena(5000, 7, &b).unwrap();
    write_synthetic_jena(5000, 8, &c).unwrap();
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(ba, bb);
    assert_ne!(ba, std::fs::read(&c).unwrap());
    let real_header = std::fs::read_to_string(fixture("jena_head.csv")).unwrap();
    let synth = String::from_utf8(ba).unwrap();
    assert_eq!(synth.lines().next(), real_header.lines().next());
    let t = read_csv(&a).unwrap();
    assert_eq!(t.rows, 5000);
    assert_eq!(t.timestamps[0], "01.01.2009 00:10:00");
    assert_eq!(t.timestamps[144 * 31 - 1], "01.02.2009 00:00:00");
    let col = |n: &str| t.column(n).unwrap();
    for r in 0..t.rows {
        let v = |n: &str| t.row(r)[col(n)] as f64;
        assert!(
            (v("VPdef (mbar)") - (v("VPmax (mbar)") - v("VPact (mbar)"))).abs() <= 0.0101,
            "row {r}"
        );
        assert!(v("Tdew (degC)") <= v("T (degC)") + 0.05, "row {r}");
        assert!((0.0..=100.0).contains(&v("rh (%)")));
        assert!(v("wv (m/s)") <= v("max. wv (m/s)") && v("wv (m/s)") >= 0.0);
        assert!((0.0..360.0).contains(&v("wd (deg)")));
        assert!((-40.0..45.0).contains(&v("T (degC)")) && (930.0..1050.0).contains(&v("p (mbar)")));
        let t_k = v("T (degC)") + 273.15;
        assert!((v("Tpot (K)") - t_k * (1000.0 / v("p (mbar)")).powf(0.286)).abs() < 0.02);
    }
    // a January: colder than the yearly mean of the real station (9.4 °C)
    let jan_mean: f64 = (0..4400).map(|r| t.row(r)[1] as f64).sum::<f64>() / 4400.0;
    assert!(jan_mean < 5.0, "{jan_mean}");
}

#[test]
fn a_bad_timestamp_names_the_date_column() {
    let (_d, p) = with_line(42, |l| l.replacen("01.01.2009", "2009-01-01", 1));
    let e = format!("{:#}", read_csv(&p).unwrap_err());
    assert!(
        e.contains("bad.csv:42:") && e.contains("\"Date Time\""),
        "{e}"
    );
}

#[test]
fn prepare_a_full_size_synthetic_record_with_the_books_splits() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("jena.csv");
    write_synthetic_jena(420_551, 1, &p).unwrap();
    let spec: seqlab::config::DataSpec = toml::from_str(&format!(
        "source = \"jena\"\npath = {:?}",
        p.display().to_string()
    ))
    .unwrap();
    let mut prep = seqlab::data::prepare(&spec, tch::Device::Cpu).unwrap();
    assert_eq!((prep.input_time, prep.input_features), (240, Some(14)));
    assert_eq!(prep.target_column, Some(1));
    // book: val_steps = (300000 - 200001 - 1440) // 128; test with max clamped to 420551 - 144 - 1
    assert_eq!(prep.val.full_pass_steps(), 769);
    assert_eq!(
        prep.test.full_pass_steps(),
        (420_406 - 300_001 - 1440) / 128
    );
    let mut rng = rand::SeedableRng::seed_from_u64(0);
    let (x, y) = prep.train.next_batch(&mut rng);
    assert_eq!((x.size(), y.size()), (vec![128, 240, 14], vec![128, 1]));
    let std = prep.target_std.unwrap();
    assert!((3.0..15.0).contains(&std), "temperature std {std} °C");
}
