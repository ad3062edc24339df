//! The OAuth2 / OpenID Connect flow shared by the `oauth` and `oidc` components: a confidential
//! provider with the service's redirect URIs, its application, and the `.env` keys the service reads.
//!
//! The two types differ in their defaults (which `.env` keys, whether `openid` is forced); see
//! [`Flavor`]. The manifest can override scopes, client type and the exact `.env` keys
//! (`sso.env: {KEY: "{placeholder}"}`) so a service such as Grafana gets `GF_AUTH_GENERIC_OAUTH_*`.

use crate::roles::{self, Roles};
use crate::sso::flow::authentik::{self, ClientType, Oauth2Provider, Oauth2ProviderSpec, ScopeMappingSpec};
use crate::sso::flow::service_config;
use crate::template::{self, SECRET_PLACEHOLDER};
use crate::{FlowError, Mode, Outcome, Service, Settings};

/// What distinguishes the `oauth` and `oidc` types.
pub struct Flavor {
    /// `oauth` or `oidc`.
    pub sso_type: &'static str,
    /// Default `.env` keys (suffix after the service prefix) and their templates, used when the
    /// manifest has no `sso.env` block.
    pub default_env: &'static [(&'static str, &'static str)],
    /// OIDC always needs the `openid` scope (userinfo answers 403 without it since Authentik 2024.2).
    pub force_openid: bool,
}

pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];

/// Runs the flow for one service in the mode the host chose.
pub fn run(flavor: &Flavor, service: &Service, _mode: Mode) -> Result<Outcome, FlowError> {
    let settings = Settings::new(&service.settings);
    let mut spec = provider_spec(flavor, service, &settings)?;
    let roles = Roles::from_settings(&settings)?;
    // Every `.env` template is checked before anything is registered.
    let names: Vec<&str> = PLACEHOLDERS.iter().chain(&roles::PLACEHOLDERS).copied().collect();
    let entries = env_entries(flavor, service, &settings);
    for (key, tpl) in &entries {
        template::check(key, tpl, &names)?;
    }
    if let Some(roles) = &roles {
        check_roles_reach_the_service(roles, &spec, &settings, &entries)?;
    }
    for item in settings.items("scope_mappings") {
        let item = Settings::new(&item);
        let field = |k: &str| {
            item.get(k)
                .ok_or_else(|| FlowError::Invalid(format!("each sso.scope_mappings entry needs `{k}`")))
        };
        let name = authentik::ensure_scope_mapping(&ScopeMappingSpec {
            scope_name: field("scope")?.to_string(),
            expression: field("expression")?.to_string(),
            description: item.get("description").unwrap_or("").to_string(),
        })?;
        spec.custom_scopes.push(name);
    }
    let provider = authentik::ensure_oauth2_provider(&service.slug, &spec)?;
    crate::ensure_application(service, &settings)?;
    let server = authentik::server_info();
    write_env(flavor, service, &settings, &provider, &server.url, roles.as_ref())?;
    // The host prints the one registration line (`registered` or `updated`), knowing what changed.
    Ok(Outcome {
        summary: "Authentik app present, redirects match".to_string(),
        findings: Vec::new(),
    })
}

fn provider_spec(flavor: &Flavor, service: &Service, settings: &Settings) -> Result<Oauth2ProviderSpec, FlowError> {
    let mut scopes: Vec<String> = settings
        .list("scopes")
        .map(|s| s.into_iter().map(str::to_string).collect())
        .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect());
    if flavor.force_openid && !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".to_string());
    }
    let client_type = match settings.get("client_type").unwrap_or("confidential") {
        "confidential" => ClientType::Confidential,
        "public" => ClientType::Public,
        other => {
            return Err(FlowError::Invalid(format!(
                "sso.client_type must be confidential or public, not `{other}`"
            )));
        }
    };
    if service.redirect_uris.is_empty() {
        return Err(FlowError::Invalid(
            "no redirect URI: set sso.redirect_path (or redirect_paths / redirect_uris_regex) in the manifest"
                .to_string(),
        ));
    }
    Ok(Oauth2ProviderSpec {
        client_type,
        redirect_uris: service.redirect_uris.clone(),
        scopes,
        custom_scopes: Vec::new(),
        sign_tokens: settings.bool("sign_tokens", true)?,
        issuer_per_provider: settings.get("issuer_mode") != Some("global"),
        grant_types: settings
            .list("grant_types")
            .map(|g| g.into_iter().map(str::to_string).collect())
            .unwrap_or_default(),
        sub_mode: settings.get("sub_mode").map(str::to_string),
        include_claims_in_id_token: settings.bool("include_claims_in_id_token", true)?,
        access_token_validity: settings.get("access_token_validity").map(str::to_string),
    })
}

