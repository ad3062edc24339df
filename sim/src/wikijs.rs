//! A fake of Wiki.js 2.5's GraphQL API (`POST /graphql`) for the `wikijs` flow, following
//! docs/service-flows.md §3 and Wiki.js's resolvers: the `authentication` queries and
//! mutations with their 2.5 argument and result types (so a query Wiki.js would reject is
//! rejected here too), `updateStrategies` as a full replace that deletes every strategy it is not
//! sent (refusing when users still sign in with it), config values read as
//! `JSON.parse(value).v` and returned as `{...propDefinition, value}`, the API refusing keys until
//! `setApiState(true)` and revoked keys with Wiki.js's own messages, and `login` for the local
//! admin handing out a session JWT.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_graphql::{Context, EmptySubscription, InputObject, Object, Schema, SimpleObject};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Message of the express error handler when API keys are switched off (`server/core/auth.js`).
pub const API_DISABLED: &str = "API is disabled. You must enable it from the Administration Area first.";
/// Message for a key that was revoked (or expired).
pub const KEY_REVOKED: &str = "API Key is invalid or was revoked.";

/// One configured strategy instance (the `authentication` table).
#[derive(Clone, Debug, PartialEq)]
pub struct Strategy {
    pub key: String,
    pub strategy_key: String,
    pub display_name: String,
    pub order: i32,
    pub is_enabled: bool,
    pub config: Map<String, Value>,
    pub self_registration: bool,
    pub domain_whitelist: Vec<String>,
    pub auto_enroll_groups: Vec<i32>,
}

impl Strategy {
    /// The `local` strategy every installation has.
    pub fn local() -> Self {
        Strategy {
            key: "local".into(),
            strategy_key: "local".into(),
            display_name: "Local".into(),
            order: 0,
            is_enabled: true,
            config: Map::new(),
            self_registration: false,
            domain_whitelist: Vec::new(),
            auto_enroll_groups: Vec::new(),
        }
    }
}

struct ApiKey {
    id: i32,
    name: String,
    token: String,
    revoked: bool,
}

struct State {
    admin_email: String,
    admin_password: String,
    api_enabled: bool,
    api_keys: Vec<ApiKey>,
    sessions: Vec<String>,
    strategies: Vec<Strategy>,
    /// Users signed in through a strategy, by strategy key (blocks deleting it).
    users_by_strategy: BTreeMap<String, u32>,
    requests: Vec<String>,
    next_token: u64,
}

/// Who a request is, after Wiki.js's `authenticate` middleware.
#[derive(Clone, Copy, PartialEq)]
enum Caller {
    Guest,
    Admin,
}

/// The modules Wiki.js ships (`server/modules/authentication/*/definition.yml`), with the props
/// this fake knows; `activeStrategies` returns only config keys that are props of the module.
fn module_props(strategy_key: &str) -> Vec<(&'static str, Value)> {
    let string = |title: &str, order: i32| json!({"type": "String", "title": title, "order": order});
    let boolean =
        |title: &str, order: i32| json!({"type": "Boolean", "title": title, "default": false, "order": order});
    match strategy_key {
        "oidc" => vec![
            ("clientId", string("Client ID", 1)),
            ("clientSecret", string("Client Secret", 2)),
            ("authorizationURL", string("Authorization Endpoint URL", 3)),
            ("tokenURL", string("Token Endpoint URL", 4)),
            ("userInfoURL", string("User Info Endpoint URL", 5)),
            ("skipUserProfile", boolean("Skip User Profile", 6)),
            ("issuer", string("Issuer", 7)),
            ("emailClaim", string("Email Claim", 8)),
            ("displayNameClaim", string("Display Name Claim", 9)),
            ("mapGroups", boolean("Map Groups", 10)),
            ("groupsClaim", string("Groups Claim", 11)),
            ("logoutURL", string("Logout URL", 12)),
        ],
        "github" => vec![
            ("clientId", string("Client ID", 1)),
            ("clientSecret", string("Client Secret", 2)),
            ("useEnterprise", boolean("Use GitHub Enterprise", 3)),
            ("enterpriseDomain", string("GitHub Enterprise Domain", 4)),
        ],
        _ => Vec::new(),
    }
}

const MODULES: &[(&str, &str, bool)] = &[
    ("local", "Local", true),
    ("oidc", "Generic OpenID Connect / OAuth2", false),
    ("github", "GitHub", false),
];

