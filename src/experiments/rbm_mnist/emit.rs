//! Emit stage: the spectrum figure (log scale, with the cutoff 1/μ²), the learned spectra, the
//! regeneration grids, the relaxation figure, and their tables.

use ndarray::{Array1, Array2};

use super::evaluate::{
    ReconstructionRow, RelaxationRow, load_array, load_reconstruction, load_relaxation_rows,
};
use super::fit::load_relaxation;
use super::{preprocess, spectrum};
use crate::emit::figure::{Figure, ImageGrid, LineChart, Panel, Series, Style};
use crate::emit::table::{ColumnDoc, Table, Unit, col, std_error};
use crate::error::Result;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::spec::rbm_mnist::RelaxationSettings;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct EmitStage {
    pub preprocess: StageHandle,
    pub spectrum: StageHandle,
    pub reconstruction: StageHandle,
    pub relaxation: StageHandle,
    pub runs: Vec<StageHandle>,
    pub n_hidden: Vec<usize>,
    pub mu_squared: f64,
    pub gibbs_steps: usize,
    pub relaxation_settings: RelaxationSettings,
}

const SIDE: usize = 28;
const GRID_COLUMNS: usize = 6;

impl Stage for EmitStage {
    const KIND: StageKind = StageKind::Emit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-mnist/emit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let summary = preprocess::load_summary(ctx.upstream(&self.preprocess)?)?;
        let (eigenvalues, counts) = spectrum::load(ctx.upstream(&self.spectrum)?)?;
        let tables = ctx.out_dir.join("tables");
        let figures = ctx.out_dir.join("figures");
        let spectrum: Vec<SpectrumRow> = eigenvalues
            .iter()
            .enumerate()
            .map(|(index, &eigenvalue)| SpectrumRow { index, eigenvalue })
            .collect();
        Table::from_rows("spectrum", &["index"], &spectrum)?
            .describe(&[
                col("index", Unit::Index, "a, the mode (variance descending)"),
                col("eigenvalue", Unit::One, "c_a, eigenvalue of the pixel correlation matrix ⟨φ_i φ_j⟩ (pixel intensities in [0, 1])"),
            ])
            .write(&tables)?;
        let below: Vec<CountRow> = counts
            .thresholds
            .iter()
            .zip(&counts.below)
            .map(|(&threshold, &count_below)| CountRow {
                threshold,
                count_below,
            })
            .collect();
        Table::from_rows("spectrum_counts", &["threshold"], &below)?
            .describe(&[
                col("threshold", Unit::One, "an eigenvalue threshold"),
                col(
                    "count_below",
                    Unit::Count,
                    "eigenvalues of the correlation matrix below it",
                ),
            ])
            .write(&tables)?;
        let data = DataRow {
            images: summary.images,
            pixels: summary.pixels,
            always_zero_pixels: summary.always_zero_pixels,
            correlation: if summary.centred {
                "centred"
            } else {
                "uncentred"
            }
            .into(),
            cutoff_one_over_mu_squared: 1.0 / self.mu_squared,
        };
        Table::from_rows("data_summary", &[], &[data])?
            .describe(&[
                col("images", Unit::Count, "training images"),
                col("pixels", Unit::Count, "N_v, pixels per image"),
                col(
                    "always_zero_pixels",
                    Unit::Count,
                    "pixels that are 0 in every training image",
                ),
                col(
                    "correlation",
                    Unit::Label,
                    "centred (covariance) or uncentred second moments",
                ),
                col(
                    "cutoff_one_over_mu_squared",
                    Unit::One,
                    "1/μ², the variance below which no mode is learned",
                ),
            ])
            .write(&tables)?;
        self.spectrum_figure(&eigenvalues, summary.always_zero_pixels)?
            .write(&figures, "spectrum")?;

