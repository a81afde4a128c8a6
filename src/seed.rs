//! Seeds. Every random stream is derived from the spec's seed and a name (the stage instance
//! label, the ensemble member), so results do not depend on scheduling or thread count.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A 64-bit seed derived from `base` and `name`.
pub fn derive_seed(base: u64, name: &str) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&base.to_le_bytes());
    hasher.update(name.as_bytes());
    let bytes = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// The random stream for `name` under `base`.
pub fn rng_for(base: u64, name: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(base, name))
}
