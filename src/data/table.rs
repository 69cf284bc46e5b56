//! Reads any time-series table — CSV, TSV or `.csv.gz`, delimiter detected,
//! UTF-8 BOM tolerated, quoted headers; or Parquet (`parquet_table`) — into
//! one column table: a row-major
//! `f32` matrix of the numeric columns (NaN where a cell is missing), the
//! timestamps, and the series each row belongs to.
//!
//! Files are untrusted: every malformed input is an error naming the file,
//! the line and the column, with what to do; nothing panics. Rows of one
//! series must be in strictly increasing time.
use super::{parquet_table, timestamp};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::Path;

/// What to read and how strictly.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// `None`: detected among `,`, `;` and tab from the header line.
    pub delimiter: Option<u8>,
    /// Empty: no time column.
    pub time_column: String,
    /// strftime format of the time column; empty: detected from the first row.
    pub time_format: String,
    /// Empty: one series.
    pub series_column: String,
    /// Columns to keep (each must exist and be numeric); empty: every numeric column.
    pub columns: Vec<String>,
    /// Missing and non-numeric cells become NaN instead of an error.
    pub allow_missing: bool,
    /// Skip the check that time strictly increases (the Jena preset, as the book).
    pub unordered_times: bool,
}

/// One table in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The numeric columns kept, in file order (or in `ReadOptions::columns` order).
    pub columns: Vec<String>,
    /// Row-major, `rows × columns`; NaN where a cell was missing.
    pub values: Vec<f32>,
    pub rows: usize,
    /// Seconds since the epoch per row, when there is a time column.
    pub times: Option<Vec<i64>>,
    /// Each series' name and its rows (contiguous, in file order of first appearance).
    pub series: Vec<(String, Range<usize>)>,
    /// The file line of each row (for messages after reading).
    pub lines: Vec<u64>,
    /// Cells that were missing or not numbers (NaN in `values`).
    pub missing: usize,
}

impl Table {
    /// Index of the column `name`, or an error with a suggestion for `key`.
    pub fn column(&self, name: &str, key: &str, file: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .with_context(|| {
                format!(
                    "{file}: {key}: no numeric column named {name:?}{}; the numeric columns are {}",
                    suggest(name, &self.columns),
                    self.columns.join(", ")
                )
            })
    }

    /// Row `r`'s values.
    pub fn row(&self, r: usize) -> &[f32] {
        let f = self.columns.len();
        &self.values[r * f..(r + 1) * f]
    }
}

/// ` (did you mean "x"?)` when a header name is close to `name`.
pub fn suggest(name: &str, names: &[String]) -> String {
    names
        .iter()
        .map(|n| {
            (
                strsim::jaro_winkler(&n.to_lowercase(), &name.to_lowercase()),
                n,
            )
        })
        .filter(|(s, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| format!(" (did you mean {n:?}?)"))
        .unwrap_or_default()
}

/// Opens `path`, decompressing `.gz`, with a leading UTF-8 BOM skipped.
fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = std::fs::File::open(path).with_context(|| {
        format!(
            "cannot open {}; check data.path (relative paths start where seqlab runs)",
            path.display()
        )
    })?;
    let raw: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = BufReader::with_capacity(1 << 20, raw);
    let head = reader
        .fill_buf()
        .with_context(|| format!("{}: cannot read (a damaged .gz?)", path.display()))?;
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        reader.consume(3);
    }
    Ok(Box::new(reader))
}

/// The delimiter among `,` `;` tab that occurs most in `line` outside quotes.
pub fn detect_delimiter(line: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in line.iter().take_while(|&&b| b != b'\n') {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    [b',', b';', b'\t'][best]
}

fn is_missing_text(s: &str) -> bool {
    matches!(
        s,
        "" | "NA" | "N/A" | "NaN" | "nan" | "null" | "NULL" | "None" | "-"
    )
}

/// Parses a numeric cell: `Ok(None)` when missing, `Err` when not a number.
pub(crate) fn number(field: &[u8]) -> Result<Option<f32>, ()> {
    let text = std::str::from_utf8(field).map_err(|_| ())?.trim();
    if is_missing_text(text) {
        return Ok(None);
    }
    match text.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(()),
    }
}