        let reconstruction_dir = ctx.upstream(&self.reconstruction)?;
        let rows = load_reconstruction(reconstruction_dir)?;
        pca_table(&rows)?.write(&tables)?;
        let mut model_variances = Vec::new();
        for &n_hidden in &self.n_hidden {
            let v: Array1<f64> = load_array(reconstruction_dir, Some(n_hidden), "model_variances")?;
            model_variances.push((n_hidden, v));
        }
        self.learned_spectrum_table(&eigenvalues, &model_variances)?
            .write(&tables)?;
        self.learned_spectrum_figure(&eigenvalues, &model_variances)
            .write(&figures, "learned_spectrum")?;
        for (what, name, caption) in [
            ("regenerated", "regeneration", "after"),
            ("gibbs_mean", "regeneration_mean", "mean of"),
        ] {
            self.regeneration_figure(reconstruction_dir, what, caption)?
                .write(&figures, name)?;
        }

        let relaxation_rows = load_relaxation_rows(ctx.upstream(&self.relaxation)?)?;
        relaxation_table(&relaxation_rows)?.write(&tables)?;
        self.relaxation_figure(ctx, &relaxation_rows)?
            .write(&figures, "relaxation")
    }
}

#[derive(Default, serde::Serialize)]
struct SpectrumRow {
    index: usize,
    eigenvalue: f64,
}

#[derive(Default, serde::Serialize)]
struct CountRow {
    threshold: f64,
    count_below: usize,
}

#[derive(Default, serde::Serialize)]
struct DataRow {
    images: usize,
    pixels: usize,
    always_zero_pixels: usize,
    correlation: String,
    cutoff_one_over_mu_squared: f64,
}

/// A fitted relaxation time against the linearised flow, with their ratios.
#[derive(Default, serde::Serialize)]
struct RelaxationTimeRow {
    learning_rate: f64,
    mode: usize,
    data_variance: f64,
    gamma: f64,
    tau_fit: Option<f64>,
    tau_error: Option<f64>,
    tau_predicted: f64,
    tau_ratio: f64,
    alpha_gamma_tau: f64,
    plateau_fit: Option<f64>,
    plateau_predicted: f64,
}

fn relaxation_table(rows: &[RelaxationRow]) -> Result<Table> {
    let rows: Vec<RelaxationTimeRow> = rows
        .iter()
        .map(|r| {
            let tau = r.tau_fit.unwrap_or(f64::NAN);
            RelaxationTimeRow {
                learning_rate: r.learning_rate,
                mode: r.mode,
                data_variance: r.data_variance,
                gamma: r.gamma,
                tau_fit: r.tau_fit,
                tau_error: r.tau_error,
                tau_predicted: r.tau_predicted,
                tau_ratio: tau / r.tau_predicted,
                alpha_gamma_tau: r.learning_rate * r.gamma * tau,
                plateau_fit: r.plateau_fit,
                plateau_predicted: r.plateau_predicted,
            }
        })
        .collect();
    Ok(
        Table::from_rows("relaxation_times", &["learning_rate", "mode"], &rows)?.describe(&[
            col("learning_rate", Unit::One, "α, the learning rate"),
            col(
                "mode",
                Unit::Index,
                "a, the data mode (variance descending)",
            ),
            col("data_variance", Unit::One, "c_a, the mode's data variance"),
            col(
                "gamma",
                Unit::One,
                "γ_a = 2σ_h²(μ² − κ_a)/κ_a², κ_a = 1/c_a: the linearised rate per unit αt",
            ),
            col(
                "tau_fit",
                Unit::Updates,
                "fitted relaxation time (missing: no decaying window found)",
            ),
            std_error(
                "tau_error",
                "tau_fit",
                "standard error of tau_fit from the fit",
            ),
            col(
                "tau_predicted",
                Unit::Updates,
                "−1/ln(1 − αγ_a), the discrete linearised prediction",
            ),
            col("tau_ratio", Unit::One, "tau_fit / tau_predicted"),
            col(
                "alpha_gamma_tau",
                Unit::One,
                "α γ_a tau_fit (1 for the continuous-time prediction)",
            ),
            col("plateau_fit", Unit::One, "fitted plateau of σ_h² ξ_a²"),
            col("plateau_predicted", Unit::One, "σ_h² ξ_a*² = μ² − 1/c_a"),
        ]),
    )
}

