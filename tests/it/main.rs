//! Integration tests: the real `symbreak` binary, run in fresh temporary workspaces on the
//! smoke spec. `util` holds the harness; each module tests one capability.

// Test code panics on failure by design.
#![allow(clippy::unwrap_used)]

mod util;

mod cache;
mod claims;
mod cli;
mod data;
mod diff;
mod dwe;
mod goldstone;
mod goldstone_modes;
mod googlebooks;
mod integrity;
mod mnist;
mod physics;
mod results;
mod slurm;
mod specs;