/// Reads the header only: the column names, in order (for Parquet: the
/// schema's columns, and `,` as the delimiter).
pub fn header(path: &Path, delimiter: Option<u8>) -> Result<(Vec<String>, u8)> {
    if parquet_table::is_parquet(path) {
        let (columns, _) = parquet_table::columns(path)?;
        return Ok((columns.into_iter().map(|c| c.name).collect(), b','));
    }
    let mut reader = open(path)?;
    let delimiter = match delimiter {
        Some(d) => d,
        None => detect_delimiter(reader.fill_buf()?),
    };
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .delimiter(delimiter)
        .from_reader(reader);
    let names: Vec<String> = csv
        .headers()
        .with_context(|| format!("{}:1: cannot read the header", path.display()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if names.iter().all(|n| n.is_empty()) {
        bail!(
            "{}: the file is empty; a table needs a header line and at least one row",
            path.display()
        );
    }
    Ok((names, delimiter))
}

/// Whether each column's cell in the first data row is a number (or empty).
/// (For Parquet: whether each column has a numeric type.)
pub fn read_first_row(path: &Path, delimiter: u8) -> Result<Vec<bool>> {
    if parquet_table::is_parquet(path) {
        let (columns, rows) = parquet_table::columns(path)?;
        if rows == 0 {
            bail!(
                "{}: the file has no rows; a table needs at least one row",
                path.display()
            );
        }
        return Ok(columns
            .iter()
            .map(|c| c.kind == parquet_table::Kind::Number)
            .collect());
    }
    let reader = open(path)?;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut record)? {
        bail!(
            "{}: the header has no rows under it; a table needs at least one row",
            path.display()
        );
    }
    Ok(record.iter().map(|f| number(f).is_ok()).collect())
}

/// Records parsed together (in parallel) per chunk.
const CHUNK: usize = 1 << 14;

/// Parses one record's kept cells into `out` and its time; the count of
/// missing cells, or an error text (without file and line).
fn parse_record(
    record: &csv::ByteRecord,
    out: &mut [f32],
    keep: &[usize],
    time: Option<usize>,
    parser: Option<&timestamp::Parser>,
    allow_missing: bool,
    names: &[String],
) -> Result<(usize, Option<i64>), String> {
    let mut missing = 0;
    for (slot, &k) in out.iter_mut().zip(keep) {
        *slot = match number(&record[k]) {
            Ok(Some(v)) => v,
            Ok(None) | Err(()) if allow_missing => {
                missing += 1;
                f32::NAN
            }
            Ok(None) => {
                return Err(format!(
                    "column {:?}: the cell is empty; fill it in, or set data.missing = \"ffill\", \"interpolate\" or \"drop_windows\"",
                    names[k]
                ))
            }
            Err(()) => {
                return Err(format!(
                    "column {:?}: cannot read {:?} as a number; fix the cell, leave the column out of data.features, or set data.missing = \"ffill\", \"interpolate\" or \"drop_windows\"",
                    names[k],
                    String::from_utf8_lossy(&record[k])
                ))
            }
        };
    }
    let seconds = match (time, parser) {
        (Some(t), Some(p)) => {
            let text = String::from_utf8_lossy(&record[t]);
            Some(p.parse(&text).ok_or_else(|| {
                format!(
                    "column {:?}: cannot read {text:?} as a time{{format}}; use ISO 8601 (2016-07-01 00:00:00), dd.mm.yyyy HH:MM:SS, or set data.time_format (strftime, e.g. \"%d/%m/%Y %H:%M\")",
                    names[t]
                )
            })?)
        }
        _ => None,
    };
    Ok((missing, seconds))
}

/// The columns a table reads, as indices into its column names.
pub(crate) struct Roles {
    pub time: Option<usize>,
    pub series: Option<usize>,
    /// The columns `options.columns` lists, else every column `default`
    /// accepts that is neither the time nor the series column.
    pub keep: Vec<usize>,
}

/// Finds the time, series and kept columns among `names` (unique names
/// required); `at` starts every message (`file:1` for a CSV header), `find`
/// locates a column named by a config key.
pub(crate) fn roles(
    names: &[String],
    options: &ReadOptions,
    at: &str,
    find: &dyn Fn(&str, &str) -> Result<usize>,
    default: impl Fn(usize) -> bool,
) -> Result<Roles> {
    let mut seen = std::collections::BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            bail!("{at}: the column name {n:?} appears twice; give every column a unique name");
        }
    }
    let time = (!options.time_column.is_empty())
        .then(|| find(&options.time_column, "data.time_column"))
        .transpose()?;
    let series = (!options.series_column.is_empty())
        .then(|| find(&options.series_column, "data.series_column"))
        .transpose()?;
    let keep: Vec<usize> = if options.columns.is_empty() {
        (0..names.len())
            .filter(|&i| Some(i) != time && Some(i) != series && default(i))
            .collect()
    } else {
        options
            .columns
            .iter()
            .map(|c| find(c, "data.features/data.targets"))
            .collect::<Result<_>>()?
    };
    if let Some(&k) = keep.iter().find(|&&k| Some(k) == time || Some(k) == series) {
        bail!(
            "{at}: column {:?} is the time or series column; it cannot also be a feature or target",
            names[k]
        );
    }
    Ok(Roles { time, series, keep })
}

