//! Emit stage: the tables `hessian_zero_modes` (one row per configuration and point: predicted
//! flat directions by cause against the count, threshold, gaps, largest eigenvalue, gradient
//! norm) and `hessian_spectrum` (every eigenvalue against its closed form and what direction it
//! is), and the figure `hessian_spectrum` (|eigenvalue| on a log scale per configuration, the
//! predicted flat block marked); for the deformations, `deformation_summary` (per deformation,
//! N_h and ε: does it break the rotations, flat directions before, predicted and counted, the
//! lightest lifted mass against closed form and first order), `deformation_shortcut` (what
//! taking the Hessian at the undeformed minimum instead would have counted), `pseudo_goldstone_masses` (every
//! lifted eigenvalue) and the figure `pseudo_goldstone_masses` (masses against ε, log-log).

use serde::Serialize;

use super::deform::{self, DeformedPoint};
use super::evaluate::{self, PointSpectrum};
use super::{emit_ensemble, emit_orbit};
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::table::{ColumnDoc, Table, Unit, col};
use crate::error::Result;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::spec::goldstone_modes::{Configuration, Deformation};

#[derive(Serialize, serde::Deserialize)]
pub struct EmitStage {
    pub configurations: Vec<(Configuration, StageHandle)>,
    pub deformations: Vec<(Deformation, usize, StageHandle)>,
    pub diffusions: Vec<emit_orbit::DiffusionInstance>,
    /// (stage label, handle) of each weight-correlation ensemble.
    pub ensembles: Vec<(String, StageHandle)>,
    pub scan_batch: usize,
    pub scan_learning_rate: f64,
    pub diffusion_mu_squared: f64,
}

#[derive(Default, Serialize)]
struct DeformationRow {
    deformation: String,
    n_hidden: usize,
    epsilon: f64,
    symmetry: String,
    rotation_residual: f64,
    deformed_rotation_residual: f64,
    undeformed_flat: usize,
    predicted_flat: usize,
    counted_flat: usize,
    threshold: f64,
    gradient_norm: f64,
    max_abs_deviation: Option<f64>,
    lifted: usize,
    lightest_mass: Option<f64>,
    lightest_mass_predicted: Option<f64>,
    lightest_mass_first_order: Option<f64>,
    heaviest_mass: Option<f64>,
    heaviest_mass_first_order: Option<f64>,
}

#[derive(Default, Serialize)]
struct ShortcutRow {
    deformation: String,
    n_hidden: usize,
    epsilon: f64,
    counted_flat: usize,
    shortcut_flat: usize,
    lightest_mass: Option<f64>,
    shortcut_lightest: Option<f64>,
    shortcut_gradient_norm: f64,
}

#[derive(Default, Serialize)]
struct MassRow {
    deformation: String,
    n_hidden: usize,
    epsilon: f64,
    index: usize,
    measured: f64,
    predicted: f64,
    first_order: f64,
}

#[derive(Default, Serialize)]
struct ZeroModeRow {
    configuration: String,
    point: String,
    n_hidden: usize,
    mu_squared: f64,
    mu: &'static str,
    coordinates: usize,
    learned_modes: usize,
    predicted_orbit: usize,
    predicted_degenerate_level: usize,
    predicted_mass_shift: usize,
    predicted_flat: usize,
    counted_flat: usize,
    counted_negative: usize,
    threshold: f64,
    /// predicted gap / noise scale: the count is only as firm as this ratio is large.
    gap_over_noise: f64,
    gradient_norm: f64,
    predicted_gap: f64,
    measured_gap: Option<f64>,
    predicted_largest: f64,
    measured_largest: f64,
    max_abs_deviation: f64,
    updates: usize,
}

#[derive(Default, Serialize)]
struct SpectrumRow {
    configuration: String,
    point: String,
    index: usize,
    measured: f64,
    predicted: f64,
    direction: String,
}

/// |h| below this is drawn at it: a log axis has no zero.
const FLOOR: f64 = 1e-18;

