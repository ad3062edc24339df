//! The state of one run (the store's data) and of the command it belongs to: the service, the
//! mode, the grant, what the run staged and what it changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};

use super::authentik::outposts::OutpostWriter;
use super::redact::Redactor;
use super::token_cache::TokenCache;
use crate::authentik::{AkError, Authentik};
use crate::bindings::sso::flow::types;
use crate::grants::{Grant, Grants};
use crate::limits::RunLimiter;
use crate::stack::{ServiceSpec, Stack};
pub use types::{FlowError, Mode};

/// State shared by every run of one command.
pub struct RunContext {
    pub authentik: Arc<Authentik>,
    pub stack: Arc<Stack>,
    pub redactor: Redactor,
    /// Serialised, batched writes of the embedded outpost's provider list.
    pub outposts: OutpostWriter,
    /// Client for `service-http` (services' own APIs), built on first use: loading the
    /// system's root certificates costs milliseconds most runs do not need to pay.
    pub service_http: std::sync::OnceLock<reqwest::Client>,
    pub request_timeout: std::time::Duration,
    /// `.env` keys holding `idp-http` credentials: the host's alone.
    pub credential_keys: Vec<String>,
    /// `idp-http` client-credentials tokens, shared by the command's runs.
    pub idp_tokens: TokenCache,
    /// Whether runs record blueprint entries (`export --blueprint` only).
    pub blueprint: bool,
}

impl RunContext {
    pub fn new(
        authentik: Arc<Authentik>,
        stack: Arc<Stack>,
        redactor: Redactor,
        grants: &Grants,
        request_timeout: std::time::Duration,
    ) -> Self {
        Self {
            authentik,
            stack,
            redactor,
            outposts: Default::default(),
            service_http: Default::default(),
            request_timeout,
            credential_keys: grants.credential_keys(),
            idp_tokens: Default::default(),
            blueprint: false,
        }
    }

    /// The client for services' own APIs; redirects are not followed, so injected credentials
    /// never travel to another origin.
    pub fn service_http(&self) -> Result<&reqwest::Client, FlowError> {
        if let Some(c) = self.service_http.get() {
            return Ok(c);
        }
        let client = reqwest::Client::builder()
            .timeout(self.request_timeout)
            .connect_timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FlowError::Upstream(format!("HTTP client: {e}")))?;
        Ok(self.service_http.get_or_init(|| client))
    }
}

/// Kinds of Authentik object a run writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Provider,
    Application,
    ScopeMapping,
}

pub use crate::bindings::SecretValue;

/// A difference found in check mode.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Finding {
    pub kind: String,
    pub message: String,
}

/// What one run did or would do; read by the runner and the report.
#[derive(Debug, Default)]
pub struct RunRecord {
    pub findings: Vec<Finding>,
    /// Changes made (apply) or that would be made (plan), one line each.
    pub changes: Vec<String>,
    /// Operator-facing lines from `log.event`.
    pub events: Vec<String>,
    /// What will break soon; shown in check, never drift.
    pub warnings: Vec<String>,
    /// The blueprint entries of the objects this run asked for (`export --blueprint`).
    pub blueprint: Vec<serde_yaml::Value>,
    pub env_writes: BTreeMap<String, String>,
    pub file_writes: BTreeMap<String, String>,
    /// The last error-level log line, shown when the flow traps (a panic message, usually).
    pub last_error_log: Option<String>,
    /// The run ended without returning (a trap, the deadline, an answer over the limit): only
    /// `changes` was kept, the list of what it had already changed in Authentik.
    pub lost: bool,
    pub(super) calls: u32,
    pub(super) log_bytes: usize,
}

