//! Layering with figment: built-in defaults < `extends` chain < the file <
//! `SEQLAB_<SECTION>__<KEY>` environment variables < `--set key.path=value`.
//!
//! Every error keeps its provenance: the file (with a line where one can be
//! found), the environment variable or the `--set` it came from, and the key.
use super::schema::{keys_at, Config};
use super::suggest::{closest, with_suggestion};
use super::value_path;
use super::ConfigErrors;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::{error::Kind, Figment, Source};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// An experiment file after layering, before its grid is expanded.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file as the user named it.
    pub path: PathBuf,
    /// The layered config, every default explicit.
    pub config: Config,
}

/// Reads `path` and everything it extends, applies the environment and the
/// `--set key=value` overrides, and returns the typed config.
pub fn load(path: &Path, sets: &[String]) -> Result<Loaded, ConfigErrors> {
    let chain = extends_chain(path)?;
    let mut fig = Figment::new();
    for file in chain.iter().rev() {
        fig = fig.merge(Toml::file_exact(file));
    }
    fig = fig.merge(
        Env::prefixed("SEQLAB_")
            .filter(|k| k.as_str().contains("__"))
            .split("__"),
    );
    let mut indexed = Vec::new();
    for set in sets {
        let (key, raw) = value_path::split_assignment(set).ok_or_else(|| {
            ConfigErrors::one(format!(
                "--set {set}: expected key.path=value, e.g. --set train.epochs=5"
            ))
        })?;
        let parts = value_path::parse_key(key)
            .map_err(|e| ConfigErrors::one(format!("--set {set}: {e}")))?;
        if parts.len() > 2 && parts[0] == "grid" {
            return Err(ConfigErrors::one(format!(
                "--set {set}: a grid axis is one key path; quote it: --set 'grid.\"{}\"={}'",
                parts[1..].join("."),
                raw.trim()
            )));
        }
        let value = value_path::parse_scalar(raw.trim());
        if parts.iter().any(|p| p.parse::<usize>().is_ok()) {
            indexed.push((set.clone(), parts.join("."), value));
        } else {
            // Nested by hand: figment's own key paths split quoted keys at their dots.
            let nested = parts.iter().rev().fold(value, |v, k| {
                toml::Value::Table(toml::Table::from_iter([(k.clone(), v)]))
            });
            fig = fig.merge(Serialized::defaults(nested));
        }
    }
    let config: Config = fig
        .extract()
        .map_err(|e| ConfigErrors(describe(e, path, &fig)))?;
    let config = if indexed.is_empty() {
        config
    } else {
        let mut value = toml::Value::try_from(&config).expect("a config serialises");
        for (set, key, v) in indexed {
            value_path::set(&mut value, &key, v)
                .map_err(|e| ConfigErrors::one(format!("--set {set}: {e}")))?;
        }
        let mut typed: Config = value.try_into().map_err(|e: toml::de::Error| {
            ConfigErrors::one(format!("--set: {}", with_suggestion(e.message())))
        })?;
        typed.grid = config.grid;
        typed
    };
    Ok(Loaded {
        path: path.to_path_buf(),
        config,
    })
}

/// The file followed by the files it extends, nearest first. Syntax errors
/// carry the TOML parser's line and column; a cycle names every file in it.
fn extends_chain(path: &Path) -> Result<Vec<PathBuf>, ConfigErrors> {
    let mut chain: Vec<PathBuf> = Vec::new();
    let mut current = path.to_path_buf();
    let mut named_by: Option<PathBuf> = None;
    loop {
        let text = std::fs::read_to_string(&current).map_err(|e| {
            ConfigErrors::one(match &named_by {
                Some(parent) => format!(
                    "{}: extends = \"{}\": cannot read {}: {e}; fix the path (it is relative to the file that names it)",
                    parent.display(),
                    current.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
                    current.display()
                ),
                None => format!("{}: cannot read: {e}", current.display()),
            })
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            ConfigErrors::one(format!(
                "{}: {}",
                current.display(),
                e.to_string().trim_end()
            ))
        })?;
        let canonical = current.canonicalize().unwrap_or_else(|_| current.clone());
        if chain
            .iter()
            .any(|c| c.canonicalize().ok().as_ref() == Some(&canonical))
        {
            let names: Vec<String> = chain
                .iter()
                .chain([&current])
                .map(|p| p.display().to_string())
                .collect();
            return Err(ConfigErrors::one(format!(
                "{}: `extends` makes a cycle: {}; remove one of these `extends` lines",
                path.display(),
                names.join(" → ")
            )));
        }
        chain.push(current.clone());
        match table.get("extends") {
            None => return Ok(chain),
            Some(toml::Value::String(base)) => {
                let dir = current.parent().unwrap_or(Path::new("."));
                named_by = Some(current.clone());
                current = dir.join(base);
            }
            Some(other) => {
                return Err(ConfigErrors::one(format!(
                    "{}: extends: expected a file path string, found {}",
                    current.display(),
                    other.type_str()
                )))
            }
        }
    }
}

