//! Pieces every `ensure-*` capability shares: manifest settings, the default flows, and what to
//! do with the fields that differ in each mode (findings, a planned change, or one PATCH).

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::outposts::OUTPOSTS;
use crate::authentik::models::{OAuth2Provider, ProxyProvider, SamlProvider};
use crate::authentik::{AkError, Authentik};
use crate::capabilities::state::{FlowError, Mode, RunState, Written};

pub const DEFAULT_AUTHORIZATION_FLOW: &str = "default-provider-authorization-implicit-consent";
pub const DEFAULT_INVALIDATION_FLOW: &str = "default-provider-invalidation-flow";

/// A field that differs: the value to PATCH and how to describe the drift.
pub struct Diff {
    pub field: &'static str,
    pub value: Value,
    pub kind: &'static str,
    pub message: String,
}

/// A scalar from the manifest's `sso:` block.
pub fn setting<'a>(state: &'a RunState, key: &str) -> Option<&'a str> {
    state.setting(key)
}

/// Maps lookup failures to errors that tell the operator what to change.
pub fn lookup_err(state: &RunState, what: &str, setting_key: &str, e: AkError) -> FlowError {
    match e {
        AkError::NotFound { .. } => FlowError::NotFound(format!(
            "{what} not found in Authentik; create it or set sso.{setting_key} in {}",
            state.service.manifest_path.display()
        )),
        other => state.upstream(other),
    }
}

/// The flows a provider uses, from `sso.authorization_flow` / `sso.invalidation_flow` or the defaults.
pub struct ProviderLoginFlows {
    pub authorization_slug: String,
    pub authorization: String,
    /// Only on servers that have invalidation flows (2024.10 and later).
    pub invalidation: Option<String>,
}

impl ProviderLoginFlows {
    /// The flow fields of a create request.
    pub fn insert_into(&self, body: &mut Map<String, Value>) {
        body.insert("authorization_flow".into(), Value::String(self.authorization.clone()));
        if let Some(f) = &self.invalidation {
            body.insert("invalidation_flow".into(), Value::String(f.clone()));
        }
    }

    /// Differences between these flows and a provider's.
    pub fn diffs(&self, authorization: Option<&str>, invalidation: Option<&str>) -> Vec<Diff> {
        let mut diffs = Vec::new();
        if authorization != Some(self.authorization.as_str()) {
            diffs.push(Diff {
                field: "authorization_flow",
                value: Value::String(self.authorization.clone()),
                kind: "authorization-flow-mismatch",
                message: format!("authorization flow is not `{}`", self.authorization_slug),
            });
        }
        if let Some(f) = &self.invalidation
            && invalidation != Some(f.as_str())
        {
            diffs.push(Diff {
                field: "invalidation_flow",
                value: Value::String(f.clone()),
                kind: "invalidation-flow-mismatch",
                message: "invalidation flow differs from the manifest's".into(),
            });
        }
        diffs
    }
}

/// Looks the provider flows up (cached for the run).
pub async fn provider_login_flows(state: &mut RunState) -> Result<ProviderLoginFlows, FlowError> {
    let ak = state.ctx.authentik.clone();
    let caps = ak.request_shapes().await.map_err(|e| state.upstream(e))?.clone();
    let authorization_slug = setting(state, "authorization_flow")
        .unwrap_or(DEFAULT_AUTHORIZATION_FLOW)
        .to_string();
    let auth = ak.login_flow(&authorization_slug).await.map_err(|e| {
        lookup_err(
            state,
            &format!("authorization flow `{authorization_slug}`"),
            "authorization_flow",
            e,
        )
    })?;
    let invalidation = if caps.invalidation_flow {
        let slug = setting(state, "invalidation_flow")
            .unwrap_or(DEFAULT_INVALIDATION_FLOW)
            .to_string();
        let flow = ak
            .login_flow(&slug)
            .await
            .map_err(|e| lookup_err(state, &format!("invalidation flow `{slug}`"), "invalidation_flow", e))?;
        Some(flow.pk)
    } else {
        None
    };
    Ok(ProviderLoginFlows {
        authorization_slug,
        authorization: auth.pk,
        invalidation,
    })
}

