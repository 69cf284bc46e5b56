//! `seqlab bench`: median and spread of train step, validation step and data
//! batch time for experiment files, appended to a CSV with the machine's
//! description, plus a bar chart of train step times.
use super::loss::loss;
use super::optim;
use crate::config::Cell;
use crate::model::Model;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Write as _;
use std::time::Instant;

/// Median and (min, max) of a sample, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub fn spread(mut v: Vec<f64>) -> Spread {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Spread {
        median,
        min: v.first().copied().unwrap_or(0.0),
        max: v.last().copied().unwrap_or(0.0),
    }
}

/// CPU model and core count, for the results CSV.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    format!("{cpu} ({} cores)", crate::runtime::cores())
}

/// The machine column of a row: the CPU, and the GPU when the cell ran on
/// one (`AMD EPYC (16 cores) + cuda:0`).
fn on_device(machine: &str, device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(n) => format!("{machine} + cuda:{n}"),
        _ => machine.to_string(),
    }
}

/// Peak resident memory of this process in MiB (VmHWM).
pub fn peak_memory_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// One benchmark line.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub experiment: String,
    pub cell: String,
    pub train: Spread,
    pub val: Spread,
    pub batch: Spread,
    pub samples_per_second: f64,
    pub paths: String,
    /// Where the cell ran.
    pub device: tch::Device,
}

/// Times one cell: `steps` train steps, 3/5 as many validation steps and
/// data batches, `repeat` times after a warm-up; medians of the repetitions.
/// A train or validation step starts with its batch in memory (the batch's
/// gathering is the third figure), as the Keras and PyTorch references do.
pub fn bench_cell(
    cell: &Cell,
    steps: usize,
    repeat: usize,
    threads: usize,
) -> anyhow::Result<BenchResult> {
    let config = &cell.config;
    tch::set_num_threads(threads as i32);
    tch::manual_seed(config.train.seed as i64);
    let device = crate::model::placement::place(config)?.device;
    let mut data = crate::data::prepare(&config.data, device)?;
    let model = Model::build(config, device, &data.target_inputs)?;
    let mut opt = optim::build(&config.train.optimizer, &model.vs)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.train.seed);
    let bce = config.train.loss.from_logits();
    let out = |x: &tch::Tensor, train: bool| {
        if bce {
            model.forward_logits(x, train)
        } else {
            model.forward(x, train)
        }
    };
    let trainable = model.trainable_params() > 0;
    // One optimisation step on a batch already in memory, as Keras'
    // `train_on_batch` and the PyTorch reference are timed; gathering the
    // batch is timed on its own ("batch ms").
    let mut train_step = |x: &tch::Tensor, y: &tch::Tensor| {
        if trainable {
            let l = loss(config.train.loss, &out(x, true), y);
            model.backward_step(&mut opt, &l);
            l.double_value(&[])
        } else {
            0.0
        }
    };
    for _ in 0..5 {
        let (x, y) = data.train.next_batch(&mut rng);
        train_step(&x, &y);
    }
    let val_steps = (steps * 3 / 5).max(1);
    let (mut train, mut val, mut batch) = (vec![], vec![], vec![]);
    for _ in 0..repeat.max(1) {
        let mut t = Vec::new();
        for _ in 0..steps {
            let (x, y) = data.train.next_batch(&mut rng);
            let s = Instant::now();
            train_step(&x, &y);
            t.push(ms(s));
        }
        train.push(spread(t).median);
    }
    let batch_size = config.data.batch_size() as f64;
    for _ in 0..repeat.max(1) {
        let _guard = tch::no_grad_guard();
        data.val.reset();
        let mut v = Vec::new();
        for _ in 0..val_steps {
            let (x, y) = data.val.next_batch(&mut rng);
            let s = Instant::now();
            let _ = loss(config.train.loss, &out(&x, false), &y).double_value(&[]);
            v.push(ms(s));
        }
        val.push(spread(v).median);
        let mut b = Vec::new();
        for _ in 0..val_steps {
            let s = Instant::now();
            let (x, _) = data.train.next_batch(&mut rng);
            let _ = x.sum(tch::Kind::Float).double_value(&[]);
            b.push(ms(s));
        }
        batch.push(spread(b).median);
    }
    let train = spread(train);
    Ok(BenchResult {
        experiment: cell.experiment.clone(),
        cell: cell.name.clone(),
        samples_per_second: batch_size / (train.median / 1000.0).max(1e-9),
        train,
        val: spread(val),
        batch: spread(batch),
        paths: bench_paths(
            &model.recurrent_paths(true),
            &model.kernel_convs(),
            &model.lookup_recurrents(),
            &model.kernel_attentions(),
            &model.taped_denses(),
        ),
        device,
    })
}

/// The recurrent paths of a model and, after them, its kernel convolutions:
/// `[Kernel] conv: conv1d_0 + max_pool1d_1`, then lookups, attentions and
/// taped Dense layers (`dense: dense_1 → gru_2`).
fn bench_paths(
    recurrent: &[crate::model::recurrent::Path],
    convs: &[String],
    lookups: &[String],
    attentions: &[String],
    denses: &[String],
) -> String {
    let mut paths = format!("{recurrent:?}");
    if !convs.is_empty() {
        paths.push_str(&format!(" conv: {}", convs.join(", ")));
    }
    if !lookups.is_empty() {
        paths.push_str(&format!(" lookup: {}", lookups.join(", ")));
    }
    if !attentions.is_empty() {
        paths.push_str(&format!(" attention: {}", attentions.join(", ")));
    }
    if !denses.is_empty() {
        paths.push_str(&format!(" dense: {}", denses.join(", ")));
    }
    paths
}

