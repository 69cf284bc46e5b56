//! Any labelled text collection (`source = "text"`), on collections the tests
//! generate in a temporary folder: class folders, archives and CSV / TSV
//! files; splits, classes and the IMDB encoding rules; bad input refused with
//! a message naming the file, line or key and the fix, nothing written into
//! the results folder; a 3-class end-to-end run; `seqlab data info`.
mod common;
use common::*;
use seqlab::config::TextData;
use seqlab::data::text::encode;
use std::path::{Path, PathBuf};

/// A document of class `c`: words of its own class with a shared filler.
fn doc(c: usize, i: usize) -> String {
    let w = WORDS[c];
    format!(
        "The {} and the {}, {} {}!",
        w[i % 5],
        w[(i + 1) % 5],
        w[(i + 2) % 5],
        w[(i * 3) % 5]
    )
}

/// `root/<class>/<i>.txt`, `per_class` documents per class.
fn class_folders(root: &Path, classes: usize, per_class: usize) -> PathBuf {
    for (c, name) in CLASSES.iter().enumerate().take(classes) {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..per_class {
            std::fs::write(d.join(format!("{i:03}.txt")), doc(c, i)).unwrap();
        }
    }
    root.to_path_buf()
}

fn spec(extra: &str) -> TextData {
    toml::from_str(&format!("path = \"unused\"\n{extra}")).unwrap()
}

#[test]
fn folder_classes_inferred_sorted_and_ids_follow_the_imdb_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let root = class_folders(&tmp.path().join("c"), 3, 20);
    let s = spec("maxlen = 6\nmax_features = 100\nvalidation_split = 0.25\ntest_split = 0.2");
    let t = encode(&s, &root, None).unwrap();
    assert_eq!(t.classes, ["cars", "fruit", "water"], "sorted names");
    let a = &t.arrays;
    assert_eq!(a.test.len(), 12, "last 20% of 60");
    assert_eq!(a.val.len(), 12, "last 25% of the remaining 48");
    assert_eq!(a.train.len(), 36);
    assert_eq!(
        seqlab::data::text::split_sizes(&TextData {
            path: root.display().to_string(),
            ..s.clone()
        })
        .unwrap(),
        [36, 12, 12]
    );
    // "the" and "and" occur in every document: the two most frequent words
    assert_eq!(&t.vocab[..2], ["the", "and"]);
    assert!(t
        .vocab_txt()
        .starts_with("<pad>\n<start>\n<oov>\nthe\nand\n"));
    // every row: pre-padded [0, 1, the, w, and, the, …] truncated to the last 6 ids
    for row in a.train.x.chunks(6) {
        assert!(
            row.iter().all(|&id| id >= 3),
            "{row:?}: 7 ids > maxlen 6, pre-truncated, no OOV"
        );
    }
    assert!(a.train.y.iter().all(|&y| y < 3));
    // the same seed, the same arrays; another seed, another order
    let again = encode(&s, &root, None).unwrap();
    assert_eq!(again.arrays, t.arrays);
    let other = encode(&spec("shuffle_seed = 7"), &root, None).unwrap();
    assert_ne!(
        other.arrays.test.y,
        encode(&spec(""), &root, None).unwrap().arrays.test.y
    );
}

#[test]
fn listed_classes_set_the_ids_and_standardize_modes_change_the_words() {
    let tmp = tempfile::tempdir().unwrap();
    let root = class_folders(&tmp.path().join("c"), 2, 10);
    let s = spec("classes = [\"fruit\", \"cars\"]");
    let t = encode(&s, &root, None).unwrap();
    assert_eq!(t.classes, ["fruit", "cars"]);
    let lower = encode(&spec("standardize = \"lower\""), &root, None).unwrap();
    assert!(
        lower.vocab.iter().any(|w| w.ends_with('!')),
        "punctuation kept"
    );
    assert!(t.vocab.iter().all(|w| !w.contains(',')));
    let none = encode(&spec("standardize = \"none\""), &root, None).unwrap();
    assert!(none.vocab.contains(&"The".to_string()));
    let err = encode(&spec("classes = [\"fruit\", \"boats\"]"), &root, None).unwrap_err();
    let m = format!("{err:#}");
    assert!(m.contains("label `cars` is not in data.classes"), "{m}");
    let err = encode(
        &spec("classes = [\"fruit\", \"cars\", \"boats\"]"),
        &root,
        None,
    )
    .unwrap_err();
    let m = format!("{err:#}");
    assert!(
        m.contains("class `boats` of data.classes has no documents"),
        "{m}"
    );
}

