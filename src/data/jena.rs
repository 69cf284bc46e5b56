//! Reads the Jena climate CSV (`jena_climate_2009_2016.csv`, as packaged for
//! Keras): a quoted header, a `Date Time` column (`dd.mm.yyyy HH:MM:SS`) and
//! 14 float columns, into one row-major `f32` matrix.
//!
//! The header is checked here; the rows are read by the generic table
//! reader (`table`), the one every `source = "csv"` table goes through. Every
//! row must be complete: a malformed row is an error naming the file, the
//! line and the column, never skipped.
use crate::config::{CsvData, JenaData};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Number of float columns after `Date Time`.
pub const FEATURES: usize = 14;

/// `seconds` as the file writes it, `dd.mm.yyyy HH:MM:SS` (integer
/// formatting: chrono's `format` re-reads the pattern for every row).
fn jena_time(seconds: i64) -> String {
    use chrono::{Datelike, Timelike};
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| {
            format!(
                "{:02}.{:02}.{:04} {:02}:{:02}:{:02}",
                t.day(),
                t.month(),
                t.year(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

/// The `Date Time` column's format.
const JENA_TIME: &str = "%d.%m.%Y %H:%M:%S";

/// Rows in the official file (the download is checked against it).
pub const OFFICIAL_ROWS: usize = 420_551;

/// The header of the official file, in order.
pub const HEADER: [&str; FEATURES + 1] = [
    "Date Time",
    "p (mbar)",
    "T (degC)",
    "Tpot (K)",
    "Tdew (degC)",
    "rh (%)",
    "VPmax (mbar)",
    "VPact (mbar)",
    "VPdef (mbar)",
    "sh (g/kg)",
    "H2OC (mmol/mol)",
    "rho (g/m**3)",
    "wv (m/s)",
    "max. wv (m/s)",
    "wd (deg)",
];

/// The Jena record: `values[r * FEATURES + c]` is row `r`, float column `c`.
#[derive(Debug, Clone, PartialEq)]
pub struct JenaTable {
    /// The 14 float column names (header without `Date Time`).
    pub columns: Vec<String>,
    pub timestamps: Vec<String>,
    /// Row-major, `rows × 14`.
    pub values: Vec<f32>,
    pub rows: usize,
}

impl JenaTable {
    /// Index of the float column called `name`, or an error listing the columns.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .with_context(|| {
                format!(
                    "data.target: no column named {name:?}; the Jena columns are {}",
                    self.columns.join(", ")
                )
            })
    }

    /// One row's 14 values.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.values[r * FEATURES..(r + 1) * FEATURES]
    }
}

/// The preset as the table settings it stands for: the file's 14 numbers as
/// features, `target`, the windowing and row splits of `cfg`, the book
/// generator's rules (`split_rule = "book"`) and the unit metrics named
/// `mae_degc`. `path`: the located file (empty: `cfg.path`).
pub fn as_table(cfg: &JenaData, path: &str) -> Result<CsvData> {
    let mut t = toml::Table::new();
    let path = if path.is_empty() { &cfg.path } else { path };
    t.insert("path".into(), path.into());
    t.insert("delimiter".into(), ",".into());
    t.insert("time_column".into(), HEADER[0].into());
    t.insert("time_format".into(), JENA_TIME.into());
    t.insert(
        "targets".into(),
        vec![toml::Value::from(cfg.target.clone())].into(),
    );
    for (k, v) in [
        ("lookback", cfg.lookback),
        ("step", cfg.step),
        ("delay", cfg.delay),
        ("batch_size", cfg.batch_size),
    ] {
        t.insert(k.into(), (v as i64).into());
    }
    t.insert("reverse".into(), cfg.reverse.into());
    t.insert("splits".into(), toml::Value::try_from(&cfg.splits)?);
    t.insert("split_rule".into(), "book".into());
    t.insert("unit_suffix".into(), "degc".into());
    Ok(toml::Value::Table(t).try_into()?)
}

/// The Jena header's 14 number columns, or an error saying the file is not the record.
pub fn check_header(path: &Path) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).with_context(|| {
        format!(
            "cannot open the Jena CSV {}; check the path, or delete `data.path` to use the data directory",
            path.display()
        )
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let header = reader
        .headers()
        .with_context(|| format!("{}:1: cannot read the CSV header", path.display()))?
        .clone();
    if header.len() != FEATURES + 1 || &header[0] != HEADER[0] {
        bail!(
            "{}:1: expected a Jena header of {} columns starting with \"Date Time\", found {} columns: {:?}; \
             is this jena_climate_2009_2016.csv?",
            path.display(),
            FEATURES + 1,
            header.len(),
            header.iter().collect::<Vec<_>>()
        );
    }
    Ok(header.iter().skip(1).map(str::to_string).collect())
}

/// Parses a Jena-format CSV file.
pub fn read_csv(path: &Path) -> Result<JenaTable> {
    let columns = check_header(path)?;
    // The rows through the reader every table goes through (`source = "csv"`),
    // which reads the same f32 values bit for bit (tests/data_csv.rs).
    let table = super::table::read(
        path,
        &super::table::ReadOptions {
            delimiter: Some(b','),
            time_column: HEADER[0].into(),
            time_format: JENA_TIME.into(),
            columns: columns.clone(),
            // The book never looked at the time column's order; neither does the preset.
            unordered_times: true,
            ..Default::default()
        },
    )?;
    let timestamps = table
        .times
        .unwrap_or_default()
        .into_iter()
        .map(jena_time)
        .collect();
    Ok(JenaTable {
        columns,
        timestamps,
        values: table.values,
        rows: table.rows,
    })
}