/// One fit's reconstruction of one image set against PCA.
#[derive(Default, serde::Serialize)]
struct PcaRow {
    n_hidden: usize,
    set: String,
    learnable: usize,
    predicted_learned: usize,
    learned: usize,
    subspace_overlap: f64,
    pca_error: f64,
    rbm_span_error: f64,
    rbm_gibbs_mean_error: f64,
    fixed_point_gibbs_mean_error: f64,
    fit_log_likelihood: f64,
    fixed_point_log_likelihood: f64,
    fit_iterations: usize,
    fit_status: String,
}

fn pca_table(rows: &[ReconstructionRow]) -> Result<Table> {
    let mut out = Vec::new();
    for r in rows {
        for (set, e) in [("test", &r.test), ("train", &r.train)] {
            out.push(PcaRow {
                n_hidden: r.n_hidden,
                set: set.to_string(),
                learnable: r.learnable,
                predicted_learned: r.predicted_learned,
                learned: r.learned,
                subspace_overlap: r.subspace_overlap,
                pca_error: e.pca,
                rbm_span_error: e.rbm_span,
                rbm_gibbs_mean_error: e.rbm_gibbs_mean,
                fixed_point_gibbs_mean_error: e.fixed_point_gibbs_mean,
                fit_log_likelihood: r.fit_log_likelihood,
                fixed_point_log_likelihood: r.fixed_point_log_likelihood,
                fit_iterations: r.fit_iterations,
                fit_status: r.fit_status.clone(),
            });
        }
    }
    Ok(Table::from_rows("pca_comparison", &["n_hidden", "set"], &out)?.describe(PCA_COLUMNS))
}

/// The columns of `pca_comparison`; errors are per-pixel mean squared errors (pixel intensities
/// in [0, 1]) of a linear map R, Tr((1 − R) C (1 − R)ᵀ) / N_v.
const PCA_COLUMNS: &[ColumnDoc] = &[
    col("n_hidden", Unit::Count, "N_h, hidden units of the fit"),
    col(
        "set",
        Unit::Label,
        "the images the errors are on: train or test",
    ),
    col(
        "learnable",
        Unit::Count,
        "data modes with variance above 1/μ²",
    ),
    col(
        "predicted_learned",
        Unit::Count,
        "modes the analytic fixed point learns",
    ),
    col("learned", Unit::Count, "modes the fit learned"),
    col(
        "subspace_overlap",
        Unit::One,
        "‖U_qᵀV‖_F² / q between the top-q data eigenvectors and the learned directions",
    ),
    col(
        "pca_error",
        Unit::One,
        "error of the projection onto the top-q data eigenvectors (q = learned)",
    ),
    col(
        "rbm_span_error",
        Unit::One,
        "error of the projection onto the span of the learned directions of W",
    ),
    col(
        "rbm_gibbs_mean_error",
        Unit::One,
        "error of the mean of k Gibbs sweeps of the fitted model",
    ),
    col(
        "fixed_point_gibbs_mean_error",
        Unit::One,
        "the same for the analytic fixed point",
    ),
    col(
        "fit_log_likelihood",
        Unit::Nats,
        "mean log-likelihood per training image of the fit",
    ),
    col(
        "fixed_point_log_likelihood",
        Unit::Nats,
        "the same for the analytic fixed point",
    ),
    col("fit_iterations", Unit::Updates, "iterations of the fit"),
    col(
        "fit_status",
        Unit::Label,
        "converged, stalled (no step raised the likelihood beyond rounding) or iteration limit",
    ),
];

/// One mode of one fit: data, model and predicted variance.
#[derive(Default, serde::Serialize)]
struct LearnedModeRow {
    n_hidden: usize,
    mode: usize,
    data_variance: f64,
    model_variance: f64,
    predicted_variance: f64,
    relative_error: f64,
}

