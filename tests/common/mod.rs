//! Shared helpers for the integration tests: the binary, tiny experiment
//! files on the fixtures, and reading results back.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The seqlab binary with a private data directory and no SEQLAB_* leaking in.
pub fn seqlab(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_seqlab"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SEQLAB_") {
            c.env_remove(k);
        }
    }
    c.env("SEQLAB_DATA", data_dir);
    c
}

/// `seqlab run FILE --results RESULTS`, with a private data directory.
pub fn run_cmd(data_dir: &Path, file: &Path, results: &Path) -> Command {
    let mut c = seqlab(data_dir);
    c.arg("run").arg(file).arg("--results").arg(results);
    c
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("seqlab starts");
    assert!(
        out.status.success(),
        "seqlab failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A tiny Jena experiment on the 600-row real fixture: 12 hourly steps of
/// two hours back, one hour ahead; small splits; the given layers.
pub fn tiny_jena(dir: &Path, name: &str, layers: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        r#"[experiment]
name = "{name}"
title = "tiny {name}"

[data]
source = "jena"
path = "{csv}"
lookback = 24
step = 2
delay = 6
batch_size = 16
splits = {{ train = [0, 300], val = [301, 450], test = [451, 592] }}

[train]
epochs = 3
steps_per_epoch = 8
val_steps = 4
test_steps = 4
seed = 7
threads = 1
optimizer = {{ name = "rmsprop", lr = 0.005 }}
{extra}
{layers}
"#,
        csv = fixture("jena_head.csv").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

pub const GRU: &str =
    "[[layers]]\ntype = \"gru\"\nunits = 8\n\n[[layers]]\ntype = \"dense\"\nunits = 1\n";

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Three topics of generated text collections: each class's own words.
pub const WORDS: [&[&str]; 3] = [
    &["apple", "banana", "cherry", "fruit", "sweet"],
    &["engine", "wheel", "brake", "road", "fast"],
    &["river", "ocean", "rain", "water", "wave"],
];
pub const CLASSES: [&str; 3] = ["fruit", "cars", "water"];
