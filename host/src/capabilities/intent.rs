//! The data a flow sends, held to what the operator's manifest declares for its service
//! ([`crate::stack::Declared`]). Checking *which* object a call names is not enough: a redirect
//! URI decides where Authentik sends codes and tokens, an expression is Python that Authentik
//! runs, a Traefik file routes hosts. Every check here runs at the point of the call, before
//! anything is looked up or written, and refuses with `denied` naming what was refused and where
//! the operator would declare it. The invariants are listed in `docs/threat-model.md`.

use super::{FlowError, RunState};
use crate::runtime::bindings::sso::flow::authentik::{
    ApplicationSpec, ClientType, Oauth2ProviderSpec, ProxyMode, ProxyProviderSpec, SamlProviderSpec, ScopeMappingSpec,
};
use crate::runtime::bindings::sso::flow::types::MatchMode;
use crate::stack::declared::{DEFAULT_GRANT_TYPES, http_url};

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
    uris: &[crate::runtime::bindings::sso::flow::types::RedirectUri],
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

/// A file the flow writes: one the manifest declares (`sso.files`, the Traefik file), and the
/// Traefik file only routing the service's own hosts.
pub fn file_write(state: &RunState, path: &str, contents: &str) -> Result<(), FlowError> {
    let declared = &state.service.declared;
    if !declared.files.iter().any(|f| f == path) {
        return Err(FlowError::Denied(format!(
            "`{path}` is not a file {} may write: the manifest declares {} (sso.files, sso.traefik_file in {})",
            state.service.name,
            declared.files.join(", "),
            manifest(state)
        )));
    }
    if path == declared.traefik_file {
        super::traefik::check(contents, &state.service.slug, &declared.hosts)
            .map_err(|why| FlowError::Denied(format!("`{path}`: {why}")))?;
    }
    Ok(())
}
