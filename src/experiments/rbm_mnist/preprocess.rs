//! Preprocess stage: MNIST images (pixels in [0, 1], flattened, not binarised) → the 784 × 784
//! correlation matrix ⟨φ_i φ_j⟩ over the training set (uncentred, as the authors used; centred
//! on request), the pixel means, the number of pixels that are zero in every training image,
//! the same correlation matrix over the test set (reconstruction errors on unseen digits are
//! traces against it) and the first test digits, which are regenerated.

use ndarray::{Array1, Axis};
use serde::{Deserialize, Serialize};

use crate::data::idx::read_images;
use crate::data::registry::RegisteredInput;
use crate::emit::npy;
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageKind};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct CorrelationStage {
    pub train_images: RegisteredInput,
    pub test_images: RegisteredInput,
    pub centred: bool,
    pub test_digits: usize,
}

/// Facts about the data set, for the tables.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataSummary {
    pub images: usize,
    pub pixels: usize,
    pub always_zero_pixels: usize,
    pub centred: bool,
}

impl Stage for CorrelationStage {
    const KIND: StageKind = StageKind::Preprocess;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-mnist/preprocess")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let path = self.train_images.require()?;
        let test_path = self.test_images.require()?;
        ctx.progress.set_length(4);
        let images = read_images(path)?;
        ctx.progress.set_position(1);
        let (correlation, mean) = self.correlation(&images);
        ctx.progress.set_position(2);
        let test = read_images(test_path)?;
        if test.ncols() != images.ncols() || test.nrows() < self.test_digits {
            return Err(crate::error::Error::Other(format!(
                "{}: {} images of {} pixels, but the training images have {} pixels and {} \
                 test digits are to be regenerated",
                test_path.display(),
                test.nrows(),
                test.ncols(),
                images.ncols(),
                self.test_digits
            )));
        }
        // The test set is centred on the training mean, as a model fitted to it would see it.
        let (test_correlation, _) = self.correlation(&test);
        let test_correlation = if self.centred {
            let test_mean: Array1<f64> = test.mean_axis(Axis(0)).unwrap_or_default();
            let raw = &test_correlation + &outer(&test_mean);
            let shift = &test_mean - &mean;
            raw - outer(&mean) - outer_pair(&shift, &mean) - outer_pair(&mean, &shift)
        } else {
            test_correlation
        };
        ctx.progress.set_position(3);
        let always_zero = images
            .axis_iter(Axis(1))
            .filter(|column| column.iter().all(|&p| p == 0.0))
            .count();
        let arrays = ctx.out_dir.join("arrays");
        npy::write(&arrays.join("mnist.correlation.npy"), &correlation)?;
        npy::write(&arrays.join("mnist.pixel_mean.npy"), &mean)?;
        npy::write(
            &arrays.join("mnist.test_correlation.npy"),
            &test_correlation,
        )?;
        npy::write(
            &arrays.join("mnist.test_digits.npy"),
            &test.slice(ndarray::s![..self.test_digits, ..]).to_owned(),
        )?;
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

impl CorrelationStage {
    /// ⟨φφᵀ⟩ over the rows of `images` (centred on their own mean if asked) and that mean.
    fn correlation(&self, images: &ndarray::Array2<f64>) -> (ndarray::Array2<f64>, Array1<f64>) {
        let n = images.nrows() as f64;
        let mean: Array1<f64> = images.mean_axis(Axis(0)).unwrap_or_default();
        let mut correlation = images.t().dot(images) / n;
        if self.centred {
            correlation -= &outer(&mean);
        }
        (correlation, mean)
    }
}

fn outer(v: &Array1<f64>) -> ndarray::Array2<f64> {
    outer_pair(v, v)
}

fn outer_pair(u: &Array1<f64>, v: &Array1<f64>) -> ndarray::Array2<f64> {
    u.view()
        .insert_axis(Axis(1))
        .dot(&v.view().insert_axis(Axis(0)))
}

/// Reads the summary written by [`CorrelationStage`].
pub fn load_summary(dir: &std::path::Path) -> Result<DataSummary> {
    read_json(&dir.join("summary.json"))
}

/// Reads the correlation matrix written by [`CorrelationStage`].
pub fn load_correlation(dir: &std::path::Path) -> Result<ndarray::Array2<f64>> {
    npy::read(&dir.join("arrays").join("mnist.correlation.npy"))
}

/// The test-set correlation matrix and the test digits to regenerate.
pub fn load_test(dir: &std::path::Path) -> Result<(ndarray::Array2<f64>, ndarray::Array2<f64>)> {
    let arrays = dir.join("arrays");
    Ok((
        npy::read(&arrays.join("mnist.test_correlation.npy"))?,
        npy::read(&arrays.join("mnist.test_digits.npy"))?,
    ))
}
