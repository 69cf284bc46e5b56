//! `seqlab evaluate`: a cell's model on a split of another file (or of its
//! own), with metrics named as the `test` section of `summary.toml`,
//! written atomically to `<cell>/eval/<name>/` (summary.toml and
//! forecast.png). The cell's own files are never touched.
use super::forecast;
use super::{rows, Loaded};
use crate::data::series;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Which windows of the file are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The config's splits applied to the file: windows with every target in that split.
    Test,
    Val,
    /// Every complete window of the file.
    All,
}

impl Split {
    pub fn parse(text: &str) -> Result<Split> {
        Ok(match text {
            "test" => Split::Test,
            "val" => Split::Val,
            "all" => Split::All,
            other => bail!("--split {other:?}: use test, val or all"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Split::Test => "test",
            Split::Val => "val",
            Split::All => "all",
        }
    }
}

/// What an evaluation wrote.
pub struct Evaluation {
    pub dir: PathBuf,
    pub windows: usize,
    pub metrics: Vec<(String, f64)>,
}

/// The evaluation's folder name: `name`, or `<file stem>-<split>`; a plain
/// name only (no path tricks).
pub fn folder_name(data: &Path, split: Split, name: Option<&str>) -> Result<String> {
    let name = match name {
        Some(n) => n.to_string(),
        None => format!(
            "{}-{}",
            data.file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("data")
                .trim_end_matches(".csv")
                .trim_end_matches(".tar"),
            split.name()
        ),
    };
    if name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        bail!("--name {name:?}: give a plain folder name (no slashes, not starting with a dot)");
    }
    Ok(name)
}

/// Evaluates the cell in `loaded` on `data`'s `split`; the results go to
/// `<cell>/eval/<name>/` (default name: `<file stem>-<split>`).
pub fn run(loaded: &Loaded, data: &Path, split: Split, name: Option<&str>) -> Result<Evaluation> {
    let name = folder_name(data, split, name)?;
    let rows = rows::read(loaded, data)?;
    let mut cfg = loaded.table.clone();
    cfg.path = rows.file.clone();
    cfg.freq = rows
        .freq
        .map(crate::data::timestamp::format_freq)
        .unwrap_or_default();
    let range = match split {
        Split::All => std::iter::once(0..rows.table.rows).collect(),
        Split::Val | Split::Test => {
            let [_, val, test] = series::split_rows(&cfg, &rows.table)?;
            if split == Split::Val {
                val
            } else {
                test
            }
        }
    };
    // As training cut its validation and test windows: data.stride apart.
    let ends = series::window_ends(&cfg, &rows.table, &[range.clone(), range.clone(), range])?;
    let [_, ends, _] = ends.ends;
    let metrics = forecast::metrics_of(loaded, &rows, &ends, split.name());
    let lines = forecast::windows(loaded, &rows, &ends);
    let staging =
        crate::results::store::Staging::new(&loaded.trained.dir, crate::results::EVAL, &name)?;
    let mut summary = toml::Table::new();
    summary.insert("cell".into(), loaded.trained.summary_key().into());
    summary.insert(
        "content_id".into(),
        loaded.trained.content_id.clone().into(),
    );
    summary.insert("data".into(), rows.file.clone().into());
    summary.insert("split".into(), split.name().into());
    summary.insert("windows".into(), (ends.len() as i64).into());
    let text = format!(
        "{}\n{}",
        toml::to_string(&summary)?,
        forecast::metrics_toml(split.name(), &metrics)
    );
    let figure = forecast::plot_series(
        &rows,
        &lines,
        1,
        &format!("{} on {}", loaded.trained.summary_key(), split.name()),
        &staging.dir.join("forecast.png"),
    );
    if let Err(e) = figure {
        staging.discard();
        return Err(e);
    }
    staging.write("summary.toml", text.as_bytes())?;
    let dir = staging.commit()?;
    Ok(Evaluation {
        dir,
        windows: ends.len(),
        metrics,
    })
}
