//! Item 9: relaxation times of the learnable modes near the fixed point against linear
//! theory, τ_a·α = κ_a²/(2σ²(μ² − κ_a)), per gradient mode and initialisation.

use super::{Out, Run};
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::table::{Table, Unit, col, std_error};
use crate::error::Result;
use crate::experiments::rbm_scalar::evaluate::ModeRelaxation;
use crate::spec::rbm_scalar::{GradientMode, InitKind};

#[derive(Default, serde::Serialize)]
struct RelaxationRow {
    instance: String,
    learning_rate: f64,
    mode: GradientMode,
    init: InitKind,
    ensemble: usize,
    index: usize,
    kappa: f64,
    gamma: f64,
    tau_predicted: f64,
    tau_predicted_discrete: Option<f64>,
    tau_fit: Option<f64>,
    tau_fit_error: Option<f64>,
    ratio: Option<f64>,
    tau_fit_projected: Option<f64>,
    tau_fit_projected_error: Option<f64>,
    ratio_projected: Option<f64>,
    tau_fit_late: Option<f64>,
    tau_fit_late_error: Option<f64>,
    ratio_late: Option<f64>,
}

impl RelaxationRow {
    fn new(r: &Run, m: &ModeRelaxation) -> Self {
        let ratio = |tau: Option<f64>| tau.map(|t| t / m.tau_predicted);
        Self {
            instance: r.label.clone(),
            learning_rate: r.params.learning_rate,
            mode: r.mode(),
            init: r.params.init,
            ensemble: r.params.ensemble,
            index: m.index,
            kappa: m.kappa,
            gamma: m.gamma,
            tau_predicted: m.tau_predicted,
            tau_predicted_discrete: m.tau_predicted_discrete,
            tau_fit: m.tau_fit,
            tau_fit_error: m.tau_fit_error,
            ratio: ratio(m.tau_fit),
            tau_fit_projected: m.tau_fit_projected,
            tau_fit_projected_error: m.tau_fit_projected_error,
            ratio_projected: ratio(m.tau_fit_projected),
            tau_fit_late: m.tau_fit_late,
            tau_fit_late_error: m.tau_fit_late_error,
            ratio_late: ratio(m.tau_fit_late),
        }
    }
}

/// Item 9: `relaxation` (every learnable mode of every fit) and one panel per gradient mode
/// and initialisation, each fit's τ·α against κ with the linear-theory curve.
pub(super) fn relaxation(runs: &[&Run], out: &Out) -> Result<()> {
    let mut rows = Vec::new();
    let mut panels = Vec::new();
    for &mode in GradientMode::ALL {
        for init in [InitKind::Aligned, InitKind::Random] {
            let group: Vec<&Run> = runs
                .iter()
                .copied()
                .filter(|r| r.mode() == mode && r.params.init == init)
                .collect();
            if group.is_empty() {
                continue;
            }
            let (mut k_lo, mut k_hi, mut mu2, mut s2) =
                (f64::INFINITY, f64::NEG_INFINITY, 0.0, 1.0);
            let mut series = Vec::new();
            for (color, r) in group.iter().enumerate() {
                let alpha = r.params.learning_rate;
                mu2 = r.eval.evaluation.mu_squared_final;
                s2 = r.params.sigma_h * r.params.sigma_h;
                let mut points = Vec::new();
                let mut errors = Vec::new();
                for m in r.eval.evaluation.relaxation.iter().filter(|m| m.learnable) {
                    rows.push(RelaxationRow::new(r, m));
                    k_lo = k_lo.min(m.kappa);
                    k_hi = k_hi.max(m.kappa);
                    if let Some(tau) = m.tau_fit {
                        points.push((m.kappa, tau * alpha));
                        errors.push(m.tau_fit_error.unwrap_or(0.0) * alpha);
                    }
                }
                let runs_note = if r.params.ensemble > 1 {
                    format!(", mean of {} runs", r.params.ensemble)
                } else {
                    String::new()
                };
                let mut s = Series::new(
                    Some(format!("α = {alpha}{runs_note}")),
                    points,
                    color,
                    Style::LineMarkers,
                );
                s.errors = Some(errors);
                series.push(s);
            }
            if k_lo.is_finite() {
                let curve = (0..=100)
                    .map(|i| {
                        let k = k_lo + (k_hi - k_lo) * i as f64 / 100.0;
                        (k, k * k / (2.0 * s2 * (mu2 - k)))
                    })
                    .collect();
                series.push(Series::new(
                    Some("1/γ = κ²/(2σ²(μ² − κ))".into()),
                    curve,
                    7,
                    Style::Dashed,
                ));
            }
            panels.push(Panel::Line(LineChart {
                title: format!("{mode} gradient, {init} start"),
                x_label: "κ_a".into(),
                y_label: "τ_a · α".into(),
                log_y: true,
                series,
                ..Default::default()
            }));
        }
    }
    Table::from_rows("relaxation", &["instance", "index"], &rows)?
        .describe(super::SHARED_COLUMNS)
        .describe(&[
            col("learning_rate", Unit::One, "α, the learning rate"),
            col("mode", Unit::Label, "the negative phase: exact gradient or PCD"),
            col("init", Unit::Label, "the start: aligned (W along the target eigenvectors) or random"),
            col("ensemble", Unit::Count, "runs averaged"),
            col("gamma", Unit::One, "γ_a = 2σ_h²(μ² − κ_a)/κ_a², the linear rate per unit αt"),
            col("tau_predicted", Unit::Updates, "1/(αγ_a)"),
            col("tau_predicted_discrete", Unit::Updates, "−1/ln(1 − αγ_a), the discrete-step value"),
            col("tau_fit", Unit::Updates, "τ fitted to the ensemble-mean eigenvalue λ_a(t) = c + A e^{−t/τ}, window from 10 %"),
            std_error("tau_fit_error", "tau_fit", "standard error of tau_fit from the least-squares fit"),
            col("ratio", Unit::One, "tau_fit / tau_predicted"),
            col("tau_fit_projected", Unit::Updates, "the same fit to the ensemble mean of v_aᵀKv_a (v_a the target eigenvector)"),
            std_error("tau_fit_projected_error", "tau_fit_projected", "standard error of tau_fit_projected"),
            col("ratio_projected", Unit::One, "tau_fit_projected / tau_predicted"),
            col("tau_fit_late", Unit::Updates, "the eigenvalue fit with the window from 0.5 % (exact runs only)"),
            std_error("tau_fit_late_error", "tau_fit_late", "standard error of tau_fit_late"),
            col("ratio_late", Unit::One, "tau_fit_late / tau_predicted"),
        ])
        .write(&out.tables)?;
    Figure::grid(panels, 2, (640, 460)).write(&out.figures, "relaxation")
}
