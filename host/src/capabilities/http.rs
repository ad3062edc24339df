//! `service-http`: requests to the service's own API origin only, with credentials the host takes
//! from `.env` (keys the service owns) and injects; secrets routed into bodies without the flow
//! reading them, and scrubbed from answers.

use super::{FlowError, Mode, RunState};

/// Answers larger than this are refused rather than buffered.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Placeholder for a secret in request and response bodies.
pub const SECRET_PLACEHOLDER: &str = "{client_secret}";

struct Target {
    origin: String,
    auth: Option<String>,
}

fn setting<'a>(state: &'a RunState, key: &str) -> Option<&'a str> {
    super::objects::setting(state, key)
}

/// Origin and `Authorization` header from `sso.http.*`; credential keys must be the service's own.
fn target(state: &RunState) -> Result<Target, FlowError> {
    let base = setting(state, "http.base_url")
        .unwrap_or(&state.service.public_url)
        .trim_end_matches('/');
    let url = url::Url::parse(base).map_err(|e| FlowError::Invalid(format!("sso.http.base_url `{base}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.path() != "/" || url.query().is_some() {
        return Err(FlowError::Invalid(format!(
            "sso.http.base_url `{base}` must be an http(s) origin without a path"
        )));
    }
    let origin = base.to_string();
    let env = |field: &str| -> Result<String, FlowError> {
        let key = setting(state, &format!("http.{field}"))
            .ok_or_else(|| FlowError::Invalid(format!("sso.http.{field} names the .env key holding the credential")))?;
        state.check_env_key(key)?;
        state.current_env(key).filter(|v| !v.is_empty()).ok_or_else(|| {
            FlowError::Invalid(format!(
                "{key} is not set in .env (the {} API credential)",
                state.service.name
            ))
        })
    };
    let auth = match setting(state, "http.auth").unwrap_or("none") {
        "none" => None,
        "token" => Some(format!("token {}:{}", env("key_env")?, env("secret_env")?)),
        "bearer" => Some(format!("Bearer {}", env("key_env")?)),
        other => {
            return Err(FlowError::Invalid(format!(
                "sso.http.auth must be none, token or bearer, not `{other}`"
            )));
        }
    };
    Ok(Target { origin, auth })
}

pub async fn send(
    state: &mut RunState,
    method: &str,
    path: &str,
    body: Option<String>,
    secret: Option<Option<String>>,
) -> Result<(u16, String), FlowError> {
    let method = method.to_ascii_uppercase();
    let reqwest_method = match method.as_str() {
        "GET" => reqwest::Method::GET,
        "POST" => reqwest::Method::POST,
        "PUT" => reqwest::Method::PUT,
        "PATCH" => reqwest::Method::PATCH,
        "DELETE" => reqwest::Method::DELETE,
        other => return Err(FlowError::Invalid(format!("HTTP method `{other}` is not allowed"))),
    };
    if !path.starts_with('/') || path.starts_with("//") || path.contains(['\r', '\n', '\\']) || path.contains('@') {
        return Err(FlowError::Denied(format!(
            "`{path}` is not a path on {}'s API: flows may only send requests to the service's own origin",
            state.service.name
        )));
    }
    let target = target(state)?;
    if let Some(auth) = &target.auth {
        state.ctx.redactor.add(auth.rsplit([' ', ':']).next().unwrap_or(""));
    }
    if method != "GET" && state.mode != Mode::Apply {
        if state.mode == Mode::Plan {
            state.change(format!("{method} {path} on {}", target.origin));
        }
        return Ok((204, String::new()));
    }
    let body = match (body, secret) {
        (Some(b), Some(Some(value))) => {
            let escaped = serde_json::to_string(&value).unwrap_or_default();
            Some(b.replace(SECRET_PLACEHOLDER, &escaped[1..escaped.len() - 1]))
        }
        (Some(_), Some(None)) => {
            return Err(FlowError::Unsupported(
                "the client secret is not known yet (provider not registered)".into(),
            ));
        }
        (b, _) => b,
    };
    let url = format!("{}{path}", target.origin);
    let mut req = state.ctx.service_http()?.request(reqwest_method, &url);
    if let Some(auth) = &target.auth {
        req = req.header(reqwest::header::AUTHORIZATION, auth);
    }
    if let Some(b) = body {
        req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b);
    }
    let response = req.send().await.map_err(|e| {
        FlowError::Upstream(format!(
            "{} API at {} did not answer {method} {path}: {}",
            state.service.name,
            target.origin,
            e.without_url()
        ))
    })?;
    let status = response.status().as_u16();
    if method != "GET" && (200..300).contains(&status) {
        state.change(format!("{method} {path} on {}", target.origin));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| FlowError::Upstream(format!("{} API: reading the answer failed: {e}", state.service.name)))?;
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(FlowError::Upstream(format!(
            "{} API answered {} bytes; the limit is 1 MiB",
            state.service.name,
            bytes.len()
        )));
    }
    let text = String::from_utf8_lossy(&bytes);
    Ok((status, state.ctx.redactor.replace_with(&text, SECRET_PLACEHOLDER)))
}
