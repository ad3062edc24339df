//! `ensure-proxy-provider` and `attach-to-embedded-outpost`: forward-auth providers and their
//! membership in the embedded outpost, whose `providers` list Authentik replaces on every PATCH.

use serde_json::{Map, Value, json};

use super::objects::{
    Created, Diff, Needs, check_owner, create_provider, find_provider, prefetch, provider_login_flows, settle, updated,
};
use crate::authentik::models::{Outpost, ProxyProvider};
use crate::bindings::sso::flow::authentik::{ProxyMode, ProxyProviderSpec};
use crate::capabilities::state::{FlowError, Mode, RunState, Written};

use super::outposts::{EMBEDDED_OUTPOST, OUTPOSTS};

fn mode_name(mode: ProxyMode) -> &'static str {
    match mode {
        ProxyMode::ForwardSingle => "forward_single",
        ProxyMode::ForwardDomain => "forward_domain",
        ProxyMode::Proxy => "proxy",
    }
}

fn check_url(field: &str, url: &str) -> Result<(), FlowError> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(FlowError::Invalid(format!("{field} `{url}` is not an http(s) URL"))),
    }
}

pub async fn ensure_provider(state: &mut RunState, spec: &ProxyProviderSpec) -> Result<Option<u64>, FlowError> {
    let mode = mode_name(spec.mode);
    check_url("external host", &spec.external_host)?;
    let internal_host = match (spec.mode, &spec.internal_host) {
        (ProxyMode::Proxy, Some(h)) => {
            check_url("internal host", h)?;
            Some(h.clone())
        }
        (ProxyMode::Proxy, None) => {
            return Err(FlowError::Invalid(
                "mode `proxy` needs an internal host (sso.internal_host)".into(),
            ));
        }
        _ => None,
    };
    let cookie_domain = match (spec.mode, &spec.cookie_domain) {
        (ProxyMode::ForwardDomain, None) => {
            return Err(FlowError::Invalid(
                "mode `forward_domain` needs sso.cookie_domain".into(),
            ));
        }
        (ProxyMode::ForwardDomain, Some(d)) => Some(d.clone()),
        _ => None,
    };
    let ak = state.ctx.authentik.clone();
    let name = state.service.slug.clone();
    let needs = Needs {
        outposts: true,
        ..Needs::default()
    };
    prefetch(state, "providers/proxy/", needs).await?;
    let login_flows = provider_login_flows(state).await?;

    let existing: Option<ProxyProvider> = find_provider(state, &name).await?;
    let current = match existing {
        Some(current) => current,
        None => 'missing: {
            match state.mode {
                Mode::Check => state.finding("provider-missing", format!("no proxy provider `{name}` in Authentik")),
                Mode::Plan => state.change(format!("create proxy provider `{name}` ({mode})")),
                Mode::Apply => {
                    let mut body = Map::new();
                    body.insert("name".into(), json!(name));
                    login_flows.insert_into(&mut body);
                    body.insert("mode".into(), json!(mode));
                    body.insert("external_host".into(), json!(spec.external_host));
                    if let Some(h) = &internal_host {
                        body.insert("internal_host".into(), json!(h));
                    }
                    if let Some(d) = &cookie_domain {
                        body.insert("cookie_domain".into(), json!(d));
                    }
                    if let Some(r) = &spec.skip_path_regex {
                        body.insert("skip_path_regex".into(), json!(r));
                    }
                    if let Some(v) = &spec.access_token_validity {
                        body.insert("access_token_validity".into(), json!(v));
                    }
                    let created: ProxyProvider = match create_provider(state, &name, body).await? {
                        Created::New(p) => p,
                        Created::Adopted(p) => break 'missing p,
                    };
                    state.change(format!("created proxy provider `{name}` ({mode})"));
                    return Ok(Some(created.pk));
                }
            }
            return Ok(None);
        }
    };

    check_owner(state, &current)?;
    let mut diffs = Vec::new();
    let mut differs = |field: &'static str, kind: &'static str, have: Option<&str>, want: Option<&str>| {
        if let Some(want) = want
            && have.unwrap_or("") != want
        {
            diffs.push(Diff {
                field,
                value: json!(want),
                kind,
                message: format!(
                    "{} is `{}`, manifest wants `{want}`",
                    field.replace('_', " "),
                    have.unwrap_or("")
                ),
            });
        }
    };
    differs("mode", "proxy-mode-mismatch", current.mode.as_deref(), Some(mode));
    differs(
        "external_host",
        "external-host-mismatch",
        Some(&current.external_host),
        Some(&spec.external_host),
    );
    differs(
        "internal_host",
        "provider-field-mismatch",
        current.internal_host.as_deref(),
        internal_host.as_deref(),
    );
    differs(
        "cookie_domain",
        "provider-field-mismatch",
        current.cookie_domain.as_deref(),
        cookie_domain.as_deref(),
    );
    differs(
        "skip_path_regex",
        "provider-field-mismatch",
        current.skip_path_regex.as_deref(),
        spec.skip_path_regex.as_deref(),
    );
    differs(
        "access_token_validity",
        "provider-field-mismatch",
        current.access_token_validity.as_deref(),
        spec.access_token_validity.as_deref(),
    );
    diffs.extend(login_flows.diffs(
        current.authorization_flow.as_deref(),
        current.invalidation_flow.as_deref(),
    ));
    let what = format!("proxy provider `{name}`");
    if let Some(mut body) = settle(state, &what, diffs) {
        // Authentik validates the body alone and assumes mode `proxy` without one.
        body.insert("mode".into(), json!(mode));
        if let Some(h) = &internal_host {
            body.insert("internal_host".into(), json!(h));
        }
        ak.patch::<ProxyProvider>(
            &format!("providers/proxy/{}/", current.pk),
            &Value::Object(body.clone()),
        )
        .await
        .map_err(|e| state.upstream(e))?;
        updated(state, Written::Provider, &what, &body);
    }
    Ok(Some(current.pk))
}

