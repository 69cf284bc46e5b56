//! The `run` stage: the scheduler, one cell's run, the results store and locks.
pub mod cell;
pub mod lock;
pub mod scheduler;
pub mod store;
