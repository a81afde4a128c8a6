//! `symbreak bench`: throughput of the hot loops against a same-machine reference.
//!
//! The reference is a dense f64 matrix product (ndarray's matrixmultiply kernel, 512³). The
//! RBM's block-Gibbs sweep and exact update work on 10 × 10 matrices, far from that regime, so
//! the ratio says how much of the machine's dense throughput the training loop uses. The
//! Goldstone gauge phase is measured at a dynamic-word-embedding-like size. The dynamic
//! skip-gram's gradient is measured against its own reference: the same f32 GEMMs without the
//! element-wise work, same shapes, same parallelism.

use std::time::Instant;

use ndarray::Array2;

use crate::analysis::lattice::free_field_kernel;
use crate::linalg::spd_inverse_and_log_det;
use crate::models::goldstone::gauge::GaugeOptions;
use crate::models::rbm::GaussianRbm;
use crate::models::rbm::train::{NegativePhase, TrainOptions, train};
use crate::seed::rng_for;
use crate::spec::gauge::GaugeVariant;

/// One measured figure.
#[derive(Debug, serde::Serialize)]
pub struct BenchResult {
    pub name: String,
    pub per_second: f64,
    pub unit: String,
    pub gflops: f64,
    pub ratio_to_reference: f64,
}

/// Seconds and repetitions of `f` in the fastest of three windows of at least `min_seconds / 3`
/// each, after one untimed warm-up call (first calls grow buffers and fault in fresh pages).
/// The machines here are shared virtual ones whose throughput drifts by 10–15 % over seconds;
/// the fastest window is the least disturbed one.
fn time<F: FnMut()>(mut f: F, min_seconds: f64) -> (f64, usize) {
    f();
    let window = |f: &mut F| {
        let start = Instant::now();
        let mut reps = 0;
        while start.elapsed().as_secs_f64() < min_seconds / 3.0 {
            f();
            reps += 1;
        }
        (start.elapsed().as_secs_f64(), reps)
    };
    (0..3)
        .map(|_| window(&mut f))
        .min_by(|a, b| (a.0 / a.1 as f64).total_cmp(&(b.0 / b.1 as f64)))
        .expect("three windows")
}

/// Groups that `symbreak bench --only` can run alone.
pub const GROUPS: &[&str] = &["dwe", "googlebooks"];

/// Runs the benchmarks (about a second each), or only the group `only`.
pub fn run(only: Option<&str>) -> crate::Result<Vec<BenchResult>> {
    match only {
        None => {}
        Some("googlebooks") => return ngram_reduction(),
        Some("dwe") => {
            let mut out = dynamic_skip_gram()?;
            out.push(dense_skip_gram());
            return Ok(out);
        }
        Some(other) => {
            return Err(crate::Error::Other(format!(
                "unknown bench group {other:?}; known: {}",
                GROUPS.join(", ")
            )));
        }
    }
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
    out.extend(dynamic_skip_gram()?);
    out.push(dense_skip_gram());
    out.extend(ngram_reduction()?);
    Ok(out)
}

