//! `sso:flow/authentik`: the identity provider, on the current service's own objects. Every
//! function checks the name it is given (only the service's slug) and the data it carries (the
//! URLs, expressions and client shape the manifest declares), then builds the desired state for
//! the server's version and applies, compares or records it (`oauth2`, `saml`, `proxy`, the
//! shared `objects`; `blueprint` for `export --blueprint`).

pub mod access;
pub mod blueprint;
mod oauth2;
pub mod objects;
pub mod outposts;
mod proxy;
mod saml;
pub mod shapes;

pub use outposts::OutpostWriter;

use wasmtime::component::Resource;

use crate::bindings::sso::flow::authentik::{
    self as wit_ak, ApplicationSpec, ClientType, Oauth2ProviderSpec, ProxyMode, ProxyProviderSpec, SamlProviderSpec,
    ScopeMappingSpec,
};
use crate::bindings::sso::flow::types::MatchMode;
use crate::capabilities::state::{FlowError, RunState, SecretValue};
use crate::stack::declared::{DEFAULT_GRANT_TYPES, http_url};

impl wit_ak::HostSecret for RunState {
    async fn drop(&mut self, rep: Resource<SecretValue>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl wit_ak::Host for RunState {
    async fn server_info(&mut self) -> wasmtime::Result<wit_ak::Server> {
        let version = match self.ctx.authentik.request_shapes().await {
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
        if let Err(e) = self
            .own_provider_name("OAuth2 provider", &name)
            .and_then(|()| checks::oauth2_provider(self, &spec))
        {
            return Ok(Err(e));
        }
        if self.ctx.blueprint
            && let Ok(caps) = self.ctx.authentik.request_shapes().await.cloned()
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
        if let Err(e) = self
            .own_provider_name("SAML provider", &name)
            .and_then(|()| checks::saml_provider(self, &spec))
        {
            return Ok(Err(e));
        }
        if self.ctx.blueprint
            && let Ok(caps) = self.ctx.authentik.request_shapes().await.cloned()
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
        if let Err(e) = self
            .own_provider_name("proxy provider", &name)
            .and_then(|()| checks::proxy_provider(self, &spec))
        {
            return Ok(Err(e));
        }
        if self.ctx.blueprint
            && let Ok(caps) = self.ctx.authentik.request_shapes().await.cloned()
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
        if self.mode == crate::capabilities::state::Mode::Check && spec.mode == ProxyMode::ForwardDomain {
            self.warn_forward_domain_port();
        }
        Ok(Ok(wit_ak::ProxyProvider {
            name,
            external_host: spec.external_host,
        }))
    }

    async fn attach_to_embedded_outpost(&mut self) -> wasmtime::Result<Result<String, FlowError>> {
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
        if let Err(e) = checks::scope_mapping(self, &spec) {
            return Ok(Err(e));
        }
        // Sent, compared and exported as Authentik will hold it, or an expression written as a
        // YAML block scalar (final newline) would differ on every check.
        let spec = wit_ak::ScopeMappingSpec {
            scope_name: shapes::stored_text(&spec.scope_name),
            expression: shapes::stored_text(&spec.expression),
            description: shapes::stored_text(&spec.description),
        };
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
        if let Err(e) = checks::application(self, &spec) {
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

    async fn ensure_access(&mut self, spec: wit_ak::AccessSpec) -> wasmtime::Result<Result<(), FlowError>> {
        if self.application.is_none() {
            return Ok(Err(FlowError::Invalid(
                "call ensure-application before ensure-access".into(),
            )));
        }
        if let Err(e) = checks::access(self, &spec) {
            return Ok(Err(e));
        }
        if self.ctx.blueprint {
            let entries = blueprint::access(&self.service.slug, &spec.groups, &spec.users);
            self.record.blueprint.extend(entries);
        }
        Ok(access::ensure_access(self, &spec).await)
    }
}

impl RunState {
    /// The outpost finds a `forward_domain` provider by the cookie domain at the end of the
    /// request's `Host`, port included (`internal/outpost/proxyv2/handlers.go` `lookupApp`):
    /// a service on a non-default port is never matched, and every request to it fails.
    fn warn_forward_domain_port(&mut self) {
        let explicit_port = url::Url::parse(&self.service.public_url)
            .ok()
            .and_then(|u| u.port().map(|p| (u.host_str().unwrap_or_default().to_string(), p)));
        if let Some((host, port)) = explicit_port {
            self.warn(format!(
                "forward_domain on port {port}: Authentik's outpost matches the cookie domain against the host with \
                 its port (`{host}:{port}`), so it will not serve this service; use the default port or forward_single"
            ));
        }
    }
}

/// The data a flow sends, held to what the operator's manifest declares for its service
/// ([`crate::stack::Declared`]). Checking *which* object a call names is not enough: a redirect
/// URI decides where Authentik sends codes and tokens, an expression is Python that Authentik
/// runs. Every check runs at the point of the call, before anything is looked up or written, and
/// refuses with `denied` naming what was refused and where the operator would declare it. The
/// invariants are listed in `docs/threat-model.md`.
mod checks {
    use super::*;

    /// Where the operator declares more origins, for messages.
    fn manifest(state: &RunState) -> String {
        state.service.manifest_path.display().to_string()
    }

    fn idp_origin(state: &RunState) -> Option<String> {
        url::Url::parse(state.ctx.authentik.public_url())
            .ok()
            .map(|u| u.origin().ascii_serialization())
    }

    /// A URL the flow asks Authentik to send users, codes or assertions to (a redirect URI, an ACS
    /// URL, a launch URL, a proxy's external host): http(s), no user info or fragment, on an origin
    /// the manifest declares for the service, and never Authentik's own.
    pub fn registered_url(state: &RunState, what: &str, url: &str) -> Result<(), FlowError> {
        let denied = |why: String| Err(FlowError::Denied(format!("{what} `{url}` {why}")));
        let parsed = match http_url(url) {
            Ok(u) => u,
            Err(e) => return Err(FlowError::Denied(format!("{what}: {e}"))),
        };
        if parsed.fragment().is_some() {
            return denied("has a fragment (`#`), which no redirect target may carry".into());
        }
        let origin = parsed.origin().ascii_serialization();
        if idp_origin(state).as_deref() == Some(origin.as_str()) {
            return denied(format!(
                "is on Authentik's own origin {origin}: a flow may not point Authentik at itself"
            ));
        }
        if !state.service.declared.origins.contains(&origin) {
            return denied(format!(
                "is not on an origin declared for `{}` ({}); the operator declares more under sso.origins in {}",
                state.service.name,
                state.service.declared.origins.join(", "),
                manifest(state)
            ));
        }
        Ok(())
    }

    /// Strict redirect URIs on declared origins; regular expressions only verbatim from
    /// `sso.redirect_uris_regex`.
    fn redirect_uris(
        state: &RunState,
        uris: &[crate::bindings::sso::flow::types::RedirectUri],
    ) -> Result<(), FlowError> {
        for uri in uris {
            match uri.matching {
                MatchMode::Strict => registered_url(state, "redirect URI", &uri.url)?,
                MatchMode::Regex => {
                    if !state.service.declared.regex_uris.contains(&uri.url) {
                        return Err(FlowError::Denied(format!(
                            "regex redirect URI `{}` is not one of sso.redirect_uris_regex in {}: a flow may register \
                             only the operator's expressions",
                            uri.url,
                            manifest(state)
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn oauth2_provider(state: &RunState, spec: &Oauth2ProviderSpec) -> Result<(), FlowError> {
        redirect_uris(state, &spec.redirect_uris)?;
        let declared = &state.service.declared;
        if spec.client_type == ClientType::Public && !declared.public_client {
            return Err(FlowError::Denied(format!(
                "a public client (no secret) needs `sso.client_type: public` in {}",
                manifest(state)
            )));
        }
        for grant in &spec.grant_types {
            let allowed = if declared.grant_types.is_empty() {
                DEFAULT_GRANT_TYPES.contains(&grant.as_str())
            } else {
                declared.grant_types.contains(grant)
            };
            if !allowed {
                return Err(FlowError::Denied(format!(
                    "grant type `{grant}` is not declared for `{}` (sso.grant_types in {}; default: {})",
                    state.service.name,
                    manifest(state),
                    DEFAULT_GRANT_TYPES.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Who may log in is the operator's decision: exactly the manifest's `sso.access`, in any
    /// order, or the call is refused (a flow could otherwise open the application to everyone,
    /// or to a group of its choosing).
    pub fn access(state: &RunState, spec: &wit_ak::AccessSpec) -> Result<(), FlowError> {
        let Some(declared) = &state.service.declared.access else {
            return Err(FlowError::Denied(format!(
                "sso.access is not declared in {}: who may use the application is the operator's decision",
                manifest(state)
            )));
        };
        let same = |a: &[String], b: &[String]| {
            let mut a: Vec<&String> = a.iter().collect();
            let mut b: Vec<&String> = b.iter().collect();
            a.sort();
            a.dedup();
            b.sort();
            b.dedup();
            a == b
        };
        if same(&spec.groups, &declared.groups) && same(&spec.users, &declared.users) {
            return Ok(());
        }
        Err(FlowError::Denied(format!(
            "the groups and users asked for are not sso.access in {}: only the manifest decides who may log in",
            manifest(state)
        )))
    }

    /// Authentik evaluates a scope mapping's expression as Python inside its server: only an
    /// expression the operator wrote in `sso.scope_mappings`, verbatim and for that scope, is sent.
    pub fn scope_mapping(state: &RunState, spec: &ScopeMappingSpec) -> Result<(), FlowError> {
        let scope = spec.scope_name.trim();
        let declared = state
            .service
            .declared
            .scope_mappings
            .iter()
            .any(|m| m.scope == scope && m.expression == spec.expression);
        if declared {
            return Ok(());
        }
        Err(FlowError::Denied(format!(
            "the expression for scope `{scope}` is not one of sso.scope_mappings in {}: Authentik runs it as Python, \
             so only the operator's manifest may supply it",
            manifest(state)
        )))
    }

    pub fn saml_provider(state: &RunState, spec: &SamlProviderSpec) -> Result<(), FlowError> {
        registered_url(state, "ACS URL", &spec.acs_url)
    }

    pub fn proxy_provider(state: &RunState, spec: &ProxyProviderSpec) -> Result<(), FlowError> {
        let declared = &state.service.declared;
        let mode = match spec.mode {
            ProxyMode::ForwardSingle => "forward_single",
            ProxyMode::ForwardDomain => "forward_domain",
            ProxyMode::Proxy => "proxy",
        };
        if mode != declared.proxy_mode {
            return Err(FlowError::Denied(format!(
                "proxy mode `{mode}` is not the manifest's (`sso.mode: {}` in {})",
                declared.proxy_mode,
                manifest(state)
            )));
        }
        let external = spec.external_host.trim_end_matches('/');
        let declared_external = declared.external_host.as_deref().map(|h| h.trim_end_matches('/'));
        // Domain-level forward auth logs in through Authentik's own host (its documented setup):
        // allowed when the manifest asks for that mode and names no other external host.
        let idp_login = mode == "forward_domain"
            && declared_external.is_none()
            && http_url(external).ok().map(|u| u.origin().ascii_serialization()) == idp_origin(state);
        if declared_external != Some(external) && !idp_login {
            registered_url(state, "proxy external host", &spec.external_host)?;
        }
        let same = |sent: Option<&str>, declared: Option<&str>| {
            sent.map(|s| s.trim_end_matches('/')) == declared.map(|d| d.trim_end_matches('/'))
        };
        if mode == "proxy" && !same(spec.internal_host.as_deref(), declared.internal_host.as_deref()) {
            return Err(FlowError::Denied(format!(
                "internal host `{}` is not the manifest's sso.internal_host ({}): the outpost forwards users' \
                 requests there, so only the operator names it",
                spec.internal_host.as_deref().unwrap_or(""),
                declared.internal_host.as_deref().unwrap_or("unset")
            )));
        }
        if mode == "forward_domain" && !same(spec.cookie_domain.as_deref(), declared.cookie_domain.as_deref()) {
            return Err(FlowError::Denied(format!(
                "cookie domain `{}` is not the manifest's sso.cookie_domain ({}): it decides which hosts share the login",
                spec.cookie_domain.as_deref().unwrap_or(""),
                declared.cookie_domain.as_deref().unwrap_or("unset")
            )));
        }
        if spec.skip_path_regex.as_deref().is_some_and(|r| !r.trim().is_empty())
            && spec.skip_path_regex != declared.skip_path_regex
        {
            return Err(FlowError::Denied(format!(
                "skip_path_regex is not the manifest's sso.skip_path_regex: paths that bypass authentication are the \
                 operator's decision ({})",
                manifest(state)
            )));
        }
        Ok(())
    }

    pub fn application(state: &RunState, spec: &ApplicationSpec) -> Result<(), FlowError> {
        match &spec.launch_url {
            Some(url) if state.service.declared.launch_url.as_deref() != Some(url.as_str()) => {
                registered_url(state, "launch URL", url)
            }
            _ => Ok(()),
        }
    }
}
