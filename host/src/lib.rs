//! ssoctl: registers every service of a self-hosted stack with Authentik through sandboxed
//! WebAssembly flow components, one per `sso.type`.
//!
//! Map of the crate:
//! - [`stack`]: the operator's `.env`, `services.yaml` and manifests;
//! - [`runtime`]: wasmtime engine, component loading, limits, precompiled cache;
//! - [`capabilities`]: what each WIT import does, scoped to the current service, per mode;
//! - [`authentik`]: the HTTP client, version capabilities, tolerant models;
//! - [`runner`] and [`session`]: running flows for a command; [`report`]: what is printed;
//! - [`grants`]: the optional capabilities the operator grants each flow type;
//! - [`cli`], [`demo`], [`plugins`]: the commands.

pub mod access_matrix;
pub mod apps;
pub mod authentik;
pub mod bindings;
pub mod capabilities;
pub mod cli;
#[cfg(feature = "sim")]
pub mod demo;
pub mod error;
pub mod grants;
pub mod limits;
pub mod plugins;
pub mod probe;
pub mod report;
pub mod runner;
pub mod runtime;
pub mod scaffold;
pub mod session;
pub mod stack;

/// Path of the hostile test component built next to the stock ones (tests only).
pub const TEST_MISBEHAVE_WASM: &str = concat!(env!("OUT_DIR"), "/test-misbehave.wasm");
