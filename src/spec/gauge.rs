//! The gauge-phase variants of Goldstone gradient descent as specs name them. The names live
//! apart from the gauge code (`models::goldstone::gauge` maps each to its options) so that a
//! spec naming a variant does not make its readers depend on the optimiser.

crate::spec_choice! {
    /// A gauge-phase variant: `baseline` has none; the others differ in how Algorithm 1's
    /// phase is stabilised (`../shared/reference/goldstone-numpy-check.md`).
    #[derive(Default)]
    pub enum GaugeVariant ("gauge variant") {
        /// No gauge phase.
        #[default]
        Baseline = "baseline",
        /// Algorithm 1 as printed.
        Paper = "paper",
        /// Exact exponential apply.
        Exp = "exp",
        /// ρ' × ¼.
        Quarter = "quarter",
        /// T-capped inverse of L.
        Capped = "capped",
        /// Γ̃ clipped to ±½/d, apply × 0.1 clipped to ±1/d.
        Clipped = "clipped",
        /// Exact exponential and Γ̃ clipped (a trust region, no × 0.1).
        ExpClip = "exp-clip",
        /// All of the reference code's safeguards (× ¼, clipping, × 0.1 apply, capped inverse).
        Reference = "reference",
        /// The printed algorithm with Γ̃ reset after every phase.
        PaperReset = "paper-reset",
    }
}

impl GaugeVariant {
    /// Whether the variant runs gauge phases at all.
    pub fn has_phase(self) -> bool {
        self != GaugeVariant::Baseline
    }
}