/// Settles the differences of an existing object per mode: check records each as a finding, plan
/// records one planned update, apply returns the PATCH body (only the differing fields) for the
/// caller to send, then record with [`updated`].
pub fn settle(state: &mut RunState, what: &str, diffs: Vec<Diff>) -> Option<Map<String, Value>> {
    if diffs.is_empty() {
        return None;
    }
    match state.mode {
        Mode::Check => {
            for d in diffs {
                state.finding(d.kind, d.message);
            }
            None
        }
        Mode::Plan => {
            let fields: Vec<&str> = diffs.iter().map(|d| d.field).collect();
            state.change(format!("update {what}: {}", fields.join(", ")));
            None
        }
        Mode::Apply => Some(diffs.into_iter().map(|d| (d.field.to_string(), d.value)).collect()),
    }
}

/// Records an update of an object of `kind` sent with the body [`settle`] returned.
pub fn updated(state: &mut RunState, kind: Written, what: &str, body: &Map<String, Value>) {
    state.mark_written(kind);
    let fields: Vec<&str> = body.keys().map(String::as_str).collect();
    state.change(format!("updated {what}: {}", fields.join(", ")));
}

/// A provider ssoctl finds by its exact name and owns only while it serves the service's application.
pub trait Provider: DeserializeOwned {
    /// e.g. `OAuth2 provider`, for messages.
    const KIND: &'static str;
    /// List endpoint, e.g. `providers/oauth2/`.
    const PATH: &'static str;
    /// The list filter for an exact name (the proxy list only has `name__iexact`).
    const NAME_FILTER: &'static str;
    /// Authentik's `meta_model_name` of this type.
    const MODEL: &'static str;
    fn name(&self) -> &str;
    fn assigned_application(&self) -> Option<&str>;
}

impl Provider for OAuth2Provider {
    const KIND: &'static str = "OAuth2 provider";
    const PATH: &'static str = "providers/oauth2/";
    const NAME_FILTER: &'static str = "name";
    const MODEL: &'static str = "authentik_providers_oauth2.oauth2provider";
    fn name(&self) -> &str {
        &self.name
    }
    fn assigned_application(&self) -> Option<&str> {
        self.assigned_application_slug.as_deref()
    }
}

impl Provider for ProxyProvider {
    const KIND: &'static str = "proxy provider";
    const PATH: &'static str = "providers/proxy/";
    const NAME_FILTER: &'static str = "name__iexact";
    const MODEL: &'static str = "authentik_providers_proxy.proxyprovider";
    fn name(&self) -> &str {
        &self.name
    }
    fn assigned_application(&self) -> Option<&str> {
        self.assigned_application_slug.as_deref()
    }
}

impl Provider for SamlProvider {
    const KIND: &'static str = "SAML provider";
    const PATH: &'static str = "providers/saml/";
    const NAME_FILTER: &'static str = "name";
    const MODEL: &'static str = "authentik_providers_saml.samlprovider";
    fn name(&self) -> &str {
        &self.name
    }
    fn assigned_application(&self) -> Option<&str> {
        self.assigned_application_slug.as_deref()
    }
}

/// The import name of the `authentik` interface, without its version.
const AUTHENTIK_INTERFACE: &str = "sso:flow/authentik@";

/// Where applications are listed.
pub const APPLICATIONS: &str = "core/applications/";

/// What a provider's run reads besides its own kind of provider and the applications.
#[derive(Clone, Copy, Default)]
pub struct Needs {
    pub scope_mappings: bool,
    pub saml_mappings: bool,
    pub keypair: bool,
    pub outposts: bool,
}

