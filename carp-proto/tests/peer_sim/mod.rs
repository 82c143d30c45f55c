//! What the simulations of the core against the peer emulations of
//! `tests/peers` (`proto_peers_sim`, `proto_mixed_sim`) share besides the
//! emulations themselves.

use proptest::prelude::ProptestConfig;

/// Their proptest settings: 256 cases a property, and no regressions file
/// (a failing case is printed, shrunk, to be kept as a fixed scenario).
pub fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