#[derive(SimpleObject)]
#[graphql(name = "KeyValuePair")]
struct KeyValuePair {
    key: String,
    value: String,
}

#[derive(InputObject)]
#[graphql(name = "KeyValuePairInput")]
struct KeyValuePairInput {
    key: String,
    value: String,
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "ResponseStatus")]
struct ResponseStatus {
    succeeded: bool,
    error_code: i32,
    slug: String,
    message: Option<String>,
}

fn success(message: &str) -> ResponseStatus {
    ResponseStatus {
        succeeded: true,
        error_code: 0,
        slug: "ok".into(),
        message: Some(message.into()),
    }
}

/// `graphHelper.generateError`.
fn failure(code: i32, slug: &str, message: &str) -> ResponseStatus {
    ResponseStatus {
        succeeded: false,
        error_code: code,
        slug: slug.into(),
        message: Some(message.into()),
    }
}

#[derive(SimpleObject)]
#[graphql(name = "DefaultResponse")]
struct DefaultResponse {
    response_result: Option<ResponseStatus>,
}

#[derive(SimpleObject)]
#[graphql(name = "AuthenticationStrategy")]
struct StrategyModule {
    key: String,
    title: String,
    props: Option<Vec<Option<KeyValuePair>>>,
    use_form: bool,
    is_available: Option<bool>,
    description: Option<String>,
}

fn module(key: &str) -> StrategyModule {
    let (title, use_form) = MODULES
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, t, f)| (t.to_string(), *f))
        .unwrap_or_else(|| (key.to_string(), false));
    StrategyModule {
        key: key.into(),
        title,
        props: Some(
            module_props(key)
                .into_iter()
                .map(|(k, v)| {
                    Some(KeyValuePair {
                        key: k.into(),
                        value: v.to_string(),
                    })
                })
                .collect(),
        ),
        use_form,
        is_available: Some(true),
        description: None,
    }
}

#[derive(SimpleObject)]
#[graphql(name = "AuthenticationActiveStrategy")]
struct ActiveStrategy {
    key: String,
    strategy: StrategyModule,
    display_name: String,
    order: i32,
    is_enabled: bool,
    config: Option<Vec<Option<KeyValuePair>>>,
    self_registration: bool,
    domain_whitelist: Vec<Option<String>>,
    auto_enroll_groups: Vec<Option<i32>>,
}

#[derive(SimpleObject)]
#[graphql(name = "AuthenticationApiKey")]
struct ApiKeyInfo {
    id: i32,
    name: String,
    key_short: String,
    is_revoked: bool,
}

#[derive(SimpleObject)]
#[graphql(name = "AuthenticationLoginResponse")]
struct LoginResponse {
    response_result: Option<ResponseStatus>,
    jwt: Option<String>,
    must_change_pwd: Option<bool>,
    must_provide_tfa: Option<bool>,
    must_setup_tfa: Option<bool>,
    continuation_token: Option<String>,
    redirect: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(name = "AuthenticationCreateApiKeyResponse")]
struct CreateApiKeyResponse {
    response_result: Option<ResponseStatus>,
    key: Option<String>,
}

#[derive(InputObject)]
#[graphql(name = "AuthenticationStrategyInput")]
struct StrategyInput {
    key: String,
    strategy_key: String,
    config: Option<Vec<Option<KeyValuePairInput>>>,
    display_name: String,
    order: i32,
    is_enabled: bool,
    self_registration: bool,
    domain_whitelist: Vec<Option<String>>,
    auto_enroll_groups: Vec<Option<i32>>,
}

type Shared = Arc<Mutex<State>>;

fn state<'a>(ctx: &'a Context<'_>) -> std::sync::MutexGuard<'a, State> {
    ctx.data_unchecked::<Shared>().lock().expect("wikijs")
}

/// The `@auth(requires: ["manage:system"])` directive.
fn require_admin(ctx: &Context<'_>) -> async_graphql::Result<()> {
    if *ctx.data_unchecked::<Caller>() == Caller::Admin {
        Ok(())
    } else {
        Err("Forbidden".into())
    }
}

struct Query;

#[Object]
impl Query {
    async fn authentication(&self) -> AuthenticationQuery {
        AuthenticationQuery
    }
}

