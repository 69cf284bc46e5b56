//! Reads the Jena climate CSV (`jena_climate_2009_2016.csv`, as packaged for
//! Keras): a quoted header, a `Date Time` column (`dd.mm.yyyy HH:MM:SS`) and
//! 14 float columns, into one row-major `f32` matrix.
//!
//! Every row must be complete: a malformed row is an error naming the file,
//! the line and the column, never skipped.
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Number of float columns after `Date Time`.
pub const FEATURES: usize = 14;

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

/// Parses a Jena-format CSV file.
pub fn read_csv(path: &Path) -> Result<JenaTable> {
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
    let columns: Vec<String> = header.iter().skip(1).map(str::to_string).collect();
    let size_hint = std::fs::metadata(path)
        .map(|m| m.len() as usize / 100)
        .unwrap_or(0);
    let mut timestamps = Vec::with_capacity(size_hint);
    let mut values = Vec::with_capacity(size_hint * FEATURES);
    let mut record = csv::ByteRecord::new();
    loop {
        let more = reader.read_byte_record(&mut record).with_context(|| {
            format!(
                "{}: cannot read the CSV (truncated or not text?)",
                path.display()
            )
        })?;
        if !more {
            break;
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != FEATURES + 1 {
            bail!(
                "{}:{line}: expected {} fields (Date Time + {FEATURES} numbers), found {}; \
                 fix or remove this row, or fetch the file again",
                path.display(),
                FEATURES + 1,
                record.len()
            );
        }
        let stamp = std::str::from_utf8(&record[0])
            .ok()
            .filter(|s| is_timestamp(s));
        let Some(stamp) = stamp else {
            bail!(
                "{}:{line}: column \"Date Time\": expected dd.mm.yyyy HH:MM:SS, found {:?}; fix or remove this row",
                path.display(),
                String::from_utf8_lossy(&record[0])
            );
        };
        timestamps.push(stamp.to_string());
        for (c, field) in record.iter().skip(1).enumerate() {
            values.push(parse_f32(field).with_context(|| {
                format!(
                    "{}:{line}: column {:?}: cannot read {:?} as a number; fix or remove this row \
                     (a damaged download: delete the file and run `seqlab data fetch`)",
                    path.display(),
                    columns[c],
                    String::from_utf8_lossy(field)
                )
            })?);
        }
    }
    let rows = timestamps.len();
    Ok(JenaTable {
        columns,
        timestamps,
        values,
        rows,
    })
}

/// `dd.mm.yyyy HH:MM:SS`, digits where digits belong.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, &c)| match i {
            2 | 5 => c == b'.',
            10 => c == b' ',
            13 | 16 => c == b':',
            _ => c.is_ascii_digit(),
        })
}

fn parse_f32(field: &[u8]) -> Result<f32> {
    let text = std::str::from_utf8(field)?.trim();
    let v: f32 = text.parse()?;
    if !v.is_finite() {
        bail!("not a finite number");
    }
    Ok(v)
}
