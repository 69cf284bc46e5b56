//! The `model` stage: layer specs → a libtorch module, with Keras semantics.
//!
//! `shape` checks the graph and counts parameters without weights; `builder`
//! creates the weights and runs the graph; one file per layer family.
pub mod activation;
pub mod builder;
pub mod conv;
pub mod dense;
pub mod draws;
pub mod forecast;
pub mod graph;
pub mod init;
pub mod kernel;
pub mod memory;
pub mod placement;
pub mod recurrent;
pub mod shape;
pub mod summary;

pub use builder::{device, Model};
pub use shape::{infer, input_shape, Inferred, Shape};

/// The describe table of a config's model.
pub fn describe(config: &crate::config::Config) -> Result<String, Vec<String>> {
    let inferred = infer(config)?;
    let types: Vec<&str> = config.layers.iter().map(|l| l.type_name()).collect();
    let mut table = summary::table(&inferred, &types);
    let estimate = memory::estimate(config)?;
    table.push_str(&estimate.line(config.data.batch_size()));
    table.push('\n');
    Ok(table)
}

/// Serialises the unit tests that draw from libtorch's global random
/// generator: one test reseeding or drawing while another replays its
/// dropout masks would change those masks.
#[cfg(test)]
pub(crate) fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