/// Turns figment's errors into "where: key: what" lines.
fn describe(err: figment::Error, file: &Path, fig: &Figment) -> Vec<String> {
    err.into_iter()
        .flat_map(|e| {
            // Inside a tagged enum (`optimizer`, `[[layers]]`) the path of an
            // unknown key ends at its table: add the key, so that the line and
            // the environment variable are the key's own.
            let mut path = e.path.clone();
            if let Kind::UnknownField(key, _) = &e.kind {
                if path.last() != Some(key) {
                    path.push(key.clone());
                }
            }
            let mut found = vec![(path, message_of(&e.kind))];
            if let Kind::MissingField(missing) = &e.kind {
                found.extend(unknown_beside(fig, &e.path, missing));
            }
            found
                .into_iter()
                .map(|(path, message)| locate(&e, &path, &message, file))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn message_of(kind: &Kind) -> String {
    match kind {
        Kind::UnknownField(found, expected) | Kind::UnknownVariant(found, expected) => {
            let known: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            let what = if matches!(kind, Kind::UnknownField(..)) {
                "unknown key"
            } else {
                "unknown value"
            };
            let hint = closest(found, &known)
                .map(|b| format!("; did you mean `{b}`?"))
                .unwrap_or_else(|| format!("; expected one of: {}", known.join(", ")));
            format!("{what} `{found}`{hint}")
        }
        Kind::MissingField(f) => format!("missing key `{f}`; add it to the file"),
        other => other
            .to_string()
            .replace("usize", "a non-negative integer")
            .replace("u64", "a non-negative integer"),
    }
}

/// A tagged table (`optimizer`, `[[layers]]`) that lacks its tag (`name`,
/// `type`) fails before serde reads its other keys, so a misspelt tag would
/// show only as "missing". These are the table's keys the schema does not
/// know, each with a hint.
fn unknown_beside(fig: &Figment, path: &[String], missing: &str) -> Vec<(Vec<String>, String)> {
    let (Some(known), Some(table)) = (keys_at(path), merged_table(fig, path)) else {
        return Vec::new();
    };
    let names: Vec<String> = known.keys().cloned().collect();
    let tag_values = known.get(missing).map(Vec::as_slice).unwrap_or_default();
    table
        .iter()
        .filter(|(key, _)| !known.contains_key(*key))
        .map(|(key, value)| {
            let hint = match (value.as_str(), closest(key, &names)) {
                (Some(v), _) if tag_values.iter().any(|t| t == v) => {
                    format!("; did you mean `{missing} = \"{v}\"`?")
                }
                (_, Some(best)) => format!("; did you mean `{best}`?"),
                _ => format!("; expected one of: {}", names.join(", ")),
            };
            let mut at = path.to_vec();
            at.push(key.clone());
            (at, format!("unknown key `{key}`{hint}"))
        })
        .collect()
}

/// The merged table at `path`, whichever layer its keys came from.
fn merged_table(fig: &Figment, path: &[String]) -> Option<figment::value::Dict> {
    use figment::value::Value;
    let (first, rest) = path.split_first()?;
    let mut value = fig.find_value(first).ok()?;
    for part in rest {
        value = match value {
            Value::Dict(_, mut d) => d.remove(part)?,
            Value::Array(_, a) => a.into_iter().nth(part.parse().ok()?)?,
            _ => return None,
        };
    }
    value.into_dict()
}

/// "origin: key: message", the origin being the file and line, the
/// environment variable or `--set` that the error's value came from.
fn locate(e: &figment::Error, path: &[String], message: &str, file: &Path) -> String {
    let mut key = path.join(".");
    let origin = match &e.metadata {
        Some(meta) => match &meta.source {
            Some(Source::File(p)) => {
                let shown = relative(p);
                if let Some((line, field)) = line_in_table_array(p, path, message) {
                    key = format!("{key}.{field}");
                    format!("{shown}:{line}")
                } else {
                    match line_of(p, path) {
                        Some(line) => format!("{shown}:{line}"),
                        None => shown,
                    }
                }
            }
            Some(Source::Custom(s)) => s.clone(),
            Some(Source::Code(_)) => "--set".to_string(),
            _ if meta.name.contains("environment") => {
                format!(
                    "environment variable SEQLAB_{}",
                    path.join("__").to_uppercase()
                )
            }
            _ => meta.name.to_string(),
        },
        None => file.display().to_string(),
    };
    if key.is_empty() {
        format!("{origin}: {message}")
    } else {
        format!("{origin}: {key}: {message}")
    }
}

fn relative(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| p.display().to_string())
}

/// The line of the deepest part of `path` that `file` spells out: the key
/// itself, else the table it would go in. Found through the parser's spans,
/// so a key in an inline table or under a later header is not mistaken for
/// the first line that assigns a key of the same name.
fn line_of(file: &Path, path: &[String]) -> Option<usize> {
    let text = std::fs::read_to_string(file).ok()?;
    let doc = toml_edit::ImDocument::parse(text.as_str()).ok()?;
    let span = span_of(doc.as_table(), path)?;
    Some(text[..span.start].matches('\n').count() + 1)
}

/// The byte span of the deepest component of `path` found under `root`: a
/// key, a `[[table]]` header or a list entry.
fn span_of(root: &toml_edit::Table, path: &[String]) -> Option<Range<usize>> {
    use toml_edit::{Array, ArrayOfTables, Item, TableLike, Value};
    enum Node<'a> {
        Table(&'a dyn TableLike),
        Tables(&'a ArrayOfTables),
        List(&'a Array),
        Leaf,
    }
    fn of_value(v: &Value) -> Node<'_> {
        match v {
            Value::InlineTable(t) => Node::Table(t),
            Value::Array(a) => Node::List(a),
            _ => Node::Leaf,
        }
    }
    fn of_item(item: &Item) -> Node<'_> {
        match item {
            Item::ArrayOfTables(a) => Node::Tables(a),
            Item::Value(v) => of_value(v),
            other => other.as_table_like().map_or(Node::Leaf, Node::Table),
        }
    }
    let mut at = Node::Table(root);
    let mut found = None;
    for part in path {
        let index = part.parse::<usize>().ok();
        let (next, span) = match (at, index) {
            (Node::Table(t), _) => match t.get_key_value(part) {
                Some((k, item)) => (of_item(item), k.span().or_else(|| item.span())),
                None => break,
            },
            (Node::Tables(a), Some(i)) => match a.get(i) {
                Some(t) => (Node::Table(t), t.span()),
                None => break,
            },
            (Node::List(a), Some(i)) => match a.get(i) {
                Some(v) => (of_value(v), v.span()),
                None => break,
            },
            _ => break,
        };
        found = span.or(found);
        at = next;
    }
    found
}

/// For errors inside an array of tables (`layers.2`), where serde loses the
/// field: the line in that table whose value appears in the message, and its key.
fn line_in_table_array(file: &Path, path: &[String], message: &str) -> Option<(usize, String)> {
    let (index, array) = match path {
        [.., array, index] => (index.parse::<usize>().ok()?, array),
        _ => return None,
    };
    let text = std::fs::read_to_string(file).ok()?;
    let header = format!("[[{array}]]");
    let mut seen = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed == header {
            seen = Some(seen.map_or(0, |s: usize| s + 1));
            continue;
        }
        if trimmed.starts_with('[') {
            if seen == Some(index) {
                return None;
            }
            continue;
        }
        if seen != Some(index) {
            continue;
        }
        if let Some((k, v)) = trimmed.split_once('=') {
            let v = v.trim();
            let bare = v.trim_matches('"');
            let quoted =
                message.contains(&format!("`{bare}`")) || message.contains(&format!("\"{bare}\""));
            if !bare.is_empty() && quoted {
                return Some((n + 1, k.trim().to_string()));
            }
        }
    }
    None
}
