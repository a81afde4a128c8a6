//! Raw data: the registry of input files (`data/registry.toml`: name, file, size, sha256,
//! mirrors), their verification, and readers for the raw formats (IDX for MNIST). Experiments
//! name registered files; the pipeline hashes them into stage keys.

pub mod fetch;
pub mod googlebooks;
pub mod idx;
pub mod registry;
