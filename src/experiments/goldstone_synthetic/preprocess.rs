//! Preprocess stage: the synthetic data X = ŪᵀV̄ + noise (Ū, V̄ ∈ R^{rank×n} standard normal,
//! Gaussian noise of the given variance), the same X at every time step.

use ndarray::Array2;
use rand_distr::{Distribution, StandardNormal};

use crate::emit::npy;
use crate::error::Result;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageKind};
use crate::seed::rng_for;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct DataStage {
    pub rows: usize,
    pub cols: usize,
    pub rank: usize,
    pub noise_variance: f64,
    pub seed: u64,
}

impl Stage for DataStage {
    const KIND: StageKind = StageKind::Preprocess;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("goldstone-synthetic/preprocess")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let mut rng = rng_for(self.seed, "data");
        let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
        let u = Array2::from_shape_simple_fn((self.rank, self.rows), &mut normal);
        let v = Array2::from_shape_simple_fn((self.rank, self.cols), &mut normal);
        let noise_sd = self.noise_variance.sqrt();
        let noise = Array2::from_shape_simple_fn((self.rows, self.cols), || noise_sd * normal());
        let x = u.t().dot(&v) + noise;
        npy::write(&ctx.out_dir.join("arrays").join("data.x.npy"), &x)
    }
}

/// Reads X.
pub fn load(dir: &std::path::Path) -> Result<Array2<f64>> {
    npy::read(&dir.join("arrays").join("data.x.npy"))
}
