//! Reads a labelled text collection (`source = "text"`) into documents with
//! their label as written: a folder with one subfolder of `.txt` files per
//! class (Keras' `text_dataset_from_directory` layout), a `.tar.gz` of such a
//! folder (read through `archive`'s safety rules, never unpacked), a CSV /
//! TSV file with a text and a label column, or a JSON-lines file (`.jsonl`,
//! one object a line) with a text and a label key.
//!
//! Order is deterministic: folders by class name then file name; CSV rows in
//! file order. Files that are not valid UTF-8 are decoded lossily (invalid
//! bytes become U+FFFD) and counted in [`Collection::lossy`].
use crate::data::archive::for_each_tar_gz_file;
use crate::data::table::suggest;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::path::Path;

/// One document: its label as written and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub label: String,
    pub text: String,
}

/// The documents of one path, and how many were not valid UTF-8.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    pub docs: Vec<Doc>,
    pub lossy: usize,
}

/// Which columns of a CSV / TSV hold the text and the label.
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a> {
    pub text: &'a str,
    pub label: &'a str,
}

/// Whether `path` names a delimited or JSON-lines file (by its extension).
pub fn is_table(path: &Path) -> bool {
    let name = path.to_string_lossy().to_lowercase();
    [".csv", ".tsv", ".tab"].iter().any(|e| name.ends_with(e)) || is_json_lines(path)
}

fn is_json_lines(path: &Path) -> bool {
    let name = path.to_string_lossy().to_lowercase();
    name.ends_with(".jsonl") || name.ends_with(".ndjson")
}

/// Reads a folder, a `.tar.gz` or a CSV / TSV.
pub fn read_collection(path: &Path, columns: Columns) -> Result<Collection> {
    if path.is_dir() {
        read_folder(path)
    } else if !path.exists() {
        bail!(
            "{}: no such file or folder; point data.path at a folder with one subfolder per class, its .tar.gz, or a CSV / TSV / .jsonl file",
            path.display()
        )
    } else if is_table(path) {
        read_table(path, columns)
    } else if path.to_string_lossy().ends_with(".tar.gz")
        || path.to_string_lossy().ends_with(".tgz")
    {
        read_archive(path)
    } else {
        bail!(
            "{}: not a folder, .tar.gz, .csv, .tsv or .jsonl; give data.path one of those",
            path.display()
        )
    }
}

fn decode(bytes: Vec<u8>, lossy: &mut usize) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            *lossy += 1;
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    }
}

fn read_folder(root: &Path) -> Result<Collection> {
    let mut classes = Vec::new();
    for e in std::fs::read_dir(root).with_context(|| format!("cannot list {}", root.display()))? {
        let e = e?;
        if e.file_type()?.is_dir() {
            classes.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    classes.sort();
    if classes.is_empty() {
        bail!(
            "{}: no class subfolders; a text folder holds one subfolder of .txt files per class (e.g. {0}/pos/1.txt, {0}/neg/2.txt)",
            root.display()
        );
    }
    let mut out = Collection::default();
    for class in classes {
        let dir = root.join(&class);
        let mut names = Vec::new();
        for e in
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".txt") && e.file_type()?.is_file() {
                names.push(name);
            }
        }
        if names.is_empty() {
            bail!(
                "{}: class folder `{class}` has no .txt files; add its documents or remove the folder",
                dir.display()
            );
        }
        names.sort();
        let texts: Vec<Result<Vec<u8>>> = names
            .par_iter()
            .map(|n| {
                let p = dir.join(n);
                std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))
            })
            .collect();
        for t in texts {
            let text = decode(t?, &mut out.lossy);
            out.docs.push(Doc {
                label: class.clone(),
                text,
            });
        }
    }
    Ok(out)
}

fn read_archive(path: &Path) -> Result<Collection> {
    let mut found: Vec<(String, String, Vec<u8>)> = Vec::new();
    for_each_tar_gz_file(path, |name, reader| {
        let parts: Vec<&str> = name.trim_end_matches('/').split('/').collect();
        if let [.., class, file] = parts.as_slice() {
            if file.ends_with(".txt") && !file.starts_with("._") {
                let mut bytes = Vec::new();
                reader
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("{}: cannot read {name}", path.display()))?;
                found.push((class.to_string(), name.to_string(), bytes));
            }
        }
        Ok(())
    })?;
    if found.is_empty() {
        bail!(
            "{}: no <class>/<name>.txt files in the archive; archive a folder with one subfolder of .txt files per class",
            path.display()
        );
    }
    found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut out = Collection::default();
    for (label, _, bytes) in found {
        let text = decode(bytes, &mut out.lossy);
        out.docs.push(Doc { label, text });
    }
    Ok(out)
}

