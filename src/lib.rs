//! symbreak reproduces, end to end, the experiments behind physics-of-learning papers.
//!
//! Data flows one way: a TOML spec ([`spec`]) is validated into typed parameters, an experiment
//! family ([`experiments`]) turns it into a plan of stage instances, and the pipeline core
//! ([`pipeline`]) keys, caches and runs them and assembles a versioned result folder. Models
//! ([`models`]) and analysis ([`analysis`]) never read specs or write files; figures and tables
//! ([`emit`]) never train.

pub mod analysis;
pub mod bench;
pub mod cli;
pub mod compare;
pub mod corpus;
pub mod data;
pub mod emit;
pub mod error;
pub mod experiments;
pub mod fsutil;
pub mod linalg;
pub mod models;
pub mod pipeline;
pub mod report;
pub mod seed;
pub mod spec;

pub use error::{Error, Result};