#[test]
fn archive_csv_tsv_and_test_path_read_the_same_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let root = class_folders(&tmp.path().join("coll"), 2, 8);
    let archive = tmp.path().join("coll.tar.gz");
    {
        let f = std::fs::File::create(&archive).unwrap();
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        b.append_dir_all("coll", &root).unwrap();
        b.into_inner().unwrap().finish().unwrap();
    }
    let mut csv = String::from("id,text,label\n");
    let mut tsv = String::from("text\tlabel\n");
    let mut jsonl = String::new();
    for (c, name) in [(1, "cars"), (0, "fruit")] {
        for i in 0..8 {
            csv.push_str(&format!("{i},\"{}\",{name}\n", doc(c, i)));
            tsv.push_str(&format!("{}\t{name}\n", doc(c, i)));
            jsonl.push_str(&format!(
                "{{\"label\": \"{name}\", \"text\": \"{}\"}}\n",
                doc(c, i)
            ));
        }
    }
    std::fs::write(tmp.path().join("c.csv"), csv).unwrap();
    std::fs::write(tmp.path().join("c.tsv"), tsv).unwrap();
    std::fs::write(tmp.path().join("c.jsonl"), jsonl).unwrap();
    let s = spec("text_column = \"text\"\nlabel_column = \"label\"");
    let folder = encode(&spec(""), &root, None).unwrap();
    let from_archive = encode(&spec(""), &archive, None).unwrap();
    let from_csv = encode(&s, &tmp.path().join("c.csv"), None).unwrap();
    let from_tsv = encode(&s, &tmp.path().join("c.tsv"), None).unwrap();
    assert_eq!(from_archive.arrays, folder.arrays);
    assert_eq!(
        from_csv.arrays, folder.arrays,
        "same documents in the same order"
    );
    assert_eq!(from_tsv.arrays, folder.arrays);
    let from_jsonl = encode(&s, &tmp.path().join("c.jsonl"), None).unwrap();
    assert_eq!(from_jsonl.arrays, folder.arrays);
    // a separate test collection: all of its documents are the test split
    let test_root = class_folders(&tmp.path().join("test"), 2, 5);
    let t = encode(&spec(""), &root, Some(&test_root)).unwrap();
    assert_eq!(t.arrays.test.len(), 10);
    assert_eq!(t.arrays.train.len() + t.arrays.val.len(), 16);
}

#[test]
fn invalid_utf8_is_decoded_lossily() {
    let tmp = tempfile::tempdir().unwrap();
    let root = class_folders(&tmp.path().join("c"), 2, 6);
    std::fs::write(root.join("cars/bad.txt"), b"fast \xff\xfe road").unwrap();
    let t = encode(&spec(""), &root, None).unwrap();
    assert_eq!(t.lossy, 1);
    assert_eq!(
        t.arrays.train.len() + t.arrays.val.len() + t.arrays.test.len(),
        13
    );
    // The count is reported, by `data info` and by every run, with the file.
    let info = text(&run_ok(
        seqlab(tmp.path()).args(["data", "info"]).arg(&root),
    ));
    assert!(
        info.contains("not valid UTF-8 (decoded lossily): 1 document(s)"),
        "{info}"
    );
    let file = experiment(
        tmp.path(),
        "lossy",
        &format!("path = \"{}\"", root.display()),
        2,
        "sparse_categorical_crossentropy",
    );
    let out = run_ok(&mut run_cmd(tmp.path(), &file, &tmp.path().join("r")));
    let msg = text(&out);
    assert!(
        msg.contains(&format!(
            "{}: 1 document(s) or cell(s) were not valid UTF-8",
            root.display()
        )),
        "{msg}"
    );
}