fn read_table(path: &Path, columns: Columns) -> Result<Collection> {
    if columns.text.is_empty() || columns.label.is_empty() {
        bail!(
            "{}: a CSV / TSV / JSON-lines collection needs data.text_column and data.label_column (the columns or keys holding the text and the class)",
            path.display()
        );
    }
    let mut bytes =
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    if is_json_lines(path) {
        return read_json_lines(path, &bytes, columns);
    }
    let name = path.to_string_lossy().to_lowercase();
    let delimiter = if name.ends_with(".tsv") || name.ends_with(".tab") {
        b'\t'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .from_reader(bytes.as_slice());
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(h) => h.with_context(|| format!("{}: cannot read the header", path.display()))?,
        None => bail!(
            "{}: empty file; expected a header naming the text and label columns",
            path.display()
        ),
    };
    let names: Vec<String> = header
        .iter()
        .map(|c| String::from_utf8_lossy(c).trim().to_string())
        .collect();
    let find = |key: &str, want: &str| -> Result<usize> {
        names.iter().position(|n| n == want).with_context(|| {
            format!(
                "{}: data.{key} = \"{want}\" is not a column of the header{} (columns: {}); name one of them",
                path.display(),
                suggest(want, &names),
                names.join(", ")
            )
        })
    };
    let ti = find("text_column", columns.text)?;
    let li = find("label_column", columns.label)?;
    let mut out = Collection::default();
    for record in records {
        let record = record
            .with_context(|| format!("{}: malformed CSV (an unclosed quote?)", path.display()))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != names.len() {
            bail!(
                "{}: line {line} has {} fields but the header has {}; quote fields that contain the delimiter (\"…\") and give every row the same columns",
                path.display(),
                record.len(),
                names.len()
            );
        }
        let label = decode(record[li].to_vec(), &mut out.lossy)
            .trim()
            .to_string();
        if label.is_empty() {
            bail!(
                "{}: line {line}: the label column `{}` is empty; give every row a class",
                path.display(),
                columns.label
            );
        }
        let text = decode(record[ti].to_vec(), &mut out.lossy);
        out.docs.push(Doc { label, text });
    }
    if out.docs.is_empty() {
        bail!("{}: a header but no rows; add documents", path.display());
    }
    Ok(out)
}

/// One JSON object a line; blank lines are skipped. A label may be a string,
/// a number or a boolean (read as written).
fn read_json_lines(path: &Path, bytes: &[u8], columns: Columns) -> Result<Collection> {
    let mut out = Collection::default();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let text = decode(raw.to_vec(), &mut out.lossy);
        if text.trim().is_empty() {
            continue;
        }
        let not_object = || {
            format!(
                "{}: line {line} is not a JSON object; write one object per line",
                path.display()
            )
        };
        let value: serde_json::Value = serde_json::from_str(&text).with_context(not_object)?;
        let Some(object) = value.as_object() else {
            bail!(not_object());
        };
        let field = |key: &str, want: &str| -> Result<String> {
            match object.get(want) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    Ok(v.to_string())
                }
                Some(other) => bail!(
                    "{}: line {line}: `{want}` (data.{key}) is {other}, not a string; give it text",
                    path.display()
                ),
                None => {
                    let keys: Vec<String> = object.keys().cloned().collect();
                    bail!(
                        "{}: line {line}: no key data.{key} = \"{want}\"{} (keys: {}); name one of them",
                        path.display(),
                        suggest(want, &keys),
                        keys.join(", ")
                    )
                }
            }
        };
        let doc = Doc {
            text: field("text_column", columns.text)?,
            label: field("label_column", columns.label)?.trim().to_string(),
        };
        if doc.label.is_empty() {
            bail!(
                "{}: line {line}: the label `{}` is empty; give every document a class",
                path.display(),
                columns.label
            );
        }
        out.docs.push(doc);
    }
    if out.docs.is_empty() {
        bail!("{}: no documents (empty file)", path.display());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_decoded_lossily_and_counted() {
        let mut n = 0;
        assert_eq!(decode(b"ok".to_vec(), &mut n), "ok");
        assert_eq!(n, 0);
        assert_eq!(decode(b"a\xffb".to_vec(), &mut n), "a\u{fffd}b");
        assert_eq!(n, 1);
        assert!(is_table(Path::new("x/reviews.TSV")));
        assert!(!is_table(Path::new("x/reviews.tar.gz")));
        assert!(is_table(Path::new("x/reviews.jsonl")));
    }

    #[test]
    fn json_lines_with_string_or_number_labels_and_a_named_missing_key() {
        let cols = Columns {
            text: "text",
            label: "label",
        };
        let p = Path::new("r.jsonl");
        let good = b"{\"text\": \"good\", \"label\": 1}\n\n{\"text\": \"bad\", \"label\": \"0\"}\n";
        let c = read_json_lines(p, good, cols).unwrap();
        assert_eq!(c.docs.len(), 2);
        assert_eq!(
            (c.docs[0].label.as_str(), c.docs[1].text.as_str()),
            ("1", "bad")
        );
        let missing = b"{\"text\": \"a\", \"label\": 1}\n{\"txt\": \"b\", \"label\": 0}\n";
        let e = read_json_lines(p, missing, cols).unwrap_err().to_string();
        assert!(
            e.contains("r.jsonl: line 2: no key data.text_column = \"text\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"txt\"?"), "{e}");
        let e = format!("{:#}", read_json_lines(p, b"[1, 2]\n", cols).unwrap_err());
        assert!(e.contains("line 1 is not a JSON object"), "{e}");
    }
}
