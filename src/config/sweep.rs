//! `--sweep KEY=V1,V2,…`: a grid axis from the command line (Hydra users'
//! `-m key=a,b`). The values are TOML, read as the items of one TOML list
//! (`0.001,0.01`, `"a,b","c"`, `[1, 2],[3, 4]`); when that does not parse,
//! each comma-separated item on its own, bare words as strings
//! (`mae,mse`). The axis joins the file's `[grid]`, replacing an axis of
//! the same key; the cells are exactly those the same `[grid]` line gives.
use super::value_path::parse_scalar;
use super::{ConfigErrors, Loaded};
use toml::Value;

/// Parses one `--sweep` argument into its key and values.
pub fn parse(arg: &str) -> Result<(String, Vec<Value>), String> {
    let (key, raw) = arg.split_once('=').ok_or_else(|| {
        format!("--sweep {arg}: expected KEY=V1,V2,…, e.g. --sweep layers.0.units=16,32,64")
    })?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!(
            "--sweep {arg}: the key is empty; e.g. --sweep train.optimizer.lr=0.001,0.0005"
        ));
    }
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(format!(
            "--sweep {arg}: no values; list them after `=`, separated by commas"
        ));
    }
    let values = match toml::from_str::<toml::Table>(&format!("v = [{raw}]")) {
        Ok(mut t) => match t.remove("v") {
            Some(Value::Array(items)) => items,
            _ => unreachable!("a TOML list parses into an array"),
        },
        Err(_) => raw.split(',').map(|v| parse_scalar(v.trim())).collect(),
    };
    if values.is_empty() {
        return Err(format!("--sweep {arg}: no values"));
    }
    Ok((key.to_string(), values))
}

/// Adds every `--sweep` axis to the loaded file's grid.
pub fn apply(loaded: &mut Loaded, sweeps: &[String]) -> Result<(), ConfigErrors> {
    let mut errors = Vec::new();
    for arg in sweeps {
        match parse(arg) {
            Ok((key, values)) => {
                loaded.config.grid.axes.insert(key.clone(), values);
                loaded.config.grid.swept.insert(key);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_toml_items() {
        let (k, v) = parse("layers.0.units=16,32, 64").unwrap();
        assert_eq!(k, "layers.0.units");
        assert_eq!(
            v,
            vec![Value::Integer(16), Value::Integer(32), Value::Integer(64)]
        );
        let (_, v) = parse("train.optimizer.lr=1e-3,0.0005").unwrap();
        assert_eq!(v, vec![Value::Float(1e-3), Value::Float(0.0005)]);
        let (_, v) = parse(r#"experiment.title="a,b","c""#).unwrap();
        assert_eq!(
            v,
            vec![Value::String("a,b".into()), Value::String("c".into())]
        );
        let (_, v) = parse("data.splits.train=[0, 100],[0, 200]").unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[0].is_array());
    }

    #[test]
    fn bare_words_are_strings() {
        let (_, v) = parse("train.loss=mae,mse").unwrap();
        assert_eq!(
            v,
            vec![Value::String("mae".into()), Value::String("mse".into())]
        );
        let (_, v) = parse("train.device=cpu, 2").unwrap();
        assert_eq!(v, vec![Value::String("cpu".into()), Value::Integer(2)]);
    }

    #[test]
    fn malformed_arguments_say_how_to_write_them() {
        assert!(parse("layers.0.units").unwrap_err().contains("KEY=V1,V2"));
        assert!(parse("=1,2").unwrap_err().contains("key is empty"));
        assert!(parse("train.epochs=").unwrap_err().contains("no values"));
    }
}
