//! `check --probe`: what only a login would otherwise show, without a browser. For each service,
//! after the API-level check:
//! - `sso.login_path` set (oauth, oidc, frappe, wikijs, saml): the service's login-start URL must
//!   redirect (not followed) to Authentik's authorize endpoint with the provider's `client_id` and
//!   one of the manifest's redirect URIs (SAML: to the provider's SSO URL). This catches settings
//!   stored in the service's database overriding `.env`, a wrong public URL, a stale client id.
//! - `oidc`: the discovery document fetched through Authentik's public URL, its `issuer` compared
//!   exactly with the one the service was given.
//! - `proxy`: through the reverse proxy in front of the service, the outpost's paths on the
//!   service's host must reach the outpost, and a stranger must be sent to log in with the
//!   provider's client id and the outpost's callback ([`probe_proxy`]).
//!
//! Requests go to `sso.probe_url` (default: the public URL) and to `AUTHENTIK_URL`, nowhere else.
//! `sso.probe_resolve: IP` connects to that address for the URL's host name (as `curl --resolve`
//! does, the port from the URL), for a reverse proxy the probing machine cannot find by DNS.

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
        findings.extend(probe_proxy(client, authentik, spec, base, providers.get(&spec.slug)).await);
    }
    findings
}

/// The router ssoctl wrote for the outpost's paths on the service's host, from the service's
/// Traefik file: its name and priority, for messages.
fn outpost_router(spec: &ServiceSpec) -> Option<(String, i64)> {
    let dir = spec.manifest_path.parent()?;
    let text = std::fs::read_to_string(dir.join(&spec.declared.traefik_file)).ok()?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    let routers = doc.get("http")?.get("routers")?.as_mapping()?;
    routers.iter().find_map(|(name, router)| {
        let rule = router.get("rule")?.as_str()?;
        rule.contains("PathPrefix(`/outpost.goauthentik.io/`)").then(|| {
            (
                name.as_str().unwrap_or_default().to_string(),
                router.get("priority").and_then(serde_yaml::Value::as_i64).unwrap_or(0),
            )
        })
    })
}

