//! Analysis shared by experiments: lattice observables, resampling errors and relaxation-time
//! fits, order statistics. Nothing here trains a model or touches the file system.

pub mod jackknife;
pub mod lattice;
pub mod relaxation;
pub mod stats;
