//! Reads a Parquet file (`.parquet`) into the same column [`Table`] that a
//! CSV gives, through the `parquet` crate's column reader (no Arrow).
//!
//! Types: INT32/INT64 (decimals too, scaled), FLOAT and DOUBLE are numeric
//! columns, read as `f32` like a CSV cell; the time column may be a
//! TIMESTAMP (milli-, micro- or nanoseconds, zone ignored as for a CSV),
//! a DATE, a legacy INT96, or strings read by the same timestamp code as a
//! CSV's; the series column holds strings or integers. A string column is a
//! feature only when `data.features` or `data.targets` names it; its cells
//! are then read as CSV cells are. Null and NaN cells are missing cells.
//! Nested columns (lists, maps) are never read.
//!
//! Files are untrusted: a damaged file is an error naming it, never a panic
//! (the crate's reader also runs under `catch_unwind`), and the size a file
//! declares is capped at [`MAX_CELLS`] before anything is allocated.
//! Parquet has no lines: messages name the row, counting data rows from 1,
//! and [`Table::lines`] holds those row numbers.
use super::table::{self, roles, suggest, ReadOptions, Roles, Table};
use super::timestamp;
use anyhow::{anyhow, bail, Context, Result};
use parquet::basic::{ConvertedType, LogicalType, TimeUnit, Type as Physical};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::DataType;
use parquet::file::reader::{ChunkReader, FileReader, Length, SerializedFileReader};
use parquet::schema::types::ColumnDescriptor;
use rayon::prelude::*;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// The most cells (rows × columns read) one file may declare: 2³⁰, 4 GiB of `f32`.
pub const MAX_CELLS: u64 = 1 << 30;

/// Whether `path` names a Parquet file (by its extension).
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// What a column can be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Integers, floats, decimals stored as integers.
    Number,
    /// TIMESTAMP, DATE, INT96.
    Time,
    /// UTF-8 strings (or untyped byte arrays).
    Text,
    /// Anything else (booleans, fixed-length bytes, nested, time of day).
    Other,
}

/// One leaf column of the file's schema.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    /// A readable type name for `seqlab data info` and messages.
    pub type_name: String,
}

fn damaged(file: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{file}: not a readable Parquet file ({e}); check that it was copied completely, or export the table as CSV")
}

/// Runs `f`, turning a panic inside the `parquet` crate into an error naming the file.
fn guarded<T>(file: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(anyhow!(
            "{file}: the Parquet reader failed on this file (damaged or unsupported); export the table as CSV"
        ))
    })
}

/// A file read with positioned reads (`pread`), so that column chunks can be
/// read in parallel: `File`'s own reader shares one offset between clones.
/// A range past the end of the file is an error before anything is allocated.
pub struct Positioned {
    file: Arc<File>,
    len: u64,
}

