//! What a cell will need in memory, from the inferred shapes alone (nothing
//! is allocated): weights, their gradients and the optimizer's state,
//! activations kept for the backward pass at the configured batch size (the
//! recurrent kernels' per-step tapes included), the data on the device, and
//! the process itself (libtorch's runtime). An estimate, used to refuse a
//! cell that cannot fit before any data is read, and by the scheduler to keep
//! parallel cells under the limit together.
use super::shape::{infer, Inferred};
use crate::config::{CellKind, Config, DataSpec, LayerSpec, Optimizer};

/// Bytes per float.
const F32: usize = 4;

/// A CPU process with libtorch loaded, before any model's own memory
/// (measured: `seqlab bench` of the book's dense model, whose weights and
/// activations are a few MiB, peaks at 135 MiB here).
pub const RUNTIME_BYTES: usize = 128 << 20;

/// The estimate, in bytes, by contributor.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub weights: usize,
    pub gradients: usize,
    pub optimizer: usize,
    pub activations: usize,
    pub data: usize,
    pub runtime: usize,
    /// The layer with the most weights + activations: (label, bytes).
    pub largest: Option<(String, usize)>,
}

impl Estimate {
    pub fn total(&self) -> usize {
        self.weights + self.gradients + self.optimizer + self.activations + self.data + self.runtime
    }

    /// One line for `describe`: the total and its parts.
    pub fn line(&self, batch: usize) -> String {
        format!(
            "Memory (estimate, batch {batch}): {} = weights {} + gradients {} + optimizer {} + activations {} + data {} + runtime {}",
            human(self.total()),
            human(self.weights),
            human(self.gradients),
            human(self.optimizer),
            human(self.activations),
            human(self.data),
            human(self.runtime)
        )
    }
}

/// Bytes in binary units: `512 B`, `3.4 KiB`, `12.0 MiB`, `1.5 GiB`, `11 TiB`.
pub fn human(bytes: usize) -> String {
    let b = bytes as f64;
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut k = 0;
    let mut v = b;
    while v >= 1024.0 && k + 1 < units.len() {
        v /= 1024.0;
        k += 1;
    }
    if k == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[k])
    }
}

/// Extra copies of the weights an optimizer keeps.
fn optimizer_copies(o: &Optimizer) -> usize {
    match o {
        Optimizer::Rmsprop { .. } => 1,
        Optimizer::Adam { .. } => 2,
        Optimizer::Sgd { momentum, .. } => usize::from(*momentum != 0.0),
    }
}

/// Floats a layer keeps per sample for the backward pass: its output, and
/// for recurrent layers the per-step tape (gates and states of every step).
fn kept_per_sample(layer: &LayerSpec, inferred: &Inferred, i: usize, input_steps: usize) -> usize {
    let out: usize = inferred.layers[i].output.dims.iter().product();
    // Per step and unit, forward and backward together: the gates, states
    // and masks the kernels' tapes keep, and the gradients of the same size
    // the backward pass allocates (calibrated on `seqlab bench` peaks of
    // 2026-12-04, after the kernel stopped keeping per-step projections:
    // GRU(32), GRU(32) + GRU(64) and the Bidirectional GRU on Jena, 7–23 %
    // above; the IMDB LSTM and Bidirectional LSTM, 4–7 % above).
    let tape = |kind: CellKind, units: usize| {
        let per_step = match kind {
            CellKind::Lstm => 20 * units,
            CellKind::Gru => 10 * units,
            CellKind::SimpleRnn => 6 * units,
        };
        input_steps * per_step
    };
    // A convolution in training multiplies unfolded windows: its input times the kernel.
    if let LayerSpec::Conv1d { kernel_size, .. } = layer {
        let input: usize = match inferred.wiring.sources[i].first() {
            Some(super::graph::Src::Layer(j)) => inferred.layers[*j].output.dims.iter().product(),
            _ => inferred.input.dims.iter().product(),
        };
        return out + input * kernel_size;
    }
    let recurrent = match layer {
        LayerSpec::Bidirectional { layer: inner, .. } => {
            let (kind, r) = inner.parts();
            2 * tape(kind, r.units)
        }
        other => other
            .recurrent()
            .map(|(kind, r)| tape(kind, r.units))
            .unwrap_or(0),
    };
    out + recurrent
}

