//! `symbreak bench`: throughput of the hot loops, each as a ratio against a limit of this
//! machine measured in the same run.
//!
//! The limit is the machine's best matrix product: for each shape a loop uses, the faster of
//! two kernels, ndarray's (matrixmultiply) and faer's, with independent products spread over
//! the cores as the fits spread their time steps; and the peak, the same at 1024³. No system
//! BLAS is linked: a fresh machine has none, and faer already reaches one core's FMA limit at
//! these sizes (~110 GFLOP/s f32 per core on the machines here). faer's own thread pool is not
//! compiled in (build cost): the loops never multiply one matrix large enough to need it.
//! Single precision is the reference of the skip-gram kernels, double precision of the RBM and
//! of the gauge phases. Work that is not a matrix product has its own floor: the PCD update
//! against drawing its normals alone, the n-gram reduction against `zcat > /dev/null`.

use std::time::Instant;

use ndarray::Array2;
use ndarray::linalg::general_mat_mul;
use rayon::prelude::*;

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
    /// Achieved GFLOP/s; NaN for work that is not counted in floating-point operations.
    pub gflops: f64,
    /// What `ratio_to_reference` divides by.
    pub reference: String,
    /// Throughput over the reference's; for a reference that is itself a cost (a gauge phase
    /// against the iterations it follows), cost over cost.
    pub ratio_to_reference: f64,
    /// GFLOP/s over the machine's GEMM peak in the same precision; NaN where not counted.
    pub ratio_to_peak: f64,
}

impl BenchResult {
    /// A reference figure: its ratio to itself is 1.
    fn reference(name: String, per_second: f64, unit: &str, gflops: f64, peak: f64) -> Self {
        Self {
            reference: name.clone(),
            name,
            per_second,
            unit: unit.into(),
            gflops,
            ratio_to_reference: 1.0,
            ratio_to_peak: gflops / peak,
        }
    }
}

