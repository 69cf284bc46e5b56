//! Grid expansion: `[grid]` key paths × values → cells, each with a readable,
//! stable name (`units=32,lr=0.001`) and a content id (hash of its resolved
//! config); then `[train] repeats = N` → N replicates of each cell.
//!
//! Replicate k (0 … N − 1) of a cell is the cell's config with `train.seed`
//! raised by k and `repeats = 1`: replicate 0 is exactly the run `repeats = 1`
//! makes (same config, same content id), and adding replicates never changes
//! the ones already run. Each replicate is its own unit for the scheduler,
//! locks, resume and Slurm, in `<experiment>/<cell>/seed=<S>/`.
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
    /// Which replicate of the cell this unit is; `None` when the cell runs once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicate: Option<Replicate>,
}

/// One of the `repeats` runs of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Replicate {
    /// 0 … count − 1.
    pub index: usize,
    /// The cell's `train.repeats`.
    pub count: usize,
    /// The cell's `train.seed`; replicate k runs with `base_seed + k`.
    pub base_seed: u64,
}

impl Replicate {
    pub fn seed(&self) -> u64 {
        self.base_seed + self.index as u64
    }
}

/// The folder of the replicate with seed `seed` inside its cell's folder.
pub fn replicate_folder(seed: u64) -> String {
    format!("seed={seed}")
}

/// The seed a replicate folder name (`seed=43`) stands for.
pub fn replicate_seed(folder: &str) -> Option<u64> {
    folder.strip_prefix("seed=")?.parse().ok()
}

impl Cell {
    /// The resolved config as canonical TOML (sorted keys, every default explicit).
    pub fn config_toml(&self) -> String {
        canonical_toml(&self.config)
    }

    /// The unit's folder under its experiment's: `default`, `units=32`, or
    /// `units=32/seed=43` for a replicate.
    pub fn unit(&self) -> String {
        match &self.replicate {
            None => self.name.clone(),
            Some(r) => format!("{}/{}", self.name, replicate_folder(r.seed())),
        }
    }

    /// `experiment/unit`: how `--only`, Slurm task lists and progress name the unit.
    pub fn key(&self) -> String {
        format!("{}/{}", self.experiment, self.unit())
    }

    /// `experiment/cell`, the same for every replicate of a cell.
    pub fn cell_key(&self) -> String {
        format!("{}/{}", self.experiment, self.name)
    }
}

/// The canonical text of a config: what the content id hashes and what
/// `config.toml` holds.
pub fn canonical_toml(config: &Config) -> String {
    let value = Value::try_from(config).expect("a config serialises");
    toml::to_string(&value).expect("a TOML value prints")
}

/// Short content id of a config. `train.save_weights` only says what a run
/// keeps, so it is hashed as `false` whatever its value: a cell keeps the
/// id it had before weights were kept by default.
pub fn content_id(config: &Config) -> String {
    let mut hashed = config.clone();
    hashed.train.save_weights = false;
    let digest = Sha256::digest(canonical_toml(&hashed).as_bytes());
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
    let mut base = Value::try_from(&loaded.config).expect("a config serialises");
    // `repeats` is left out of a config while it is 1; a grid may still set it.
    if let Some(train) = base.get_mut("train").and_then(|t| t.as_table_mut()) {
        train
            .entry("repeats")
            .or_insert(Value::Integer(loaded.config.train.repeats as i64));
    }
    let origin = |key: &str| {
        if grid.swept.contains(key) {
            format!("--sweep {key}")
        } else {
            format!("{file}: grid")
        }
    };
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
                errors.push(format!("{}: {e}", origin(key)));
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
        let assignments: Vec<(String, Value)> =
            keys.iter().map(|k| k.to_string()).zip(combo).collect();
        for unit in replicates(config, &name, &assignments) {
            if let Some(twin) = cells.iter().find(|c| c.id == unit.id) {
                let hint = if unit.replicate.is_some() || twin.replicate.is_some() {
                    " (replicates of a cell run with seeds train.seed … train.seed + repeats − 1: space the seeds of a grid at least `repeats` apart)"
                } else {
                    ""
                };
                errors.push(format!(
                    "{file}: grid cells {} and {} resolve to the same config{hint}; remove the duplicate values",
                    twin.unit(),
                    unit.unit()
                ));
                continue;
            }
            cells.push(unit);
        }
    }
    errors.dedup();
    if errors.is_empty() {
        Ok(cells)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The units of one grid cell: itself when `train.repeats` is 1, else one
/// replicate per seed `train.seed + k`, each with `repeats = 1` in its config.
fn replicates(config: Config, name: &str, assignments: &[(String, Value)]) -> Vec<Cell> {
    let count = config.train.repeats;
    if count <= 1 {
        return vec![Cell {
            experiment: config.experiment.name.clone(),
            name: name.to_string(),
            id: content_id(&config),
            config,
            assignments: assignments.to_vec(),
            replicate: None,
        }];
    }
    (0..count)
        .map(|index| {
            let replicate = Replicate {
                index,
                count,
                base_seed: config.train.seed,
            };
            let mut own = config.clone();
            own.train.seed = replicate.seed();
            own.train.repeats = 1;
            Cell {
                experiment: own.experiment.name.clone(),
                name: name.to_string(),
                id: content_id(&own),
                config: own,
                assignments: assignments.to_vec(),
                replicate: Some(replicate),
            }
        })
        .collect()
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
