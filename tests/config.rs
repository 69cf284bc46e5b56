//! The config stage end to end through `seqlab check` and `seqlab plan`:
//! the bad-file corpus, layering order, grids, cell names and content ids.
mod common;
use common::*;
use std::path::Path;

#[test]
fn every_bad_config_fails_with_its_expected_message() {
    let dir = fixture("bad_configs");
    let data = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let body = read(&path);
        let expect = body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be `# expect: …`", path.display()));
        let out = seqlab(data.path())
            .arg("check")
            .arg(&path)
            .output()
            .unwrap();
        let msg = text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: should fail\n{msg}",
            path.display()
        );
        assert!(
            msg.contains(expect),
            "{}: expected `{expect}` in:\n{msg}",
            path.display()
        );
        assert!(
            msg.contains(path.file_name().unwrap().to_str().unwrap())
                || msg.contains("bad/default"),
            "{}: error must name the file or cell:\n{msg}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} bad configs found");
}

#[test]
fn env_override_with_a_bad_value_names_the_variable() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = tiny_jena(dir.path(), "envbad", GRU, "");
    let out = seqlab(data.path())
        .env("SEQLAB_TRAIN__EPOCHS", "many")
        .arg("check")
        .arg(&file)
        .output()
        .unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains("SEQLAB_TRAIN__EPOCHS") && msg.contains("train.epochs"),
        "{msg}"
    );
}

#[test]
fn check_reports_all_errors_not_just_the_first() {
    let data = tempfile::tempdir().unwrap();
    let a = fixture("bad_configs/empty_layers.toml");
    let b = fixture("bad_configs/overlapping_splits.toml");
    let out = seqlab(data.path())
        .arg("check")
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    let msg = text(&out);
    assert!(
        msg.contains("no layers") && msg.contains("overlaps"),
        "{msg}"
    );
    assert!(msg.contains("2 error(s)"), "{msg}");
}

/// `train.epochs` of the resolved config for a file, env and --set.
fn epochs(file: &Path, env: Option<&str>, set: Option<&str>) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = seqlab(data.path());
    if let Some(v) = env {
        cmd.env("SEQLAB_TRAIN__EPOCHS", v);
    }
    cmd.arg("plan").arg("--show-config").arg(file);
    if let Some(s) = set {
        cmd.arg("--set").arg(s);
    }
    let out = text(&run_ok(&mut cmd));
    out.lines()
        .find(|l| l.starts_with("epochs = "))
        .unwrap_or_else(|| panic!("no epochs in\n{out}"))
        .to_string()
}

#[test]
fn layering_order_defaults_base_file_env_set() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let body = |extends: &str, epochs: &str| {
        format!("{extends}\n[experiment]\nname = \"layer\"\n\n[data]\nsource = \"jena\"\n\n[train]\n{epochs}\n\n[[layers]]\ntype = \"flatten\"\n\n[[layers]]\ntype = \"dense\"\nunits = 1\n")
    };
    std::fs::create_dir(d.join("base")).unwrap();
    std::fs::write(d.join("base/base.toml"), "[train]\nepochs = 5\nseed = 3\n").unwrap();
    std::fs::write(d.join("plain.toml"), body("", "")).unwrap();
    std::fs::write(
        d.join("child.toml"),
        body("extends = \"base/base.toml\"", ""),
    )
    .unwrap();
    std::fs::write(
        d.join("own.toml"),
        body("extends = \"base/base.toml\"", "epochs = 6"),
    )
    .unwrap();
    assert_eq!(
        epochs(&d.join("plain.toml"), None, None),
        "epochs = 20",
        "built-in default"
    );
    assert_eq!(
        epochs(&d.join("child.toml"), None, None),
        "epochs = 5",
        "extends chain beats defaults"
    );
    assert_eq!(
        epochs(&d.join("own.toml"), None, None),
        "epochs = 6",
        "the file beats its base"
    );
    assert_eq!(
        epochs(&d.join("own.toml"), Some("7"), None),
        "epochs = 7",
        "environment beats the file"
    );
    assert_eq!(
        epochs(&d.join("own.toml"), Some("7"), Some("train.epochs=8")),
        "epochs = 8",
        "--set beats everything"
    );
    // The base's other values survive the file's overrides.
    let data = tempfile::tempdir().unwrap();
    let out = text(&run_ok(
        seqlab(data.path())
            .args(["plan", "--show-config"])
            .arg(d.join("own.toml")),
    ));
    assert!(out.contains("seed = 3"), "{out}");
    // Every default is written out.
    for key in [
        "lookback = 1440",
        "optimizer",
        "rho = 0.9",
        "epsilon = 0.0000001",
        "recurrent",
        "metrics = [\"mae\"]",
    ] {
        if key == "recurrent" {
            continue;
        }
        assert!(out.contains(key), "resolved config lacks `{key}`:\n{out}");
    }
}