/// Reading Google Books v2 slices: decompressed MB per second of the one-core streaming
/// reduction (parse, intern, window-weighted pairs) against `zcat file > /dev/null` on the same
/// generated 5-gram file (~150 MB of text), when `zcat` exists. `gflops` is 0: not a FLOP count.
fn ngram_reduction() -> crate::Result<Vec<BenchResult>> {
    use crate::corpus::ngram::{Case, PairMode, PosMode, ReduceOptions, reduce_file, synthetic};
    use std::io::Write;
    let dir = tempfile::tempdir().map_err(|e| crate::Error::Other(e.to_string()))?;
    let path = dir
        .path()
        .join("googlebooks-eng-all-5gram-20120701-bench.gz");
    let file = std::fs::File::create(&path).map_err(|e| crate::Error::io("creating", &path, e))?;
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    for part in 0..4 {
        let text = synthetic::slice(part, 5, 25_000, 1800, 2008);
        gz.write_all(text.as_bytes())
            .map_err(|e| crate::Error::io("writing", &path, e))?;
    }
    gz.finish()
        .map_err(|e| crate::Error::io("writing", &path, e))?;
    let options = ReduceOptions {
        window: 4,
        first_year: 1800,
        last_year: 2008,
        case: Case::Keep,
        pos: PosMode::Untagged,
        pairs: PairMode::First,
        max_malformed: 0.0,
        n: Some(5),
    };
    let mut text_bytes = 0;
    let (secs, reps) = time(
        || {
            let (_, stats) = reduce_file(&path, &options).expect("generated slice reduces");
            text_bytes = stats.text_bytes;
        },
        6.0,
    );
    let ours = text_bytes as f64 / 1e6 * reps as f64 / secs;
    let zcat = time_zcat(&path).map(|s| text_bytes as f64 / 1e6 / s);
    let mut out = vec![BenchResult {
        name: format!(
            "Google Books 5-gram reduce, {:.0} MB text, 1 core",
            text_bytes as f64 / 1e6
        ),
        per_second: ours,
        unit: "MB/s".into(),
        gflops: 0.0,
        ratio_to_reference: zcat.map_or(f64::NAN, |z| ours / z),
    }];
    if let Some(z) = zcat {
        out.push(BenchResult {
            name: "reference: zcat > /dev/null, same file".into(),
            per_second: z,
            unit: "MB/s".into(),
            gflops: 0.0,
            ratio_to_reference: 1.0,
        });
    }
    Ok(out)
}

/// Fastest of three `zcat path > /dev/null` runs, in seconds; None without zcat.
fn time_zcat(path: &std::path::Path) -> Option<f64> {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let status = std::process::Command::new("zcat")
                .arg(path)
                .stdout(std::process::Stdio::null())
                .status()
                .ok()?;
            status.success().then(|| start.elapsed().as_secs_f64())
        })
        .collect::<Option<Vec<f64>>>()?
        .into_iter()
        .min_by(f64::total_cmp)
}

/// A dynamic skip-gram with random counts (40 draws of a uniform context per word and step,
/// weights ¼…1), `steps` yearly steps.
/// Random counts: `draws_per_row` context draws per word and step (40 of V = 1000 is as sparse
/// as a yearly corpus; 4V fills ~98 % of the pairs, as the planted benchmark's counts do).
fn synthetic_skip_gram(
    steps: usize,
    vocabulary: usize,
    draws_per_row: usize,
) -> crate::models::dwe::DynamicSkipGram {
    use rand::RngExt;
    let mut rng = rng_for(2, "bench/dwe");
    let step_counts = (0..steps)
        .map(|_| {
            let mut counts = crate::corpus::counts::PairCounts::new();
            for i in 0..vocabulary as u32 {
                for _ in 0..draws_per_row {
                    let j = rng.random_range(0..vocabulary as u32);
                    *counts.entry((i, j)).or_insert(0.0) += 0.25 * rng.random_range(1..5) as f64;
                }
            }
            let (unigram, smoothed) =
                crate::corpus::counts::negative_marginals(&counts, vocabulary, 0.75);
            crate::models::dwe::StepCounts {
                positive: counts.iter().map(|(&(i, j), &n)| (i, j, n)).collect(),
                unigram,
                smoothed,
            }
        })
        .collect();
    let times: Vec<f64> = (0..steps).map(|t| 1790.0 + t as f64).collect();
    crate::models::dwe::DynamicSkipGram {
        steps: step_counts,
        vocabulary,
        eta: 1.0,
        prior_variance: 1.0,
        couplings: crate::models::dwe::DynamicSkipGram::ou_couplings(&times, 1e-3),
    }
}

/// Floating-point operations of the three GEMMs of a skip-gram block of `size` × `size` at
/// dimension `d`, over `steps` steps.
fn skip_gram_flops(steps: usize, d: usize, size: usize) -> f64 {
    6.0 * (steps * d * size * size) as f64
}

