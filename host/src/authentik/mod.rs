//! The Authentik layer: a small hand-written client for the `/api/v3` subset ssoctl uses, with
//! version detection, pagination, retries and per-run lookup caches. The admin token lives here
//! and nowhere else; no error message or log line ever contains it.

pub mod models;
pub mod version;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::OnceCell;

use models::{Keypair, LoginFlow, Page, SamlMapping, ScopeMapping, VersionInfo};
pub use version::{LiveSchema, NEWEST_KNOWN, OLDEST_KNOWN, RequestShapes, Version};

/// Objects per list page. Authentik accepts larger pages, but 100 is what its UI asks for and
/// what every release serves without complaint.
const PAGE_SIZE: u64 = 100;
/// Pages of one list fetched at once.
const PAGE_FETCHES: usize = 8;
/// A list longer than this many pages is cut (a million objects: not a real install).
const MAX_PAGES: u64 = 10_000;
/// Reads of a list that keeps changing under us before giving up.
const LIST_ATTEMPTS: u32 = 3;

/// Why one read of a list failed: a page gone (read the list again) or anything else.
enum ListError {
    PageGone(AkError),
    Other(AkError),
}

impl From<AkError> for ListError {
    fn from(e: AkError) -> Self {
        ListError::Other(e)
    }
}

/// One list endpoint's objects, as read at the start of a run, with an index per field looked
/// up by (built on first use): finding each of a thousand services' objects is a hash lookup,
/// not a scan of the list.
pub struct Snapshot {
    items: Vec<Value>,
    indexes: Mutex<HashMap<String, Arc<HashMap<String, usize>>>>,
}

impl Snapshot {
    fn new(items: Vec<Value>) -> Self {
        Self {
            items,
            indexes: Mutex::new(HashMap::new()),
        }
    }

    /// Every object, in the server's order.
    pub fn items(&self) -> &[Value] {
        &self.items
    }

    /// The first object whose string field `field` is `value`.
    pub fn find(&self, field: &str, value: &str) -> Option<&Value> {
        let index = self
            .indexes
            .lock()
            .expect("snapshot index")
            .entry(field.to_string())
            .or_insert_with(|| {
                let mut index = HashMap::new();
                for (at, item) in self.items.iter().enumerate() {
                    if let Some(v) = item.get(field).and_then(Value::as_str) {
                        index.entry(v.to_string()).or_insert(at);
                    }
                }
                Arc::new(index)
            })
            .clone();
        index.get(value).map(|at| &self.items[*at])
    }
}

/// Name of the keypair Authentik creates at start-up to sign tokens and assertions.
pub const SELF_SIGNED_KEYPAIR: &str = "authentik Self-signed Certificate";

/// DRF's `PermissionDenied.default_detail`: what a valid token of a user without the right gets.
const NO_PERMISSION: &str = "You do not have permission to perform this action.";

#[derive(Debug, thiserror::Error)]
pub enum AkError {
    #[error("Authentik at {url} is unreachable ({reason}). Check AUTHENTIK_URL in .env{hint}")]
    Unreachable {
        url: String,
        reason: String,
        hint: &'static str,
    },

    #[error(
        "Authentik at {url} is not ready after {waited_s} s (GET /-/health/ready/ answered {last}). Start it or raise --wait"
    )]
    NotReady { url: String, waited_s: u64, last: String },

    #[error(
        "Authentik at {url} rejected AUTHENTIK_ADMIN_TOKEN ({detail}). Create an API token with intent \
         \"API\" for an admin user (Directory → Tokens) and set AUTHENTIK_ADMIN_TOKEN in .env"
    )]
    Forbidden { url: String, detail: String },

    #[error(
        "Authentik refused {method} {path}: the token's user may not do this. ssoctl needs an API \
         token of a superuser (a member of a group with superuser rights, such as `authentik Admins`)"
    )]
    NoPermission { method: String, path: String },

    #[error("{method} {path}: not found")]
    NotFound { method: String, path: String },

    #[error(
        "{url} answers, but not as Authentik's API ({detail}). Check that AUTHENTIK_URL (or \
         AUTHENTIK_API_URL) points at the Authentik server, not at another service or a proxy's default site"
    )]
    NotAuthentik { url: String, detail: String },

    #[error("Authentik refused {method} {path}: {fields}")]
    Validation {
        method: String,
        path: String,
        fields: String,
    },

    #[error("Authentik answered {status} to {method} {path}{detail}")]
    Status {
        method: String,
        path: String,
        status: u16,
        detail: String,
    },

    #[error("{method} {path}: the request may or may not have been applied ({reason})")]
    MaybeApplied {
        method: String,
        path: String,
        reason: String,
    },

    #[error("{method} {path}: unexpected answer: {reason}")]
    Decode {
        method: String,
        path: String,
        reason: String,
    },
}