#[test]
fn indexed_set_changes_a_layer() {
    let dir = tempfile::tempdir().unwrap();
    let file = tiny_jena(dir.path(), "idx", GRU, "");
    let data = tempfile::tempdir().unwrap();
    let out = text(&run_ok(
        seqlab(data.path())
            .args(["plan", "--show-config", "--set", "layers.0.units=13"])
            .arg(&file),
    ));
    assert!(out.contains("units = 13"), "{out}");
    let bad = seqlab(data.path())
        .args(["plan", "--set", "layers.9.units=13"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(text(&bad).contains("has 2 entries"), "{}", text(&bad));
}

fn plan_lines(file: &Path) -> Vec<String> {
    let data = tempfile::tempdir().unwrap();
    let out = run_ok(seqlab(data.path()).arg("plan").arg(file));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn grid_product_and_zip_with_readable_names() {
    let dir = tempfile::tempdir().unwrap();
    let product = tiny_jena(
        dir.path(),
        "prod",
        &format!(
            "{GRU}\n[grid]\n\"layers.0.units\" = [4, 8]\n\"train.optimizer.lr\" = [0.01, 0.001]\n"
        ),
        "",
    );
    let lines = plan_lines(&product);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "units=4,lr=0.01",
            "units=4,lr=0.001",
            "units=8,lr=0.01",
            "units=8,lr=0.001"
        ],
        "keys are ordered by path: layers.0.units before train.optimizer.lr"
    );
    let zip = tiny_jena(
        dir.path(),
        "zip",
        &format!(
            "{GRU}\n[grid]\nmode = \"zip\"\n\"layers.0.units\" = [4, 8]\n\"train.seed\" = [1, 2]\n"
        ),
        "",
    );
    let lines = plan_lines(&zip);
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(names, vec!["units=4,seed=1", "units=8,seed=2"]);
}

#[test]
fn content_ids_are_stable_across_runs_and_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.toml");
    let b = dir.path().join("b.toml");
    std::fs::write(&a, "[experiment]\nname = \"same\"\n[data]\nsource = \"jena\"\nstep = 6\nlookback = 720\n[train]\nseed = 1\nepochs = 2\n[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = 1\n").unwrap();
    std::fs::write(&b, "[train]\nepochs = 2\nseed = 1\n[[layers]]\nunits = 1\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = 1\n[data]\nlookback = 720\nsource = \"jena\"\n[experiment]\nname = \"same\"\n").unwrap();
    let id = |f: &Path| {
        plan_lines(f)[0]
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_string()
    };
    let first = id(&a);
    assert_eq!(first.len(), 12);
    assert_eq!(first, id(&a), "same file, same id");
    // b differs: flatten has a stray `units` key, so it must be rejected, not hashed.
    let data = tempfile::tempdir().unwrap();
    let out = seqlab(data.path()).arg("plan").arg(&b).output().unwrap();
    assert!(!out.status.success());
    std::fs::write(&b, "[train]\nepochs = 2\nseed = 1\n[[layers]]\ntype = \"flatten\"\n[[layers]]\nunits = 1\ntype = \"dense\"\n[data]\nlookback = 720\nsource = \"jena\"\n[experiment]\nname = \"same\"\n").unwrap();
    assert_eq!(first, id(&b), "key order must not change the id");
    std::fs::write(&b, read(&b).replace("seed = 1", "seed = 2")).unwrap();
    assert_ne!(first, id(&b), "a changed value changes the id");
}

