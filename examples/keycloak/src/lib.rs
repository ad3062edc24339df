//! `sso.type: keycloak` — registers the service as a confidential OpenID Connect client in a
//! Keycloak realm through Keycloak's admin REST API, and writes the client id, secret and issuer
//! to the service's `.env` keys.
//!
//! Everything goes through `idp-http`, which the operator grants this type in `sso-grants.yaml`
//! (origin, the realm's admin paths, and a client-credentials service account). The flow never
//! sees that account's secret, nor the client secret it registers: the secret is captured from
//! Keycloak's answer by the host and handed to `.env` as an opaque handle.
//!
//! Manifest settings (`sso:` block):
//! - `realm` (required): the realm the client lives in;
//! - `client_id` (default: the service slug);
//! - `env` (optional): `.env` key → template, with the placeholders `{client_id}`, `{issuer}`,
//!   `{discovery_url}`, `{authorize_url}`, `{token_url}`, `{userinfo_url}`, `{jwks_url}`,
//!   `{end_session_url}`, `{public_url}`, `{keycloak_url}`, `{realm}`, `{slug}`, and
//!   `{client_secret}` as a whole value. Default: `<PREFIX>OIDC_CLIENT_ID`,
//!   `<PREFIX>OIDC_CLIENT_SECRET`, `<PREFIX>OIDC_ISSUER`.
//!
//! In check mode each difference is a finding (`client-missing`, `client-drift`); the host
//! compares the secret with `.env` itself (`client-secret-mismatch`).

use serde_json::{Map, Value, json};
use ssoctl_flow_sdk::http;
use ssoctl_flow_sdk::sso::flow::authentik::Secret;
use ssoctl_flow_sdk::sso::flow::idp_http;
use ssoctl_flow_sdk::sso::flow::service_config;
use ssoctl_flow_sdk::template::{self, SECRET_PLACEHOLDER};
use ssoctl_flow_sdk::{Finding, FlowError, FlowInfo, Guest, MatchMode, Mode, Outcome, Service, Settings};

struct Keycloak;

/// One answer from Keycloak: status, parsed body (`null` when empty), captured secret.
struct Answer {
    status: u16,
    body: Value,
    captured: Option<Secret>,
}

fn send(method: &str, path: &str, body: Option<&Value>, capture: Option<&str>) -> Result<Answer, FlowError> {
    let capture: Vec<&str> = capture.into_iter().collect();
    let answer = http::idp(&http::Request {
        body,
        capture: &capture,
        ..http::Request::new(method, path)
    })?;
    Ok(Answer {
        status: answer.status,
        body: answer.body,
        captured: answer.captured.into_iter().next().flatten(),
    })
}

