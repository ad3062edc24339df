//! `ensure-saml-provider`: a SAML provider in the request shape of the server's version (issuer
//! vs issuer_override, signing switches, invalidation flow, mapping paths), signed with the
//! server's self-signed keypair.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::objects::{
    Created, Diff, Needs, check_owner, create_provider, find_provider, lookup_err, prefetch, provider_login_flows,
    settle, updated,
};
use super::shapes;
use crate::authentik::SELF_SIGNED_KEYPAIR;
use crate::authentik::models::SamlProvider;
use crate::bindings::sso::flow::authentik::SamlProviderSpec;
use crate::capabilities::state::{FlowError, Mode, RunState, Written};

pub struct SamlOutcome {
    pub pk: Option<u64>,
    pub issuer: String,
    pub fingerprint: String,
    /// PEM of the signing certificate; empty when the provider does not exist yet.
    pub certificate: String,
}

fn saml_mapping(
    state: &RunState,
    all: &[crate::authentik::models::SamlMapping],
    suffix: &str,
) -> Result<String, FlowError> {
    let managed = format!("goauthentik.io/providers/saml/{suffix}");
    all.iter()
        .find(|m| m.managed.as_deref() == Some(&managed))
        .map(|m| m.pk.clone())
        .ok_or_else(|| {
            FlowError::NotFound(format!(
                "SAML property mapping `{managed}` not found in Authentik (sso.mappings in {})",
                state.service.manifest_path.display()
            ))
        })
}

