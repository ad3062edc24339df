//! Flow `frappe`: Frappe/ERPNext logins through Authentik. An OAuth2 provider whose redirect URI is
//! the one Frappe derives from the Social Login Key's name, its application, and on the service
//! side the `Social Login Key` document created or updated over Frappe's REST API (token auth
//! injected by the host) with absolute authorize/token/userinfo URLs. `check` reads the stored
//! client secret back through `frappe.client.get_password` and compares it with Authentik's
//! without ever seeing either.

use serde_json::{Map, Value, json};
use ssoctl_flow_sdk::http;
use ssoctl_flow_sdk::sso::flow::authentik;
use ssoctl_flow_sdk::{Finding, FlowError, FlowInfo, Guest, Mode, Outcome, Service, Settings};

const DOCTYPE: &str = "/api/resource/Social%20Login%20Key";
const SECRET: &str = "{client_secret}";

struct FrappeFlow;

/// Frappe's `scrub`: the document name it derives from `provider_name`.
fn scrub(name: &str) -> String {
    name.trim().to_lowercase().replace([' ', '-'], "_")
}

fn http(
    method: &str,
    path: &str,
    body: Option<&Value>,
    secret: bool,
    provider_secret: &authentik::Secret,
) -> Result<(u16, Value), FlowError> {
    let answer = http::service(&http::Request {
        body,
        secret: secret.then_some(provider_secret),
        ..http::Request::new(method, path)
    })?;
    if matches!(answer.status, 401 | 403) {
        return Err(FlowError::Upstream(format!(
            "Frappe refused the API credentials ({}): check the keys named by sso.http in the manifest",
            answer.status
        )));
    }
    Ok((answer.status, answer.body))
}

fn expect_ok(what: &str, (status, body): (u16, Value)) -> Result<Value, FlowError> {
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        let detail = body.get("exception").and_then(Value::as_str).unwrap_or("");
        Err(FlowError::Upstream(format!(
            "Frappe answered {status} to {what}: {detail}"
        )))
    }
}

impl Guest for FrappeFlow {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: "frappe".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "Frappe/ERPNext Social Login Key over its REST API".to_string(),
        }
    }

    fn run(service: Service, mode: Mode) -> Result<Outcome, FlowError> {
        ssoctl_flow_sdk::install_panic_hook();
        let settings = Settings::new(&service.settings);
        ssoctl_flow_sdk::roles::unsupported(
            &settings,
            "Frappe's social login gives new users its default role; use sso.access for who may log in",
        )?;
        let provider_name = settings.get("provider_name").unwrap_or("authentik");
        let name = scrub(provider_name);
        let redirect_path = format!("/api/method/frappe.integrations.oauth2_logins.custom/{name}");
        let redirect_uri = format!("{}{redirect_path}", service.public_url);
        if service.redirect_uris.iter().any(|r| r.url != redirect_uri) {
            return Err(FlowError::Invalid(format!(
                "sso.redirect_path must be {redirect_path}: Frappe derives it from provider_name `{provider_name}`"
            )));
        }
        let provider = authentik::ensure_oauth2_provider(
            &service.slug,
            &ssoctl_flow_sdk::oauth::confidential_oidc_spec(redirect_uri),
        )?;
        ssoctl_flow_sdk::ensure_application(&service, &settings)?;
        let server = authentik::server_info();
        let mut findings = Vec::new();
        if provider.client_id.is_empty() {
            // Check mode, provider not registered: that finding says it all.
            return Ok(Outcome {
                summary: String::new(),
                findings,
            });
        }

        let desired = json!({
            "provider_name": provider_name,
            "social_login_provider": "Custom",
            "enable_social_login": 1,
            "client_id": provider.client_id,
            "base_url": server.url,
            "custom_base_url": 0,
            "authorize_url": provider.authorize_url,
            "access_token_url": provider.token_url,
            "api_endpoint": provider.userinfo_url,
            "redirect_url": redirect_path,
            "auth_url_data": "{\"response_type\": \"code\", \"scope\": \"openid email profile\"}",
            "user_id_property": "sub",
        });
        let desired = desired.as_object().expect("object");
        let doc_path = format!("{DOCTYPE}/{name}");
        let secret = &provider.client_secret;
        let (status, body) = http("GET", &doc_path, None, false, secret)?;
        match status {
            404 => {
                if mode == Mode::Check {
                    findings.push(Finding {
                        kind: "social-login-key-missing".into(),
                        message: format!("Frappe has no Social Login Key `{name}`"),
                    });
                } else {
                    let mut create: Map<String, Value> = desired.clone();
                    create.insert("client_secret".into(), json!(SECRET));
                    expect_ok(
                        "creating the Social Login Key",
                        http("POST", DOCTYPE, Some(&Value::Object(create)), true, secret)?,
                    )?;
                }
            }
            200..=299 => {
                let stored = body.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
                let mut update: Map<String, Value> = desired
                    .iter()
                    .filter(|(k, v)| {
                        stored.get(*k) != Some(*v) && !matches!(k.as_str(), "provider_name" | "social_login_provider")
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let query = format!(
                    "/api/method/frappe.client.get_password?doctype=Social%20Login%20Key&name={name}&fieldname=client_secret"
                );
                let (_, password) = http("GET", &query, None, false, secret)?;
                // The host replaces Authentik's secret with the placeholder in answers.
                let secret_matches = password.get("message").and_then(Value::as_str) == Some(SECRET);
                if mode == Mode::Check {
                    for field in update.keys() {
                        findings.push(Finding {
                            kind: "social-login-key-mismatch".into(),
                            message: format!("Social Login Key `{name}`: {field} differs from Authentik's"),
                        });
                    }
                    if !secret_matches {
                        findings.push(Finding {
                            kind: "client-secret-mismatch".into(),
                            message: format!("client secret mismatch: Frappe's Social Login Key `{name}` holds another secret than Authentik"),
                        });
                    }
                } else if !update.is_empty() || !secret_matches {
                    if !secret_matches {
                        update.insert("client_secret".into(), json!(SECRET));
                    }
                    expect_ok(
                        "updating the Social Login Key",
                        http("PUT", &doc_path, Some(&Value::Object(update)), !secret_matches, secret)?,
                    )?;
                }
            }
            other => {
                return Err(FlowError::Upstream(format!(
                    "Frappe answered {other} to GET {doc_path}"
                )));
            }
        }
        Ok(Outcome {
            summary: "Authentik app present, client secret matches".to_string(),
            findings,
        })
    }
}

ssoctl_flow_sdk::flow!(FrappeFlow);