/// Bytes of the data a run holds: the table (Jena: rows × 14, three copies),
/// or the padded token ids of every review (int64).
fn data_bytes(config: &Config) -> usize {
    match &config.data {
        DataSpec::Jena(j) => {
            // The table as read, its normalised copy and the device tensor,
            // plus each row's timestamp text.
            let rows = j.splits.test[1].max(j.splits.val[1]).max(j.splits.train[1]);
            rows * (3 * super::shape::JENA_FEATURES * F32 + 48)
        }
        DataSpec::Imdb(i) => 50_000 * i.maxlen * 8,
        // The text itself (its file size) plus its padded ids, about 8 bytes per character.
        DataSpec::Text(t) => std::fs::metadata(crate::data::series::resolve_path(&t.path))
            .map(|m| m.len() as usize * 8)
            .unwrap_or(0),
        // A table's size is known once it is read; its file size is a fair
        // upper bound for the floats parsed from its text.
        DataSpec::Csv(c) => std::fs::metadata(crate::data::series::resolve_path(&c.path))
            .map(|m| m.len() as usize)
            .unwrap_or(0),
    }
}

/// The estimate of a config (its shapes must check).
pub fn estimate(config: &Config) -> Result<Estimate, Vec<String>> {
    let inferred = infer(config)?;
    let batch = config.data.batch_size().max(1);
    let params = inferred.total_params;
    let weights = params * F32;
    let mut activations = 0usize;
    let mut largest: Option<(String, usize)> = None;
    for (i, layer) in config.layers.iter().enumerate() {
        let steps = match inferred.wiring.sources[i].first() {
            Some(super::graph::Src::Layer(j)) => inferred.layers[*j].output.dims.first().copied(),
            _ => inferred.input.dims.first().copied(),
        }
        .unwrap_or(1);
        let kept = kept_per_sample(layer, &inferred, i, steps) * batch * F32;
        activations += kept;
        let mine = kept
            + inferred.layers[i].params * F32 * (2 + optimizer_copies(&config.train.optimizer));
        if largest.as_ref().is_none_or(|(_, b)| mine > *b) {
            largest = Some((inferred.layers[i].label.clone(), mine));
        }
    }
    // The input batch itself.
    activations += inferred.input.dims.iter().product::<usize>() * batch * F32;
    Ok(Estimate {
        weights,
        gradients: weights,
        optimizer: weights * optimizer_copies(&config.train.optimizer),
        activations,
        data: data_bytes(config),
        runtime: RUNTIME_BYTES,
        largest,
    })
}

/// The memory a cell's estimate is held against: the host's RAM for CPU
/// cells, the device's own memory for CUDA cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pool {
    Host,
    Cuda(usize),
}

impl Pool {
    /// The pool of a cell, where `auto` places it (see `placement`); a
    /// device that does not resolve counts as the host (the cell then fails
    /// with the device error itself).
    pub fn of_config(config: &crate::config::Config) -> Pool {
        match super::placement::place(config) {
            Ok(p) => Pool::of_device(p.device),
            Err(_) => Pool::Host,
        }
    }

    fn of_device(device: tch::Device) -> Pool {
        match device {
            tch::Device::Cuda(n) => Pool::Cuda(n),
            _ => Pool::Host,
        }
    }

    pub fn name(self) -> String {
        match self {
            Pool::Host => "RAM".into(),
            Pool::Cuda(n) => format!("cuda:{n} memory"),
        }
    }
}

/// Memory `pool` can give a cell now: `SEQLAB_MEMORY_LIMIT` (bytes) when
/// set, else the kernel's MemAvailable for the host and the free memory NVML
/// reports for a CUDA device (`None` when neither can be read: no limit).
pub fn available(pool: Pool) -> Option<usize> {
    if let Ok(v) = std::env::var("SEQLAB_MEMORY_LIMIT") {
        if let Ok(n) = v.trim().parse() {
            return Some(n);
        }
    }
    match pool {
        Pool::Host => host_available(),
        Pool::Cuda(n) => cuda_free(n),
    }
}