/// An answer outside 2xx as an error naming the request; Keycloak's error text is kept (it never
/// holds a secret, and the host scrubs any it knows).
fn expect_ok(answer: Answer, what: &str) -> Result<Answer, FlowError> {
    if (200..300).contains(&answer.status) {
        return Ok(answer);
    }
    let detail = ["errorMessage", "error_description", "error"]
        .iter()
        .find_map(|k| answer.body.get(k).and_then(Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| answer.body.to_string());
    let hint = match answer.status {
        401 => " (the service account's token was refused)",
        403 => " (the service account lacks manage-clients in this realm)",
        _ => "",
    };
    Err(FlowError::Upstream(format!(
        "Keycloak answered {} to {what}: {detail}{hint}",
        answer.status
    )))
}

/// The client as this flow wants it. Keycloak matches redirect URIs exactly, with at most a
/// trailing `*`; it has no regular expressions.
fn desired(service: &Service, client_id: &str) -> Result<Map<String, Value>, FlowError> {
    let mut redirects = Vec::new();
    for uri in &service.redirect_uris {
        if uri.matching == MatchMode::Regex {
            return Err(FlowError::Unsupported(format!(
                "Keycloak has no regular-expression redirect URIs (`{}`); use redirect_path, or a URI ending in `*`",
                uri.url
            )));
        }
        redirects.push(json!(uri.url));
    }
    if redirects.is_empty() {
        return Err(FlowError::Invalid(
            "no redirect URI: set sso.redirect_path in the manifest".to_string(),
        ));
    }
    let client = json!({
        "clientId": client_id,
        "name": service.display_name,
        "protocol": "openid-connect",
        "enabled": true,
        "publicClient": false,
        "clientAuthenticatorType": "client-secret",
        "standardFlowEnabled": true,
        "directAccessGrantsEnabled": false,
        "serviceAccountsEnabled": false,
        "redirectUris": redirects,
        "webOrigins": ["+"],
        "rootUrl": service.public_url,
        "attributes": {
            "pkce.code.challenge.method": "S256",
            "post.logout.redirect.uris": "+",
        },
    });
    Ok(client.as_object().cloned().unwrap_or_default())
}

/// The fields of `current` that differ from `want`: lists compared as sets, `attributes` key by key.
fn differences(current: &Map<String, Value>, want: &Map<String, Value>) -> Vec<String> {
    let mut differ = Vec::new();
    for (field, wanted) in want {
        let have = current.get(field).unwrap_or(&Value::Null);
        let same = match (field.as_str(), wanted, have) {
            ("attributes", Value::Object(w), Value::Object(h)) => w.iter().all(|(k, v)| h.get(k) == Some(v)),
            (_, Value::Array(w), Value::Array(h)) => w.len() == h.len() && w.iter().all(|x| h.contains(x)),
            _ => wanted == have,
        };
        if !same {
            differ.push(field.clone());
        }
    }
    differ
}

/// The client's current representation, if it exists (`GET .../clients?clientId=`).
fn find_client(clients_path: &str, client_id: &str) -> Result<Option<Map<String, Value>>, FlowError> {
    let path = format!("{clients_path}?clientId={}", encode(client_id));
    let answer = expect_ok(send("GET", &path, None, None)?, &format!("GET {path}"))?;
    Ok(answer
        .body
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|c| c.get("clientId").and_then(Value::as_str) == Some(client_id))
        })
        .and_then(Value::as_object)
        .cloned())
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Guest for Keycloak {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: "keycloak".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "confidential OIDC client in a Keycloak realm (admin REST API)".to_string(),
        }
    }

    fn run(service: Service, mode: Mode) -> Result<Outcome, FlowError> {
        ssoctl_flow_sdk::install_panic_hook();
        let settings = Settings::new(&service.settings);
        let realm = settings
            .get("realm")
            .ok_or_else(|| FlowError::Invalid("sso.realm names the Keycloak realm of the client".to_string()))?;
        let client_id = settings.get("client_id").unwrap_or(&service.slug).to_string();
        let keycloak = idp_http::origin();
        let clients_path = format!("/admin/realms/{}/clients", encode(realm));
        let want = desired(&service, &client_id)?;
        let mut findings = Vec::new();

        let existing = find_client(&clients_path, &client_id)?;
        let (current, created) = match existing {
            Some(current) => (Some(current), false),
            None if mode == Mode::Check => {
                findings.push(Finding {
                    kind: "client-missing".to_string(),
                    message: format!("no client `{client_id}` in realm `{realm}` of {keycloak}"),
                });
                return Ok(Outcome {
                    summary: "Keycloak client missing".to_string(),
                    findings,
                });
            }
            None => {
                // Plan mode records the POST and gets 204; apply mode gets 201 and the client.
                let body = Value::Object(want.clone());
                expect_ok(
                    send("POST", &clients_path, Some(&body), None)?,
                    &format!("POST {clients_path}"),
                )?;
                (find_client(&clients_path, &client_id)?, true)
            }
        };

        if let Some(current) = &current {
            let differ = differences(current, &want);
            if !differ.is_empty() && !created {
                if mode == Mode::Check {
                    findings.push(Finding {
                        kind: "client-drift".to_string(),
                        message: format!("client `{client_id}` in realm `{realm}` differs: {}", differ.join(", ")),
                    });
                } else {
                    let id = current.get("id").and_then(Value::as_str).unwrap_or_default();
                    let mut merged = current.clone();
                    for (field, value) in &want {
                        if field == "attributes" {
                            let mut attributes = current
                                .get("attributes")
                                .and_then(Value::as_object)
                                .cloned()
                                .unwrap_or_default();
                            if let Some(wanted) = value.as_object() {
                                attributes.extend(wanted.clone());
                            }
                            merged.insert(field.clone(), Value::Object(attributes));
                        } else {
                            merged.insert(field.clone(), value.clone());
                        }
                    }
                    let path = format!("{clients_path}/{id}");
                    expect_ok(
                        send("PUT", &path, Some(&Value::Object(merged)), None)?,
                        &format!("PUT {path}"),
                    )?;
                    if mode == Mode::Apply {
                        ssoctl_flow_sdk::event(&format!(
                            "updated Keycloak client `{client_id}` ({})",
                            differ.join(", ")
                        ));
                    }
                }
            }
        }

        // The secret: captured by the host from Keycloak's answer, never seen here.
        let secret = match current.as_ref().and_then(|c| c.get("id")).and_then(Value::as_str) {
            Some(id) => {
                let path = format!("{clients_path}/{id}/client-secret");
                let answer = expect_ok(send("GET", &path, None, Some("/value"))?, &format!("GET {path}"))?;
                Some(answer.captured.ok_or_else(|| {
                    FlowError::Upstream(format!("Keycloak returned no secret for client `{client_id}`"))
                })?)
            }
            // Plan mode before the client exists: nothing to read yet.
            None => None,
        };

        let issuer = format!("{keycloak}/realms/{realm}");
        let endpoint = |p: &str| format!("{issuer}/protocol/openid-connect/{p}");
        let values = [
            ("client_id", client_id.clone()),
            ("issuer", issuer.clone()),
            ("discovery_url", format!("{issuer}/.well-known/openid-configuration")),
            ("authorize_url", endpoint("auth")),
            ("token_url", endpoint("token")),
            ("userinfo_url", endpoint("userinfo")),
            ("jwks_url", endpoint("certs")),
            ("end_session_url", endpoint("logout")),
            ("public_url", service.public_url.clone()),
            ("keycloak_url", keycloak.clone()),
            ("realm", realm.to_string()),
            ("slug", service.slug.clone()),
        ];
        let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let defaults = [
            ("OIDC_CLIENT_ID", "{client_id}"),
            ("OIDC_CLIENT_SECRET", SECRET_PLACEHOLDER),
            ("OIDC_ISSUER", "{issuer}"),
        ];
        let entries: Vec<(String, &str)> = match settings.map("env") {
            Some(map) => map.into_iter().map(|(k, t)| (k.to_string(), t)).collect(),
            None => defaults
                .iter()
                .map(|(suffix, t)| (format!("{}{suffix}", service.env_prefix), *t))
                .collect(),
        };
        for (key, tpl) in entries {
            if tpl == SECRET_PLACEHOLDER {
                if let Some(secret) = &secret {
                    service_config::set_env_secret(&key, secret)?;
                }
            } else {
                service_config::set_env(&key, &template::expand(&key, tpl, &values)?)?;
            }
        }
        if created && mode == Mode::Apply {
            ssoctl_flow_sdk::event(&format!("registered Keycloak client `{client_id}` in {issuer}"));
        }
        let summary = if findings.is_empty() {
            "Keycloak client present, redirects match"
        } else {
            "Keycloak client differs"
        };
        Ok(Outcome {
            summary: summary.to_string(),
            findings,
        })
    }
}

ssoctl_flow_sdk::flow!(Keycloak);
