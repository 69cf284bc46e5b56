//! Grid expansion: `[grid]` key paths × values → cells, each with a readable,
//! stable name (`units=32,lr=0.001`) and a content id (hash of its resolved config).
use super::schema::{Config, GridMode};
use super::suggest::with_suggestion;
use super::{validate, value_path, ConfigErrors, Loaded};
use sha2::{Digest, Sha256};
use toml::Value;

/// One run of an experiment: a fully resolved config and where its results go.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cell {
    pub experiment: String,
    /// `default` without a grid, else `key=value,…` (file-name safe).
    pub name: String,
    /// Short hash of the canonical resolved config.
    pub id: String,
    pub config: Config,
    /// The grid values that made this cell, in key order.
    pub assignments: Vec<(String, Value)>,
}

impl Cell {
    /// The resolved config as canonical TOML (sorted keys, every default explicit).
    pub fn config_toml(&self) -> String {
        canonical_toml(&self.config)
    }
}

/// The canonical text of a config: what the content id hashes and what
/// `config.toml` holds.
pub fn canonical_toml(config: &Config) -> String {
    let value = Value::try_from(config).expect("a config serialises");
    toml::to_string(&value).expect("a TOML value prints")
}

/// Short content id of a config.
pub fn content_id(config: &Config) -> String {
    let digest = Sha256::digest(canonical_toml(config).as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Every cell of a loaded file, resolved and validated (schema and semantics).
pub fn expand(loaded: &Loaded) -> Result<Vec<Cell>, ConfigErrors> {
    let file = loaded.path.display().to_string();
    let grid = &loaded.config.grid;
    let keys: Vec<&String> = grid.axes.keys().collect();
    let combos: Vec<Vec<Value>> = match grid.mode {
        _ if keys.is_empty() => vec![vec![]],
        GridMode::Product => grid.axes.values().fold(vec![vec![]], |acc, values| {
            acc.iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        let mut next = prefix.clone();
                        next.push(v.clone());
                        next
                    })
                })
                .collect()
        }),
        GridMode::Zip => {
            let lens: Vec<usize> = grid.axes.values().map(|v| v.len()).collect();
            if lens.iter().any(|l| *l != lens[0]) {
                let shown: Vec<String> = keys
                    .iter()
                    .zip(&lens)
                    .map(|(k, l)| format!("{k} ({l})"))
                    .collect();
                return Err(ConfigErrors::one(format!(
                    "{file}: grid: mode = \"zip\" needs lists of equal length, found {}",
                    shown.join(", ")
                )));
            }
            (0..lens[0])
                .map(|i| grid.axes.values().map(|v| v[i].clone()).collect())
                .collect()
        }
    };
    if combos.is_empty() {
        return Err(ConfigErrors::one(format!(
            "{file}: grid: a key has an empty list of values"
        )));
    }
    let labels = short_labels(&keys);
    let base = Value::try_from(&loaded.config).expect("a config serialises");
    let mut errors = Vec::new();
    let mut cells: Vec<Cell> = Vec::new();
    for combo in combos {
        let name = if keys.is_empty() {
            "default".to_string()
        } else {
            let parts: Vec<String> = labels
                .iter()
                .zip(&combo)
                .map(|(l, v)| format!("{l}={}", show(v)))
                .collect();
            sanitise(&parts.join(","))
        };
        let mut value = base.clone();
        let mut ok = true;
        for (key, v) in keys.iter().zip(&combo) {
            if let Err(e) = value_path::set(&mut value, key, v.clone()) {
                errors.push(format!("{file}: grid: {e}"));
                ok = false;
            }
        }
        if !ok {
            continue;
        }
        let mut config: Config = match value.try_into() {
            Ok(c) => c,
            Err(e) => {
                let e: toml::de::Error = e;
                errors.push(format!(
                    "{file}: grid cell {name}: {}",
                    with_suggestion(e.message())
                ));
                continue;
            }
        };
        validate::resolve(&mut config);
        if let Err(e) = validate::validate(&config) {
            errors.extend(e.0.into_iter().map(|m| {
                if keys.is_empty() {
                    format!("{file}: {m}")
                } else {
                    format!("{file}: cell {name}: {m}")
                }
            }));
            continue;
        }
        let id = content_id(&config);
        if let Some(twin) = cells.iter().find(|c| c.id == id) {
            errors.push(format!(
                "{file}: grid cells {} and {name} resolve to the same config; remove the duplicate values",
                twin.name
            ));
            continue;
        }
        let assignments = keys.iter().map(|k| k.to_string()).zip(combo).collect();
        cells.push(Cell {
            experiment: config.experiment.name.clone(),
            name,
            id,
            config,
            assignments,
        });
    }
    errors.dedup();
    if errors.is_empty() {
        Ok(cells)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The shortest suffix of each key path that tells it apart from the others.
fn short_labels(keys: &[&String]) -> Vec<String> {
    let split: Vec<Vec<&str>> = keys.iter().map(|k| k.split('.').collect()).collect();
    split
        .iter()
        .map(|parts| {
            (1..=parts.len())
                .map(|n| parts[parts.len() - n..].join("."))
                .find(|label| {
                    split
                        .iter()
                        .filter(|other| {
                            other.len() >= label.split('.').count()
                                && other[other.len() - label.split('.').count()..].join(".")
                                    == *label
                        })
                        .count()
                        == 1
                })
                .unwrap_or_else(|| parts.join("."))
        })
        .collect()
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Float(f) if *f != 0.0 && (f.abs() >= 1e5 || f.abs() < 1e-4) => format!("{f:e}"),
        Value::Float(f) => format!("{f}"),
        other => other.to_string(),
    }
}

fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=,-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_shortest_unambiguous_suffixes() {
        let a = "layers.0.units".to_string();
        let b = "layers.1.units".to_string();
        let c = "train.optimizer.lr".to_string();
        assert_eq!(short_labels(&[&a, &c]), vec!["units", "lr"]);
        assert_eq!(
            short_labels(&[&a, &b, &c]),
            vec!["0.units", "1.units", "lr"]
        );
    }

    #[test]
    fn names_are_file_safe() {
        assert_eq!(sanitise("target=T (degC)"), "target=T__degC_");
    }
}
