//! `ssoctl-sim`: a stateful Authentik simulator for tests, benchmarks, `ssoctl demo` and plugin
//! authors.
//!
//! It plays one Authentik version (`2024.2`, `2026.8.3`, ... — one per vendored schema) and holds
//! itself to that version's real OpenAPI schema: every request to `/api/v3` is routed through the
//! schema's paths, its query parameters and JSON body are validated, and every response is validated
//! before it is sent. A violation is recorded (tests read [`Sim::violations`], and the test harness
//! fails on any) and answered the way Authentik would: 400 field errors for a bad body, 404 for a
//! path the version does not have. A response that would violate the schema is a simulator bug and
//! is answered 500 with the violation.
//!
//! Requests are counted per method and path template ([`Sim::counts`], [`Sim::writes`]).

pub mod access;
pub mod api;
pub mod expression;
pub mod frappe;
pub mod keycloak;
pub mod outpost;
pub mod schema;
pub mod wikijs;
pub mod world;
pub mod zammad;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::api::{Query, Reply};
use crate::schema::{Operation, RouteError, Violation};
use crate::world::World;

/// How to start a simulator.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Authentik version to play (a vendored schema's name, e.g. `2024.2`, `2026.8.3`).
    pub version: String,
    /// The API token it accepts.
    pub token: String,
    /// Address to listen on; port 0 picks a free one. Loopback only by default.
    pub listen: SocketAddr,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            version: "2026.8.3".into(),
            token: "sim-admin-token".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// Faults at a rate, on every `/api/v3` request (`ssoctl sim` flags; tests): what a busy or
/// flaky Authentik behind a proxy does. Each request rolls once.
#[derive(Clone, Debug, Default)]
pub struct Chaos {
    /// Fixed latency added to every request.
    pub latency: std::time::Duration,
    /// Share of requests answered 500, 502 or 503 before they are processed.
    pub error_rate: f64,
    /// Share of requests answered 429 with `Retry-After: retry_after_s`.
    pub throttle_rate: f64,
    pub retry_after_s: u64,
    /// Share of writes processed (the change lands) whose answer is then lost: 504.
    pub drop_rate: f64,
    /// Every answer's body is sent in small chunks spread over this long.
    pub slow_body: std::time::Duration,
}

impl Chaos {
    fn roll(&self, method: &str) -> Option<Fault> {
        let hit = |rate: f64| rate > 0.0 && rand::random::<f64>() < rate;
        let fault = |status: u16, retry_after: Option<u64>, after_commit: bool| Fault {
            method: method.to_string(),
            template: String::new(),
            status,
            retry_after,
            after_commit,
            times: 1,
        };
        if hit(self.error_rate) {
            let status = [500, 502, 503][rand::random_range(0..3usize)];
            Some(fault(status, None, false))
        } else if hit(self.throttle_rate) {
            Some(fault(429, Some(self.retry_after_s), false))
        } else if method != "GET" && hit(self.drop_rate) {
            Some(fault(504, None, true))
        } else {
            None
        }
    }
}

/// A schema violation seen by the simulator, with the request that caused it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RecordedViolation {
    /// `request` or `response`.
    pub direction: &'static str,
    /// e.g. `POST /api/v3/providers/oauth2/`.
    pub request: String,
    pub violations: Vec<Violation>,
}

impl std::fmt::Display for RecordedViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {}:", self.direction, self.request)?;
        for v in &self.violations {
            match v.field.as_str() {
                "" => write!(f, " [{}] {};", v.path, v.message)?,
                field => write!(f, " [{}] {field}: {};", v.path, v.message)?,
            }
        }
        Ok(())
    }
}

/// A fault to inject into matching requests (tests of retries and of "maybe applied" writes).
#[derive(Clone, Debug)]
pub struct Fault {
    /// e.g. `POST`.
    pub method: String,
    /// Path template as in the schema, e.g. `/providers/oauth2/`.
    pub template: String,
    /// Status to answer, e.g. 429, 502, 503.
    pub status: u16,
    /// `Retry-After` seconds to send with it.
    pub retry_after: Option<u64>,
    /// Process the request first (the change lands), then answer `status`: a response lost on
    /// the way back.
    pub after_commit: bool,
    /// How many matching requests to affect.
    pub times: u32,
}

/// Something to do to the world right after the nth request matching `method` and `template`
/// has been answered: another client's change landing between two of ours.
struct AfterHook {
    method: String,
    template: String,
    remaining: u32,
    action: Option<WorldChange>,
}

