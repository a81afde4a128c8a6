//! Preprocess stage: MNIST training images (pixels in [0, 1], flattened, not binarised) → the
//! 784 × 784 correlation matrix ⟨φ_i φ_j⟩ over the training set (uncentred, as the authors used;
//! centred on request), the pixel means, and the number of pixels that are zero in every image.

use ndarray::{Array1, Axis};
use serde::{Deserialize, Serialize};

use crate::data::idx::read_images;
use crate::data::registry::Registry;
use crate::emit::npy;
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::pipeline::{StageContext, StageTask};

pub struct CorrelationStage {
    pub registry: Registry,
    pub name: String,
    pub centred: bool,
}

/// Facts about the data set, for the tables.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataSummary {
    pub images: usize,
    pub pixels: usize,
    pub always_zero_pixels: usize,
    pub centred: bool,
}

impl StageTask for CorrelationStage {
    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let path = self.registry.require(&self.name)?;
        ctx.progress.set_length(3);
        let images = read_images(&path)?;
        ctx.progress.set_position(1);
        let n = images.nrows() as f64;
        let mean: Array1<f64> = images.mean_axis(Axis(0)).unwrap_or_default();
        let mut correlation = images.t().dot(&images) / n;
        if self.centred {
            let outer = mean
                .view()
                .insert_axis(Axis(1))
                .dot(&mean.view().insert_axis(Axis(0)));
            correlation -= &outer;
        }
        ctx.progress.set_position(2);
        let always_zero = images
            .axis_iter(Axis(1))
            .filter(|column| column.iter().all(|&p| p == 0.0))
            .count();
        let arrays = ctx.out_dir.join("arrays");
        npy::write(&arrays.join("mnist.correlation.npy"), &correlation)?;
        npy::write(&arrays.join("mnist.pixel_mean.npy"), &mean)?;
        write_json(
            &ctx.out_dir.join("summary.json"),
            &DataSummary {
                images: images.nrows(),
                pixels: images.ncols(),
                always_zero_pixels: always_zero,
                centred: self.centred,
            },
        )
    }
}

/// Reads the summary written by [`CorrelationStage`].
pub fn load_summary(dir: &std::path::Path) -> Result<DataSummary> {
    read_json(&dir.join("summary.json"))
}

/// Reads the correlation matrix written by [`CorrelationStage`].
pub fn load_correlation(dir: &std::path::Path) -> Result<ndarray::Array2<f64>> {
    npy::read(&dir.join("arrays").join("mnist.correlation.npy"))
}