/// Reads the table at `path` as `options` say.
pub fn read(path: &Path, options: &ReadOptions) -> Result<Table> {
    if parquet_table::is_parquet(path) {
        return parquet_table::read(path, options);
    }
    let file = path.display().to_string();
    let (names, delimiter) = header(path, options.delimiter)?;
    let find = |name: &str, key: &str| -> Result<usize> {
        names.iter().position(|n| n == name).with_context(|| {
            format!(
                "{file}:1: {key}: no column named {name:?}{}; the header has {}",
                suggest(name, &names),
                names.join(", ")
            )
        })
    };
    let Roles {
        time,
        series,
        mut keep,
    } = roles(&names, options, &format!("{file}:1"), &find, |_| true)?;
    let explicit = !options.columns.is_empty();
    let mut reader = open(path)?;
    // Skip what `header` read: the csv reader re-reads the header itself.
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(&mut reader);
    let mut first = true;
    let mut values: Vec<f32> = Vec::new();
    let mut times: Vec<i64> = Vec::new();
    let mut series_of_row: Vec<u32> = Vec::new();
    let mut series_names: Vec<String> = Vec::new();
    let mut series_index = std::collections::HashMap::<Vec<u8>, u32>::new();
    let mut lines: Vec<u64> = Vec::new();
    let mut time_format = options.time_format.clone();
    let mut parser: Option<timestamp::Parser> = None;
    let mut missing = 0usize;
    // Records are read in chunks; their cells are parsed in parallel.
    let mut batch: Vec<csv::ByteRecord> = (0..CHUNK).map(|_| csv::ByteRecord::new()).collect();
    loop {
        let mut n = 0;
        while n < CHUNK {
            let more = csv.read_byte_record(&mut batch[n]).with_context(|| {
                format!("{file}: cannot read the CSV (a damaged file, or not text?)")
            })?;
            if !more {
                break;
            }
            let record = &batch[n];
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            if record.len() == 1 && record[0].is_empty() {
                continue; // a blank line
            }
            if record.len() != names.len() {
                bail!(
                    "{file}:{line}: expected {} fields as in the header, found {}; fix this row (a ragged row, or a stray delimiter in an unquoted field?)",
                    names.len(),
                    record.len()
                );
            }
            if first {
                if !explicit {
                    // Numeric columns: those whose first row holds a number or nothing.
                    keep.retain(|&k| number(&record[k]).is_ok());
                }
                if let (Some(t), true) = (time, time_format.is_empty()) {
                    time_format = timestamp::detect_format(&String::from_utf8_lossy(&record[t]))
                        .map(str::to_string)
                        .unwrap_or_default();
                }
                parser = Some(timestamp::Parser::new(&time_format));
                first = false;
                if keep.is_empty() {
                    bail!("{file}: no numeric column; list the columns to read in data.features");
                }
            }
            n += 1;
        }
        if n == 0 {
            break;
        }
        let width = keep.len().max(1);
        let at = values.len();
        values.resize(at + n * keep.len(), 0.0);
        let parsed: Vec<Result<(usize, Option<i64>), String>> = values[at..]
            .par_chunks_mut(width)
            .zip(batch[..n].par_iter())
            .map(|(out, record)| {
                parse_record(
                    record,
                    out,
                    &keep,
                    time,
                    parser.as_ref(),
                    options.allow_missing,
                    &names,
                )
            })
            .collect();
        for (record, result) in batch[..n].iter().zip(parsed) {
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            let (row_missing, seconds) = result.map_err(|e| {
                anyhow::anyhow!(
                    "{file}:{line}: {}",
                    e.replace(
                        "{format}",
                        &if time_format.is_empty() {
                            String::new()
                        } else {
                            format!(" with format {time_format:?}")
                        }
                    )
                )
            })?;
            missing += row_missing;
            if let Some(seconds) = seconds {
                times.push(seconds);
            }
            if let Some(s) = series {
                let key = record[s].to_vec();
                let next = series_names.len() as u32;
                let id = *series_index.entry(key).or_insert_with(|| {
                    series_names.push(String::from_utf8_lossy(&record[s]).trim().to_string());
                    next
                });
                series_of_row.push(id);
            }
            lines.push(line);
        }
        if n < CHUNK {
            break;
        }
    }
    let rows = lines.len();
    if rows == 0 {
        bail!("{file}: the header has no rows under it; a table needs at least one row");
    }
    if keep.is_empty() {
        bail!("{file}: no numeric column; list the columns to read in data.features");
    }
    let columns: Vec<String> = keep.iter().map(|&k| names[k].clone()).collect();
    let mut table = Table {
        columns,
        values,
        rows,
        times: time.map(|_| times),
        series: vec![],
        lines,
        missing,
    };
    if series.is_some() {
        group_by_series(&mut table, &series_of_row, &series_names);
    } else {
        table.series = vec![(String::new(), 0..rows)];
    }
    if !options.unordered_times {
        check_order(&table, &file, &options.time_column)?;
    }
    Ok(table)
}

