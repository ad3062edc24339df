//! `idp-http`: requests to the third-party identity provider the operator granted a flow type
//! (Keycloak's admin API, a dynamic client registration endpoint). Only the granted origin and
//! path prefixes are reachable; the host injects the credentials (a bearer token from `.env`, or
//! an OAuth2 client-credentials token it obtains, caches for the command and refreshes), so the
//! flow never sees them.

use std::time::{Duration, Instant};

use super::exchange::{Exchange, Request, Response, on_origin, routed_bearer};
use super::state::{FlowError, RunContext, RunState};
use super::token_cache::Token;
use crate::bindings::sso::flow::{idp_http, service_config};
use crate::grants::{ClientCredentials, IdpAuth, IdpGrant};

/// A token is renewed this long before it expires, so it does not lapse mid-request.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// The value of a credential key: the process environment, else `.env`.
fn credential(ctx: &RunContext, sso_type: &str, key: &str) -> Result<String, FlowError> {
    ctx.stack.setting(key).ok_or_else(|| {
        FlowError::Invalid(format!(
            "{key} is not set in .env or the environment (the idp-http credential granted to sso.type `{sso_type}`)"
        ))
    })
}

/// A client-credentials token: the cached one unless it is about to expire (or `stale` is the
/// one the server just refused), else a new one from the token endpoint.
async fn client_credentials_token(
    ctx: &RunContext,
    sso_type: &str,
    cc: &ClientCredentials,
    stale: Option<&str>,
) -> Result<String, FlowError> {
    let slot = ctx.idp_tokens.slot(cc);
    let mut token = slot.lock().await;
    let fresh = token.as_ref().is_some_and(|t| {
        Some(t.value.as_str()) != stale && t.expires.is_none_or(|e| Instant::now() + EXPIRY_MARGIN < e)
    });
    if !fresh {
        let secret = credential(ctx, sso_type, &cc.client_secret_env)?;
        ctx.redactor.add(&secret);
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", cc.client_id.as_str()),
            ("client_secret", secret.as_str()),
        ];
        if let Some(scope) = &cc.scope {
            form.push(("scope", scope));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let client = ctx.service_http()?;
        let answer = client
            .post(&cc.token_url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                FlowError::Upstream(format!(
                    "idp-http: token endpoint {} did not answer: {}",
                    cc.token_url,
                    e.without_url()
                ))
            })?;
        let status = answer.status();
        if !status.is_success() {
            return Err(FlowError::Upstream(format!(
                "idp-http: token endpoint {} answered {status} for client `{}` (check {} and the client's service-account settings)",
                cc.token_url, cc.client_id, cc.client_secret_env
            )));
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            access_token: String,
            expires_in: Option<u64>,
        }
        let parsed: TokenAnswer = answer.json().await.map_err(|e| {
            FlowError::Upstream(format!(
                "idp-http: token endpoint {} answered without an access_token: {}",
                cc.token_url,
                e.without_url()
            ))
        })?;
        ctx.redactor.add(&parsed.access_token);
        *token = Some(Token {
            value: parsed.access_token,
            expires: parsed.expires_in.map(|s| Instant::now() + Duration::from_secs(s)),
        });
    }
    Ok(token.as_ref().map(|t| t.value.clone()).unwrap_or_default())
}

/// The `Authorization` header the grant injects (`stale`: a token the server refused).
async fn injected_auth(
    ctx: &RunContext,
    sso_type: &str,
    grant: &IdpGrant,
    stale: Option<&str>,
) -> Result<Option<String>, FlowError> {
    Ok(match &grant.auth {
        IdpAuth::None => None,
        IdpAuth::BearerEnv(key) => Some(format!("Bearer {}", credential(ctx, sso_type, key)?)),
        IdpAuth::ClientCredentials(cc) => Some(format!(
            "Bearer {}",
            client_credentials_token(ctx, sso_type, cc, stale).await?
        )),
    })
}

fn grant(state: &RunState) -> Result<IdpGrant, FlowError> {
    state.grant.idp_http.clone().ok_or_else(|| {
        FlowError::Denied(format!(
            "idp-http is not granted to sso.type `{}`",
            state.service.sso_type
        ))
    })
}

pub fn origin(state: &RunState) -> Result<String, FlowError> {
    Ok(grant(state)?.origin)
}

