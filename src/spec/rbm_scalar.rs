//! The spec of the scalar-field RBM experiment (`kind = "rbm-scalar"`): raw TOML form and its
//! validated, sweep-expanded parameters.
//!
//! `[target]` sets the lattice field; `[fit]` holds defaults shared by the five fit groups
//! `[fit.flow]`, `[fit.cutoff_hidden]`, `[fit.cutoff_mass]`, `[fit.mu_trained]` and
//! `[fit.relaxation]`, each of which may override any key and sweep any of them by giving a list;
//! `[evaluate]` sets sampling and fitting of observables; `[toy]` the N_v = 2, N_h = 1 rotation.

use serde::{Deserialize, Serialize};

use super::{
    Header, MAX_CHAINS, MAX_GIBBS_STEPS, MAX_MASS_SQUARED, MAX_RECORDS, MAX_UPDATES,
    MIN_MASS_SQUARED, SpecDocument, Sweep,
};
use crate::analysis::relaxation::RelaxationWindow;
use crate::error::Result;
use crate::models::rbm::train::NegativePhase;

macro_rules! fit_tables {
    ($($field:ident : $ty:ty),* $(,)?) => {
        /// One fit table as written: every key optional, each a value or a sweep.
        #[derive(Clone, Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawFitTable {
            $(pub $field: Option<Sweep<$ty>>,)*
        }

        /// `[fit]`: the shared defaults plus one sub-table per group.
        #[derive(Clone, Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawFit {
            $(pub $field: Option<Sweep<$ty>>,)*
            pub flow: Option<RawFitTable>,
            pub cutoff_hidden: Option<RawFitTable>,
            pub cutoff_mass: Option<RawFitTable>,
            pub mu_trained: Option<RawFitTable>,
            pub relaxation: Option<RawFitTable>,
        }

        impl RawFit {
            fn defaults(&self) -> RawFitTable {
                RawFitTable { $($field: self.$field.clone(),)* }
            }
        }

        /// Every fit key of one group resolved to its key path and the values to sweep over
        /// (empty: not given and without a default).
        struct FitAxes {
            $($field: Axis<$ty>,)*
        }

        /// The values of every fit key at one sweep point (`None` where the axis is empty).
        struct FitPoint {
            $($field: Option<$ty>,)*
        }

        impl FitAxes {
            /// (field, key path, number of values) per key, in declaration order — the order
            /// sweeps are expanded in, the first varying slowest.
            fn lengths(&self) -> Vec<(&'static str, &str, usize)> {
                vec![$((stringify!($field), self.$field.key.as_str(), self.$field.values.len()),)*]
            }

            /// The point with value `index[k]` on the k-th axis.
            fn point(&self, index: &[usize]) -> FitPoint {
                let mut at = index.iter().copied();
                FitPoint {
                    $($field: at.next().and_then(|i| self.$field.values.get(i).cloned()),)*
                }
            }

            /// `(field, value)` of the axes with more than one value, for instance labels.
            fn sweep_point(&self, index: &[usize]) -> Vec<(String, String)> {
                let mut at = index.iter().copied();
                let mut out = Vec::new();
                $(
                    let i = at.next().unwrap_or(0);
                    if self.$field.values.len() > 1 {
                        out.push((stringify!($field).to_string(), self.$field.values[i].to_string()));
                    }
                )*
                out
            }
        }
    };
}

/// One fit key of one group: the key path its values came from and the values.
struct Axis<T> {
    key: String,
    values: Vec<T>,
}

