//! `check --probe`: what only a login would otherwise show, without a browser. For each service,
//! after the API-level check:
//! - `sso.login_path` set (oauth, oidc, frappe, wikijs, saml): the service's login-start URL must
//!   redirect (not followed) to Authentik's authorize endpoint with the provider's `client_id` and
//!   one of the manifest's redirect URIs (SAML: to the provider's SSO URL). This catches settings
//!   stored in the service's database overriding `.env`, a wrong public URL, a stale client id.
//! - `oidc`: the discovery document fetched through Authentik's public URL, its `issuer` compared
//!   exactly with the one the service was given.
//! - `proxy`: an unauthenticated request must be sent to the outpost's start URL (a missing
//!   forward-auth middleware serves the page instead).
//!
//! Requests go to `sso.probe_url` (default: the public URL) and to `AUTHENTIK_URL`, nowhere else.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::authentik::models::OAuth2Provider;
use crate::capabilities::Finding;
use crate::runner::{ServiceReport, Status};
use crate::session::Session;
use crate::stack::ServiceSpec;

fn finding(kind: &str, message: String) -> Finding {
    Finding {
        kind: kind.into(),
        message,
    }
}

fn setting<'a>(spec: &'a ServiceSpec, key: &str) -> Option<&'a str> {
    spec.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The `Location` of an answer that must be a redirect; a finding otherwise.
async fn redirect_target(client: &reqwest::Client, url: &str, what: &str) -> Result<url::Url, Finding> {
    let response = client.get(url).send().await.map_err(|e| {
        finding(
            "probe-unreachable",
            format!("probe: {url} did not answer: {}", e.without_url()),
        )
    })?;
    let status = response.status();
    if !status.is_redirection() {
        return Err(finding(
            "probe-no-redirect",
            format!("probe: {url} answered {status} instead of redirecting to {what}"),
        ));
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    url::Url::parse(url).and_then(|base| base.join(location)).map_err(|_| {
        finding(
            "probe-no-redirect",
            format!("probe: {url} redirected to `{location}`, not a URL"),
        )
    })
}

fn query<'a>(url: &'a url::Url, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v)
}

async fn probe_service(
    client: &reqwest::Client,
    authentik: &str,
    spec: &ServiceSpec,
    providers: &BTreeMap<String, OAuth2Provider>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let base = setting(spec, "probe_url")
        .unwrap_or(&spec.public_url)
        .trim_end_matches('/');
    let oauth = matches!(spec.sso_type.as_str(), "oauth" | "oidc" | "frappe" | "wikijs");
    if let Some(path) = setting(spec, "login_path") {
        let url = format!("{base}{path}");
        if spec.sso_type == "saml" {
            let sso = format!("{authentik}/application/saml/{}/sso/binding/", spec.slug);
            match redirect_target(client, &url, "Authentik's SAML SSO URL").await {
                Ok(target) if target.as_str().starts_with(&sso) => {}
                Ok(target) => findings.push(finding(
                    "probe-wrong-idp",
                    format!("probe: {url} sends users to {target}, not to {sso}…"),
                )),
                Err(f) => findings.push(f),
            }
        } else if oauth {
            let authorize = format!("{authentik}/application/o/authorize/");
            match redirect_target(client, &url, "Authentik's authorize endpoint").await {
                Ok(target) if !target.as_str().starts_with(&authorize) => findings.push(finding(
                    "probe-wrong-idp",
                    format!("probe: {url} sends users to {}, not to {authorize}", target.as_str()),
                )),
                Ok(target) => {
                    let client_id = query(&target, "client_id").unwrap_or_default();
                    match providers.get(&spec.slug) {
                        Some(p) if p.client_id == client_id => {}
                        Some(_) => findings.push(finding(
                            "probe-client-id-mismatch",
                            format!(
                                "probe: {url} logs in with client_id `{client_id}`, not the provider's: the service \
                                 holds another client id (settings stored in its database override .env?)"
                            ),
                        )),
                        None => {}
                    }
                    let redirect = query(&target, "redirect_uri").unwrap_or_default();
                    let expected: Vec<&str> = spec
                        .redirect_uris
                        .iter()
                        .filter(|r| !r.regex)
                        .map(|r| r.url.as_str())
                        .collect();
                    if !expected.is_empty() && !expected.contains(&redirect.as_ref()) {
                        findings.push(finding(
                            "probe-redirect-uri-mismatch",
                            format!(
                                "probe: {url} asks Authentik to return to `{redirect}`, expected {}",
                                expected.join(" or ")
                            ),
                        ));
                    }
                }
                Err(f) => findings.push(f),
            }
        }
    }
    if spec.sso_type == "oidc" {
        let expected = format!("{authentik}/application/o/{}/", spec.slug);
        let url = format!("{expected}.well-known/openid-configuration");
        let issuer = async {
            let doc: serde_json::Value = client.get(&url).send().await.ok()?.json().await.ok()?;
            doc.get("issuer").and_then(|i| i.as_str()).map(str::to_string)
        }
        .await;
        match issuer {
            Some(issuer) if issuer == expected => {}
            Some(issuer) => findings.push(finding(
                "probe-issuer-mismatch",
                format!("probe: the discovery document says issuer `{issuer}`; the service expects `{expected}` (tokens will be rejected)"),
            )),
            None => findings.push(finding(
                "probe-discovery-unreadable",
                format!("probe: no OpenID discovery document at {url}"),
            )),
        }
    }
    if spec.sso_type == "proxy" {
        let url = format!("{base}/");
        match redirect_target(client, &url, "the outpost's start URL").await {
            Ok(target) if target.path().starts_with("/outpost.goauthentik.io/start") => {}
            Ok(target) => findings.push(finding(
                "probe-not-protected",
                format!("probe: {url} redirects to {target}, not to the outpost's start URL"),
            )),
            Err(f) if f.kind == "probe-no-redirect" => findings.push(finding(
                "probe-not-protected",
                format!("probe: {url} is served without authentication: the forward-auth middleware is missing"),
            )),
            Err(f) => findings.push(f),
        }
    }
    findings
}

/// The types whose login the probe knows how to try.
const PROBED_TYPES: [&str; 6] = ["oauth", "oidc", "frappe", "wikijs", "saml", "proxy"];

/// Probes every service of `reports` that did not fail, adding what it finds as drift; a
/// service of another type gets a warning that it was not probed.
pub async fn probe(session: &Session, reports: &mut [ServiceReport]) -> crate::error::Result<()> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| crate::error::Error::Config(format!("probe HTTP client: {e}")))?;
    let ak = session.authentik();
    let providers: BTreeMap<String, OAuth2Provider> = ak
        .list::<OAuth2Provider>("providers/oauth2/", &[])
        .await?
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    let authentik = ak.public_url().trim_end_matches('/').to_string();
    for report in reports.iter_mut().filter(|r| r.status != Status::Error) {
        let Some(spec) = session.stack.services.get(&report.service) else {
            continue;
        };
        if !PROBED_TYPES.contains(&spec.sso_type.as_str()) {
            // Say so, rather than let a green line suggest the login was tried.
            report.warnings.push(format!(
                "probe: sso.type `{}` has no probe (logins are probed for {}); only the API-level check ran",
                spec.sso_type,
                PROBED_TYPES.join(", ")
            ));
            continue;
        }
        let found = probe_service(&client, &authentik, spec, &providers).await;
        if !found.is_empty() {
            report.status = Status::Drift;
            report.findings.extend(found);
        }
    }
    Ok(())
}
