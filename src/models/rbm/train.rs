//! Gradient-ascent training of the Gaussian RBM, with the model moment either exact (K⁻¹: a
//! deterministic discretised gradient flow) or from persistent contrastive divergence (|B|
//! persistent chains, cold-started at φ = 1, advanced by k block-Gibbs sweeps per update).
//!
//! The optimiser follows the authors' code: momentum as an exponential moving average
//! v ← βv + (1−β)g, update W ← W + α_t v − α_t λ_L2 W, and the same EMA for μ when it is trained.
//! The rate decays stepwise, α_t = α · decay^⌊t/decay_every⌋ (the authors' code also decays at
//! t = 0; this one does not). Every update is checked: a non-finite parameter or a kernel that
//! is no longer positive definite stops training with the update number.

use ndarray::{Array1, Array2, ArrayView2, Zip};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::GaussianRbm;
use crate::error::{Error, Result};
use crate::linalg::{PositiveDefiniteCheck, gemm, symmetric_eigenvalues};

/// How the negative (model) phase ⟨φφᵀ⟩_model is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NegativePhase {
    /// C_model = K⁻¹, computed exactly.
    Exact,
    /// Persistent chains: `chains` of them, `gibbs_steps` sweeps per update.
    Pcd { chains: usize, gibbs_steps: usize },
}

/// Training options; [`train`] refuses values it cannot run with ([`TrainOptions::check`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    pub learning_rate: f64,
    pub momentum: f64,
    pub l2: f64,
    pub decay: f64,
    pub decay_every: usize,
    pub train_mu: bool,
    pub updates: usize,
    pub record_every: usize,
    pub negative_phase: NegativePhase,
    /// Orthonormal columns v_a: when given, each record also holds diag(Vᵀ K V), the kernel's
    /// value along each v_a (linear in K, so ensemble means are unbiased by sorting).
    pub projection_basis: Option<Array2<f64>>,
    /// Whether records hold the full spectrum of K (an N_v × N_v eigenproblem per record).
    pub kernel_spectrum: bool,
}

impl TrainOptions {
    /// An error naming the first option [`train`] cannot run with: intervals of zero updates,
    /// a rate that is not finite and positive, a momentum or decay outside its range.
    pub fn check(&self) -> Result<()> {
        let problem = if self.record_every == 0 {
            "record_every must be at least 1"
        } else if self.decay_every == 0 {
            "decay_every must be at least 1"
        } else if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            "learning_rate must be finite and > 0"
        } else if !(0.0..1.0).contains(&self.momentum) {
            "momentum must be in [0, 1)"
        } else if !(self.decay > 0.0 && self.decay <= 1.0) {
            "decay must be in (0, 1]"
        } else if !(self.l2.is_finite() && self.l2 >= 0.0) {
            "l2 must be finite and >= 0"
        } else if matches!(self.negative_phase, NegativePhase::Pcd { chains: 0, .. })
            || matches!(
                self.negative_phase,
                NegativePhase::Pcd { gibbs_steps: 0, .. }
            )
        {
            "persistent chains need at least one chain and one Gibbs sweep"
        } else {
            return Ok(());
        };
        Err(Error::Other(format!("training options: {problem}")))
    }

    /// Plain gradient ascent: no momentum, weight decay or rate decay, μ fixed, one record at
    /// the end.
    pub fn plain(learning_rate: f64, updates: usize, negative_phase: NegativePhase) -> Self {
        Self {
            learning_rate,
            momentum: 0.0,
            l2: 0.0,
            decay: 1.0,
            decay_every: 1,
            train_mu: false,
            updates,
            record_every: updates,
            negative_phase,
            projection_basis: None,
            kernel_spectrum: true,
        }
    }
}

/// Recorded observables along training, one row per record.
#[derive(Clone, Debug, Default)]
pub struct Trajectory {
    /// Update number of each record (0 is the initial model).
    pub updates: Vec<usize>,
    /// Eigenvalues of K, ascending (records × N_v); empty unless requested.
    pub kernel_eigenvalues: Vec<Array1<f64>>,
    /// Squared singular values of W, descending (records × N_h).
    pub xi_squared: Vec<Array1<f64>>,
    /// μ at each record.
    pub mu: Vec<f64>,
    /// v_aᵀ K v_a for each column of the projection basis (records × columns), if one was given.
    pub projected: Vec<Array1<f64>>,
}