fit_tables! {
    n_hidden: i64,
    mu_squared: f64,
    sigma_h: f64,
    train_mu: bool,
    mode: GradientMode,
    chains: i64,
    gibbs_steps: i64,
    learning_rate: f64,
    momentum: f64,
    l2: f64,
    decay: f64,
    decay_every: i64,
    init_scale: f64,
    updates: i64,
    flow_time: f64,
    record_every: i64,
    ensemble: i64,
    init: InitKind,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[allow(dead_code)]
    experiment: super::RawHeader,
    target: RawTarget,
    fit: RawFit,
    evaluate: Option<RawEvaluate>,
    toy: Option<RawToy>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    n_visible: i64,
    mass_squared: f64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvaluate {
    samples: Option<i64>,
    gibbs_steps: Option<i64>,
    jackknife_bins: Option<i64>,
    max_distance: Option<i64>,
    histogram_bins: Option<i64>,
    relaxation: Option<RawRelaxationWindow>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelaxationWindow {
    upper: Option<f64>,
    late_upper: Option<f64>,
    tail_fraction: Option<f64>,
    min_points: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToy {
    kappa_1: Option<f64>,
    kappa_2: Option<f64>,
    mu_squared: Option<f64>,
    sigma_h: Option<f64>,
    theta_0: Option<f64>,
    xi_0: Option<f64>,
    learning_rate: Option<f64>,
    flow_time: Option<f64>,
    record_every: Option<i64>,
}

/// The periodic 1-D free-field target.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct TargetParams {
    pub n_visible: usize,
    pub mass_squared: f64,
}

/// The role a fit group plays in the experiment's figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitGroup {
    Flow,
    CutoffHidden,
    CutoffMass,
    MuTrained,
    Relaxation,
}

impl FitGroup {
    pub const ALL: [FitGroup; 5] = [
        FitGroup::Flow,
        FitGroup::CutoffHidden,
        FitGroup::CutoffMass,
        FitGroup::MuTrained,
        FitGroup::Relaxation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FitGroup::Flow => "flow",
            FitGroup::CutoffHidden => "cutoff_hidden",
            FitGroup::CutoffMass => "cutoff_mass",
            FitGroup::MuTrained => "mu_trained",
            FitGroup::Relaxation => "relaxation",
        }
    }
}

/// One fit instance: a group and one point of its sweep, fully resolved.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct FitParams {
    pub group: FitGroup,
    /// The swept keys and their values at this point (empty when nothing is swept).
    pub sweep_point: Vec<(String, String)>,
    pub n_hidden: usize,
    pub mu_squared: f64,
    pub sigma_h: f64,
    pub train_mu: bool,
    pub negative_phase: NegativePhase,
    pub learning_rate: f64,
    pub momentum: f64,
    pub l2: f64,
    pub decay: f64,
    pub decay_every: usize,
    pub init_scale: f64,
    pub updates: usize,
    pub record_every: usize,
    pub ensemble: usize,
    pub init: InitKind,
}

crate::spec_choice! {
    /// How W starts.
    #[derive(Default)]
    pub enum InitKind ("initialisation") {
        /// W_ij ~ N(0, init_scale²).
        #[default]
        Random = "random",
        /// Column a = init_scale·√N_v · v_a, with v_a the target eigenvector of the a-th
        /// lowest κ: the modes start decoupled, so each relaxes at its own linear rate.
        Aligned = "aligned",
    }
}

crate::spec_choice! {
    /// Which gradient a fit follows: the exact expectation of the model or persistent
    /// contrastive divergence (`chains` Markov chains, `gibbs_steps` sweeps per update).
    #[derive(Default)]
    pub enum GradientMode ("mode") {
        #[default]
        Exact = "exact",
        Pcd = "pcd",
    }
}

impl GradientMode {
    /// The mode of a resolved negative phase.
    pub fn of(phase: &NegativePhase) -> Self {
        match phase {
            NegativePhase::Exact => GradientMode::Exact,
            NegativePhase::Pcd { .. } => GradientMode::Pcd,
        }
    }
}

impl FitParams {
    /// `group` or `group,key=value,…`: the instance label.
    pub fn label(&self) -> String {
        let mut label = self.group.name().to_string();
        for (k, v) in &self.sweep_point {
            label.push_str(&format!(",{k}={v}"));
        }
        label
    }
}

