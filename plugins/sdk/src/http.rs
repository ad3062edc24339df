//! JSON over HTTP for flows: one request to the service's own API (`service-http`) or to the
//! identity provider's (`idp-http`), its body parsed, the credentials it captured handed back.
//! The host sends it (to the origin the operator configured, with the credentials it injects);
//! this only shapes the request and reads the answer.

use serde_json::Value;

use crate::FlowError;
use crate::sso::flow::authentik::Secret;
use crate::sso::flow::service_config::{HttpRequest, HttpResponse};
use crate::sso::flow::{idp_http, service_http};

/// A JSON request. `secret` replaces `{client_secret}` in the body (the flow never sees it);
/// `bearer` authenticates with a secret the flow holds; `capture` names JSON pointers whose
/// values the host keeps as new secrets.
#[derive(Default)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub body: Option<&'a Value>,
    pub secret: Option<&'a Secret>,
    pub bearer: Option<&'a Secret>,
    pub capture: &'a [&'a str],
}

impl<'a> Request<'a> {
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Self {
            method,
            path,
            ..Self::default()
        }
    }

    pub fn body(mut self, body: &'a Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// An answer: its status, its body as JSON (`null` when empty, a string when not JSON) and the
/// secrets captured from it, in the order of `capture` (`None` where a pointer found nothing).
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub captured: Vec<Option<Secret>>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first of `keys` the body holds as text: where an API puts its error message.
    pub fn message(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| self.body.get(k).and_then(Value::as_str))
    }
}

/// Sends `request` to the service's API (`service-http`).
pub fn service(request: &Request) -> Result<Answer, FlowError> {
    send(service_http::send, request)
}

/// Sends `request` to the identity provider's API (`idp-http`).
pub fn idp(request: &Request) -> Result<Answer, FlowError> {
    send(idp_http::send, request)
}

fn send(
    transport: impl FnOnce(&HttpRequest<'_>) -> Result<HttpResponse, FlowError>,
    request: &Request,
) -> Result<Answer, FlowError> {
    let response = transport(&HttpRequest {
        method: request.method.to_string(),
        path: request.path.to_string(),
        body: request.body.map(Value::to_string),
        secret: request.secret,
        bearer: request.bearer,
        capture: request.capture.iter().map(|p| p.to_string()).collect(),
    })?;
    Ok(Answer {
        status: response.status,
        body: parse(&response.body),
        captured: response.captured,
    })
}

/// An answer's body: `null` when empty, JSON when it is, else the text as a JSON string.
fn parse(body: &str) -> Value {
    if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_null_or_text() {
        assert_eq!(parse(""), Value::Null);
        assert_eq!(parse(" \n"), Value::Null);
        assert_eq!(parse("{\"a\": 1}")["a"], 1);
        assert_eq!(parse("<html>"), Value::String("<html>".into()));
    }
}
