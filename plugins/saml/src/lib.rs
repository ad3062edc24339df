//! Flow `saml`: a SAML service provider such as Zammad. The SAML provider in Authentik (ACS URL
//! and audience from the service's public URL, signing keypair, property and NameID mappings,
//! issuer set explicitly so it does not change with the 2026.5 default), the application, and the
//! IdP details the service needs in `.env`: metadata, SSO/SLO URLs, entity id and the signing
//! certificate's fingerprint. `check` compares the fingerprint the service trusts with the
//! certificate Authentik signs with, which is what breaks after a key rotation.

use ssoctl_flow_sdk::sso::flow::authentik::{self, SamlProviderSpec};
use ssoctl_flow_sdk::sso::flow::service_config;
use ssoctl_flow_sdk::template;
use ssoctl_flow_sdk::{Finding, FlowError, FlowInfo, Guest, MatchMode, Mode, Outcome, Service, Settings};

mod zammad;

const EMAIL_NAME_ID: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// `.env` keys written when the manifest has no `sso.env` map (after the service's prefix).
const DEFAULT_ENV: &[(&str, &str)] = &[
    ("SAML_IDP_METADATA_URL", "{metadata_url}"),
    ("SAML_IDP_ENTITY_ID", "{issuer}"),
    ("SAML_IDP_SSO_TARGET_URL", "{sso_redirect_url}"),
    ("SAML_IDP_SLO_SERVICE_URL", "{slo_redirect_url}"),
    ("SAML_IDP_CERT_FINGERPRINT", "{signing_fingerprint}"),
    ("SAML_NAME_IDENTIFIER_FORMAT", EMAIL_NAME_ID),
];

struct SamlFlow;

/// The placeholders the SAML flow fills in `sso.env` templates.
const PLACEHOLDERS: [&str; 9] = [
    "metadata_url",
    "issuer",
    "sso_redirect_url",
    "sso_post_url",
    "slo_redirect_url",
    "signing_fingerprint",
    "public_url",
    "authentik_url",
    "slug",
];

/// Each `.env` key and its template: the manifest's `sso.env` map, or the defaults under the
/// service's prefix.
fn env_entries<'a>(service: &Service, settings: &Settings<'a>) -> Vec<(String, &'a str)> {
    match settings.map("env") {
        Some(map) => map.into_iter().map(|(k, t)| (k.to_string(), t)).collect(),
        None => DEFAULT_ENV
            .iter()
            .map(|(s, t)| (format!("{}{s}", service.env_prefix), *t))
            .collect(),
    }
}

impl Guest for SamlFlow {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: "saml".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "SAML service provider (Zammad and others), signing certificate checked".to_string(),
        }
    }

    fn run(service: Service, mode: Mode) -> Result<Outcome, FlowError> {
        ssoctl_flow_sdk::install_panic_hook();
        let settings = Settings::new(&service.settings);
        ssoctl_flow_sdk::roles::unsupported(
            &settings,
            "Authentik sends the user's groups in the SAML attribute http://schemas.xmlsoap.org/claims/Group (its default mapping); map them to roles in the service (Zammad 6 cannot: it gives SSO users its signup roles)",
        )?;
        let server = authentik::server_info();
        let acs_url = service
            .redirect_uris
            .iter()
            .find(|r| r.matching == MatchMode::Strict)
            .map(|r| r.url.clone())
            .ok_or_else(|| {
                FlowError::Invalid("set sso.redirect_path to the service's ACS path, e.g. /auth/saml/callback".into())
            })?;
        let audience = match settings.get("audience") {
            Some(a) => a.to_string(),
            None => format!(
                "{}{}",
                service.public_url,
                settings.get("entity_id_path").unwrap_or("/auth/saml/metadata")
            ),
        };
        let issuer = settings
            .get("issuer")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/application/saml/{}/metadata/", server.url, service.slug));
        let mappings: Vec<String> = settings
            .list("mappings")
            .map(|m| m.into_iter().map(str::to_string).collect())
            .unwrap_or_else(|| vec!["username".into(), "email".into(), "name".into()]);
        if let Some(other) = settings.get("service_api").filter(|a| *a != "zammad") {
            return Err(FlowError::Invalid(format!(
                "sso.service_api `{other}` is not known to the saml flow (known: zammad)"
            )));
        }
        // Every `.env` template is checked before anything is registered.
        for (key, tpl) in env_entries(&service, &settings) {
            template::check(&key, tpl, &PLACEHOLDERS)?;
        }
        let binding = settings.get("sp_binding").unwrap_or("post");
        if !matches!(binding, "post" | "redirect") {
            return Err(FlowError::Invalid(format!(
                "sso.sp_binding must be post or redirect, not `{binding}`"
            )));
        }
        let provider = authentik::ensure_saml_provider(
            &service.slug,
            &SamlProviderSpec {
                acs_url,
                audience,
                issuer: Some(issuer),
                sp_binding_post: binding == "post",
                mappings,
                name_id_mapping: Some(settings.get("name_id_mapping").unwrap_or("email").to_string()),
                sign_assertion: settings.bool("sign_assertion", true)?,
                sign_response: settings.bool("sign_response", true)?,
            },
        )?;
        ssoctl_flow_sdk::ensure_application(&service, &settings)?;

        let values: [(&str, &str); PLACEHOLDERS.len()] = [
            ("metadata_url", provider.metadata_url.as_str()),
            ("issuer", provider.issuer.as_str()),
            ("sso_redirect_url", provider.sso_redirect_url.as_str()),
            ("sso_post_url", provider.sso_post_url.as_str()),
            ("slo_redirect_url", provider.slo_redirect_url.as_str()),
            ("signing_fingerprint", provider.signing_fingerprint.as_str()),
            ("public_url", service.public_url.as_str()),
            ("authentik_url", server.url.as_str()),
            ("slug", service.slug.as_str()),
        ];
        debug_assert!(values.iter().map(|(n, _)| *n).eq(PLACEHOLDERS));
        let mut findings = Vec::new();
        for (key, tpl) in env_entries(&service, &settings) {
            let value = template::expand(&key, tpl, &values)?;
            if tpl == "{signing_fingerprint}" && mode == Mode::Check {
                // The drift that matters after a key rotation, said in its own words.
                if !value.is_empty() && service_config::get_env(&key)?.as_deref() != Some(value.as_str()) {
                    findings.push(Finding {
                        kind: "signing-cert-mismatch".into(),
                        message: format!(
                            "signing cert mismatch: {key} is not the fingerprint of the certificate Authentik signs with ({value})"
                        ),
                    });
                }
                continue;
            }
            service_config::set_env(&key, &value)?;
        }
        match settings.get("service_api") {
            None => {}
            // Check/plan without a provider yet: nothing to compare the service against.
            Some(_) if provider.signing_certificate.is_empty() => {}
            Some(_) => findings.extend(zammad::configure(&service, &settings, &provider, EMAIL_NAME_ID, mode)?),
        }
        Ok(Outcome {
            summary: "Authentik app present, signing cert matches".to_string(),
            findings,
        })
    }
}

ssoctl_flow_sdk::flow!(SamlFlow);