impl Trajectory {
    fn record(&mut self, update: usize, model: &GaussianRbm, options: &TrainOptions) -> Result<()> {
        if let Some(v) = &options.projection_basis {
            // vᵀKv = μ²‖v‖² − σ²‖Wᵀv‖², without forming K.
            let s2 = model.sigma_h * model.sigma_h;
            let along = v.t().dot(&model.weights);
            let norms = v.mapv(|x| x * x).sum_axis(ndarray::Axis(0));
            let hidden = along.mapv(|x| x * x).sum_axis(ndarray::Axis(1));
            self.projected
                .push(norms * model.mu_squared() - hidden * s2);
        }
        if options.kernel_spectrum {
            self.kernel_eigenvalues
                .push(symmetric_eigenvalues(model.kernel().view())?);
        }
        // ξ² as eigenvalues of WᵀW: the symmetric solver is robust where an SVD iteration of a
        // nearly degenerate W may not converge.
        let gram = model.weights.t().dot(&model.weights);
        let ascending = symmetric_eigenvalues(gram.view())?.mapv(|v| v.max(0.0));
        let xi2 = ascending.slice(ndarray::s![..;-1]).to_owned();
        self.updates.push(update);
        self.xi_squared.push(xi2);
        self.mu.push(model.mu);
        Ok(())
    }

    /// Stacks a list of rows into a records × width matrix.
    pub fn stack(rows: &[Array1<f64>]) -> Array2<f64> {
        let width = rows.first().map_or(0, Array1::len);
        Array2::from_shape_fn((rows.len(), width), |(r, c)| rows[r][c])
    }
}

/// Trains `model` towards a zero-mean target with covariance `target_cov`, calling `progress`
/// with the number of updates done.
pub fn train(
    model: &mut GaussianRbm,
    target_cov: ArrayView2<'_, f64>,
    options: &TrainOptions,
    rng: &mut impl Rng,
    progress: &mut dyn FnMut(usize),
) -> Result<Trajectory> {
    options.check()?;
    let mut trajectory = Trajectory::default();
    trajectory.record(0, model, options)?;
    let (n_visible, n_hidden) = model.weights.dim();
    let mut velocity = Array2::<f64>::zeros(model.weights.raw_dim());
    let mut mu_velocity = 0.0;
    let mut chains = match options.negative_phase {
        NegativePhase::Exact => None,
        NegativePhase::Pcd { chains, .. } => {
            Some(PersistentChains::new(chains, (n_visible, n_hidden), rng))
        }
    };
    let mut positive_definite = PositiveDefiniteCheck::new(n_hidden);
    let mut hidden_matrix = Array2::<f64>::zeros((n_hidden, n_hidden));
    let beta = options.momentum;
    for update in 1..=options.updates {
        let rate = options.learning_rate
            * options
                .decay
                .powi(((update - 1) / options.decay_every) as i32);
        let gradient = match (&mut chains, options.negative_phase) {
            (Some(chains), NegativePhase::Pcd { gibbs_steps, .. }) => {
                model.gradient(target_cov, chains.advance(model, gibbs_steps).view())
            }
            _ => model
                .exact_gradient(target_cov)
                .map_err(|_| not_positive_definite(update))?,
        };
        let shrink = 1.0 - rate * options.l2;
        Zip::from(&mut model.weights)
            .and(&mut velocity)
            .and(&gradient.weights)
            .for_each(|w, v, &g| {
                *v = *v * beta + g * (1.0 - beta);
                *w = *w * shrink + *v * rate;
            });
        if options.train_mu {
            mu_velocity = beta * mu_velocity + (1.0 - beta) * gradient.mu;
            model.mu += rate * mu_velocity;
        }
        if !model.mu.is_finite() || model.weights.iter().any(|w| !w.is_finite()) {
            return Err(Error::Numerical {
                what: "non-finite parameters (NaN/Inf) in training".into(),
                update,
            });
        }
        if chains.is_some() {
            model.hidden_matrix_into(&mut hidden_matrix);
            if !positive_definite.holds(hidden_matrix.view()) {
                return Err(not_positive_definite(update));
            }
        }
        if update % options.record_every == 0 || update == options.updates {
            trajectory.record(update, model, options)?;
        }
        if update % 256 == 0 || update == options.updates {
            progress(update);
        }
    }
    Ok(trajectory)
}

