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
//! This file holds what they share: the run's state and record, the secret redactor, and the
//! host-call quota, charged for every call in one place ([`RunState::charge`], installed as the
//! store's call hook by [`crate::runtime::FlowRuntime::store`]).

pub mod authentik;
mod exchange;
mod idp_http;
mod log;
pub mod service_config;
mod service_http;

pub use authentik::blueprint;
pub use authentik::objects::warm_up;
pub use service_config::files::commit as commit_files;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use wasmtime::component::{Resource, ResourceTable};

use crate::authentik::{AkError, Authentik};
use crate::grants::{Grant, Grants};
use crate::runtime::bindings::sso::flow::types;
use crate::runtime::limits::RunLimiter;
use crate::stack::{ServiceSpec, Stack};
pub use types::{FlowError, Mode};

/// State shared by every run of one command.
pub struct RunContext {
    pub authentik: Arc<Authentik>,
    pub stack: Arc<Stack>,
    pub redactor: Redactor,
    /// Serialised, batched writes of the embedded outpost's provider list.
    pub outposts: authentik::OutpostWriter,
    /// Client for `service-http` (services' own APIs), built on first use: loading the
    /// system's root certificates costs milliseconds most runs do not need to pay.
    pub service_http: std::sync::OnceLock<reqwest::Client>,
    pub request_timeout: std::time::Duration,
    /// `.env` keys holding `idp-http` credentials: the host's alone.
    pub credential_keys: Vec<String>,
    /// `idp-http` client-credentials tokens, shared by the command's runs.
    pub idp_tokens: idp_http::TokenCache,
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

/// Replaces every secret the host knows (admin token, client secrets, `.env` secrets a flow
/// routed, captured credentials) with `***` in text that leaves the host: logs, events, errors,
/// findings, and the answers a flow reads.
///
/// A run of a thousand services knows a thousand secrets, and text is redacted many times per
/// service: secrets are indexed by their first bytes, so redacting costs one lookup per byte of
/// the text, whatever the number of secrets. Secrets shorter than the index key (a four-digit
/// PIN is still a secret) are kept apart and looked for at every byte.
#[derive(Default)]
pub struct Redactor {
    secrets: Mutex<Secrets>,
}

#[derive(Default)]
struct Secrets {
    by_prefix: std::collections::HashMap<[u8; SECRET_PREFIX], Vec<String>>,
    /// Shorter than `SECRET_PREFIX`, longest first.
    short: Vec<String>,
}

/// Bytes of a secret's index key.
const SECRET_PREFIX: usize = 8;

impl Redactor {
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut secrets = self.secrets.lock().expect("redactor");
        let same = match secret.as_bytes().first_chunk::<SECRET_PREFIX>() {
            Some(prefix) => secrets.by_prefix.entry(*prefix).or_default(),
            None => &mut secrets.short,
        };
        if !same.iter().any(|x| x == secret) {
            same.push(secret.to_string());
            // Longest first: a secret that extends another is replaced whole.
            same.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn redact(&self, text: &str) -> String {
        self.replace_with(text, "***")
    }

    /// Replaces every known secret in `text` with `placeholder`.
    pub fn replace_with(&self, text: &str, placeholder: &str) -> String {
        let secrets = self.secrets.lock().expect("redactor");
        if secrets.by_prefix.is_empty() && secrets.short.is_empty() {
            return text.to_string();
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let (mut copied, mut at) = (0, 0);
        while at < bytes.len() {
            let rest = &bytes[at..];
            let long = rest
                .get(..SECRET_PREFIX)
                .and_then(|window| secrets.by_prefix.get(window))
                .and_then(|same| same.iter().find(|s| rest.starts_with(s.as_bytes())));
            let found = long.or_else(|| secrets.short.iter().find(|s| rest.starts_with(s.as_bytes())));
            match found {
                // A match starts where a secret (valid UTF-8) starts: a character boundary.
                Some(secret) if text.is_char_boundary(at) => {
                    out.push_str(&text[copied..at]);
                    out.push_str(placeholder);
                    at += secret.len();
                    copied = at;
                }
                _ => at += 1,
            }
        }
        out.push_str(&text[copied..]);
        out
    }
}

/// Text from a flow (or a service's answer) made safe to print on one line of the operator's
/// terminal or CI log: control characters (escape sequences, carriage returns, line breaks),
/// Unicode line separators and bidirectional overrides become spaces, so nothing a flow says can
/// recolour the screen, rewrite a line or start one of its own (a forged `✓ other-service`).
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            let invisible = c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c);
            if invisible { ' ' } else { c }
        })
        .collect()
}