/// The embedded outpost as the run's snapshot holds it.
async fn embedded_outpost_snapshot(state: &mut RunState) -> Result<Outpost, FlowError> {
    let ak = state.ctx.authentik.clone();
    ak.snapshot_find::<Outpost>(OUTPOSTS, "managed", EMBEDDED_OUTPOST)
        .await
        .map_err(|e| state.upstream(e))?
        .ok_or_else(|| FlowError::NotFound(format!("no outpost with managed = {EMBEDDED_OUTPOST} in Authentik")))
}

pub async fn attach_to_embedded_outpost(state: &mut RunState, provider: Option<u64>) -> Result<String, FlowError> {
    let ctx = state.ctx.clone();
    let outpost = embedded_outpost_snapshot(state).await?;
    let name = state.service.slug.clone();
    let Some(pk) = provider else {
        // Check/plan with no provider yet: its creation already says it all.
        if state.mode == Mode::Plan {
            state.change(format!("attach proxy provider `{name}` to {}", outpost.name));
        }
        return Ok(outpost.name);
    };
    if outpost.providers.contains(&pk) {
        return Ok(outpost.name);
    }
    match state.mode {
        Mode::Check => state.finding(
            "outpost-detached",
            format!(
                "proxy provider `{name}` is not attached to {} (forward auth answers 404)",
                outpost.name
            ),
        ),
        Mode::Plan => state.change(format!("attach proxy provider `{name}` to {}", outpost.name)),
        Mode::Apply => {
            ctx.outposts
                .attach(&ctx.authentik, pk)
                .await
                .map_err(|m| FlowError::Upstream(ctx.redactor.redact(&m)))?;
            state.change(format!("attached proxy provider `{name}` to {}", outpost.name));
        }
    }
    Ok(outpost.name)
}
