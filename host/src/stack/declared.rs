//! What an operator's manifest declares for a service, beyond its name: the origins its URLs may
//! live on, the expressions Authentik may evaluate for it, the OAuth2 client shape, the proxy
//! provider's upstream and cookie domain, and the files its flow may write.
//!
//! Read once when the stack is loaded, from the operator's own file. The capability layer holds
//! every flow call to it: a flow may choose among what is declared here, never add to it
//! (`docs/threat-model.md`).

use std::path::{Component, Path};

use super::roles::DeclaredRoles;

/// The service's declarations, resolved against `.env`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Declared {
    /// Origins (`https://grafana.example.org`) the URLs a flow registers may be on: the public
    /// URL's and each of `sso.origins`.
    pub origins: Vec<String>,
    /// The host names of those origins, lower-case: what a Traefik router of the service may match.
    pub hosts: Vec<String>,
    /// `sso.redirect_uris_regex`, verbatim: the only regular expressions a flow may register.
    pub regex_uris: Vec<String>,
    /// `sso.scope_mappings`: the only expressions Authentik may evaluate for this service.
    pub scope_mappings: Vec<DeclaredMapping>,
    /// `sso.client_type: public`: a client without a secret.
    pub public_client: bool,
    /// `sso.grant_types`; empty means the defaults (authorization code and refresh token).
    pub grant_types: Vec<String>,
    /// `sso.mode` for a proxy provider (default `forward_single`).
    pub proxy_mode: String,
    /// `sso.external_host`, `sso.internal_host`, `sso.cookie_domain`, `sso.skip_path_regex`,
    /// `sso.launch_url`: when set, the only values a flow may send for these fields.
    pub external_host: Option<String>,
    pub internal_host: Option<String>,
    pub cookie_domain: Option<String>,
    pub skip_path_regex: Option<String>,
    pub launch_url: Option<String>,
    /// Files under `packages/<svc>/` the flow may write: `sso.files` and the Traefik file.
    pub files: Vec<String>,
    /// `sso.traefik_file` (default `traefik/sso.yml`): checked to route only `hosts`.
    pub traefik_file: String,
    /// `sso.access`: who may use the application; `None` leaves it open to every user.
    pub access: Option<DeclaredAccess>,
    /// `sso.roles`: which groups give which of the service's roles.
    pub roles: Option<DeclaredRoles>,
}

/// `sso.access`: the groups (by name) and users (by username) whose bindings the application
/// gets, exactly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeclaredAccess {
    pub groups: Vec<String>,
    pub users: Vec<String>,
}

/// One `sso.scope_mappings` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DeclaredMapping {
    pub scope: String,
    pub expression: String,
}

/// The grant types a client gets when its manifest names none.
pub const DEFAULT_GRANT_TYPES: [&str; 2] = ["authorization_code", "refresh_token"];

/// Where a flow's default Traefik file lives.
pub const DEFAULT_TRAEFIK_FILE: &str = "traefik/sso.yml";

/// Files no flow may write, whatever a manifest declares: what ssoctl and `just` read as the
/// operator's intent.
const OPERATOR_FILES: [&str; 4] = ["manifest.yaml", "manifest.yml", "plugins.lock", "sso-grants.yaml"];

impl Declared {
    /// Reads the declarations from the manifest's flattened, interpolated `sso:` settings.
    /// `public_url` is the service's public URL, already checked to be an http(s) URL.
    pub fn parse(public_url: &str, settings: &[(String, String)]) -> Result<Self, String> {
        let get = |key: &str| {
            settings
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let list = |key: &str| -> Vec<String> {
            let prefix = format!("{key}.");
            let mut items: Vec<(usize, String)> = settings
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.parse::<usize>().ok()?, v.clone())))
                .collect();
            items.sort_by_key(|(i, _)| *i);
            let mut out: Vec<String> = items.into_iter().map(|(_, v)| v).collect();
            if out.is_empty()
                && let Some(one) = get(key)
            {
                out.push(one);
            }
            out
        };
        let mut declared = Declared {
            proxy_mode: get("mode").unwrap_or_else(|| "forward_single".to_string()),
            ..Declared::default()
        };
        for url in std::iter::once(public_url.to_string()).chain(list("origins")) {
            let (origin, host) = origin_of(&url).map_err(|e| format!("sso.origins: {e}"))?;
            if !declared.origins.contains(&origin) {
                declared.origins.push(origin);
            }
            if !declared.hosts.contains(&host) {
                declared.hosts.push(host);
            }
        }
        declared.regex_uris = list("redirect_uris_regex");
        let mut index = 0;
        loop {
            let field = |f: &str| {
                settings
                    .iter()
                    .find(|(k, _)| *k == format!("scope_mappings.{index}.{f}"))
                    .map(|(_, v)| v.clone())
            };
            match (field("scope"), field("expression")) {
                (None, None) => break,
                (Some(scope), Some(expression)) => declared.scope_mappings.push(DeclaredMapping {
                    scope: scope.trim().to_string(),
                    expression,
                }),
                _ => {
                    return Err(format!(
                        "sso.scope_mappings entry {index} needs both `scope` and `expression`"
                    ));
                }
            }
            index += 1;
        }
        declared.public_client = get("client_type").as_deref() == Some("public");
        declared.grant_types = list("grant_types");
        for (key, slot) in [
            ("external_host", &mut declared.external_host),
            ("internal_host", &mut declared.internal_host),
            ("launch_url", &mut declared.launch_url),
        ] {
            if let Some(url) = get(key) {
                http_url(&url).map_err(|e| format!("sso.{key}: {e}"))?;
                *slot = Some(url);
            }
        }
        declared.cookie_domain = get("cookie_domain");
        declared.skip_path_regex = settings
            .iter()
            .find(|(k, _)| k == "skip_path_regex")
            .map(|(_, v)| v.clone());
        let has_access = settings.iter().any(|(k, _)| k == "access" || k.starts_with("access."));
        if has_access {
            let access = DeclaredAccess {
                groups: list("access.groups"),
                users: list("access.users"),
            };
            let unknown = settings.iter().find(|(k, _)| {
                k.starts_with("access.") && !k.starts_with("access.groups") && !k.starts_with("access.users")
            });
            if let Some((k, _)) = unknown {
                return Err(format!(
                    "sso.{k}: sso.access takes `groups` and `users` (lists of names)"
                ));
            }
            if let Some(blank) = access.groups.iter().chain(&access.users).find(|n| n.trim().is_empty()) {
                return Err(format!("sso.access: `{blank}` is not a group or user name"));
            }
            declared.access = Some(access);
        }
        declared.roles = DeclaredRoles::parse(settings)?;
        if let Some((scope, expression)) = declared.roles.as_ref().and_then(DeclaredRoles::claim_mapping) {
            if declared.scope_mappings.iter().any(|m| m.scope == scope) {
                return Err(format!(
                    "sso.roles_claim `{scope}` is also a scope in sso.scope_mappings: one scope, one mapping"
                ));
            }
            declared.scope_mappings.push(DeclaredMapping { scope, expression });
        }
        declared.traefik_file = get("traefik_file").unwrap_or_else(|| DEFAULT_TRAEFIK_FILE.to_string());
        for file in list("files").into_iter().chain([declared.traefik_file.clone()]) {
            writable_path(&file).map_err(|e| format!("sso.files: {e}"))?;
            if !declared.files.contains(&file) {
                declared.files.push(file);
            }
        }
        Ok(declared)
    }
}