/// Sampling and fitting of observables.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct EvaluateParams {
    pub samples: usize,
    pub gibbs_steps: usize,
    pub jackknife_bins: usize,
    pub max_distance: usize,
    pub histogram_bins: usize,
    pub relaxation: RelaxationWindow,
    /// A second, later window start for the same fit: deep in the linear regime, where the
    /// nonlinear bias of the wide window vanishes (useful for deterministic runs).
    pub late_upper: f64,
}

/// The N_v = 2, N_h = 1 rotation toy.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct ToyParams {
    pub kappa_1: f64,
    pub kappa_2: f64,
    pub mu_squared: f64,
    pub sigma_h: f64,
    pub theta_0: f64,
    pub xi_0: f64,
    pub learning_rate: f64,
    pub updates: usize,
    pub record_every: usize,
}

/// The validated rbm-scalar spec.
#[derive(Clone, Debug, Serialize)]
pub struct RbmScalarSpec {
    pub header: Header,
    pub target: TargetParams,
    pub fits: Vec<FitParams>,
    pub evaluate: EvaluateParams,
    pub toy: ToyParams,
}

/// The largest N_v or N_h: every update diagonalises dense N × N matrices.
const MAX_UNITS: usize = 1000;
/// Bounds of the sampling and ensemble sizes: far above any use, far below an allocation that
/// cannot succeed.
const MAX_SAMPLES: usize = 10_000_000;
const MAX_ENSEMBLE: usize = 10_000;
const MAX_BINS: usize = 10_000;

/// Parses and validates the rbm-scalar spec in `doc`.
pub fn parse(doc: &SpecDocument, header: Header) -> Result<RbmScalarSpec> {
    let raw: RawSpec = doc.deserialize()?;
    let n_visible = positive_int(doc, "target.n_visible", raw.target.n_visible)?;
    if n_visible < 2 {
        return Err(doc.error("target.n_visible", format!("must be >= 2, got {n_visible}")));
    }
    let n_visible = doc.at_most(
        "target.n_visible",
        n_visible,
        MAX_UNITS,
        "every update diagonalises dense N_v × N_v matrices",
    )?;
    let mass_squared = positive(doc, "target.mass_squared", raw.target.mass_squared)?;
    if !(MIN_MASS_SQUARED..=MAX_MASS_SQUARED).contains(&mass_squared) {
        return Err(doc.error(
            "target.mass_squared",
            format!(
                "must be in [{MIN_MASS_SQUARED:e}, {MAX_MASS_SQUARED:e}] (outside, K_φ = −Δ + m² \
                 is singular or its spectrum is flat in double precision), got {mass_squared}"
            ),
        ));
    }
    let target = TargetParams {
        n_visible,
        mass_squared,
    };
    let defaults = raw.fit.defaults();
    let mut fits = Vec::new();
    for group in FitGroup::ALL {
        let table = match group {
            FitGroup::Flow => &raw.fit.flow,
            FitGroup::CutoffHidden => &raw.fit.cutoff_hidden,
            FitGroup::CutoffMass => &raw.fit.cutoff_mass,
            FitGroup::MuTrained => &raw.fit.mu_trained,
            FitGroup::Relaxation => &raw.fit.relaxation,
        };
        let Some(table) = table else {
            return Err(doc.error(
                &format!("fit.{}", group.name()),
                format!("missing table [fit.{}]", group.name()),
            ));
        };
        fits.extend(expand_group(doc, group, table, &defaults, n_visible)?);
    }
    let evaluate = validate_evaluate(doc, raw.evaluate.unwrap_or_default())?;
    let toy = validate_toy(doc, raw.toy.unwrap_or_default())?;
    Ok(RbmScalarSpec {
        header,
        target,
        fits,
        evaluate,
        toy,
    })
}

