//! The spec of the scalar-field RBM experiment (`kind = "rbm-scalar"`): raw TOML form and its
//! validated, sweep-expanded parameters.
//!
//! `[target]` sets the lattice field; `[fit]` holds defaults shared by the five fit groups
//! `[fit.flow]`, `[fit.cutoff_hidden]`, `[fit.cutoff_mass]`, `[fit.mu_trained]` and
//! `[fit.relaxation]`, each of which may override any key and sweep any of them by giving a list;
//! `[evaluate]` sets sampling and fitting of observables; `[toy]` the N_v = 2, N_h = 1 rotation.

use serde::{Deserialize, Serialize};

use super::{Header, SpecDocument, Sweep};
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

        /// Names of the fit keys, in declaration order (the order sweeps are expanded in).
        const FIT_KEYS: &[&str] = &[$(stringify!($field)),*];
    };
}

fit_tables! {
    n_hidden: i64,
    mu_squared: f64,
    sigma_h: f64,
    train_mu: bool,
    mode: String,
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
    init: String,
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
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetParams {
    pub n_visible: usize,
    pub mass_squared: f64,
}

/// The role a fit group plays in the experiment's figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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

/// How W starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitKind {
    /// W_ij ~ N(0, init_scale²).
    Random,
    /// Column a = init_scale·√N_v · v_a, with v_a the target eigenvector of the a-th lowest κ:
    /// the modes start decoupled, so each relaxes at its own linear rate.
    Aligned,
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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

/// Parses and validates the rbm-scalar spec in `doc`.
pub fn parse(doc: &SpecDocument, header: Header) -> Result<RbmScalarSpec> {
    let raw: RawSpec = doc.deserialize()?;
    let n_visible = positive_int(doc, "target.n_visible", raw.target.n_visible)?;
    if n_visible < 2 {
        return Err(doc.error("target.n_visible", format!("must be >= 2, got {n_visible}")));
    }
    let target = TargetParams {
        n_visible,
        mass_squared: positive(doc, "target.mass_squared", raw.target.mass_squared)?,
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

/// A value as written for one key of one group: its sweep and the key path it came from.
struct Resolved<'a, T> {
    sweep: Option<&'a Sweep<T>>,
    key: String,
}

fn pick<'a, T>(
    group: FitGroup,
    field: &str,
    own: &'a Option<Sweep<T>>,
    shared: &'a Option<Sweep<T>>,
) -> Resolved<'a, T> {
    match (own, shared) {
        (Some(s), _) => Resolved {
            sweep: Some(s),
            key: format!("fit.{}.{field}", group.name()),
        },
        (None, Some(s)) => Resolved {
            sweep: Some(s),
            key: format!("fit.{field}"),
        },
        (None, None) => Resolved {
            sweep: None,
            key: format!("fit.{}.{field}", group.name()),
        },
    }
}

/// Sweep values as display strings, for the cartesian product and instance labels.
fn axis<T: Clone + ToString>(r: &Resolved<'_, T>, default: Option<T>) -> Vec<String> {
    match r.sweep {
        Some(s) => s.values().iter().map(ToString::to_string).collect(),
        None => default.map(|d| vec![d.to_string()]).unwrap_or_default(),
    }
}