/// A reader from a position of a [`Positioned`] file.
pub struct At {
    file: Arc<File>,
    pos: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Length for Positioned {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Positioned {
    type T = At;

    fn get_read(&self, start: u64) -> parquet::errors::Result<At> {
        Ok(At {
            file: self.file.clone(),
            pos: start,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        if start.saturating_add(length as u64) > self.len {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "{length} bytes at {start} lie past the end of the file ({} bytes)",
                self.len
            )));
        }
        let mut buf = vec![0; length];
        self.file.read_exact_at(&mut buf, start)?;
        Ok(buf.into())
    }
}

fn open(path: &Path) -> Result<SerializedFileReader<Positioned>> {
    let file = path.display().to_string();
    let f = File::open(path).with_context(|| {
        format!("cannot open {file}; check data.path (relative paths start where seqlab runs)")
    })?;
    let len = f
        .metadata()
        .with_context(|| format!("cannot read {file}"))?
        .len();
    let f = Positioned {
        file: Arc::new(f),
        len,
    };
    guarded(&file, || {
        SerializedFileReader::new(f).map_err(|e| damaged(&file, e))
    })
}

fn kind_of(d: &ColumnDescriptor) -> (Kind, String) {
    if d.max_rep_level() > 0 {
        return (Kind::Other, "list".into());
    }
    let logical = d.logical_type_ref();
    let converted = d.converted_type();
    let physical = d.self_type().get_physical_type();
    let time_unit = match logical {
        Some(LogicalType::Timestamp(t)) => Some(&t.unit),
        _ => None,
    };
    match physical {
        Physical::INT32
            if matches!(logical, Some(LogicalType::Date)) || converted == ConvertedType::DATE =>
        {
            (Kind::Time, "date".into())
        }
        Physical::INT64 if time_unit.is_some() => (Kind::Time, "timestamp".into()),
        Physical::INT64
            if matches!(
                converted,
                ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIMESTAMP_MICROS
            ) =>
        {
            (Kind::Time, "timestamp".into())
        }
        Physical::INT32 | Physical::INT64 if matches!(logical, Some(LogicalType::Time(_))) => {
            (Kind::Other, "time of day".into())
        }
        Physical::INT32 | Physical::INT64 => {
            let scale = decimal_scale(d);
            let name = if scale > 0 { "decimal" } else { "integer" };
            (Kind::Number, name.into())
        }
        Physical::FLOAT | Physical::DOUBLE => (Kind::Number, "float".into()),
        Physical::INT96 => (Kind::Time, "timestamp".into()),
        Physical::BYTE_ARRAY if !matches!(logical, Some(LogicalType::Decimal(_))) => {
            (Kind::Text, "string".into())
        }
        _ => (Kind::Other, format!("{physical}").to_lowercase()),
    }
}

/// The decimal scale of an integer column (0: not a decimal).
fn decimal_scale(d: &ColumnDescriptor) -> i32 {
    match d.logical_type_ref() {
        Some(LogicalType::Decimal(t)) => t.scale.clamp(0, 38),
        _ if d.converted_type() == ConvertedType::DECIMAL => d.type_scale().clamp(0, 38),
        _ => 0,
    }
}

/// The file's columns with their kinds, and its row count.
pub fn columns(path: &Path) -> Result<(Vec<Column>, usize)> {
    let reader = open(path)?;
    let file = path.display().to_string();
    let meta = reader.metadata().file_metadata();
    let rows =
        usize::try_from(meta.num_rows()).map_err(|_| damaged(&file, "negative row count"))?;
    let columns = meta
        .schema_descr()
        .columns()
        .iter()
        .map(|d| {
            let (kind, type_name) = kind_of(d);
            Column {
                name: d.path().string(),
                kind,
                type_name,
            }
        })
        .collect();
    Ok((columns, rows))
}

/// How a kept column's cells become numbers, times or series names.
#[derive(Clone, Copy)]
enum Role {
    Feature,
    Time,
    Series,
}

/// Why a column chunk could not be read.
enum ChunkError {
    /// The file is damaged (the crate's message).
    Damaged(String),
    /// Row `row` of the chunk has no readable time.
    Time { row: usize, what: &'static str },
    /// The column's type does not fit its use.
    Unsupported,
}

impl From<String> for ChunkError {
    fn from(e: String) -> Self {
        ChunkError::Damaged(e)
    }
}

/// One column chunk read: numbers (NaN where missing) or times or series keys.
enum Chunk {
    Numbers(Vec<f32>, Option<(usize, String)>),
    Times(Vec<i64>),
    Keys(Vec<String>),
}

/// Reads every record of one column chunk: its non-null values and, for
/// optional columns, the definition levels (`max` = present).
fn read_chunk<T: DataType>(
    mut r: ColumnReaderImpl<T>,
    rows: usize,
    nullable: bool,
) -> parquet::errors::Result<(Vec<T::T>, Vec<i16>)> {
    let mut values = Vec::with_capacity(rows);
    let mut defs = Vec::with_capacity(if nullable { rows } else { 0 });
    let mut read = 0;
    while read < rows {
        let levels = if nullable { Some(&mut defs) } else { None };
        let (records, _, _) = r.read_records(rows - read, levels, None, &mut values)?;
        if records == 0 {
            break;
        }
        read += records;
    }
    if read != rows {
        return Err(parquet::errors::ParquetError::General(format!(
            "a column chunk holds {read} rows where the metadata says {rows}"
        )));
    }
    Ok((values, defs))
}

/// Each row's value, or `None` when null, from the values and definition
/// levels of a chunk (checked to agree first: the file is untrusted).
fn cells<'a, V>(
    values: &'a [V],
    defs: &'a [i16],
    max_def: i16,
    rows: usize,
) -> Result<impl Iterator<Item = Option<&'a V>> + 'a, String> {
    let nullable = !defs.is_empty();
    let present = if nullable {
        defs.iter().filter(|&&d| d == max_def).count()
    } else {
        rows
    };
    if (nullable && defs.len() != rows) || present != values.len() {
        return Err("the definition levels do not match the values".into());
    }
    let mut it = values.iter();
    Ok((0..rows).map(move |i| {
        if !nullable || defs[i] == max_def {
            it.next()
        } else {
            None
        }
    }))
}

/// A numeric column chunk as `f32` (NaN missing) and its first unreadable cell.
fn numbers<'a, V: 'a>(
    cells: impl Iterator<Item = Option<&'a V>>,
    to_f32: impl Fn(&V) -> Result<Option<f32>, String>,
) -> (Vec<f32>, Option<(usize, String)>) {
    let mut bad = None;
    let out = cells
        .enumerate()
        .map(|(i, c)| match c.map(&to_f32) {
            Some(Ok(Some(v))) => v,
            Some(Err(text)) => {
                bad.get_or_insert((i, text));
                f32::NAN
            }
            _ => f32::NAN,
        })
        .collect();
    (out, bad)
}

/// `v` as a finite `f32` (NaN: missing; infinite or too large: unreadable).
fn finite(v: f64) -> Result<Option<f32>, String> {
    if v.is_nan() {
        return Ok(None);
    }
    let x = v as f32;
    if x.is_finite() {
        Ok(Some(x))
    } else {
        Err(format!("{v}"))
    }
}

/// Reads one column chunk of row group `g` for `role`.
fn read_column(
    reader: &SerializedFileReader<Positioned>,
    g: usize,
    leaf: usize,
    rows: usize,
    role: Role,
    time_format: &str,
) -> Result<Chunk, ChunkError> {
    let d = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .column(leaf);
    let max_def = d.max_def_level();
    let nullable = max_def > 0;
    let group = reader.get_row_group(g).map_err(|e| e.to_string())?;
    let column = group.get_column_reader(leaf).map_err(|e| e.to_string())?;
    let scale = 10f64.powi(decimal_scale(&d));
    let time_unit = match d.logical_type_ref() {
        Some(LogicalType::Timestamp(t)) => match t.unit {
            TimeUnit::MILLIS => 1_000,
            TimeUnit::MICROS => 1_000_000,
            TimeUnit::NANOS => 1_000_000_000,
        },
        _ if d.converted_type() == ConvertedType::TIMESTAMP_MILLIS => 1_000,
        _ if d.converted_type() == ConvertedType::TIMESTAMP_MICROS => 1_000_000,
        _ => 0,
    };
    let e = |e: parquet::errors::ParquetError| e.to_string();
    macro_rules! chunk {
        ($r:expr) => {{
            let (values, defs) = read_chunk($r, rows, nullable).map_err(e)?;
            (values, defs)
        }};
    }
    macro_rules! times {
        ($cells:expr, $f:expr) => {{
            let mut out = Vec::with_capacity(rows);
            for (i, c) in $cells.enumerate() {
                match c.map($f) {
                    Some(Some(t)) => out.push(t),
                    Some(None) => {
                        return Err(ChunkError::Time {
                            row: i,
                            what: "cannot read the time",
                        })
                    }
                    None => {
                        return Err(ChunkError::Time {
                            row: i,
                            what: "the time is missing",
                        })
                    }
                }
            }
            Ok(Chunk::Times(out))
        }};
    }
    match (role, column) {
        (Role::Feature, ColumnReader::Int32ColumnReader(r)) => {
            let (v, dl) = chunk!(r);
            let c = cells(&v, &dl, max_def, rows)?;
            let (n, bad) = numbers(c, |x: &i32| finite(*x as f64 / scale));
            Ok(Chunk::Numbers(n, bad))
        }
        (Role::Feature, ColumnReader::Int64ColumnReader(r)) => {
            let (v, dl) = chunk!(r);
            let c = cells(&v, &dl, max_def, rows)?;
            let (n, bad) = numbers(c, |x: &i64| finite(*x as f64 / scale));
            Ok(Chunk::Numbers(n, bad))
        }
        (Role::Feature, ColumnReader::FloatColumnReader(r)) => {
            let (v, dl) = chunk!(r);
            let c = cells(&v, &dl, max_def, rows)?;
            let (n, bad) = numbers(c, |x: &f32| finite(*x as f64));
            Ok(Chunk::Numbers(n, bad))
        }
        (Role::Feature, ColumnReader::DoubleColumnReader(r)) => {
            let (v, dl) = chunk!(r);
            let c = cells(&v, &dl, max_def, rows)?;
            let (n, bad) = numbers(c, |x: &f64| finite(*x));
            Ok(Chunk::Numbers(n, bad))
        }
        (Role::Feature, ColumnReader::ByteArrayColumnReader(r)) => {
            let (v, dl) = chunk!(r);
            let c = cells(&v, &dl, max_def, rows)?;
            let (n, bad) = numbers(c, |x: &parquet::data_type::ByteArray| {
                table::number(x.data()).map_err(|()| String::from_utf8_lossy(x.data()).into_owned())
            });
            Ok(Chunk::Numbers(n, bad))
        }
        (Role::Time, ColumnReader::Int64ColumnReader(r)) if time_unit > 0 => {
            let (v, dl) = chunk!(r);
            let c = cells(&v, &dl, max_def, rows)?;
            times!(c, |x: &i64| Some(x.div_euclid(time_unit)))
        }
        (Role::Time, ColumnReader::Int32ColumnReader(r)) => {
            let (v, dl) = chunk!(r);
            let c = cells(&v, &dl, max_def, rows)?;
            times!(c, |x: &i32| Some(*x as i64 * 86_400))
        }
        (Role::Time, ColumnReader::Int96ColumnReader(r)) => {
            let (v, dl) = chunk!(r);
            let c = cells(&v, &dl, max_def, rows)?;
            times!(c, |x: &parquet::data_type::Int96| Some(x.to_seconds()))
        }
        (Role::Time, ColumnReader::ByteArrayColumnReader(r)) => {
            let (v, dl) = chunk!(r);
            let c = cells(&v, &dl, max_def, rows)?;
            let parser = timestamp::Parser::new(time_format);
            times!(c, |x: &parquet::data_type::ByteArray| {
                parser.parse(&String::from_utf8_lossy(x.data()))
            })
        }
        (Role::Series, ColumnReader::ByteArrayColumnReader(r)) => {
            let (v, dl) = chunk!(r);
            let c = cells(&v, &dl, max_def, rows)?;
            Ok(Chunk::Keys(
                c.map(|x| {
                    x.map_or(String::new(), |b| {
                        String::from_utf8_lossy(b.data()).trim().to_string()
                    })
                })
                .collect(),
            ))
        }
        (Role::Series, ColumnReader::Int32ColumnReader(r)) => {
            let (v, dl) = chunk!(r);
            let c = cells(&v, &dl, max_def, rows)?;
            Ok(Chunk::Keys(
                c.map(|x| x.map_or(String::new(), |b| b.to_string()))
                    .collect(),
            ))
        }
        (Role::Series, ColumnReader::Int64ColumnReader(r)) => {
            let (v, dl) = chunk!(r);
            let c = cells(&v, &dl, max_def, rows)?;
            Ok(Chunk::Keys(
                c.map(|x| x.map_or(String::new(), |b| b.to_string()))
                    .collect(),
            ))
        }
        _ => Err(ChunkError::Unsupported),
    }
}

/// The first string of the time column (to detect its format).
fn first_time_text(reader: &SerializedFileReader<Positioned>, leaf: usize) -> Option<String> {
    let group = reader.get_row_group(0).ok()?;
    let ColumnReader::ByteArrayColumnReader(mut r) = group.get_column_reader(leaf).ok()? else {
        return None;
    };
    let (mut values, mut defs) = (Vec::new(), Vec::new());
    r.read_records(1, Some(&mut defs), None, &mut values).ok()?;
    values
        .first()
        .map(|b| String::from_utf8_lossy(b.data()).into_owned())
}

/// Reads the Parquet table at `path` as `options` say (`delimiter` ignored).
pub fn read(path: &Path, options: &ReadOptions) -> Result<Table> {
    let file = path.display().to_string();
    let reader = open(path)?;
    guarded(&file, || read_open(&reader, &file, options))
}

fn read_open(
    reader: &SerializedFileReader<Positioned>,
    file: &str,
    options: &ReadOptions,
) -> Result<Table> {
    let meta = reader.metadata();
    let schema = meta.file_metadata().schema_descr();
    let leaves: Vec<(String, Kind, String)> = schema
        .columns()
        .iter()
        .map(|d| {
            let (k, t) = kind_of(d);
            (d.path().string(), k, t)
        })
        .collect();
    let names: Vec<String> = leaves.iter().map(|l| l.0.clone()).collect();
    let find = |name: &str, key: &str| -> Result<usize> {
        names.iter().position(|n| n == name).with_context(|| {
            format!(
                "{file}: {key}: no column named {name:?}{}; the file has {}",
                suggest(name, &names),
                names.join(", ")
            )
        })
    };
    let Roles { time, series, keep } = roles(&names, options, file, &find, |i| {
        leaves[i].1 == Kind::Number
    })?;
    if let Some(t) = time {
        if !matches!(leaves[t].1, Kind::Time | Kind::Text) {
            bail!(
                "{file}: data.time_column: column {:?} is of type {}; a time column holds timestamps, dates or strings — name another column",
                names[t],
                leaves[t].2
            );
        }
    }
    if let Some(s) = series {
        if !(leaves[s].1 == Kind::Text || leaves[s].2 == "integer") {
            bail!(
                "{file}: data.series_column: column {:?} is of type {}; a series column holds strings or integers",
                names[s],
                leaves[s].2
            );
        }
    }
    if let Some(&k) = keep
        .iter()
        .find(|&&k| !matches!(leaves[k].1, Kind::Number | Kind::Text))
    {
        bail!(
            "{file}: column {:?} is of type {}, not a number; leave it out of data.features and data.targets",
            names[k],
            leaves[k].2
        );
    }
    if keep.is_empty() {
        bail!("{file}: no numeric column; list the columns to read in data.features");
    }
    let rows = usize::try_from(meta.file_metadata().num_rows())
        .map_err(|_| damaged(file, "negative row count"))?;
    let groups: Vec<usize> = meta
        .row_groups()
        .iter()
        .map(|g| usize::try_from(g.num_rows()))
        .collect::<Result<_, _>>()
        .map_err(|_| damaged(file, "negative row count"))?;
    if groups.iter().sum::<usize>() != rows {
        return Err(damaged(
            file,
            "the row groups do not add up to the row count",
        ));
    }
    let width = keep.len();
    if (rows as u64).saturating_mul(width as u64 + 2) > MAX_CELLS {
        bail!(
            "{file}: {rows} rows × {width} columns is more than seqlab reads at once ({MAX_CELLS} cells); read fewer columns (data.features) or split the file"
        );
    }
    if rows == 0 {
        bail!("{file}: the file has no rows; a table needs at least one row");
    }
    let time_format = match time {
        Some(t) if leaves[t].1 == Kind::Text && options.time_format.is_empty() => {
            first_time_text(reader, t)
                .and_then(|s| timestamp::detect_format(&s))
                .unwrap_or_default()
                .to_string()
        }
        _ => options.time_format.clone(),
    };
    let mut values: Vec<f32> = Vec::with_capacity(rows * width);
    let mut times: Vec<i64> = Vec::with_capacity(if time.is_some() { rows } else { 0 });
    let mut series_ids: Vec<u32> = Vec::new();
    let mut series_names: Vec<String> = Vec::new();
    let mut series_index = std::collections::HashMap::<String, u32>::new();
    let mut start = 0usize;
    let mut missing = 0usize;
    for (g, &n) in groups.iter().enumerate() {
        let tasks: Vec<(usize, Role)> = keep
            .iter()
            .map(|&k| (k, Role::Feature))
            .chain(time.map(|t| (t, Role::Time)))
            .chain(series.map(|s| (s, Role::Series)))
            .collect();
        let chunks: Vec<Result<Chunk, ChunkError>> = tasks
            .par_iter()
            .map(|&(leaf, role)| read_column(reader, g, leaf, n, role, &time_format))
            .collect();
        let mut numbers: Vec<Vec<f32>> = Vec::with_capacity(width);
        for (chunk, &(leaf, _)) in chunks.into_iter().zip(&tasks) {
            let name = &names[leaf];
            let chunk = chunk.map_err(|e| chunk_error(file, name, start, e, &time_format))?;
            match chunk {
                Chunk::Numbers(v, bad) => {
                    if let (Some((i, text)), false) = (&bad, options.allow_missing) {
                        bail!(
                            "{file}: row {}: column {name:?}: cannot read {text:?} as a number; fix the cell, leave the column out of data.features, or set data.missing = \"ffill\", \"interpolate\" or \"drop_windows\"",
                            start + i + 1
                        );
                    }
                    if !options.allow_missing {
                        if let Some(i) = v.iter().position(|x| x.is_nan()) {
                            bail!(
                                "{file}: row {}: column {name:?}: the cell is empty; fill it in, or set data.missing = \"ffill\", \"interpolate\" or \"drop_windows\"",
                                start + i + 1
                            );
                        }
                    }
                    missing += v.iter().filter(|x| x.is_nan()).count();
                    numbers.push(v);
                }
                Chunk::Times(t) => times.extend(t),
                Chunk::Keys(keys) => {
                    for key in keys {
                        let next = series_names.len() as u32;
                        let id = *series_index.entry(key.clone()).or_insert_with(|| {
                            series_names.push(key);
                            next
                        });
                        series_ids.push(id);
                    }
                }
            }
        }
        // Column chunks → row-major rows, in parallel over rows.
        let at = values.len();
        values.resize(at + n * width, 0.0);
        values[at..]
            .par_chunks_mut(width)
            .enumerate()
            .for_each(|(r, row)| {
                for (slot, col) in row.iter_mut().zip(&numbers) {
                    *slot = col[r];
                }
            });
        start += n;
    }
    let mut table = Table {
        columns: keep.iter().map(|&k| names[k].clone()).collect(),
        values,
        rows,
        times: time.map(|_| times),
        series: vec![],
        lines: (1..=rows as u64).collect(),
        missing,
    };
    if series.is_some() {
        table::group_by_series(&mut table, &series_ids, &series_names);
    } else {
        table.series = vec![(String::new(), 0..rows)];
    }
    table::check_order(&table, file, &options.time_column)?;
    Ok(table)
}

/// A message for a column chunk that could not be read.
fn chunk_error(
    file: &str,
    name: &str,
    start: usize,
    e: ChunkError,
    time_format: &str,
) -> anyhow::Error {
    match e {
        ChunkError::Unsupported => anyhow!(
            "{file}: column {name:?}: its type cannot be read for this use; see `seqlab data info {file}` for the column types"
        ),
        ChunkError::Time { row, what } => {
            let format = if time_format.is_empty() {
                String::new()
            } else {
                format!(" with format {time_format:?}")
            };
            anyhow!(
                "{file}: row {}: column {name:?}: {what}{format}; use timestamps, or strings in ISO 8601 (2016-07-01 00:00:00), dd.mm.yyyy HH:MM:SS, or set data.time_format (strftime)",
                start + row + 1
            )
        }
        ChunkError::Damaged(e) => damaged(file, format!("column {name:?}: {e}")),
    }
}
