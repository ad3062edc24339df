//! `ensure-proxy-provider` and `attach-to-embedded-outpost`: forward-auth providers and their
//! membership in the embedded outpost, whose `providers` list Authentik replaces on every PATCH.

use serde_json::{Map, Value, json};

use super::objects::{
    Created, Diff, Needs, check_owner, create_provider, find_provider, prefetch, provider_flows, settle, updated,
};
use crate::authentik::models::{Outpost, ProxyProvider};
use crate::capabilities::{FlowError, Mode, RunState, Written};
use crate::runtime::bindings::sso::flow::authentik::{ProxyMode, ProxyProviderSpec};

/// `managed` id of the outpost Authentik runs inside its own server.
pub const EMBEDDED_OUTPOST: &str = "goauthentik.io/outposts/embedded";
/// Where outposts are listed.
pub const OUTPOSTS: &str = "outposts/instances/";

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
    let flows = provider_flows(state).await?;

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
                    flows.insert_into(&mut body);
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
    diffs.extend(flows.diffs(
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

fn embedded(outposts: impl IntoIterator<Item = Outpost>) -> Result<Outpost, String> {
    outposts
        .into_iter()
        .find(|o| o.managed.as_deref() == Some(EMBEDDED_OUTPOST))
        .ok_or_else(|| format!("no outpost with managed = {EMBEDDED_OUTPOST} in Authentik"))
}

/// The embedded outpost as the run's snapshot holds it.
async fn embedded_outpost_snapshot(state: &mut RunState) -> Result<Outpost, FlowError> {
    let ak = state.ctx.authentik.clone();
    ak.snapshot_find::<Outpost>(OUTPOSTS, "managed", EMBEDDED_OUTPOST)
        .await
        .map_err(|e| state.upstream(e))?
        .ok_or_else(|| FlowError::NotFound(format!("no outpost with managed = {EMBEDDED_OUTPOST} in Authentik")))
}

/// Where a service waiting for its provider's attachment learns how it went.
type AttachDone = tokio::sync::oneshot::Sender<Result<(), String>>;

/// Attaches providers to the embedded outpost for every service of the run. Authentik replaces
/// the whole `providers` list on each PATCH, so writes are serialised; services that ask while
/// a write is under way are attached together by the next one (one read and one PATCH for many
/// services, instead of a read-modify-write each).
#[derive(Default)]
pub struct OutpostWriter {
    waiting: std::sync::Mutex<Vec<(u64, AttachDone)>>,
    write: tokio::sync::Mutex<()>,
}

impl OutpostWriter {
    async fn attach(&self, ak: &crate::authentik::Authentik, pk: u64) -> Result<(), String> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.queue().push((pk, done));
        {
            let _turn = self.write.lock().await;
            // Empty: an earlier writer took this request along.
            if !self.queue().is_empty() {
                // Whoever queues while the outpost is being read joins this write.
                let read = ak
                    .list::<Outpost>(OUTPOSTS, &[("managed__iexact", EMBEDDED_OUTPOST.to_string())])
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(embedded);
                let batch = std::mem::take(&mut *self.queue());
                let pks: Vec<u64> = batch.iter().map(|(pk, _)| *pk).collect();
                let outcome = match read {
                    Ok(outpost) => Self::write_batch(ak, outpost, &pks).await,
                    Err(e) => Err(e),
                };
                for (_, done) in batch {
                    let _ = done.send(outcome.clone());
                }
            }
        }
        result
            .await
            .unwrap_or_else(|_| Err("the outpost update was interrupted; run fix again".into()))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<(u64, AttachDone)>> {
        self.waiting.lock().expect("outpost queue")
    }

    /// Adds the missing providers to the outpost as just read, in one PATCH, and checks
    /// Authentik's answer holds them all.
    async fn write_batch(ak: &crate::authentik::Authentik, outpost: Outpost, pks: &[u64]) -> Result<(), String> {
        let mut providers = outpost.providers.clone();
        let missing: Vec<u64> = pks.iter().copied().filter(|pk| !providers.contains(pk)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        providers.extend(&missing);
        let path = format!("{OUTPOSTS}{}/", outpost.pk);
        let saved: Outpost = ak
            .patch(&path, &json!({ "providers": providers }))
            .await
            .map_err(|e| e.to_string())?;
        // Any later PATCH (Authentik's own or another tool's) replaces the list again; the
        // answer to ours tells what was stored.
        match missing.iter().find(|pk| !saved.providers.contains(pk)) {
            Some(pk) => Err(format!(
                "{} did not keep proxy provider {pk} after it was attached (another writer?); run fix again",
                outpost.name
            )),
            None => Ok(()),
        }
    }
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