impl AkError {
    /// A create refused because an object with that name (or slug) exists: Authentik's unique
    /// validators answer 400 `{"name": ["... with this name already exists."]}`.
    pub fn is_name_taken(&self) -> bool {
        matches!(self, AkError::Validation { fields, .. }
            if fields.contains("with this name already exists") || fields.contains("with this slug already exists"))
    }
}

/// How the client retries: 429 (honouring Retry-After), 503, and for requests that are safe to
/// repeat also 502/504 and timeouts. A POST that may have been applied is never repeated blindly.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts once this much time has gone into one call.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_total: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with ±50 % jitter, so clients that failed together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1 << (attempt - 1).min(8))
            .min(self.max_delay);
        exponential.mul_f64(0.5 + rand::random::<f64>())
    }
}

/// Connection settings read from the stack's `.env`.
#[derive(Clone)]
pub struct AuthentikConfig {
    /// Public base URL (`AUTHENTIK_URL`): issuer and endpoint URLs are built from it.
    pub public_url: String,
    /// Where the API is reached (`AUTHENTIK_API_URL`, default the public URL).
    pub api_url: String,
    pub token: String,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for AuthentikConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthentikConfig")
            .field("public_url", &self.public_url)
            .field("api_url", &self.api_url)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// A client for one Authentik server, shared by every service run of a command.
pub struct Authentik {
    http: reqwest::Client,
    config: AuthentikConfig,
    request_shapes: OnceCell<RequestShapes>,
    login_flows: OnceCell<Vec<LoginFlow>>,
    snapshots: Mutex<HashMap<String, Arc<OnceCell<Arc<Snapshot>>>>>,
    signing_keypair: OnceCell<Keypair>,
    signing_certificate: OnceCell<String>,
    scope_mappings: OnceCell<Vec<ScopeMapping>>,
    saml_mappings: OnceCell<Vec<SamlMapping>>,
}

impl Authentik {
    pub fn new(mut config: AuthentikConfig) -> Result<Self, AkError> {
        config.public_url = config.public_url.trim_end_matches('/').to_string();
        config.api_url = config.api_url.trim_end_matches('/').to_string();
        // Loading the system's root certificates costs milliseconds per command; an API reached
        // over plain http (the bundled Authentik on the stack's internal network) needs none.
        let tls = !config.api_url.starts_with("http://");
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("ssoctl/", env!("CARGO_PKG_VERSION")))
            .tls_built_in_root_certs(tls)
            .build()
            .map_err(|e| AkError::Unreachable {
                url: config.api_url.clone(),
                reason: e.to_string(),
                hint: "",
            })?;
        Ok(Self {
            http,
            config,
            request_shapes: OnceCell::new(),
            login_flows: OnceCell::new(),
            snapshots: Mutex::new(HashMap::new()),
            signing_keypair: OnceCell::new(),
            signing_certificate: OnceCell::new(),
            scope_mappings: OnceCell::new(),
            saml_mappings: OnceCell::new(),
        })
    }