/// An experiment on `data` (the `[data]` keys after `source`), 3 classes out.
fn experiment(dir: &Path, name: &str, data: &str, units: usize, loss: &str) -> PathBuf {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            "[experiment]\nname = \"{name}\"\n[data]\nsource = \"text\"\n{data}\nmax_features = 50\nmaxlen = 8\nbatch_size = 8\n\
             [train]\nepochs = 2\nloss = \"{loss}\"\nthreads = 1\n\
             [[layers]]\ntype = \"embedding\"\ninput_dim = 50\noutput_dim = 8\n\
             [[layers]]\ntype = \"global_average_pool1d\"\n\
             [[layers]]\ntype = \"dense\"\nunits = {units}\nactivation = \"softmax\"\n"
        ),
    )
    .unwrap();
    file
}

/// `seqlab run` refuses the experiment; nothing is written; the message comes back.
fn refused(dir: &Path, data: &str, units: usize) -> String {
    let file = experiment(dir, "bad", data, units, "sparse_categorical_crossentropy");
    let results = dir.join("results");
    let out = run_cmd(dir, &file, &results).output().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!results.join("bad").exists(), "nothing may be written");
    text(&out)
}

#[test]
fn a_class_folder_with_no_files_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = class_folders(&tmp.path().join("c"), 3, 5);
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let m = refused(tmp.path(), &format!("path = \"{}\"", root.display()), 4);
    assert!(m.contains("class folder `empty` has no .txt files"), "{m}");
    assert!(m.contains(&root.join("empty").display().to_string()), "{m}");
}

#[test]
fn a_label_column_with_one_class_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("one.csv");
    std::fs::write(&csv, "text,label\nthe apple,fruit\nthe banana,fruit\n").unwrap();
    let m = refused(
        tmp.path(),
        &format!(
            "path = \"{}\"\ntext_column = \"text\"\nlabel_column = \"label\"",
            csv.display()
        ),
        2,
    );
    assert!(m.contains("one.csv"), "{m}");
    assert!(
        m.contains("label column `label` has one class (`fruit`)"),
        "{m}"
    );
    assert!(m.contains("add documents of another class"), "{m}");
}

#[test]
fn a_missing_text_or_label_column_is_refused_with_a_suggestion() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("c.csv");
    std::fs::write(&csv, "review,category\nthe apple,fruit\nthe road,cars\n").unwrap();
    let data = |t: &str, l: &str| {
        format!(
            "path = \"{}\"\ntext_column = \"{t}\"\nlabel_column = \"{l}\"",
            csv.display()
        )
    };
    let m = refused(tmp.path(), &data("reviews", "category"), 2);
    assert!(
        m.contains("data.text_column = \"reviews\" is not a column"),
        "{m}"
    );
    assert!(m.contains("did you mean \"review\"?"), "{m}");
    let m = refused(tmp.path(), &data("review", "categroy"), 2);
    assert!(m.contains("data.label_column = \"categroy\""), "{m}");
    assert!(m.contains("did you mean \"category\"?"), "{m}");
}

#[test]
fn a_csv_with_ragged_rows_is_refused_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("ragged.csv");
    std::fs::write(
        &csv,
        "text,label\nthe apple,fruit\nthe road,cars\nthe wave, big,water\n",
    )
    .unwrap();
    let m = refused(
        tmp.path(),
        &format!(
            "path = \"{}\"\ntext_column = \"text\"\nlabel_column = \"label\"",
            csv.display()
        ),
        3,
    );
    assert!(
        m.contains("ragged.csv: line 4 has 3 fields but the header has 2"),
        "{m}"
    );
    assert!(m.contains("quote fields"), "{m}");
}

#[test]
fn listed_classes_must_match_the_output_units() {
    let tmp = tempfile::tempdir().unwrap();
    let root = class_folders(&tmp.path().join("c"), 3, 5);
    let file = experiment(
        tmp.path(),
        "units",
        &format!(
            "path = \"{}\"\nclasses = [\"cars\", \"fruit\", \"water\"]",
            root.display()
        ),
        2,
        "sparse_categorical_crossentropy",
    );
    let out = seqlab(tmp.path()).arg("check").arg(&file).output().unwrap();
    assert!(!out.status.success());
    let m = text(&out);
    assert!(m.contains("(3 classes in data.classes)"), "{m}");
    assert!(m.contains("units = 3"), "{m}");
    // unlisted: found when the data is read, before anything is written
    let m = refused(tmp.path(), &format!("path = \"{}\"", root.display()), 2);
    assert!(
        m.contains("the data has 3 classes (cars, fruit, water)"),
        "{m}"
    );
}