/// The axis of `field` in `group`: the group's own sweep, else the one shared in `[fit]`,
/// else `default` (no value at all without one).
fn axis<T: Clone>(
    group: FitGroup,
    field: &str,
    own: &Option<Sweep<T>>,
    shared: &Option<Sweep<T>>,
    default: Option<T>,
) -> Axis<T> {
    match (own, shared) {
        (Some(s), _) => Axis {
            key: format!("fit.{}.{field}", group.name()),
            values: s.values(),
        },
        (None, Some(s)) => Axis {
            key: format!("fit.{field}"),
            values: s.values(),
        },
        (None, None) => Axis {
            key: format!("fit.{}.{field}", group.name()),
            values: default.into_iter().collect(),
        },
    }
}

fn expand_group(
    doc: &SpecDocument,
    group: FitGroup,
    own: &RawFitTable,
    shared: &RawFitTable,
    n_visible: usize,
) -> Result<Vec<FitParams>> {
    macro_rules! axis {
        ($field:ident, $default:expr) => {
            axis(
                group,
                stringify!($field),
                &own.$field,
                &shared.$field,
                $default,
            )
        };
    }
    // Built-in defaults fill keys nobody wrote; the compiler checks that every key is here.
    let mut axes = FitAxes {
        n_hidden: axis!(n_hidden, Some(n_visible as i64)),
        mu_squared: axis!(mu_squared, None),
        sigma_h: axis!(sigma_h, Some(1.0)),
        train_mu: axis!(train_mu, Some(false)),
        mode: axis!(mode, Some(GradientMode::Exact)),
        chains: axis!(chains, Some(64)),
        gibbs_steps: axis!(gibbs_steps, Some(3)),
        learning_rate: axis!(learning_rate, None),
        momentum: axis!(momentum, Some(0.0)),
        l2: axis!(l2, Some(0.0)),
        decay: axis!(decay, Some(1.0)),
        decay_every: axis!(decay_every, Some(1)),
        init_scale: axis!(init_scale, Some(0.1)),
        updates: axis!(updates, None),
        flow_time: axis!(flow_time, None),
        record_every: axis!(record_every, Some(1)),
        ensemble: axis!(ensemble, Some(1)),
        init: axis!(init, Some(InitKind::Random)),
    };
    for (field, key, length) in axes.lengths() {
        if length == 0 && !matches!(field, "updates" | "flow_time") {
            return Err(doc.error(key, "required (in this table or in [fit])"));
        }
    }
    match (
        axes.updates.values.is_empty(),
        axes.flow_time.values.is_empty(),
    ) {
        (true, true) => {
            return Err(doc.error(
                &axes.updates.key,
                "give either `updates` or `flow_time` (= learning_rate × updates)",
            ));
        }
        (false, false) if own.updates.is_some() == own.flow_time.is_some() => {
            return Err(doc.error(&axes.updates.key, "give `updates` or `flow_time`, not both"));
        }
        _ => {}
    }
    // A group's own `updates`/`flow_time` wins over the other one inherited from [fit].
    let use_updates = match (own.updates.is_some(), own.flow_time.is_some()) {
        (true, false) => true,
        (false, true) => false,
        _ => !axes.updates.values.is_empty(),
    };
    // The unused one of the pair does not take part in the sweep.
    if use_updates {
        axes.flow_time.values.clear();
    } else {
        axes.updates.values.clear();
    }

    // Every combination, the first axis varying slowest; an empty axis counts once.
    let radices: Vec<usize> = axes.lengths().iter().map(|(_, _, n)| (*n).max(1)).collect();
    let count = doc.instance_count(
        &format!("fit.{}", group.name()),
        radices.iter().map(|&r| r as u128).product(),
    )?;
    let mut out = Vec::with_capacity(count);
    for flat in 0..count {
        let mut index = vec![0; radices.len()];
        let mut rest = flat;
        for (slot, radix) in index.iter_mut().zip(&radices).rev() {
            *slot = rest % radix;
            rest /= radix;
        }
        let p = axes.point(&index);
        let required = |v: Option<i64>| v.unwrap_or(i64::MIN);
        let real = |v: Option<f64>| v.unwrap_or(f64::NAN);
        let rate = positive(doc, &axes.learning_rate.key, real(p.learning_rate))?;
        let negative_phase = match p.mode.unwrap_or_default() {
            GradientMode::Exact => NegativePhase::Exact,
            GradientMode::Pcd => NegativePhase::Pcd {
                chains: doc.at_most(
                    &axes.chains.key,
                    positive_int(doc, &axes.chains.key, required(p.chains))?,
                    MAX_CHAINS,
                    "each chain holds N_v + N_h values updated every Gibbs sweep",
                )?,
                gibbs_steps: doc.at_most(
                    &axes.gibbs_steps.key,
                    positive_int(doc, &axes.gibbs_steps.key, required(p.gibbs_steps))?,
                    MAX_GIBBS_STEPS,
                    "sweeps per update",
                )?,
            },
        };
        let momentum = real(p.momentum);
        if !(0.0..1.0).contains(&momentum) {
            return Err(doc.error(
                &axes.momentum.key,
                format!("must be in [0, 1), got {momentum}"),
            ));
        }
        let decay = real(p.decay);
        if !(decay > 0.0 && decay <= 1.0) {
            return Err(doc.error(&axes.decay.key, format!("must be in (0, 1], got {decay}")));
        }
        let updates = if use_updates {
            let updates = positive_int(doc, &axes.updates.key, required(p.updates))?;
            doc.at_most(
                &axes.updates.key,
                updates as f64,
                MAX_UPDATES,
                "updates of one fit",
            )? as usize
        } else {
            let t = positive(doc, &axes.flow_time.key, real(p.flow_time))?;
            updates_for(doc, &axes.flow_time.key, t, rate)?
        };
        let record_every = positive_int(doc, &axes.record_every.key, required(p.record_every))?;
        let record_every = doc.at_most(
            &axes.record_every.key,
            record_every,
            updates,
            "a fit records its start and every record_every-th update; more than the updates \
             leaves a trajectory without records",
        )?;
        doc.at_most(
            &axes.record_every.key,
            updates / record_every,
            MAX_RECORDS,
            "records per fit: raise record_every",
        )?;
        let n_hidden = doc.at_most(
            &axes.n_hidden.key,
            positive_int(doc, &axes.n_hidden.key, required(p.n_hidden))?,
            MAX_UNITS,
            "W is N_v × N_h and updated densely",
        )?;
        let mu_squared = positive(doc, &axes.mu_squared.key, real(p.mu_squared))?;
        let mu_squared = doc.at_most(
            &axes.mu_squared.key,
            mu_squared,
            MAX_MASS_SQUARED,
            "the hidden mass sets the scale of every mode",
        )?;
        let init = p.init.unwrap_or_default();
        out.push(FitParams {
            group,
            sweep_point: axes.sweep_point(&index),
            n_hidden,
            mu_squared,
            sigma_h: positive(doc, &axes.sigma_h.key, real(p.sigma_h))?,
            train_mu: p.train_mu.unwrap_or(false),
            negative_phase,
            learning_rate: rate,
            momentum,
            l2: non_negative(doc, &axes.l2.key, real(p.l2))?,
            decay,
            decay_every: positive_int(doc, &axes.decay_every.key, required(p.decay_every))?,
            init_scale: non_negative(doc, &axes.init_scale.key, real(p.init_scale))?,
            updates,
            record_every,
            ensemble: doc.at_most(
                &axes.ensemble.key,
                positive_int(doc, &axes.ensemble.key, required(p.ensemble))?,
                MAX_ENSEMBLE,
                "independent runs of one fit",
            )?,
            init,
        });
    }
    Ok(out)
}