impl Stage for EmitStage {
    const KIND: StageKind = StageKind::Emit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("goldstone-modes/emit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let mut zero_rows = Vec::new();
        let mut spectrum_rows = Vec::new();
        let mut panels = Vec::new();
        for (configuration, handle) in &self.configurations {
            let label = configuration.label();
            let spectra: Vec<PointSpectrum> = evaluate::load(ctx.upstream(handle)?)?;
            for s in &spectra {
                zero_rows.push(ZeroModeRow {
                    configuration: label.clone(),
                    point: s.point.clone(),
                    n_hidden: configuration.n_hidden,
                    mu_squared: s.mu_squared,
                    mu: if configuration.mu_trained {
                        "trained"
                    } else {
                        "fixed"
                    },
                    coordinates: s.coordinates,
                    learned_modes: s.learned,
                    predicted_orbit: s.predicted_orbit,
                    predicted_degenerate_level: s.predicted_degenerate_level,
                    predicted_mass_shift: s.predicted_mass_shift,
                    predicted_flat: s.predicted_flat,
                    counted_flat: s.counted_flat,
                    counted_negative: s.counted_negative,
                    threshold: s.threshold,
                    gap_over_noise: s.predicted_gap / s.noise_scale,
                    gradient_norm: s.gradient_norm,
                    predicted_gap: s.predicted_gap,
                    measured_gap: s.measured_gap,
                    predicted_largest: s.predicted_largest,
                    measured_largest: s.measured_largest,
                    max_abs_deviation: s.max_abs_deviation,
                    updates: s.updates,
                });
                for (index, ((m, p), d)) in s
                    .measured
                    .iter()
                    .zip(&s.predicted)
                    .zip(&s.directions)
                    .enumerate()
                {
                    spectrum_rows.push(SpectrumRow {
                        configuration: label.clone(),
                        point: s.point.clone(),
                        index,
                        measured: *m,
                        predicted: *p,
                        direction: d.clone(),
                    });
                }
            }
            panels.push(spectrum_panel(configuration, &spectra));
        }
        let tables = ctx.out_dir.join("tables");
        Table::from_rows(
            "hessian_zero_modes",
            &["configuration", "point"],
            &zero_rows,
        )?
        .describe(KEY_COLUMNS)
        .describe(ZERO_MODE_COLUMNS)
        .write(&tables)?;
        Table::from_rows(
            "hessian_spectrum",
            &["configuration", "point", "index"],
            &spectrum_rows,
        )?
        .describe(KEY_COLUMNS)
        .describe(&[
            col("index", Unit::Index, "position in the sorted spectrum"),
            col(
                "measured",
                Unit::One,
                "the Hessian eigenvalue (of ℒ = −log-likelihood per sample)",
            ),
            col("predicted", Unit::One, "its closed form"),
            col(
                "direction",
                Unit::Label,
                "which block of the closed form it belongs to",
            ),
        ])
        .write(&tables)?;
        let columns = panels.len().min(3);
        Figure::grid(panels, columns, (520, 400))
            .write(&ctx.out_dir.join("figures"), "hessian_spectrum")?;
        self.deformations(ctx)?;
        emit_ensemble::emit(ctx, &self.ensembles)?;
        emit_orbit::emit(
            ctx,
            &self.diffusions,
            self.scan_batch,
            self.scan_learning_rate,
            self.diffusion_mu_squared,
        )
    }
}

