//! Emit stage: the spectrum figure (log scale, with the cutoff 1/μ²) and its tables.

use super::{preprocess, spectrum};
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::table::Table;
use crate::error::Result;
use crate::pipeline::{StageContext, StageTask};

pub struct EmitStage {
    pub preprocess_id: String,
    pub spectrum_id: String,
    pub mu_squared: f64,
}

impl StageTask for EmitStage {
    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let summary = preprocess::load_summary(ctx.upstream_dir(&self.preprocess_id)?)?;
        let (eigenvalues, counts) = spectrum::load(ctx.upstream_dir(&self.spectrum_id)?)?;
        let tables = ctx.out_dir.join("tables");
        let n = eigenvalues.len();
        Table::new("spectrum", &["index"])
            .i64("index", (0..n as i64).collect())
            .f64("eigenvalue", eigenvalues.to_vec())
            .write(&tables)?;
        Table::new("spectrum_counts", &["threshold"])
            .f64("threshold", counts.thresholds.clone())
            .i64(
                "count_below",
                counts.below.iter().map(|&c| c as i64).collect(),
            )
            .write(&tables)?;
        Table::new("data_summary", &[])
            .i64("images", vec![summary.images as i64])
            .i64("pixels", vec![summary.pixels as i64])
            .i64(
                "always_zero_pixels",
                vec![summary.always_zero_pixels as i64],
            )
            .str(
                "correlation",
                vec![
                    if summary.centred {
                        "centred"
                    } else {
                        "uncentred"
                    }
                    .into(),
                ],
            )
            .f64("cutoff_one_over_mu_squared", vec![1.0 / self.mu_squared])
            .write(&tables)?;

        // A log axis cannot show the exact zeros; the title counts them.
        let floor = 1e-12 * eigenvalues.iter().copied().fold(0.0, f64::max);
        let positive: Vec<(f64, f64)> = eigenvalues
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > floor)
            .map(|(a, &c)| (a as f64, c))
            .collect();
        let zeros = n - positive.len();
        let cutoff = 1.0 / self.mu_squared;
        let learnable = eigenvalues.iter().filter(|&&c| c > cutoff).count();
        Figure::single(Panel::Line(LineChart {
            title: format!(
                "MNIST correlation spectrum: {learnable} modes above 1/μ², {zeros} below \
                 1e-12·c_max ({} pixels never lit)",
                summary.always_zero_pixels
            ),
            x_label: "mode index a (variance descending)".into(),
            y_label: "eigenvalue c_a of ⟨φ_i φ_j⟩".into(),
            log_y: true,
            series: vec![
                Series::new(Some("c_a".into()), positive, 0, Style::Line),
                Series::hline(
                    Some(format!("cutoff 1/μ² = 1/{}", self.mu_squared)),
                    cutoff,
                    0.0,
                    n as f64,
                    3,
                ),
            ],
            ..Default::default()
        }))
        .write(&ctx.out_dir.join("figures"), "spectrum")
    }
}
