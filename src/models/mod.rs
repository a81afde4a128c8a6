//! Model families. Each model is a plain type with its parameters, its likelihood and gradients,
//! and its samplers; training loops take validated options and report trajectories. Models never
//! read specs or write files.

pub mod dwe;
pub mod goldstone;
pub mod rbm;
