//! Zammad's side of the SAML flow: the settings it keeps in its database, over its REST API
//! (docs/service-flows.md §2). `auth_saml` on; `auth_saml_credentials` with the IdP's SSO
//! and SLO URLs, the PEM of the certificate Authentik signs with (`idp_cert`; the fingerprint
//! field is deprecated) and the NameID format; `fqdn` and `http_type`, from which Zammad derives
//! its ACS URL and entity id, matching the public URL. Keys of the credentials hash that the
//! flow does not own (`security`, SP certificate, `uid_attribute`, …) are resubmitted as read.

use serde_json::{Value, json};
use ssoctl_flow_sdk::http;
use ssoctl_flow_sdk::sso::flow::authentik::SamlProvider;
use ssoctl_flow_sdk::{Finding, FlowError, Mode, Service, Settings};

/// What Zammad shows instead of a secret value (`private_key`, `private_key_secret`).
const MASK: &str = "*****";

fn request(method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value), FlowError> {
    let response = http::service(&http::Request {
        body: body.as_ref(),
        ..http::Request::new(method, path)
    })?;
    if matches!(response.status, 401 | 403) {
        return Err(FlowError::Upstream(format!(
            "Zammad refused the API token ({}): it needs admin.security, and API token access must be on",
            response.status
        )));
    }
    let ok = response.is_success();
    let body = response.body;
    if ok {
        Ok((response.status, body))
    } else {
        let why = body.get("error").and_then(Value::as_str).unwrap_or("");
        Err(FlowError::Upstream(format!(
            "Zammad answered {} to {method} {path}: {why}",
            response.status
        )))
    }
}

/// Certificates compare by their base64 body, whatever the line breaks.
fn same_pem(a: &str, b: &str) -> bool {
    let body = |p: &str| -> String { p.chars().filter(|c| !c.is_whitespace()).collect() };
    body(a) == body(b)
}

/// Configures (apply), plans, or checks Zammad's SAML settings; returns check findings.
pub fn configure(
    service: &Service,
    settings: &Settings,
    provider: &SamlProvider,
    name_id_format: &str,
    mode: Mode,
) -> Result<Vec<Finding>, FlowError> {
    let (_, all) = request("GET", "/api/v1/settings", None)?;
    let all = all.as_array().ok_or_else(|| {
        FlowError::Upstream("Zammad's /api/v1/settings is not a list: is sso.http.base_url Zammad?".into())
    })?;
    let find = |name: &str| -> Result<(u64, Value), FlowError> {
        all.iter()
            .find(|s| s["name"] == name)
            .and_then(|s| Some((s["id"].as_u64()?, s.pointer("/state_current/value")?.clone())))
            .ok_or_else(|| FlowError::NotFound(format!("Zammad has no setting `{name}`")))
    };
    let (scheme, fqdn) = service
        .public_url
        .split_once("://")
        .map(|(scheme, rest)| (scheme, rest.split('/').next().unwrap_or("")))
        .ok_or_else(|| FlowError::Invalid(format!("public_url `{}` is not an absolute URL", service.public_url)))?;
    let mut findings = Vec::new();
    let mut updates: Vec<(u64, String, Value)> = Vec::new();
    let mut want = |name: &str, value: Value, drift: Option<(&str, String)>| -> Result<(), FlowError> {
        let (id, current) = find(name)?;
        if current != value {
            let (kind, message) = drift.unwrap_or_else(|| {
                (
                    "zammad-setting-mismatch",
                    format!("Zammad setting {name} is {current}, expected {value}"),
                )
            });
            findings.push(Finding {
                kind: kind.into(),
                message,
            });
            updates.push((id, name.to_string(), value));
        }
        Ok(())
    };
    want("fqdn", json!(fqdn), None)?;
    want("http_type", json!(scheme), None)?;
    want(
        "auth_saml",
        json!(true),
        Some((
            "zammad-saml-disabled",
            "SAML login is switched off in Zammad (auth_saml)".into(),
        )),
    )?;
    if let Some(link) = settings.get("auto_link") {
        let link = settings.bool("auto_link", link == "true")?;
        want("auth_third_party_auto_link_at_inital_login", json!(link), None)?;
    }

    let (id, current) = find("auth_saml_credentials")?;
    let mut credentials = current.as_object().cloned().unwrap_or_default();
    if credentials.values().any(|v| v == MASK) {
        // The masked values cannot be resubmitted, and a PUT replaces the whole hash.
        return Err(FlowError::Unsupported(
            "Zammad's auth_saml_credentials holds an SP private key, which its API masks: ssoctl cannot rewrite the \
             hash without losing it; set the IdP values in Zammad's admin area"
                .into(),
        ));
    }
    let cert_trusted = credentials
        .get("idp_cert")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let display_name = settings.get("display_name").unwrap_or("Authentik");
    let mut differs = Vec::new();
    for (key, value) in [
        ("display_name", display_name),
        // Unconfirmed which binding Authentik accepts for ruby-saml's GET: ruby-saml sends the
        // AuthnRequest as HTTP-Redirect, so the redirect endpoint is the one that matches.
        ("idp_sso_target_url", provider.sso_redirect_url.as_str()),
        ("idp_slo_service_url", provider.slo_redirect_url.as_str()),
        ("name_identifier_format", name_id_format),
    ] {
        if credentials.get(key).and_then(Value::as_str) != Some(value) {
            differs.push(key);
            credentials.insert(key.into(), json!(value));
        }
    }
    let cert_matches = same_pem(&cert_trusted, &provider.signing_certificate);
    if !cert_matches {
        credentials.insert("idp_cert".into(), json!(provider.signing_certificate));
        // The fingerprint field is deprecated; a stale one would be checked too.
        credentials.insert("idp_cert_fingerprint".into(), json!(""));
    }
    if !cert_matches {
        findings.push(Finding {
            kind: "signing-cert-mismatch".into(),
            message: if cert_trusted.is_empty() {
                "signing cert mismatch: Zammad trusts no IdP certificate (auth_saml_credentials.idp_cert)".into()
            } else {
                "signing cert mismatch: Zammad's idp_cert is not the certificate Authentik signs with".into()
            },
        });
    }
    for key in &differs {
        findings.push(Finding {
            kind: "zammad-setting-mismatch".into(),
            message: format!("Zammad setting auth_saml_credentials.{key} differs from Authentik's"),
        });
    }
    if !cert_matches || !differs.is_empty() {
        // Credentials first: Zammad validates them, and auth_saml without them would break logins.
        updates.insert(
            0,
            (
                id,
                "auth_saml_credentials".into(),
                serde_json::Value::Object(credentials),
            ),
        );
    }
    if mode == Mode::Check {
        return Ok(findings);
    }
    for (id, _name, value) in updates {
        request(
            "PUT",
            &format!("/api/v1/settings/{id}"),
            Some(json!({"state_current": {"value": value}})),
        )?;
    }
    Ok(Vec::new())
}
