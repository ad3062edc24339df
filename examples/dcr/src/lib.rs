//! `sso.type: dcr` — registers the service with any OpenID provider that supports dynamic client
//! registration (RFC 7591), and keeps the registration in line through client management
//! (RFC 7592).
//!
//! The provider is the origin the operator grants this type (`idp-http`); its discovery document
//! names the registration endpoint. An initial access token, if the provider wants one, is a
//! `bearer-env` credential of the grant, injected by the host. The flow never sees the client
//! secret nor the registration access token: the host captures both from the provider's answer
//! and stores them in `.env` as handles.
//!
//! `.env` keys (`<PREFIX>` is the service's prefix):
//! - `<PREFIX>OIDC_CLIENT_ID`, `<PREFIX>OIDC_CLIENT_SECRET`, `<PREFIX>OIDC_ISSUER` — what the
//!   service reads (the manifest's `sso.env` map can name other keys, with the placeholders
//!   `{client_id}`, `{issuer}`, `{client_secret}`);
//! - `<PREFIX>OIDC_REGISTRATION_URI`, `<PREFIX>OIDC_REGISTRATION_TOKEN` — the RFC 7592
//!   management endpoint of the registered client and its access token.
//!
//! Manifest settings: `client_name` (default: the display name), `scope` (optional).
//! In check mode: `client-missing` (never registered, or the registration is gone) and
//! `client-drift` (redirect URIs or other metadata differ); the host compares the secret.

use serde_json::{Map, Value, json};
use ssoctl_flow_sdk::http;
use ssoctl_flow_sdk::sso::flow::authentik::Secret;
use ssoctl_flow_sdk::sso::flow::idp_http;
use ssoctl_flow_sdk::sso::flow::service_config;
use ssoctl_flow_sdk::template::{self, SECRET_PLACEHOLDER};
use ssoctl_flow_sdk::{Finding, FlowError, FlowInfo, Guest, MatchMode, Mode, Outcome, Service, Settings};

struct Dcr;

/// The credentials in a registration answer, in the order the host captures them.
const CAPTURE: [&str; 2] = ["/client_secret", "/registration_access_token"];

struct Answer {
    status: u16,
    body: Value,
    /// Client secret and registration access token, when the answer holds them.
    secret: Option<Secret>,
    registration_token: Option<Secret>,
}

fn send(method: &str, url: &str, body: Option<&Value>, bearer: Option<&Secret>) -> Result<Answer, FlowError> {
    let response = http::idp(&http::Request {
        body,
        bearer,
        capture: &CAPTURE,
        ..http::Request::new(method, url)
    })?;
    let mut captured = response.captured.into_iter();
    Ok(Answer {
        status: response.status,
        body: response.body,
        secret: captured.next().flatten(),
        registration_token: captured.next().flatten(),
    })
}

fn upstream(answer: &Answer, what: &str) -> FlowError {
    let detail = ["error_description", "error"]
        .iter()
        .find_map(|k| answer.body.get(k).and_then(Value::as_str))
        .unwrap_or("");
    FlowError::Upstream(format!("the provider answered {} to {what} {detail}", answer.status))
}

/// The client metadata this service needs (RFC 7591 §2).
fn desired(service: &Service, settings: &Settings) -> Result<Map<String, Value>, FlowError> {
    let mut redirects = Vec::new();
    for uri in &service.redirect_uris {
        if uri.matching == MatchMode::Regex {
            return Err(FlowError::Unsupported(format!(
                "dynamic client registration has no regular-expression redirect URIs (`{}`)",
                uri.url
            )));
        }
        redirects.push(json!(uri.url));
    }
    if redirects.is_empty() {
        return Err(FlowError::Invalid(
            "no redirect URI: set sso.redirect_path in the manifest".into(),
        ));
    }
    let mut metadata = json!({
        "client_name": settings.get("client_name").unwrap_or(&service.display_name),
        "redirect_uris": redirects,
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "application_type": "web",
    });
    if let Some(scope) = settings.get("scope") {
        metadata["scope"] = json!(scope);
    }
    Ok(metadata.as_object().cloned().unwrap_or_default())
}

/// The metadata fields that differ (lists compared as sets).
fn differences(current: &Value, want: &Map<String, Value>) -> Vec<String> {
    want.iter()
        .filter(|(field, wanted)| {
            let have = current.get(field.as_str()).unwrap_or(&Value::Null);
            match (wanted, have) {
                (Value::Array(w), Value::Array(h)) => !(w.len() == h.len() && w.iter().all(|x| h.contains(x))),
                _ => *wanted != have,
            }
        })
        .map(|(field, _)| field.clone())
        .collect()
}

/// What the flow ends up knowing about its registration.
struct Registration {
    client_id: Option<String>,
    secret: Option<Secret>,
    management: Option<(String, Option<Secret>)>,
}

