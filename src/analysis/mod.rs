//! Analysis shared by experiments: lattice observables, resampling errors and relaxation-time
//! fits, order statistics, alignment of embedding chains with each other and with a truth, and
//! agreement of fitted with true per-word quantities. Nothing here trains a model or touches the file system.

pub mod agreement;
pub mod alignment;
pub mod jackknife;
pub mod lattice;
pub mod relaxation;
pub mod stats;
