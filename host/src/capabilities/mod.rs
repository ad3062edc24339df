//! The capability layer: what a flow's imports actually do. Every call is checked against the
//! service being configured (its Authentik objects, its `.env` keys, its `packages/<svc>/` folder)
//! and then, per mode, applied, compared or recorded. Writes to `.env` and files are staged in the
//! run's [`RunRecord`] and land only after the whole run succeeded.

pub mod blueprint;
mod files;
mod http;
mod idp;
mod intent;
mod oauth2;
mod objects;
mod proxy;
mod saml;
mod traefik;

pub use files::commit as commit_files;
pub use objects::warm_up;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use wasmtime::component::{Resource, ResourceTable};

use crate::authentik::{AkError, Authentik};
use crate::grants::{Grant, Grants};
use crate::runtime::bindings::sso::flow::{
    authentik as wit_ak, idp_http, log as wit_log, service_config, service_http, types,
};
use crate::runtime::limits::RunLimiter;
use crate::stack::{ServiceSpec, Stack, valid_env_key};
pub use types::{FlowError, Mode};

/// State shared by every run of one command.
pub struct RunContext {
    pub authentik: Arc<Authentik>,
    pub stack: Arc<Stack>,
    pub redactor: Redactor,
    /// Serialised, batched writes of the embedded outpost's provider list.
    pub outposts: proxy::OutpostWriter,
    /// Client for `service-http` (services' own APIs), built on first use: loading the
    /// system's root certificates costs milliseconds most runs do not need to pay.
    pub service_http: std::sync::OnceLock<reqwest::Client>,
    pub request_timeout: std::time::Duration,
    /// `.env` keys holding `idp-http` credentials: the host's alone.
    pub credential_keys: Vec<String>,
    /// `idp-http` client-credentials tokens, shared by the command's runs.
    pub idp_tokens: idp::TokenCache,
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