impl EmitStage {
    fn deformations(&self, ctx: &StageContext<'_>) -> Result<()> {
        let mut summary = Vec::new();
        let mut masses = Vec::new();
        let mut shortcuts = Vec::new();
        let mut panels = Vec::new();
        for (deformation, n_hidden, handle) in &self.deformations {
            let points: Vec<DeformedPoint> = deform::load(ctx.upstream(handle)?)?;
            for p in &points {
                summary.push(DeformationRow {
                    deformation: deformation.to_string(),
                    n_hidden: *n_hidden,
                    epsilon: p.epsilon,
                    symmetry: p.symmetry.clone(),
                    rotation_residual: p.rotation_residual,
                    deformed_rotation_residual: p.deformed_rotation_residual,
                    undeformed_flat: p.undeformed_flat,
                    predicted_flat: p.predicted_flat,
                    counted_flat: p.counted_flat,
                    threshold: p.threshold,
                    gradient_norm: p.gradient_norm,
                    max_abs_deviation: p.max_abs_deviation,
                    lifted: p.masses.len(),
                    lightest_mass: p.masses.first().copied(),
                    lightest_mass_predicted: p.masses_predicted.first().copied(),
                    lightest_mass_first_order: p.masses_first_order.first().copied(),
                    heaviest_mass: p.masses.last().copied(),
                    heaviest_mass_first_order: p.masses_first_order.last().copied(),
                });
                if let (Some(flat), Some(norm)) = (p.shortcut_flat, p.shortcut_gradient_norm) {
                    shortcuts.push(ShortcutRow {
                        deformation: deformation.to_string(),
                        n_hidden: *n_hidden,
                        epsilon: p.epsilon,
                        counted_flat: p.counted_flat,
                        shortcut_flat: flat,
                        lightest_mass: p.masses.first().copied(),
                        shortcut_lightest: p.shortcut_lightest,
                        shortcut_gradient_norm: norm,
                    });
                }
                for (index, ((m, pr), f)) in p
                    .masses
                    .iter()
                    .zip(&p.masses_predicted)
                    .zip(&p.masses_first_order)
                    .enumerate()
                {
                    masses.push(MassRow {
                        deformation: deformation.to_string(),
                        n_hidden: *n_hidden,
                        epsilon: p.epsilon,
                        index,
                        measured: *m,
                        predicted: *pr,
                        first_order: *f,
                    });
                }
            }
            if *deformation == Deformation::WeightedL2 {
                panels.push(mass_panel(*n_hidden, &points));
            }
        }
        let tables = ctx.out_dir.join("tables");
        Table::from_rows(
            "deformation_summary",
            &["deformation", "n_hidden", "epsilon"],
            &summary,
        )?
        .describe(KEY_COLUMNS)
        .describe(DEFORMATION_COLUMNS)
        .write(&tables)?;
        Table::from_rows(
            "deformation_shortcut",
            &["deformation", "n_hidden", "epsilon"],
            &shortcuts,
        )?
        .describe(KEY_COLUMNS)
        .describe(DEFORMATION_COLUMNS)
        .describe(&[
            col(
                "shortcut_flat",
                Unit::Count,
                "flat directions of the deformed Hessian taken at the undeformed minimum",
            ),
            col("shortcut_lightest", Unit::One, "its smallest eigenvalue above the threshold"),
            col(
                "shortcut_gradient_norm",
                Unit::One,
                "‖∇(ℒ + penalty)‖ at the undeformed minimum (why the shortcut is wrong: it is not stationary)",
            ),
        ])
        .write(&tables)?;
        Table::from_rows(
            "pseudo_goldstone_masses",
            &["deformation", "n_hidden", "epsilon", "index"],
            &masses,
        )?
        .describe(KEY_COLUMNS)
        .describe(&[
            col(
                "index",
                Unit::Index,
                "position among the lifted eigenvalues, lightest first",
            ),
            col(
                "measured",
                Unit::One,
                "the lifted Hessian eigenvalue (pseudo-Goldstone mass)",
            ),
            col("predicted", Unit::One, "its closed form"),
            col(
                "first_order",
                Unit::One,
                "its first order in ε: δ(κ_d − κ_a)/(2μ² − κ_a − κ_d)",
            ),
        ])
        .write(&tables)?;
        let columns = panels.len().clamp(1, 2);
        Figure::grid(panels, columns, (560, 420))
            .write(&ctx.out_dir.join("figures"), "pseudo_goldstone_masses")
    }
}