fn host_available() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Free memory of CUDA device `n` from NVML (the driver's management
/// library, loaded at run time; `None` where it is absent). CUDA numbers
/// the devices `CUDA_VISIBLE_DEVICES` names, in its order; NVML numbers all.
fn cuda_free(n: usize) -> Option<usize> {
    let nvml = nvml_wrapper::Nvml::init().ok()?;
    let device = match visible_device(std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref(), n) {
        Some(Visible::Index(i)) => nvml.device_by_index(i).ok()?,
        Some(Visible::Uuid(u)) => nvml.device_by_uuid(u).ok()?,
        None => return None,
    };
    usize::try_from(device.memory_info().ok()?.free).ok()
}

#[derive(Debug, PartialEq)]
enum Visible {
    Index(u32),
    Uuid(String),
}

/// Which physical device CUDA's device `n` is, given `CUDA_VISIBLE_DEVICES`.
fn visible_device(visible: Option<&str>, n: usize) -> Option<Visible> {
    let Some(list) = visible.filter(|v| !v.trim().is_empty()) else {
        return Some(Visible::Index(u32::try_from(n).ok()?));
    };
    let entry = list.split(',').nth(n)?.trim();
    match entry.parse() {
        Ok(i) => Some(Visible::Index(i)),
        Err(_) if entry.starts_with("GPU-") || entry.starts_with("MIG-") => {
            Some(Visible::Uuid(entry.to_string()))
        }
        Err(_) => None,
    }
}

/// `Err` with the message to show when `estimate` cannot fit in `limit`.
pub fn check_fits(estimate: &Estimate, limit: usize, pool: Pool) -> Result<(), String> {
    if estimate.total() <= limit {
        return Ok(());
    }
    let hint = match &estimate.largest {
        Some((label, bytes)) => format!(
            "; the largest part is {label}: {} of weights, their gradients and optimizer state and its activations — did you mean fewer units, a shorter lookback or a smaller batch?",
            human(*bytes)
        ),
        None => String::new(),
    };
    Err(format!(
        "needs about {} (estimate: weights {}, gradients {}, optimizer {}, activations {}, data {}, runtime {}) but {} of {} is available{hint} (--force runs it anyway)",
        human(estimate.total()),
        human(estimate.weights),
        human(estimate.gradients),
        human(estimate.optimizer),
        human(estimate.activations),
        human(estimate.data),
        human(estimate.runtime),
        human(limit),
        pool.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_device_numbers_follow_cuda_visible_devices() {
        assert_eq!(visible_device(None, 1), Some(Visible::Index(1)));
        assert_eq!(visible_device(Some(""), 0), Some(Visible::Index(0)));
        assert_eq!(visible_device(Some("3,1"), 1), Some(Visible::Index(1)));
        assert_eq!(visible_device(Some("3, 1"), 0), Some(Visible::Index(3)));
        assert_eq!(
            visible_device(Some("GPU-8f2e,2"), 0),
            Some(Visible::Uuid("GPU-8f2e".into()))
        );
        assert_eq!(visible_device(Some("2"), 1), None);
        assert_eq!(visible_device(Some("bogus"), 0), None);
    }

    #[test]
    fn a_machine_without_nvml_has_no_cuda_limit() {
        if nvml_wrapper::Nvml::init().is_err() {
            assert_eq!(cuda_free(0), None);
        }
        assert_eq!(Pool::of_device(tch::Device::Cpu), Pool::Host);
        assert_eq!(Pool::of_device(tch::Device::Cuda(2)), Pool::Cuda(2));
        assert_eq!(Pool::Cuda(2).name(), "cuda:2 memory");
    }

    #[test]
    fn human_units() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(3 * 1024 + 512), "3.5 KiB");
        assert_eq!(human(12 << 30), "12.0 GiB");
    }
}
