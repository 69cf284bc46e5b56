//! Dotted key paths (`layers.0.units`, `train.optimizer.lr`) into a TOML value,
//! shared by `--set` and `[grid]`.
use toml::Value;

/// Replaces the value at `path`. The key must already exist: a grid or
/// override can only change what the resolved config has.
pub fn set(root: &mut Value, path: &str, new: Value) -> Result<(), String> {
    let mut cur = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let seen = parts[..i].join(".");
        cur = match cur {
            Value::Table(t) => {
                if !t.contains_key(*part) {
                    let known: Vec<String> = t.keys().cloned().collect();
                    let hint = super::suggest::closest(part, &known)
                        .map(|b| format!("; did you mean `{}`?", join(&seen, &b)))
                        .unwrap_or_default();
                    let at = if seen.is_empty() {
                        "the top level".to_string()
                    } else {
                        format!("`{seen}`")
                    };
                    return Err(format!(
                        "key `{path}` does not exist: {at} has no `{part}`{hint}"
                    ));
                }
                if last {
                    t.insert(part.to_string(), new);
                    return Ok(());
                }
                t.get_mut(*part).expect("checked")
            }
            Value::Array(a) => {
                let idx: usize = part.parse().map_err(|_| {
                    format!("key `{path}`: `{seen}` is a list; use a number, e.g. `{seen}.0`")
                })?;
                let len = a.len();
                let slot = a.get_mut(idx).ok_or_else(|| {
                    format!("key `{path}` does not exist: `{seen}` has {len} entries (0..{len})")
                })?;
                if last {
                    *slot = new;
                    return Ok(());
                }
                slot
            }
            _ => {
                return Err(format!(
                    "key `{path}` does not exist: `{seen}` is a single value, not a table"
                ))
            }
        };
    }
    Err(format!("empty key path `{path}`"))
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}.{b}")
    }
}

/// Splits `--set KEY=VALUE` at the first `=` outside a quoted key part, so
/// `grid."a=b"=[1]` keeps its key whole.
pub fn split_assignment(set: &str) -> Option<(&str, &str)> {
    let mut quote = None;
    for (i, c) in set.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '=') => return Some((&set[..i], &set[i + 1..])),
            _ => {}
        }
    }
    None
}

/// Reads the KEY of `--set KEY=VALUE` as a TOML dotted key, honouring
/// quotes: `grid."train.seed"` is `["grid", "train.seed"]`.
pub fn parse_key(text: &str) -> Result<Vec<String>, String> {
    toml_edit::Key::parse(text.trim())
        .map(|keys| keys.iter().map(|k| k.get().to_string()).collect())
        .map_err(|_| {
            format!(
                "`{}` is not a TOML key path; write it as e.g. train.epochs, layers.0.units or grid.\"train.seed\"",
                text.trim()
            )
        })
}

/// Parses the right-hand side of `--set key=value` as TOML (so `5`, `0.2`,
/// `true`, `[1, 2]` keep their types); anything else is a string.
pub fn parse_scalar(text: &str) -> Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut t) => t.remove("v").unwrap_or(Value::String(text.to_string())),
        Err(_) => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        toml::from_str("[train]\nepochs = 3\n[[layers]]\nunits = 4\n[[layers]]\nunits = 1\n")
            .unwrap()
    }

    #[test]
    fn sets_nested_and_indexed() {
        let mut v = doc();
        set(&mut v, "train.epochs", Value::Integer(7)).unwrap();
        set(&mut v, "layers.1.units", Value::Integer(9)).unwrap();
        assert_eq!(v["train"]["epochs"].as_integer(), Some(7));
        assert_eq!(v["layers"][1]["units"].as_integer(), Some(9));
    }

    #[test]
    fn missing_keys_are_errors_with_hints() {
        let mut v = doc();
        let e = set(&mut v, "train.epoch", Value::Integer(1)).unwrap_err();
        assert!(e.contains("did you mean `train.epochs`"), "{e}");
        let e = set(&mut v, "layers.5.units", Value::Integer(1)).unwrap_err();
        assert!(e.contains("has 2 entries"), "{e}");
    }

    #[test]
    fn keys_are_toml_dotted_keys() {
        assert_eq!(parse_key("train.epochs").unwrap(), ["train", "epochs"]);
        assert_eq!(
            parse_key("grid.\"train.seed\"").unwrap(),
            ["grid", "train.seed"]
        );
        assert_eq!(parse_key("grid.'a.b'").unwrap(), ["grid", "a.b"]);
        assert!(parse_key("train..epochs").is_err());
        assert_eq!(
            split_assignment("grid.\"a=b\"=[1]"),
            Some(("grid.\"a=b\"", "[1]"))
        );
        assert_eq!(split_assignment("train.epochs"), None);
    }

    #[test]
    fn parses_typed_values() {
        assert_eq!(parse_scalar("5"), Value::Integer(5));
        assert_eq!(parse_scalar("0.5"), Value::Float(0.5));
        assert_eq!(parse_scalar("gru"), Value::String("gru".into()));
        assert_eq!(
            parse_scalar("[0, 10]"),
            Value::Array(vec![Value::Integer(0), Value::Integer(10)])
        );
    }
}