    /// Public base URL, without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.config.public_url
    }

    /// The admin token, for the log scrubber only.
    pub fn token(&self) -> &str {
        &self.config.token
    }

    /// Waits for `GET /-/health/ready/` to answer 204. With `wait == 0` (external Authentik) it
    /// must answer at once.
    pub async fn wait_ready(&self, wait: Duration) -> Result<(), AkError> {
        let url = format!("{}/-/health/ready/", self.config.api_url);
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(250);
        let mut announced: Option<Duration> = None;
        loop {
            let last = match self.http.get(&url).send().await {
                Ok(r) if r.status() == StatusCode::NO_CONTENT || r.status() == StatusCode::OK => return Ok(()),
                Ok(r) => format!("{}", r.status()),
                Err(e) if started.elapsed() >= wait => {
                    return Err(AkError::Unreachable {
                        url: self.config.api_url.clone(),
                        reason: describe_transport(&e),
                        hint: if wait.is_zero() {
                            " (AUTHENTIK_BOOTSTRAP_SKIP=true: an external Authentik must answer at once)"
                        } else {
                            "; for the bundled Authentik, start it first"
                        },
                    });
                }
                Err(e) => describe_transport(&e),
            };
            if started.elapsed() >= wait {
                return Err(AkError::NotReady {
                    url: self.config.api_url.clone(),
                    waited_s: wait.as_secs(),
                    last,
                });
            }
            // A bundled Authentik takes a while to start: say what is awaited and for how long,
            // at the first miss and then about every 15 s, rather than sit silent.
            let waited = started.elapsed();
            if announced.is_none_or(|at: std::time::Duration| waited >= at + Duration::from_secs(15)) {
                tracing::warn!(
                    "waiting for Authentik at {} to be ready (GET /-/health/ready/ answered {last}): {} s so far, \
                     at most {} s (--wait)",
                    self.config.api_url,
                    waited.as_secs(),
                    wait.as_secs()
                );
                announced = Some(waited);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Detects the server once: its live schema (`schema/`, anonymous, read for `info.version` and
    /// the request shapes) fetched together with the flow list, which every provider needs and
    /// which checks the token. `admin/version/` is asked only when the schema cannot be read or
    /// names no version. One round trip on every server that serves its schema.
    pub async fn request_shapes(&self) -> Result<&RequestShapes, AkError> {
        self.request_shapes
            .get_or_try_init(|| async {
                let (schema, flows) = tokio::join!(self.live_schema(), self.login_flows());
                // Every Authentik release serves its flow list: a 404 there is another server.
                flows.map_err(|e| match e {
                    AkError::NotFound { .. } => AkError::NotAuthentik {
                        url: self.config.api_url.clone(),
                        detail: "GET /api/v3/flows/instances/ answered 404".into(),
                    },
                    other => other,
                })?;
                let schema = schema.inspect_err(|why| {
                    tracing::debug!("live schema not readable ({why}); request shapes from the version table");
                });
                if let Ok(schema) = &schema
                    && let Some(version) = schema.version()
                {
                    return Ok(RequestShapes::from_schema(version, schema));
                }
                let info = self.get::<VersionInfo>("admin/version/", &[]).await?;
                let reported = Version::parse(&info.version_current).ok_or_else(|| AkError::Decode {
                    method: "GET".into(),
                    path: "admin/version/".into(),
                    reason: format!("version `{}` is not YYYY.M.P", info.version_current),
                })?;
                Ok(match schema {
                    Ok(schema) => RequestShapes::from_schema(reported, &schema),
                    Err(_) => RequestShapes::for_version(reported),
                })
            })
            .await
    }

    /// `GET schema/?format=json`, parsed for the few facts that decide request shapes.
    async fn live_schema(&self) -> Result<LiveSchema, String> {
        let url = format!("{}/api/v3/schema/", self.config.api_url);
        let response = self
            .http
            .get(&url)
            .query(&[("format", "json")])
            .bearer_auth(&self.config.token)
            .send()
            .await
            .map_err(|e| describe_transport(&e))?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let bytes = response.bytes().await.map_err(|e| describe_transport(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("not an OpenAPI document: {e}"))
    }

    /// Every flow, listed once per run (a default install has about twenty).
    async fn login_flows(&self) -> Result<&[LoginFlow], AkError> {
        self.login_flows
            .get_or_try_init(|| self.list::<LoginFlow>("flows/instances/", &[]))
            .await
            .map(Vec::as_slice)
    }

    /// A flow by slug, from the run's flow list.
    pub async fn login_flow(&self, slug: &str) -> Result<LoginFlow, AkError> {
        self.login_flows()
            .await?
            .iter()
            .find(|f| f.slug == slug)
            .cloned()
            .ok_or_else(|| AkError::NotFound {
                method: "GET".into(),
                path: format!("flows/instances/ (flow `{slug}`)"),
            })
    }

    /// Every object of a list endpoint as it was when this command first asked, fetched once
    /// and shared by every service of the run: a `check` of N services costs a few pages per
    /// object kind, not one request per service. Lookups that must see the server now (after a
    /// create whose answer was lost) use [`Authentik::list`] instead.
    pub async fn snapshot(&self, path: &str) -> Result<Arc<Snapshot>, AkError> {
        let cell = self
            .snapshots
            .lock()
            .expect("snapshot cache")
            .entry(path.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(|| async { Ok(Arc::new(Snapshot::new(self.list::<Value>(path, &[]).await?))) })
            .await
            .cloned()
    }

    /// The first object of the snapshot of `path` whose `field` is `value`, decoded.
    pub async fn snapshot_find<T: DeserializeOwned>(
        &self,
        path: &str,
        field: &str,
        value: &str,
    ) -> Result<Option<T>, AkError> {
        let all = self.snapshot(path).await?;
        // Decoded from the shared value in place: an outpost lists every provider it serves,
        // and cloning it for each service would cost more than the whole lookup.
        all.find(field, value)
            .map(|found| {
                serde::Deserialize::deserialize(found).map_err(|e| AkError::Decode {
                    method: "GET".into(),
                    path: path.into(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// The self-signed keypair Authentik signs with, looked up once per run.
    pub async fn signing_keypair(&self) -> Result<Keypair, AkError> {
        self.signing_keypair
            .get_or_try_init(|| async {
                let found: Vec<Keypair> = self
                    .list(
                        "crypto/certificatekeypairs/",
                        &[
                            ("name", SELF_SIGNED_KEYPAIR.to_string()),
                            ("has_key", "true".to_string()),
                        ],
                    )
                    .await?;
                // Filters are re-checked: an unknown filter is silently ignored by Authentik.
                found
                    .into_iter()
                    .find(|k| k.name == SELF_SIGNED_KEYPAIR)
                    .ok_or_else(|| AkError::NotFound {
                        method: "GET".into(),
                        path: format!("crypto/certificatekeypairs/ (keypair `{SELF_SIGNED_KEYPAIR}`)"),
                    })
            })
            .await
            .cloned()
    }

    /// PEM of the signing keypair's certificate (what a SAML service provider must trust),
    /// fetched once per run.
    pub async fn signing_certificate(&self) -> Result<String, AkError> {
        let keypair = self.signing_keypair().await?;
        #[derive(serde::Deserialize)]
        struct CertificateData {
            data: String,
        }
        self.signing_certificate
            .get_or_try_init(|| async {
                let path = format!("crypto/certificatekeypairs/{}/view_certificate/", keypair.pk);
                Ok::<_, AkError>(self.get::<CertificateData>(&path, &[]).await?.data)
            })
            .await
            .cloned()
    }

    /// Every OAuth2 scope mapping, fetched once per run (a few dozen objects, one page).
    pub async fn scope_mappings(&self) -> Result<&[ScopeMapping], AkError> {
        let path = self.request_shapes().await?.scope_mapping_path;
        self.scope_mappings
            .get_or_try_init(|| async { self.list::<ScopeMapping>(path, &[]).await })
            .await
            .map(Vec::as_slice)
    }

    /// Every SAML property mapping, fetched once per run.
    pub async fn saml_mappings(&self) -> Result<&[SamlMapping], AkError> {
        let path = self.request_shapes().await?.saml_mapping_path;
        self.saml_mappings
            .get_or_try_init(|| async { self.list::<SamlMapping>(path, &[]).await })
            .await
            .map(Vec::as_slice)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, AkError> {
        let body = self.send(Method::GET, path, query, None).await?;
        decode("GET", path, body)
    }

    /// GET that maps 404 to `None`.
    pub async fn get_opt<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, AkError> {
        match self.get(path, &[]).await {
            Ok(v) => Ok(Some(v)),
            Err(AkError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every page of a list (`page_size=100`): the first page tells how many there are, the rest
    /// are fetched together (at most [`PAGE_FETCHES`] at a time), so a list costs two round trips
    /// whatever its length.
    ///
    /// Objects deleted by someone else while the pages travel make the last page disappear, and
    /// Authentik answers a page past the last with 404 "Invalid page." (DRF's
    /// `PageNumberPagination`): the list is then read again from the first page, a few times at
    /// most, instead of failing the command.
    pub async fn list<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<T>, AkError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.list_once(path, query).await {
                Err(ListError::PageGone(_)) if attempt < LIST_ATTEMPTS => {
                    tracing::debug!(
                        "{path}: a page disappeared while the list was read (objects deleted); reading it again"
                    );
                }
                Err(ListError::PageGone(e) | ListError::Other(e)) => return Err(e),
                Ok(items) => return Ok(items),
            }
        }
    }

    async fn list_once<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<T>, ListError> {
        use futures::{StreamExt, TryStreamExt};
        let page_query = |page: u64| {
            let mut q: Vec<(&str, String)> = query.to_vec();
            // Authentik filters the application list by the caller's own access (its policy
            // engine runs for the token's user, superusers included) and caches that filtered
            // page for a day, cleared when an application is created but not when one changes
            // (authentik/core/api/applications.py, authentik/core/signals.py): an application
            // bound to a group the admin is not in would look missing, a fixed one unchanged.
            // A superuser's token may ask for the full, uncached list.
            if path == "core/applications/" && !q.iter().any(|(k, _)| *k == "superuser_full_list") {
                q.push(("superuser_full_list", "true".to_string()));
            }
            q.push(("page", page.to_string()));
            q.push(("page_size", PAGE_SIZE.to_string()));
            q
        };
        let first: Page<T> =
            decode("GET", path, self.send(Method::GET, path, &page_query(1), None).await?).map_err(ListError::Other)?;
        let mut out = first.results;
        let total = first.pagination.total_pages as u64;
        if first.pagination.next as u64 == 0 || total < 2 {
            return Ok(out);
        }
        let rest: Vec<Vec<T>> = futures::stream::iter(2..=total.min(MAX_PAGES))
            .map(|page| {
                let q = page_query(page);
                async move {
                    let body = self.send(Method::GET, path, &q, None).await.map_err(|e| match e {
                        e @ AkError::NotFound { .. } => ListError::PageGone(e),
                        other => ListError::Other(other),
                    })?;
                    let body: Page<T> = decode("GET", path, body).map_err(ListError::Other)?;
                    Ok::<_, ListError>(body.results)
                }
            })
            .buffered(PAGE_FETCHES)
            .try_collect()
            .await?;
        out.extend(rest.into_iter().flatten());
        Ok(out)
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T, AkError> {
        decode("POST", path, self.send(Method::POST, path, &[], Some(body)).await?)
    }

    pub async fn patch<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T, AkError> {
        decode("PATCH", path, self.send(Method::PATCH, path, &[], Some(body)).await?)
    }

    pub async fn delete(&self, path: &str) -> Result<(), AkError> {
        self.send(Method::DELETE, path, &[], None).await.map(|_| ())
    }

    /// One API call with retries. Returns the body (`Null` for 204).
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, AkError> {
        let url = format!("{}/api/v3/{}", self.config.api_url, path.trim_start_matches('/'));
        let repeatable = matches!(method, Method::GET | Method::PATCH | Method::PUT);
        let policy = &self.config.retry;
        let started = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.config.token)
                .query(query);
            if let Some(b) = body {
                req = req.json(b);
            }
            let backoff = policy.backoff(attempt);
            let last_attempt = attempt >= policy.attempts || started.elapsed() + backoff > policy.max_total;
            let response = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    // A refused connection never reached the server; a timeout might have.
                    let safe = e.is_connect() || repeatable;
                    if safe && !last_attempt {
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                    if !safe {
                        return Err(AkError::MaybeApplied {
                            method: method.to_string(),
                            path: path.into(),
                            reason: describe_transport(&e),
                        });
                    }
                    return Err(AkError::Unreachable {
                        url: self.config.api_url.clone(),
                        reason: describe_transport(&e),
                        hint: "",
                    });
                }
            };
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(policy.max_delay));
            // 503 and 429 mean "not processed": safe for every method. 500/502/504 may hide a
            // change that landed: repeated only when repeating is harmless.
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE
                || (repeatable && matches!(status.as_u16(), 500 | 502 | 504));
            if retryable && !last_attempt {
                tokio::time::sleep(retry_after.unwrap_or(backoff)).await;
                continue;
            }
            let text = response.text().await.unwrap_or_default();
            let json: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
            };
            let m = method.to_string();
            return match status.as_u16() {
                200..=299 => Ok(json),
                // A valid token of a user without the permission is refused by DRF's permission
                // classes with this text (authentik/api/authentication.py words a bad token
                // differently): name the missing right, not the token.
                403 if detail_of(&json) == NO_PERMISSION => Err(AkError::NoPermission {
                    method: m,
                    path: path.into(),
                }),
                403 | 401 => Err(AkError::Forbidden {
                    url: self.config.api_url.clone(),
                    detail: detail_of(&json),
                }),
                404 => Err(AkError::NotFound {
                    method: m,
                    path: path.into(),
                }),
                400 => Err(AkError::Validation {
                    method: m,
                    path: path.into(),
                    fields: field_errors(&json),
                }),
                500 | 502 | 504 if method == Method::POST => Err(AkError::MaybeApplied {
                    method: m,
                    path: path.into(),
                    reason: format!("{status}"),
                }),
                code => {
                    let d = detail_of(&json);
                    Err(AkError::Status {
                        method: m,
                        path: path.into(),
                        status: code,
                        detail: if d.is_empty() { String::new() } else { format!(": {d}") },
                    })
                }
            };
        }
    }
}

fn decode<T: DeserializeOwned>(method: &str, path: &str, body: Value) -> Result<T, AkError> {
    // Not JSON at all: a web page where the API should be (a proxy, a login portal, another app).
    if let Value::String(text) = &body
        && text.trim_start().starts_with('<')
    {
        return Err(AkError::Decode {
            method: method.into(),
            path: path.into(),
            reason: "the server answered with an HTML page, not Authentik's JSON API: does AUTHENTIK_URL \
                     (or AUTHENTIK_API_URL) point at Authentik?"
                .into(),
        });
    }
    serde_json::from_value(body).map_err(|e| AkError::Decode {
        method: method.into(),
        path: path.into(),
        reason: e.to_string(),
    })
}

fn describe_transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
        let mut last = String::from("connection failed");
        while let Some(s) = source {
            last = s.to_string();
            source = s.source();
        }
        last
    } else {
        let text = e.to_string();
        match e.url() {
            Some(u) => text.replace(&format!(" for url ({u})"), ""),
            None => text,
        }
    }
}

fn detail_of(json: &Value) -> String {
    match json.get("detail").and_then(Value::as_str) {
        Some(d) => d.to_string(),
        None => match json {
            Value::String(s) => s.chars().take(200).collect(),
            _ => String::new(),
        },
    }
}

/// `{"field": ["msg"]}` → `field: msg; other: msg`.
fn field_errors(json: &Value) -> String {
    match json.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| {
                let msgs = match v {
                    Value::Array(a) => a
                        .iter()
                        .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
                        .collect::<Vec<_>>()
                        .join(" "),
                    other => other.as_str().map(str::to_string).unwrap_or_else(|| other.to_string()),
                };
                format!("{k}: {msgs}")
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => detail_of(json),
    }
}