struct AuthenticationQuery;

#[Object(name = "AuthenticationQuery")]
impl AuthenticationQuery {
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Vec<Option<ApiKeyInfo>>>> {
        require_admin(ctx)?;
        let s = state(ctx);
        Ok(Some(
            s.api_keys
                .iter()
                .map(|k| {
                    Some(ApiKeyInfo {
                        id: k.id,
                        name: k.name.clone(),
                        key_short: format!("...{}", &k.token[k.token.len().saturating_sub(20)..]),
                        is_revoked: k.revoked,
                    })
                })
                .collect(),
        ))
    }

    async fn api_state(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        require_admin(ctx)?;
        Ok(state(ctx).api_enabled)
    }

    async fn strategies(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Vec<Option<StrategyModule>>>> {
        require_admin(ctx)?;
        Ok(Some(MODULES.iter().map(|(k, _, _)| Some(module(k))).collect()))
    }

    async fn active_strategies(
        &self,
        ctx: &Context<'_>,
        enabled_only: Option<bool>,
    ) -> async_graphql::Result<Option<Vec<Option<ActiveStrategy>>>> {
        require_admin(ctx)?;
        let s = state(ctx);
        let list = s
            .strategies
            .iter()
            .filter(|st| !enabled_only.unwrap_or(false) || st.is_enabled)
            .map(|st| {
                let props = module_props(&st.strategy_key);
                let mut config: Vec<KeyValuePair> = st
                    .config
                    .iter()
                    .filter_map(|(key, value)| {
                        let (_, definition) = props.iter().find(|(p, _)| p == key)?;
                        let mut shown = definition.as_object().cloned().unwrap_or_default();
                        shown.insert("value".into(), value.clone());
                        Some(KeyValuePair {
                            key: key.clone(),
                            value: Value::Object(shown).to_string(),
                        })
                    })
                    .collect();
                config.sort_by(|a, b| a.key.cmp(&b.key));
                Some(ActiveStrategy {
                    key: st.key.clone(),
                    strategy: module(&st.strategy_key),
                    display_name: st.display_name.clone(),
                    order: st.order,
                    is_enabled: st.is_enabled,
                    config: Some(config.into_iter().map(Some).collect()),
                    self_registration: st.self_registration,
                    domain_whitelist: st.domain_whitelist.iter().cloned().map(Some).collect(),
                    auto_enroll_groups: st.auto_enroll_groups.iter().copied().map(Some).collect(),
                })
            })
            .collect();
        Ok(Some(list))
    }
}

struct Mutation;

#[Object]
impl Mutation {
    async fn authentication(&self) -> AuthenticationMutation {
        AuthenticationMutation
    }
}

struct AuthenticationMutation;

#[Object(name = "AuthenticationMutation")]
impl AuthenticationMutation {
    async fn login(
        &self,
        ctx: &Context<'_>,
        username: String,
        password: String,
        strategy: String,
    ) -> async_graphql::Result<Option<LoginResponse>> {
        let mut s = state(ctx);
        let ok = strategy == "local" && username == s.admin_email && password == s.admin_password;
        let (jwt, result) = if ok {
            s.next_token += 1;
            let jwt = format!(
                "eyJhbGciOiJSUzI1NiJ9.session-{}-{}.sig",
                s.next_token,
                uuid::Uuid::new_v4().simple()
            );
            s.sessions.push(jwt.clone());
            (Some(jwt), success("Login success"))
        } else {
            (
                None,
                failure(1004, "AuthLoginFailed", "Invalid email / username or password."),
            )
        };
        Ok(Some(LoginResponse {
            response_result: Some(result),
            jwt,
            must_change_pwd: Some(false),
            must_provide_tfa: Some(false),
            must_setup_tfa: Some(false),
            continuation_token: None,
            redirect: None,
        }))
    }