/// Persistent chains, the buffers of their sweeps and their own generator: Xoshiro256++ seeded
/// from the caller's stream, about twice as fast per normal as ChaCha8, which matters because
/// the chains' normals are most of a PCD update's work.
struct PersistentChains {
    fields: Array2<f64>,
    hidden: Array2<f64>,
    moment: Array2<f64>,
    noise: Xoshiro256PlusPlus,
}

impl PersistentChains {
    /// `n` chains cold-started at φ = 1, for a model of (N_v, N_h) units.
    fn new(n: usize, (n_visible, n_hidden): (usize, usize), rng: &mut impl Rng) -> Self {
        Self {
            fields: Array2::ones((n, n_visible)),
            hidden: Array2::zeros((n, n_hidden)),
            moment: Array2::zeros((n_visible, n_visible)),
            noise: Xoshiro256PlusPlus::from_rng(rng),
        }
    }

    /// Advances every chain by `sweeps` sweeps of `model`; returns their second moment ⟨φφᵀ⟩.
    fn advance(&mut self, model: &GaussianRbm, sweeps: usize) -> &Array2<f64> {
        for _ in 0..sweeps {
            model.gibbs_sweep_with(&mut self.fields, &mut self.hidden, &mut self.noise);
        }
        let scale = 1.0 / self.fields.nrows() as f64;
        gemm(
            scale,
            self.fields.t(),
            self.fields.view(),
            false,
            self.moment.view_mut(),
        );
        &self.moment
    }
}

fn not_positive_definite(update: usize) -> Error {
    Error::Numerical {
        what: "the RBM kernel K = μ² − σ²WWᵀ lost positive definiteness (learning rate too \
               large, or μ² below the learned spectrum)"
            .into(),
        update,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::lattice::{free_field_kernel, free_field_spectrum};
    use crate::linalg::spd_inverse_and_log_det;
    use approx::assert_abs_diff_eq;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn exact_options(updates: usize, learning_rate: f64) -> TrainOptions {
        TrainOptions::plain(learning_rate, updates, NegativePhase::Exact)
    }

    fn target(n: usize, m2: f64) -> Array2<f64> {
        spd_inverse_and_log_det(free_field_kernel(n, m2).view())
            .unwrap()
            .0
    }

    /// Fixed points of the exact flow: λ_a = κ_a for learnable modes (σ²ξ_a² = μ² − κ_a).
    #[test]
    fn exact_flow_reaches_the_target_spectrum() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut model = GaussianRbm::random(10, 10, 3.0, 1.0, 0.1, &mut rng);
        let c = target(10, 4.0);
        let traj = train(
            &mut model,
            c.view(),
            &exact_options(20_000, 0.5),
            &mut rng,
            &mut |_| {},
        )
        .unwrap();
        let kappa = free_field_spectrum(10, 4.0);
        let last = traj.kernel_eigenvalues.last().unwrap();
        assert_abs_diff_eq!(last, &kappa, epsilon = 1e-6);
        let xi2 = traj.xi_squared.last().unwrap();
        for (a, k) in kappa.iter().enumerate() {
            assert_abs_diff_eq!(xi2[a], 9.0 - k, epsilon = 1e-6);
        }
    }

    /// A non-finite learning rate is caught at the first update, with its number.
    #[test]
    fn divergence_stops_with_the_update_number() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut model = GaussianRbm::random(4, 4, 3.0, 1.0, 0.1, &mut rng);
        let c = target(4, 4.0);
        let err = train(
            &mut model,
            c.view(),
            &exact_options(10, 400.0),
            &mut rng,
            &mut |_| {},
        )
        .unwrap_err();
        match err {
            Error::Numerical { update, .. } => assert!(update <= 3, "stopped at {update}"),
            other => panic!("unexpected error {other}"),
        }
    }

    /// Options that would divide by zero or never record are refused before training, by name.
    #[test]
    fn record_every_zero_is_refused_not_a_panic() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut model = GaussianRbm::random(4, 4, 3.0, 1.0, 0.1, &mut rng);
        let c = target(4, 4.0);
        for (options, name) in [
            (
                TrainOptions {
                    record_every: 0,
                    ..exact_options(10, 0.1)
                },
                "record_every",
            ),
            (
                TrainOptions {
                    decay_every: 0,
                    ..exact_options(10, 0.1)
                },
                "decay_every",
            ),
        ] {
            let err = train(&mut model, c.view(), &options, &mut rng, &mut |_| {})
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{err}");
        }
    }
}
