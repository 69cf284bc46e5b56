//! Throughput of the Jena batcher: the book's training batch
//! (128 × 240 × 14, shuffled, lookback 1440, step 6, delay 144) drawn from a
//! full-size (420,551 × 14) random normalised matrix on a device.
use crate::config::JenaData;
use crate::data::window::{matrix_on, WindowSpec, Windows};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use tch::Device;

/// Batches timed and the mean time per batch.
#[derive(Debug, Clone, Copy)]
pub struct BenchReport {
    pub batches: usize,
    pub ms_per_batch: f64,
}

/// Times `batches` shuffled batches after a few warm-up ones.
pub fn bench_batches(device: Device, batches: usize, seed: u64) -> anyhow::Result<BenchReport> {
    let rows = crate::data::jena::OFFICIAL_ROWS;
    let features = crate::data::jena::FEATURES;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f32> = (0..rows * features)
        .map(|_| rng.gen_range(-2.0..2.0))
        .collect();
    let matrix = matrix_on(&values, features, device);
    let cfg: JenaData = toml::from_str("")?;
    let spec = WindowSpec::for_split(
        (cfg.lookback, cfg.step, cfg.delay, cfg.batch_size),
        "train",
        cfg.splits.train,
        rows,
        true,
    )?;
    let mut windows = Windows::new(&matrix, 1, spec, false);
    let sync = |d: Device| {
        if let Device::Cuda(i) = d {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for _ in 0..5 {
        let _ = windows.next_batch(&mut rng);
    }
    sync(device);
    let start = Instant::now();
    for _ in 0..batches {
        let (x, y) = windows.next_batch(&mut rng);
        debug_assert_eq!(x.size(), [128, 240, 14]);
        drop((x, y));
    }
    sync(device);
    let ms = start.elapsed().as_secs_f64() * 1e3 / batches.max(1) as f64;
    Ok(BenchReport {
        batches,
        ms_per_batch: ms,
    })
}