#[test]
fn three_classes_train_end_to_end_with_accuracy_classes_and_vocabulary() {
    let tmp = tempfile::tempdir().unwrap();
    let root = class_folders(&tmp.path().join("c"), 3, 30);
    let file = experiment(
        tmp.path(),
        "topics",
        &format!("path = \"{}\"", root.display()),
        3,
        "sparse_categorical_crossentropy",
    );
    let results = tmp.path().join("results");
    run_ok(&mut run_cmd(tmp.path(), &file, &results));
    let dir = results.join("topics/default");
    let metrics = read(&dir.join("metrics.csv"));
    let mut lines = metrics.lines();
    assert_eq!(
        lines.next().unwrap(),
        "epoch,train_loss,val_loss,train_accuracy,val_accuracy"
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert!(
            r[1] > 0.0 && r[1] < 3.0,
            "cross-entropy of 3 classes: {r:?}"
        );
        assert!(
            (0.0..=1.0).contains(&r[3]) && (0.0..=1.0).contains(&r[4]),
            "{r:?}"
        );
    }
    let summary: toml::Table = toml::from_str(&read(&dir.join("summary.toml"))).unwrap();
    assert_eq!(summary["status"].as_str(), Some("complete"));
    let meta: toml::Table = toml::from_str(&read(&dir.join("text.toml"))).unwrap();
    let classes: Vec<&str> = meta["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(classes, ["cars", "fruit", "water"]);
    let vocab = read(&dir.join("vocab.txt"));
    let lines: Vec<&str> = vocab.lines().collect();
    assert_eq!(&lines[..5], ["<pad>", "<start>", "<oov>", "the", "and"]);
    assert!(lines.contains(&"ocean") && lines.contains(&"engine"));
    // the test split's 18 documents (20% of 90), rows = true classes
    let confusion = read(&dir.join("confusion.csv"));
    let mut rows = confusion.lines();
    assert_eq!(rows.next().unwrap(), "true\\predicted,cars,fruit,water");
    let total: u64 = rows
        .map(|r| {
            r.split(',')
                .skip(1)
                .map(|n| n.parse::<u64>().unwrap())
                .sum::<u64>()
        })
        .sum();
    assert_eq!(total, 18);
    // confusion.png: the figure's size for 3 classes, and a drawn matrix
    // (white background, text, and shaded cells in between).
    let (w, h, pixels) = png_rgb(&dir.join("confusion.png"));
    assert_eq!((w, h), seqlab::plot::confusion::size(3));
    let colours: std::collections::BTreeSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(colours.len() > 20, "{} colours", colours.len());
    let blue = pixels
        .iter()
        .filter(|p| p[2] > p[0] && p[2] > p[1] + 20)
        .count();
    assert!(blue > 3 * 50 * 50 / 4, "{blue} shaded pixels");
}

/// A PNG's width, height and RGB pixels (decoded, not just opened).
fn png_rgb(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    assert!(step >= 3, "{:?}", info.color_type);
    let pixels = buf[..info.buffer_size()]
        .chunks(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}

#[test]
fn data_info_reports_classes_lengths_and_vocabulary() {
    let tmp = tempfile::tempdir().unwrap();
    let root = class_folders(&tmp.path().join("c"), 3, 4);
    let out = run_ok(seqlab(tmp.path()).args(["data", "info"]).arg(&root));
    let m = text(&out);
    assert!(m.contains("12 documents"), "{m}");
    assert!(m.contains("classes: 3"), "{m}");
    assert!(
        m.lines()
            .any(|l| l.trim_start().starts_with("water") && l.contains(" 4 ")),
        "{m}"
    );
    assert!(m.contains("min 7, p50 7"), "{m}");
    assert!(m.contains("max_features =   1000:"), "{m}");
    let csv = tmp.path().join("c.csv");
    std::fs::write(&csv, "t,l\nthe apple,a\nthe road,b\n").unwrap();
    let out = run_ok(seqlab(tmp.path()).args(["data", "info"]).arg(&csv).args([
        "--text-column",
        "t",
        "--label-column",
        "l",
    ]));
    let m = text(&out);
    assert!(m.contains("2 documents") && m.contains("classes: 2"), "{m}");
    assert!(
        m.contains("vocabulary: 3 distinct words, 4 occurrences"),
        "{m}"
    );
}

#[test]
fn two_classes_train_with_one_logit_or_two_softmax_units() {
    let tmp = tempfile::tempdir().unwrap();
    let root = class_folders(&tmp.path().join("c"), 2, 20);
    let data = format!(
        "path = \"{}\"\nclasses = [\"fruit\", \"cars\"]",
        root.display()
    );
    for (name, units, loss) in [
        ("bce", 1, "binary_crossentropy"),
        ("scce", 2, "sparse_categorical_crossentropy"),
    ] {
        let file = experiment(tmp.path(), name, &data, units, loss);
        let file_text = read(&file).replace(
            "\"softmax\"",
            if units == 1 {
                "\"sigmoid\""
            } else {
                "\"softmax\""
            },
        );
        std::fs::write(&file, file_text).unwrap();
        let results = tmp.path().join("results");
        run_ok(&mut run_cmd(tmp.path(), &file, &results));
        let dir = results.join(name).join("default");
        let summary: toml::Table = toml::from_str(&read(&dir.join("summary.toml"))).unwrap();
        let acc = summary["test"]["test_accuracy"].as_float().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{name}: {acc}");
        let confusion = read(&dir.join("confusion.csv"));
        assert!(
            confusion.starts_with("true\\predicted,fruit,cars\n"),
            "{name}: {confusion}"
        );
        // 8 test documents (20% of 40); the diagonal over the total is the accuracy
        let rows: Vec<Vec<u64>> = confusion
            .lines()
            .skip(1)
            .map(|r| r.split(',').skip(1).map(|n| n.parse().unwrap()).collect())
            .collect();
        let total: u64 = rows.iter().flatten().sum();
        assert_eq!(total, 8, "{name}");
        let right = (rows[0][0] + rows[1][1]) as f64 / 8.0;
        assert!(
            (right - acc).abs() < 1e-4,
            "{name}: {right} vs test_accuracy {acc}"
        );
    }
}

#[test]
fn the_encoding_cache_gives_identical_arrays_and_follows_the_content() {
    use seqlab::data::text::load;
    let tmp = tempfile::tempdir().unwrap();
    let root = class_folders(&tmp.path().join("c"), 3, 10);
    let cache = tmp.path().join("cache");
    let s = spec("max_features = 20\nmaxlen = 6");
    let first = load(&s, &root, None, &cache).unwrap();
    assert!(!first.from_cache);
    assert_eq!(first.text, encode(&s, &root, None).unwrap());
    let files: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    // A hit: the same arrays, classes and vocabulary, so the same batches.
    let second = load(&s, &root, None, &cache).unwrap();
    assert!(second.from_cache);
    assert_eq!(second.text, first.text);
    let batch = |t: &seqlab::data::text::TextArrays| {
        let mut b = seqlab::data::TokenBatches::new(&t.arrays.train, 6, 4, true, tch::Device::Cpu);
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(7);
        let (x, y) = b.next_batch(&mut rng);
        (
            Vec::<i64>::try_from(x.flatten(0, -1)).unwrap(),
            Vec::<f32>::try_from(y.flatten(0, -1)).unwrap(),
        )
    };
    assert_eq!(batch(&first.text), batch(&second.text));
    // Another setting: another cache entry.
    let other = load(&spec("max_features = 10\nmaxlen = 6"), &root, None, &cache).unwrap();
    assert!(!other.from_cache);
    // An edited document of the same size (content, not size or name, is the key).
    let f = root.join("water/003.txt");
    let text = std::fs::read_to_string(&f).unwrap();
    let edited = text
        .replacen("river", "rivER", 1)
        .replacen("ocean", "ocEAN", 1);
    assert_ne!(edited, text);
    assert_eq!(edited.len(), text.len());
    std::fs::write(&f, edited).unwrap();
    let after = load(&s, &root, None, &cache).unwrap();
    assert!(
        !after.from_cache,
        "an edited file must invalidate the cache"
    );
    assert_eq!(after.text, encode(&s, &root, None).unwrap());
    // A damaged cache file is ignored and rebuilt.
    for e in std::fs::read_dir(&cache).unwrap().flatten() {
        let mut b = std::fs::read(e.path()).unwrap();
        let n = b.len() / 2;
        b[n] ^= 0xff;
        std::fs::write(e.path(), b).unwrap();
    }
    let rebuilt = load(&s, &root, None, &cache).unwrap();
    assert!(!rebuilt.from_cache);
    assert_eq!(rebuilt.text, after.text);
    assert!(load(&s, &root, None, &cache).unwrap().from_cache);
}

/// The IMDB preset is a text collection cut by Keras' rule: the same
/// experiment written as `source = "text"` settings trains to the same bytes,
/// reversal included.
#[test]
fn the_imdb_preset_and_its_text_settings_train_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let body = |name: &str, data: &str| {
        format!(
            "[experiment]\nname = \"{name}\"\n[data]\n{data}\npath = \"{}\"\nmax_features = 200\nmaxlen = 40\nbatch_size = 4\nreverse = true\n\
             [train]\nepochs = 2\nsteps_per_epoch = 3\nloss = \"binary_crossentropy\"\nmetrics = [\"accuracy\"]\nthreads = 1\nseed = 9\nevaluate_test = true\n\
             [[layers]]\ntype = \"embedding\"\ninput_dim = 200\noutput_dim = 8\n[[layers]]\ntype = \"global_average_pool1d\"\n\
             [[layers]]\ntype = \"dense\"\nunits = 1\nactivation = \"sigmoid\"\n",
            fixture("imdb_tiny.tar.gz").display()
        )
    };
    for (name, data) in [
        ("preset", "source = \"imdb\""),
        ("text", "source = \"text\"\nsplit_rule = \"keras_imdb\""),
    ] {
        let file = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&file, body(name, data)).unwrap();
        run_ok(run_cmd(tmp.path(), &file, &results).arg("--no-report"));
    }
    for f in ["metrics.csv", "vocab.txt", "text.toml"] {
        assert_eq!(
            read(&results.join("preset/default").join(f)),
            read(&results.join("text/default").join(f)),
            "{f}"
        );
    }
    assert!(read(&results.join("text/default/text.toml")).contains("reverse = true"));
    let test = |name: &str| -> toml::Value {
        toml::from_str::<toml::Table>(&read(&results.join(name).join("default/summary.toml")))
            .unwrap()["test"]
            .clone()
    };
    assert_eq!(test("preset"), test("text"));
}

/// `reverse = true` reverses each document's ids before padding.
#[test]
fn reverse_flips_each_document_before_padding() {
    let tmp = tempfile::tempdir().unwrap();
    let root = class_folders(&tmp.path().join("c"), 2, 10);
    let settings = "maxlen = 12\nmax_features = 100\nvalidation_split = 0.25\ntest_split = 0.2";
    let plain = encode(&spec(settings), &root, None).unwrap();
    let flipped = encode(&spec(&format!("{settings}\nreverse = true")), &root, None).unwrap();
    let rows = |x: &[i32]| x.chunks(12).map(<[i32]>::to_vec).collect::<Vec<_>>();
    for (a, b) in rows(&plain.arrays.train.x)
        .iter()
        .zip(rows(&flipped.arrays.train.x))
    {
        let ids: Vec<i32> = a.iter().copied().filter(|&i| i != 0).collect();
        let mut back: Vec<i32> = b.iter().copied().filter(|&i| i != 0).collect();
        back.reverse();
        assert_eq!(ids, back, "the same ids, reversed, still padded in front");
        assert_eq!(b[b.len() - 1], 1, "the start id ends a reversed document");
    }
}