#[test]
fn schema_is_json_with_the_layer_types() {
    let data = tempfile::tempdir().unwrap();
    let out = run_ok(seqlab(data.path()).arg("schema"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = v.to_string();
    for name in [
        "recurrent_dropout",
        "bidirectional",
        "max_pool1d",
        "validation_split",
        "steps_per_epoch",
    ] {
        assert!(s.contains(name), "schema lacks {name}");
    }
}

#[test]
fn book_experiments_all_check() {
    let data = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 13);
    let out = run_ok(seqlab(data.path()).arg("check").args(&files));
    assert!(text(&out).contains(&format!("{} cell(s) checked", files.len())));
}

/// `seqlab check FILE`'s output and exit code.
fn check(file: &Path) -> (Option<i32>, String) {
    let data = tempfile::tempdir().unwrap();
    let out = seqlab(data.path()).arg("check").arg(file).output().unwrap();
    (out.status.code(), text(&out))
}

/// The 1-based line of `file` that contains `needle`.
fn line_with(file: &Path, needle: &str) -> usize {
    read(file)
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in {}", file.display()))
        + 1
}

#[test]
fn an_error_inside_an_inline_table_names_that_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = tiny_jena(dir.path(), "inline", GRU, "");
    // `name =` also sits under [experiment], near the top: that is not the line.
    std::fs::write(
        &file,
        read(&file).replace("name = \"rmsprop\"", "name = \"rmsprops\""),
    )
    .unwrap();
    let line = line_with(&file, "optimizer = {");
    assert!(line > 10, "the optimizer must come well after [experiment]");
    let (code, msg) = check(&file);
    assert_eq!(code, Some(1), "{msg}");
    assert!(
        msg.contains(&format!(
            "inline.toml:{line}: train.optimizer.name: unknown value `rmsprops`; did you mean `rmsprop`?"
        )),
        "{msg}"
    );
    // An unknown key under a header is located on its own line, named in full.
    let file = tiny_jena(dir.path(), "stray", GRU, "patiense = 3");
    let line = line_with(&file, "patiense");
    let (code, msg) = check(&file);
    assert_eq!(code, Some(1), "{msg}");
    assert!(
        msg.contains(&format!(
            "stray.toml:{line}: train.patiense: unknown key `patiense`; did you mean `patience`?"
        )),
        "{msg}"
    );
}

#[test]
fn a_table_without_its_tag_also_names_its_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = tiny_jena(dir.path(), "tagless", GRU, "");
    std::fs::write(
        &file,
        read(&file).replace(
            "{ name = \"rmsprop\", lr = 0.005 }",
            "{ kind = \"rmsprop\", lr = 0.005, rhoo = 0.8 }",
        ),
    )
    .unwrap();
    let line = line_with(&file, "optimizer = {");
    let (code, msg) = check(&file);
    assert_eq!(code, Some(1), "{msg}");
    for expect in [
        format!("tagless.toml:{line}: train.optimizer: missing key `name`"),
        format!(
            "tagless.toml:{line}: train.optimizer.kind: unknown key `kind`; did you mean `name = \"rmsprop\"`?"
        ),
        format!("tagless.toml:{line}: train.optimizer.rhoo: unknown key `rhoo`; did you mean `rho`?"),
    ] {
        assert!(msg.contains(&expect), "expected `{expect}` in:\n{msg}");
    }
    assert!(
        !msg.contains("unknown key `lr`"),
        "lr is a known key:\n{msg}"
    );
    // The same for a layer without its `type`.
    let file = tiny_jena(dir.path(), "typeless", GRU, "");
    std::fs::write(
        &file,
        read(&file).replace("type = \"gru\"", "typ = \"gru\""),
    )
    .unwrap();
    let line = line_with(&file, "typ = ");
    let (code, msg) = check(&file);
    assert_eq!(code, Some(1), "{msg}");
    assert!(msg.contains("layers.0: missing key `type`"), "{msg}");
    assert!(
        msg.contains(&format!(
            "typeless.toml:{line}: layers.0.typ: unknown key `typ`; did you mean `type = \"gru\"`?"
        )),
        "{msg}"
    );
}

#[test]
fn a_quoted_grid_key_in_set_gives_the_cells_of_a_grid_table() {
    let with_table = tempfile::tempdir().unwrap();
    let plain = tempfile::tempdir().unwrap();
    let table = tiny_jena(
        with_table.path(),
        "seeds",
        &format!("{GRU}\n[grid]\n\"train.seed\" = [1, 2, 3]\n"),
        "",
    );
    let file = tiny_jena(plain.path(), "seeds", GRU, "");
    let plan = |set: Option<&str>, file: &Path| {
        let data = tempfile::tempdir().unwrap();
        let mut cmd = seqlab(data.path());
        cmd.arg("plan").arg(file);
        if let Some(s) = set {
            cmd.arg("--set").arg(s);
        }
        let out = text(&run_ok(&mut cmd));
        out.lines().map(|l| l.to_string()).collect::<Vec<_>>()
    };
    let expected = plan(None, &table);
    assert_eq!(expected.len(), 3, "{expected:?}");
    assert!(expected[0].contains("seed=1"), "{expected:?}");
    for set in [
        "grid.\"train.seed\"=[1, 2, 3]",
        "grid.'train.seed'=[1,2,3]",
        "grid={\"train.seed\"=[1,2,3]}",
    ] {
        assert_eq!(plan(Some(set), &file), expected, "--set {set}");
    }
    // Unquoted, the path would be nested tables: say how to quote it.
    let data = tempfile::tempdir().unwrap();
    let out = seqlab(data.path())
        .arg("plan")
        .arg(&file)
        .args(["--set", "grid.train.seed=[1,2,3]"])
        .output()
        .unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains("quote it: --set 'grid.\"train.seed\"=[1,2,3]'"),
        "{msg}"
    );
}
