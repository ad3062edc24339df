//! What a given Authentik server version expects from a client (reference/authentik-api.md §3).
//! Decided once per run from the version the server reports; every request shape that changed
//! between releases is a field here, so supporting a new release means touching this table.

/// A parsed `YYYY.M.P` version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub year: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split(['.', '-', '+']);
        let year = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        Some(Self { year, minor, patch })
    }

    const fn v(year: u32, minor: u32, patch: u32) -> Self {
        Self { year, minor, patch }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.year, self.minor, self.patch)
    }
}

/// Request shapes for one server version.
#[derive(Clone, Debug, PartialEq)]
pub struct Capabilities {
    pub version: Version,
    /// OAuth2 `redirect_uris` is a list of `{matching_mode, url}`; before, a newline-separated
    /// string of regular expressions (CVE-2024-52289 patches 2024.8.5 and 2024.10.3, then 2024.12).
    pub redirect_uri_list: bool,
    /// `invalidation_flow` exists and is required on providers (2024.10).
    pub invalidation_flow: bool,
    /// OAuth2 `grant_types` exists and must be sent, or logins fail (2026.5).
    pub grant_types: bool,
    /// Where OAuth2 scope mappings live (moved in 2024.8; the old path was removed).
    pub scope_mapping_path: &'static str,
    /// Where SAML property mappings live (moved in 2024.8 too).
    pub saml_mapping_path: &'static str,
    /// SAML providers take `issuer_override` (2026.5); before, `issuer`. Sending the wrong one is
    /// silently ignored by the server.
    pub saml_issuer_override: bool,
    /// SAML providers have `sign_assertion` / `sign_response` (2024.8).
    pub saml_sign_switches: bool,
}

impl Capabilities {
    pub fn for_version(version: Version) -> Self {
        let redirect_uri_list = match (version.year, version.minor) {
            (2024, 8) => version.patch >= 5,
            (2024, 10) => version.patch >= 3,
            _ => version >= Version::v(2024, 12, 0),
        };
        Self {
            version,
            redirect_uri_list,
            invalidation_flow: version >= Version::v(2024, 10, 0),
            grant_types: version >= Version::v(2026, 5, 0),
            scope_mapping_path: if version >= Version::v(2024, 8, 0) {
                "propertymappings/provider/scope/"
            } else {
                "propertymappings/scope/"
            },
            saml_mapping_path: if version >= Version::v(2024, 8, 0) {
                "propertymappings/provider/saml/"
            } else {
                "propertymappings/saml/"
            },
            saml_issuer_override: version >= Version::v(2026, 5, 0),
            saml_sign_switches: version >= Version::v(2024, 8, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(v: &str) -> Capabilities {
        Capabilities::for_version(Version::parse(v).unwrap())
    }

    #[test]
    fn the_two_shapes_of_redirect_uris() {
        assert!(!caps("2024.2.0").redirect_uri_list);
        assert!(!caps("2024.8.4").redirect_uri_list);
        assert!(caps("2024.8.5").redirect_uri_list);
        assert!(!caps("2024.10.2").redirect_uri_list);
        assert!(caps("2024.10.3").redirect_uri_list);
        assert!(caps("2024.12.0").redirect_uri_list);
        assert!(caps("2026.8.3").redirect_uri_list);
    }

    #[test]
    fn version_gates() {
        let old = caps("2024.2.0");
        assert!(!old.invalidation_flow && !old.grant_types);
        assert_eq!(old.scope_mapping_path, "propertymappings/scope/");
        let new = caps("2026.8.3");
        assert!(new.invalidation_flow && new.grant_types);
        assert_eq!(new.scope_mapping_path, "propertymappings/provider/scope/");
        assert!(!caps("2026.2.0").grant_types);
        assert!(!caps("2026.2.0").saml_issuer_override && caps("2026.5.6").saml_issuer_override);
        assert!(!caps("2024.6.0").saml_sign_switches && caps("2024.8.0").saml_sign_switches);
        assert_eq!(Version::parse("2025.10.4-rc1").unwrap().to_string(), "2025.10.4");
    }
}
