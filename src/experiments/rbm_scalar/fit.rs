//! Fit stage: trains an ensemble of Gaussian RBMs on the target covariance and records the
//! spectrum of K, ξ² and μ along training.
//!
//! Outputs (`arrays/fit.<slug>.*.npy`): `updates` (records), `eigenvalues_mean` and
//! `eigenvalues_std` (records × N_v, over the ensemble), `xi_squared_mean` (records × N_h),
//! `projected_mean` (v_aᵀKv_a along the target eigenvectors, records × N_v),
//! `mu_mean` (records), `final_eigenvalues` (members × N_v), `weights` (member 0, N_v × N_h) and
//! `mu_final` (members). Members are seeded from the spec seed, the label and the member index;
//! `init = "aligned"` starts every member from the same decoupled W (PCD noise still differs).

use ndarray::{Array1, Array2, Array3, Axis};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

use super::preprocess;
use crate::emit::npy;
use crate::emit::slug;
use crate::error::Result;
use crate::models::rbm::GaussianRbm;
use crate::models::rbm::train::{TrainOptions, Trajectory, train};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::seed::rng_for;
use crate::spec::rbm_scalar::{FitParams, InitKind};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct FitStage {
    pub fit: FitParams,
    pub target: StageHandle,
    pub seed: u64,
}

/// Path prefix of this instance's arrays.
pub fn prefix(label: &str) -> String {
    format!("fit.{}", slug(label))
}

impl Stage for FitStage {
    const KIND: StageKind = StageKind::Fit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-scalar/fit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let p = &self.fit;
        let (k_phi, target_cov, _) = preprocess::load(ctx.upstream(&self.target)?)?;
        let eig = crate::linalg::symmetric_eigen(k_phi.view())?;
        let aligned_start = match p.init {
            InitKind::Random => None,
            InitKind::Aligned => {
                let n = k_phi.nrows();
                let scale = p.init_scale * (n as f64).sqrt();
                Some(Array2::from_shape_fn((n, p.n_hidden), |(i, a)| {
                    if a < n {
                        scale * eig.vectors[[i, a]]
                    } else {
                        0.0
                    }
                }))
            }
        };
        let options = TrainOptions {
            learning_rate: p.learning_rate,
            momentum: p.momentum,
            l2: p.l2,
            decay: p.decay,
            decay_every: p.decay_every,
            train_mu: p.train_mu,
            updates: p.updates,
            record_every: p.record_every,
            negative_phase: p.negative_phase,
            projection_basis: Some(eig.vectors.clone()),
            kernel_spectrum: true,
        };
        let label = p.label();
        ctx.progress.set_length((p.updates * p.ensemble) as u64);
        let done = AtomicU64::new(0);
        let members: Vec<(GaussianRbm, Trajectory)> = (0..p.ensemble)
            .into_par_iter()
            .map(|member| {
                let mut rng = rng_for(self.seed, &format!("fit[{label}]/member{member}"));
                let mut model = GaussianRbm::random(
                    target_cov.nrows(),
                    p.n_hidden,
                    p.mu_squared.sqrt(),
                    p.sigma_h,
                    p.init_scale,
                    &mut rng,
                );
                if let Some(w) = &aligned_start {
                    model.weights = w.clone();
                }
                let mut last = 0;
                let trajectory = train(
                    &mut model,
                    target_cov.view(),
                    &options,
                    &mut rng,
                    &mut |u| {
                        let step = (u - last) as u64;
                        last = u;
                        let total = done.fetch_add(step, Ordering::Relaxed) + step;
                        ctx.progress.set_position(total);
                    },
                )
                .map_err(|e| match e {
                    crate::error::Error::Numerical { what, update } => {
                        crate::error::Error::Numerical {
                            what: format!("{what} (ensemble member {member})"),
                            update,
                        }
                    }
                    other => other,
                })?;
                Ok((model, trajectory))
            })
            .collect::<Result<_>>()?;

        let first = &members[0].1;
        let records = first.updates.len();
        let all = stack_members(&members, |t| &t.kernel_eigenvalues)?;
        let mean = all
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array2::zeros((records, 0)));
        let std = all.std_axis(Axis(0), 0.0);
        let xi_mean = stack_members(&members, |t| &t.xi_squared)?
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array2::zeros((records, 0)));
        let projected_mean = stack_members(&members, |t| &t.projected)?
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array2::zeros((records, 0)));
        let mu_mean = Array1::from_shape_fn(records, |r| {
            members.iter().map(|(_, t)| t.mu[r]).sum::<f64>() / members.len() as f64
        });
        let updates = Array1::from_iter(first.updates.iter().map(|&u| u as f64));
        let finals = Array2::from_shape_fn((members.len(), target_cov.nrows()), |(m, i)| {
            members[m].1.kernel_eigenvalues[records - 1][i]
        });
        let mu_final = Array1::from_iter(members.iter().map(|(m, _)| m.mu));

        let dir = ctx.out_dir.join("arrays");
        let name = |what: &str| dir.join(format!("{}.{what}.npy", prefix(&label)));
        npy::write(&name("updates"), &updates)?;
        npy::write(&name("eigenvalues_mean"), &mean)?;
        npy::write(&name("eigenvalues_std"), &std)?;
        npy::write(&name("xi_squared_mean"), &xi_mean)?;
        npy::write(&name("projected_mean"), &projected_mean)?;
        npy::write(&name("mu_mean"), &mu_mean)?;
        npy::write(&name("final_eigenvalues"), &finals)?;
        npy::write(&name("weights"), &members[0].0.weights)?;
        npy::write(&name("mu_final"), &mu_final)?;
        Ok(())
    }
}

/// One recorded quantity of every member, stacked: members × records × width.
fn stack_members(
    members: &[(GaussianRbm, Trajectory)],
    rows: impl Fn(&Trajectory) -> &Vec<Array1<f64>>,
) -> Result<Array3<f64>> {
    let stacked: Vec<Array2<f64>> = members
        .iter()
        .map(|(_, t)| Trajectory::stack(rows(t)))
        .collect();
    let views: Vec<_> = stacked.iter().map(|a| a.view()).collect();
    ndarray::stack(Axis(0), &views)
        .map_err(|e| crate::error::Error::Other(format!("stacking ensemble trajectories: {e}")))
}

/// What [`FitStage`] wrote, read back.
pub struct FitOutput {
    pub updates: Array1<f64>,
    pub eigenvalues_mean: Array2<f64>,
    pub eigenvalues_std: Array2<f64>,
    pub xi_squared_mean: Array2<f64>,
    pub projected_mean: Array2<f64>,
    pub mu_mean: Array1<f64>,
    pub final_eigenvalues: Array2<f64>,
    pub weights: Array2<f64>,
    pub mu_final: Array1<f64>,
}

pub fn load(dir: &std::path::Path, label: &str) -> Result<FitOutput> {
    let arrays = dir.join("arrays");
    let name = |what: &str| arrays.join(format!("{}.{what}.npy", prefix(label)));
    Ok(FitOutput {
        updates: npy::read(&name("updates"))?,
        eigenvalues_mean: npy::read(&name("eigenvalues_mean"))?,
        eigenvalues_std: npy::read(&name("eigenvalues_std"))?,
        xi_squared_mean: npy::read(&name("xi_squared_mean"))?,
        projected_mean: npy::read(&name("projected_mean"))?,
        mu_mean: npy::read(&name("mu_mean"))?,
        final_eigenvalues: npy::read(&name("final_eigenvalues"))?,
        weights: npy::read(&name("weights"))?,
        mu_final: npy::read(&name("mu_final"))?,
    })
}