impl EmitStage {
    fn spectrum_figure(&self, eigenvalues: &Array1<f64>, never_lit: usize) -> Result<Figure> {
        let n = eigenvalues.len();
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
        Ok(Figure::single(Panel::Line(LineChart {
            title: format!(
                "MNIST correlation spectrum: {learnable} modes above 1/μ², {zeros} below \
                 1e-12·c_max ({never_lit} pixels never lit)"
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
        })))
    }

    /// Predicted model variance of mode a: c_a if it is among the N_h largest above 1/μ²,
    /// else 1/μ².
    fn predicted_variance(&self, eigenvalues: &Array1<f64>, n_hidden: usize, a: usize) -> f64 {
        let cutoff = 1.0 / self.mu_squared;
        if a < n_hidden && eigenvalues[a] > cutoff {
            eigenvalues[a]
        } else {
            cutoff
        }
    }

    fn learned_spectrum_table(
        &self,
        eigenvalues: &Array1<f64>,
        model_variances: &[(usize, Array1<f64>)],
    ) -> Result<Table> {
        let mut rows = Vec::new();
        for (n_hidden, variances) in model_variances {
            for (a, &v) in variances.iter().enumerate() {
                let predicted = self.predicted_variance(eigenvalues, *n_hidden, a);
                rows.push(LearnedModeRow {
                    n_hidden: *n_hidden,
                    mode: a,
                    data_variance: eigenvalues[a],
                    model_variance: v,
                    predicted_variance: predicted,
                    relative_error: (v - predicted) / predicted,
                });
            }
        }
        Ok(
            Table::from_rows("learned_spectrum", &["n_hidden", "mode"], &rows)?.describe(&[
                col("n_hidden", Unit::Count, "N_h, hidden units of the fit"),
                col(
                    "mode",
                    Unit::Index,
                    "a, the data mode (variance descending)",
                ),
                col(
                    "data_variance",
                    Unit::One,
                    "c_a, the data variance of the mode",
                ),
                col(
                    "model_variance",
                    Unit::One,
                    "the fitted model's variance along the mode",
                ),
                col(
                    "predicted_variance",
                    Unit::One,
                    "c_a if among the N_h largest above 1/μ², else 1/μ²",
                ),
                col(
                    "relative_error",
                    Unit::One,
                    "(model − predicted) / predicted",
                ),
            ]),
        )
    }

    fn learned_spectrum_figure(
        &self,
        eigenvalues: &Array1<f64>,
        model_variances: &[(usize, Array1<f64>)],
    ) -> Figure {
        let floor = 1e-12 * eigenvalues.iter().copied().fold(0.0, f64::max);
        let data: Vec<(f64, f64)> = eigenvalues
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > floor)
            .map(|(a, &c)| (a as f64, c))
            .collect();
        let mut series = vec![Series::new(Some("data c_a".into()), data, 0, Style::Line)];
        for (index, (n_hidden, variances)) in model_variances.iter().enumerate() {
            series.push(Series::new(
                Some(format!("model, N_h = {n_hidden}")),
                variances
                    .iter()
                    .enumerate()
                    .map(|(a, &v)| (a as f64, v))
                    .collect(),
                index + 1,
                Style::Line,
            ));
        }
        series.push(Series::hline(
            Some(format!("1/μ² = 1/{}", self.mu_squared)),
            1.0 / self.mu_squared,
            0.0,
            eigenvalues.len() as f64,
            7,
        ));
        Figure::single(Panel::Line(LineChart {
            title: "Learned spectrum: the N_h largest variances above 1/μ², the rest at 1/μ²"
                .into(),
            x_label: "mode index a (variance descending)".into(),
            y_label: "variance".into(),
            log_y: true,
            series,
            ..Default::default()
        }))
    }