/// A proxy (forward auth) service, probed as a browser meets it through the reverse proxy:
/// - `/outpost.goauthentik.io/ping` on the service's own host must be the outpost's 204: the
///   outpost answers its callback (and `start`, `sign_out`) only on the host in the provider's
///   external host, so a router that outranks the outpost's there, or none at all, breaks every
///   login after Authentik's consent (`forward_single` only; `forward_domain` logins return to
///   the auth domain).
/// - a stranger's `GET /` must be sent to Authentik's authorize endpoint with the provider's
///   client id and the outpost's callback on the external host (Authentik's Traefik and Caddy
///   endpoints redirect there directly), or to the outpost's `start` (nginx, proxy mode); served
///   as is, the forward-auth middleware is missing; a 404 is an outpost that does not know the host.
async fn probe_proxy(
    client: &reqwest::Client,
    authentik: &str,
    spec: &ServiceSpec,
    base: &str,
    provider: Option<&OAuth2Provider>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mode = setting(spec, "mode").unwrap_or("forward_single");
    let host = url::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let mut outpost_reached = true;
    if mode == "forward_single" {
        let url = format!("{base}/outpost.goauthentik.io/ping");
        let router = match outpost_router(spec) {
            Some((name, priority)) => format!("`{name}` (priority {priority})"),
            None => "the outpost's router".to_string(),
        };
        match client.get(&url).send().await {
            Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => {}
            Ok(r) if r.status().is_redirection() => {
                outpost_reached = false;
                findings.push(finding(
                    "probe-outpost-route-missing",
                    format!(
                        "probe: {url} went through forward auth instead of reaching the outpost: no router sends \
                         /outpost.goauthentik.io/ on {host} to the outpost ahead of the service's ({router} is not \
                         loaded, or serves another host such as the auth domain); logins fail at the callback"
                    ),
                ));
            }
            Ok(r) => {
                outpost_reached = false;
                findings.push(finding(
                    "probe-outpost-route-outranked",
                    format!(
                        "probe: {url} answered {} instead of the outpost's 204: another router on {host} outranks \
                         {router} and takes /outpost.goauthentik.io/, so the callback never reaches the outpost \
                         (users see the service's 404 after login); give that router a lower priority",
                        r.status()
                    ),
                ));
            }
            Err(e) => findings.push(finding(
                "probe-unreachable",
                format!("probe: {url} did not answer: {}", e.without_url()),
            )),
        }
    }
    let url = format!("{base}/");
    let response = match client.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            findings.push(finding(
                "probe-unreachable",
                format!("probe: {url} did not answer: {}", e.without_url()),
            ));
            return findings;
        }
    };
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Ok(target) = url::Url::parse(&url).and_then(|b| b.join(location)) else {
            findings.push(finding(
                "probe-no-redirect",
                format!("probe: {url} redirected to `{location}`, not a URL"),
            ));
            return findings;
        };
        if target.path().starts_with("/outpost.goauthentik.io/start") {
            return findings;
        }
        let authorize = format!("{authentik}/application/o/authorize/");
        if !target.as_str().starts_with(&authorize) {
            findings.push(finding(
                "probe-not-protected",
                format!("probe: {url} redirects to {target}, not to Authentik's authorize endpoint or the outpost's start URL"),
            ));
            return findings;
        }
        let client_id = query(&target, "client_id").unwrap_or_default();
        if let Some(p) = provider
            && p.client_id != client_id
        {
            findings.push(finding(
                "probe-client-id-mismatch",
                format!(
                    "probe: the outpost logs {host} in with client_id `{client_id}`, not provider `{}`'s",
                    spec.slug
                ),
            ));
        }
        let external = setting(spec, "external_host")
            .unwrap_or(&spec.public_url)
            .trim_end_matches('/');
        let expected = format!("{external}/outpost.goauthentik.io/callback?X-authentik-auth-callback=true");
        let redirect = query(&target, "redirect_uri").unwrap_or_default();
        if mode == "forward_single" && redirect != expected {
            findings.push(finding(
                "probe-redirect-uri-mismatch",
                format!("probe: the outpost asks Authentik to return to `{redirect}`, expected `{expected}`"),
            ));
        }
        return findings;
    }
    let finding_for = match status.as_u16() {
        200..=299 => finding(
            "probe-not-protected",
            format!("probe: {url} is served without authentication: the forward-auth middleware is missing"),
        ),
        404 if outpost_reached => finding(
            "probe-outpost-unknown-host",
            format!(
                "probe: forward auth for {url} answered 404: the embedded outpost does not serve {host} (the provider \
                 is detached from the outpost, or has no application)"
            ),
        ),
        _ => finding(
            "probe-forward-auth-failed",
            format!(
                "probe: {url} answered {status} instead of sending a stranger to log in (the forward-auth \
                 address does not reach the outpost, or no router serves {host})"
            ),
        ),
    };
    findings.push(finding_for);
    findings
}

/// The probe's HTTP client: redirects are read, never followed; `resolve` connects to an address
/// for a host name.
fn probe_client(resolve: Option<(&str, std::net::IpAddr)>) -> crate::error::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    if let Some((host, ip)) = resolve {
        builder = builder.resolve(host, std::net::SocketAddr::new(ip, 0));
    }
    builder
        .build()
        .map_err(|e| crate::error::Error::Config(format!("probe HTTP client: {e}")))
}

/// The types whose login the probe knows how to try.
const PROBED_TYPES: [&str; 6] = ["oauth", "oidc", "frappe", "wikijs", "saml", "proxy"];

/// Probes every service of `reports` that did not fail, adding what it finds as drift; a
/// service of another type gets a warning that it was not probed.
pub async fn probe(session: &Session, reports: &mut [ServiceReport]) -> crate::error::Result<()> {
    let client = probe_client(None)?;
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
        let resolved;
        let client = match setting(spec, "probe_resolve") {
            None => &client,
            Some(ip) => {
                let base = setting(spec, "probe_url").unwrap_or(&spec.public_url);
                let host = url::Url::parse(base)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string));
                match (ip.trim().parse::<std::net::IpAddr>(), host) {
                    (Ok(ip), Some(host)) => {
                        resolved = probe_client(Some((&host, ip)))?;
                        &resolved
                    }
                    _ => {
                        report.status = Status::Drift;
                        report.findings.push(finding(
                            "probe-config",
                            format!("probe: sso.probe_resolve `{ip}` must be an IP address (the URL's host is connected there)"),
                        ));
                        continue;
                    }
                }
            }
        };
        let found = probe_service(client, &authentik, spec, &providers).await;
        if !found.is_empty() {
            report.status = Status::Drift;
            report.findings.extend(found);
        }
    }
    Ok(())
}