/// Deterministic, sign-mixed parameters (T × d × 2V) of magnitude up to 8·`scale`.
fn patterned_parameters(steps: usize, d: usize, v: usize, scale: f64) -> ndarray::Array3<f64> {
    ndarray::Array3::from_shape_fn((steps, d, 2 * v), |(t, k, i)| {
        (((t * 31 + k * 7 + i * 3) % 17) as f64 - 8.0) * scale
    })
}

/// The block gradient of `model` at `z` on `words` × `contexts`, timed into `block` and set
/// against `gemm` (GFLOP/s of the same GEMMs alone); also the seconds per gradient.
fn timed_gradient(
    name: String,
    (model, index): (
        &crate::models::dwe::DynamicSkipGram,
        &crate::models::dwe::kernel::CountsIndex,
    ),
    z: &ndarray::Array3<f64>,
    (words, contexts): (&[usize], &[usize]),
    gemm: f64,
    block: &mut crate::models::dwe::BlockGradient,
) -> (BenchResult, f64) {
    use crate::models::dwe::kernel::Want;
    let (secs, reps) = time(
        || model.fast_block_into(index, z, words, contexts, Want::Gradient, block),
        1.0,
    );
    let steps = z.shape()[0];
    let gflops = skip_gram_flops(steps, z.shape()[1], words.len()) * reps as f64 / secs / 1e9;
    let result = BenchResult {
        name,
        per_second: reps as f64 / secs,
        unit: "gradients/s".into(),
        gflops,
        ratio_to_reference: gflops / gemm,
    };
    (result, secs / reps as f64)
}

/// GFLOP/s of the three f32 GEMMs of a skip-gram block (X = UᵀV, VGᵀ, UG) of `size` × `size`
/// at dimension `d`, for `steps` steps in parallel: the reference the kernel is measured by.
fn gemm_reference(steps: usize, d: usize, size: usize) -> f64 {
    use ndarray::linalg::general_mat_mul;
    use rayon::prelude::*;
    let u = Array2::<f32>::from_elem((d, size), 0.1);
    let w = Array2::<f32>::from_elem((d, size), 0.2);
    let (secs, reps) = time(
        || {
            // Output buffers per worker, as the fit keeps them: the reference pays for no
            // allocation or page fault that the kernel does not.
            (0..steps).into_par_iter().for_each_init(
                || {
                    (
                        Array2::<f32>::zeros((size, size)),
                        Array2::<f32>::zeros((d, size)),
                        Array2::<f32>::zeros((d, size)),
                    )
                },
                |(x, gu, gw), _| {
                    general_mat_mul(1.0, &u.t(), &w, 0.0, x);
                    general_mat_mul(1.0, &w, &x.t(), 0.0, gu);
                    general_mat_mul(1.0, &u, &*x, 0.0, gw);
                    std::hint::black_box((gu, gw));
                },
            );
        },
        1.0,
    );
    skip_gram_flops(steps, d, size) * reps as f64 / secs / 1e9
}

/// The minibatch gradient at the planted benchmark's sizes (T = 100, V = 200, d = 10,
/// L' = 100), where nearly every pair has counts, against its GEMMs: at d = 10 the element-wise
/// part, not the GEMMs, sets the pace.
fn dense_skip_gram() -> BenchResult {
    let (steps, v, d, minibatch) = (100, 200, 10, 100);
    let model = synthetic_skip_gram(steps, v, 4 * v);
    let index = crate::models::dwe::kernel::CountsIndex::new(&model);
    let z = patterned_parameters(steps, d, v, 0.05);
    let mut rng = rng_for(4, "bench/dwe/dense");
    let words = crate::models::dwe::train::draw_block(&mut rng, v, minibatch);
    let contexts = crate::models::dwe::train::draw_block(&mut rng, v, minibatch);
    let name = format!(
        "skip-gram gradient, dense counts, T = {steps}, V = {v}, d = {d}, L' = {minibatch} \
         (ratio: to its GEMMs)"
    );
    let gemm = gemm_reference(steps, d, minibatch);
    let mut block = crate::models::dwe::BlockGradient::empty();
    let counts = (&model, &index);
    timed_gradient(name, counts, &z, (&words, &contexts), gemm, &mut block).0
}