/// Everything a `Store` holds for one service run.
pub struct RunState {
    pub ctx: Arc<RunContext>,
    pub service: ServiceSpec,
    pub mode: Mode,
    pub record: RunRecord,
    pub limiter: RunLimiter,
    /// The optional capabilities the flow's type is granted.
    pub grant: Grant,
    pub(super) table: ResourceTable,
    /// The OAuth2 provider ensured in this run (its pk), for `ensure-application`.
    pub(super) provider_pk: Option<u64>,
    /// Whether a provider was ensured at all (it may not exist yet in check/plan mode).
    pub(super) provider_ensured: bool,
    /// Kinds of object this run has written (see `wrote`).
    pub(super) written: Vec<Written>,
    /// Scope mappings ensured in this run: (name, pk when it exists).
    pub(super) custom_mappings: Vec<(String, Option<String>)>,
    /// The provider ensured in this run is a proxy provider.
    pub(super) proxy_provider: bool,
    /// The application ensured in this run: `Some(pk)` when it exists, `Some(None)` when it does
    /// not yet (check/plan), `None` before `ensure-application`.
    pub(super) application: Option<Option<String>>,
    /// The application was created in this run (so it has no bindings yet).
    pub(super) application_created: bool,
    /// The flow called `ensure-access` (else the host applies `sso.access` after the run).
    pub(super) access_ensured: bool,
}

impl RunState {
    pub fn new(ctx: Arc<RunContext>, service: ServiceSpec, mode: Mode, limiter: RunLimiter) -> Self {
        Self {
            ctx,
            service,
            mode,
            record: RunRecord::default(),
            limiter,
            grant: Grant::default(),
            table: ResourceTable::new(),
            provider_pk: None,
            provider_ensured: false,
            written: Vec::new(),
            custom_mappings: Vec::new(),
            proxy_provider: false,
            application: None,
            application_created: false,
            access_ensured: false,
        }
    }

    /// Providers are named after the service: any other name is another service's.
    pub(super) fn own_provider_name(&self, kind: &str, name: &str) -> Result<(), FlowError> {
        if name == self.service.slug {
            return Ok(());
        }
        Err(FlowError::Denied(format!(
            "{kind} `{name}` is not `{}`'s: this run may only touch provider `{}`",
            self.service.name, self.service.slug
        )))
    }

    /// A scalar from the manifest's `sso:` block.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.service
            .settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Remembers the provider ensured in this run (`None`: it does not exist yet, check/plan).
    pub(super) fn record_provider(&mut self, pk: Option<u64>) {
        self.provider_ensured = true;
        self.provider_pk = pk;
    }

    /// Check mode found no provider: `.env` values derived from it are unknown, so comparing
    /// them would only repeat the root cause as noise.
    pub(super) fn provider_missing(&self) -> bool {
        self.provider_ensured && self.provider_pk.is_none()
    }

    /// Counts a call into the host, whichever interface it is; past the quota the run is ended
    /// (a trap, not an error the flow can swallow and retry). The store's call hook: the one
    /// place every host call is charged.
    pub fn charge(&mut self, hook: wasmtime::CallHook) -> wasmtime::Result<()> {
        if !matches!(hook, wasmtime::CallHook::CallingHost) {
            return Ok(());
        }
        self.record.calls += 1;
        if self.record.calls > self.limiter.limits.host_calls {
            return Err(wasmtime::format_err!(
                "{} exceeded its quota of {} host calls",
                self.limiter.label,
                self.limiter.limits.host_calls
            ));
        }
        Ok(())
    }

    pub(super) fn finding(&mut self, kind: &str, message: String) {
        let message = self.ctx.redactor.redact(&message);
        self.record.findings.push(Finding {
            kind: kind.into(),
            message,
        });
    }

    pub(super) fn warn(&mut self, message: String) {
        if !self.record.warnings.contains(&message) {
            self.record.warnings.push(message);
        }
    }

    pub(super) fn change(&mut self, message: String) {
        self.record.changes.push(message);
    }

    /// Records that this run created or changed an object of `kind` in Authentik.
    pub(crate) fn mark_written(&mut self, kind: Written) {
        if !self.written.contains(&kind) {
            self.written.push(kind);
        }
    }

    /// Whether this run has written an object of `kind`: its lookups of that kind then go to
    /// the server, not the snapshot taken when the command started (a flow may ensure the same
    /// object twice, and must find what it created).
    pub(crate) fn wrote(&self, kind: Written) -> bool {
        self.written.contains(&kind)
    }

    pub(super) fn upstream(&self, e: AkError) -> FlowError {
        FlowError::Upstream(self.ctx.redactor.redact(&e.to_string()))
    }

    pub(super) fn new_secret(&mut self, value: Option<String>) -> wasmtime::Result<Resource<SecretValue>> {
        if let Some(v) = &value {
            self.ctx.redactor.add(v);
        }
        Ok(self.table.push(SecretValue { value })?)
    }
}

impl types::Host for RunState {}
