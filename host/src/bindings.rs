//! Host bindings for the `sso:flow@0.2.0` world (`wit/sso-flow.wit`); components built against
//! `0.1.0` reach the same implementation through `runtime::adapter`.
//!
//! Imports are async (they await Authentik) and trappable (a host failure that is not the
//! flow's fault, such as a quota breach, ends the run). The `secret` resource is backed by
//! [`SecretValue`], which never crosses into the guest. A leaf: nothing else of ssoctl is used here.

wasmtime::component::bindgen!({
    world: "sso-flow",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "sso:flow/authentik.secret": SecretValue,
    },
});

/// A client secret held for the guest, behind the WIT `secret` resource: the guest holds a
/// handle, never the value. `None` when not known (the provider does not exist yet in check/plan
/// mode, or the server no longer returns secrets).
pub struct SecretValue {
    pub(crate) value: Option<String>,
}

/// The WIT package version this host implements; part of every import name.
pub const API_VERSION: &str = "0.2.0";

/// Every `sso:flow` WIT this host loads components of, oldest first, with its text: what
/// `ssoctl plugins wit` prints for integrators who use wit-bindgen (or another binding generator)
/// directly. Components built against an older one are linked through `runtime::adapter`.
pub const WIT_RELEASES: [(&str, &str); 2] = [
    ("0.1.0", include_str!("../../wit/0.1.0/sso-flow.wit")),
    ("0.2.0", include_str!("../../wit/sso-flow.wit")),
];

/// Interfaces a flow component may import: the base every flow gets, plus `service-http` and
/// `idp-http`, which only load when granted (`crate::grants`).
pub fn known_imports() -> Vec<String> {
    [
        "types",
        "authentik",
        "service-config",
        "service-http",
        "idp-http",
        "log",
    ]
    .iter()
    .map(|i| format!("sso:flow/{i}@{API_VERSION}"))
    .collect()
}

/// The interface a flow component must export.
pub fn required_export() -> String {
    format!("sso:flow/flow@{API_VERSION}")
}
