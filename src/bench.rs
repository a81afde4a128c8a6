//! `symbreak bench`: throughput of the hot loops against a same-machine reference.
//!
//! The reference is a dense f64 matrix product (ndarray's matrixmultiply kernel, 512³). The
//! RBM's block-Gibbs sweep and exact update work on 10 × 10 matrices, far from that regime, so
//! the ratio says how much of the machine's dense throughput the training loop uses. The
//! Goldstone gauge phase is measured at a dynamic-word-embedding-like size.

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

    // Single-precision GEMM, the kernel of the dynamic-word-embedding blocks: ndarray's
    // matrixmultiply and faer, same shapes, as candidates for the word-embedding fit.
    let a32 = a.mapv(|x| x as f32);
    let b32 = b.mapv(|x| x as f32);
    let fa = faer::Mat::<f32>::from_fn(n, n, |i, j| a32[[i, j]]);
    let fb = faer::Mat::<f32>::from_fn(n, n, |i, j| b32[[i, j]]);
    let kernels: [(&str, &mut dyn FnMut()); 2] = [
        ("ndarray", &mut || {
            std::hint::black_box(a32.dot(&b32));
        }),
        ("faer", &mut || {
            std::hint::black_box(&fa * &fb);
        }),
    ];
    for (library, kernel) in kernels {
        let (secs, reps) = time(kernel, 1.0);
        let gflops = 2.0 * (n * n * n) as f64 * reps as f64 / secs / 1e9;
        out.push(BenchResult {
            name: format!("f32 matrix product 512³ ({library})"),
            per_second: reps as f64 / secs,
            unit: "products/s".into(),
            gflops,
            ratio_to_reference: gflops / reference,
        });
    }

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

    // One Goldstone-GD gauge phase at a dynamic-word-embedding-like size: the neighbour
    // products and the rotation (2·T·d²·N flop each), k2 preconditioned steps (2·T²·d² for
    // L⁺, about 16·T·d³ for the truncated-loss gradient).
    let (steps, d, columns, k2) = (188, 50, 1000, 10);
    let laplacian = crate::models::goldstone::ChainLaplacian::uniform(steps, 1000.0)?;
    let mut options = crate::models::goldstone::gauge::GaugeOptions::paper(k2);
    options.exact_exponential = true;
    options.clip_gauge = true;
    let mut field = crate::models::goldstone::gauge::GaugeField::new(&laplacian, d, options);
    let mut z = ndarray::Array3::from_shape_fn((steps, d, columns), |(t, k, i)| {
        (((t * 31 + k * 7 + i * 3) % 17) as f64 - 8.0) * 0.01
    });
    let (secs, reps) = time(
        || {
            field.phase(&mut z);
        },
        1.0,
    );
    let (t, d, n, k2) = (steps as f64, d as f64, columns as f64, k2 as f64);
    let flops = 4.0 * t * d * d * n + k2 * (2.0 * t * t * d * d + 16.0 * t * d * d * d);
    let gflops = flops * reps as f64 / secs / 1e9;
    out.push(BenchResult {
        name: format!(
            "Goldstone gauge phase, T = {steps}, d = {}, N = {columns}, k2 = {}",
            d as usize, k2 as usize
        ),
        per_second: reps as f64 / secs,
        unit: "phases/s".into(),
        gflops,
        ratio_to_reference: gflops / reference,
    });
    Ok(out)
}
