//! The `model` stage: layer specs → a libtorch module, with Keras semantics.
//!
//! `shape` checks the graph and counts parameters without weights; `builder`
//! creates the weights and runs the graph; one file per layer family.
pub mod activation;
pub mod builder;
pub mod conv;
pub mod dense;
pub mod embed_conv;
pub mod graph;
pub mod gru_kernel;
pub mod init;
pub mod recurrent;
pub mod shape;
pub mod small_gemm;
pub mod summary;
pub mod tape;
pub mod team;

pub use builder::{device, Model};
pub use shape::{infer, input_shape, Inferred, Shape};

/// The describe table of a config's model.
pub fn describe(config: &crate::config::Config) -> Result<String, Vec<String>> {
    let inferred = infer(config)?;
    let types: Vec<&str> = config.layers.iter().map(|l| l.type_name()).collect();
    Ok(summary::table(&inferred, &types))
}