/// The weighted penalty at one N_h: the lightest, median and heaviest lifted mass against ε
/// (markers) with their first-order predictions (lines).
fn mass_panel(n_hidden: usize, points: &[DeformedPoint]) -> Panel {
    let pick = |values: &[f64], which: usize| -> Option<f64> {
        match which {
            0 => values.first().copied(),
            1 => values.get(values.len() / 2).copied(),
            _ => values.last().copied(),
        }
    };
    let mut series = Vec::new();
    for (which, name) in ["lightest", "median", "heaviest"].iter().enumerate() {
        let measured: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| pick(&p.masses, which).map(|m| (p.epsilon, m)))
            .collect();
        let first: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| pick(&p.masses_first_order, which).map(|m| (p.epsilon, m)))
            .collect();
        series.push(Series::new(
            Some(format!("{name} mass (Hessian)")),
            measured,
            which,
            Style::Markers,
        ));
        series.push(Series::new(
            (which == 0).then(|| "first order in ε".into()),
            first,
            which,
            Style::Dashed,
        ));
    }
    Panel::Line(LineChart {
        title: format!(
            "Pseudo-Goldstone masses, ε Σ c_j‖w_j‖², N_h = {n_hidden} ({} lifted)",
            points.first().map_or(0, |p| p.masses.len())
        ),
        x_label: "ε".into(),
        y_label: "lifted Hessian eigenvalue".into(),
        log_x: true,
        log_y: true,
        series,
        hide_legend: false,
    })
}

/// One configuration: sorted |h| at both points, the closed form, the threshold, and a vertical
/// line after the predicted flat block.
fn spectrum_panel(configuration: &Configuration, spectra: &[PointSpectrum]) -> Panel {
    let mut series = Vec::new();
    let mut top = FLOOR;
    for (color, s) in spectra.iter().enumerate() {
        let points: Vec<(f64, f64)> = s
            .measured
            .iter()
            .enumerate()
            .map(|(k, v)| (k as f64, v.abs().max(FLOOR)))
            .collect();
        top = points.iter().fold(top, |m, p| m.max(p.1));
        series.push(Series::new(
            Some(format!("|h|, {} point", s.point)),
            points,
            color,
            Style::Markers,
        ));
    }
    if let Some(s) = spectra.first() {
        let n = s.predicted.len() as f64;
        series.push(Series::new(
            Some("closed form (exact point)".into()),
            s.predicted
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > 0.0)
                .map(|(k, v)| (k as f64, *v))
                .collect(),
            2,
            Style::Line,
        ));
        let edge = s.predicted_flat as f64 - 0.5;
        series.push(Series::new(
            Some(format!("{} predicted flat directions", s.predicted_flat)),
            vec![(edge, FLOOR), (edge, top * 2.0)],
            3,
            Style::Dashed,
        ));
        series.push(Series::hline(
            Some("zero threshold (exact point)".into()),
            s.threshold,
            0.0,
            n - 1.0,
            4,
        ));
    }
    Panel::Line(LineChart {
        title: format!(
            "N_h = {}, μ² = {}{}",
            configuration.n_hidden,
            configuration.mu_squared,
            if configuration.mu_trained {
                " (trained)"
            } else {
                ""
            }
        ),
        x_label: "eigenvalue index (ascending)".into(),
        y_label: "|Hessian eigenvalue|".into(),
        log_x: false,
        log_y: true,
        series,
        hide_legend: false,
    })
}

/// Columns the goldstone-modes tables share: the configuration and deformation keys.
pub(super) const KEY_COLUMNS: &[ColumnDoc] = &[
    col(
        "configuration",
        Unit::Label,
        "the configuration: N_h, μ² and whether μ² is trained",
    ),
    col(
        "point",
        Unit::Label,
        "exact (closed-form fixed point) or trained (reached by exact-gradient descent)",
    ),
    col("n_hidden", Unit::Count, "N_h, hidden units"),
    col(
        "mu_squared",
        Unit::One,
        "μ², the visible mass term (lattice units)",
    ),
    col(
        "deformation",
        Unit::Label,
        "the symmetry-breaking deformation",
    ),
    col(
        "ensemble",
        Unit::Label,
        "the ensemble: configuration, and the penalty for the contrast",
    ),
    col("epsilon", Unit::One, "ε, the deformation's strength"),
    col(
        "estimator",
        Unit::Label,
        "the gradient estimator of the stochastic runs",
    ),
    col("learning_rate", Unit::One, "α, the learning rate"),
    col("batch", Unit::Count, "|B|, samples per update"),
    col(
        "alpha_over_batch",
        Unit::One,
        "α/|B|, the effective temperature",
    ),
    col(
        "kappa",
        Unit::One,
        "κ, the target eigenvalue of the mode (lattice units)",
    ),
];