/// Reads everything a provider's run will look at together: the run's first service waits one
/// round trip instead of one per kind, the others find it all in the run's snapshots. A missing
/// keypair is left for the lookup that needs it to report in its own words.
pub async fn prefetch(state: &mut RunState, provider_path: &str, needs: Needs) -> Result<(), FlowError> {
    let ak = state.ctx.authentik.clone();
    let ak = &ak;
    let result = tokio::try_join!(
        ak.snapshot(provider_path),
        ak.snapshot(APPLICATIONS),
        async {
            if needs.scope_mappings {
                ak.scope_mappings().await.map(|_| ())
            } else {
                Ok(())
            }
        },
        async {
            if needs.saml_mappings {
                ak.saml_mappings().await.map(|_| ())
            } else {
                Ok(())
            }
        },
        async {
            match needs.keypair {
                true => match ak.signing_keypair().await {
                    Err(AkError::NotFound { .. }) | Ok(_) => Ok(()),
                    Err(e) => Err(e),
                },
                false => Ok(()),
            }
        },
        async {
            if needs.outposts {
                ak.snapshot(OUTPOSTS).await.map(|_| ())
            } else {
                Ok(())
            }
        },
    );
    result.map(|_| ()).map_err(|e| state.upstream(e))
}

/// Starts the lookups the flows' first `ensure-*` call will wait for (see [`prefetch`]), judged
/// by the Authentik functions each component imports, so they travel with the preflight instead
/// of in a round trip after it. Only lists whose path is the same in every Authentik release are
/// started this early; the mappings' path depends on the version the preflight is reading.
/// Errors are left for the run that needs the list, which asks again and reports in its own words.
/// `imports` lists each component's imported interfaces with their functions.
pub fn warm_up<'a>(ak: &Arc<Authentik>, imports: impl IntoIterator<Item = (&'a str, &'a [String])> + Clone) {
    let imports = |function: &str| {
        imports
            .clone()
            .into_iter()
            .any(|(name, functions)| name.starts_with(AUTHENTIK_INTERFACE) && functions.iter().any(|n| n == function))
    };
    // The same paths the runs' lookups read (`Provider::PATH`), so the snapshots are shared.
    for (function, path) in [
        ("ensure-oauth2-provider", OAuth2Provider::PATH),
        ("ensure-saml-provider", SamlProvider::PATH),
        ("ensure-proxy-provider", ProxyProvider::PATH),
        ("ensure-application", APPLICATIONS),
        // The host completes every ensured application's access (`access::complete`).
        ("ensure-application", super::access::BINDINGS),
        ("attach-to-embedded-outpost", OUTPOSTS),
    ] {
        if imports(function) {
            let ak = ak.clone();
            tokio::spawn(async move {
                let _ = ak.snapshot(path).await;
            });
        }
    }
    // Stock OAuth2 flows sign their tokens, and every SAML provider signs.
    if imports("ensure-oauth2-provider") || imports("ensure-saml-provider") {
        let ak = ak.clone();
        tokio::spawn(async move {
            let _ = ak.signing_keypair().await;
        });
    }
}

