//! One HTTP exchange on a flow's behalf, shared by `service-http` and `idp-http`: only to the
//! origin the caller established, with the credentials the host injects; secrets routed into
//! bodies without the flow reading them, scrubbed from answers, credentials captured unseen, and
//! in check and plan modes only reads sent.

use wasmtime::component::Resource;

use super::state::{FlowError, Mode, RunState, SecretValue};
use crate::bindings::sso::flow::service_config;

/// Answers larger than this are refused rather than buffered.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Placeholder for a secret in request and response bodies.
pub const SECRET_PLACEHOLDER: &str = "{client_secret}";

/// One request as the flow asked for it, with the secrets its handles stand for.
#[derive(Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    /// Replaces `{client_secret}` in the body (`Some(None)`: a secret not known yet).
    pub secret: Option<Option<String>>,
    pub bearer: Option<Option<String>>,
    /// JSON pointers to credentials in the answer.
    pub capture: Vec<String>,
}

/// Status, scrubbed body, and the captured credentials (one per pointer asked for).
pub type Response = (u16, String, Vec<Option<String>>);

/// How a request is named in change lines: `POST /graphql (setApiState)` for GraphQL mutations
/// (the fields called with arguments), `METHOD path` otherwise.
pub(super) fn describe(method: &str, path: &str, body: Option<&str>) -> String {
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

/// `path` as a path and query on `origin`: a relative path starting with `/`, or an absolute URL
/// on that very origin. Anything else would send injected credentials elsewhere: denied.
pub fn on_origin(origin: &str, path: &str, whose: &str) -> Result<String, FlowError> {
    if path.contains(['\r', '\n', '\\']) {
        return Err(FlowError::Invalid(format!(
            "`{path}` contains a line break or backslash"
        )));
    }
    if path.starts_with("http://") || path.starts_with("https://") {
        let url = url::Url::parse(path).map_err(|e| FlowError::Invalid(format!("`{path}`: {e}")))?;
        let asked = url.origin().ascii_serialization();
        let granted = url::Url::parse(origin)
            .map(|o| o.origin().ascii_serialization())
            .unwrap_or_else(|_| origin.to_string());
        if asked != granted || !url.username().is_empty() || url.password().is_some() {
            return Err(FlowError::Denied(format!(
                "{asked} is not {whose} origin {granted}: requests may only go there"
            )));
        }
        let mut relative = url.path().to_string();
        if let Some(q) = url.query() {
            relative.push('?');
            relative.push_str(q);
        }
        return Ok(relative);
    }
    if !path.starts_with('/') || path.starts_with("//") || path.contains('@') {
        return Err(FlowError::Denied(format!(
            "`{path}` is not a path on {whose} origin {origin}: requests may only go there"
        )));
    }
    Ok(path.to_string())
}

/// The HTTP method, if it is one flows may use.
pub(super) fn method_of(method: &str) -> Result<reqwest::Method, FlowError> {
    Ok(match method {
        "GET" => reqwest::Method::GET,
        "POST" => reqwest::Method::POST,
        "PUT" => reqwest::Method::PUT,
        "PATCH" => reqwest::Method::PATCH,
        "DELETE" => reqwest::Method::DELETE,
        other => return Err(FlowError::Invalid(format!("HTTP method `{other}` is not allowed"))),
    })
}

/// The bearer secret a flow routed, if any (an unknown one is an error).
pub fn routed_bearer(bearer: Option<Option<String>>) -> Result<Option<String>, FlowError> {
    match bearer {
        Some(Some(token)) => Ok(Some(token)),
        Some(None) => Err(FlowError::Unsupported(
            "the bearer credential is not known (not set in .env or not captured)".into(),
        )),
        None => Ok(None),
    }
}

/// One request on its way out: where to, with which credentials, and whether it only reads.
pub struct Exchange {
    pub origin: String,
    /// Path and query on `origin`.
    pub path: String,
    /// The `Authorization` header the host injects.
    pub auth: Option<String>,
    /// Reads are sent in every mode; other requests only in apply mode.
    pub read: bool,
    /// How errors name the peer, e.g. `grafana API`.
    pub who: String,
}

impl Exchange {
    pub async fn run(
        self,
        state: &mut RunState,
        client: &reqwest::Client,
        request: Request,
    ) -> Result<Response, FlowError> {
        let Exchange {
            origin,
            path,
            auth,
            read,
            who,
        } = self;
        let Request {
            method,
            body,
            secret,
            capture,
            ..
        } = request;
        let method = method.to_ascii_uppercase();
        let reqwest_method = method_of(&method)?;
        if let Some(auth) = &auth {
            state
                .ctx
                .redactor
                .add(auth.rsplit([' ', ':', '=']).next().unwrap_or(""));
        }
        let what = describe(&method, &path, body.as_deref());
        if !read && state.mode != Mode::Apply {
            if state.mode == Mode::Plan {
                state.change(format!("{what} on {origin}"));
            }
            return Ok((204, String::new(), vec![None; capture.len()]));
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
        let url = format!("{origin}{path}");
        let mut req = client.request(reqwest_method, &url);
        if let Some(auth) = &auth {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
        }
        if let Some(b) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b);
        }
        let response = req.send().await.map_err(|e| {
            FlowError::Upstream(format!(
                "{who} at {origin} did not answer {method} {path}: {}",
                e.without_url()
            ))
        })?;
        let status = response.status().as_u16();
        if !read && (200..300).contains(&status) {
            state.change(format!("{what} on {origin}"));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| FlowError::Upstream(format!("{who}: reading the answer failed: {e}")))?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(FlowError::Upstream(format!(
                "{who} answered {} bytes; the limit is 1 MiB",
                bytes.len()
            )));
        }
        let text = String::from_utf8_lossy(&bytes);
        let answer: Option<serde_json::Value> = (!capture.is_empty())
            .then(|| serde_json::from_str(&text).ok())
            .flatten();
        let captured: Vec<Option<String>> = capture
            .iter()
            .map(|pointer| {
                let value = answer.as_ref()?.pointer(pointer)?.as_str()?.to_string();
                (!value.is_empty()).then_some(value)
            })
            .collect();
        for value in captured.iter().flatten() {
            state.ctx.redactor.add(value);
        }
        Ok((
            status,
            state.ctx.redactor.replace_with(&text, SECRET_PLACEHOLDER),
            captured,
        ))
    }
}

