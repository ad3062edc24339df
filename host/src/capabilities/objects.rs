//! Pieces every `ensure-*` capability shares: manifest settings, the default flows, and what to
//! do with the fields that differ in each mode (findings, a planned change, or one PATCH).

use serde_json::{Map, Value};

use super::{FlowError, Mode, RunState};
use crate::authentik::AkError;

const DEFAULT_AUTHORIZATION_FLOW: &str = "default-provider-authorization-implicit-consent";
const DEFAULT_INVALIDATION_FLOW: &str = "default-provider-invalidation-flow";

/// A field that differs: the value to PATCH and how to describe the drift.
pub struct Diff {
    pub field: &'static str,
    pub value: Value,
    pub kind: &'static str,
    pub message: String,
}

/// A scalar from the manifest's `sso:` block.
pub fn setting<'a>(state: &'a RunState, key: &str) -> Option<&'a str> {
    state
        .service
        .settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
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

/// The flows a provider uses: (authorization flow slug, its pk, the invalidation flow's pk on
/// servers that have one). Slugs come from `sso.authorization_flow` / `sso.invalidation_flow`.
pub async fn provider_flows(state: &mut RunState) -> Result<(String, String, Option<String>), FlowError> {
    let ak = state.ctx.authentik.clone();
    let caps = ak.capabilities().await.map_err(|e| state.upstream(e))?.clone();
    let auth_slug = setting(state, "authorization_flow")
        .unwrap_or(DEFAULT_AUTHORIZATION_FLOW)
        .to_string();
    let auth = ak.flow(&auth_slug).await.map_err(|e| {
        lookup_err(
            state,
            &format!("authorization flow `{auth_slug}`"),
            "authorization_flow",
            e,
        )
    })?;
    let invalidation = if caps.invalidation_flow {
        let slug = setting(state, "invalidation_flow")
            .unwrap_or(DEFAULT_INVALIDATION_FLOW)
            .to_string();
        let flow = ak
            .flow(&slug)
            .await
            .map_err(|e| lookup_err(state, &format!("invalidation flow `{slug}`"), "invalidation_flow", e))?;
        Some(flow.pk)
    } else {
        None
    };
    Ok((auth_slug, auth.pk, invalidation))
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

/// Records an update sent with the body [`settle`] returned.
pub fn updated(state: &mut RunState, what: &str, body: &Map<String, Value>) {
    let fields: Vec<&str> = body.keys().map(String::as_str).collect();
    state.change(format!("updated {what}: {}", fields.join(", ")));
}
