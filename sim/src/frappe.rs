//! A fake of the Frappe REST API for the `frappe` flow: the `Social Login Key` doctype over
//! `/api/resource/...`, `frappe.client.get_password`, and token authentication, following Frappe's
//! documented behaviour (docs/service-flows.md §4): the document name is the scrubbed
//! `provider_name`, Password fields never come back in clear from the resource API, validation
//! errors answer 417, a missing document 404, a duplicate 409, bad credentials 401.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

const DOCTYPE_PATH: &str = "/api/resource/Social Login Key";
const GET_PASSWORD: &str = "/api/method/frappe.client.get_password";

#[derive(Default)]
struct State {
    docs: BTreeMap<String, Map<String, Value>>,
    secrets: BTreeMap<String, String>,
    requests: Vec<String>,
}

/// A running fake; dropping it stops the server.
pub struct FrappeFake {
    server: crate::FakeServer,
    state: Arc<Mutex<State>>,
}

/// Frappe's `scrub`: lower case, spaces and dashes to underscores.
pub fn scrub(name: &str) -> String {
    name.trim().to_lowercase().replace([' ', '-'], "_")
}

fn error(status: u16, exc_type: &str, message: &str) -> Response {
    let body = json!({"exc_type": exc_type, "exception": format!("frappe.exceptions.{exc_type}: {message}"), "_server_messages": message});
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

impl FrappeFake {
    /// Starts on a free loopback port, accepting `Authorization: token <key>:<secret>`.
    pub async fn start(api_key: &str, api_secret: &str) -> Result<Self, String> {
        let state = Arc::new(Mutex::new(State::default()));
        let expected = format!("token {api_key}:{api_secret}");
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

    /// The stored document `name` (Password fields as stored).
    pub fn doc(&self, name: &str) -> Option<Map<String, Value>> {
        self.state.lock().expect("frappe").docs.get(name).cloned()
    }

    /// The stored client secret of `name`.
    pub fn secret(&self, name: &str) -> Option<String> {
        self.state.lock().expect("frappe").secrets.get(name).cloned()
    }

    /// Changes a stored document behind the flow's back (tests of drift).
    pub fn edit(&self, name: &str, field: &str, value: Value) {
        let mut s = self.state.lock().expect("frappe");
        if field == "client_secret" {
            s.secrets
                .insert(name.to_string(), value.as_str().unwrap_or("").to_string());
        } else if let Some(doc) = s.docs.get_mut(name) {
            doc.insert(field.to_string(), value);
        }
    }

    /// `METHOD path` of every request received.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("frappe").requests.clone()
    }
}

fn public(doc: &Map<String, Value>, name: &str) -> Value {
    let mut d = doc.clone();
    d.insert("name".into(), json!(name));
    d.insert("doctype".into(), json!("Social Login Key"));
    // Password fields come back masked from the resource API.
    d.insert("client_secret".into(), json!("*********"));
    json!({ "data": d })
}

fn handle(state: &Mutex<State>, expected: &str, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = percent_decode(uri.path());
    let mut s = state.lock().expect("frappe");
    s.requests.push(format!("{method} {path}"));
    if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(expected) {
        return error(401, "AuthenticationError", "Invalid API key or secret");
    }
    let parsed: Map<String, Value> = if body.is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            _ => return error(417, "ValidationError", "Request body is not a JSON object"),
        }
    };
    if path == GET_PASSWORD {
        let query: Vec<(String, String)> = uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let get = |k: &str| {
            query
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if get("doctype") != "Social Login Key" || get("fieldname") != "client_secret" {
            return error(
                417,
                "ValidationError",
                "only Social Login Key client_secret is simulated",
            );
        }
        return match s.secrets.get(&get("name")) {
            Some(secret) => axum::Json(json!({"message": secret})).into_response(),
            None => error(
                404,
                "DoesNotExistError",
                &format!("Social Login Key {} not found", get("name")),
            ),
        };
    }
    let Some(rest) = path.strip_prefix(DOCTYPE_PATH) else {
        return error(404, "DoesNotExistError", &format!("{path} not found"));
    };
    let name = rest.trim_start_matches('/').to_string();
    match (method.as_str(), name.is_empty()) {
        ("GET", false) => match s.docs.get(&name) {
            Some(doc) => axum::Json(public(doc, &name)).into_response(),
            None => error(404, "DoesNotExistError", &format!("Social Login Key {name} not found")),
        },
        ("POST", true) => {
            let Some(provider) = parsed.get("provider_name").and_then(Value::as_str) else {
                return error(417, "MandatoryError", "provider_name is mandatory");
            };
            let name = scrub(provider);
            if s.docs.contains_key(&name) {
                return error(
                    409,
                    "DuplicateEntryError",
                    &format!("Social Login Key {name} already exists"),
                );
            }
            let mut doc = Map::new();
            if let Err((status, kind, message)) = merge(&mut doc, &parsed, true) {
                return error(status, kind, &message);
            }
            if let Some(secret) = parsed.get("client_secret").and_then(Value::as_str) {
                s.secrets.insert(name.clone(), secret.to_string());
            }
            if let Err((status, kind, message)) = validate(&doc, s.secrets.contains_key(&name)) {
                return error(status, kind, &message);
            }
            let reply = public(&doc, &name);
            s.docs.insert(name, doc);
            axum::Json(reply).into_response()
        }
        ("PUT", false) => {
            let Some(mut doc) = s.docs.get(&name).cloned() else {
                return error(404, "DoesNotExistError", &format!("Social Login Key {name} not found"));
            };
            if let Err((status, kind, message)) = merge(&mut doc, &parsed, false) {
                return error(status, kind, &message);
            }
            let has_secret = s.secrets.contains_key(&name) || parsed.contains_key("client_secret");
            if let Err((status, kind, message)) = validate(&doc, has_secret) {
                return error(status, kind, &message);
            }
            if let Some(secret) = parsed.get("client_secret").and_then(Value::as_str) {
                s.secrets.insert(name.clone(), secret.to_string());
            }
            let reply = public(&doc, &name);
            s.docs.insert(name, doc);
            axum::Json(reply).into_response()
        }
        _ => error(405, "PermissionError", &format!("{method} {path} is not simulated")),
    }
}

/// Copies fields into the document; `provider_name` and `social_login_provider` are set only once.
/// A Frappe error: (status, exception type, message).
type FrappeError = (u16, &'static str, String);

fn merge(doc: &mut Map<String, Value>, fields: &Map<String, Value>, creating: bool) -> Result<(), FrappeError> {
    for (k, v) in fields {
        if k == "client_secret" || k == "name" || k == "doctype" {
            continue;
        }
        if !creating && matches!(k.as_str(), "provider_name" | "social_login_provider") && doc.get(k) != Some(v) {
            return Err((417, "ValidationError", format!("{k} cannot be changed once set")));
        }
        doc.insert(k.clone(), v.clone());
    }
    Ok(())
}

fn validate(doc: &Map<String, Value>, has_secret: bool) -> Result<(), FrappeError> {
    for field in ["authorize_url", "access_token_url", "redirect_url"] {
        if doc.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err((417, "MandatoryError", format!("{field} is mandatory")));
        }
    }
    let enabled = doc.get("enable_social_login").and_then(Value::as_i64) == Some(1);
    if enabled && (doc.get("client_id").and_then(Value::as_str).is_none_or(str::is_empty) || !has_secret) {
        return Err((
            417,
            "ValidationError",
            "Client ID and Client Secret are required to enable social login".into(),
        ));
    }
    Ok(())
}

fn percent_decode(path: &str) -> String {
    form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| path.to_string())
}