impl RunState {
    /// A guest request with its secret handles resolved.
    pub(super) fn http_request(&self, request: service_config::HttpRequest) -> wasmtime::Result<Request> {
        let resolve = |handle: &Option<Resource<SecretValue>>| -> wasmtime::Result<_> {
            Ok(match handle {
                Some(handle) => Some(self.table.get(handle)?.value.clone()),
                None => None,
            })
        };
        Ok(Request {
            secret: resolve(&request.secret)?,
            bearer: resolve(&request.bearer)?,
            method: request.method,
            path: request.path,
            body: request.body,
            capture: request.capture,
        })
    }

    /// The guest's answer, the captured credential behind a handle.
    pub(super) fn http_response(
        &mut self,
        answer: Result<Response, FlowError>,
    ) -> wasmtime::Result<Result<service_config::HttpResponse, FlowError>> {
        match answer {
            Ok((status, body, captured)) => {
                let captured = captured
                    .into_iter()
                    .map(|value| value.map(|v| self.new_secret(Some(v))).transpose())
                    .collect::<wasmtime::Result<Vec<_>>>()?;
                Ok(Ok(service_config::HttpResponse { status, body, captured }))
            }
            Err(e) => Ok(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn graphql_mutations_are_named_by_their_fields() {
        let m =
            serde_json::json!({ "query": "mutation ($u: String!) { authentication { login(username: $u) { jwt } } }" })
                .to_string();
        assert_eq!(super::describe("POST", "/graphql", Some(&m)), "POST /graphql (login)");
        assert_eq!(super::describe("PUT", "/api/x", Some("{\"a\": 1}")), "PUT /api/x");
    }
}
