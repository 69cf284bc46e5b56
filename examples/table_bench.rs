//! Reading a large generated time-series table: the same `ROWS` × `COLS`
//! numbers (plus an hourly timestamp) as CSV and as Parquet (float64
//! columns, a TIMESTAMP column, snappy, row groups of 1,048,576 rows — what
//! pandas/pyarrow write by default), read with the generic table reader.
//!
//! `cargo run --release --example table_bench -- write DIR [ROWS] [COLS]`
//! writes `DIR/table_ROWSxCOLS.csv` and `.parquet` (kept if present);
//! `…/table_bench read FILE` reads one and prints the time (run it under
//! `/usr/bin/time -f %M` for the peak memory).
use anyhow::{bail, Context, Result};
use parquet::data_type::{DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const GROUP: usize = 1 << 20;
const START: i64 = 1_451_606_400; // 2016-01-01 00:00:00

/// Row `r`'s values: a smooth series per column plus noise, 4 decimals.
fn row(rng: &mut ChaCha8Rng, r: usize, cols: usize, out: &mut Vec<f64>) {
    out.clear();
    for c in 0..cols {
        let v = (r as f64 / (50.0 + c as f64)).sin() * 10.0 + rng.gen_range(-1.0..1.0);
        out.push((v * 1e4).round() / 1e4);
    }
}

fn write_csv(path: &Path, rows: usize, cols: usize) -> Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    write!(w, "date")?;
    for c in 0..cols {
        write!(w, ",x{c}")?;
    }
    writeln!(w)?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut vals = Vec::new();
    for r in 0..rows {
        let t = chrono::DateTime::from_timestamp(START + 3600 * r as i64, 0).context("time")?;
        write!(w, "{}", t.format("%Y-%m-%d %H:%M:%S"))?;
        row(&mut rng, r, cols, &mut vals);
        for v in &vals {
            write!(w, ",{v}")?;
        }
        writeln!(w)?;
    }
    w.flush()?;
    Ok(())
}

fn write_parquet(path: &Path, rows: usize, cols: usize) -> Result<()> {
    let fields: String = (0..cols)
        .map(|c| format!("REQUIRED DOUBLE x{c};\n"))
        .collect();
    let schema = Arc::new(parquet::schema::parser::parse_message_type(&format!(
        "message t {{\nREQUIRED INT64 date (TIMESTAMP(MICROS,false));\n{fields}}}"
    ))?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .set_dictionary_enabled(false)
            .build(),
    );
    let mut w = SerializedFileWriter::new(std::fs::File::create(path)?, schema, props)?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut vals = Vec::new();
    let mut start = 0;
    while start < rows {
        let n = GROUP.min(rows - start);
        let mut columns = vec![Vec::with_capacity(n); cols];
        for r in start..start + n {
            row(&mut rng, r, cols, &mut vals);
            for (c, v) in vals.iter().enumerate() {
                columns[c].push(*v);
            }
        }
        let times: Vec<i64> = (start..start + n)
            .map(|r| (START + 3600 * r as i64) * 1_000_000)
            .collect();
        let mut g = w.next_row_group()?;
        let mut col = g.next_column()?.context("time column")?;
        col.typed::<Int64Type>().write_batch(&times, None, None)?;
        col.close()?;
        for values in &columns {
            let mut col = g.next_column()?.context("column")?;
            col.typed::<DoubleType>().write_batch(values, None, None)?;
            col.close()?;
        }
        g.close()?;
        start += n;
    }
    w.close()?;
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("write") => {
            let dir = PathBuf::from(args.get(1).context("write DIR [ROWS] [COLS]")?);
            let rows: usize = args.get(2).map_or(Ok(10_000_000), |s| s.parse())?;
            let cols: usize = args.get(3).map_or(Ok(20), |s| s.parse())?;
            std::fs::create_dir_all(&dir)?;
            let base = dir.join(format!("table_{rows}x{cols}"));
            for (ext, write) in [
                ("csv", write_csv as fn(&Path, usize, usize) -> Result<()>),
                ("parquet", write_parquet),
            ] {
                let path = base.with_extension(ext);
                if path.exists() {
                    continue;
                }
                let tmp = base.with_extension(format!("{ext}.tmp"));
                let t = Instant::now();
                write(&tmp, rows, cols)?;
                std::fs::rename(&tmp, &path)?;
                println!(
                    "wrote {} ({rows} rows × {cols} numbers + a timestamp) in {:.1} s",
                    path.display(),
                    t.elapsed().as_secs_f64()
                );
            }
        }
        Some("read") => {
            let path = PathBuf::from(args.get(1).context("read FILE")?);
            let t = Instant::now();
            let table = seqlab::data::table::read(
                &path,
                &seqlab::data::table::ReadOptions {
                    time_column: "date".into(),
                    ..Default::default()
                },
            )?;
            println!(
                "{}: {} rows × {} columns read in {:.2} s",
                path.display(),
                table.rows,
                table.columns.len(),
                t.elapsed().as_secs_f64()
            );
        }
        _ => bail!("usage: table_bench write DIR [ROWS] [COLS] | table_bench read FILE"),
    }
    Ok(())
}