    fn regeneration_figure(
        &self,
        dir: &std::path::Path,
        what: &str,
        caption: &str,
    ) -> Result<Figure> {
        let digits: Array2<f64> = load_array(dir, None, "test_digits")?;
        let mut panels = vec![Panel::Images(ImageGrid {
            title: "test digits".into(),
            images: digits,
            side: SIDE,
            columns: GRID_COLUMNS,
        })];
        for &n_hidden in &self.n_hidden {
            panels.push(Panel::Images(ImageGrid {
                title: format!(
                    "N_h = {n_hidden}, {caption} {} Gibbs steps",
                    self.gibbs_steps
                ),
                images: load_array(dir, Some(n_hidden), what)?,
                side: SIDE,
                columns: GRID_COLUMNS,
            }));
        }
        Ok(Figure::grid(panels, 4, (380, 300)))
    }

    /// The relative excess of the kernel eigenvalue, (λ_a − κ_a)/κ_a = (x_a* − x_a)·c_a with
    /// x = σ²ξ², on a log scale: straight lines of slope −1/τ in the linear regime.
    fn relaxation_figure(&self, ctx: &StageContext<'_>, rows: &[RelaxationRow]) -> Result<Figure> {
        let s = &self.relaxation_settings;
        let mut by_update = Vec::new();
        let mut collapsed = Vec::new();
        let mut longest: f64 = 0.0;
        for (lr_index, (&rate, run_id)) in s.learning_rates.iter().zip(&self.runs).enumerate() {
            let (updates, xi_squared) = load_relaxation(ctx.upstream(run_id)?, rate)?;
            let style = if lr_index == 0 {
                Style::Line
            } else {
                Style::Dashed
            };
            for (column, &mode) in s.modes.iter().enumerate() {
                let Some(row) = rows
                    .iter()
                    .find(|r| r.mode == mode && r.learning_rate == rate)
                else {
                    continue;
                };
                // Below ~1e-6 the excess is the residual of the fitted fixed point, not dynamics.
                let points: Vec<(f64, f64)> = updates
                    .iter()
                    .zip(xi_squared.column(column))
                    .map(|(&u, &x)| (u, (row.plateau_predicted - x) * row.data_variance))
                    .filter(|&(_, excess)| excess > 1e-6)
                    .collect();
                let tau = match row.tau_fit {
                    Some(tau) => format!("τ = {tau:.1} (pred. {:.1})", row.tau_predicted),
                    None => "no fit".into(),
                };
                by_update.push(Series::new(
                    Some(format!("a = {mode}, α = {rate:e}: {tau}")),
                    points.clone(),
                    column,
                    style,
                ));
                let scaled: Vec<(f64, f64)> = points
                    .iter()
                    .map(|&(u, y)| (u * rate * row.gamma, y))
                    .collect();
                longest = scaled.iter().map(|p| p.0).fold(longest, f64::max);
                collapsed.push(Series::new(
                    (lr_index == 0).then(|| format!("a = {mode}, c_a = {:.3}", row.data_variance)),
                    scaled,
                    column,
                    style,
                ));
            }
        }
        let start = s.start_kernel_factor - 1.0;
        let steps = 200;
        collapsed.push(Series::new(
            Some("(f − 1)·e^{−αγ_a t}, linearised flow".into()),
            (0..=steps)
                .map(|i| {
                    let x = longest * i as f64 / steps as f64;
                    (x, start * (-x).exp())
                })
                .filter(|&(_, y)| y > 1e-6)
                .collect(),
            7,
            Style::Dashed,
        ));
        Ok(Figure::grid(
            vec![
                Panel::Line(LineChart {
                    title: format!(
                        "MNIST, N_h = {}: return to the fixed point from λ_a = {}κ_a (solid α₁, \
                         dashed α₂)",
                        s.n_hidden, s.start_kernel_factor
                    ),
                    x_label: "update t".into(),
                    y_label: "(λ_a − κ_a)/κ_a".into(),
                    log_y: true,
                    series: by_update,
                    ..Default::default()
                }),
                Panel::Line(LineChart {
                    title: "Against α·γ_a·t, γ_a = 2σ²(μ² − κ_a)/κ_a²".into(),
                    x_label: "α γ_a t".into(),
                    y_label: "(λ_a − κ_a)/κ_a".into(),
                    log_y: true,
                    series: collapsed,
                    ..Default::default()
                }),
            ],
            2,
            (900, 600),
        ))
    }
}
