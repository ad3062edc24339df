//! The stock flow components, built from `plugins/` by `host/build.rs` and embedded in the binary.

include!(concat!(env!("OUT_DIR"), "/stock_plugins.rs"));

/// The stock flow types, in the order `plugins list` shows them.
pub fn stock_types() -> Vec<&'static str> {
    STOCK_COMPONENTS.iter().map(|(t, _)| *t).collect()
}
