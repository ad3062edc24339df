//! A fake of Keycloak's admin REST API for the `examples/keycloak` flow, following Keycloak's
//! documented behaviour (docs/service-flows.md §5):
//! - `POST /realms/master/protocol/openid-connect/token` with `grant_type=client_credentials`
//!   for a service-account client: `{access_token, expires_in, token_type}`; wrong credentials
//!   401 `{"error":"unauthorized_client"}`;
//! - every `/admin/...` request needs `Authorization: Bearer <live token>`, else 401;
//! - `GET /admin/realms/{realm}/clients?clientId=` an array (no secrets), `POST .../clients`
//!   201 with `Location: .../clients/{uuid}` (409 `Client <id> already exists` on a duplicate
//!   clientId), `GET|PUT .../clients/{uuid}` (PUT updates the fields sent, 204),
//!   `GET .../clients/{uuid}/client-secret` `{"type":"secret","value":...}`, `POST` regenerates;
//! - an unknown realm 404 `{"error":"Realm not found."}`, an unknown client 404
//!   `{"error":"Could not find client"}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rand::RngExt;
use serde_json::{Map, Value, json};

const TOKEN_PATH: &str = "/realms/master/protocol/openid-connect/token";
const TOKEN_LIFETIME_S: u64 = 60;

struct State {
    /// The service account that may call the admin API: (client id, secret).
    admin: (String, String),
    realms: BTreeMap<String, BTreeMap<String, Map<String, Value>>>,
    tokens: Vec<String>,
    requests: Vec<String>,
    token_requests: u64,
    writes: u64,
}

/// A running fake; dropping it stops the server.
pub struct KeycloakFake {
    server: crate::FakeServer,
    state: Arc<Mutex<State>>,
}

fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

fn error(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

impl KeycloakFake {
    /// Starts on a free loopback port with the given realms (empty), and a service-account client
    /// in realm `master` that may use the admin API.
    pub async fn start(realms: &[&str], admin_client: &str, admin_secret: &str) -> Result<Self, String> {
        let state = Arc::new(Mutex::new(State {
            admin: (admin_client.to_string(), admin_secret.to_string()),
            realms: realms.iter().map(|r| (r.to_string(), BTreeMap::new())).collect(),
            tokens: Vec::new(),
            requests: Vec::new(),
            token_requests: 0,
            writes: 0,
        }));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = shared.clone();
            async move { handle(&state, method, uri, headers, body) }
        });
        let server = crate::FakeServer::start(app).await?;
        Ok(Self { server, state })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The client with `client_id` in `realm`, as stored (secret included).
    pub fn client(&self, realm: &str, client_id: &str) -> Option<Map<String, Value>> {
        let s = self.state.lock().expect("keycloak");
        find(&s, realm, client_id).map(|(_, c)| c.clone())
    }

    /// Changes a client behind the flow's back (tests of drift).
    pub fn edit(&self, realm: &str, client_id: &str, field: &str, value: Value) {
        let mut s = self.state.lock().expect("keycloak");
        if let Some(id) = find(&s, realm, client_id).map(|(id, _)| id)
            && let Some(client) = s.realms.get_mut(realm).and_then(|r| r.get_mut(&id))
        {
            client.insert(field.to_string(), value);
        }
    }

    /// Invalidates every access token issued so far (as an expiry or a revocation would).
    pub fn revoke_tokens(&self) {
        self.state.lock().expect("keycloak").tokens.clear();
    }

    /// `METHOD path` of every request received.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("keycloak").requests.clone()
    }

    /// Token requests received.
    pub fn token_requests(&self) -> u64 {
        self.state.lock().expect("keycloak").token_requests
    }

    /// Successful creates, updates and secret regenerations.
    pub fn writes(&self) -> u64 {
        self.state.lock().expect("keycloak").writes
    }
}

fn find<'a>(s: &'a State, realm: &str, client_id: &str) -> Option<(String, &'a Map<String, Value>)> {
    s.realms
        .get(realm)?
        .iter()
        .find(|(_, c)| c.get("clientId").and_then(Value::as_str) == Some(client_id))
        .map(|(id, c)| (id.clone(), c))
}

/// A client as the admin API shows it: no secret (that has its own endpoint).
fn public(client: &Map<String, Value>) -> Value {
    let mut c = client.clone();
    c.remove("secret");
    Value::Object(c)
}

fn token(s: &mut State, body: &[u8]) -> Response {
    s.token_requests += 1;
    let form: BTreeMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") != "client_credentials" {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}),
        );
    }
    if (get("client_id"), get("client_secret")) != (s.admin.0.as_str(), s.admin.1.as_str()) {
        return error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"}),
        );
    }
    let access = random_token(40);
    s.tokens.push(access.clone());
    axum::Json(json!({
        "access_token": access,
        "expires_in": TOKEN_LIFETIME_S,
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "profile email",
    }))
    .into_response()
}