/// A service whose `sso.type` changed (proxy → oidc, saml → oidc) still has its old provider:
/// named after it, linked to its application, of another type. Provider names are unique across
/// every type in Authentik, and the OAuth2 list even shows a proxy provider as an OAuth2 one, so
/// the old provider would be taken for the new one or block its creation. It is never reused:
/// `check` reports it, `plan` says it will be replaced, and an apply deletes it (the new one is
/// then created and the application relinked). The type comes from the application's
/// `provider_obj` (its most specific class), already in the run's application snapshot.
/// Returns whether such a provider is still there (check and plan).
async fn replace_other_type<P: Provider>(state: &mut RunState, name: &str) -> Result<bool, FlowError> {
    let ak = state.ctx.authentik.clone();
    let app: Option<Value> = if state.wrote(Written::Application) || state.wrote(Written::Provider) {
        ak.get_opt(&format!("{APPLICATIONS}{}/", state.service.slug)).await
    } else {
        ak.snapshot_find(APPLICATIONS, "slug", &state.service.slug).await
    }
    .map_err(|e| state.upstream(e))?;
    let Some(linked) = app
        .as_ref()
        .and_then(|a| a.get("provider_obj"))
        .filter(|p| p.is_object())
    else {
        return Ok(false);
    };
    let model = linked
        .get("meta_model_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if linked.get("name").and_then(Value::as_str) != Some(name) || model == P::MODEL {
        return Ok(false);
    }
    let pk = linked.get("pk").and_then(Value::as_u64).unwrap_or_default();
    let kind = linked
        .get("verbose_name")
        .and_then(Value::as_str)
        .unwrap_or(model)
        .to_string();
    let path = match model {
        "authentik_providers_oauth2.oauth2provider" => OAuth2Provider::PATH,
        "authentik_providers_proxy.proxyprovider" => ProxyProvider::PATH,
        "authentik_providers_saml.samlprovider" => SamlProvider::PATH,
        other => {
            return Err(FlowError::Denied(format!(
                "`{name}` is a provider of type `{other}`, which ssoctl does not manage; remove it in Authentik to let \
                 sso.type `{}` create its {}",
                state.service.sso_type,
                P::KIND
            )));
        }
    };
    match state.mode {
        Mode::Check => state.finding(
            "provider-type-mismatch",
            format!(
                "`{name}` is a {kind}, but sso.type `{}` needs an {} (`ssoctl fix {}` replaces it)",
                state.service.sso_type,
                P::KIND,
                state.service.name
            ),
        ),
        Mode::Plan => state.change(format!("replace {kind} `{name}` with an {}", P::KIND)),
        Mode::Apply => {
            ak.delete(&format!("{path}{pk}/"))
                .await
                .map_err(|e| state.upstream(e))?;
            state.mark_written(Written::Provider);
            state.change(format!(
                "deleted {kind} `{name}` (sso.type is now `{}`)",
                state.service.sso_type
            ));
            return Ok(false);
        }
    }
    Ok(true)
}

/// The provider named `name` as it was when the command started (the run's snapshot of its
/// kind), or as it is now once this run has written something.
pub async fn find_provider<P: Provider>(state: &mut RunState, name: &str) -> Result<Option<P>, FlowError> {
    if replace_other_type::<P>(state, name).await? {
        // Check and plan: the old provider stays, and is not this one.
        return Ok(None);
    }
    if state.wrote(Written::Provider) {
        return find_provider_now(state, name).await;
    }
    let ak = state.ctx.authentik.clone();
    ak.snapshot_find::<P>(P::PATH, "name", name)
        .await
        .map_err(|e| state.upstream(e))
}

/// The provider named `name` as the server holds it now. The name filter is re-checked
/// client-side: Authentik ignores filters it does not know and answers with the whole list.
async fn find_provider_now<P: Provider>(state: &mut RunState, name: &str) -> Result<Option<P>, FlowError> {
    let ak = state.ctx.authentik.clone();
    match ak.list::<P>(P::PATH, &[(P::NAME_FILTER, name.to_string())]).await {
        Ok(list) => Ok(list.into_iter().find(|p| p.name() == name)),
        Err(e) => Err(state.upstream(e)),
    }
}

/// What a create came to: the object it made, or one of that name another run made meanwhile.
pub enum Created<P> {
    New(P),
    /// Created by someone else between this run's lookup and its create: compared like any
    /// object found by name (and refused, like them, when it serves another application).
    Adopted(P),
}

/// How many times a create is sent when its answers are lost and a lookup shows it did not land.
pub const CREATE_ATTEMPTS: u32 = 3;