/// The columns of `hessian_zero_modes`.
const ZERO_MODE_COLUMNS: &[ColumnDoc] = &[
    col("mu", Unit::Label, "whether μ² is fixed or trained"),
    col(
        "coordinates",
        Unit::Count,
        "parameters the Hessian is taken over",
    ),
    col(
        "learned_modes",
        Unit::Count,
        "r, target modes the point has learned",
    ),
    col(
        "predicted_orbit",
        Unit::Count,
        "flat directions of the orbit: dim O(N_h) − dim O(N_h − r)",
    ),
    col(
        "predicted_degenerate_level",
        Unit::Count,
        "flat directions from ± momentum pairs that N_h cuts",
    ),
    col(
        "predicted_mass_shift",
        Unit::Count,
        "the flat direction of a trained μ² with every mode learned",
    ),
    col(
        "predicted_flat",
        Unit::Count,
        "all predicted flat directions",
    ),
    col(
        "counted_flat",
        Unit::Count,
        "eigenvalues with |h| below the threshold",
    ),
    col(
        "counted_negative",
        Unit::Count,
        "eigenvalues below −threshold (a saddle, not a minimum)",
    ),
    col(
        "threshold",
        Unit::One,
        "τ = √(noise · gap), below which an eigenvalue counts as zero",
    ),
    col(
        "gap_over_noise",
        Unit::One,
        "predicted gap / noise scale: how firm the count is",
    ),
    col("gradient_norm", Unit::One, "‖∇ℒ‖ at the point"),
    col(
        "predicted_gap",
        Unit::One,
        "the smallest predicted non-zero eigenvalue",
    ),
    col(
        "measured_gap",
        Unit::One,
        "the smallest eigenvalue above the threshold",
    ),
    col(
        "predicted_largest",
        Unit::One,
        "the largest predicted eigenvalue",
    ),
    col("measured_largest", Unit::One, "the largest eigenvalue"),
    col(
        "max_abs_deviation",
        Unit::One,
        "max over the sorted spectra of |measured − predicted|",
    ),
    col(
        "updates",
        Unit::Updates,
        "exact-gradient updates that reached a trained point (0 for exact points)",
    ),
];

/// The columns of `deformation_summary` (and the shared ones of `deformation_shortcut`).
const DEFORMATION_COLUMNS: &[ColumnDoc] = &[
    col(
        "symmetry",
        Unit::Label,
        "what the deformation does to W → WR: kept, reparametrised or broken",
    ),
    col(
        "rotation_residual",
        Unit::One,
        "|ℒ_ε(WR) − ℒ_ε(W)| at a random W and Haar R",
    ),
    col(
        "deformed_rotation_residual",
        Unit::One,
        "the same for the rotation as the deformation maps it (W → WDRD⁻¹ for hidden widths)",
    ),
    col("undeformed_flat", Unit::Count, "flat directions at ε = 0"),
    col(
        "predicted_flat",
        Unit::Count,
        "predicted flat directions at the deformed minimum",
    ),
    col(
        "counted_flat",
        Unit::Count,
        "eigenvalues below the threshold at the deformed minimum",
    ),
    col(
        "threshold",
        Unit::One,
        "τ, below which an eigenvalue counts as zero",
    ),
    col("gradient_norm", Unit::One, "‖∇ℒ_ε‖ at the deformed minimum"),
    col(
        "max_abs_deviation",
        Unit::One,
        "max |measured − closed form| over the spectrum (missing for hidden widths: no closed form)",
    ),
    col(
        "lifted",
        Unit::Count,
        "flat directions the deformation gives a mass",
    ),
    col("lightest_mass", Unit::One, "the smallest lifted eigenvalue"),
    col("lightest_mass_predicted", Unit::One, "its closed form"),
    col(
        "lightest_mass_first_order",
        Unit::One,
        "its first order in ε",
    ),
    col("heaviest_mass", Unit::One, "the largest lifted eigenvalue"),
    col(
        "heaviest_mass_first_order",
        Unit::One,
        "its first order in ε",
    ),
];
