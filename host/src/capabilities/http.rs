//! `service-http`: requests to the service's own API origin only, with credentials the host takes
//! from `.env` (keys the service owns) and injects; secrets routed into bodies without the flow
//! reading them, scrubbed from answers, and credentials the service mints captured unseen.

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
/// `bearer` (a secret the flow routed) replaces the configured credentials.
fn target(state: &RunState, bearer: Option<&str>) -> Result<Target, FlowError> {
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
    Ok(Target { origin, auth })
}

/// One request as the flow asked for it, with the secrets its handles stand for.
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    /// Replaces `{client_secret}` in the body (`Some(None)`: a secret not known yet).
    pub secret: Option<Option<String>>,
    pub bearer: Option<Option<String>>,
    /// JSON pointer to a credential in the answer.
    pub capture: Option<String>,
}

/// Status, scrubbed body, and the captured credential.
pub type Response = (u16, String, Option<String>);

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

/// How a request is named in change lines: `POST /graphql (setApiState)` for GraphQL mutations
/// (the fields called with arguments), `METHOD path` otherwise.
fn describe(method: &str, path: &str, body: Option<&str>) -> String {
    let document = body
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .and_then(|v| v.get("query").and_then(|q| q.as_str()).map(str::to_string));
    let Some(document) = document else {
        return format!("{method} {path}");
    };
    let mut fields: Vec<&str> = Vec::new();
    let mut rest = document.as_str();
    while let Some(i) = rest.find('(') {
        let name = rest[..i]
            .trim_end()
            .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("");
        if !name.is_empty() && !matches!(name, "mutation" | "query") && !fields.contains(&name) {
            fields.push(name);
        }
        rest = &rest[i + 1..];
    }
    if fields.is_empty() {
        format!("{method} {path}")
    } else {
        format!("{method} {path} ({})", fields.join(", "))
    }
}

pub async fn send(state: &mut RunState, request: Request) -> Result<Response, FlowError> {
    let Request {
        method,
        path,
        body,
        secret,
        bearer,
        capture,
    } = request;
    let path = path.as_str();
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
    let bearer = match bearer {
        Some(Some(token)) => Some(token),
        Some(None) => {
            return Err(FlowError::Unsupported(
                "the bearer credential is not known (not set in .env or not captured)".into(),
            ));
        }
        None => None,
    };
    let target = target(state, bearer.as_deref())?;
    if let Some(auth) = &target.auth {
        state
            .ctx
            .redactor
            .add(auth.rsplit([' ', ':', '=']).next().unwrap_or(""));
    }
    let graphql_read = method == "POST"
        && setting(state, "http.graphql_path").is_some_and(|p| p == path)
        && is_graphql_read(body.as_deref());
    let read = method == "GET" || graphql_read;
    let what = describe(&method, path, body.as_deref());
    if !read && state.mode != Mode::Apply {
        if state.mode == Mode::Plan {
            state.change(format!("{what} on {}", target.origin));
        }
        return Ok((204, String::new(), None));
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
    if !read && (200..300).contains(&status) {
        state.change(format!("{what} on {}", target.origin));
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
    let captured = capture.and_then(|pointer| {
        let answer: serde_json::Value = serde_json::from_str(&text).ok()?;
        let value = answer.pointer(&pointer)?.as_str()?.to_string();
        (!value.is_empty()).then_some(value)
    });
    if let Some(value) = &captured {
        state.ctx.redactor.add(value);
    }
    Ok((
        status,
        state.ctx.redactor.replace_with(&text, SECRET_PLACEHOLDER),
        captured,
    ))
}

#[cfg(test)]
mod tests {
    use super::is_graphql_read;

    fn body(query: &str) -> String {
        serde_json::json!({ "query": query }).to_string()
    }

    #[test]
    fn graphql_mutations_are_named_by_their_fields() {
        let m = body("mutation ($u: String!) { authentication { login(username: $u) { jwt } } }");
        assert_eq!(super::describe("POST", "/graphql", Some(&m)), "POST /graphql (login)");
        assert_eq!(super::describe("PUT", "/api/x", Some("{\"a\": 1}")), "PUT /api/x");
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