/// A change to the world made by someone other than the client under test.
type WorldChange = Box<dyn FnOnce(&mut World) + Send>;

struct Inner {
    faults: Mutex<Vec<Fault>>,
    after: Mutex<Vec<AfterHook>>,
    chaos: Mutex<Chaos>,
    /// Faults answered so far (injected one by one or by chaos).
    injected: std::sync::atomic::AtomicU64,
    /// (method, path prefix under /api/v3, delay) for slow-server scenarios.
    latency: Mutex<Vec<(String, String, std::time::Duration)>>,
    token: String,
    world: Mutex<World>,
    counts: Mutex<BTreeMap<String, u64>>,
    /// When each counted request arrived (benchmarks: start-up time, round trips).
    arrivals: Mutex<Vec<(std::time::Instant, String)>>,
    violations: Mutex<Vec<RecordedViolation>>,
}

/// A running simulator. Dropping it stops the server.
pub struct Sim {
    addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    version: String,
}

impl Sim {
    /// Starts the simulator on the current tokio runtime.
    pub async fn start(config: SimConfig) -> Result<Sim, String> {
        let schema = schema::load(&config.version)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("listen on {}: {e}", config.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let version = schema.version.clone();
        let base_url = format!("http://{addr}");
        let inner = Arc::new(Inner {
            faults: Mutex::new(Vec::new()),
            after: Mutex::new(Vec::new()),
            chaos: Mutex::new(Chaos::default()),
            injected: Default::default(),
            latency: Mutex::new(Vec::new()),
            token: config.token,
            world: Mutex::new(World::seeded(schema, base_url)),
            counts: Mutex::new(BTreeMap::new()),
            arrivals: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
        });
        let state = inner.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers, body| {
            let state = state.clone();
            async move {
                // When the request reached the server, before any added latency or queueing
                // for the simulated state.
                if uri.path().starts_with("/api/v3/") {
                    let key = format!("{method} {}", uri.path().trim_start_matches("/api/v3"));
                    state
                        .arrivals
                        .lock()
                        .expect("arrivals")
                        .push((std::time::Instant::now(), key));
                }
                let chaos = state.chaos.lock().expect("chaos").clone();
                let delay = state.latency_for(&method, &uri).unwrap_or_default() + chaos.latency;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                // The embedded outpost (forward auth, its login, proxy mode) and the authorize
                // endpoint it sends to; the state's lock is released before any upstream request.
                let outpost = match outpost::concerns(&uri) {
                    true => outpost::handle(&mut state.world.lock().expect("world"), &uri, &headers),
                    false => None,
                };
                let response = match outpost {
                    Some(outpost::Answer::Respond(r)) => r,
                    Some(outpost::Answer::Forward(f)) => forward(f, method, body).await,
                    None => handle(state, method, uri, headers, body),
                };
                if chaos.slow_body.is_zero() {
                    response
                } else {
                    slow(response, chaos.slow_body).await
                }
            }
        });
        Ok(Sim {
            addr,
            inner,
            shutdown: Some(serve(listener, app)),
            version,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The version played (`info.version` of its schema).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Reports `version` (in `admin/version/` and the served schema's `info.version`) while
    /// speaking the API of the version played: a release newer than any ssoctl knows.
    pub fn report_version(&self, version: &str) {
        self.inner.world.lock().expect("world").reported_version = Some(version.to_string());
    }

    /// Upgrades the running server to a later release, migrating its objects as Authentik's
    /// migrations do ([`world::World::upgrade`]); it then speaks the new version's API.
    pub fn upgrade(&mut self, version: &str) -> Result<(), String> {
        let schema = schema::load(version)?;
        let mut world = self.inner.world.lock().expect("world");
        if schema::order_key(&schema.version) < schema::order_key(&world.schema.version) {
            return Err(format!("{} is older than {}", schema.version, world.schema.version));
        }
        self.version = schema.version.clone();
        world.upgrade(schema);
        Ok(())
    }

    /// Requests per `METHOD /template/`, e.g. `PATCH /providers/oauth2/{id}/`.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.inner.counts.lock().expect("counts").clone()
    }

    /// Requests to `/api/v3` that could change state (anything but GET/HEAD/OPTIONS).
    pub fn writes(&self) -> u64 {
        self.counts()
            .iter()
            .filter(|(k, _)| !k.starts_with("GET ") && !k.starts_with("HEAD ") && !k.starts_with("OPTIONS "))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests to `/api/v3` of any method.
    pub fn requests(&self) -> u64 {
        self.counts().values().sum()
    }

    pub fn reset_counts(&self) {
        self.inner.counts.lock().expect("counts").clear();
        self.inner.arrivals.lock().expect("arrivals").clear();
    }

    /// When each `/api/v3` request since the last reset reached the server (before any added
    /// latency), with its `METHOD /path`.
    pub fn arrivals(&self) -> Vec<(std::time::Instant, String)> {
        self.inner.arrivals.lock().expect("arrivals").clone()
    }

    /// Every schema violation seen so far.
    pub fn violations(&self) -> Vec<RecordedViolation> {
        self.inner.violations.lock().expect("violations").clone()
    }

    /// Returns and forgets the violations seen so far (for tests that send bad input on purpose).
    pub fn take_violations(&self) -> Vec<RecordedViolation> {
        std::mem::take(&mut *self.inner.violations.lock().expect("violations"))
    }

    /// Delays every `method` request whose path under `/api/v3` starts with `path_prefix`.
    pub fn add_latency(&self, method: &str, path_prefix: &str, delay: std::time::Duration) {
        self.inner
            .latency
            .lock()
            .expect("latency")
            .push((method.to_string(), path_prefix.to_string(), delay));
    }

    /// Runs `action` on the world right after the `nth` (1-based) request matching `method` and
    /// the path `template` (as in the schema, e.g. `/core/applications/`) has been answered:
    /// another client's change landing between two requests of a command (a delete while a
    /// list is fetched page by page).
    pub fn after_request(
        &self,
        method: &str,
        template: &str,
        nth: u32,
        action: impl FnOnce(&mut World) + Send + 'static,
    ) {
        self.inner.after.lock().expect("after").push(AfterHook {
            method: method.to_string(),
            template: template.to_string(),
            remaining: nth.max(1),
            action: Some(Box::new(action)),
        });
    }

    /// Injects a fault into the next `fault.times` matching requests.
    pub fn inject(&self, fault: Fault) {
        self.inner.faults.lock().expect("faults").push(fault);
    }

    /// How many faults were answered so far.
    pub fn faults_injected(&self) -> u64 {
        self.inner.injected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Faults at a rate from now on (replacing earlier settings).
    pub fn set_chaos(&self, chaos: Chaos) {
        *self.inner.chaos.lock().expect("chaos") = chaos;
    }

    /// Direct access to the simulated server's state (tests and the demo's fault injection).
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.inner.world.lock().expect("world"))
    }
}

impl Inner {
    fn latency_for(&self, method: &Method, uri: &Uri) -> Option<std::time::Duration> {
        let path = uri.path().strip_prefix("/api/v3")?;
        self.latency
            .lock()
            .expect("latency")
            .iter()
            .find(|(m, prefix, _)| m == method.as_str() && path.starts_with(prefix.as_str()))
            .map(|(_, _, d)| *d)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A service fake's server on a free loopback port; dropping it stops the server.
/// An axum app served on a free loopback port until dropped: the service fakes, and the small
/// servers tests stand up (an HTML page where Authentik should be, a service's login redirect).
pub struct FakeServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeServer {
    pub async fn start(app: axum::Router) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        Ok(Self {
            addr,
            shutdown: Some(serve(listener, app)),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Serves `app` on `listener` in the background until the returned sender is used or dropped.
pub(crate) fn serve(listener: tokio::net::TcpListener, app: axum::Router) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    tx
}

/// Sends `response`'s body in 16 chunks spread over `over` (a slow link or an overloaded server).
async fn slow(response: Response, over: std::time::Duration) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let step = over / 16;
    let size = bytes.len().div_ceil(16).max(1);
    let chunks: Vec<Bytes> = bytes.chunks(size).map(Bytes::copy_from_slice).collect();
    let stream = futures_util::stream::iter(chunks).then(move |chunk| async move {
        tokio::time::sleep(step).await;
        Ok::<_, std::convert::Infallible>(chunk)
    });
    Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

/// Sends a request the outpost passes on (`proxy` mode) and relays the answer as Go's
/// `httputil.ReverseProxy` does, marked `X-Powered-By: goauthentik.io`; an upstream that does not
/// answer is a 502.
async fn forward(f: outpost::Forward, method: Method, body: Bytes) -> Response {
    // Connection-level headers belong to each hop, not to the request passed on.
    let hop_by_hop = |name: &str| {
        matches!(
            name,
            "connection" | "content-length" | "transfer-encoding" | "keep-alive"
        )
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &f.headers {
        if !hop_by_hop(name.as_str())
            && let (Ok(n), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
                reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
            )
        {
            headers.append(n, v);
        }
    }
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
    let sent = client
        .request(method, &f.url)
        .headers(headers)
        .body(body.to_vec())
        .send()
        .await;
    let Ok(upstream) = sent else {
        return (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><title>Bad Gateway</title><h1>Bad Gateway</h1>",
        )
            .into_response();
    };
    let status = StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HeaderMap::new();
    for (name, value) in upstream.headers() {
        if !hop_by_hop(name.as_str())
            && let (Ok(n), Ok(v)) = (
                header::HeaderName::from_bytes(name.as_str().as_bytes()),
                header::HeaderValue::from_bytes(value.as_bytes()),
            )
        {
            out.append(n, v);
        }
    }
    out.insert("x-powered-by", header::HeaderValue::from_static("goauthentik.io"));
    let bytes = upstream.bytes().await.unwrap_or_default();
    let mut response = (status, bytes).into_response();
    response.headers_mut().extend(out);
    response
}

fn json_response(status: u16, body: Option<Value>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match body {
        Some(body) => (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response(),
        None => status.into_response(),
    }
}

fn handle(inner: Arc<Inner>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path();
    match path {
        "/-/health/ready/" | "/-/health/live/" => return StatusCode::NO_CONTENT.into_response(),
        "/-/sim/counters" => {
            let counts = inner.counts.lock().expect("counts").clone();
            return json_response(200, Some(json!(counts)));
        }
        "/-/sim/violations" => {
            let v = inner.violations.lock().expect("violations").clone();
            return json_response(200, Some(json!(v)));
        }
        _ => {}
    }
    if let Some(slug) = path
        .strip_prefix("/application/o/")
        .and_then(|rest| rest.strip_suffix("/.well-known/openid-configuration"))
    {
        let world = inner.world.lock().expect("world");
        return match world.discovery(slug) {
            Some(doc) => json_response(200, Some(doc)),
            None => json_response(404, Some(json!({"detail": "Not found."}))),
        };
    }
    let Some(api_path) = path.strip_prefix("/api/v3") else {
        return json_response(404, Some(json!({"detail": "Not found."})));
    };
    let request_line = format!("{method} {path}");
    let record = |direction: &'static str, violations: Vec<Violation>| {
        inner.violations.lock().expect("violations").push(RecordedViolation {
            direction,
            request: request_line.clone(),
            violations,
        });
    };

    let mut world = inner.world.lock().expect("world");
    let op = match world.schema.route(method.as_str(), api_path) {
        Ok(op) => op,
        Err(e) => {
            let (status, detail) = match e {
                RouteError::NotFound => (404, "Not found.".to_string()),
                RouteError::MethodNotAllowed => (405, format!("Method \"{method}\" not allowed.")),
            };
            record(
                "request",
                vec![Violation {
                    path: String::new(),
                    field: String::new(),
                    message: format!(
                        "{method} {api_path} is not part of the Authentik {} API",
                        world.schema.version
                    ),
                }],
            );
            return json_response(status, Some(json!({ "detail": detail })));
        }
    };
    *inner
        .counts
        .lock()
        .expect("counts")
        .entry(format!("{} {}", op.method, op.template))
        .or_default() += 1;

    if !world.schema.allows_anonymous(&op) {
        // `authentik/api/authentication.py` `bearer_auth`: the header is stripped, its first word
        // compared to `bearer` in lower case; another scheme is refused up to 2025.10 and ignored
        // from 2025.12 (then no credentials). Always 403, never 401: DRF turns the 401 into 403
        // because neither authenticator defines `authenticate_header`.
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .unwrap_or("");
        let detail = match auth.split_once(' ') {
            None => Some("Authentication credentials were not provided."),
            Some((scheme, _)) if !scheme.eq_ignore_ascii_case("bearer") => {
                if world.release() >= (2025, 12, 0) {
                    Some("Authentication credentials were not provided.")
                } else {
                    Some("Unsupported authentication type")
                }
            }
            Some((_, token)) if token.trim() != inner.token => Some("Token invalid/expired"),
            Some(_) => None,
        };
        if let Some(detail) = detail {
            return checked(&world, &op, 403, Some(json!({ "detail": detail })), &record);
        }
    }

    // Injected faults answer before validation: they stand for a proxy or an overloaded server.
    let fault = {
        let mut faults = inner.faults.lock().expect("faults");
        let found = faults
            .iter_mut()
            .find(|f| f.times > 0 && f.method == op.method && f.template == op.template);
        found.map(|f| {
            f.times -= 1;
            f.clone()
        })
    };
    let fault_response = |f: &Fault| {
        let mut response = json_response(
            f.status,
            Some(json!({"detail": format!("injected fault {}", f.status)})),
        );
        if let Some(secs) = f.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        response
    };
    let fault = fault.or_else(|| inner.chaos.lock().expect("chaos").roll(&op.method));
    if fault.is_some() {
        inner.injected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(f) = &fault
        && !f.after_commit
    {
        return fault_response(f);
    }

    let query = Query(
        uri.query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
    );
    let declared = world.schema.query_params(&op);
    let unknown: Vec<Violation> = query
        .0
        .iter()
        .filter(|(k, _)| !declared.contains(k))
        .map(|(k, _)| Violation {
            path: String::new(),
            field: k.clone(),
            message: format!(
                "query parameter `{k}` is not declared for {} {}; Authentik ignores it and returns the unfiltered list",
                op.method, op.template
            ),
        })
        .collect();
    if !unknown.is_empty() {
        record("request", unknown);
    }

    // The schema itself, served as the server serves it rather than through the object model.
    if op.template == "/schema/" {
        let json = query.get("format") == Some("json");
        let schema = world.schema.clone();
        let reported = world.reported_version.clone();
        drop(world);
        let mut text = schema.served(json);
        if let Some(version) = reported
            && json
            && let Ok(mut doc) = serde_json::from_str::<Value>(&text)
        {
            doc["info"]["version"] = json!(version);
            text = doc.to_string();
        }
        let content_type = if json {
            "application/vnd.oai.openapi+json"
        } else {
            "application/vnd.oai.openapi"
        };
        return (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], text).into_response();
    }

    let body = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                record(
                    "request",
                    vec![Violation {
                        path: String::new(),
                        field: String::new(),
                        message: format!("body is not JSON: {e}"),
                    }],
                );
                return checked(
                    &world,
                    &op,
                    400,
                    Some(json!({"detail": format!("JSON parse error - {e}")})),
                    &record,
                );
            }
        }
    };
    if matches!(op.method.as_str(), "POST" | "PUT" | "PATCH") {
        let instance = body.clone().unwrap_or(Value::Null);
        if let Err(violations) = world.schema.validate_request(&op, &instance) {
            let reply = Reply::field_errors(
                violations
                    .iter()
                    .map(|v| (v.field.clone(), v.message.clone()))
                    .collect(),
            );
            record("request", violations);
            return checked(&world, &op, reply.status, reply.body, &record);
        }
    }

    match api::dispatch(&mut world, &op, &query, body) {
        Some(reply) => {
            let response = checked(&world, &op, reply.status, reply.body, &record);
            for hook in inner.after.lock().expect("after").iter_mut() {
                if hook.method == op.method && hook.template == op.template && hook.action.is_some() {
                    hook.remaining -= 1;
                    if hook.remaining == 0
                        && let Some(action) = hook.action.take()
                    {
                        action(&mut world);
                    }
                }
            }
            match &fault {
                Some(f) => fault_response(f),
                None => response,
            }
        }
        None => {
            let message = format!("ssoctl-sim does not simulate {} {} yet", op.method, op.template);
            record(
                "request",
                vec![Violation {
                    path: String::new(),
                    field: String::new(),
                    message: message.clone(),
                }],
            );
            json_response(501, Some(json!({ "detail": message })))
        }
    }
}

/// Validates a response before sending it; a violation is a simulator bug, answered 500.
fn checked(
    world: &World,
    op: &Operation,
    status: u16,
    body: Option<Value>,
    record: &dyn Fn(&'static str, Vec<Violation>),
) -> Response {
    match world.schema.validate_response(op, status, body.as_ref()) {
        Ok(()) => json_response(status, body),
        Err(violations) => {
            let text: Vec<String> = violations
                .iter()
                .map(|v| format!("[{}] {}", v.path, v.message))
                .collect();
            record("response", violations);
            json_response(
                500,
                Some(json!({"detail": format!("ssoctl-sim response violates the schema: {}", text.join("; "))})),
            )
        }
    }
}
