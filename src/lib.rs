//! seqlab: a declarative experiment runner for sequence models on libtorch.
//!
//! Data flows one way: `config` (TOML → resolved plan) → `data` (datasets →
//! windows → batches on the device) → `model` (layer specs → tch module) →
//! `train` (loop, optimizer, metrics) → `run` (scheduler, results store) →
//! `report` (plots, tables, diff).
pub mod calendar;
pub mod cli;
pub mod config;
pub mod data;
pub mod doctor;
pub mod model;
pub mod plot;
pub mod predict;
pub mod report;
pub mod results;
pub mod run;
pub mod runtime;
pub mod train;