    /// Counts a host call; past the quota the run is ended (a trap, not an error the flow can
    /// swallow and retry).
    fn charge(&mut self) -> wasmtime::Result<()> {
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

    /// Whether this service may touch `.env` key `key`.
    pub(crate) fn check_env_key(&self, key: &str) -> Result<(), FlowError> {
        if !valid_env_key(key) {
            return Err(FlowError::Invalid(format!(
                "`{key}` is not a valid .env key (A-Z, 0-9, _)"
            )));
        }
        if key.starts_with("AUTHENTIK_") {
            return Err(FlowError::Denied(format!(
                "`{key}`: AUTHENTIK_* keys are never available to flows"
            )));
        }
        if self.ctx.credential_keys.iter().any(|k| k == key) {
            return Err(FlowError::Denied(format!(
                "`{key}` holds an idp-http credential of the operator's grants; the host injects it, flows never see it"
            )));
        }
        match self.ctx.stack.env_owner(key) {
            Some(owner) if owner == self.service.name => Ok(()),
            Some(owner) => Err(FlowError::Denied(format!(
                "`{key}` belongs to service `{owner}`; `{}` may only use its own keys ({}* and those its manifest declares)",
                self.service.name, self.service.env_prefix
            ))),
            None => Err(FlowError::Denied(format!(
                "`{key}` is not owned by `{}`: use the prefix {} or declare it under sso.env in its manifest",
                self.service.name, self.service.env_prefix
            ))),
        }
    }

    /// Whether this service may set `.env` key `key`: one of its own, and not one a manifest
    /// expands with `${VAR}` (the operator's input: an API origin, a host name), which would let
    /// a flow choose where ssoctl sends credentials on the next run.
    pub(crate) fn check_env_write(&self, key: &str) -> Result<(), FlowError> {
        self.check_env_key(key)?;
        if self.ctx.stack.env_expanded(key) {
            return Err(FlowError::Denied(format!(
                "`{key}` is expanded by a manifest (`${{{key}}}`): it is the operator's input, which no flow may set"
            )));
        }
        Ok(())
    }

    pub(crate) fn current_env(&self, key: &str) -> Option<String> {
        self.ctx.stack.env.get(key).map(str::to_string)
    }

    /// The shared logic of `set-env` and `set-env-secret` per mode. `shown` is how the value may
    /// appear in messages (`None` for secrets).
    fn stage_env(&mut self, key: &str, value: &str, secret: bool) {
        let current = self.current_env(key);
        let differs = current.as_deref() != Some(value);
        match self.mode {
            Mode::Apply => {
                self.record.env_writes.insert(key.to_string(), value.to_string());
            }
            Mode::Plan => {
                if differs {
                    let what = if secret {
                        " (client secret)".to_string()
                    } else {
                        format!(" = {value}")
                    };
                    let verb = if current.is_some() { "update" } else { "set" };
                    self.change(format!("{verb} .env {key}{what}"));
                }
            }
            Mode::Check => {
                if !differs || self.provider_missing() {
                    return;
                }
                match (secret, current) {
                    (true, None) => self.finding("client-secret-mismatch", format!("client secret mismatch: {key} is not set in .env")),
                    (true, Some(_)) => self.finding(
                        "client-secret-mismatch",
                        format!("client secret mismatch: {key} in .env differs from Authentik's (logins fail with \"invalid client\")"),
                    ),
                    (false, None) => self.finding("env-mismatch", format!("{key} is not set in .env (expected `{value}`)")),
                    (false, Some(cur)) => self.finding("env-mismatch", format!("{key} in .env is `{cur}`, expected `{value}`")),
                }
            }
        }
    }
}

/// Keys whose values are secrets; `get-env` refuses them so a flow cannot read and leak one.
fn is_secret_name(key: &str) -> bool {
    ["SECRET", "TOKEN", "PASSWORD", "PASSWD", "PRIVATE", "API_KEY"]
        .iter()
        .any(|s| key.contains(s))
}

impl types::Host for RunState {}

impl wit_ak::HostSecret for RunState {
    async fn drop(&mut self, rep: Resource<SecretValue>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl wit_ak::Host for RunState {
    async fn server_info(&mut self) -> wasmtime::Result<wit_ak::Server> {
        self.charge()?;
        let version = match self.ctx.authentik.capabilities().await {
            Ok(c) => c.version.to_string(),
            Err(_) => "unknown".to_string(),
        };
        Ok(wit_ak::Server {
            url: self.ctx.authentik.public_url().to_string(),
            version,
        })
    }

    async fn ensure_oauth2_provider(
        &mut self,
        name: String,
        spec: wit_ak::Oauth2ProviderSpec,
    ) -> wasmtime::Result<Result<wit_ak::Oauth2Provider, FlowError>> {
        self.charge()?;
        if let Err(e) = self
            .own_provider_name("OAuth2 provider", &name)
            .and_then(|()| intent::oauth2_provider(self, &spec))
        {
            return Ok(Err(e));
        }
        if self.ctx.blueprint
            && let Ok(caps) = self.ctx.authentik.capabilities().await.cloned()
        {
            let entry = blueprint::oauth2(self, &caps, &name, &spec);
            self.record.blueprint.push(entry);
        }
        let outcome = match oauth2::ensure_provider(self, &spec).await {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        self.record_provider(outcome.pk);
        let client_secret = self.new_secret(outcome.client_secret)?;
        let base = self.ctx.authentik.public_url();
        let slug = &self.service.slug;
        let issuer = if spec.issuer_per_provider {
            format!("{base}/application/o/{slug}/")
        } else {
            format!("{base}/")
        };
        Ok(Ok(wit_ak::Oauth2Provider {
            name,
            client_id: outcome.client_id,
            client_secret,
            issuer,
            authorize_url: format!("{base}/application/o/authorize/"),
            token_url: format!("{base}/application/o/token/"),
            userinfo_url: format!("{base}/application/o/userinfo/"),
            jwks_url: format!("{base}/application/o/{slug}/jwks/"),
            end_session_url: format!("{base}/application/o/{slug}/end-session/"),
            discovery_url: format!("{base}/application/o/{slug}/.well-known/openid-configuration"),
        }))
    }

    async fn ensure_saml_provider(
        &mut self,
        name: String,
        spec: wit_ak::SamlProviderSpec,
    ) -> wasmtime::Result<Result<wit_ak::SamlProvider, FlowError>> {
        self.charge()?;
        if let Err(e) = self
            .own_provider_name("SAML provider", &name)
            .and_then(|()| intent::saml_provider(self, &spec))
        {
            return Ok(Err(e));
        }
        if self.ctx.blueprint
            && let Ok(caps) = self.ctx.authentik.capabilities().await.cloned()
        {
            let entry = blueprint::saml(self, &caps, &name, &spec);
            self.record.blueprint.push(entry);
        }
        let outcome = match saml::ensure_provider(self, &spec).await {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        self.record_provider(outcome.pk);
        let base = self.ctx.authentik.public_url();
        let slug = &self.service.slug;
        Ok(Ok(wit_ak::SamlProvider {
            name,
            issuer: outcome.issuer,
            metadata_url: format!("{base}/application/saml/{slug}/metadata/"),
            sso_redirect_url: format!("{base}/application/saml/{slug}/sso/binding/redirect/"),
            sso_post_url: format!("{base}/application/saml/{slug}/sso/binding/post/"),
            slo_redirect_url: format!("{base}/application/saml/{slug}/slo/binding/redirect/"),
            signing_fingerprint: outcome.fingerprint,
            signing_certificate: outcome.certificate,
        }))
    }

    async fn ensure_proxy_provider(
        &mut self,
        name: String,
        spec: wit_ak::ProxyProviderSpec,
    ) -> wasmtime::Result<Result<wit_ak::ProxyProvider, FlowError>> {
        self.charge()?;
        if let Err(e) = self
            .own_provider_name("proxy provider", &name)
            .and_then(|()| intent::proxy_provider(self, &spec))
        {
            return Ok(Err(e));
        }
        if self.ctx.blueprint
            && let Ok(caps) = self.ctx.authentik.capabilities().await.cloned()
        {
            let entry = blueprint::proxy(self, &caps, &name, &spec);
            self.record.blueprint.push(entry);
        }
        let pk = match proxy::ensure_provider(self, &spec).await {
            Ok(pk) => pk,
            Err(e) => return Ok(Err(e)),
        };
        self.record_provider(pk);
        self.proxy_provider = true;
        Ok(Ok(wit_ak::ProxyProvider {
            name,
            external_host: spec.external_host,
        }))
    }

    async fn attach_to_embedded_outpost(&mut self) -> wasmtime::Result<Result<String, FlowError>> {
        self.charge()?;
        if !self.proxy_provider {
            return Ok(Err(FlowError::Invalid(
                "call ensure-proxy-provider before attach-to-embedded-outpost".into(),
            )));
        }
        let pk = self.provider_pk;
        Ok(proxy::attach_to_embedded_outpost(self, pk).await)
    }

    async fn ensure_scope_mapping(
        &mut self,
        spec: wit_ak::ScopeMappingSpec,
    ) -> wasmtime::Result<Result<String, FlowError>> {
        self.charge()?;
        if let Err(e) = intent::scope_mapping(self, &spec) {
            return Ok(Err(e));
        }
        let name = format!("ssoctl {} {}", self.service.slug, spec.scope_name.trim());
        if self.ctx.blueprint {
            self.record.blueprint.push(blueprint::scope_mapping(&name, &spec));
        }
        Ok(oauth2::ensure_scope_mapping(self, &spec).await)
    }

    async fn ensure_application(
        &mut self,
        spec: wit_ak::ApplicationSpec,
    ) -> wasmtime::Result<Result<wit_ak::Application, FlowError>> {
        self.charge()?;
        if spec.slug != self.service.slug {
            return Ok(Err(FlowError::Denied(format!(
                "application `{}` is not `{}`'s: this run may only touch application `{}`",
                spec.slug, self.service.name, self.service.slug
            ))));
        }
        if !self.provider_ensured {
            return Ok(Err(FlowError::Invalid(
                "call ensure-oauth2-provider before ensure-application".into(),
            )));
        }
        if let Err(e) = intent::application(self, &spec) {
            return Ok(Err(e));
        }
        if self.ctx.blueprint {
            let entry = blueprint::application(Some(&self.service.slug), &spec);
            self.record.blueprint.push(entry);
        }
        Ok(oauth2::ensure_application(self, &spec)
            .await
            .map(|()| wit_ak::Application {
                slug: spec.slug.clone(),
                name: spec.name.clone(),
                launch_url: spec.launch_url.clone(),
            }))
    }
}

impl service_config::Host for RunState {
    async fn get_env(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, FlowError>> {
        self.charge()?;
        if let Err(e) = self.check_env_key(&key) {
            return Ok(Err(e));
        }
        if is_secret_name(&key) {
            return Ok(Err(FlowError::Denied(format!(
                "`{key}` holds a secret; flows cannot read secrets"
            ))));
        }
        Ok(Ok(self.current_env(&key)))
    }

    async fn set_env(&mut self, key: String, value: String) -> wasmtime::Result<Result<(), FlowError>> {
        self.charge()?;
        if let Err(e) = self.check_env_write(&key) {
            return Ok(Err(e));
        }
        if value.contains(['\n', '\r', '\0']) {
            return Ok(Err(FlowError::Invalid(format!(
                "value for `{key}` contains a line break or NUL"
            ))));
        }
        self.stage_env(&key, &value, false);
        Ok(Ok(()))
    }

    async fn env_secret(&mut self, key: String) -> wasmtime::Result<Result<Option<Resource<SecretValue>>, FlowError>> {
        self.charge()?;
        if let Err(e) = self.check_env_key(&key) {
            return Ok(Err(e));
        }
        match self.current_env(&key).filter(|v| !v.is_empty()) {
            Some(value) => Ok(Ok(Some(self.new_secret(Some(value))?))),
            None => Ok(Ok(None)),
        }
    }

    async fn set_env_secret(
        &mut self,
        key: String,
        value: Resource<SecretValue>,
    ) -> wasmtime::Result<Result<(), FlowError>> {
        self.charge()?;
        if let Err(e) = self.check_env_write(&key) {
            return Ok(Err(e));
        }
        let secret = self.table.get(&value)?.value.clone();
        match secret {
            Some(s) => self.stage_env(&key, &s, true),
            None if self.mode == Mode::Apply => {
                return Ok(Err(FlowError::Unsupported(format!(
                    "the client secret for `{key}` is not readable from this Authentik server"
                ))));
            }
            // Check/plan with no provider yet: "provider missing" / "create provider" says it all.
            None if self.mode == Mode::Plan && self.current_env(&key).is_none() => {
                self.change(format!("set .env {key} (client secret)"));
            }
            None => {}
        }
        Ok(Ok(()))
    }

    async fn read_file(&mut self, path: String) -> wasmtime::Result<Result<Option<String>, FlowError>> {
        self.charge()?;
        Ok(files::read(self, &path))
    }

    async fn write_file(&mut self, path: String, contents: String) -> wasmtime::Result<Result<(), FlowError>> {
        self.charge()?;
        Ok(files::stage_write(self, &path, contents))
    }
}

impl service_http::Host for RunState {
    async fn send(
        &mut self,
        request: service_config::HttpRequest,
    ) -> wasmtime::Result<Result<service_config::HttpResponse, FlowError>> {
        self.charge()?;
        let request = self.http_request(request)?;
        let answer = http::send(self, request).await;
        self.http_response(answer)
    }
}

impl idp_http::Host for RunState {
    async fn origin(&mut self) -> wasmtime::Result<String> {
        self.charge()?;
        // Only a component granted idp-http is loaded with this import.
        idp::origin(self).map_err(|e| wasmtime::format_err!("{e:?}"))
    }

    async fn send(
        &mut self,
        request: service_config::HttpRequest,
    ) -> wasmtime::Result<Result<service_config::HttpResponse, FlowError>> {
        self.charge()?;
        let request = self.http_request(request)?;
        let answer = idp::send(self, request).await;
        self.http_response(answer)
    }
}

impl RunState {
    /// A guest request with its secret handles resolved.
    fn http_request(&self, request: service_config::HttpRequest) -> wasmtime::Result<http::Request> {
        let resolve = |handle: &Option<Resource<SecretValue>>| -> wasmtime::Result<_> {
            Ok(match handle {
                Some(handle) => Some(self.table.get(handle)?.value.clone()),
                None => None,
            })
        };
        Ok(http::Request {
            secret: resolve(&request.secret)?,
            bearer: resolve(&request.bearer)?,
            method: request.method,
            path: request.path,
            body: request.body,
            capture: request.capture,
        })
    }

    /// The guest's answer, the captured credential behind a handle.
    fn http_response(
        &mut self,
        answer: Result<http::Response, FlowError>,
    ) -> wasmtime::Result<Result<service_config::HttpResponse, FlowError>> {
        match answer {
            Ok((status, body, captured)) => {
                let captured = captured
                    .into_iter()
                    .map(|value| value.map(|v| self.new_secret(Some(v))).transpose())
                    .collect::<wasmtime::Result<Vec<_>>>()?;
                Ok(Ok(service_config::HttpResponse { status, body, captured }))
            }
            Err(e) => Ok(Err(e)),
        }
    }
}

impl wit_log::Host for RunState {
    async fn log(&mut self, level: wit_log::Level, message: String) -> wasmtime::Result<()> {
        if let Some(message) = self.capped_message(message)? {
            let service = self.service.name.as_str();
            match level {
                wit_log::Level::Trace => tracing::trace!(service, "{message}"),
                wit_log::Level::Debug => tracing::debug!(service, "{message}"),
                wit_log::Level::Info => tracing::info!(service, "{message}"),
                wit_log::Level::Warn => tracing::warn!(service, "{message}"),
                wit_log::Level::Error => {
                    tracing::error!(service, "{message}");
                    self.record.last_error_log = Some(message);
                }
            }
        }
        Ok(())
    }

    async fn event(&mut self, message: String) -> wasmtime::Result<()> {
        if let Some(message) = self.capped_message(message)? {
            self.record.events.push(message);
        }
        Ok(())
    }
}

impl RunState {
    /// Truncates a guest message to 8 KiB and scrubs secrets; past the run's log quota the run is
    /// ended (a flood is a fault, not something to drop silently).
    fn capped_message(&mut self, mut message: String) -> wasmtime::Result<Option<String>> {
        const MAX: usize = 8 << 10;
        if message.len() > MAX {
            let mut cut = MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        if self.record.log_bytes + message.len() > self.limiter.limits.log_bytes {
            return Err(wasmtime::format_err!(
                "{} exceeded its log quota of {} KiB",
                self.limiter.label,
                self.limiter.limits.log_bytes >> 10
            ));
        }
        self.record.log_bytes += message.len();
        Ok(Some(printable(&self.ctx.redactor.redact(&message))))
    }
}

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