fn expand_group(
    doc: &SpecDocument,
    group: FitGroup,
    own: &RawFitTable,
    shared: &RawFitTable,
    n_visible: usize,
) -> Result<Vec<FitParams>> {
    macro_rules! resolved {
        ($field:ident) => {
            pick(group, stringify!($field), &own.$field, &shared.$field)
        };
    }
    let n_hidden = resolved!(n_hidden);
    let mu_squared = resolved!(mu_squared);
    let sigma_h = resolved!(sigma_h);
    let train_mu = resolved!(train_mu);
    let mode = resolved!(mode);
    let chains = resolved!(chains);
    let gibbs_steps = resolved!(gibbs_steps);
    let learning_rate = resolved!(learning_rate);
    let momentum = resolved!(momentum);
    let l2 = resolved!(l2);
    let decay = resolved!(decay);
    let decay_every = resolved!(decay_every);
    let init_scale = resolved!(init_scale);
    let updates = resolved!(updates);
    let flow_time = resolved!(flow_time);
    let record_every = resolved!(record_every);
    let ensemble = resolved!(ensemble);
    let init = resolved!(init);

    // Each axis lists the values of one key; built-in defaults fill keys nobody wrote.
    let mut axes: Vec<(String, Vec<String>)> = vec![
        (
            n_hidden.key.clone(),
            axis(&n_hidden, Some(n_visible as i64)),
        ),
        (mu_squared.key.clone(), axis(&mu_squared, None)),
        (sigma_h.key.clone(), axis(&sigma_h, Some(1.0))),
        (train_mu.key.clone(), axis(&train_mu, Some(false))),
        (mode.key.clone(), axis(&mode, Some("exact".to_string()))),
        (chains.key.clone(), axis(&chains, Some(64))),
        (gibbs_steps.key.clone(), axis(&gibbs_steps, Some(3))),
        (learning_rate.key.clone(), axis(&learning_rate, None)),
        (momentum.key.clone(), axis(&momentum, Some(0.0))),
        (l2.key.clone(), axis(&l2, Some(0.0))),
        (decay.key.clone(), axis(&decay, Some(1.0))),
        (decay_every.key.clone(), axis(&decay_every, Some(1))),
        (init_scale.key.clone(), axis(&init_scale, Some(0.1))),
        (updates.key.clone(), axis(&updates, None)),
        (flow_time.key.clone(), axis(&flow_time, None)),
        (record_every.key.clone(), axis(&record_every, Some(1))),
        (ensemble.key.clone(), axis(&ensemble, Some(1))),
        (init.key.clone(), axis(&init, Some("random".to_string()))),
    ];
    debug_assert_eq!(axes.len(), FIT_KEYS.len());
    for (key, values) in &axes {
        let field = key.rsplit('.').next().unwrap_or(key);
        if values.is_empty() && !matches!(field, "updates" | "flow_time") {
            return Err(doc.error(key, "required (in this table or in [fit])"));
        }
    }
    match (updates.sweep.is_some(), flow_time.sweep.is_some()) {
        (false, false) => {
            return Err(doc.error(
                &updates.key,
                "give either `updates` or `flow_time` (= learning_rate × updates)",
            ));
        }
        (true, true) if own.updates.is_some() == own.flow_time.is_some() => {
            return Err(doc.error(&updates.key, "give `updates` or `flow_time`, not both"));
        }
        _ => {}
    }
    // A group's own `updates`/`flow_time` wins over the other one inherited from [fit].
    let use_updates = match (own.updates.is_some(), own.flow_time.is_some()) {
        (true, false) => true,
        (false, true) => false,
        _ => updates.sweep.is_some(),
    };
    // The unused one of the pair does not take part in the sweep.
    axes[if use_updates { 14 } else { 13 }].1.clear();

    let mut points: Vec<Vec<String>> = vec![Vec::new()];
    for (_, values) in &axes {
        let values = if values.is_empty() {
            vec![String::new()]
        } else {
            values.clone()
        };
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push(v.clone());
                    q
                })
            })
            .collect();
    }

    let mut out = Vec::with_capacity(points.len());
    for point in points {
        let value = |i: usize| point[i].as_str();
        let sweep_point: Vec<(String, String)> = axes
            .iter()
            .enumerate()
            .filter(|(_, (_, values))| values.len() > 1)
            .map(|(i, (key, _))| {
                (
                    key.rsplit('.').next().unwrap_or(key).to_string(),
                    value(i).to_string(),
                )
            })
            .collect();
        let f = |i: usize| -> f64 { value(i).parse().unwrap_or(f64::NAN) };
        let int = |i: usize| -> i64 { value(i).parse().unwrap_or(i64::MIN) };
        let key = |i: usize| axes[i].0.as_str();

        let n_hidden_v = positive_int(doc, key(0), int(0))?;
        let mu2 = positive(doc, key(1), f(1))?;
        let sigma = positive(doc, key(2), f(2))?;
        let train_mu_v = value(3) == "true";
        let negative_phase = match value(4) {
            "exact" => NegativePhase::Exact,
            "pcd" => NegativePhase::Pcd {
                chains: positive_int(doc, key(5), int(5))?,
                gibbs_steps: positive_int(doc, key(6), int(6))?,
            },
            other => {
                return Err(doc.error(
                    key(4),
                    format!("must be \"exact\" or \"pcd\", got {other:?}"),
                ));
            }
        };
        let rate = positive(doc, key(7), f(7))?;
        let momentum_v = f(8);
        if !(0.0..1.0).contains(&momentum_v) {
            return Err(doc.error(key(8), format!("must be in [0, 1), got {momentum_v}")));
        }
        let l2_v = non_negative(doc, key(9), f(9))?;
        let decay_v = f(10);
        if !(decay_v > 0.0 && decay_v <= 1.0) {
            return Err(doc.error(key(10), format!("must be in (0, 1], got {decay_v}")));
        }
        let decay_every_v = positive_int(doc, key(11), int(11))?;
        let init_scale_v = non_negative(doc, key(12), f(12))?;
        let updates_v = if use_updates {
            positive_int(doc, key(13), int(13))?
        } else {
            let t = positive(doc, key(14), f(14))?;
            (t / rate).ceil() as usize
        };
        let record_every_v = positive_int(doc, key(15), int(15))?;
        let ensemble_v = positive_int(doc, key(16), int(16))?;
        let init_v = match value(17) {
            "random" => InitKind::Random,
            "aligned" => InitKind::Aligned,
            other => {
                return Err(doc.error(
                    key(17),
                    format!("must be \"random\" or \"aligned\", got {other:?}"),
                ));
            }
        };
        out.push(FitParams {
            group,
            sweep_point,
            n_hidden: n_hidden_v,
            mu_squared: mu2,
            sigma_h: sigma,
            train_mu: train_mu_v,
            negative_phase,
            learning_rate: rate,
            momentum: momentum_v,
            l2: l2_v,
            decay: decay_v,
            decay_every: decay_every_v,
            init_scale: init_scale_v,
            updates: updates_v,
            record_every: record_every_v,
            ensemble: ensemble_v,
            init: init_v,
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
    Ok(EvaluateParams {
        samples: positive_int(doc, "evaluate.samples", raw.samples.unwrap_or(5000))?,
        gibbs_steps: positive_int(doc, "evaluate.gibbs_steps", raw.gibbs_steps.unwrap_or(100))?,
        jackknife_bins: positive_int(
            doc,
            "evaluate.jackknife_bins",
            raw.jackknife_bins.unwrap_or(50),
        )?,
        max_distance: positive_int(doc, "evaluate.max_distance", raw.max_distance.unwrap_or(5))?,
        histogram_bins: positive_int(
            doc,
            "evaluate.histogram_bins",
            raw.histogram_bins.unwrap_or(40),
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
        updates: (flow_time / learning_rate).ceil() as usize,
        record_every: positive_int(doc, "toy.record_every", raw.record_every.unwrap_or(100))?,
    })
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
