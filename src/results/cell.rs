//! A complete cell folder read back: the config it ran (checked against its
//! content id), its summary and preprocessing state, and where its weights
//! are. A failed or incomplete cell is refused with its status.
use super::{CONFIG, PREPROCESS, SUMMARY, WEIGHTS};
use crate::config::Config;
use crate::data::Preprocess;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A complete cell, ready to rebuild its model.
#[derive(Debug, Clone)]
pub struct Trained {
    pub dir: PathBuf,
    pub config: Config,
    pub content_id: String,
    pub summary: toml::Table,
    /// `None` for cells whose data is not a table (IMDB).
    pub preprocess: Option<Preprocess>,
}

impl Trained {
    /// Reads the cell folder `dir`; errors say what is missing or wrong and how to fix it.
    pub fn open(dir: &Path) -> Result<Trained> {
        let shown = dir.display();
        if !dir.is_dir() {
            bail!(
                "{shown}: no such cell folder; give a folder such as results/<experiment>/<cell>"
            );
        }
        let summary_path = dir.join(SUMMARY);
        if !summary_path.exists() {
            let replicates: Vec<String> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| crate::config::replicate_seed(n).is_some())
                .collect();
            if let Some(first) = replicates.first() {
                bail!(
                    "{shown}: a cell of replicates; name one of them, e.g. {}",
                    dir.join(first).display()
                );
            }
            bail!("{shown}: incomplete (no {SUMMARY}: the run was interrupted or is still running); finish it with `seqlab run`");
        }
        let summary: toml::Table = toml::from_str(&read(&summary_path)?)
            .with_context(|| format!("{}: not valid TOML", summary_path.display()))?;
        let field = |k: &str| summary.get(k).and_then(|v| v.as_str()).unwrap_or("");
        match field("status") {
            "complete" => {}
            "failed" => bail!(
                "{shown}: the cell failed ({}); there is no trained model to use — fix the cause and rerun it",
                field("reason")
            ),
            other => bail!("{shown}: status {other:?} in {SUMMARY}, not \"complete\"; rerun the cell"),
        }
        let config_path = dir.join(CONFIG);
        let mut value: toml::Table = toml::from_str(&read(&config_path)?)
            .with_context(|| format!("{}: not valid TOML", config_path.display()))?;
        let run = value.remove("run");
        let recorded = run
            .as_ref()
            .and_then(|r| r.get("content_id"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let config: Config = toml::Value::Table(value).try_into().with_context(|| {
            format!("{}: not a config this seqlab reads", config_path.display())
        })?;
        let id = crate::config::content_id(&config);
        if id != recorded || field("content_id") != recorded {
            bail!(
                "{}: the config hashes to {id} but the run recorded content id {recorded:?} ({SUMMARY}: {:?}); the file was edited after the run — restore it or rerun the cell",
                config_path.display(),
                field("content_id")
            );
        }
        let pre_path = dir.join(PREPROCESS);
        let preprocess = if pre_path.exists() {
            Some(toml::from_str(&read(&pre_path)?).with_context(|| {
                format!(
                    "{}: not a preprocessing state this seqlab reads",
                    pre_path.display()
                )
            })?)
        } else {
            None
        };
        Ok(Trained {
            dir: dir.to_path_buf(),
            config,
            content_id: id,
            summary,
            preprocess,
        })
    }

    /// The weights file, which must exist.
    pub fn weights(&self) -> Result<PathBuf> {
        let path = self.dir.join(WEIGHTS);
        if !path.exists() {
            bail!(
                "{}: no {WEIGHTS}: the cell ran with train.save_weights = false (or before weights were kept); rerun it with `seqlab run <file> --force --only {}`",
                self.dir.display(),
                self.summary_key()
            );
        }
        Ok(path)
    }

    /// `experiment/cell` as the summary names it.
    pub fn summary_key(&self) -> String {
        let field = |k: &str| self.summary.get(k).and_then(|v| v.as_str()).unwrap_or("");
        format!("{}/{}", field("experiment"), field("cell"))
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