fn validate_evaluate(doc: &SpecDocument, raw: RawEvaluate) -> Result<EvaluateParams> {
    let window = raw.relaxation.unwrap_or_default();
    let upper = window.upper.unwrap_or(0.1);
    if !(upper > 0.0 && upper <= 1.0) {
        return Err(doc.error(
            "evaluate.relaxation.upper",
            format!("must be in (0, 1], got {upper}"),
        ));
    }
    let late_upper = window.late_upper.unwrap_or(0.005);
    if !(late_upper > 0.0 && late_upper < upper) {
        return Err(doc.error(
            "evaluate.relaxation.late_upper",
            format!("must be in (0, evaluate.relaxation.upper = {upper}), got {late_upper}"),
        ));
    }
    let tail_fraction = window.tail_fraction.unwrap_or(0.2);
    if !(tail_fraction > 0.0 && tail_fraction < 0.5) {
        return Err(doc.error(
            "evaluate.relaxation.tail_fraction",
            format!("must be in (0, 0.5), got {tail_fraction}"),
        ));
    }
    let samples = doc.at_most(
        "evaluate.samples",
        positive_int(doc, "evaluate.samples", raw.samples.unwrap_or(5000))?,
        MAX_SAMPLES,
        "samples are held in memory, N_v values each",
    )?;
    let jackknife_bins = positive_int(
        doc,
        "evaluate.jackknife_bins",
        raw.jackknife_bins.unwrap_or(50),
    )?;
    if jackknife_bins < 2 {
        return Err(doc.error(
            "evaluate.jackknife_bins",
            format!("must be at least 2 (a jackknife error needs two bins), got {jackknife_bins}"),
        ));
    }
    let jackknife_bins = doc.at_most(
        "evaluate.jackknife_bins",
        jackknife_bins,
        samples,
        "each bin needs a sample: at most evaluate.samples",
    )?;
    Ok(EvaluateParams {
        samples,
        gibbs_steps: doc.at_most(
            "evaluate.gibbs_steps",
            positive_int(doc, "evaluate.gibbs_steps", raw.gibbs_steps.unwrap_or(100))?,
            MAX_GIBBS_STEPS,
            "sweeps between samples",
        )?,
        jackknife_bins,
        max_distance: positive_int(doc, "evaluate.max_distance", raw.max_distance.unwrap_or(5))?,
        histogram_bins: doc.at_most(
            "evaluate.histogram_bins",
            positive_int(
                doc,
                "evaluate.histogram_bins",
                raw.histogram_bins.unwrap_or(40),
            )?,
            MAX_BINS,
            "bins of one histogram",
        )?,
        relaxation: RelaxationWindow {
            upper,
            tail_fraction,
            min_points: positive_int(
                doc,
                "evaluate.relaxation.min_points",
                window.min_points.unwrap_or(8),
            )?,
        },
        late_upper,
    })
}