/// The results as an aligned text table: the figure, its rate, GFLOP/s where counted, its ratio
/// to the line it names and to the GEMM peak of its precision.
pub fn format_table(results: &[BenchResult]) -> String {
    let ratio = |r: f64| {
        if r.is_finite() {
            format!("{r:>7.3}")
        } else {
            " ".repeat(7)
        }
    };
    let mut lines = vec![format!(
        "{:<78} {:>11} {:<16} {:>8}  {:>7}  {:>7}",
        "figure", "rate", "", "GFLOP/s", "÷ ref", "÷ peak"
    )];
    for r in results {
        let gflops = if r.gflops.is_finite() {
            format!("{:>8.2}", r.gflops)
        } else {
            " ".repeat(8)
        };
        let mut line = format!(
            "{:<78} {:>11.4e} {:<16} {gflops}  {}  {}",
            r.name,
            r.per_second,
            r.unit,
            ratio(r.ratio_to_reference),
            ratio(r.ratio_to_peak)
        );
        if r.ratio_to_reference.is_finite() && r.reference != r.name {
            line.push_str(&format!("\n{:<4}÷ ref = {}", "", r.reference));
        }
        lines.push(line.trim_end().to_string());
    }
    lines.join("\n")
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
pub const GROUPS: &[&str] = &["rbm", "gauge", "dwe", "googlebooks"];

/// Runs the benchmarks (about a second each), or only the group `only`.
pub fn run(only: Option<&str>) -> crate::Result<Vec<BenchResult>> {
    let groups: Vec<&str> = match only {
        None => GROUPS.to_vec(),
        Some(group) if GROUPS.contains(&group) => vec![group],
        Some(other) => {
            return Err(crate::Error::Other(format!(
                "unknown bench group {other:?}; known: {}",
                GROUPS.join(", ")
            )));
        }
    };
    let mut machine = Machine::default();
    let mut out = Vec::new();
    for group in groups {
        match group {
            "rbm" => out.extend(rbm(&mut machine)?),
            "gauge" => out.push(gauge_phase(&mut machine)?),
            "dwe" => {
                out.extend(dynamic_skip_gram(&mut machine)?);
                out.extend(dense_skip_gram(&mut machine));
            }
            _ => out.extend(ngram_reduction()?),
        }
    }
    Ok(out)
}

/// A GEMM kernel the machine reference chooses from.
#[derive(Clone, Copy, Debug)]
enum Kernel {
    Matrixmultiply,
    Faer,
}

/// `batch` independent products (m × k)·(k × n), spread over the cores.
#[derive(Clone, Copy, Debug, PartialEq)]
struct GemmShape {
    m: usize,
    k: usize,
    n: usize,
    batch: usize,
}

impl GemmShape {
    fn flops(&self) -> f64 {
        2.0 * (self.m * self.k * self.n * self.batch) as f64
    }
}

/// Element types the reference measures: f32 and f64.
trait Element:
    ndarray::LinalgScalar + faer::traits::ComplexField + Send + Sync + std::fmt::Debug
{
    const NAME: &'static str;
    fn small(k: usize) -> Self;
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    fn small(k: usize) -> Self {
        ((k % 7) as f32 - 3.0) * 0.1
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    fn small(k: usize) -> Self {
        ((k % 7) as f64 - 3.0) * 0.1
    }
}

/// GFLOP/s of `kernel` on `shape`: each core takes whole products, with its own output
/// buffer, as the fits do.
fn gemm_rate<T: Element>(kernel: Kernel, shape: GemmShape) -> f64 {
    let GemmShape { m, k, n, batch } = shape;
    let a = Array2::<T>::from_shape_fn((m, k), |(i, j)| T::small(i + 3 * j));
    let b = Array2::<T>::from_shape_fn((k, n), |(i, j)| T::small(2 * i + j));
    let fa = faer::Mat::<T>::from_fn(m, k, |i, j| a[[i, j]]);
    let fb = faer::Mat::<T>::from_fn(k, n, |i, j| b[[i, j]]);
    let (secs, reps) = time(
        || match kernel {
            Kernel::Matrixmultiply => (0..batch).into_par_iter().for_each_init(
                || Array2::<T>::zeros((m, n)),
                |c, _| {
                    general_mat_mul(T::one(), &a, &b, T::zero(), c);
                    std::hint::black_box(c);
                },
            ),
            Kernel::Faer => (0..batch).into_par_iter().for_each_init(
                || faer::Mat::<T>::zeros(m, n),
                |c, _| {
                    faer::linalg::matmul::matmul(
                        c.as_mut(),
                        faer::Accum::Replace,
                        fa.as_ref(),
                        fb.as_ref(),
                        T::one(),
                        faer::Par::Seq,
                    );
                    std::hint::black_box(c);
                },
            ),
        },
        0.6,
    );
    shape.flops() * reps as f64 / secs / 1e9
}

/// The machine's best GEMM rates, measured once per shape and precision in a run.
#[derive(Default)]
struct Machine {
    measured: Vec<(&'static str, GemmShape, f64, Kernel)>,
}

impl Machine {
    /// The faster kernel's GFLOP/s on `shape`, and the kernel.
    fn best<T: Element>(&mut self, shape: GemmShape) -> (f64, Kernel) {
        if let Some(&(_, _, rate, kernel)) = self
            .measured
            .iter()
            .find(|(name, s, ..)| *name == T::NAME && *s == shape)
        {
            return (rate, kernel);
        }
        let (rate, kernel) = [Kernel::Matrixmultiply, Kernel::Faer]
            .into_iter()
            .map(|kernel| (gemm_rate::<T>(kernel, shape), kernel))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .expect("two kernels");
        self.measured.push((T::NAME, shape, rate, kernel));
        (rate, kernel)
    }

    /// The peak's shape: products of 1024³, two per core.
    fn peak_shape() -> GemmShape {
        GemmShape {
            m: 1024,
            k: 1024,
            n: 1024,
            batch: 2 * rayon::current_num_threads(),
        }
    }

    /// The peak: the best rate at [`Machine::peak_shape`].
    fn peak<T: Element>(&mut self) -> f64 {
        self.best::<T>(Self::peak_shape()).0
    }

    /// The reference line of the peak.
    fn peak_result<T: Element>(&mut self) -> BenchResult {
        let shape = Self::peak_shape();
        let (peak, kernel) = self.best::<T>(shape);
        BenchResult::reference(
            format!(
                "reference: {} GEMM peak, 1024³ per core ({kernel:?}, {} cores)",
                T::NAME,
                rayon::current_num_threads()
            ),
            peak / (shape.flops() / shape.batch as f64 / 1e9),
            "products/s",
            peak,
            peak,
        )
    }

    /// GFLOP/s the best kernels reach on a workload of several shapes (the total flops over the
    /// sum of each shape's time at its best rate), and the line that reports it.
    fn workload<T: Element>(&mut self, name: String, shapes: &[GemmShape]) -> (f64, BenchResult) {
        let peak = self.peak::<T>();
        let best: Vec<(f64, Kernel)> = shapes.iter().map(|&s| self.best::<T>(s)).collect();
        let flops: f64 = shapes.iter().map(GemmShape::flops).sum();
        let seconds: f64 = shapes
            .iter()
            .zip(&best)
            .map(|(s, (rate, _))| s.flops() / (rate * 1e9))
            .sum();
        let rate = flops / seconds / 1e9;
        let mut kernels: Vec<String> = best.iter().map(|(_, k)| format!("{k:?}")).collect();
        kernels.dedup();
        let line = BenchResult::reference(
            format!("reference: {name} ({})", kernels.join(", ")),
            1.0 / seconds,
            "evaluations/s",
            rate,
            peak,
        );
        (rate, line)
    }
}

/// The RBM at the scalar-field experiments' size (N_v = N_h = 10): one block-Gibbs sweep of
/// many chains, the exact update, and the PCD update of the authors' `SRBM.unsup_fit` (64
/// chains, k = 3), the last also against drawing its 64·3·20 normals alone.
fn rbm(machine: &mut Machine) -> crate::Result<Vec<BenchResult>> {
    use rand::SeedableRng;
    let peak = machine.peak::<f64>();
    let mut out = vec![machine.peak_result::<f64>()];
    let mut rng = rng_for(1, "bench");
    let model = GaussianRbm::random(10, 10, 3.0, 1.0, 0.3, &mut rng);
    let chains_n = 1024;
    let mut chains = Array2::ones((chains_n, 10));
    let mut hidden = Array2::zeros((chains_n, 10));
    let mut noise = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    let (secs, reps) = time(
        || model.gibbs_sweep_with(&mut chains, &mut hidden, &mut noise),
        1.0,
    );
    // Two products of (B × 10)·(10 × 10) per sweep.
    let gflops = 4.0 * (chains_n * 10 * 10) as f64 * reps as f64 / secs / 1e9;
    out.push(BenchResult {
        name: format!("block-Gibbs sweep, {chains_n} chains, N_v = N_h = 10"),
        per_second: reps as f64 * chains_n as f64 / secs,
        unit: "chain-sweeps/s".into(),
        gflops,
        reference: out[0].name.clone(),
        ratio_to_reference: gflops / peak,
        ratio_to_peak: gflops / peak,
    });

    let (chains, sweeps, units) = (64, 3, 20);
    let normals_name = format!(
        "reference: {} standard normals (Xoshiro256++, ziggurat)",
        chains * sweeps * units
    );
    let mut buffer = vec![0.0f64; chains * sweeps * units];
    let (secs, reps) = time(
        || {
            crate::models::rbm::normals::add_scaled(&mut buffer, 1.0, &mut noise);
            std::hint::black_box(&buffer);
        },
        0.6,
    );
    let normals_per_second = reps as f64 / secs;
    let (target, _) = spd_inverse_and_log_det(free_field_kernel(10, 4.0).view())?;
    for (label, negative_phase, reference) in [
        ("exact update", NegativePhase::Exact, None),
        (
            "PCD update, 64 chains, 3 sweeps",
            NegativePhase::Pcd {
                chains,
                gibbs_steps: sweeps,
            },
            Some(normals_per_second),
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
        let per_second = (reps * updates) as f64 / secs;
        if let Some(normals) = reference {
            out.push(BenchResult::reference(
                normals_name.clone(),
                normals,
                "draws of all/s",
                f64::NAN,
                peak,
            ));
        }
        out.push(BenchResult {
            name: format!("{label} ({:.1} µs)", 1e6 / per_second),
            per_second,
            unit: "updates/s".into(),
            gflops: f64::NAN,
            reference: reference.map_or_else(String::new, |_| normals_name.clone()),
            ratio_to_reference: reference.map_or(f64::NAN, |normals| per_second / normals),
            ratio_to_peak: f64::NAN,
        });
    }
    Ok(out)
}

/// One Goldstone-GD gauge phase at a dynamic-word-embedding-like size: the neighbour products
/// and the rotation (2·T·d²·N flop each), k2 preconditioned steps (2·T²·d² for L⁺, about
/// 16·T·d³ for the truncated-loss gradient), against the f64 peak.
fn gauge_phase(machine: &mut Machine) -> crate::Result<BenchResult> {
    let peak = machine.peak::<f64>();
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
    let (t, dd, n, kk) = (steps as f64, d as f64, columns as f64, k2 as f64);
    let flops = 4.0 * t * dd * dd * n + kk * (2.0 * t * t * dd * dd + 16.0 * t * dd * dd * dd);
    let gflops = flops * reps as f64 / secs / 1e9;
    Ok(BenchResult {
        name: format!("Goldstone gauge phase, T = {steps}, d = {d}, N = {columns}, k2 = {k2}"),
        per_second: reps as f64 / secs,
        unit: "phases/s".into(),
        gflops,
        reference: "f64 GEMM peak".into(),
        ratio_to_reference: gflops / peak,
        ratio_to_peak: gflops / peak,
    })
}

/// Reading Google Books v2 slices: decompressed MB per second of the streaming reduction (one
/// thread decompressing, one parsing, interning and counting window-weighted pairs) against
/// `zcat file > /dev/null` on the same generated 5-gram file (~150 MB of text), when `zcat`
/// exists; rates and ratio are medians of alternating pairs.
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
    // Seven alternating pairs (one reduction, one zcat): the ratio is the median of the pairs'
    // ratios, so that the drift of a shared machine between the two measurements cancels.
    let mut text_bytes = 0;
    let mut pairs: Vec<(f64, Option<f64>)> = Vec::new();
    for _ in 0..7 {
        let clock = Instant::now();
        let (_, stats) = reduce_file(&path, &options)?;
        text_bytes = stats.text_bytes;
        pairs.push((clock.elapsed().as_secs_f64(), time_zcat(&path)));
    }
    let megabytes = text_bytes as f64 / 1e6;
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ours = megabytes / median(pairs.iter().map(|p| p.0).collect());
    let zcat = pairs
        .iter()
        .map(|p| p.1)
        .collect::<Option<Vec<f64>>>()
        .map(|seconds| megabytes / median(seconds));
    let ratio = pairs
        .iter()
        .map(|&(reduce, zcat)| zcat.map(|z| z / reduce))
        .collect::<Option<Vec<f64>>>()
        .map_or(f64::NAN, median);
    let reference = "reference: zcat > /dev/null, same file";
    let mut out = vec![BenchResult {
        name: format!(
            "Google Books 5-gram reduce, {:.0} MB text",
            text_bytes as f64 / 1e6
        ),
        per_second: ours,
        unit: "MB/s".into(),
        gflops: f64::NAN,
        reference: reference.into(),
        ratio_to_reference: ratio,
        ratio_to_peak: f64::NAN,
    }];
    if let Some(z) = zcat {
        out.push(BenchResult::reference(
            reference.into(),
            z,
            "MB/s",
            f64::NAN,
            f64::NAN,
        ));
    }
    Ok(out)
}

/// Seconds of one `zcat path > /dev/null`; None without zcat.
fn time_zcat(path: &std::path::Path) -> Option<f64> {
    let start = Instant::now();
    let status = std::process::Command::new("zcat")
        .arg(path)
        .stdout(std::process::Stdio::null())
        .status()
        .ok()?;
    status.success().then(|| start.elapsed().as_secs_f64())
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

/// The three GEMMs of a skip-gram block of `size` × `size` at dimension `d` for each of `steps`
/// steps: X = U_IᵀV_J (L × d · d × L), ∇U = V_J Gᵀ and ∇V = U_I G (d × L · L × L).
fn skip_gram_gemms(steps: usize, d: usize, size: usize) -> [GemmShape; 3] {
    let x = GemmShape {
        m: size,
        k: d,
        n: size,
        batch: steps,
    };
    let gradient = GemmShape {
        m: d,
        k: size,
        n: size,
        batch: steps,
    };
    [x, gradient, gradient]
}

/// Deterministic, sign-mixed parameters (T × d × 2V) of magnitude up to 8·`scale`.
fn patterned_parameters(steps: usize, d: usize, v: usize, scale: f64) -> ndarray::Array3<f64> {
    ndarray::Array3::from_shape_fn((steps, d, 2 * v), |(t, k, i)| {
        (((t * 31 + k * 7 + i * 3) % 17) as f64 - 8.0) * scale
    })
}

/// The block gradient of `model` at `z` on `words` × `contexts` (timed into `block`), with the
/// reference line of its GEMMs at the machine's best: returns both lines and the seconds per
/// gradient.
fn timed_gradient(
    machine: &mut Machine,
    label: &str,
    (model, index): (
        &crate::models::dwe::DynamicSkipGram,
        &crate::models::dwe::kernel::CountsIndex,
    ),
    z: &ndarray::Array3<f64>,
    (words, contexts): (&[usize], &[usize]),
    block: &mut crate::models::dwe::BlockGradient,
) -> ([BenchResult; 2], f64) {
    use crate::models::dwe::kernel::Want;
    let (steps, d) = (z.shape()[0], z.shape()[1]);
    let size = words.len();
    let shapes = skip_gram_gemms(steps, d, size);
    let (best, reference) = machine.workload::<f32>(
        format!("best f32 GEMMs, T = {steps}, d = {d}, L' = {size}"),
        &shapes,
    );
    let peak = machine.peak::<f32>();
    let (secs, reps) = time(
        || model.fast_block_into(index, z, words, contexts, Want::Gradient, block),
        1.0,
    );
    let flops: f64 = shapes.iter().map(GemmShape::flops).sum();
    let gflops = flops * reps as f64 / secs / 1e9;
    let result = BenchResult {
        name: format!("skip-gram gradient, {label}"),
        per_second: reps as f64 / secs,
        unit: "gradients/s".into(),
        gflops,
        reference: reference.name.clone(),
        ratio_to_reference: gflops / best,
        ratio_to_peak: gflops / peak,
    };
    ([reference, result], secs / reps as f64)
}

/// The minibatch gradient at the planted benchmark's sizes (T = 100, V = 200, d = 10,
/// L' = 100), where nearly every pair has counts: at d = 10 the element-wise part, not the
/// GEMMs, sets the pace.
fn dense_skip_gram(machine: &mut Machine) -> [BenchResult; 2] {
    let (steps, v, d, minibatch) = (100, 200, 10, 100);
    let model = synthetic_skip_gram(steps, v, 4 * v);
    let index = crate::models::dwe::kernel::CountsIndex::new(&model);
    let z = crate::models::dwe::to_word_major(&patterned_parameters(steps, d, v, 0.05));
    let mut rng = rng_for(4, "bench/dwe/dense");
    let words = crate::models::dwe::train::draw_block(&mut rng, v, minibatch);
    let contexts = crate::models::dwe::train::draw_block(&mut rng, v, minibatch);
    let mut block = crate::models::dwe::BlockGradient::empty();
    let counts = (&model, &index);
    let label = "minibatch, dense counts (dwe-planted)";
    timed_gradient(machine, label, counts, &z, (&words, &contexts), &mut block).0
}

/// The dynamic skip-gram at the dwe-sotu size: the gradient (full batch and one minibatch
/// block) against the best GEMMs of the same shapes and against the f32 peak; one Adam block
/// update; one iteration (gradient + Adam); and one gauge phase relative to the k1 = 10
/// iterations it follows.
fn dynamic_skip_gram(machine: &mut Machine) -> crate::Result<Vec<BenchResult>> {
    let (steps, v, d, minibatch) = (229, 1000, 50, 250);
    let model = synthetic_skip_gram(steps, v, 40);
    let index = crate::models::dwe::kernel::CountsIndex::new(&model);
    let z = crate::models::dwe::to_word_major(&patterned_parameters(steps, d, v, 0.02));
    let mut out = vec![machine.peak_result::<f32>()];
    let all: Vec<usize> = (0..v).collect();
    let mut rng = rng_for(3, "bench/dwe/blocks");
    let mut adam = crate::models::dwe::BlockAdam::new((steps, d, 2 * v), 0.9, 0.999, 1e-8);
    let mut iteration_seconds = f64::NAN;
    for (label, size) in [("full batch", v), ("minibatch", minibatch)] {
        let (words, contexts) = if size >= v {
            (all.clone(), all.clone())
        } else {
            (
                crate::models::dwe::train::draw_block(&mut rng, v, size),
                crate::models::dwe::train::draw_block(&mut rng, v, size),
            )
        };
        let mut block = crate::models::dwe::BlockGradient::empty();
        let counts = (&model, &index);
        let (lines, gradient_seconds) =
            timed_gradient(machine, label, counts, &z, (&words, &contexts), &mut block);
        out.extend(lines);
        if size < v {
            let mut params = z.clone();
            let (secs, reps) = time(|| adam.step(&mut params, &block, 1e-3), 1.0);
            let adam_seconds = secs / reps as f64;
            iteration_seconds = gradient_seconds + adam_seconds;
            let (reference, gradient) = (&out[out.len() - 2], &out[out.len() - 1]);
            let (reference, best, gradient_gflops) =
                (reference.name.clone(), reference.gflops, gradient.gflops);
            out.push(BenchResult {
                name: format!("lazy Adam update of one L' = {size} block"),
                per_second: 1.0 / adam_seconds,
                unit: "updates/s".into(),
                gflops: f64::NAN,
                reference: String::new(),
                ratio_to_reference: f64::NAN,
                ratio_to_peak: f64::NAN,
            });
            // The gradient's flops over the iteration's time: what the fit achieves per second.
            let gflops = gradient_gflops * gradient_seconds / iteration_seconds;
            out.push(BenchResult {
                name: format!("minibatch iteration (gradient + Adam), L' = {size}"),
                per_second: 1.0 / iteration_seconds,
                unit: "iterations/s".into(),
                gflops,
                reference,
                ratio_to_reference: gflops / best,
                ratio_to_peak: gflops / machine.peak::<f32>(),
            });
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
            name: format!("gauge phase, T = {steps}, d = {d}, 2V = {}", 2 * v),
            per_second: 1.0 / phase,
            unit: "phases/s".into(),
            gflops: f64::NAN,
            reference: format!("cost of {k1} minibatch iterations (cost ratio; the paper: 0.08)"),
            ratio_to_reference: phase / (k1 as f64 * iteration_seconds),
            ratio_to_peak: f64::NAN,
        });
    }
    Ok(out)
}
