//! What a given Authentik server version expects from a client (docs/authentik-api.md §5).
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
pub struct RequestShapes {
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

/// The newest Authentik release whose schema ssoctl is tested against (`sim/schemas/`).
pub const NEWEST_KNOWN: Version = Version::v(2026, 8, 3);
/// The oldest one.
pub const OLDEST_KNOWN: Version = Version::v(2023, 10, 0);

/// The parts of the server's live OpenAPI schema (`GET /api/v3/schema/?format=json`) that decide
/// request shapes. Everything else in the 1.7 MB document is skipped while parsing.
#[derive(serde::Deserialize)]
pub struct LiveSchema {
    info: SchemaInfo,
    #[serde(default)]
    paths: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
    components: SchemaComponents,
}

#[derive(serde::Deserialize)]
struct SchemaInfo {
    version: String,
}

#[derive(serde::Deserialize)]
struct SchemaComponents {
    schemas: SchemaObjects,
}

#[derive(serde::Deserialize)]
struct SchemaObjects {
    #[serde(rename = "OAuth2ProviderRequest")]
    oauth2: Option<ObjectSchema>,
    #[serde(rename = "SAMLProviderRequest")]
    saml: Option<ObjectSchema>,
}

#[derive(serde::Deserialize)]
struct ObjectSchema {
    #[serde(default)]
    properties: std::collections::BTreeMap<String, PropertySchema>,
}

#[derive(serde::Deserialize)]
struct PropertySchema {
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl LiveSchema {
    /// `info.version`, when it parses.
    pub fn version(&self) -> Option<Version> {
        Version::parse(&self.info.version)
    }
}

impl RequestShapes {
    /// Request shapes read from the server's own schema, so a patch release that changed a shape
    /// (redirect URIs in 2024.8.5 and 2024.10.3) or a release newer than any ssoctl knows is
    /// handled by what the server says, not by a table. Falls back to the table per field when the
    /// schema lacks the object.
    pub fn from_schema(version: Version, schema: &LiveSchema) -> Self {
        let table = Self::for_version(version);
        let oauth2 = schema.components.schemas.oauth2.as_ref().map(|o| &o.properties);
        let saml = schema.components.schemas.saml.as_ref().map(|o| &o.properties);
        let has_path = |p: &str| schema.paths.contains_key(p);
        Self {
            version,
            redirect_uri_list: oauth2
                .and_then(|p| p.get("redirect_uris"))
                .map_or(table.redirect_uri_list, |r| r.kind.as_deref() == Some("array")),
            invalidation_flow: oauth2.map_or(table.invalidation_flow, |p| p.contains_key("invalidation_flow")),
            grant_types: oauth2.map_or(table.grant_types, |p| p.contains_key("grant_types")),
            scope_mapping_path: if has_path("/propertymappings/provider/scope/") {
                "propertymappings/provider/scope/"
            } else if has_path("/propertymappings/scope/") {
                "propertymappings/scope/"
            } else {
                table.scope_mapping_path
            },
            saml_mapping_path: if has_path("/propertymappings/provider/saml/") {
                "propertymappings/provider/saml/"
            } else if has_path("/propertymappings/saml/") {
                "propertymappings/saml/"
            } else {
                table.saml_mapping_path
            },
            saml_issuer_override: saml.map_or(table.saml_issuer_override, |p| p.contains_key("issuer_override")),
            saml_sign_switches: saml.map_or(table.saml_sign_switches, |p| p.contains_key("sign_assertion")),
        }
    }

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

    fn caps(v: &str) -> RequestShapes {
        RequestShapes::for_version(Version::parse(v).unwrap())
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

    /// The schema of every vendored release yields what the version table says, except where the
    /// table cannot know (the first builds of 2024.8 and 2024.10 are string-shaped either way).
    #[test]
    fn every_vendored_schema_agrees_with_the_table() {
        for file in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../sim/schemas")).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_none_or(|e| e != "gz") {
                continue;
            }
            let mut yaml = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()),
                &mut yaml,
            )
            .unwrap();
            let doc: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
            let schema: LiveSchema = serde_json::from_value(doc).unwrap();
            let version = schema.version().unwrap();
            assert!(version >= OLDEST_KNOWN && version <= NEWEST_KNOWN, "{}", path.display());
            assert_eq!(
                RequestShapes::from_schema(version, &schema),
                RequestShapes::for_version(version),
                "{}",
                path.display()
            );
        }
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
