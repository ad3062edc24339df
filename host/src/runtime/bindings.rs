//! Host bindings for the `sso:flow@0.1.0` world (`wit/sso-flow.wit`).
//!
//! Imports are async (they await Authentik) and trappable (a host failure that is not the
//! flow's fault, such as a quota breach, ends the run). The `secret` resource is backed by
//! [`crate::capabilities::SecretValue`], which never crosses into the guest.

wasmtime::component::bindgen!({
    world: "sso-flow",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "sso:flow/authentik.secret": crate::capabilities::SecretValue,
    },
});

/// The WIT package version this host implements; part of every import name.
pub const API_VERSION: &str = "0.1.0";

/// Interfaces a flow component may import: the base every flow gets, plus `service-http` and
/// `idp-http`, which only load when granted (see [`optional_imports`]).
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

/// The optional capabilities among `imports`.
pub fn optional_imports(imports: &[super::InterfaceUse]) -> Vec<crate::grants::Optional> {
    use crate::grants::Optional;
    Optional::all()
        .into_iter()
        .filter(|o| imports.iter().any(|i| i.name == o.import()))
        .collect()
}

/// The interface a flow component must export.
pub fn required_export() -> String {
    format!("sso:flow/flow@{API_VERSION}")
}
