//! Integration tests: the real `symbreak` binary, run in fresh temporary workspaces on the
//! smoke spec. `util` holds the harness; each module tests one capability.

mod util;

mod cache;
mod physics;
mod results;
mod specs;
