//! `seqlab predict` on text classifiers trained on generated collections:
//! probabilities sum to 1 and reproduce the trained model's test evaluation
//! (its confusion matrix exactly, its loss and accuracy), `--text` and
//! `--input` agree, and damaged or mismatched files are refused with a
//! message naming them, the cell's files untouched.
mod common;
use common::*;
use std::path::{Path, PathBuf};

/// A document of class `c`; every fourth borrows a word of the next class,
/// so the model is not always right.
fn doc(c: usize, i: usize) -> String {
    let w = WORDS[c];
    let other = WORDS[(c + 1) % 3][i % 5];
    let extra = if i.is_multiple_of(4) {
        other
    } else {
        w[(i * 3) % 5]
    };
    format!("The {} and the {}, {}!", w[i % 5], w[(i + 1) % 5], extra)
}

/// `text,label` CSV of `per_class` documents per class, starting at `from`.
fn collection(path: &Path, classes: usize, per_class: usize, from: usize) {
    let mut s = String::from("text,label\n");
    for i in from..from + per_class {
        for (c, name) in CLASSES.iter().enumerate().take(classes) {
            s.push_str(&format!("\"{}\",{name}\n", doc(c, i)));
        }
    }
    std::fs::write(path, s).unwrap();
}

/// Trains a classifier with a separate test file of 24 documents (three
/// full batches); returns its cell folder.
fn train(dir: &Path, name: &str, classes: usize, units: usize, loss: &str) -> PathBuf {
    let (train_csv, test_csv) = (
        dir.join(format!("{name}-train.csv")),
        dir.join(format!("{name}-test.csv")),
    );
    collection(&train_csv, classes, 60 / classes, 0);
    collection(&test_csv, classes, 24 / classes, 100);
    let activation = if units == 1 { "sigmoid" } else { "softmax" };
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            "[experiment]\nname = \"{name}\"\n[data]\nsource = \"text\"\npath = \"{}\"\ntest_path = \"{}\"\n\
             text_column = \"text\"\nlabel_column = \"label\"\nmax_features = 30\nmaxlen = 8\nbatch_size = 8\n\
             [train]\nepochs = 3\nloss = \"{loss}\"\nthreads = 1\nevaluate_test = true\n\
             optimizer = {{ name = \"rmsprop\", lr = 0.01 }}\n\
             [[layers]]\ntype = \"embedding\"\ninput_dim = 30\noutput_dim = 8\n\
             [[layers]]\ntype = \"global_average_pool1d\"\n\
             [[layers]]\ntype = \"dense\"\nunits = {units}\nactivation = \"{activation}\"\n",
            train_csv.display(),
            test_csv.display()
        ),
    )
    .unwrap();
    let results = dir.join("results");
    run_ok(run_cmd(dir, &file, &results).arg("--no-report"));
    results.join(name).join("default")
}

fn predict(dir: &Path, cell: &Path, args: &[&str]) -> std::process::Output {
    seqlab(dir)
        .arg("predict")
        .arg(cell)
        .args(args)
        .output()
        .unwrap()
}