/// The dynamic skip-gram's gradient (full batch and one minibatch block) against the same
/// three f32 GEMMs per step alone (X = UᵀV, VGᵀ, UG; steps in parallel): the ratio is the
/// share of GEMM throughput the fit achieves. Also one Adam block update and one gauge phase
/// relative to k1 = 10 minibatch iterations.
fn dynamic_skip_gram() -> crate::Result<Vec<BenchResult>> {
    let (steps, v, d, minibatch) = (229, 1000, 50, 250);
    let model = synthetic_skip_gram(steps, v, 40);
    let index = crate::models::dwe::kernel::CountsIndex::new(&model);
    let z = patterned_parameters(steps, d, v, 0.02);
    let mut out = Vec::new();
    let gemm_full = gemm_reference(steps, d, v);
    let gemm_block = gemm_reference(steps, d, minibatch);
    let all: Vec<usize> = (0..v).collect();
    let mut rng = rng_for(3, "bench/dwe/blocks");
    let mut adam = crate::models::dwe::BlockAdam::new((steps, d, 2 * v), 0.9, 0.999, 1e-8);
    let mut iteration_seconds = f64::NAN;
    for (label, size, gemm) in [
        ("full batch", v, gemm_full),
        ("minibatch", minibatch, gemm_block),
    ] {
        out.push(BenchResult {
            name: format!(
                "reference: f32 GEMMs of the skip-gram {label}, T = {steps}, d = {d}, L' = {size}"
            ),
            per_second: gemm / (skip_gram_flops(steps, d, size) / 1e9),
            unit: "evaluations/s".into(),
            gflops: gemm,
            ratio_to_reference: 1.0,
        });
        let (words, contexts) = if size >= v {
            (all.clone(), all.clone())
        } else {
            (
                crate::models::dwe::train::draw_block(&mut rng, v, size),
                crate::models::dwe::train::draw_block(&mut rng, v, size),
            )
        };
        let mut block = crate::models::dwe::BlockGradient::empty();
        let name = format!("skip-gram gradient, {label} (ratio: to its GEMMs)");
        let (result, gradient_seconds) = timed_gradient(
            name,
            (&model, &index),
            &z,
            (&words, &contexts),
            gemm,
            &mut block,
        );
        out.push(result);
        if size < v {
            let mut params = z.clone();
            let (secs, reps) = time(|| adam.step(&mut params, &block, 1e-3), 1.0);
            out.push(BenchResult {
                name: format!("lazy Adam update of one L' = {size} block"),
                per_second: reps as f64 / secs,
                unit: "updates/s".into(),
                gflops: f64::NAN,
                ratio_to_reference: f64::NAN,
            });
            iteration_seconds = gradient_seconds + secs / reps as f64;
        }
    }
    // One gauge phase of the dwe-sotu default (exp-clip, k2 = 10) on Z (T × d × 2V), relative
    // to the k1 = 10 minibatch iterations (gradient + Adam) it follows.
    let k1 = 10;
    let options = GaugeOptions::for_variant(GaugeVariant::ExpClip, 10)
        .ok_or_else(|| crate::error::Error::Other("exp-clip is a gauge variant".into()))?;
    let (gauge, _) =
        crate::models::goldstone::train::gauge_schedule(Some(&(k1, options)), &model.couplings, d)?;
    if let Some(mut field) = gauge {
        let mut params = z.clone();
        let (secs, reps) = time(
            || {
                field.phase(&mut params);
            },
            1.0,
        );
        let phase = secs / reps as f64;
        out.push(BenchResult {
            name: format!(
                "gauge phase, T = {steps}, d = {d}, 2V = {} (ratio: to {k1} iterations)",
                2 * v
            ),
            per_second: 1.0 / phase,
            unit: "phases/s".into(),
            gflops: f64::NAN,
            ratio_to_reference: phase / (k1 as f64 * iteration_seconds),
        });
    }
    Ok(out)
}
