//! The `train` stage: the loop, optimizers, losses, metrics and progress.
pub mod bench;
pub mod checkpoint;
pub mod confusion;
pub mod fit;
pub mod loss;
pub mod optim;
pub mod probe;
pub mod progress;
pub mod update;

pub use fit::{fit, Fitted, Interrupted};
