//! Emit stage: the experiment's tables and figures, one function (and file) per figure item.
//! Every figure has a table with its data; every table is built from typed rows.
//!
//! | item | function | table(s) | figure(s) |
//! |---|---|---|---|
//! | 1 spectrum flow | [`spectrum::spectrum_flow`] | `spectrum_flow`, `fixed_points` | `spectrum_flow_<fit>` |
//! | 2 ξ² plateaus | [`spectrum::xi_squared_flow`] | `xi_squared_flow` | `xi_squared_flow_<fit>` |
//! | 3 cutoff by N_h | [`cutoff::cutoff_hidden`] | `cutoff_hidden` | `cutoff_hidden` |
//! | 4 cutoff by μ² | [`cutoff::cutoff_mass`] | `cutoff_mass` | `cutoff_mass` |
//! | 5 propagator | [`propagator::propagators`] | `propagator_distance`, `propagator_matrices` | `propagator_distance`, `propagator_heatmaps_<fit>` |
//! | 6 action density | [`action::action_densities`] | `action_density`, `action_density_histogram` | `action_density` |
//! | 7 2×1 toy | [`toy_angle::toy_angle`] | `toy_angle` | `toy_angle` |
//! | 8 μ trained | [`mu::mu_flow`] | `mu_flow`, `mu_final` | `mu_flow` |
//! | 9 relaxation | [`relaxation::relaxation`] | `relaxation` | `relaxation` |

mod action;
mod cutoff;
mod mu;
mod propagator;
mod relaxation;
mod spectrum;
mod toy_angle;

use std::path::PathBuf;

use super::evaluate::{self, EvaluateOutput};
use super::fit::{self, FitOutput};
use super::preprocess;
use crate::emit::table::{ColumnDoc, Unit, col};
use crate::error::Result;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::spec::rbm_scalar::{FitGroup, FitParams, GradientMode};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct EmitStage {
    pub fits: Vec<FittedPoint>,
    pub histogram_bins: usize,
    pub target: StageHandle,
    pub toy: StageHandle,
}

/// One sweep point with its fit and evaluate instances.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct FittedPoint {
    pub params: FitParams,
    pub fit: StageHandle,
    pub evaluate: StageHandle,
}

/// One fit with everything its fit and evaluate instances wrote.
struct Run<'a> {
    params: &'a FitParams,
    label: String,
    fit: FitOutput,
    eval: EvaluateOutput,
}

