//! `sso:flow/service-http` (optional, granted per type): requests to the service's own API origin
//! (`sso.http.base_url`, which only the operator sets) with the credentials the manifest names,
//! injected by the host; in check and plan modes only reads are sent.

use super::exchange::{Exchange, Request, Response, method_of, on_origin, routed_bearer};
use super::state::{FlowError, RunState};
use crate::bindings::sso::flow::{service_config, service_http};

fn setting<'a>(state: &'a RunState, key: &str) -> Option<&'a str> {
    state.setting(key)
}

/// The service's API origin: `sso.http.base_url`, default its public URL.
fn service_origin(state: &RunState) -> Result<String, FlowError> {
    let base = setting(state, "http.base_url")
        .unwrap_or(&state.service.public_url)
        .trim_end_matches('/');
    let url = url::Url::parse(base).map_err(|e| FlowError::Invalid(format!("sso.http.base_url `{base}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.path() != "/" || url.query().is_some() {
        return Err(FlowError::Invalid(format!(
            "sso.http.base_url `{base}` must be an http(s) origin without a path"
        )));
    }
    Ok(base.to_string())
}

/// The `Authorization` header from `sso.http.*`; credential keys must be the service's own.
/// `bearer` (a secret the flow routed) replaces the configured credentials.
fn service_auth(state: &RunState, bearer: Option<&str>) -> Result<Option<String>, FlowError> {
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
        _ if bearer.is_some() => bearer.map(|b| format!("Bearer {b}")),
        "none" => None,
        "token" => Some(format!("token {}:{}", env("key_env")?, env("secret_env")?)),
        "bearer" => Some(format!("Bearer {}", env("key_env")?)),
        // Rails' `authenticate_with_http_token` (Zammad).
        "http-token" => Some(format!("Token token={}", env("key_env")?)),
        other => {
            return Err(FlowError::Invalid(format!(
                "sso.http.auth must be none, token, bearer or http-token, not `{other}`"
            )));
        }
    };
    Ok(auth)
}

/// Whether `body` is a GraphQL document that only reads: JSON with a `query` string whose
/// operations are all queries. Conservative: the word `mutation` or `subscription` anywhere
/// outside a comment makes it a write.
fn is_graphql_read(body: Option<&str>) -> bool {
    let Some(document) = body
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .and_then(|v| v.get("query").and_then(|q| q.as_str()).map(str::to_string))
    else {
        return false;
    };
    let code: String = document
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let starts_as_query = code.trim_start().starts_with('{') || words.first() == Some(&"query");
    starts_as_query && !words.iter().any(|w| matches!(*w, "mutation" | "subscription"))
}

pub async fn send(state: &mut RunState, request: Request) -> Result<Response, FlowError> {
    if !state.grant.service_http {
        return Err(FlowError::Denied(format!(
            "service-http is not granted to sso.type `{}`",
            state.service.sso_type
        )));
    }
    let method = request.method.to_ascii_uppercase();
    method_of(&method)?;
    let origin = service_origin(state)?;
    let whose = format!("{}'s API", state.service.name);
    let path = on_origin(&origin, &request.path, &whose)?;
    let bearer = routed_bearer(request.bearer.clone())?;
    let auth = service_auth(state, bearer.as_deref())?;
    let graphql_read = method == "POST"
        && setting(state, "http.graphql_path").is_some_and(|p| p == path)
        && is_graphql_read(request.body.as_deref());
    let read = method == "GET" || graphql_read;
    let exchange = Exchange {
        origin,
        path,
        auth,
        read,
        who: format!("{} API", state.service.name),
    };
    let client = state.ctx.service_http()?.clone();
    exchange.run(state, &client, request).await
}

impl service_http::Host for RunState {
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
    use super::is_graphql_read;

    fn body(query: &str) -> String {
        serde_json::json!({ "query": query }).to_string()
    }

    #[test]
    fn only_query_documents_count_as_reads() {
        assert!(is_graphql_read(Some(&body("{ authentication { apiState } }"))));
        assert!(is_graphql_read(Some(&body("query Q { a }"))));
        assert!(is_graphql_read(Some(&body("# mutation in a comment\n{ a }"))));
        assert!(!is_graphql_read(Some(&body(
            "mutation { authentication { setApiState(enabled: true) { a } } }"
        ))));
        assert!(!is_graphql_read(Some(&body("query A { a } mutation B { b }"))));
        assert!(!is_graphql_read(Some(&body("subscription { a }"))));
        assert!(!is_graphql_read(Some(&body("fragment F on X { a }"))));
        assert!(!is_graphql_read(Some("not json")));
        assert!(!is_graphql_read(None));
    }
}