/// The rows of predict's CSV: (label, probabilities, text).
fn rows(out: &str, classes: usize) -> Vec<(String, Vec<f64>, String)> {
    let mut r = csv::Reader::from_reader(out.as_bytes());
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let p = (0..classes).map(|k| rec[2 + k].parse().unwrap()).collect();
            (rec[1].to_string(), p, rec[2 + classes].to_string())
        })
        .collect()
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn probabilities_reproduce_the_test_evaluation_for_softmax_and_one_logit() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, classes, units, loss) in [
        ("topics", 3, 3, "sparse_categorical_crossentropy"),
        ("pair", 2, 1, "binary_crossentropy"),
    ] {
        let cell = train(tmp.path(), name, classes, units, loss);
        let before = files(&cell);
        let test_csv = tmp.path().join(format!("{name}-test.csv"));
        let out = predict(tmp.path(), &cell, &["--input", test_csv.to_str().unwrap()]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        let got = rows(&String::from_utf8(out.stdout).unwrap(), classes);
        assert_eq!(got.len(), 24, "{name}: one row per test document");
        assert_eq!(
            files(&cell),
            before,
            "{name}: the cell's files are untouched"
        );

        // Classes in id order as the cell keeps them (sorted names).
        let mut names: Vec<&str> = CLASSES[..classes].to_vec();
        names.sort();
        let truth: Vec<usize> = read(&test_csv)
            .lines()
            .skip(1)
            .map(|l| {
                names
                    .iter()
                    .position(|n| l.ends_with(&format!(",{n}")))
                    .unwrap()
            })
            .collect();
        let mut counts = vec![vec![0u64; classes]; classes];
        let mut loss_sum = 0.0;
        for ((label, p, _), &t) in got.iter().zip(&truth) {
            let sum: f64 = p.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "{name}: {p:?} sums to {sum}");
            let k = names.iter().position(|n| n == label).unwrap();
            let best = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(p[k], best, "{name}: the label is the most probable class");
            counts[t][k] += 1;
            loss_sum -= p[t].max(1e-7).ln();
        }
        // The confusion matrix training wrote over the same test documents.
        let confusion: Vec<Vec<u64>> = read(&cell.join("confusion.csv"))
            .lines()
            .skip(1)
            .map(|r| {
                r.rsplitn(classes + 1, ',')
                    .take(classes)
                    .map(|n| n.parse().unwrap())
                    .collect::<Vec<u64>>()
                    .into_iter()
                    .rev()
                    .collect()
            })
            .collect();
        assert_eq!(counts, confusion, "{name}");
        let summary: toml::Table = toml::from_str(&read(&cell.join("summary.toml"))).unwrap();
        let test = summary["test"].as_table().unwrap();
        let right: u64 = (0..classes).map(|k| counts[k][k]).sum();
        let acc = test["test_accuracy"].as_float().unwrap();
        assert!(
            (right as f64 / 24.0 - acc).abs() < 1e-4,
            "{name}: accuracy {right}/24 vs {acc}"
        );
        let test_loss = test["test_loss"].as_float().unwrap();
        assert!(
            (loss_sum / 24.0 - test_loss).abs() < 1e-3,
            "{name}: cross-entropy {} vs test_loss {test_loss}",
            loss_sum / 24.0
        );

        // --text gives the same numbers as --input for the same texts.
        let (first, second) = (&got[0].2, &got[5].2);
        let out = predict(tmp.path(), &cell, &["--text", first, "--text", second]);
        assert!(out.status.success(), "{}", text(&out));
        let again = rows(&String::from_utf8(out.stdout).unwrap(), classes);
        assert_eq!(again.len(), 2);
        assert_eq!(again[0], got[0]);
        assert_eq!(again[1], got[5]);
    }
}

