//! `ssoctl apps`: the Authentik applications the stack's manifests claim (service, type,
//! provider, launch URL, redirect URIs or external host, signing-certificate expiry), and,
//! flagged, the applications no manifest claims. Read-only.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::authentik::models::{Application, Keypair, OAuth2Provider, ProxyProvider, SamlProvider};
use crate::error::Result;
use crate::session::Session;

#[derive(Debug, Serialize)]
pub struct AppRow {
    /// The manifest's service; none for an application no manifest claims.
    pub service: Option<String>,
    pub sso_type: Option<String>,
    pub slug: String,
    pub name: String,
    /// `oauth2 grafana`, `saml zammad`, `proxy adminer`; none without a provider.
    pub provider: Option<String>,
    pub launch_url: Option<String>,
    /// OAuth2 redirect URIs, the proxy's external host, or the SAML ACS URL.
    pub urls: Vec<String>,
    /// Expiry of the certificate the provider signs with (RFC 3339).
    pub cert_expiry: Option<String>,
    /// A manifest claims this slug but Authentik has no such application.
    pub missing: bool,
}

fn uris(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => text.split_whitespace().map(str::to_string).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.get("url").and_then(Value::as_str).map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

pub async fn rows(session: &Session) -> Result<Vec<AppRow>> {
    session.preflight(&[]).await?;
    let ak = session.authentik();
    let (apps, oauth2, proxy, saml, keypairs) = tokio::try_join!(
        ak.list::<Application>("core/applications/", &[]),
        ak.list::<OAuth2Provider>("providers/oauth2/", &[]),
        ak.list::<ProxyProvider>("providers/proxy/", &[]),
        ak.list::<SamlProvider>("providers/saml/", &[]),
        ak.list::<Keypair>("crypto/certificatekeypairs/", &[]),
    )?;
    let expiry: BTreeMap<&str, &str> = keypairs
        .iter()
        .filter_map(|k| Some((k.pk.as_str(), k.cert_expiry.as_deref()?)))
        .collect();
    // provider pk → (label, urls, signing keypair)
    let mut providers: BTreeMap<u64, (String, Vec<String>, Option<String>)> = BTreeMap::new();
    for p in &oauth2 {
        providers.insert(
            p.pk,
            (
                format!("oauth2 {}", p.name),
                uris(&p.redirect_uris),
                p.signing_key.clone(),
            ),
        );
    }
    for p in &proxy {
        providers.insert(p.pk, (format!("proxy {}", p.name), vec![p.external_host.clone()], None));
    }
    for p in &saml {
        providers.insert(
            p.pk,
            (
                format!("saml {}", p.name),
                vec![p.acs_url.clone()],
                p.signing_kp.clone(),
            ),
        );
    }
    let by_slug: BTreeMap<&str, &crate::stack::ServiceSpec> =
        session.stack.services.values().map(|s| (s.slug.as_str(), s)).collect();
    let mut rows: Vec<AppRow> = apps
        .iter()
        .map(|a| {
            let service = by_slug.get(a.slug.as_str());
            let provider = a.provider.and_then(|pk| providers.get(&pk));
            AppRow {
                service: service.map(|s| s.name.clone()),
                sso_type: service.map(|s| s.sso_type.clone()),
                slug: a.slug.clone(),
                name: a.name.clone(),
                provider: provider.map(|p| p.0.clone()),
                launch_url: a.meta_launch_url.clone().filter(|u| !u.is_empty()),
                urls: provider.map(|p| p.1.clone()).unwrap_or_default(),
                cert_expiry: provider
                    .and_then(|p| p.2.as_deref())
                    .and_then(|kp| expiry.get(kp))
                    .map(|e| e.to_string()),
                missing: false,
            }
        })
        .collect();
    for s in session.stack.services.values() {
        if !apps.iter().any(|a| a.slug == s.slug) {
            rows.push(AppRow {
                service: Some(s.name.clone()),
                sso_type: Some(s.sso_type.clone()),
                slug: s.slug.clone(),
                name: s.display_name.clone(),
                provider: None,
                launch_url: None,
                urls: Vec::new(),
                cert_expiry: None,
                missing: true,
            });
        }
    }
    // Managed first, by service; then the unclaimed ones.
    rows.sort_by(|a, b| (a.service.is_none(), &a.service, &a.slug).cmp(&(b.service.is_none(), &b.service, &b.slug)));
    Ok(rows)
}

/// The human view: one line per application, unclaimed ones flagged.
pub fn lines(rows: &[AppRow]) -> Vec<String> {
    rows.iter()
        .map(|r| match (&r.service, r.missing) {
            (Some(service), true) => format!(
                "❌ {service} ({}) — application `{}` missing in Authentik",
                r.sso_type.as_deref().unwrap_or("?"),
                r.slug
            ),
            (Some(service), false) => {
                let mut parts = vec![r.provider.clone().unwrap_or_else(|| "no provider".into())];
                if let Some(url) = &r.launch_url {
                    parts.push(format!("launch {url}"));
                }
                if !r.urls.is_empty() {
                    parts.push(r.urls.join(" "));
                }
                if let Some(e) = &r.cert_expiry {
                    parts.push(format!("cert expires {}", e.get(..10).unwrap_or(e)));
                }
                format!(
                    "✓ {service} ({}) — {}",
                    r.sso_type.as_deref().unwrap_or("?"),
                    parts.join(" · ")
                )
            }
            (None, _) => format!(
                "⚠ {} — application `{}` is not claimed by any manifest{}",
                r.name,
                r.slug,
                r.provider.as_ref().map(|p| format!(" ({p})")).unwrap_or_default()
            ),
        })
        .collect()
}