/// One CSV line, quoted where a field needs it (grid cell names hold
/// commas, `--set` values quotes).
fn csv_row(fields: &[String]) -> anyhow::Result<Vec<u8>> {
    let mut row = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    row.write_record(fields)?;
    row.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// The latest train-step median of every experiment and settings in a
/// results CSV, in order of first appearance: what the figure shows.
fn latest_per_label(csv_path: &std::path::Path) -> anyhow::Result<Vec<(String, f64)>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(csv_path)?;
    let header = reader.headers()?.clone();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (exp, train, settings) = (col("experiment"), col("train_ms_median"), col("settings"));
    let mut out: Vec<(String, f64)> = Vec::new();
    for record in reader.records() {
        let record = record?;
        let field = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("").to_string();
        let extra = field(settings);
        let label = if extra.is_empty() {
            field(exp)
        } else {
            format!("{} {extra}", field(exp))
        };
        let Ok(value) = field(train).parse::<f64>() else {
            continue;
        };
        match out.iter_mut().find(|(l, _)| *l == label) {
            Some(slot) => slot.1 = value,
            None => out.push((label, value)),
        }
    }
    Ok(out)
}

/// `seqlab bench`'s options (the command line fills them).
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Timed train steps per repetition (validation: 3/5 of it).
    pub steps: usize,
    /// Repetitions; the median is reported.
    pub repeat: usize,
    /// CSV to append results to.
    pub out: std::path::PathBuf,
    /// libtorch intra-op threads (default: all cores).
    pub threads: Option<usize>,
    /// The `--set` overrides, recorded with each result.
    pub sets: Vec<String>,
}

/// Times every cell, appends the results to `out` and draws the chart beside it.
pub fn run(cells: &[Cell], args: &BenchOptions) -> anyhow::Result<i32> {
    let threads = args.threads.unwrap_or_else(crate::runtime::cores);
    let machine = machine();
    let new_file = !args.out.exists();
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut csv = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.out)?;
    if new_file {
        writeln!(csv, "date,machine,threads,experiment,cell,train_ms_median,train_ms_min,train_ms_max,val_ms_median,val_ms_min,val_ms_max,batch_ms_median,samples_per_second,peak_mib,recurrent_path,settings")?;
    }
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%dT%H:%M:%SZ")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "{:<26} {:>14} {:>14} {:>10} {:>10}  path",
        "experiment", "train ms", "val ms", "batch ms", "samples/s"
    );
    let settings = args
        .sets
        .iter()
        .filter(|s| !s.starts_with("data.path="))
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    for cell in cells {
        let r = bench_cell(cell, args.steps, args.repeat, threads)?;
        csv.write_all(&csv_row(&[
            date.clone(),
            on_device(&machine, r.device),
            threads.to_string(),
            r.experiment.clone(),
            r.cell.clone(),
            format!("{:.3}", r.train.median),
            format!("{:.3}", r.train.min),
            format!("{:.3}", r.train.max),
            format!("{:.3}", r.val.median),
            format!("{:.3}", r.val.min),
            format!("{:.3}", r.val.max),
            format!("{:.3}", r.batch.median),
            format!("{:.0}", r.samples_per_second),
            format!("{:.0}", peak_memory_mib()),
            r.paths.clone(),
            settings.clone(),
        ])?)?;
        println!(
            "{:<26} {:>6.2} ±{:<6.2} {:>6.2} ±{:<6.2} {:>10.3} {:>10.0}  {}",
            r.experiment,
            r.train.median,
            (r.train.max - r.train.min) / 2.0,
            r.val.median,
            (r.val.max - r.val.min) / 2.0,
            r.batch.median,
            r.samples_per_second,
            r.paths
        );
    }
    let bars: Vec<crate::plot::Bar> = latest_per_label(&args.out)?
        .into_iter()
        .map(|(label, ms)| crate::plot::Bar::single(label, ms))
        .collect();
    if !bars.is_empty() {
        // benches/results.csv → benches/step_time.png; other files → <name>.png
        let stem = args
            .out
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("bench");
        let png = args.out.with_file_name(if stem == "results" {
            "step_time.png".to_string()
        } else {
            format!("{stem}.png")
        });
        crate::plot::bars(
            &format!("Median train step ({threads} libtorch threads)"),
            "ms per step",
            &bars,
            None,
            &png,
        )?;
        println!("figure: {}", png.display());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    /// A grid cell's commas and a `--set` value's quotes stay inside their
    /// fields: the line reads back as the same fields.
    #[test]
    fn rows_quote_cells_and_settings() {
        let fields: Vec<String> = [
            "2026-12-04T00:00:00Z",
            "AMD EPYC (2 cores)",
            "2",
            "ett_dlinear",
            "horizon=96,3.units=96",
            "0.644",
            "[Kernel] conv: conv1d_0 + max_pool1d_1",
            "data.features=[\"OT\", \"HUFL\"]",
        ]
        .map(String::from)
        .to_vec();
        let line = super::csv_row(&fields).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_slice());
        let back: Vec<String> = reader
            .records()
            .next()
            .unwrap()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        assert_eq!(back, fields);
    }
}
