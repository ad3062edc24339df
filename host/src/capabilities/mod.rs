//! The capability layer: what a flow's imports actually do. Every call is checked against the
//! service being configured (its Authentik objects, its `.env` keys, its `packages/<svc>/` folder)
//! and then, per mode, applied, compared or recorded. Writes to `.env` and files are staged in the
//! run's [`RunRecord`] and land only after the whole run succeeded.

//! One module per WIT interface, each holding the interface's `Host` impl and every check it
//! makes, so an auditor reads one file per interface:
//! - [`authentik`]: `sso:flow/authentik` (with its Authentik-side implementation below it);
//! - [`service_config`]: `sso:flow/service-config` (`.env` keys and files);
//! - [`service_http`]: `sso:flow/service-http`; [`idp_http`]: `sso:flow/idp-http`; both send
//!   through [`exchange`];
//! - `log`: `sso:flow/log`.
//!
//! What they share lives beside them: [`state`] (the run's state and record, and the host-call
//! quota, charged for every call in one place by [`RunState::charge`], installed as the store's
//! call hook by [`crate::runtime::FlowRuntime::store`]) and [`redact`] (the secret redactor).
//! They import it from there, never from this file, which only declares and re-exports: the
//! modules of this layer depend on each other in one direction.

pub mod authentik;
mod exchange;
mod idp_http;
mod log;
pub mod service_config;
mod service_http;
mod token_cache;

pub use authentik::blueprint;
pub use authentik::objects::warm_up;
pub use service_config::files::commit as commit_files;
pub mod redact;
pub mod state;

pub use redact::{Redactor, printable};
pub use state::{Finding, FlowError, Mode, RunContext, RunRecord, RunState, SecretValue, Written};