/// Keycloak's defaults for a new OIDC client, under what the request sets.
fn new_client(id: &str, rep: &Map<String, Value>) -> Map<String, Value> {
    let mut client = json!({
        "id": id,
        "protocol": "openid-connect",
        "enabled": true,
        "publicClient": false,
        "clientAuthenticatorType": "client-secret",
        "standardFlowEnabled": true,
        "implicitFlowEnabled": false,
        "directAccessGrantsEnabled": true,
        "serviceAccountsEnabled": false,
        "redirectUris": [],
        "webOrigins": [],
        "attributes": {},
    });
    let map = client.as_object_mut().expect("object");
    for (k, v) in rep {
        if k != "id" {
            map.insert(k.clone(), v.clone());
        }
    }
    if map.get("secret").and_then(Value::as_str).is_none_or(str::is_empty) {
        map.insert("secret".into(), json!(random_token(32)));
    }
    map.clone()
}

fn handle(state: &Mutex<State>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let mut s = state.lock().expect("keycloak");
    s.requests.push(format!("{method} {path}"));
    if path == TOKEN_PATH && method == Method::POST {
        return token(&mut s, &body);
    }
    let Some(rest) = path.strip_prefix("/admin/realms/") else {
        return error(
            StatusCode::NOT_FOUND,
            json!({"error": "Unable to find matching target resource method"}),
        );
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|t| s.tokens.iter().any(|k| k == t)) {
        return error(StatusCode::UNAUTHORIZED, json!({"error": "HTTP 401 Unauthorized"}));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let realm = parts[0].to_string();
    if !s.realms.contains_key(&realm) {
        return error(StatusCode::NOT_FOUND, json!({"error": "Realm not found."}));
    }
    let rep = || -> Option<Map<String, Value>> {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        }
    };
    let unreadable = || {
        error(
            StatusCode::BAD_REQUEST,
            json!({"error": "unknown_error", "error_description": "Unrecognized request body"}),
        )
    };
    match (method.as_str(), &parts[1..]) {
        ("GET", ["clients"]) => {
            let wanted = uri.query().and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "clientId")
                    .map(|(_, v)| v.into_owned())
            });
            let clients: Vec<Value> = s.realms[&realm]
                .values()
                .filter(|c| {
                    wanted
                        .as_deref()
                        .is_none_or(|w| c.get("clientId").and_then(Value::as_str) == Some(w))
                })
                .map(public)
                .collect();
            axum::Json(clients).into_response()
        }
        ("POST", ["clients"]) => {
            let Some(rep) = rep() else {
                return unreadable();
            };
            let Some(client_id) = rep.get("clientId").and_then(Value::as_str).map(str::to_string) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    json!({"errorMessage": "Client id is required"}),
                );
            };
            if find(&s, &realm, &client_id).is_some() {
                return error(
                    StatusCode::CONFLICT,
                    json!({"errorMessage": format!("Client {client_id} already exists")}),
                );
            }
            let id = uuid::Uuid::new_v4().to_string();
            let client = new_client(&id, &rep);
            s.realms.get_mut(&realm).expect("realm").insert(id.clone(), client);
            s.writes += 1;
            let location = format!("{}/{id}", uri.path());
            (StatusCode::CREATED, [(header::LOCATION, location)]).into_response()
        }
        (method, ["clients", id, rest @ ..]) => {
            let id = id.to_string();
            if !s.realms[&realm].contains_key(&id) {
                return error(StatusCode::NOT_FOUND, json!({"error": "Could not find client"}));
            }
            match (method, rest) {
                ("GET", []) => axum::Json(public(&s.realms[&realm][&id])).into_response(),
                ("PUT", []) => {
                    let Some(rep) = rep() else {
                        return unreadable();
                    };
                    let client = s.realms.get_mut(&realm).and_then(|r| r.get_mut(&id)).expect("client");
                    for (k, v) in rep {
                        if k != "id" {
                            client.insert(k, v);
                        }
                    }
                    s.writes += 1;
                    StatusCode::NO_CONTENT.into_response()
                }
                ("GET", ["client-secret"]) => {
                    let value = s.realms[&realm][&id].get("secret").cloned().unwrap_or(Value::Null);
                    axum::Json(json!({"type": "secret", "value": value})).into_response()
                }
                ("POST", ["client-secret"]) => {
                    let value = random_token(32);
                    let client = s.realms.get_mut(&realm).and_then(|r| r.get_mut(&id)).expect("client");
                    client.insert("secret".into(), json!(value));
                    s.writes += 1;
                    axum::Json(json!({"type": "secret", "value": value})).into_response()
                }
                _ => error(
                    StatusCode::NOT_FOUND,
                    json!({"error": "Unable to find matching target resource method"}),
                ),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            json!({"error": "Unable to find matching target resource method"}),
        ),
    }
}