#[test]
fn damaged_or_mismatched_files_and_wrong_inputs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cell = train(
        tmp.path(),
        "topics",
        3,
        3,
        "sparse_categorical_crossentropy",
    );
    let refused = |cell: &Path, args: &[&str]| -> String {
        let out = predict(tmp.path(), cell, args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "nothing printed on a refusal");
        text(&out)
    };
    let damaged = |change: &dyn Fn(&Path)| -> PathBuf {
        let to = tmp.path().join(format!("copy{}", rand_suffix()));
        std::fs::create_dir_all(&to).unwrap();
        for (path, bytes) in files(&cell) {
            std::fs::write(to.join(path.file_name().unwrap()), bytes).unwrap();
        }
        change(&to);
        to
    };

    let msg = refused(&cell, &[]);
    assert!(msg.contains("--text") && msg.contains("--input"), "{msg}");
    let msg = refused(&cell, &["--data", "x.csv"]);
    assert!(msg.contains("text classifier"), "{msg}");

    let input = tmp.path().join("in.csv");
    std::fs::write(&input, "review,label\nwheel road,cars\n").unwrap();
    let msg = refused(
        &cell,
        &["--input", input.to_str().unwrap(), "--column", "reveiw"],
    );
    assert!(
        msg.contains("no column \"reveiw\"") && msg.contains("did you mean \"review\""),
        "{msg}"
    );

    let no_start = damaged(&|d| {
        let v = read(&d.join("vocab.txt")).replacen("<start>\n", "", 1);
        std::fs::write(d.join("vocab.txt"), v).unwrap();
    });
    let msg = refused(&no_start, &["--text", "wheel"]);
    assert!(msg.contains("vocab.txt: line 2 should be <start>"), "{msg}");

    let bigger = damaged(&|d| {
        let mut v = read(&d.join("vocab.txt"));
        for i in 0..40 {
            v.push_str(&format!("extra{i}\n"));
        }
        std::fs::write(d.join("vocab.txt"), v).unwrap();
        let t = read(&d.join("text.toml")).replace("max_features = 30", "max_features = 100");
        std::fs::write(d.join("text.toml"), t).unwrap();
    });
    let msg = refused(&bigger, &["--text", "wheel"]);
    assert!(
        msg.contains("token ids but the model's embedding takes 30"),
        "{msg}"
    );

    let truncated = damaged(&|d| {
        let w = std::fs::read(d.join("weights.safetensors")).unwrap();
        std::fs::write(d.join("weights.safetensors"), &w[..w.len() / 2]).unwrap();
    });
    let msg = refused(&truncated, &["--text", "wheel"]);
    assert!(msg.contains("weights.safetensors"), "{msg}");

    let no_vocab = damaged(&|d| std::fs::remove_file(d.join("text.toml")).unwrap());
    let msg = refused(&no_vocab, &["--text", "wheel"]);
    assert!(msg.contains("no text.toml"), "{msg}");
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst).to_string()
}

/// `seqlab evaluate` on the test file reproduces the test evaluation: the
/// same confusion matrix, accuracy and loss; only `eval/<name>/` is added.
#[test]
fn evaluate_on_the_test_file_reproduces_the_test_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let cell = train(
        tmp.path(),
        "topics",
        3,
        3,
        "sparse_categorical_crossentropy",
    );
    let before = files(&cell);
    let test_csv = tmp.path().join("topics-test.csv");
    let eval = |args: &[&str]| {
        seqlab(tmp.path())
            .arg("evaluate")
            .arg(&cell)
            .arg("--data")
            .arg(&test_csv)
            .args(args)
            .output()
            .unwrap()
    };
    let refused = eval(&["--split", "test"]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("--split all"), "{}", text(&refused));
    assert!(!cell.join("eval").exists(), "nothing written on a refusal");

    let out = eval(&["--name", "again"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("24 document(s)"), "{}", text(&out));
    assert_eq!(files(&cell), before, "the cell's own files are untouched");
    let dir = cell.join("eval/again");
    assert_eq!(
        read(&dir.join("confusion.csv")),
        read(&cell.join("confusion.csv"))
    );
    let s: toml::Table = toml::from_str(&read(&dir.join("summary.toml"))).unwrap();
    let trained: toml::Table = toml::from_str(&read(&cell.join("summary.toml"))).unwrap();
    let get = |t: &toml::Table, section: &str, k: &str| t[section][k].as_float().unwrap();
    assert!((get(&s, "all", "all_accuracy") - get(&trained, "test", "test_accuracy")).abs() < 1e-6);
    assert!((get(&s, "all", "all_loss") - get(&trained, "test", "test_loss")).abs() < 1e-4);
    assert_eq!(s["documents"].as_integer(), Some(24));
    let png = png::Decoder::new(std::fs::File::open(dir.join("confusion.png")).unwrap())
        .read_info()
        .unwrap();
    assert!(
        png.info().width > 100 && png.info().height > 100,
        "a real figure"
    );

    // The report lists it under its cell.
    let results = tmp.path().join("results");
    run_ok(seqlab(tmp.path()).arg("report").arg(&results));
    let md = read(&results.join("summary.md"));
    let row = md
        .lines()
        .find(|l| l.starts_with("| topics/default | again |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        row.contains("| all | 24 |") && row.contains("all_accuracy"),
        "{row}"
    );
}