fn validate_toy(doc: &SpecDocument, raw: RawToy) -> Result<ToyParams> {
    let learning_rate = positive(doc, "toy.learning_rate", raw.learning_rate.unwrap_or(1e-4))?;
    let flow_time = positive(doc, "toy.flow_time", raw.flow_time.unwrap_or(40.0))?;
    let updates = updates_for(doc, "toy.flow_time", flow_time, learning_rate)?;
    let record_every = doc.at_most(
        "toy.record_every",
        positive_int(doc, "toy.record_every", raw.record_every.unwrap_or(100))?,
        updates,
        "the toy records every record_every-th update: at most its updates",
    )?;
    doc.at_most(
        "toy.record_every",
        updates / record_every,
        MAX_RECORDS,
        "records of the toy: raise record_every",
    )?;
    let kappa_1 = positive(doc, "toy.kappa_1", raw.kappa_1.unwrap_or(4.0))?;
    let kappa_2 = positive(doc, "toy.kappa_2", raw.kappa_2.unwrap_or(8.0))?;
    let mu_squared = positive(doc, "toy.mu_squared", raw.mu_squared.unwrap_or(9.0))?;
    if mu_squared <= kappa_1.min(kappa_2) {
        return Err(doc.error(
            "toy.mu_squared",
            format!("must exceed min(kappa_1, kappa_2) so one mode is learnable, got {mu_squared}"),
        ));
    }
    Ok(ToyParams {
        kappa_1,
        kappa_2,
        mu_squared,
        sigma_h: positive(doc, "toy.sigma_h", raw.sigma_h.unwrap_or(1.0))?,
        theta_0: raw.theta_0.unwrap_or(1.2),
        xi_0: positive(doc, "toy.xi_0", raw.xi_0.unwrap_or(1.0))?,
        learning_rate,
        updates,
        record_every,
    })
}