/// Sends a create (`post`) the way every create of a run is sent: when its answer was lost on
/// the way back (it may have landed), `lookup` finds it instead of creating a duplicate, and it
/// is sent again only when the lookup shows it did not land (at most [`CREATE_ATTEMPTS`] sends).
/// When Authentik refuses it because an object of that name now exists (another run created it
/// since this one looked), the object `lookup` finds is adopted and compared like any other; an
/// object of that name that `lookup` cannot see (another kind) leaves the refusal standing.
pub async fn create_or_adopt<T, Post, Sent, Lookup, Found>(
    state: &mut RunState,
    what: &str,
    post: Post,
    lookup: Lookup,
) -> Result<Created<T>, FlowError>
where
    Post: Fn() -> Sent,
    Sent: std::future::Future<Output = Result<T, AkError>>,
    Lookup: Fn() -> Found,
    Found: std::future::Future<Output = Result<Option<T>, AkError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match post().await {
            Ok(created) => return Ok(Created::New(created)),
            Err(e @ AkError::MaybeApplied { .. }) => match lookup().await {
                Ok(Some(created)) => return Ok(Created::New(created)),
                Ok(None) if attempt < CREATE_ATTEMPTS => continue,
                _ => return Err(state.upstream(e)),
            },
            Err(e) if e.is_name_taken() => match lookup().await {
                Ok(Some(theirs)) => {
                    state.change(format!("adopted {what}, created by another run meanwhile"));
                    return Ok(Created::Adopted(theirs));
                }
                _ => return Err(state.upstream(e)),
            },
            Err(e) => return Err(state.upstream(e)),
        }
    }
}

/// Creates the provider `name` with `body` ([`create_or_adopt`], looked up by exact name).
pub async fn create_provider<P: Provider>(
    state: &mut RunState,
    name: &str,
    body: Map<String, Value>,
) -> Result<Created<P>, FlowError> {
    let ak = state.ctx.authentik.clone();
    let body = Value::Object(body);
    let post = || ak.post::<P>(P::PATH, &body);
    let lookup = || async {
        let list = ak.list::<P>(P::PATH, &[(P::NAME_FILTER, name.to_string())]).await?;
        Ok(list.into_iter().find(|p| p.name() == name))
    };
    let created = create_or_adopt(state, &format!("{} `{name}`", P::KIND), post, lookup).await?;
    if let Created::New(_) = created {
        state.mark_written(Written::Provider);
    }
    Ok(created)
}

/// A provider with the service's name that serves another application is not ssoctl's to change.
pub fn check_owner<P: Provider>(state: &RunState, provider: &P) -> Result<(), FlowError> {
    match provider.assigned_application() {
        Some(app) if app != state.service.slug => Err(FlowError::Denied(format!(
            "{} `{}` in Authentik serves application `{app}`, not `{}`; ssoctl will not modify it",
            P::KIND,
            provider.name(),
            state.service.slug
        ))),
        _ => Ok(()),
    }
}

/// Warns when the certificate a provider signs with expires within 30 days (or has expired).
pub fn warn_expiry(state: &mut RunState, keypair: &crate::authentik::models::Keypair) {
    let Some(expiry) = keypair.cert_expiry.as_deref() else {
        return;
    };
    let Ok(at) = humantime::parse_rfc3339_weak(expiry.trim_end_matches('Z').split('.').next().unwrap_or(expiry)) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    match at.duration_since(now) {
        Err(_) => state.warn(format!(
            "the certificate of keypair `{}` expired on {}: signatures no longer validate",
            keypair.name,
            &expiry[..expiry.len().min(10)]
        )),
        Ok(left) if left < 30 * day => state.warn(format!(
            "the certificate of keypair `{}` expires in {} days ({}): rotate it and run fix",
            keypair.name,
            left.as_secs() / 86_400,
            &expiry[..expiry.len().min(10)]
        )),
        Ok(_) => {}
    }
}
