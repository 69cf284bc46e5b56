//! A short probe of a cell's step time on random inputs (no data is read):
//! a few training steps on this machine, for `seqlab plan`'s time estimate.
use super::loss::loss;
use super::optim;
use crate::config::{Config, DataSpec, Loss};
use crate::model::Model;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Median seconds of one training step of `config` on the CPU with
/// `threads` libtorch threads (after one warm-up step).
pub fn train_step_seconds(config: &Config, threads: usize) -> anyhow::Result<f64> {
    tch::set_num_threads(threads as i32);
    let inferred = crate::model::infer(config).map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    let batch = config.data.batch_size() as i64;
    let mut dims = vec![batch];
    dims.extend(inferred.input.dims.iter().map(|&d| d as i64));
    let features = inferred.input.dims.get(1).copied().unwrap_or(1);
    let x = match &config.data {
        DataSpec::Text(t) => Tensor::randint(
            t.max_features as i64,
            dims.as_slice(),
            (Kind::Int64, Device::Cpu),
        ),
        DataSpec::Imdb(i) => Tensor::randint(
            i.max_features as i64,
            dims.as_slice(),
            (Kind::Int64, Device::Cpu),
        ),
        _ => Tensor::randn(dims.as_slice(), (Kind::Float, Device::Cpu)),
    };
    let targets: Vec<usize> = (0..features).collect();
    let model = Model::build(
        config,
        Device::Cpu,
        &targets[..features.min(match &config.data {
            DataSpec::Csv(c) => c.targets.len(),
            _ => 1,
        })],
    )?;
    let out0 = model.forward(&x, false);
    let y = match config.train.loss {
        Loss::BinaryCrossentropy => out0.rand_like().round(),
        Loss::SparseCategoricalCrossentropy => {
            Tensor::zeros([batch, 1], (Kind::Float, Device::Cpu))
        }
        _ => out0.randn_like(),
    };
    if model.trainable_params() == 0 {
        return Ok(0.0);
    }
    let mut opt = optim::build(&config.train.optimizer, &model.vs)?;
    let mut times = Vec::new();
    for k in 0..4 {
        let start = Instant::now();
        let out = if config.train.loss.from_logits() {
            model.forward_logits(&x, true)
        } else {
            model.forward(&x, true)
        };
        let out = if out.size() != y.size() && out.numel() == y.numel() {
            out.view_as(&y)
        } else {
            out
        };
        let l = loss(config.train.loss, &out, &y);
        model.backward_step(&mut opt, &l);
        if k > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Training and validation steps of one epoch, as far as the config says
/// (a full pass over a table's split is counted from its window counts).
pub fn steps_per_epoch(config: &Config) -> (usize, usize) {
    let t = &config.train;
    let batch = config.data.batch_size().max(1);
    let full = |n: usize| n.div_ceil(batch);
    let (train_full, val_full) = match &config.data {
        DataSpec::Jena(j) => (
            500,
            (j.splits.val[1] - j.splits.val[0]).saturating_sub(j.lookback) / batch,
        ),
        DataSpec::Imdb(i) => (
            full((25_000.0 * (1.0 - i.validation_split)) as usize),
            full((25_000.0 * i.validation_split) as usize),
        ),
        DataSpec::Text(t) => match crate::data::text::split_sizes(t) {
            Ok([tr, va, _]) => (full(tr), full(va)),
            Err(_) => (0, 0),
        },
        DataSpec::Csv(c) => match crate::data::series::check(c) {
            Ok([tr, va, _]) => (full(tr), full(va)),
            Err(_) => (0, 0),
        },
    };
    let train = if t.steps_per_epoch == 0 {
        train_full
    } else {
        t.steps_per_epoch
    };
    let val = if t.val_steps == 0 {
        val_full
    } else {
        t.val_steps
    };
    (train, val)
}

/// Seconds a whole cell should take: epochs × (train steps + validation
/// steps at a third of a train step's cost), from a probe.
pub fn cell_seconds(config: &Config, threads: usize) -> anyhow::Result<f64> {
    let step = train_step_seconds(config, threads)?;
    let (train, val) = steps_per_epoch(config);
    Ok(config.train.epochs as f64 * (train as f64 + val as f64 / 3.0) * step)
}

/// `≈ 55 min`, `≈ 40 s`, `≈ 2.5 h`.
pub fn human_seconds(s: f64) -> String {
    if s < 90.0 {
        format!("≈ {s:.0} s")
    } else if s < 5400.0 {
        format!("≈ {:.0} min", s / 60.0)
    } else {
        format!("≈ {:.1} h", s / 3600.0)
    }
}
