//! `weights.safetensors`: read back safely into a built model.
//!
//! The file is untrusted input: its 8-byte header length, JSON header and
//! data offsets are checked before any tensor is made, and every tensor the
//! model has must be in the file with the model's shape (and nothing else
//! may be), so a truncated, corrupt or foreign file is an error naming the
//! file, the tensor and both shapes — never a crash or a half-loaded model.
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn::VarStore, Tensor};

/// One tensor of the file: its shape and its little-endian f32 data.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub shape: Vec<i64>,
    pub values: Vec<f32>,
}

/// Parses a safetensors file holding f32 tensors.
pub fn read(path: &Path) -> Result<BTreeMap<String, Stored>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&bytes).with_context(|| {
        format!(
            "{}: not a readable weights file (truncated or corrupt?); rerun the cell to write it again",
            path.display()
        )
    })
}

/// The tensors of a safetensors image.
pub fn parse(bytes: &[u8]) -> Result<BTreeMap<String, Stored>> {
    let Some(len) = bytes.get(..8) else {
        bail!(
            "{} bytes: shorter than the 8-byte header length",
            bytes.len()
        );
    };
    let header_len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    let data_start = 8u64
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len() as u64);
    let Some(data_start) = data_start else {
        bail!(
            "the header claims {header_len} bytes but the file has {} after the length",
            bytes.len() - 8
        );
    };
    let data_start = data_start as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..data_start]).context("the JSON header is damaged")?;
    let data = &bytes[data_start..];
    let mut out = BTreeMap::new();
    for (name, entry) in header {
        if name == "__metadata__" {
            continue;
        }
        let field = |k: &str| {
            entry
                .get(k)
                .with_context(|| format!("tensor {name}: the header has no {k:?}"))
        };
        let dtype = field("dtype")?.as_str().unwrap_or("");
        if dtype != "F32" {
            bail!("tensor {name}: dtype {dtype:?}, expected \"F32\"");
        }
        let shape: Vec<i64> = field("shape")?
            .as_array()
            .with_context(|| format!("tensor {name}: shape is not a list"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| i64::try_from(d).ok()))
            .collect::<Option<_>>()
            .with_context(|| format!("tensor {name}: shape holds a non-integer"))?;
        let offsets: Vec<u64> = field("data_offsets")?
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default();
        let [begin, end] = offsets[..] else {
            bail!("tensor {name}: data_offsets is not two integers");
        };
        let numel = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .with_context(|| format!("tensor {name}: shape {shape:?} overflows"))?;
        if begin > end || end > data.len() as u64 || end - begin != numel.saturating_mul(4) {
            bail!(
                "tensor {name}: data bytes {begin}..{end} do not fit shape {shape:?} ({} bytes) in the {} data bytes of the file",
                numel.saturating_mul(4),
                data.len()
            );
        }
        let values = data[begin as usize..end as usize]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        out.insert(name, Stored { shape, values });
    }
    Ok(out)
}

/// Loads the file at `path` into every variable of `vs`, after checking
/// that names and shapes match exactly; on any difference nothing is copied.
pub fn load_into(vs: &VarStore, path: &Path) -> Result<()> {
    let stored = read(path)?;
    let vars = vs.variables();
    let file = path.display();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in &names {
        let want = vars[*name].size();
        match stored.get(*name) {
            None => bail!(
                "{file}: no tensor {name} (the model of config.toml has it with shape {want:?}); the weights belong to another model — rerun the cell"
            ),
            Some(s) if s.shape != want => bail!(
                "{file}: tensor {name} has shape {:?} in the file but {want:?} in the model config.toml builds; the weights belong to another model — rerun the cell",
                s.shape
            ),
            Some(_) => {}
        }
    }
    if let Some(extra) = stored.keys().find(|k| !vars.contains_key(*k)) {
        bail!(
            "{file}: tensor {extra} (shape {:?}) is not in the model config.toml builds; the weights belong to another model — rerun the cell",
            stored[extra].shape
        );
    }
    tch::no_grad(|| {
        for name in names {
            assign(&vars[name], &stored[name]);
        }
    });
    Ok(())
}

/// Copies a stored tensor into a variable of the same shape (in its kind and
/// on its device), under `no_grad` by the caller.
pub fn assign(var: &Tensor, s: &Stored) {
    let value = Tensor::from_slice(&s.values)
        .view(s.shape.as_slice())
        .to_kind(var.kind())
        .to_device(var.device());
    var.shallow_clone().copy_(&value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(header: &str, data: &[u8]) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn reads_a_tensor_and_refuses_damage() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let header = r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
        let t = parse(&image(header, &data)).unwrap();
        assert_eq!(t["w"].shape, vec![2, 2]);
        assert_eq!(t["w"].values, vec![1.0, 2.0, 3.0, 4.0]);
        let full = image(header, &data);
        let e = parse(&full[..full.len() - 3]).unwrap_err().to_string();
        assert!(e.contains("tensor w") && e.contains("do not fit"), "{e}");
        let e = parse(&full[..20]).unwrap_err().to_string();
        assert!(e.contains("the header claims"), "{e}");
        assert!(parse(&[1, 2]).is_err());
        let big = r#"{"w":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,16]}}"#;
        assert!(parse(&image(big, &data)).is_err());
        let f16 = r#"{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#;
        assert!(parse(&image(f16, &data))
            .unwrap_err()
            .to_string()
            .contains("F16"));
    }
}
