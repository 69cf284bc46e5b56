//! A table cut by the book generator's rules (`data.split_rule = "book"`,
//! Deep Learning with Python, listing 6.33), which the Jena preset uses: a
//! split `[min, max]` holds the windows whose current row lies in
//! `[min + lookback, min(max, rows − delay − 1))`; training rows are drawn
//! uniformly with replacement, validation and test passes are sequential and
//! wrap before a batch would reach `max`; mean and standard deviation come
//! from rows `[0, train max)` (the book's `float_data[:200000]`).
use super::normalise::Normaliser;
use super::table::Table;
use super::window::{self, WindowSpec, Windows};
use super::{Batcher, Prepared, Preprocess, TargetUnit};
use crate::config::{CsvData, SplitRange};
use anyhow::{bail, Result};
use tch::Device;

/// The features' columns of `t`, the one target among them.
pub fn prepare(cfg: &CsvData, t: &Table, device: Device) -> Result<Prepared> {
    for (key, ok) in [
        ("horizon = 1", cfg.horizon == 1),
        ("stride = 1", cfg.stride == 1),
        ("no series_column", cfg.series_column.is_empty()),
        (
            "train_order = \"random\"",
            cfg.train_order == crate::config::TrainOrder::Random,
        ),
        (
            "normalize = \"standard\"",
            cfg.normalize == crate::config::Normalize::Standard,
        ),
        (
            "missing = \"error\"",
            cfg.missing == crate::config::Missing::Error,
        ),
    ] {
        if !ok {
            bail!("data.split_rule = \"book\" cuts windows as the book's generator does and needs data.{key}; change that key or use split_rule = \"targets\"");
        }
    }
    let cols = super::series::columns(cfg, t)?;
    let [target] = cols.targets[..] else {
        bail!(
            "data.split_rule = \"book\" forecasts one target; data.targets names {}",
            cols.targets.len()
        );
    };
    let Some(target) = cols.features.iter().position(|&c| c == target) else {
        bail!(
            "data.split_rule = \"book\": the target {:?} must be one of data.features",
            t.columns[target]
        );
    };
    let split = |r: &SplitRange, name: &str| match r {
        SplitRange::Rows(r) => Ok(*r),
        _ => bail!("data.splits.{name}: data.split_rule = \"book\" takes rows, e.g. [0, 200000]"),
    };
    let splits = [
        split(&cfg.splits.train, "train")?,
        split(&cfg.splits.val, "val")?,
        split(&cfg.splits.test, "test")?,
    ];
    let window = (cfg.lookback, cfg.step, cfg.delay, cfg.batch_size);
    let spec =
        |name: &str, k: usize| WindowSpec::for_split(window, name, splits[k], t.rows, k == 0);
    let specs = [spec("train", 0)?, spec("val", 1)?, spec("test", 2)?];
    // The features' columns in order (all of them for the Jena preset: the same matrix).
    let features = cols.features.len();
    let all = t.columns.len();
    let values: std::borrow::Cow<[f32]> = if cols.features == (0..all).collect::<Vec<_>>() {
        std::borrow::Cow::Borrowed(&t.values)
    } else {
        (0..t.rows)
            .flat_map(|r| cols.features.iter().map(move |&c| t.values[r * all + c]))
            .collect()
    };
    let norm = Normaliser::fit(&values, features, splits[0][1]);
    let matrix = window::matrix_on(&norm.apply(&values), features, device);
    let [train, val, test] =
        specs.map(|s| Batcher::Series(Windows::new(&matrix, target, s, cfg.reverse)));
    let names: Vec<String> = cols
        .features
        .iter()
        .map(|&c| t.columns[c].clone())
        .collect();
    let suffix = if cfg.unit_suffix.is_empty() {
        super::series::metric_suffix(&names[target])
    } else {
        cfg.unit_suffix.clone()
    };
    let last_train_time = t
        .times
        .as_ref()
        .and_then(|times| times.get(splits[0][1].min(t.rows).saturating_sub(1)))
        .map(|&s| time_text(s, &cfg.time_format));
    Ok(Prepared {
        train,
        val,
        test,
        target_std: Some(norm.std[target]),
        target_column: Some(target),
        target_inputs: vec![target],
        units: vec![TargetUnit {
            name: names[target].clone(),
            suffix,
            scale: norm.std[target],
            shift: norm.mean[target],
            column: None,
        }],
        input_time: cfg.lookback / cfg.step,
        input_features: Some(features),
        text: None,
        preprocess: Some(Preprocess {
            columns: names.clone(),
            features: names.clone(),
            targets: vec![names[target].clone()],
            normalize: crate::config::Normalize::Standard,
            shift: norm.mean.clone(),
            scale: norm.std.clone(),
            freq: t
                .times
                .as_deref()
                .and_then(super::timestamp::infer_freq)
                .map(super::timestamp::format_freq),
            last_train_time,
            series: vec![],
            windows: [0; 3],
        }),
    })
}

/// A time as the file writes it (`time_format`), else ISO.
fn time_text(seconds: i64, format: &str) -> String {
    if format.is_empty() {
        return super::timestamp::format(seconds);
    }
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|d| d.format(format).to_string())
        .unwrap_or_default()
}
