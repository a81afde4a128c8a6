//! symbreak reproduces, end to end, the experiments behind physics-of-learning papers.
//!
//! Data flows one way: a TOML spec ([`spec`]) is validated into typed parameters, an experiment
//! family ([`experiments`]) turns it into a plan of stage instances, and the pipeline core
//! ([`pipeline`]) keys, caches and runs them and assembles a versioned result folder. Models
//! ([`models`]) and analysis ([`analysis`]) never read specs or write files; figures and tables
//! ([`emit`]) never train.

pub(crate) mod analysis;
pub(crate) mod bench;
pub(crate) mod claims;
pub mod cli;
pub(crate) mod compare;
pub mod corpus;
pub mod data;
pub mod emit;
pub(crate) mod error;
pub(crate) mod experiments;
pub(crate) mod fsutil;
pub(crate) mod linalg;
pub(crate) mod models;
pub(crate) mod pipeline;
pub(crate) mod report;
pub(crate) mod seed;
pub(crate) mod spec;

pub use error::{Error, Result};