pub async fn send(state: &mut RunState, request: Request) -> Result<Response, FlowError> {
    let grant = grant(state)?;
    let origin = grant.origin.clone();
    let path = on_origin(&origin, &request.path, "the granted identity provider's")?;
    let path = as_the_server_sees_it(&origin, &path)?;
    let bare = path.split('?').next().unwrap_or_default();
    if !grant.paths.is_empty() && !grant.paths.iter().any(|p| under_prefix(bare, p)) {
        return Err(FlowError::Denied(format!(
            "`{bare}` is outside the paths granted on {origin} ({})",
            grant.paths.join(", ")
        )));
    }
    let routed = routed_bearer(request.bearer.clone())?;
    let read = request.method.eq_ignore_ascii_case("GET");
    let client = state.ctx.service_http()?.clone();
    let exchange = |auth: Option<String>| Exchange {
        origin: origin.clone(),
        path: path.clone(),
        auth,
        read,
        who: "identity provider".to_string(),
    };
    let ctx = state.ctx.clone();
    let sso_type = state.service.sso_type.clone();
    let auth = match &routed {
        Some(token) => Some(format!("Bearer {token}")),
        None => injected_auth(&ctx, &sso_type, &grant, None).await?,
    };
    let answer = exchange(auth.clone()).run(state, &client, request.clone()).await?;
    // A client-credentials token can be revoked or expire early: get a new one and retry once.
    if answer.0 == 401 && routed.is_none() && matches!(grant.auth, IdpAuth::ClientCredentials(_)) {
        let stale = auth.as_deref().and_then(|a| a.strip_prefix("Bearer "));
        let renewed = injected_auth(&ctx, &sso_type, &grant, stale).await?;
        return exchange(renewed).run(state, &client, request).await;
    }
    Ok(answer)
}

/// `path` (and its query) as the identity provider will see it, so a path grant is matched on
/// what is actually reached: dot segments, in any encoding, are refused rather than resolved
/// (`/admin/realms/pma/../master/`, `/%2e%2e/`), and so are the encodings servers and proxies
/// decode differently (an encoded `/`, `\` or `%`, a NUL, `;` path parameters).
fn as_the_server_sees_it(origin: &str, path: &str) -> Result<String, FlowError> {
    let (bare, query) = match path.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (path, None),
    };
    let lower = bare.to_ascii_lowercase();
    if ["%2f", "%5c", "%25", "%00"].iter().any(|e| lower.contains(e)) || bare.contains([';', '\\']) {
        return Err(FlowError::Denied(format!(
            "`{bare}`: encoded `/`, `\\` or `%`, NUL and `;` parameters are refused in idp-http paths (servers \
             decode them differently from the path grant)"
        )));
    }
    // What a server that decodes the path sees: valid UTF-8 (no overlong `%c0%ae` dots) without
    // NUL or backslash, and no `.` or `..` segment.
    let Ok(decoded) = percent_encoding::percent_decode_str(bare).decode_utf8() else {
        return Err(FlowError::Denied(format!(
            "`{bare}` does not decode to UTF-8 (overlong encodings are refused in idp-http paths)"
        )));
    };
    if decoded.contains(['\0', '\\']) {
        return Err(FlowError::Denied(format!("`{bare}` decodes to a NUL or backslash")));
    }
    // Decoding leaves plain dots as they are, so the decoded path holds every spelling.
    if decoded.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(FlowError::Denied(format!(
            "`{bare}` has a dot segment (`.` or `..`, in any encoding): idp-http paths are matched against the \
             grant as sent, so they must be plain"
        )));
    }
    let url = url::Url::parse(&format!("{origin}{path}"))
        .map_err(|e| FlowError::Invalid(format!("`{path}` does not make a URL on {origin}: {e}")))?;
    let mut seen = url.path().to_string();
    if let Some(q) = query.and(url.query()) {
        seen.push('?');
        seen.push_str(q);
    }
    Ok(seen)
}

/// `path` is `prefix` or below it, on a segment boundary (`/realms/pma` does not cover `/realms/pmax`).
fn under_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl idp_http::Host for RunState {
    async fn origin(&mut self) -> wasmtime::Result<String> {
        // Only a component granted idp-http is loaded with this import.
        origin(self).map_err(|e| wasmtime::format_err!("{e:?}"))
    }

    async fn send(
        &mut self,
        request: service_config::HttpRequest,
    ) -> wasmtime::Result<Result<service_config::HttpResponse, FlowError>> {
        let request = self.http_request(request)?;
        let answer = send(self, request).await;
        self.http_response(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_matched_as_the_server_sees_them() {
        let origin = "http://127.0.0.1:9";
        for path in [
            "/admin/realms/pma/../master/users",
            "/admin/realms/pma/%2e%2e/master/users",
            "/admin/realms/pma/.%2E/master/users",
            "/admin/realms/pma/%2E/x",
            "/admin/realms/pma/..;/master",
            "/admin/realms/pma%2f..%2fmaster",
            "/admin/realms/pma/%252e%252e/master",
            "/admin/realms/pma/..\\master",
            "/admin/realms/pma/%c0%ae%c0%ae/master",
            "/admin/realms/pma/%5c../master",
        ] {
            assert!(as_the_server_sees_it(origin, path).is_err(), "{path}");
        }
        assert_eq!(
            as_the_server_sees_it(origin, "/admin/realms/pma/clients?first=0").unwrap(),
            "/admin/realms/pma/clients?first=0"
        );
        assert!(under_prefix("/admin/realms/pma/clients", "/admin/realms/pma/"));
        assert!(under_prefix("/register", "/register"));
        assert!(under_prefix("/register/abc", "/register"));
        assert!(!under_prefix("/registerx", "/register"));
        assert!(!under_prefix("/admin/realms/pmax", "/admin/realms/pma"));
    }
}