/// Kinds of Authentik object a run writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Provider,
    Application,
    ScopeMapping,
}

/// A client secret held for the guest. `None` when not known (the provider does not exist yet in
/// check/plan mode, or the server no longer returns secrets).
pub struct SecretValue {
    value: Option<String>,
}

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
    calls: u32,
    log_bytes: usize,
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
    table: ResourceTable,
    /// The OAuth2 provider ensured in this run (its pk), for `ensure-application`.
    provider_pk: Option<u64>,
    /// Whether a provider was ensured at all (it may not exist yet in check/plan mode).
    provider_ensured: bool,
    /// Kinds of object this run has written (see `wrote`).
    written: Vec<Written>,
    /// Scope mappings ensured in this run: (name, pk when it exists).
    custom_mappings: Vec<(String, Option<String>)>,
    /// The provider ensured in this run is a proxy provider.
    proxy_provider: bool,
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
        }
    }

    /// Providers are named after the service: any other name is another service's.
    fn own_provider_name(&self, kind: &str, name: &str) -> Result<(), FlowError> {
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
    fn record_provider(&mut self, pk: Option<u64>) {
        self.provider_ensured = true;
        self.provider_pk = pk;
    }

    /// Check mode found no provider: `.env` values derived from it are unknown, so comparing
    /// them would only repeat the root cause as noise.
    fn provider_missing(&self) -> bool {
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

    fn finding(&mut self, kind: &str, message: String) {
        let message = self.ctx.redactor.redact(&message);
        self.record.findings.push(Finding {
            kind: kind.into(),
            message,
        });
    }

    fn warn(&mut self, message: String) {
        if !self.record.warnings.contains(&message) {
            self.record.warnings.push(message);
        }
    }

    fn change(&mut self, message: String) {
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

    fn upstream(&self, e: AkError) -> FlowError {
        FlowError::Upstream(self.ctx.redactor.redact(&e.to_string()))
    }

    fn new_secret(&mut self, value: Option<String>) -> wasmtime::Result<Resource<SecretValue>> {
        if let Some(v) = &value {
            self.ctx.redactor.add(v);
        }
        Ok(self.table.push(SecretValue { value })?)
    }
}

impl types::Host for RunState {}

#[cfg(test)]
mod redactor_tests {
    use super::Redactor;

    #[test]
    fn every_known_secret_is_replaced_wherever_it_appears() {
        let r = Redactor::default();
        r.add("pin7"); // shorter than the index key: still a secret
        r.add("tok-0123456789");
        r.add("tok-0123456789-longer");
        r.add("ünïcødé-secret-value");
        for i in 0..1000 {
            r.add(&format!("client-secret-{i:04}-abcdefgh"));
        }
        assert_eq!(
            r.redact("a tok-0123456789-longer and tok-0123456789, short pin7"),
            "a *** and ***, short ***"
        );
        assert_eq!(r.redact("pin7pin7 ü pin"), "****** ü pin");
        assert_eq!(
            r.redact("x=client-secret-0999-abcdefghy=client-secret-0001-abcdefgh"),
            "x=***y=***"
        );
        assert_eq!(r.redact("ü ünïcødé-secret-value ü"), "ü *** ü");
        assert_eq!(r.redact("client-secret-0999-abcdefg"), "client-secret-0999-abcdefg");
        assert_eq!(r.redact(""), "");
    }

    #[test]
    fn printable_text_stays_on_its_line() {
        assert_eq!(
            super::printable("ok\r✓ grafana\n\u{1b}[32mgreen\u{2028}x\u{202e}y\u{85}z\t"),
            "ok ✓ grafana  [32mgreen x y z "
        );
    }
}