pub async fn ensure_provider(state: &mut RunState, spec: &SamlProviderSpec) -> Result<SamlOutcome, FlowError> {
    let ak = state.ctx.authentik.clone();
    let caps = ak.request_shapes().await.map_err(|e| state.upstream(e))?.clone();
    let name = state.service.slug.clone();
    match url::Url::parse(&spec.acs_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => {
            return Err(FlowError::Invalid(format!(
                "ACS URL `{}` is not an http(s) URL",
                spec.acs_url
            )));
        }
    }
    if !caps.saml_sign_switches && spec.acs_url.len() > 200 {
        return Err(FlowError::Invalid(format!(
            "Authentik {} limits the ACS URL to 200 characters",
            caps.version
        )));
    }
    let needs = Needs {
        saml_mappings: true,
        keypair: true,
        ..Needs::default()
    };
    prefetch(state, "providers/saml/", needs).await?;
    let login_flows = provider_login_flows(state).await?;
    let keypair = ak
        .signing_keypair()
        .await
        .map_err(|e| lookup_err(state, &format!("keypair `{SELF_SIGNED_KEYPAIR}`"), "signing_key", e))?;
    super::objects::warn_expiry(state, &keypair);
    let all = ak.saml_mappings().await.map_err(|e| state.upstream(e))?;
    let mut mappings = BTreeSet::new();
    for m in &spec.mappings {
        mappings.insert(saml_mapping(state, all, m)?);
    }
    let name_id = match &spec.name_id_mapping {
        Some(m) => Some(saml_mapping(state, all, m)?),
        None => None,
    };
    let binding = if spec.sp_binding_post { "post" } else { "redirect" };
    let issuer_field = super::shapes::saml_issuer_field(&caps);
    let base = ak.public_url().to_string();
    let generated_issuer = if caps.saml_issuer_override {
        format!("{base}/application/saml/{name}/metadata/")
    } else {
        "authentik".to_string()
    };
    let issuer = spec.issuer.clone().unwrap_or(generated_issuer);
    let fingerprint = keypair.fingerprint_sha256.clone().unwrap_or_default();

    let existing: Option<SamlProvider> = find_provider(state, &name).await?;
    let current = match existing {
        Some(current) => current,
        None => 'missing: {
            match state.mode {
                Mode::Check => state.finding("provider-missing", format!("no SAML provider `{name}` in Authentik")),
                Mode::Plan => state.change(format!("create SAML provider `{name}`")),
                Mode::Apply => {
                    let mut body = Map::new();
                    body.insert("name".into(), json!(name));
                    login_flows.insert_into(&mut body);
                    body.insert("acs_url".into(), json!(spec.acs_url));
                    body.insert("audience".into(), json!(spec.audience));
                    if let Some(i) = &spec.issuer {
                        body.insert(issuer_field.into(), json!(i));
                    }
                    body.insert("sp_binding".into(), json!(binding));
                    body.insert("signing_kp".into(), json!(keypair.pk));
                    body.insert("property_mappings".into(), json!(mappings));
                    body.insert("name_id_mapping".into(), json!(name_id));
                    for (field, on) in shapes::saml_sign_switches(&caps, spec.sign_assertion, spec.sign_response) {
                        body.insert(field.into(), json!(on));
                    }
                    let created: SamlProvider = match create_provider(state, &name, body).await? {
                        Created::New(p) => p,
                        Created::Adopted(p) => break 'missing p,
                    };
                    state.change(format!("created SAML provider `{name}`"));
                    let certificate = signing_certificate(state).await?;
                    return Ok(SamlOutcome {
                        pk: Some(created.pk),
                        issuer,
                        fingerprint,
                        certificate,
                    });
                }
            }
            return Ok(SamlOutcome {
                pk: None,
                issuer,
                fingerprint: String::new(),
                certificate: String::new(),
            });
        }
    };

    check_owner(state, &current)?;
    let mut diffs = Vec::new();
    let mut push = |field: &'static str, kind: &'static str, value: Value, message: String| {
        diffs.push(Diff {
            field,
            value,
            kind,
            message,
        });
    };
    if current.acs_url != spec.acs_url {
        push(
            "acs_url",
            "acs-url-mismatch",
            json!(spec.acs_url),
            format!("ACS URL is `{}`, manifest wants `{}`", current.acs_url, spec.acs_url),
        );
    }
    if current.audience != spec.audience {
        push(
            "audience",
            "audience-mismatch",
            json!(spec.audience),
            format!("audience is `{}`, manifest wants `{}`", current.audience, spec.audience),
        );
    }
    let have_issuer = if caps.saml_issuer_override {
        &current.issuer_override
    } else {
        &current.issuer
    };
    if let Some(want) = &spec.issuer
        && have_issuer.as_deref() != Some(want.as_str())
    {
        push(
            issuer_field,
            "issuer-mismatch",
            json!(want),
            format!(
                "issuer is `{}`, manifest wants `{want}`",
                have_issuer.as_deref().unwrap_or("")
            ),
        );
    }
    if current.sp_binding.as_deref() != Some(binding) {
        push(
            "sp_binding",
            "provider-field-mismatch",
            json!(binding),
            format!("SP binding should be `{binding}`"),
        );
    }
    if current.signing_kp.as_deref() != Some(keypair.pk.as_str()) {
        push(
            "signing_kp",
            "signing-key-mismatch",
            json!(keypair.pk),
            format!("signing key mismatch: assertions are not signed with `{SELF_SIGNED_KEYPAIR}`"),
        );
    }
    let have: BTreeSet<String> = current.property_mappings.iter().cloned().collect();
    if have != mappings {
        push(
            "property_mappings",
            "property-mappings-mismatch",
            json!(mappings),
            "SAML property mappings differ from the manifest's".into(),
        );
    }
    if current.name_id_mapping != name_id {
        push(
            "name_id_mapping",
            "provider-field-mismatch",
            json!(name_id),
            "NameID mapping differs from the manifest's".into(),
        );
    }
    for (field, on) in shapes::saml_sign_switches(&caps, spec.sign_assertion, spec.sign_response) {
        let have = if field == "sign_assertion" {
            current.sign_assertion
        } else {
            current.sign_response
        };
        if have != Some(on) {
            push(
                field,
                "provider-field-mismatch",
                json!(on),
                format!("{field} should be {on}"),
            );
        }
    }
    diffs.extend(login_flows.diffs(
        current.authorization_flow.as_deref(),
        current.invalidation_flow.as_deref(),
    ));
    let what = format!("SAML provider `{name}`");
    if let Some(mut body) = settle(state, &what, diffs) {
        // Authentik validates a keypair against the sign switches sent with it, not the stored
        // ones (`SAMLProviderSerializer.validate`, 2024.8 and later): a PATCH of the keypair
        // alone is refused, so the switches travel with it.
        if body.contains_key("signing_kp") {
            for (field, on) in shapes::saml_sign_switches(&caps, spec.sign_assertion, spec.sign_response) {
                body.insert(field.into(), json!(on));
            }
        }
        ak.patch::<SamlProvider>(&format!("providers/saml/{}/", current.pk), &Value::Object(body.clone()))
            .await
            .map_err(|e| state.upstream(e))?;
        updated(state, Written::Provider, &what, &body);
    }
    // What the service must trust: the keypair the provider signs with (after apply, ours).
    let issuer = current
        .url_issuer
        .clone()
        .filter(|_| spec.issuer.is_none())
        .unwrap_or(issuer);
    let certificate = signing_certificate(state).await?;
    Ok(SamlOutcome {
        pk: Some(current.pk),
        issuer,
        fingerprint,
        certificate,
    })
}

async fn signing_certificate(state: &mut RunState) -> Result<String, FlowError> {
    let ak = state.ctx.authentik.clone();
    match ak.signing_certificate().await {
        Ok(pem) => Ok(pem),
        Err(e) => Err(lookup_err(
            state,
            &format!("certificate of keypair `{SELF_SIGNED_KEYPAIR}`"),
            "signing_key",
            e,
        )),
    }
}