impl Guest for Dcr {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: "dcr".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "OIDC client registered through RFC 7591 dynamic client registration".to_string(),
        }
    }

    fn run(service: Service, mode: Mode) -> Result<Outcome, FlowError> {
        ssoctl_flow_sdk::install_panic_hook();
        let settings = Settings::new(&service.settings);
        let want = desired(&service, &settings)?;
        let prefix = &service.env_prefix;
        let (id_key, uri_key, token_key) = (
            format!("{prefix}OIDC_CLIENT_ID"),
            format!("{prefix}OIDC_REGISTRATION_URI"),
            format!("{prefix}OIDC_REGISTRATION_TOKEN"),
        );
        let mut findings = Vec::new();

        let discovery = send("GET", "/.well-known/openid-configuration", None, None)?;
        if discovery.status != 200 {
            return Err(upstream(&discovery, "GET /.well-known/openid-configuration"));
        }
        let issuer = discovery.body["issuer"].as_str().unwrap_or_default().to_string();
        let endpoint = discovery.body["registration_endpoint"]
            .as_str()
            .ok_or_else(|| {
                FlowError::Unsupported(format!(
                    "{} does not advertise a registration_endpoint (dynamic client registration is off)",
                    idp_http::origin()
                ))
            })?
            .to_string();

        // The registration made earlier, read back through its management endpoint.
        let known_uri = service_config::get_env(&uri_key)?;
        let known_token = service_config::env_secret(&token_key)?;
        let mut registration = None;
        if let (Some(uri), Some(token)) = (&known_uri, &known_token) {
            let read = send("GET", uri, None, Some(token))?;
            match read.status {
                200 => {
                    let differ = differences(&read.body, &want);
                    let client_id = read.body["client_id"].as_str().map(str::to_string);
                    if differ.is_empty() {
                        registration = Some(Registration {
                            client_id,
                            secret: read.secret,
                            management: Some((uri.clone(), read.registration_token)),
                        });
                    } else if mode == Mode::Check {
                        findings.push(Finding {
                            kind: "client-drift".into(),
                            message: format!("the registered client differs: {}", differ.join(", ")),
                        });
                        registration = Some(Registration {
                            client_id,
                            secret: read.secret,
                            management: None,
                        });
                    } else {
                        // RFC 7592 §2.2: the update carries the whole metadata and the client id.
                        let mut update = want.clone();
                        update.insert("client_id".into(), json!(client_id));
                        let updated = send("PUT", uri, Some(&Value::Object(update)), Some(token))?;
                        if mode == Mode::Apply {
                            if updated.status != 200 {
                                return Err(upstream(&updated, "the update of the registration"));
                            }
                            ssoctl_flow_sdk::event(&format!("updated the registration ({})", differ.join(", ")));
                        }
                        registration = Some(Registration {
                            client_id,
                            secret: updated.secret.or(read.secret),
                            management: Some((uri.clone(), updated.registration_token)),
                        });
                    }
                }
                // The client was deleted, or its registration token revoked: register anew.
                401 | 403 | 404 if mode == Mode::Check => {
                    findings.push(Finding {
                        kind: "client-missing".into(),
                        message: format!(
                            "the registration at {uri} is gone (the provider answered {})",
                            read.status
                        ),
                    });
                    return Ok(Outcome {
                        summary: "client not registered".into(),
                        findings,
                    });
                }
                401 | 403 | 404 => {}
                _ => return Err(upstream(&read, "the read of the registration")),
            }
        } else if mode == Mode::Check {
            findings.push(Finding {
                kind: "client-missing".into(),
                message: format!("not registered with {issuer}"),
            });
            return Ok(Outcome {
                summary: "client not registered".into(),
                findings,
            });
        }

        let registration = match registration {
            Some(r) => r,
            None => {
                let created = send("POST", &endpoint, Some(&Value::Object(want.clone())), None)?;
                if mode == Mode::Apply {
                    if created.status != 201 {
                        return Err(upstream(&created, "the registration"));
                    }
                    ssoctl_flow_sdk::event(&format!("registered with {issuer}"));
                }
                let uri = created.body["registration_client_uri"].as_str().map(str::to_string);
                Registration {
                    client_id: created.body["client_id"].as_str().map(str::to_string),
                    secret: created.secret,
                    management: uri.map(|u| (u, created.registration_token)),
                }
            }
        };

        if let Some((uri, token)) = &registration.management {
            service_config::set_env(&uri_key, uri)?;
            if let Some(token) = token {
                service_config::set_env_secret(&token_key, token)?;
            }
        }
        let client_id = registration.client_id.clone().unwrap_or_default();
        let values = [("client_id", client_id.as_str()), ("issuer", issuer.as_str())];
        let defaults = [
            (id_key.clone(), "{client_id}"),
            (format!("{prefix}OIDC_CLIENT_SECRET"), SECRET_PLACEHOLDER),
            (format!("{prefix}OIDC_ISSUER"), "{issuer}"),
        ];
        let entries: Vec<(String, &str)> = match settings.map("env") {
            Some(map) => map.into_iter().map(|(k, t)| (k.to_string(), t)).collect(),
            None => defaults.iter().map(|(k, t)| (k.clone(), *t)).collect(),
        };
        for (key, tpl) in entries {
            if tpl == SECRET_PLACEHOLDER {
                if let Some(secret) = &registration.secret {
                    service_config::set_env_secret(&key, secret)?;
                }
            } else if tpl.contains("{client_id}") && registration.client_id.is_none() {
                // Plan mode before registering: the id is not known yet.
            } else {
                service_config::set_env(&key, &template::expand(&key, tpl, &values)?)?;
            }
        }
        let summary = if findings.is_empty() {
            "registered, metadata matches"
        } else {
            "registration differs"
        };
        Ok(Outcome {
            summary: summary.into(),
            findings,
        })
    }
}

ssoctl_flow_sdk::flow!(Dcr);