    async fn set_api_state(&self, ctx: &Context<'_>, enabled: bool) -> async_graphql::Result<Option<DefaultResponse>> {
        require_admin(ctx)?;
        state(ctx).api_enabled = enabled;
        Ok(Some(DefaultResponse {
            response_result: Some(success("API State changed successfully")),
        }))
    }

    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        name: String,
        expiration: String,
        full_access: bool,
        group: Option<i32>,
    ) -> async_graphql::Result<Option<CreateApiKeyResponse>> {
        require_admin(ctx)?;
        let _ = (expiration, full_access, group);
        let mut s = state(ctx);
        let id = s.api_keys.len() as i32 + 1;
        // Real keys are RS256 JWTs `{api: id, grp}`; shown once.
        let token = format!("eyJhbGciOiJSUzI1NiJ9.api-{id}-{}.sig", uuid::Uuid::new_v4().simple());
        s.api_keys.push(ApiKey {
            id,
            name,
            token: token.clone(),
            revoked: false,
        });
        Ok(Some(CreateApiKeyResponse {
            response_result: Some(success("API Key created successfully")),
            key: Some(token),
        }))
    }

    async fn revoke_api_key(&self, ctx: &Context<'_>, id: i32) -> async_graphql::Result<Option<DefaultResponse>> {
        require_admin(ctx)?;
        let mut s = state(ctx);
        if let Some(k) = s.api_keys.iter_mut().find(|k| k.id == id) {
            k.revoked = true;
        }
        Ok(Some(DefaultResponse {
            response_result: Some(success("API Key revoked successfully")),
        }))
    }

    /// Wiki.js's resolver: patch or insert each strategy sent, then delete every other one.
    async fn update_strategies(
        &self,
        ctx: &Context<'_>,
        strategies: Vec<Option<StrategyInput>>,
    ) -> async_graphql::Result<Option<DefaultResponse>> {
        require_admin(ctx)?;
        let mut s = state(ctx);
        let result = (|| {
            let sent: Vec<StrategyInput> = strategies.into_iter().flatten().collect();
            for input in &sent {
                let mut config = Map::new();
                for pair in input.config.iter().flatten().flatten() {
                    // `_.get(JSON.parse(value.value), 'v', null)`: a value that is not JSON throws.
                    let parsed: Value = serde_json::from_str(&pair.value)
                        .map_err(|e| format!("Unexpected token in JSON at {}: {e}", pair.key))?;
                    config.insert(pair.key.clone(), parsed.get("v").cloned().unwrap_or(Value::Null));
                }
                let strategy = Strategy {
                    key: input.key.clone(),
                    strategy_key: input.strategy_key.clone(),
                    display_name: input.display_name.clone(),
                    order: input.order,
                    is_enabled: input.is_enabled,
                    config,
                    self_registration: input.self_registration,
                    domain_whitelist: input.domain_whitelist.iter().flatten().cloned().collect(),
                    auto_enroll_groups: input.auto_enroll_groups.iter().flatten().copied().collect(),
                };
                match s.strategies.iter_mut().find(|st| st.key == input.key) {
                    Some(existing) => *existing = strategy,
                    None => s.strategies.push(strategy),
                }
            }
            let gone: Vec<Strategy> = s
                .strategies
                .iter()
                .filter(|st| !sent.iter().any(|i| i.key == st.key))
                .cloned()
                .collect();
            for st in gone {
                if s.users_by_strategy.get(&st.key).copied().unwrap_or(0) > 0 {
                    return Err(format!(
                        "Cannot delete {} as 1 or more users are still using it.",
                        st.display_name
                    ));
                }
                s.strategies.retain(|x| x.key != st.key);
            }
            Ok(())
        })();
        Ok(Some(DefaultResponse {
            response_result: Some(match result {
                Ok(()) => success("Strategies updated successfully"),
                Err(message) => failure(1, "Error", &message),
            }),
        }))
    }
}

type WikiSchema = Schema<Query, Mutation, EmptySubscription>;

/// A running fake; dropping it stops the server.
pub struct WikiFake {
    server: crate::FakeServer,
    state: Shared,
}

