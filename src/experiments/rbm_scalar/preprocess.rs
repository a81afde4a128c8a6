//! Preprocess stage: the target field. Writes K_φ, C_t = K_φ⁻¹ (inverted numerically) and the
//! sorted closed-form spectrum κ, after checking that the numerical spectrum agrees with it.

use crate::analysis::lattice::{free_field_kernel, free_field_spectrum};
use crate::emit::npy;
use crate::error::{Error, Result};
use crate::linalg::{spd_inverse_and_log_det, symmetric_eigenvalues};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageKind};
use crate::spec::rbm_scalar::TargetParams;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct TargetStage {
    pub target: TargetParams,
}

impl Stage for TargetStage {
    const KIND: StageKind = StageKind::Preprocess;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-scalar/preprocess")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let n = self.target.n_visible;
        let kernel = free_field_kernel(n, self.target.mass_squared);
        let (covariance, _) = spd_inverse_and_log_det(kernel.view())?;
        let kappa = free_field_spectrum(n, self.target.mass_squared);
        let numeric = symmetric_eigenvalues(kernel.view())?;
        let worst = (&numeric - &kappa)
            .iter()
            .fold(0.0_f64, |m, d| m.max(d.abs()));
        if worst > 1e-9 {
            return Err(Error::Other(format!(
                "lattice kernel spectrum differs from the closed form by {worst:e}"
            )));
        }
        let arrays = ctx.out_dir.join("arrays");
        npy::write(&arrays.join("target.kernel.npy"), &kernel)?;
        npy::write(&arrays.join("target.covariance.npy"), &covariance)?;
        npy::write(&arrays.join("target.kappa.npy"), &kappa)?;
        Ok(())
    }
}

/// Reads what [`TargetStage`] wrote: (K_φ, C_t, κ).
pub fn load(
    dir: &std::path::Path,
) -> Result<(
    ndarray::Array2<f64>,
    ndarray::Array2<f64>,
    ndarray::Array1<f64>,
)> {
    let arrays = dir.join("arrays");
    Ok((
        npy::read(&arrays.join("target.kernel.npy"))?,
        npy::read(&arrays.join("target.covariance.npy"))?,
        npy::read(&arrays.join("target.kappa.npy"))?,
    ))
}