impl Run<'_> {
    fn mode(&self) -> GradientMode {
        GradientMode::of(&self.params.negative_phase)
    }

    /// What sets this fit apart within its family, as a figure reads it: `N_h = 10`,
    /// `μ² = 9`, `exact gradient`; the family's name for a fit without a sweep point.
    fn caption(&self) -> String {
        let parts: Vec<String> = self
            .params
            .sweep_point
            .iter()
            .map(|(key, value)| match key.as_str() {
                "n_hidden" => format!("N_h = {value}"),
                "mu_squared" => format!("μ² = {value}"),
                "learning_rate" => format!("α = {value}"),
                "batch_size" => format!("|B| = {value}"),
                "mode" if value == "pcd" => "PCD gradient".to_string(),
                "mode" => format!("{value} gradient"),
                _ => format!("{key} = {value}"),
            })
            .collect();
        if parts.is_empty() {
            family_title(self.params.group).to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// A fit family as a figure's panel title names it.
fn family_title(group: FitGroup) -> &'static str {
    match group {
        FitGroup::Flow => "flow to the target",
        FitGroup::CutoffHidden => "cutoff by the number of hidden nodes",
        FitGroup::CutoffMass => "cutoff by the hidden mass μ²",
        FitGroup::MuTrained => "μ² trained",
        FitGroup::Relaxation => "relaxation",
    }
}

/// `runs` split into their families, in the order the families first appear.
fn families<'r, 'a>(runs: &[&'r Run<'a>]) -> Vec<(FitGroup, Vec<&'r Run<'a>>)> {
    let mut out: Vec<(FitGroup, Vec<&Run>)> = Vec::new();
    for &r in runs {
        match out.iter_mut().find(|(g, _)| *g == r.params.group) {
            Some((_, members)) => members.push(r),
            None => out.push((r.params.group, vec![r])),
        }
    }
    out
}

/// Where an item writes: the stage's `tables/` and `figures/` folders.
/// Columns the rbm-scalar tables share.
const SHARED_COLUMNS: &[ColumnDoc] = &[
    col(
        "instance",
        Unit::Label,
        "the fit: its group and swept parameters",
    ),
    col("update", Unit::Updates, "parameter updates done"),
    col(
        "index",
        Unit::Index,
        "a, the mode (target eigenvalues κ_a ascending)",
    ),
    col(
        "kappa",
        Unit::One,
        "κ_a, the target's eigenvalue of the mode (lattice units)",
    ),
    col("n_hidden", Unit::Count, "N_h, hidden units"),
    col(
        "mu_squared",
        Unit::One,
        "μ², the hidden mass term (lattice units)",
    ),
];

struct Out {
    tables: PathBuf,
    figures: PathBuf,
}

impl Stage for EmitStage {
    const KIND: StageKind = StageKind::Emit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-scalar/emit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let (_, target_cov, kappa) = preprocess::load(ctx.upstream(&self.target)?)?;
        let kappa = kappa.to_vec();
        let mut runs = Vec::with_capacity(self.fits.len());
        for point in &self.fits {
            let label = point.params.label();
            runs.push(Run {
                params: &point.params,
                fit: fit::load(ctx.upstream(&point.fit)?, &label)?,
                eval: evaluate::load(ctx.upstream(&point.evaluate)?, &label)?,
                label,
            });
        }
        let out = Out {
            tables: ctx.out_dir.join("tables"),
            figures: ctx.out_dir.join("figures"),
        };
        let of =
            |g: FitGroup| -> Vec<&Run> { runs.iter().filter(|r| r.params.group == g).collect() };
        let observed: Vec<&Run> = runs
            .iter()
            .filter(|r| r.params.group != FitGroup::Relaxation)
            .collect();
        let items: [&dyn Fn() -> Result<()>; 9] = [
            &|| spectrum::spectrum_flow(&of(FitGroup::Flow), &kappa, &out),
            &|| spectrum::xi_squared_flow(&of(FitGroup::Flow), &kappa, &out),
            &|| cutoff::cutoff_hidden(&of(FitGroup::CutoffHidden), &kappa, &out),
            &|| cutoff::cutoff_mass(&of(FitGroup::CutoffMass), &kappa, &out),
            &|| propagator::propagators(&observed, &target_cov, &out),
            &|| action::action_densities(&observed, self.histogram_bins, &out),
            &|| toy_angle::toy_angle(ctx.upstream(&self.toy)?, &out),
            &|| mu::mu_flow(&of(FitGroup::MuTrained), &kappa, &out),
            &|| relaxation::relaxation(&of(FitGroup::Relaxation), &out),
        ];
        ctx.progress.set_length(items.len() as u64);
        for (done, item) in items.iter().enumerate() {
            item()?;
            ctx.progress.set_position(done as u64 + 1);
        }
        Ok(())
    }
}

/// Column `a` of a records × width trajectory as (update, value) points.
fn column_against_updates(
    fit: &FitOutput,
    values: &ndarray::Array2<f64>,
    a: usize,
) -> Vec<(f64, f64)> {
    fit.updates
        .iter()
        .zip(values.column(a))
        .map(|(&u, &v)| (u, v))
        .collect()
}

/// `(index, value)` points of a per-mode list.
fn against_index(values: &[f64]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(a, &v)| (a as f64, v))
        .collect()
}