impl WikiFake {
    /// Starts on a free loopback port with a finished setup: the local admin, the `local`
    /// strategy, and the API switched off (Wiki.js's default).
    pub async fn start(admin_email: &str, admin_password: &str) -> Result<Self, String> {
        let state: Shared = Arc::new(Mutex::new(State {
            admin_email: admin_email.into(),
            admin_password: admin_password.into(),
            api_enabled: false,
            api_keys: Vec::new(),
            sessions: Vec::new(),
            strategies: vec![Strategy::local()],
            users_by_strategy: BTreeMap::new(),
            requests: Vec::new(),
            next_token: 0,
        }));
        let schema = Schema::build(Query, Mutation, EmptySubscription).finish();
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = shared.clone();
            let schema = schema.clone();
            async move { handle(state, schema, method, uri, headers, body).await }
        });
        Ok(Self {
            server: crate::FakeServer::start(app).await?,
            state,
        })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The configured strategies, as stored.
    pub fn strategies(&self) -> Vec<Strategy> {
        self.state.lock().expect("wikijs").strategies.clone()
    }

    /// Adds or replaces a strategy behind the flow's back (a Wiki.js configured by hand).
    pub fn put_strategy(&self, strategy: Strategy) {
        let mut s = self.state.lock().expect("wikijs");
        s.strategies.retain(|st| st.key != strategy.key);
        s.strategies.push(strategy);
    }

    /// Deletes strategy `key` (as the admin area does).
    pub fn delete_strategy(&self, key: &str) {
        self.state.lock().expect("wikijs").strategies.retain(|st| st.key != key);
    }

    /// Changes one config value of strategy `key` (tests of drift).
    pub fn edit_config(&self, key: &str, field: &str, value: Value) {
        let mut s = self.state.lock().expect("wikijs");
        if let Some(st) = s.strategies.iter_mut().find(|st| st.key == key) {
            st.config.insert(field.into(), value);
        }
    }

    /// Records that `count` users sign in through strategy `key`.
    pub fn set_users(&self, key: &str, count: u32) {
        self.state
            .lock()
            .expect("wikijs")
            .users_by_strategy
            .insert(key.into(), count);
    }

    /// Revokes every API key (what an admin does in Administration → API Access).
    pub fn revoke_all_keys(&self) {
        for k in &mut self.state.lock().expect("wikijs").api_keys {
            k.revoked = true;
        }
    }

    /// Switches API keys on or off.
    pub fn set_api_enabled(&self, enabled: bool) {
        self.state.lock().expect("wikijs").api_enabled = enabled;
    }

    pub fn api_enabled(&self) -> bool {
        self.state.lock().expect("wikijs").api_enabled
    }

    /// `(name, revoked)` of every API key.
    pub fn api_keys(&self) -> Vec<(String, bool)> {
        let s = self.state.lock().expect("wikijs");
        s.api_keys.iter().map(|k| (k.name.clone(), k.revoked)).collect()
    }

    /// `METHOD path` plus the GraphQL document's first field path, of every request received.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("wikijs").requests.clone()
    }
}

/// The express error handler's answer for `/graphql` (`server/master.js`).
fn express_error(message: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"data": {}, "errors": [{"message": message, "path": []}]})),
    )
        .into_response()
}

/// Wiki.js's `authenticate` middleware: a session JWT or a valid API key is the admin; an API key
/// while the API is off, or a revoked one, is an error; anything else is the guest.
fn authenticate(state: &State, headers: &HeaderMap) -> Result<Caller, &'static str> {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Ok(Caller::Guest);
    };
    if state.sessions.iter().any(|s| s == token) {
        return Ok(Caller::Admin);
    }
    match state.api_keys.iter().find(|k| k.token == token) {
        Some(_) if !state.api_enabled => Err(API_DISABLED),
        Some(k) if k.revoked => Err(KEY_REVOKED),
        Some(_) => Ok(Caller::Admin),
        None => Ok(Caller::Guest),
    }
}

async fn handle(
    state: Shared,
    schema: WikiSchema,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = {
        let mut s = state.lock().expect("wikijs");
        s.requests.push(format!("{method} {}", uri.path()));
        if uri.path() != "/graphql" {
            return (StatusCode::NOT_FOUND, "Not Found").into_response();
        }
        if method != Method::POST {
            return (StatusCode::BAD_REQUEST, "GET query missing.").into_response();
        }
        match authenticate(&s, &headers) {
            Ok(caller) => caller,
            Err(message) => return express_error(message),
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"errors": [{"message": format!("POST body sent invalid JSON: {e}")}]})),
            )
                .into_response();
        }
    };
    let response = schema.execute(request.data(state.clone()).data(caller)).await;
    // Apollo Server 2 answers 400 when the document does not validate, 200 otherwise.
    let status = if response.data == async_graphql::Value::Null && !response.errors.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (
        status,
        axum::Json(serde_json::to_value(&response).unwrap_or(Value::Null)),
    )
        .into_response()
}
