//! The operator's grants: which optional capabilities each flow component (by `sso.type`) may
//! use beyond the base interfaces every flow gets (`types`, `authentik`, `service-config`,
//! `log`). Default deny: a component importing an optional capability that its
//! type is not granted is refused at load time.
//!
//! The file (`sso-grants.yaml` at the stack root, or `--grants FILE`) belongs to the operator:
//!
//! ```yaml
//! keycloak:
//!   idp-http:
//!     origin: https://keycloak.example.org
//!     paths: [/admin/realms/pma/]          # optional prefixes; default: the whole origin
//!     auth:
//!       client-credentials:
//!         token-url: https://keycloak.example.org/realms/master/protocol/openid-connect/token
//!         client-id: ssoctl
//!         client-secret-env: KEYCLOAK_SSOCTL_SECRET
//!   service-http: true
//! ```
//!
//! The stock `saml`, `wikijs` and `frappe` flows have `service-http` built in; an entry for a
//! stock type replaces its built-in grant.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bindings::API_VERSION;

/// The default grants file, relative to the stack root.
pub const GRANTS_FILE: &str = "sso-grants.yaml";

/// Stock types whose flows call the service's own API.
const STOCK_SERVICE_HTTP: &[&str] = &["saml", "wikijs", "frappe"];

/// What one `sso.type` is granted beyond the base interfaces.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Grant {
    /// The `service-http` interface: requests to the service's own API origin.
    #[serde(default)]
    pub service_http: bool,
    /// The `idp-http` interface: requests to one identity provider's origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_http: Option<IdpGrant>,
}

/// An `idp-http` grant: where requests may go, and the credentials the host injects.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IdpGrant {
    /// `scheme://host[:port]`, no path and no trailing slash.
    pub origin: String,
    /// Path prefixes allowed on the origin; empty allows every path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    #[serde(default)]
    pub auth: IdpAuth,
}

/// The credentials the host adds to every `idp-http` request. Values are read from the process
/// environment or `.env` when first needed; flows can never read these keys.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(try_from = "AuthFields", into = "AuthFields")]
pub enum IdpAuth {
    /// No credentials (`auth` absent or `{}`: an open registration endpoint).
    #[default]
    None,
    /// `bearer-env: KEY`: `Authorization: Bearer <value of KEY>`.
    BearerEnv(String),
    /// `client-credentials: {token-url, client-id, client-secret-env, scope}`: an OAuth2
    /// client-credentials token, obtained from `token-url` and renewed by the host.
    ClientCredentials(ClientCredentials),
}

/// `auth:` as written: at most one of the fields (none: no credentials).
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AuthFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bearer_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_credentials: Option<ClientCredentials>,
}

impl TryFrom<AuthFields> for IdpAuth {
    type Error = String;
    fn try_from(fields: AuthFields) -> Result<Self, String> {
        match (fields.bearer_env, fields.client_credentials) {
            (None, None) => Ok(IdpAuth::None),
            (Some(key), None) => Ok(IdpAuth::BearerEnv(key)),
            (None, Some(cc)) => Ok(IdpAuth::ClientCredentials(cc)),
            (Some(_), Some(_)) => Err("auth takes one of bearer-env and client-credentials, not both".into()),
        }
    }
}

