//! Authentik's real OpenAPI schemas (vendored in `sim/schemas/`, unchanged) and validation of
//! requests and responses against them.
//!
//! OpenAPI 3.0 schemas are close to JSON Schema draft 4; the conversion here only turns
//! `nullable: true` into an explicit null alternative and, because the simulator is meant to catch
//! a client that is not version-aware, closes every object with properties
//! (`additionalProperties: false`): a field the chosen version does not know is a violation, even
//! though real Authentik would silently drop it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

/// One vendored schema: the file stem (what `--version` accepts) and its gzipped bytes.
struct Vendored {
    stem: &'static str,
    gz: &'static [u8],
}

macro_rules! vendored {
    ($($stem:literal),* $(,)?) => {
        &[$(Vendored { stem: $stem, gz: include_bytes!(concat!("../schemas/", $stem, ".yml.gz")) }),*]
    };
}

const VENDORED: &[Vendored] = vendored![
    "2023.10",
    "2024.2",
    "2024.6",
    "2024.8",
    "2024.10",
    "2024.12",
    "2025.4",
    "2025.8.6",
    "2025.10.4",
    "2025.12.6",
    "2026.2.0",
    "2026.5.6",
    "2026.8.3",
];

/// The versions the simulator can play, by the name `--version` accepts.
pub fn known_versions() -> Vec<&'static str> {
    let mut versions: Vec<&'static str> = VENDORED.iter().map(|v| v.stem).collect();
    versions.sort_by_key(|v| order_key(v));
    versions
}

/// Fields where real Authentik sends something its own schema does not allow. Each entry is
/// (schema, property): the property is treated as nullable. Authentik reports no assigned
/// application as `null` (the schema marks these nullable only from the 2025.8.x patches on), and
/// an application without a provider has `provider_obj: null` (nullable in the schema from 2026.5).
const ERRATA_NULLABLE: &[(&str, &str)] = &[
    ("Application", "provider_obj"),
    // A binding names one of a policy, a group or a user; Authentik sends `null` for the other
    // two (`PolicyBindingSerializer`), which the schema marks nullable only from 2026.5.
    ("PolicyBinding", "policy_obj"),
    ("PolicyBinding", "group_obj"),
    ("PolicyBinding", "user_obj"),
    // The embedded outpost may have no service connection (nullable in later schemas, e.g. 2026.8).
    ("Outpost", "service_connection_obj"),
    ("OAuth2Provider", "assigned_application_slug"),
    ("OAuth2Provider", "assigned_application_name"),
    ("OAuth2Provider", "assigned_backchannel_application_slug"),
    ("OAuth2Provider", "assigned_backchannel_application_name"),
    ("Provider", "assigned_application_slug"),
    ("Provider", "assigned_application_name"),
    ("Provider", "assigned_backchannel_application_slug"),
    ("Provider", "assigned_backchannel_application_name"),
    ("SAMLProvider", "assigned_application_slug"),
    ("SAMLProvider", "assigned_application_name"),
    ("SAMLProvider", "assigned_backchannel_application_slug"),
    ("SAMLProvider", "assigned_backchannel_application_name"),
    ("ProxyProvider", "assigned_application_slug"),
    ("ProxyProvider", "assigned_application_name"),
    ("ProxyProvider", "assigned_backchannel_application_slug"),
    ("ProxyProvider", "assigned_backchannel_application_name"),
];

/// A parsed schema for one Authentik version.
pub struct ApiSchema {
    /// `info.version`, e.g. `2026.8.3`.
    pub version: String,
    doc: Value,
    /// Path templates relative to `/api/v3`, e.g. `/providers/oauth2/{id}/`.
    paths: Vec<PathTemplate>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    /// The vendored file, for serving the schema itself at `/api/v3/schema/`.
    gz: &'static [u8],
    served_json: OnceLock<String>,
}

struct PathTemplate {
    template: String,
    segments: Vec<Segment>,
}

enum Segment {
    Literal(String),
    Param,
}

/// The operation a request maps to.
#[derive(Clone, Debug)]
pub struct Operation {
    pub template: String,
    pub method: String,
    pub params: Vec<String>,
}

