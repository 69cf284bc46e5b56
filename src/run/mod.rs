//! The `run` stage: the scheduler, one cell's run (in a worker process of its
//! own), the results store and locks, Slurm submission and `seqlab status`.
pub mod budget;
pub mod cell;
pub mod lock;
pub mod scheduler;
pub mod slurm;
pub mod status;
pub mod worker;