/// Reorders rows so that each series is contiguous (stable: file order kept inside a series).
pub(crate) fn group_by_series(table: &mut Table, ids: &[u32], names: &[String]) {
    let mut order: Vec<usize> = (0..table.rows).collect();
    order.sort_by_key(|&r| ids[r]);
    let f = table.columns.len();
    if order.iter().enumerate().any(|(i, &r)| i != r) {
        let mut values = Vec::with_capacity(table.values.len());
        for &r in &order {
            values.extend_from_slice(&table.values[r * f..(r + 1) * f]);
        }
        table.values = values;
        table.lines = order.iter().map(|&r| table.lines[r]).collect();
        if let Some(t) = &table.times {
            table.times = Some(order.iter().map(|&r| t[r]).collect());
        }
    }
    let mut start = 0;
    for (id, name) in names.iter().enumerate() {
        let n = ids.iter().filter(|&&s| s as usize == id).count();
        table.series.push((name.clone(), start..start + n));
        start += n;
    }
}

/// Timestamps strictly increase inside every series.
pub(crate) fn check_order(table: &Table, file: &str, column: &str) -> Result<()> {
    let Some(times) = &table.times else {
        return Ok(());
    };
    for (name, range) in &table.series {
        for r in range.start + 1..range.end {
            let (a, b) = (times[r - 1], times[r]);
            if b <= a {
                let what = if b == a { "repeats" } else { "goes back to" };
                let series = if name.is_empty() {
                    String::new()
                } else {
                    format!(" (series {name:?})")
                };
                bail!(
                    "{file}:{}: column {column:?}{series}: time {what} {} after {} on line {}; rows must be in strictly increasing time — sort the file and remove duplicates",
                    table.lines[r],
                    timestamp::format(b),
                    timestamp::format(a),
                    table.lines[r - 1]
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn semicolons_bom_quotes_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "t.csv",
            "\u{feff}\"when\";\"a\";\"name\";\"b\"\n2020-01-01 00:00;1.5;x;2\n2020-01-01 01:00;2.5;y;3\n".as_bytes(),
        );
        let t = read(
            &p,
            &ReadOptions {
                time_column: "when".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(t.columns, ["a", "b"]);
        assert_eq!(t.values, [1.5, 2.0, 2.5, 3.0]);
        assert_eq!(
            t.times.as_ref().unwrap()[1] - t.times.as_ref().unwrap()[0],
            3600
        );
        assert_eq!(t.lines, [2, 3]);
    }

    #[test]
    fn series_are_grouped_and_checked_separately() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "s.csv",
            b"t,store,v\n2020-01-01,a,1\n2020-01-01,b,10\n2020-01-02,a,2\n2020-01-02,b,20\n",
        );
        let t = read(
            &p,
            &ReadOptions {
                time_column: "t".into(),
                series_column: "store".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(t.values, [1.0, 2.0, 10.0, 20.0]);
        assert_eq!(
            t.series,
            vec![("a".to_string(), 0..2), ("b".to_string(), 2..4)]
        );
        assert_eq!(t.lines, [2, 4, 3, 5]);
    }

    #[test]
    fn gzip_reads_like_plain_text() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let text = b"a\tb\n1\t2\n3\t4\n";
        let p = dir.path().join("t.csv.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&p).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(text).unwrap();
        gz.finish().unwrap();
        let t = read(&p, &ReadOptions::default()).unwrap();
        assert_eq!(t.values, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn delimiters_are_detected_outside_quotes() {
        assert_eq!(detect_delimiter(b"a,b,c\n1;2"), b',');
        assert_eq!(detect_delimiter(b"\"a,x\";b;c\n"), b';');
        assert_eq!(detect_delimiter(b"a\tb\n"), b'\t');
        assert_eq!(detect_delimiter(b"single\n"), b',');
    }
}