impl From<IdpAuth> for AuthFields {
    fn from(auth: IdpAuth) -> Self {
        match auth {
            IdpAuth::None => AuthFields::default(),
            IdpAuth::BearerEnv(key) => AuthFields {
                bearer_env: Some(key),
                client_credentials: None,
            },
            IdpAuth::ClientCredentials(cc) => AuthFields {
                bearer_env: None,
                client_credentials: Some(cc),
            },
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    /// The `.env` key holding the client secret.
    pub client_secret_env: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl IdpAuth {
    /// The `.env` keys holding the credentials: the host's, never a flow's.
    pub fn env_keys(&self) -> Vec<&str> {
        match self {
            IdpAuth::None => Vec::new(),
            IdpAuth::BearerEnv(key) => vec![key],
            IdpAuth::ClientCredentials(cc) => vec![&cc.client_secret_env],
        }
    }
}

/// An optional capability a component imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Optional {
    ServiceHttp,
    IdpHttp,
}

impl Optional {
    pub fn all() -> [Optional; 2] {
        [Optional::ServiceHttp, Optional::IdpHttp]
    }

    pub fn name(self) -> &'static str {
        match self {
            Optional::ServiceHttp => "service-http",
            Optional::IdpHttp => "idp-http",
        }
    }

    /// The import as the component names it.
    pub fn import(self) -> String {
        match self {
            Optional::ServiceHttp => format!("sso:flow/service-http@{API_VERSION}"),
            Optional::IdpHttp => format!("sso:flow/idp-http@{API_VERSION}"),
        }
    }

    /// What to add to the grants file.
    pub fn example(self, sso_type: &str) -> String {
        match self {
            Optional::ServiceHttp => format!("{sso_type}: {{service-http: true}}"),
            Optional::IdpHttp => {
                format!("{sso_type}: {{idp-http: {{origin: https://idp.example.org, auth: {{bearer-env: KEY}}}}}}")
            }
        }
    }
}

/// Where a type's grant comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "path")]
pub enum GrantSource {
    /// The built-in grant of a stock flow.
    BuiltIn,
    /// The operator's grants file (`None`: grants given in code, as tests do).
    Operator(Option<PathBuf>),
    /// Nothing granted beyond the base interfaces.
    Default,
}

/// Every type's grant.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// The file the grants came from, if any.
    pub file: Option<PathBuf>,
    entries: BTreeMap<String, Grant>,
}

impl Grants {
    /// The built-in grants only (no grants file).
    pub fn built_in() -> Self {
        Self::default()
    }

    /// Reads a grants file. `required`: a missing file is an error (the operator named it).
    pub fn load(path: &Path, required: bool) -> Result<Self, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(Self::built_in()),
            Err(e) => return Err(format!("grants file {}: {e}", path.display())),
        };
        let grants = Self::parse(&text).map_err(|e| format!("grants file {}: {e}", path.display()))?;
        Ok(Self {
            file: Some(path.to_path_buf()),
            ..grants
        })
    }

    /// Parses and validates grants; errors name the entry (and line, for YAML errors).
    pub fn parse(text: &str) -> Result<Self, String> {
        let entries: Option<BTreeMap<String, Grant>> = serde_yaml::from_str(text).map_err(|e| match e.location() {
            Some(at) => format!("line {}: {e}", at.line()),
            None => e.to_string(),
        })?;
        let mut entries = entries.unwrap_or_default();
        for (sso_type, grant) in &mut entries {
            if let Some(idp) = &mut grant.idp_http {
                validate_idp(idp).map_err(|e| format!("{sso_type}.idp-http: {e}"))?;
                // One spelling from here on: no trailing slash.
                idp.origin = idp.origin.trim_end_matches('/').to_string();
            }
        }
        Ok(Self { file: None, entries })
    }

    /// Adds or replaces one type's grant (tests, and callers that build grants in code).
    pub fn with(mut self, sso_type: &str, grant: Grant) -> Self {
        self.entries.insert(sso_type.to_string(), grant);
        self
    }

    /// The grant in force for `sso_type`, and where it comes from.
    pub fn for_type(&self, sso_type: &str) -> (Grant, GrantSource) {
        if let Some(grant) = self.entries.get(sso_type) {
            return (grant.clone(), GrantSource::Operator(self.file.clone()));
        }
        if STOCK_SERVICE_HTTP.contains(&sso_type) {
            let grant = Grant {
                service_http: true,
                idp_http: None,
            };
            return (grant, GrantSource::BuiltIn);
        }
        (Grant::default(), GrantSource::Default)
    }

    /// Every `.env` key a grant names as a credential: never reachable by flows.
    pub fn credential_keys(&self) -> Vec<String> {
        self.entries
            .values()
            .filter_map(|g| g.idp_http.as_ref())
            .flat_map(|i| i.auth.env_keys())
            .map(str::to_string)
            .collect()
    }

    /// Where the operator grants: the file, or the default path to create.
    pub fn describe_file(&self) -> String {
        match &self.file {
            Some(f) => f.display().to_string(),
            None => GRANTS_FILE.to_string(),
        }
    }
}