/// ⌈flow time / learning rate⌉ updates, refused above [`MAX_UPDATES`] before anything is sized
/// from it.
fn updates_for(doc: &SpecDocument, key: &str, flow_time: f64, learning_rate: f64) -> Result<usize> {
    let updates = (flow_time / learning_rate).ceil();
    if updates > MAX_UPDATES {
        return Err(doc.error(
            key,
            format!(
                "flow_time / learning_rate = {updates:e} updates, more than {MAX_UPDATES:e} \
                 (days of training; a typo in either?)"
            ),
        ));
    }
    Ok(updates as usize)
}

fn positive(doc: &SpecDocument, key: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(doc.error(key, format!("must be > 0, got {v}")))
    }
}

fn non_negative(doc: &SpecDocument, key: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(doc.error(key, format!("must be >= 0, got {v}")))
    }
}

fn positive_int(doc: &SpecDocument, key: &str, v: i64) -> Result<usize> {
    if v >= 1 {
        Ok(v as usize)
    } else {
        Err(doc.error(key, format!("must be an integer >= 1, got {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const SPEC: &str = r#"
[experiment]
name = "t"
kind = "rbm-scalar"
seed = 1

[target]
n_visible = 6
mass_squared = 4.0

[fit]
mu_squared = 9.0
learning_rate = 0.1
flow_time = 10.0

[fit.flow]
mode = ["exact", "pcd"]

[fit.cutoff_hidden]
n_hidden = [6, 4, 2]
learning_rate = [0.1, 0.2]

[fit.cutoff_mass]

[fit.mu_trained]
train_mu = true
updates = 7

[fit.relaxation]
"#;

    fn parsed(text: &str) -> Result<RbmScalarSpec> {
        let doc = SpecDocument::parse(Path::new("t.toml"), text.to_string())?;
        let header = doc.header()?;
        parse(&doc, header)
    }

    #[test]
    fn sweeps_expand_to_the_cartesian_product_with_labels() {
        let spec = parsed(SPEC).unwrap();
        let labels: Vec<String> = spec.fits.iter().map(FitParams::label).collect();
        assert_eq!(
            labels,
            [
                "flow,mode=exact",
                "flow,mode=pcd",
                "cutoff_hidden,n_hidden=6,learning_rate=0.1",
                "cutoff_hidden,n_hidden=6,learning_rate=0.2",
                "cutoff_hidden,n_hidden=4,learning_rate=0.1",
                "cutoff_hidden,n_hidden=4,learning_rate=0.2",
                "cutoff_hidden,n_hidden=2,learning_rate=0.1",
                "cutoff_hidden,n_hidden=2,learning_rate=0.2",
                "cutoff_mass",
                "mu_trained",
                "relaxation",
            ]
        );
        // flow_time = α · updates; a group's own `updates` wins over the shared flow_time.
        assert_eq!(spec.fits[3].updates, 50);
        assert_eq!(spec.fits[9].updates, 7);
        // Defaults fill what nobody wrote.
        assert_eq!(spec.fits[0].n_hidden, 6);
        assert_eq!(spec.fits[0].init, InitKind::Random);
    }

    #[test]
    fn an_inherited_bad_value_is_reported_where_it_is_written() {
        let err = parsed(&SPEC.replace("learning_rate = 0.1\n", "learning_rate = 0.0\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "t.toml:13: fit.learning_rate: must be > 0, got 0");
    }

    #[test]
    fn a_missing_group_is_named() {
        let err = parsed(&SPEC.replace("[fit.relaxation]\n", ""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fit.relaxation: missing table [fit.relaxation]"),
            "{err}"
        );
    }
}