/// `YYYY.M.P` as a sortable tuple (missing parts are 0).
pub fn order_key(version: &str) -> (u32, u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

static CACHE: OnceLock<Mutex<HashMap<String, Arc<ApiSchema>>>> = OnceLock::new();

/// Loads (once per process) the schema for `version`, given as a vendored file stem
/// (`2024.2`, `2026.8.3`) or as the `info.version` inside it (`2024.2.0`).
pub fn load(version: &str) -> Result<Arc<ApiSchema>, String> {
    let vendored = VENDORED
        .iter()
        .find(|v| v.stem == version || format!("{}.0", v.stem) == version)
        .or_else(|| {
            // `2023.10.1`, `2025.4.4`: the info.version of a file whose stem has no patch.
            VENDORED
                .iter()
                .find(|v| version.starts_with(&format!("{}.", v.stem)) && v.stem.matches('.').count() == 1)
        })
        .ok_or_else(|| {
            format!(
                "no Authentik schema for version `{version}`; known: {}",
                known_versions().join(", ")
            )
        })?;
    let cache = CACHE.get_or_init(Default::default);
    if let Some(schema) = cache.lock().expect("schema cache").get(vendored.stem) {
        return Ok(schema.clone());
    }
    let schema = Arc::new(ApiSchema::parse(vendored.gz)?);
    cache
        .lock()
        .expect("schema cache")
        .insert(vendored.stem.to_string(), schema.clone());
    Ok(schema)
}

impl ApiSchema {
    fn parse(gz: &'static [u8]) -> Result<Self, String> {
        let mut yaml = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut yaml)
            .map_err(|e| format!("decompress schema: {e}"))?;
        let mut doc: Value = serde_yaml::from_str(&yaml).map_err(|e| format!("parse schema: {e}"))?;
        apply_errata(&mut doc);
        let version = doc["info"]["version"]
            .as_str()
            .ok_or("schema has no info.version")?
            .to_string();
        let mut paths: Vec<PathTemplate> = doc["paths"]
            .as_object()
            .ok_or("schema has no paths")?
            .keys()
            .map(|t| PathTemplate::new(t))
            .collect();
        // Literal segments win over parameters (`/providers/oauth2/` vs `/{id}/`), as in Django's router.
        paths.sort_by_key(|p| p.segments.iter().filter(|s| matches!(s, Segment::Param)).count());
        Ok(Self {
            version,
            doc,
            paths,
            validators: Mutex::new(HashMap::new()),
            gz,
            served_json: OnceLock::new(),
        })
    }

    /// The schema as the server serves it (`GET /api/v3/schema/`): the vendored YAML unchanged
    /// (errata are the simulator's business, not the server's), or as JSON for `format=json`.
    pub fn served(&self, json: bool) -> String {
        let mut yaml = String::new();
        if flate2::read::GzDecoder::new(self.gz).read_to_string(&mut yaml).is_err() {
            return String::new();
        }
        if !json {
            return yaml;
        }
        self.served_json
            .get_or_init(|| {
                serde_yaml::from_str::<Value>(&yaml)
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            })
            .clone()
    }

    /// Does this version have the component schema `name` (e.g. `RedirectURIRequest`)?
    pub fn has_schema(&self, name: &str) -> bool {
        self.doc["components"]["schemas"].get(name).is_some()
    }

    /// The properties of component schema `name`, if it exists.
    pub fn properties(&self, name: &str) -> Option<&Map<String, Value>> {
        self.doc["components"]["schemas"][name]["properties"].as_object()
    }

    /// Maps a path relative to `/api/v3` (e.g. `/providers/oauth2/3/`) to its template.
    /// `Err(templates)` when the path exists with other methods only.
    pub fn route(&self, method: &str, path: &str) -> Result<Operation, RouteError> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        for template in &self.paths {
            let Some(params) = template.matches(&parts) else {
                continue;
            };
            let op = &self.doc["paths"][&template.template][method.to_ascii_lowercase()];
            if op.is_null() {
                return Err(RouteError::MethodNotAllowed);
            }
            return Ok(Operation {
                template: template.template.clone(),
                method: method.to_ascii_uppercase(),
                params,
            });
        }
        Err(RouteError::NotFound)
    }

    fn operation(&self, op: &Operation) -> &Value {
        &self.doc["paths"][&op.template][op.method.to_ascii_lowercase()]
    }

    /// Query parameters the operation declares.
    pub fn query_params(&self, op: &Operation) -> Vec<String> {
        self.operation(op)["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| self.resolve(p, "parameters"))
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Follows `$ref: '#/components/<section>/X'` (shared parameters and responses).
    fn resolve<'a>(&'a self, v: &'a Value, section: &str) -> &'a Value {
        let prefix = format!("#/components/{section}/");
        match v
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(&prefix))
        {
            Some(name) => &self.doc["components"][section][name],
            None => v,
        }
    }

    /// Whether the operation allows anonymous access (`security` lists an empty requirement).
    pub fn allows_anonymous(&self, op: &Operation) -> bool {
        self.operation(op)["security"]
            .as_array()
            .is_some_and(|reqs| reqs.iter().any(|r| r.as_object().is_some_and(|m| m.is_empty())))
    }

    /// Validates a JSON request body against the operation's request schema.
    pub fn validate_request(&self, op: &Operation, body: &Value) -> Result<(), Vec<Violation>> {
        let schema = &self.operation(op)["requestBody"]["content"]["application/json"]["schema"];
        if schema.is_null() {
            return Ok(());
        }
        let key = format!("req {} {}", op.method, op.template);
        self.validate(&key, schema, body)
    }

    /// Validates `instance` against component schema `name` (e.g. `OAuth2ProviderRequest`).
    pub fn validate_component(&self, name: &str, instance: &Value) -> Result<(), Vec<Violation>> {
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        self.validate(&format!("component {name}"), &schema, instance)
    }

    /// Validates a JSON response body against the operation's schema for `status`.
    /// A status the operation does not document is itself a violation.
    pub fn validate_response(&self, op: &Operation, status: u16, body: Option<&Value>) -> Result<(), Vec<Violation>> {
        let response = self.resolve(&self.operation(op)["responses"][status.to_string()], "responses");
        if matches!(status, 404 | 405) && response["content"].is_null() {
            // Erratum: Authentik answers 404 (unknown id/slug) and 405 on any route with its
            // `GenericError` body, but its schema documents only 400 and 403, or (2023.10's
            // `check_access`) a 404 without a body.
            let schema = json!({"$ref": "#/components/schemas/GenericError"});
            let key = "resp GenericError".to_string();
            return match body {
                Some(body) => self.validate(&key, &schema, body),
                None => Err(vec![Violation {
                    path: String::new(),
                    field: String::new(),
                    message: format!("status {status} needs a GenericError body"),
                }]),
            };
        }
        if response.is_null() {
            return Err(vec![Violation {
                path: String::new(),
                field: String::new(),
                message: format!("status {status} is not a documented response"),
            }]);
        }
        let schema = &response["content"]["application/json"]["schema"];
        match (schema.is_null(), body) {
            (true, None) => Ok(()),
            (true, Some(_)) => Err(vec![Violation {
                path: String::new(),
                field: String::new(),
                message: format!("status {status} has no body in the schema, but one was sent"),
            }]),
            (false, None) => Err(vec![Violation {
                path: String::new(),
                field: String::new(),
                message: format!("status {status} needs a JSON body"),
            }]),
            (false, Some(body)) => {
                let key = format!("resp {} {} {status}", op.method, op.template);
                self.validate(&key, schema, body)
            }
        }
    }

    fn validate(&self, key: &str, schema: &Value, instance: &Value) -> Result<(), Vec<Violation>> {
        let validator = self.validator(key, schema);
        let errors: Vec<Violation> = validator
            .iter_errors(instance)
            .map(|e| {
                let path = e.instance_path().to_string();
                let top = path.trim_start_matches('/').split('/').next().unwrap_or("");
                let (field, message) = match e.kind() {
                    jsonschema::error::ValidationErrorKind::Required { property } if top.is_empty() => (
                        property.as_str().unwrap_or("").to_string(),
                        "This field is required.".to_string(),
                    ),
                    jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } if top.is_empty() => {
                        let names = unexpected.join(", ");
                        (
                            unexpected.first().cloned().unwrap_or_default(),
                            format!("not a field of this Authentik version: {names}"),
                        )
                    }
                    _ => (top.to_string(), e.to_string()),
                };
                Violation { path, field, message }
            })
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn validator(&self, key: &str, schema: &Value) -> Arc<jsonschema::Validator> {
        if let Some(v) = self.validators.lock().expect("validators").get(key) {
            return v.clone();
        }
        let mut names = Vec::new();
        collect_refs(schema, &mut names);
        let mut closure = Map::new();
        while let Some(name) = names.pop() {
            if closure.contains_key(&name) {
                continue;
            }
            let component = &self.doc["components"]["schemas"][&name];
            collect_refs(component, &mut names);
            closure.insert(name, convert(component));
        }
        let root = json!({
            "allOf": [convert(schema)],
            "components": { "schemas": closure },
        });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            // Authentik's `email` fields are Django `EmailField(blank=True)`: a user without an
            // address is answered `""`, which the schema's `format: email` alone would refuse.
            .with_format("email", |s: &str| s.is_empty() || valid_email(s))
            .build(&root)
            .unwrap_or_else(|e| panic!("schema for {key} does not compile: {e}"));
        let validator = Arc::new(validator);
        self.validators
            .lock()
            .expect("validators")
            .insert(key.to_string(), validator.clone());
        validator
    }
}

