//! A fake of Zammad's settings REST API for the `saml` flow's Zammad side, following
//! docs/service-flows.md §2 (zammad `config/routes/setting.rb`, `settings_controller.rb`):
//! `GET /api/v1/settings`, `GET|PUT /api/v1/settings/{id}` with `{"state_current": {"value": …}}`
//! (other fields in the body ignored), POST/DELETE refused, `Authorization: Token token=<token>`,
//! hash keys ending in `_key`, `token`, `secret` or `bind_pw` masked in answers, and the SAML
//! credentials' required attributes validated (`Saml::RequiredAttributes`).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// What Zammad shows instead of a secret hash value (the exact mask text is unconfirmed; what
/// matters to a client is that the value cannot be read back and resubmitted).
pub const MASK: &str = "*****";

struct Setting {
    id: u64,
    name: String,
    area: String,
    value: Value,
}

struct State {
    settings: Vec<Setting>,
    requests: Vec<String>,
}

/// A running fake; dropping it stops the server.
pub struct ZammadFake {
    server: crate::FakeServer,
    state: Arc<Mutex<State>>,
}

/// The settings of a fresh Zammad that the SAML integration touches (`db/seeds/settings.rb`),
/// plus one it does not.
fn seed() -> Vec<Setting> {
    let settings = [
        ("product_name", "System::Branding", json!("Zammad Helpdesk")),
        ("fqdn", "System::Base", json!("zammad.example.com")),
        ("http_type", "System::Base", json!("http")),
        ("auth_saml", "Security::ThirdPartyAuthentication", json!(false)),
        (
            "auth_saml_credentials",
            "Security::ThirdPartyAuthentication::SAML",
            json!({
                "display_name": "SAML",
                "idp_sso_target_url": "",
                "idp_slo_service_url": "",
                "idp_cert": "",
                "idp_cert_fingerprint": "",
                "name_identifier_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                "uid_attribute": "",
                "ssl_verify": true,
                "security": "off",
                "certificate": "",
                "private_key": "",
                "private_key_secret": "",
            }),
        ),
        (
            "auth_third_party_auto_link_at_inital_login",
            "Security::ThirdPartyAuthentication",
            json!(false),
        ),
    ];
    settings
        .into_iter()
        .enumerate()
        .map(|(i, (name, area, value))| Setting {
            id: i as u64 + 1,
            name: name.into(),
            area: area.into(),
            value,
        })
        .collect()
}

fn masked_key(key: &str) -> bool {
    key.ends_with("_key") || key.ends_with("token") || key.ends_with("secret") || key.ends_with("bind_pw")
}

fn render(s: &Setting) -> Value {
    let value = match &s.value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let shown = if masked_key(k) && v.as_str().is_some_and(|t| !t.is_empty()) {
                        json!(MASK)
                    } else {
                        v.clone()
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        other => other.clone(),
    };
    json!({
        "id": s.id,
        "name": s.name,
        "area": s.area,
        "frontend": false,
        "state_current": {"value": value},
        "updated_at": "2026-01-01T00:00:00.000Z",
    })
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message, "error_human": message}))).into_response()
}

impl ZammadFake {
    /// Starts on a free loopback port, accepting `Authorization: Token token=<token>`.
    pub async fn start(token: &str) -> Result<Self, String> {
        let state = Arc::new(Mutex::new(State {
            settings: seed(),
            requests: Vec::new(),
        }));
        let expected = format!("Token token={token}");
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = shared.clone();
            let expected = expected.clone();
            async move { handle(&state, &expected, method, uri, headers, body) }
        });
        Ok(Self {
            server: crate::FakeServer::start(app).await?,
            state,
        })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The stored value of setting `name` (unmasked).
    pub fn setting(&self, name: &str) -> Option<Value> {
        let s = self.state.lock().expect("zammad");
        s.settings.iter().find(|x| x.name == name).map(|x| x.value.clone())
    }

    /// Changes a setting behind the flow's back; `field` edits one key of a hash setting.
    pub fn edit(&self, name: &str, field: Option<&str>, value: Value) {
        let mut s = self.state.lock().expect("zammad");
        if let Some(setting) = s.settings.iter_mut().find(|x| x.name == name) {
            match (field, &mut setting.value) {
                (Some(f), Value::Object(map)) => {
                    map.insert(f.to_string(), value);
                }
                _ => setting.value = value,
            }
        }
    }

    /// `METHOD path` of every request received.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("zammad").requests.clone()
    }
}

/// `Saml::RequiredAttributes`: what ruby-saml cannot work without.
fn validate_saml(value: &Value) -> Result<(), String> {
    let map = value.as_object().ok_or("auth_saml_credentials must be a hash")?;
    for key in [
        "idp_sso_target_url",
        "idp_slo_service_url",
        "idp_cert",
        "name_identifier_format",
    ] {
        if map.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(format!(
                "One or more invalid SAML configuration attributes: {key} is required"
            ));
        }
    }
    let cert = map["idp_cert"].as_str().unwrap_or("");
    if !cert.trim_start().starts_with("-----BEGIN CERTIFICATE-----") {
        return Err("The IdP certificate is not a PEM certificate".into());
    }
    Ok(())
}

fn handle(state: &Mutex<State>, expected: &str, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = state.lock().expect("zammad");
    let path = uri.path().to_string();
    s.requests.push(format!("{method} {path}"));
    if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(expected) {
        return error(StatusCode::UNAUTHORIZED, "authentication failed");
    }
    let Some(rest) = path.strip_prefix("/api/v1/settings") else {
        return error(StatusCode::NOT_FOUND, "No route matches");
    };
    let id = rest.trim_start_matches('/');
    match (method.as_str(), id) {
        ("GET", "") => axum::Json(Value::Array(s.settings.iter().map(render).collect())).into_response(),
        ("POST", _) | ("DELETE", _) => error(StatusCode::FORBIDDEN, "Not authorized (admin permission required)!"),
        ("GET", id) => match s.settings.iter().find(|x| x.id.to_string() == id) {
            Some(setting) => axum::Json(render(setting)).into_response(),
            None => error(StatusCode::NOT_FOUND, "Couldn't find Setting"),
        },
        ("PUT", id) => {
            let parsed: Map<String, Value> = match serde_json::from_slice(&body) {
                Ok(Value::Object(m)) => m,
                _ => return error(StatusCode::UNPROCESSABLE_ENTITY, "Request body is not a JSON object"),
            };
            let Some(value) = parsed.get("state_current").and_then(|c| c.get("value")).cloned() else {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "state_current.value is required");
            };
            let Some(setting) = s.settings.iter_mut().find(|x| x.id.to_string() == id) else {
                return error(StatusCode::NOT_FOUND, "Couldn't find Setting");
            };
            if setting.name == "auth_saml_credentials"
                && let Err(message) = validate_saml(&value)
            {
                return error(StatusCode::UNPROCESSABLE_ENTITY, &message);
            }
            setting.value = value;
            axum::Json(render(setting)).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "No route matches"),
    }
}