/// The placeholders an OAuth flow fills in `sso.env` templates (besides `{client_secret}`).
const PLACEHOLDERS: [&str; 11] = [
    "client_id",
    "issuer",
    "authorize_url",
    "token_url",
    "userinfo_url",
    "jwks_url",
    "end_session_url",
    "discovery_url",
    "public_url",
    "authentik_url",
    "slug",
];

/// Each `.env` key and its template: the manifest's `sso.env` map, or the flavor's defaults
/// under the service's prefix.
fn env_entries<'a>(flavor: &'a Flavor, service: &Service, settings: &Settings<'a>) -> Vec<(String, &'a str)> {
    match settings.map("env") {
        Some(map) => map.into_iter().map(|(k, t)| (k.to_string(), t)).collect(),
        None => flavor
            .default_env
            .iter()
            .map(|(suffix, t)| (format!("{}{suffix}", service.env_prefix), *t))
            .collect(),
    }
}

/// Writes each `.env` key the service reads: the manifest's `sso.env` map, or the flavor's defaults
/// under the service's prefix.
fn write_env(
    flavor: &Flavor,
    service: &Service,
    settings: &Settings,
    provider: &Oauth2Provider,
    authentik_url: &str,
    roles: Option<&Roles>,
) -> Result<(), FlowError> {
    let role_values = Roles::values(roles);
    let values: [(&str, &str); PLACEHOLDERS.len()] = [
        ("client_id", provider.client_id.as_str()),
        ("issuer", provider.issuer.as_str()),
        ("authorize_url", provider.authorize_url.as_str()),
        ("token_url", provider.token_url.as_str()),
        ("userinfo_url", provider.userinfo_url.as_str()),
        ("jwks_url", provider.jwks_url.as_str()),
        ("end_session_url", provider.end_session_url.as_str()),
        ("discovery_url", provider.discovery_url.as_str()),
        ("public_url", service.public_url.as_str()),
        ("authentik_url", authentik_url),
        ("slug", service.slug.as_str()),
    ];
    debug_assert!(values.iter().map(|(n, _)| *n).eq(PLACEHOLDERS));
    let values: Vec<(&str, &str)> = values
        .into_iter()
        .chain(role_values.iter().map(|(n, v)| (*n, v.as_str())))
        .collect();
    for (key, tpl) in env_entries(flavor, service, settings) {
        if tpl == SECRET_PLACEHOLDER {
            service_config::set_env_secret(&key, &provider.client_secret)?;
        } else {
            service_config::set_env(&key, &template::expand(&key, tpl, &values)?)?;
        }
    }
    Ok(())
}

/// `sso.roles` must reach the service: through an `.env` value that renders it, or through the
/// claim `sso.roles_claim` the host derives; and a rendering over the `groups` claim needs the
/// scope that carries it (`profile`, in Authentik's default mappings). A manifest that declares
/// roles nothing passes on would read as mapped while every user gets the service's default.
fn check_roles_reach_the_service(
    roles: &Roles,
    spec: &Oauth2ProviderSpec,
    settings: &Settings,
    entries: &[(String, &str)],
) -> Result<(), FlowError> {
    let uses = |name: &str| entries.iter().any(|(_, t)| t.contains(&format!("{{{name}}}")));
    let over_groups = uses("roles_jmespath") || uses("roles_by_group_json");
    if !over_groups && settings.get("roles_claim").is_none() {
        return Err(FlowError::Invalid(format!(
            "sso.roles ({} roles) reaches no .env value: use {{roles_jmespath}} (Grafana) or {{roles_by_group_json}} \
             (Flask-AppBuilder, Superset) in sso.env, or set sso.roles_claim",
            roles.entries.len()
        )));
    }
    if over_groups && !spec.scopes.iter().any(|s| s == "profile") {
        return Err(FlowError::Invalid(
            "sso.roles is rendered over the `groups` claim, which Authentik sends in the `profile` scope: add \
             profile to sso.scopes"
                .to_string(),
        ));
    }
    Ok(())
}

/// A confidential OpenID Connect client with one strict redirect URI, signed tokens and its own
/// issuer: what services that build their redirect URI themselves (Wiki.js, Frappe) register.
pub fn confidential_oidc_spec(redirect_uri: String) -> Oauth2ProviderSpec {
    Oauth2ProviderSpec {
        client_type: ClientType::Confidential,
        redirect_uris: vec![crate::RedirectUri {
            matching: crate::MatchMode::Strict,
            url: redirect_uri,
        }],
        scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
        custom_scopes: Vec::new(),
        sign_tokens: true,
        issuer_per_provider: true,
        grant_types: Vec::new(),
        sub_mode: None,
        include_claims_in_id_token: true,
        access_token_validity: None,
    }
}
