//! `symbreak bench`: throughput of the hot loops against a same-machine reference.
//!
//! The reference is a dense f64 matrix product (ndarray's matrixmultiply kernel, 512³). The
//! RBM's block-Gibbs sweep and exact update work on 10 × 10 matrices, far from that regime, so
//! the ratio says how much of the machine's dense throughput the training loop uses.

use std::time::Instant;

use ndarray::Array2;

use crate::analysis::lattice::free_field_kernel;
use crate::linalg::spd_inverse_and_log_det;
use crate::models::rbm::GaussianRbm;
use crate::models::rbm::train::{NegativePhase, TrainOptions, train};
use crate::seed::rng_for;

/// One measured figure.
#[derive(Debug, serde::Serialize)]
pub struct BenchResult {
    pub name: String,
    pub per_second: f64,
    pub unit: String,
    pub gflops: f64,
    pub ratio_to_reference: f64,
}

fn time<F: FnMut()>(mut f: F, min_seconds: f64) -> (f64, usize) {
    let start = Instant::now();
    let mut reps = 0;
    while start.elapsed().as_secs_f64() < min_seconds {
        f();
        reps += 1;
    }
    (start.elapsed().as_secs_f64(), reps)
}

/// Runs the benchmarks (about a second each).
pub fn run() -> crate::Result<Vec<BenchResult>> {
    let n = 512;
    let a = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 11) as f64 * 0.1);
    let b = a.t().to_owned();
    let (secs, reps) = time(
        || {
            std::hint::black_box(a.dot(&b));
        },
        1.0,
    );
    let reference = 2.0 * (n * n * n) as f64 * reps as f64 / secs / 1e9;
    let mut out = vec![BenchResult {
        name: "reference: f64 matrix product 512³".into(),
        per_second: reps as f64 / secs,
        unit: "products/s".into(),
        gflops: reference,
        ratio_to_reference: 1.0,
    }];

    let mut rng = rng_for(1, "bench");
    let model = GaussianRbm::random(10, 10, 3.0, 1.0, 0.3, &mut rng);
    let chains_n = 1024;
    let mut chains = Array2::ones((chains_n, 10));
    let (secs, reps) = time(|| model.gibbs_sweep(&mut chains, &mut rng), 1.0);
    // Two products of (B × 10)·(10 × 10) per sweep.
    let flops = 4.0 * (chains_n * 10 * 10) as f64;
    let gflops = flops * reps as f64 / secs / 1e9;
    out.push(BenchResult {
        name: format!("block-Gibbs sweep, {chains_n} chains, N_v = N_h = 10"),
        per_second: reps as f64 * chains_n as f64 / secs,
        unit: "chain-sweeps/s".into(),
        gflops,
        ratio_to_reference: gflops / reference,
    });

    let (target, _) = spd_inverse_and_log_det(free_field_kernel(10, 4.0).view())?;
    for (label, negative_phase) in [
        ("exact update", NegativePhase::Exact),
        (
            "PCD update, 64 chains, 3 sweeps",
            NegativePhase::Pcd {
                chains: 64,
                gibbs_steps: 3,
            },
        ),
    ] {
        let updates = 2000;
        let options = TrainOptions::plain(0.05, updates, negative_phase);
        let mut m = GaussianRbm::random(10, 10, 3.0, 1.0, 0.1, &mut rng);
        let mut failed = None;
        let (secs, reps) = time(
            || {
                if let Err(e) = train(&mut m, target.view(), &options, &mut rng, &mut |_| {}) {
                    failed = Some(e);
                }
            },
            1.0,
        );
        if let Some(e) = failed {
            return Err(e);
        }
        out.push(BenchResult {
            name: label.into(),
            per_second: (reps * updates) as f64 / secs,
            unit: "updates/s".into(),
            gflops: f64::NAN,
            ratio_to_reference: f64::NAN,
        });
    }
    Ok(out)
}