/// Why a request has no operation.
#[derive(Debug, PartialEq)]
pub enum RouteError {
    NotFound,
    MethodNotAllowed,
}

/// One schema violation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Violation {
    /// JSON pointer into the instance.
    pub path: String,
    /// The top-level field concerned (empty for the whole body), as DRF reports field errors.
    pub field: String,
    pub message: String,
}

impl PathTemplate {
    fn new(template: &str) -> Self {
        let segments = template
            .trim_matches('/')
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    Segment::Param
                } else {
                    Segment::Literal(s.to_string())
                }
            })
            .collect();
        Self {
            template: template.to_string(),
            segments,
        }
    }

    fn matches(&self, parts: &[&str]) -> Option<Vec<String>> {
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param if part.is_empty() => return None,
                Segment::Param => params.push(part.to_string()),
            }
        }
        Some(params)
    }
}

fn apply_errata(doc: &mut Value) {
    for (schema, prop) in ERRATA_NULLABLE {
        if let Some(p) = doc["components"]["schemas"][*schema]["properties"].get_mut(*prop) {
            p["nullable"] = Value::Bool(true);
        }
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str)
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                out.push(name.to_string());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// OpenAPI 3.0 schema object → JSON Schema draft 4 (see the module docs).
fn convert(v: &Value) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, val) in m {
        match k.as_str() {
            "nullable" | "readOnly" | "writeOnly" | "example" | "deprecated" | "discriminator" | "xml"
            | "externalDocs" | "description" | "title" => {}
            "properties" => {
                let props = val
                    .as_object()
                    .map(|ps| ps.iter().map(|(n, p)| (n.clone(), convert(p))).collect())
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "not" => {
                out.insert(k.clone(), convert(val));
            }
            "additionalProperties" if val.is_object() => {
                out.insert(k.clone(), convert(val));
            }
            "allOf" | "oneOf" | "anyOf" => {
                let list = val
                    .as_array()
                    .map(|a| a.iter().map(convert).collect())
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Array(list));
            }
            _ => {
                out.insert(k.clone(), val.clone());
            }
        }
    }
    if out.contains_key("properties") && !out.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    if m.get("nullable") == Some(&Value::Bool(true)) {
        return json!({ "anyOf": [Value::Object(out), { "type": "null" }] });
    }
    Value::Object(out)
}

