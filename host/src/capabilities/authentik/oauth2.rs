//! `ensure-oauth2-provider` and `ensure-application`: build the desired state for the server's
//! version, compare it with what Authentik holds (normalised: redirect URIs and mappings as sets),
//! then per mode create / PATCH only the differing fields, record findings, or record the plan.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::objects::{
    APPLICATIONS, Created, Diff, Needs, check_owner, create_or_adopt, create_provider, find_provider, lookup_err,
    prefetch, provider_login_flows, settle, updated,
};
use super::shapes::{self, Uri};
use crate::authentik::SELF_SIGNED_KEYPAIR;
use crate::authentik::models::{Application, OAuth2Provider, ScopeMapping};
use crate::bindings::sso::flow::authentik::{ApplicationSpec, ClientType, Oauth2ProviderSpec, ScopeMappingSpec};
use crate::capabilities::state::{FlowError, Mode, RunState, Written};

pub struct ProviderOutcome {
    pub pk: Option<u64>,
    pub client_id: String,
    pub client_secret: Option<String>,
}

/// Redirect URIs as Authentik holds them, split into the ones ssoctl manages (authorization)
/// and the others (post-logout URIs, 2026.5+), which are kept as they are.
fn registered_uris(p: &OAuth2Provider) -> (BTreeSet<Uri>, Vec<Value>) {
    match &p.redirect_uris {
        Value::String(text) => (
            text.split_whitespace()
                .map(|l| Uri {
                    regex: true,
                    url: l.to_string(),
                })
                .collect(),
            Vec::new(),
        ),
        Value::Array(items) => {
            let mut managed = BTreeSet::new();
            let mut other = Vec::new();
            for item in items {
                if item
                    .get("redirect_uri_type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t != "authorization")
                {
                    other.push(item.clone());
                    continue;
                }
                managed.insert(Uri {
                    regex: item.get("matching_mode").and_then(Value::as_str) == Some("regex"),
                    url: item.get("url").and_then(Value::as_str).unwrap_or("").to_string(),
                });
            }
            (managed, other)
        }
        _ => (BTreeSet::new(), Vec::new()),
    }
}

fn show_uris(uris: &BTreeSet<Uri>) -> String {
    if uris.is_empty() {
        return "none".into();
    }
    uris.iter()
        .map(|u| {
            if u.regex {
                format!("{} (regex)", u.url)
            } else {
                u.url.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn ensure_provider(state: &mut RunState, spec: &Oauth2ProviderSpec) -> Result<ProviderOutcome, FlowError> {
    let ak = state.ctx.authentik.clone();
    let caps = ak.request_shapes().await.map_err(|e| state.upstream(e))?.clone();
    let name = state.service.slug.clone();
    let needs = Needs {
        scope_mappings: true,
        keypair: spec.sign_tokens,
        ..Needs::default()
    };
    prefetch(state, "providers/oauth2/", needs).await?;

    // Desired state, in this server's shapes.
    let login_flows = provider_login_flows(state).await?;
    let all_mappings = ak.scope_mappings().await.map_err(|e| state.upstream(e))?;
    let mut mapping_pks = BTreeSet::new();
    for scope in &spec.scopes {
        let managed = format!("goauthentik.io/providers/oauth2/scope-{scope}");
        let m = all_mappings
            .iter()
            .find(|m| m.managed.as_deref() == Some(&managed))
            .ok_or_else(|| {
                FlowError::NotFound(format!(
                    "scope mapping `{managed}` (scope `{scope}`) not found in Authentik"
                ))
            })?;
        mapping_pks.insert(m.pk.clone());
    }
    for name in &spec.custom_scopes {
        match state.custom_mappings.iter().find(|(n, _)| n == name) {
            Some((_, Some(pk))) => {
                mapping_pks.insert(pk.clone());
            }
            // Not created yet (check/plan): its absence is already a finding or a planned change.
            Some((_, None)) => {}
            None => {
                return Err(FlowError::Denied(format!(
                    "scope mapping `{name}` was not ensured by `{}` in this run; a provider may only use the \
                     defaults and the service's own mappings",
                    state.service.name
                )));
            }
        }
    }
    let mapping_names: Vec<(String, String)> = all_mappings
        .iter()
        .map(|m| (m.pk.clone(), m.managed.clone().unwrap_or_else(|| m.scope_name.clone())))
        .collect();
    let signing_key = if spec.sign_tokens {
        let keypair = ak
            .signing_keypair()
            .await
            .map_err(|e| lookup_err(state, &format!("keypair `{SELF_SIGNED_KEYPAIR}`"), "signing_key", e))?;
        super::objects::warn_expiry(state, &keypair);
        Some(keypair.pk)
    } else {
        state.warn(format!(
            "provider `{}` has no signing key: ID tokens fall back to HS256, signed with the client secret",
            state.service.slug
        ));
        None
    };
    for uri in spec.redirect_uris.iter().filter(|u| u.url.starts_with("http://")) {
        state.warn(format!(
            "redirect URI {} uses http://: authorization codes would travel in clear",
            uri.url
        ));
    }
    let wanted_uris = shapes::redirect_uris(&caps, &spec.redirect_uris);
    let grant_types = shapes::grant_types(&caps, &spec.grant_types);
    let client_type = match spec.client_type {
        ClientType::Confidential => "confidential",
        ClientType::Public => "public",
    };
    let issuer_mode = if spec.issuer_per_provider {
        "per_provider"
    } else {
        "global"
    };

    let uris_json = |uris: &BTreeSet<Uri>, keep: &[Value]| shapes::redirect_uris_body(&caps, uris, keep);

    // Find the existing provider by exact name (filters are re-checked client-side).
    let existing: Option<OAuth2Provider> = find_provider(state, &name).await?;

    let current = match existing {
        Some(current) => current,
        None => 'missing: {
            return match state.mode {
                Mode::Check => {
                    state.finding("provider-missing", format!("no OAuth2 provider `{name}` in Authentik"));
                    Ok(ProviderOutcome {
                        pk: None,
                        client_id: String::new(),
                        client_secret: None,
                    })
                }
                Mode::Plan => {
                    state.change(format!("create OAuth2 provider `{name}`"));
                    Ok(ProviderOutcome {
                        pk: None,
                        client_id: "(assigned on create)".into(),
                        client_secret: None,
                    })
                }
                Mode::Apply => {
                    let mut body = Map::new();
                    body.insert("name".into(), json!(name));
                    login_flows.insert_into(&mut body);
                    body.insert("client_type".into(), json!(client_type));
                    body.insert("redirect_uris".into(), uris_json(&wanted_uris, &[]));
                    body.insert("property_mappings".into(), json!(mapping_pks));
                    body.insert("signing_key".into(), json!(signing_key));
                    body.insert("issuer_mode".into(), json!(issuer_mode));
                    body.insert(
                        "include_claims_in_id_token".into(),
                        json!(spec.include_claims_in_id_token),
                    );
                    if let Some(g) = &grant_types {
                        body.insert("grant_types".into(), json!(g));
                    }
                    if let Some(m) = &spec.sub_mode {
                        body.insert("sub_mode".into(), json!(m));
                    }
                    if let Some(v) = &spec.access_token_validity {
                        body.insert("access_token_validity".into(), json!(v));
                    }
                    let created: OAuth2Provider = match create_provider(state, &name, body).await? {
                        Created::New(p) => p,
                        Created::Adopted(p) => break 'missing p,
                    };
                    state.change(format!("created OAuth2 provider `{name}`"));
                    Ok(ProviderOutcome {
                        pk: Some(created.pk),
                        client_id: created.client_id,
                        client_secret: created.client_secret,
                    })
                }
            };
        }
    };

    check_owner(state, &current)?;

    let mut diffs: Vec<Diff> = Vec::new();
    let (have_uris, keep_uris) = registered_uris(&current);
    if have_uris != wanted_uris {
        diffs.push(Diff {
            field: "redirect_uris",
            value: uris_json(&wanted_uris, &keep_uris),
            kind: "redirect-uri-mismatch",
            message: format!(
                "redirect URI mismatch: Authentik has {}, manifest wants {}",
                show_uris(&have_uris),
                show_uris(&wanted_uris)
            ),
        });
    }
    diffs.extend(login_flows.diffs(
        current.authorization_flow.as_deref(),
        current.invalidation_flow.as_deref(),
    ));
    let have_mappings: BTreeSet<String> = current.property_mappings.iter().cloned().collect();
    if have_mappings != mapping_pks {
        let label = |pk: &String| {
            mapping_names
                .iter()
                .find(|(p, _)| p == pk)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| pk.clone())
        };
        let missing: Vec<String> = mapping_pks.difference(&have_mappings).map(label).collect();
        let extra: Vec<String> = have_mappings.difference(&mapping_pks).map(label).collect();
        diffs.push(Diff {
            field: "property_mappings",
            value: json!(mapping_pks),
            kind: "scope-mappings-mismatch",
            message: format!(
                "scope mappings differ: missing [{}], extra [{}]",
                missing.join(", "),
                extra.join(", ")
            ),
        });
    }
    if current.signing_key != signing_key {
        diffs.push(Diff {
            field: "signing_key",
            value: json!(signing_key),
            kind: "signing-key-mismatch",
            message: match signing_key {
                Some(_) => format!("signing key mismatch: tokens are not signed with `{SELF_SIGNED_KEYPAIR}`"),
                None => "signing key mismatch: the manifest wants unsigned (HS256) tokens".into(),
            },
        });
    }
    if current.client_type.as_deref() != Some(client_type) {
        diffs.push(Diff {
            field: "client_type",
            value: json!(client_type),
            kind: "client-type-mismatch",
            message: format!(
                "client type is `{}`, manifest wants `{client_type}`",
                current.client_type.as_deref().unwrap_or("?")
            ),
        });
    }
    if let Some(want) = &grant_types {
        let have: BTreeSet<String> = current.grant_types.clone().unwrap_or_default().into_iter().collect();
        if &have != want {
            let show = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
            let hint = if have.is_empty() {
                " (every login fails with \"Invalid grant_type\")"
            } else {
                ""
            };
            diffs.push(Diff {
                field: "grant_types",
                value: json!(want),
                kind: "grant-types-mismatch",
                message: format!(
                    "grant types are [{}]{hint}, manifest wants [{}]",
                    show(&have),
                    show(want)
                ),
            });
        }
    }
    if current.issuer_mode.as_deref() != Some(issuer_mode) {
        diffs.push(Diff {
            field: "issuer_mode",
            value: json!(issuer_mode),
            kind: "issuer-mismatch",
            message: format!(
                "issuer mode is `{}`, manifest wants `{issuer_mode}`",
                current.issuer_mode.as_deref().unwrap_or("?")
            ),
        });
    }
    if current.include_claims_in_id_token != Some(spec.include_claims_in_id_token) {
        diffs.push(Diff {
            field: "include_claims_in_id_token",
            value: json!(spec.include_claims_in_id_token),
            kind: "provider-field-mismatch",
            message: format!(
                "include_claims_in_id_token should be {}",
                spec.include_claims_in_id_token
            ),
        });
    }
    if let Some(m) = &spec.sub_mode
        && current.sub_mode.as_deref() != Some(m.as_str())
    {
        diffs.push(Diff {
            field: "sub_mode",
            value: json!(m),
            kind: "provider-field-mismatch",
            message: format!("sub_mode should be `{m}`"),
        });
    }
    if let Some(v) = &spec.access_token_validity
        && current.access_token_validity.as_deref() != Some(v.as_str())
    {
        diffs.push(Diff {
            field: "access_token_validity",
            value: json!(v),
            kind: "provider-field-mismatch",
            message: format!("access_token_validity should be `{v}`"),
        });
    }

    let mut client_id = current.client_id.clone();
    let mut client_secret = current.client_secret.clone();
    let what = format!("OAuth2 provider `{name}`");
    if let Some(body) = settle(state, &what, diffs) {
        let updated_provider: OAuth2Provider = ak
            .patch(
                &format!("providers/oauth2/{}/", current.pk),
                &Value::Object(body.clone()),
            )
            .await
            .map_err(|e| state.upstream(e))?;
        client_id = updated_provider.client_id;
        client_secret = updated_provider.client_secret;
        updated(state, Written::Provider, &what, &body);
    }
    Ok(ProviderOutcome {
        pk: Some(current.pk),
        client_id,
        client_secret,
    })
}

pub async fn ensure_application(state: &mut RunState, spec: &ApplicationSpec) -> Result<(), FlowError> {
    let ak = state.ctx.authentik.clone();
    let slug = spec.slug.clone();
    let path = format!("core/applications/{slug}/");
    let existing: Option<Application> = if state.wrote(Written::Application) {
        ak.get_opt(&path).await
    } else {
        ak.snapshot_find(APPLICATIONS, "slug", &slug).await
    }
    .map_err(|e| state.upstream(e))?;
    let provider = state.provider_pk;
    let app = match existing {
        Some(app) => app,
        None => 'missing: {
            match state.mode {
                Mode::Check => state.finding("application-missing", format!("Authentik application `{slug}` missing")),
                Mode::Plan => state.change(format!("create application `{slug}`")),
                Mode::Apply => {
                    let mut body = json!({
                        "name": spec.name, "slug": slug, "provider": provider,
                        "open_in_new_tab": spec.open_in_new_tab, "policy_engine_mode": "any",
                    });
                    if let Some(url) = &spec.launch_url {
                        body["meta_launch_url"] = json!(url);
                    }
                    let post = || ak.post::<Application>("core/applications/", &body);
                    let lookup = || ak.get_opt::<Application>(&path);
                    match create_or_adopt(state, &format!("application `{slug}`"), post, lookup).await? {
                        Created::New(created) => {
                            state.application = Some(created.pk);
                            state.application_created = true;
                        }
                        Created::Adopted(app) => break 'missing app,
                    }
                    state.mark_written(Written::Application);
                    state.change(format!("created application `{slug}`"));
                }
            }
            if state.application.is_none() {
                state.application = Some(None);
            }
            return Ok(());
        }
    };
    state.application = Some(app.pk.clone());

    let mut diffs: Vec<Diff> = Vec::new();
    if provider.is_some() && app.provider != provider {
        diffs.push(Diff {
            field: "provider",
            value: json!(provider),
            kind: "application-provider-mismatch",
            message: format!(
                "application `{slug}` is not linked to its provider `{}`",
                state.service.slug
            ),
        });
    }
    if app.name != spec.name {
        diffs.push(Diff {
            field: "name",
            value: json!(spec.name),
            kind: "application-field-mismatch",
            message: format!("application name is `{}`, manifest wants `{}`", app.name, spec.name),
        });
    }
    let have_launch = app.meta_launch_url.clone().filter(|u| !u.is_empty());
    if let Some(url) = &spec.launch_url
        && have_launch.as_deref() != Some(url.as_str())
    {
        diffs.push(Diff {
            field: "meta_launch_url",
            value: json!(url),
            kind: "application-field-mismatch",
            message: format!(
                "launch URL is `{}`, manifest wants `{url}`",
                have_launch.as_deref().unwrap_or("unset")
            ),
        });
    }
    if app.open_in_new_tab != Some(spec.open_in_new_tab) {
        diffs.push(Diff {
            field: "open_in_new_tab",
            value: json!(spec.open_in_new_tab),
            kind: "application-field-mismatch",
            message: format!("open_in_new_tab should be {}", spec.open_in_new_tab),
        });
    }
    let what = format!("application `{slug}`");
    if let Some(body) = settle(state, &what, diffs) {
        ak.patch::<Application>(&path, &Value::Object(body.clone()))
            .await
            .map_err(|e| state.upstream(e))?;
        updated(state, Written::Application, &what, &body);
    }
    Ok(())
}

/// The service's own scope mapping, named `ssoctl <slug> <scope>`.
pub async fn ensure_scope_mapping(state: &mut RunState, spec: &ScopeMappingSpec) -> Result<String, FlowError> {
    let scope = spec.scope_name.trim();
    if scope.is_empty() || scope.len() > 100 || scope.contains(char::is_whitespace) {
        return Err(FlowError::Invalid(format!(
            "scope name `{}` must be one word of at most 100 characters",
            spec.scope_name
        )));
    }
    let ak = state.ctx.authentik.clone();
    let path = ak
        .request_shapes()
        .await
        .map_err(|e| state.upstream(e))?
        .scope_mapping_path;
    let name = format!("ssoctl {} {scope}", state.service.slug);
    // From the run's list of every scope mapping (which the provider reads anyway), or from the
    // server once this run has written.
    let existing = if state.wrote(Written::ScopeMapping) {
        ak.list::<ScopeMapping>(path, &[("name", name.clone())])
            .await
            .map_err(|e| state.upstream(e))?
            .into_iter()
            .find(|m| m.name == name)
    } else {
        ak.scope_mappings()
            .await
            .map_err(|e| state.upstream(e))?
            .iter()
            .find(|m| m.name == name)
            .cloned()
    };
    let pk = match existing {
        None => match state.mode {
            Mode::Check => {
                state.finding("scope-mapping-missing", format!("scope mapping `{name}` missing"));
                None
            }
            Mode::Plan => {
                state.change(format!("create scope mapping `{name}`"));
                None
            }
            Mode::Apply => {
                let body = json!({"name": name, "scope_name": scope, "expression": spec.expression, "description": spec.description});
                let post = || ak.post::<ScopeMapping>(path, &body);
                let lookup = || async {
                    let list = ak.list::<ScopeMapping>(path, &[("name", name.clone())]).await?;
                    Ok(list.into_iter().find(|m| m.name == name))
                };
                let created = match create_or_adopt(state, &format!("scope mapping `{name}`"), post, lookup).await? {
                    Created::New(created) => created,
                    Created::Adopted(theirs) => {
                        let pk = compare_scope_mapping(state, path, &name, scope, spec, theirs).await?;
                        state.custom_mappings.push((name.clone(), pk));
                        return Ok(name);
                    }
                };
                state.mark_written(Written::ScopeMapping);
                state.change(format!("created scope mapping `{name}`"));
                Some(created.pk)
            }
        },
        Some(current) => compare_scope_mapping(state, path, &name, scope, spec, current).await?,
    };
    state.custom_mappings.push((name.clone(), pk));
    Ok(name)
}

/// Compares the scope mapping `current` with the spec and, when applying, PATCHes what differs.
async fn compare_scope_mapping(
    state: &mut RunState,
    path: &str,
    name: &str,
    scope: &str,
    spec: &ScopeMappingSpec,
    current: ScopeMapping,
) -> Result<Option<String>, FlowError> {
    let ak = state.ctx.authentik.clone();
    {
        {
            let mut diffs = Vec::new();
            let mut differs = |field: &'static str, have: &str, want: &str| {
                if have != want {
                    diffs.push(Diff {
                        field,
                        value: json!(want),
                        kind: "scope-mapping-mismatch",
                        message: format!("scope mapping `{name}`: {field} differs from the manifest"),
                    });
                }
            };
            differs("scope_name", &current.scope_name, scope);
            differs("expression", &current.expression, &spec.expression);
            differs("description", &current.description, &spec.description);
            let what = format!("scope mapping `{name}`");
            if let Some(body) = settle(state, &what, diffs) {
                ak.patch::<ScopeMapping>(&format!("{path}{}/", current.pk), &Value::Object(body.clone()))
                    .await
                    .map_err(|e| state.upstream(e))?;
                updated(state, Written::ScopeMapping, &what, &body);
            }
            Ok(Some(current.pk))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_uris_keep_logout_entries_aside() {
        let p: OAuth2Provider = serde_json::from_value(json!({
            "pk": 1, "name": "g",
            "redirect_uris": [
                {"matching_mode": "strict", "url": "https://g/cb", "redirect_uri_type": "authorization"},
                {"matching_mode": "strict", "url": "https://g/bye", "redirect_uri_type": "logout"},
                {"matching_mode": "regex", "url": "https://.*/cb"}
            ]
        }))
        .unwrap();
        let (managed, kept) = registered_uris(&p);
        assert_eq!(managed.len(), 2);
        assert_eq!(kept.len(), 1);
        let old: OAuth2Provider =
            serde_json::from_value(json!({"pk": 1, "name": "g", "redirect_uris": "a\nb\n"})).unwrap();
        assert_eq!(registered_uris(&old).0.len(), 2);
    }
}
