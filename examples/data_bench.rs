//! Measures the data stage at full size: writing and parsing a synthetic
//! 420,551-row Jena CSV, the book's shuffled Jena batch (128 × 240 × 14) on
//! the CPU, and (given a path) reading + tokenizing all IMDB reviews.
//!
//! `cargo run --release --example data_bench -- [OUT_DIR] [IMDB_ARCHIVE_OR_FOLDER]`
use std::path::PathBuf;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(
        args.first()
            .map(String::as_str)
            .unwrap_or("target/data-bench"),
    );
    std::fs::create_dir_all(&dir)?;
    let csv = dir.join("jena_synthetic.csv");
    let t = Instant::now();
    seqlab::data::write_synthetic_jena(420_551, 1, &csv)?;
    println!(
        "synthetic Jena: 420,551 rows written in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let table = seqlab::data::read_csv(&csv)?;
    println!(
        "read_csv: {} rows in {:.3} s",
        table.rows,
        t.elapsed().as_secs_f64()
    );
    let r = seqlab::data::bench_batches(tch::Device::Cpu, 200, 0)?;
    println!(
        "Jena batch 128x240x14 shuffled (CPU): {:.3} ms/batch over {} batches",
        r.ms_per_batch, r.batches
    );
    if let Some(src) = args.get(1) {
        let spec: seqlab::config::ImdbData = toml::from_str("")?;
        let t = Instant::now();
        let a = seqlab::data::imdb::encode(&spec, std::path::Path::new(src))?;
        println!(
            "IMDB read + tokenize + encode (no cache): {} train, {} val, {} test in {:.2} s",
            a.train.len(),
            a.val.len(),
            a.test.len(),
            t.elapsed().as_secs_f64()
        );
        let copy = dir.join("imdb.tar.gz");
        std::fs::copy(src, &copy)?;
        for pass in ["first (builds cache)", "second (cache)"] {
            let t = Instant::now();
            let l = seqlab::data::imdb::load(&spec, &copy, &dir.join(".cache"))?;
            println!(
                "IMDB load {pass}: from_cache={} in {:.2} s",
                l.from_cache,
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