/// An address as the `email` format checks it: one `@` between a non-empty local part and a
/// domain with a dot (or `localhost`), no whitespace (Django's `EmailValidator`, loosely).
fn valid_email(s: &str) -> bool {
    match s.split_once('@') {
        // `localhost` is on Django's domain allowlist (`root@localhost` is akadmin's address).
        Some((local, domain)) => {
            !local.is_empty()
                && (domain.contains('.') || domain == "localhost")
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_prefer_literal_segments() {
        let s = load("2026.8.3").unwrap();
        let op = s.route("GET", "/providers/oauth2/").unwrap();
        assert_eq!(op.template, "/providers/oauth2/");
        let op = s.route("PATCH", "/providers/oauth2/12/").unwrap();
        assert_eq!(op.template, "/providers/oauth2/{id}/");
        assert_eq!(op.params, vec!["12"]);
        assert_eq!(
            s.route("GET", "/propertymappings/scope/").unwrap_err(),
            RouteError::NotFound,
            "the pre-2024.8 scope-mapping path is gone in 2026.8"
        );
        assert!(load("2024.2").unwrap().route("GET", "/propertymappings/scope/").is_ok());
    }

    #[test]
    fn request_shapes_differ_by_version() {
        let old = load("2024.2").unwrap();
        let new = load("2026.8.3").unwrap();
        let create_old = old.route("POST", "/providers/oauth2/").unwrap();
        let create_new = new.route("POST", "/providers/oauth2/").unwrap();
        let flow = "00000000-0000-4000-8000-000000000001";
        let string_uris = json!({"name": "g", "authorization_flow": flow, "redirect_uris": "https://g/cb"});
        assert!(old.validate_request(&create_old, &string_uris).is_ok());
        let errs = new.validate_request(&create_new, &string_uris).unwrap_err();
        let text = format!("{errs:?}");
        assert!(text.contains("invalidation_flow"), "{text}");
        // A field 2024.2 does not know is a violation, not silently accepted.
        let with_grants = json!({"name": "g", "authorization_flow": flow, "grant_types": ["authorization_code"]});
        assert!(old.validate_request(&create_old, &with_grants).is_err());
    }

    #[test]
    fn unknown_versions_are_named() {
        let err = load("2019.1").err().unwrap();
        assert!(err.contains("2019.1") && err.contains("2026.8.3"), "{err}");
        assert_eq!(load("2024.2.0").unwrap().version, "2024.2.0");
        assert_eq!(load("2023.10.1").unwrap().version, "2023.10.1");
    }
}
