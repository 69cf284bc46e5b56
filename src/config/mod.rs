//! The `config` stage: read an experiment file, layer it (defaults < `extends`
//! chain < file < `SEQLAB_*` environment < `--set`), expand its grid into
//! cells (`--sweep` adds axes), each cell into its replicates, and validate
//! each cell before anything touches data.
mod grid;
mod load;
mod schema;
pub mod suggest;
pub mod sweep;
mod validate;
pub mod value_path;

pub use grid::{content_id, expand, replicate_folder, replicate_seed, Cell, Replicate};
pub use load::{load, Loaded};
pub use schema::*;
pub use validate::validate;

/// Errors found in one experiment file, each already phrased for the user
/// ("file: key: what is wrong, what to do").
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

impl ConfigErrors {
    pub fn one(msg: impl Into<String>) -> Self {
        ConfigErrors(vec![msg.into()])
    }
}