/// `url` as an http(s) URL without user info; the error says why not.
pub fn http_url(url: &str) -> Result<url::Url, String> {
    // The URL parser drops tabs and line breaks and reads `\` as `/`; the server that stores
    // the text (Authentik joins old-style redirect URIs with line breaks) may not.
    if url.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return Err(format!(
            "`{}` contains whitespace, a control character or `\\`",
            url.escape_debug()
        ));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}` must be an http or https URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("`{url}` carries user info (`user@`); name the host alone"));
    }
    if parsed.host_str().is_none_or(|h| h.is_empty() || h.ends_with('.')) {
        return Err(format!("`{url}` has no usable host name"));
    }
    Ok(parsed)
}

/// The origin (`https://host[:port]`) and lower-case host of an origin URL.
fn origin_of(url: &str) -> Result<(String, String), String> {
    let parsed = http_url(url)?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "`{url}` has a query or fragment; an origin is scheme, host and port"
        ));
    }
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    Ok((parsed.origin().ascii_serialization(), host))
}

/// A path a flow may be declared to write: plain, relative, inside the service's folder, and
/// none of the operator's own files.
pub fn writable_path(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    let plain =
        !path.is_empty() && !path.contains(['\0', '\\']) && p.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(format!(
            "`{path}` must be a plain relative path inside the service's folder (no `..`, `.` or leading `/`)"
        ));
    }
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if OPERATOR_FILES.contains(&name.as_str()) || name == ".env" || name.starts_with(".env.") {
        return Err(format!("`{path}` is the operator's own file; no flow may write it"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn origins_mappings_and_files_come_from_the_manifest() {
        let d = Declared::parse(
            "https://Grafana.Example.org",
            &pairs(&[
                ("origins.0", "https://grafana-alt.example.org:8443/"),
                ("scope_mappings.0.scope", " read_user "),
                ("scope_mappings.0.expression", "return {}"),
                ("files.0", "conf/app.ini"),
                ("grant_types.0", "implicit"),
            ]),
        )
        .unwrap();
        assert_eq!(
            d.origins,
            vec!["https://grafana.example.org", "https://grafana-alt.example.org:8443"]
        );
        assert_eq!(d.hosts, vec!["grafana.example.org", "grafana-alt.example.org"]);
        assert_eq!(d.scope_mappings[0].scope, "read_user");
        assert_eq!(d.files, vec!["conf/app.ini", "traefik/sso.yml"]);
        assert_eq!(d.grant_types, vec!["implicit"]);
        assert_eq!(d.proxy_mode, "forward_single");
    }

    #[test]
    fn operator_files_and_odd_origins_are_refused() {
        for file in [
            "manifest.yaml",
            "x/../manifest.yaml",
            "./manifest.yaml",
            "/etc/x",
            "sub/PLUGINS.lock",
            ".env",
        ] {
            let err = Declared::parse("https://a.example.org", &pairs(&[("files.0", file)])).unwrap_err();
            assert!(err.starts_with("sso.files: "), "{file}: {err}");
        }
        for origin in [
            "javascript:alert(1)",
            "https://u@a.example.org",
            "https://a.example.org/?x",
            "https://a.",
        ] {
            let err = Declared::parse("https://a.example.org", &pairs(&[("origins.0", origin)])).unwrap_err();
            assert!(err.starts_with("sso.origins: "), "{origin}: {err}");
        }
    }
}
