//! Standard normal draws for the block-Gibbs chains: the 256-layer ziggurat of Marsaglia & Tsang
//! (2000), as `rand_distr::StandardNormal` draws it (the same bits of the same 64-bit draws), but
//! with the fast path — one draw, one table lookup, one comparison, taken ~99 % of the time —
//! inlined into the caller's loop and the rest out of line. `StandardNormal` is compiled in this
//! crate as a call per draw, and the chains' normals are most of a PCD update.

use std::sync::LazyLock;

use rand::{Rng, RngExt};
use rand_distr::Open01;

const LAYERS: usize = 256;
/// The base layer's right edge and every layer's area, for 256 layers.
const R: f64 = 3.654_152_885_361_009;
const V: f64 = 4.928_673_233_99e-3;

/// Layer edges x_0 > x_1 = R > … > x_256 = 0 (x_0 = V / f(R) is the base layer's width with its
/// tail folded in) and the density f(x) = e^{−x²/2} at each.
struct Tables {
    x: [f64; LAYERS + 1],
    f: [f64; LAYERS + 1],
}

fn density(x: f64) -> f64 {
    (-0.5 * x * x).exp()
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let mut x = [0.0; LAYERS + 1];
    x[0] = V / density(R);
    x[1] = R;
    for i in 2..LAYERS {
        // Each layer has area V: x_{i} (f(x_i) − f(x_{i−1})) = V.
        x[i] = (-2.0 * (V / x[i - 1] + density(x[i - 1])).ln()).sqrt();
    }
    Tables {
        x,
        f: x.map(density),
    }
});

/// values ← values + scale·ε, with ε i.i.d. standard normal drawn in order.
pub fn add_scaled(values: &mut [f64], scale: f64, rng: &mut impl Rng) {
    let tables = &*TABLES;
    for value in values {
        *value += scale * draw(tables, rng);
    }
}

/// One candidate: layer i from the low 8 bits, u ∈ [−1, 1) from the high 52, x = u·x_i.
#[inline(always)]
fn candidate(tables: &Tables, rng: &mut impl Rng) -> (usize, f64, f64) {
    let bits = rng.next_u64();
    let layer = (bits & 0xff) as usize;
    let u = f64::from_bits((bits >> 12) | 0x4000_0000_0000_0000) - 3.0;
    (layer, u, u * tables.x[layer])
}

#[inline(always)]
fn draw(tables: &Tables, rng: &mut impl Rng) -> f64 {
    let (layer, u, x) = candidate(tables, rng);
    if x.abs() < tables.x[layer + 1] {
        return x;
    }
    draw_outside(tables, rng, (layer, u, x))
}

/// The rare cases: the tail beyond R from the base layer, the wedge test elsewhere, and new
/// candidates after a rejection.
#[cold]
#[inline(never)]
fn draw_outside(tables: &Tables, rng: &mut impl Rng, first: (usize, f64, f64)) -> f64 {
    let (mut layer, mut u, mut x) = first;
    loop {
        if layer == 0 {
            // Marsaglia's tail: x = −ln(U₁)/R, y = −ln(U₂), accepted when 2y ≥ x².
            loop {
                let t = rng.sample::<f64, _>(Open01).ln() / R;
                let y = rng.sample::<f64, _>(Open01).ln();
                if -2.0 * y >= t * t {
                    return if u < 0.0 { t - R } else { R - t };
                }
            }
        }
        let f_above = tables.f[layer + 1];
        if f_above + (tables.f[layer] - f_above) * rng.random::<f64>() < density(x) {
            return x;
        }
        (layer, u, x) = candidate(tables, rng);
        if x.abs() < tables.x[layer + 1] {
            return x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::StandardNormal;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn tables_close_the_ziggurat() {
        let t = &*TABLES;
        assert!((t.x[0] - 3.910_757_959_537_09).abs() < 1e-12, "{}", t.x[0]);
        // The recursion lands on the top layer: x_255 small, and its layer has area V.
        assert!(t.x[255] > 0.0 && t.x[255] < 0.3, "{}", t.x[255]);
        assert!((t.x[255] * (1.0 - t.f[255]) - V).abs() < 1e-9);
    }

    /// Same bits in, same normals out as `rand_distr::StandardNormal`, up to the last digit of
    /// the tables (both are computed from R and V).
    #[test]
    fn draws_are_rand_distrs_standard_normal() {
        let mut ours = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut theirs = ours.clone();
        let mut values = vec![0.0; 100_000];
        add_scaled(&mut values, 1.0, &mut ours);
        for (k, &v) in values.iter().enumerate() {
            let expected: f64 = theirs.sample(StandardNormal);
            assert!(
                (v - expected).abs() <= 1e-12 * (1.0 + expected.abs()),
                "draw {k}: {v} vs {expected}"
            );
        }
    }

    /// Against the normal law itself: P(|Z| < 1), P(|Z| < 2), P(|Z| > R) (the tail path) and the
    /// second and fourth moments, each within five of its standard errors for n draws.
    #[test]
    fn draws_have_the_normal_law() {
        let n = 2_000_000;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut values = vec![0.0; n];
        add_scaled(&mut values, 1.0, &mut rng);
        let share =
            |p: &dyn Fn(f64) -> bool| values.iter().filter(|&&v| p(v)).count() as f64 / n as f64;
        // 2Φ(1) − 1, 2Φ(2) − 1 and 2(1 − Φ(R)).
        for (label, observed, expected) in [
            ("|Z| < 1", share(&|v| v.abs() < 1.0), 0.682_689_492_137_086),
            ("|Z| < 2", share(&|v| v.abs() < 2.0), 0.954_499_736_103_642),
            ("|Z| > R", share(&|v| v.abs() > R), 2.580_324_876_5e-4),
        ] {
            let se = (expected * (1.0 - expected) / n as f64).sqrt();
            assert!(
                (observed - expected).abs() < 5.0 * se,
                "{label}: {observed} vs {expected} (se {se})"
            );
        }
        let m2 = values.iter().map(|v| v * v).sum::<f64>() / n as f64;
        let m4 = values.iter().map(|v| v.powi(4)).sum::<f64>() / n as f64;
        // Var(Z²) = 2, Var(Z⁴) = 105 − 9 = 96.
        assert!(
            (m2 - 1.0).abs() < 5.0 * (2.0 / n as f64).sqrt(),
            "E Z² = {m2}"
        );
        assert!(
            (m4 - 3.0).abs() < 5.0 * (96.0 / n as f64).sqrt(),
            "E Z⁴ = {m4}"
        );
    }
}