impl Grant {
    pub fn allows(&self, capability: Optional) -> bool {
        match capability {
            Optional::ServiceHttp => self.service_http,
            Optional::IdpHttp => self.idp_http.is_some(),
        }
    }

    /// The optional capabilities granted, by name, for the audit.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.service_http {
            names.push("service-http".to_string());
        }
        if let Some(idp) = &self.idp_http {
            let mut what = format!("idp-http to {}", idp.origin);
            if !idp.paths.is_empty() {
                what.push_str(&format!(" (paths {})", idp.paths.join(", ")));
            }
            what.push_str(match idp.auth {
                IdpAuth::None => ", no credentials",
                IdpAuth::BearerEnv(_) => ", bearer token injected",
                IdpAuth::ClientCredentials(_) => ", client-credentials token injected",
            });
            names.push(what);
        }
        names
    }
}

fn validate_idp(idp: &IdpGrant) -> Result<(), String> {
    let url = url::Url::parse(&idp.origin).map_err(|e| format!("origin `{}`: {e}", idp.origin))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.path() != "/"
        || url.query().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "origin `{}` must be scheme://host[:port] (http or https, no path, no credentials)",
            idp.origin
        ));
    }
    for prefix in &idp.paths {
        if !prefix.starts_with('/') || prefix.contains("..") {
            return Err(format!(
                "path prefix `{prefix}` must start with `/` and not contain `..`"
            ));
        }
    }
    for key in idp.auth.env_keys() {
        if !crate::stack::valid_env_key(key) {
            return Err(format!("`{key}` is not a valid .env key (A-Z, 0-9, _)"));
        }
    }
    if let IdpAuth::ClientCredentials(cc) = &idp.auth {
        let token = url::Url::parse(&cc.token_url).map_err(|e| format!("token-url `{}`: {e}", cc.token_url))?;
        if !matches!(token.scheme(), "http" | "https") {
            return Err(format!("token-url `{}` must be http or https", cc.token_url));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grants_file_names_origin_paths_and_credentials() {
        let grants = Grants::parse(
            "keycloak:\n  idp-http:\n    origin: https://kc.example.org\n    paths: [/admin/realms/pma/]\n    auth:\n      client-credentials:\n        token-url: https://kc.example.org/realms/master/protocol/openid-connect/token\n        client-id: ssoctl\n        client-secret-env: KC_SECRET\ndcr:\n  idp-http:\n    origin: http://127.0.0.1:3000\n    auth: {bearer-env: DCR_TOKEN}\nfrappe: {}\n",
        )
        .unwrap();
        let (kc, _) = grants.for_type("keycloak");
        assert!(kc.allows(Optional::IdpHttp) && !kc.allows(Optional::ServiceHttp));
        assert_eq!(
            grants.for_type("dcr").0.idp_http.unwrap().auth,
            IdpAuth::BearerEnv("DCR_TOKEN".into())
        );
        // An entry replaces a stock type's built-in grant; other stock types keep theirs.
        assert!(!grants.for_type("frappe").0.service_http);
        assert_eq!(
            grants.for_type("wikijs"),
            (
                Grant {
                    service_http: true,
                    idp_http: None
                },
                GrantSource::BuiltIn
            )
        );
        assert_eq!(grants.for_type("oidc").1, GrantSource::Default);
        let mut keys = grants.credential_keys();
        keys.sort();
        assert_eq!(keys, ["DCR_TOKEN", "KC_SECRET"]);
    }

    #[test]
    fn bad_grants_are_refused_with_the_entry_named() {
        let err = Grants::parse("kc:\n  idp-http:\n    origin: https://kc.example.org/admin\n").unwrap_err();
        assert!(
            err.contains("kc.idp-http: origin `https://kc.example.org/admin` must be"),
            "{err}"
        );
        let err = Grants::parse("kc:\n  idp-htp: {}\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("idp-htp"), "{err}");
        let err = Grants::parse("kc:\n  idp-http: {origin: 'http://a', paths: [admin]}\n").unwrap_err();
        assert!(err.contains("path prefix `admin`"), "{err}");
    }
}
