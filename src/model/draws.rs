//! Every random number a model draws while training goes through here
//! (dropout masks, and the seeds of kernels that draw their own masks, by
//! libtorch's global generator), and is logged: tch can
//! neither read nor set that generator's state, so a run resumed from a
//! checkpoint brings it to where an uninterrupted run's is by drawing the
//! same masks again ([`replay`]), after the model's initialisation drew its
//! weights from the same seed. The masks depend only on shape and rate, not
//! on values, so a replay costs a fraction of a step per step.
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use tch::{Kind, Tensor};

/// One mask: the input's shape, the rate, and whether it was `f64`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draw {
    pub shape: Vec<i64>,
    pub rate: f64,
    #[serde(default)]
    pub double: bool,
    /// A kernel's seed ([`seed`]) rather than a mask.
    #[serde(default)]
    pub seed: bool,
}

/// The draws of a run so far: runs of consecutive training steps that drew
/// the same masks (`(steps, masks of one step)`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrawLog {
    pub runs: Vec<(u64, Vec<Draw>)>,
}

#[derive(Default)]
struct Log {
    step: Vec<Draw>,
    done: DrawLog,
}

static LOG: Mutex<Log> = Mutex::new(Log {
    step: Vec::new(),
    done: DrawLog { runs: Vec::new() },
});

fn log() -> std::sync::MutexGuard<'static, Log> {
    LOG.lock().unwrap_or_else(|p| p.into_inner())
}

/// `x.dropout(rate, train)`, logged when it draws.
pub fn dropout(x: &Tensor, rate: f64, train: bool) -> Tensor {
    if train && rate > 0.0 {
        log().step.push(Draw {
            shape: x.size(),
            rate,
            double: x.kind() == Kind::Double,
            seed: false,
        });
    }
    x.dropout(rate, train)
}

/// A 64-bit seed from libtorch's CPU generator, logged, for a kernel that
/// draws its masks with a counter-based generator of its own (the same bits
/// whatever thread computes which element).
pub fn seed() -> u64 {
    log().step.push(Draw {
        shape: Vec::new(),
        rate: 0.0,
        double: false,
        seed: true,
    });
    draw_seed()
}

fn draw_seed() -> u64 {
    let t = Tensor::randint(i64::MAX, [1], (Kind::Int64, tch::Device::Cpu));
    t.int64_value(&[0]) as u64
}

/// Closes a training step's draws into the log.
pub fn end_step() {
    let mut l = log();
    let step = std::mem::take(&mut l.step);
    match l.done.runs.last_mut() {
        Some((n, draws)) if *draws == step => *n += 1,
        _ => l.done.runs.push((1, step)),
    }
}

/// The draws so far (for a checkpoint).
pub fn snapshot() -> DrawLog {
    log().done.clone()
}

/// Starts an empty log (a run from its first step).
pub fn reset() {
    *log() = Log::default();
}

/// Draws `past` again on `device`, leaving the generator where the run that
/// logged it left it, and continues its log.
pub fn replay(past: &DrawLog, device: tch::Device) {
    let _guard = tch::no_grad_guard();
    for (steps, draws) in &past.runs {
        for _ in 0..*steps {
            for d in draws {
                if d.seed {
                    draw_seed();
                    continue;
                }
                let kind = if d.double { Kind::Double } else { Kind::Float };
                let _ = Tensor::ones(d.shape.as_slice(), (kind, device)).dropout(d.rate, true);
            }
        }
    }
    *log() = Log {
        step: Vec::new(),
        done: past.clone(),
    };
}
