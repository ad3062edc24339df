//! The few Authentik objects ssoctl reads, declared tolerantly: only the fields we use, all
//! optional or defaulted, unknown fields ignored, enums kept as strings. A newer server adding a
//! field or an enum value cannot break parsing (docs/authentik-api.md §7).

use serde::Deserialize;
use serde_json::Value;

/// `{"pagination": {...}, "results": [...]}` — `next` is a page number, 0 when there is none.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub pagination: Pagination,
    pub results: Vec<T>,
}

#[derive(Debug, Deserialize)]
pub struct Pagination {
    #[serde(default)]
    pub next: f64,
    /// Lets the client fetch pages 2.. together instead of one after another.
    #[serde(default)]
    pub total_pages: f64,
}

#[derive(Debug, Deserialize)]
pub struct VersionInfo {
    pub version_current: String,
}

/// An Authentik flow (authorization, invalidation, ...): the login sequence a provider sends users
/// through. Not a flow component.
#[derive(Clone, Debug, Deserialize)]
pub struct LoginFlow {
    pub pk: String,
    pub slug: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Keypair {
    pub pk: String,
    pub name: String,
    #[serde(default)]
    pub fingerprint_sha256: Option<String>,
    /// RFC 3339 date-time the certificate expires.
    #[serde(default)]
    pub cert_expiry: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ScopeMapping {
    pub pk: String,
    #[serde(default)]
    pub managed: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scope_name: String,
    #[serde(default)]
    pub expression: String,
    #[serde(default)]
    pub description: String,
}

/// OAuth2 provider. `redirect_uris` is a string (old servers) or a list (new ones): kept raw and
/// normalised by the caller that knows the server's capabilities.
#[derive(Clone, Debug, Deserialize)]
pub struct OAuth2Provider {
    pub pk: u64,
    pub name: String,
    #[serde(default)]
    pub authorization_flow: Option<String>,
    #[serde(default)]
    pub invalidation_flow: Option<String>,
    #[serde(default)]
    pub property_mappings: Vec<String>,
    #[serde(default)]
    pub client_type: Option<String>,
    #[serde(default)]
    pub client_id: String,
    /// Absent on servers that stopped returning secrets; then the secret cannot be compared.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub redirect_uris: Value,
    #[serde(default)]
    pub signing_key: Option<String>,
    #[serde(default)]
    pub sub_mode: Option<String>,
    #[serde(default)]
    pub issuer_mode: Option<String>,
    #[serde(default)]
    pub include_claims_in_id_token: Option<bool>,
    #[serde(default)]
    pub access_token_validity: Option<String>,
    #[serde(default)]
    pub assigned_application_slug: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Application {
    /// The application's policy binding model id (`pbm_uuid`): the `target` of its bindings.
    #[serde(default)]
    pub pk: Option<String>,
    pub slug: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub provider: Option<u64>,
    #[serde(default)]
    pub meta_launch_url: Option<String>,
    #[serde(default)]
    pub open_in_new_tab: Option<bool>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ProxyProvider {
    pub pk: u64,
    pub name: String,
    #[serde(default)]
    pub authorization_flow: Option<String>,
    #[serde(default)]
    pub invalidation_flow: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub external_host: String,
    #[serde(default)]
    pub internal_host: Option<String>,
    #[serde(default)]
    pub cookie_domain: Option<String>,
    #[serde(default)]
    pub skip_path_regex: Option<String>,
    #[serde(default)]
    pub access_token_validity: Option<String>,
    #[serde(default)]
    pub assigned_application_slug: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Outpost {
    pub pk: String,
    pub name: String,
    #[serde(default)]
    pub managed: Option<String>,
    #[serde(default)]
    pub providers: Vec<u64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SamlMapping {
    pub pk: String,
    #[serde(default)]
    pub managed: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SamlProvider {
    pub pk: u64,
    pub name: String,
    #[serde(default)]
    pub authorization_flow: Option<String>,
    #[serde(default)]
    pub invalidation_flow: Option<String>,
    #[serde(default)]
    pub property_mappings: Vec<String>,
    #[serde(default)]
    pub acs_url: String,
    #[serde(default)]
    pub audience: String,
    /// Before 2026.5.
    #[serde(default)]
    pub issuer: Option<String>,
    /// From 2026.5.
    #[serde(default)]
    pub issuer_override: Option<String>,
    #[serde(default)]
    pub url_issuer: Option<String>,
    #[serde(default)]
    pub sp_binding: Option<String>,
    #[serde(default)]
    pub signing_kp: Option<String>,
    #[serde(default)]
    pub name_id_mapping: Option<String>,
    #[serde(default)]
    pub sign_assertion: Option<bool>,
    #[serde(default)]
    pub sign_response: Option<bool>,
    #[serde(default)]
    pub assigned_application_slug: Option<String>,
}

/// A group, as far as access needs it.
#[derive(Clone, Debug, Deserialize)]
pub struct Group {
    pub pk: String,
    pub name: String,
}

/// A user, as far as access needs it.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub pk: u64,
    pub username: String,
}

/// A named object a binding embeds (`group_obj`, `policy_obj`).
#[derive(Clone, Debug, Deserialize)]
pub struct Named {
    #[serde(default)]
    pub name: String,
}

/// A user a binding embeds (`user_obj`).
#[derive(Clone, Debug, Deserialize)]
pub struct UserRef {
    #[serde(default)]
    pub username: String,
}

/// A policy binding on an application: exactly one of a policy, a group or a user.
#[derive(Clone, Debug, Deserialize)]
pub struct PolicyBinding {
    pub pk: String,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub user: Option<u64>,
    #[serde(default)]
    pub policy_obj: Option<Named>,
    #[serde(default)]
    pub group_obj: Option<Named>,
    #[serde(default)]
    pub user_obj: Option<UserRef>,
    #[serde(default)]
    pub negate: bool,
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub order: i64,
}

fn enabled() -> bool {
    true
}
