//! Flow `wikijs`: Wiki.js 2.x logins through Authentik (docs/service-flows.md §3).
//!
//! Authentik side: a confidential OAuth2 provider whose redirect URI is Wiki.js's callback for
//! the strategy instance, `<site>/login/<strategy key>/callback`, and its application.
//!
//! Wiki.js side, over its GraphQL API through `service-http` (own origin only):
//! - **API key**: the key in `.env` (`WIKIJS_API_KEY`) is used as a bearer token it never sees.
//!   When it is missing, revoked or the API is switched off, `apply` logs in as the local admin
//!   (`WIKIJS_ADMIN_EMAIL`, password routed unseen from `WIKIJS_ADMIN_PASSWORD`), switches the
//!   API on, mints a key (captured by the host, stored in `.env` once) and revokes the keys this
//!   flow minted before. `check` reports the key as invalid.
//! - **Strategy key**: a UUID derived from the Authentik URL and slug (name-based, so no random
//!   source is needed and a lost `.env` gives the same key), persisted in `.env` so the callback
//!   registered in Authentik stays stable even if the Authentik URL changes later.
//! - **Strategies**: `updateStrategies` is a full replace, so every existing strategy is
//!   resubmitted as read (config values re-encoded as `{"v": value}`), `local` included.

use serde_json::{Map, Value, json};
use ssoctl_flow_sdk::http;
use ssoctl_flow_sdk::sso::flow::authentik::{self, Oauth2Provider, Secret};
use ssoctl_flow_sdk::sso::flow::service_config;
use ssoctl_flow_sdk::{Finding, FlowError, FlowInfo, Guest, Mode, Outcome, Service, Settings};

const SECRET: &str = "{client_secret}";
/// Name of the API keys this flow mints (Administration → API Access shows it).
const KEY_NAME: &str = "ssoctl";
const ACTIVE_STRATEGIES: &str = "query { authentication { activeStrategies { key strategy { key } displayName order \
                                 isEnabled config { key value } selfRegistration domainWhitelist autoEnrollGroups } } }";

struct WikijsFlow;

/// The GraphQL endpoint and the `.env` keys this flow uses, from the manifest.
struct Api {
    path: String,
    api_key_env: String,
    admin_email_env: String,
    admin_password_env: String,
}

impl Api {
    /// One GraphQL request. `secret` fills `{client_secret}` in the variables; `capture` takes a
    /// credential out of the answer. Answers `(data, first error message)`.
    fn graphql(
        &self,
        auth: Option<&Secret>,
        query: &str,
        variables: Value,
        secret: Option<&Secret>,
        capture: Option<&str>,
    ) -> Result<(Value, Option<String>, Option<Secret>), FlowError> {
        let body = json!({"query": query, "variables": variables});
        let capture: Vec<&str> = capture.into_iter().collect();
        let response = http::service(&http::Request {
            body: Some(&body),
            secret,
            bearer: auth,
            capture: &capture,
            ..http::Request::new("POST", &self.path)
        })?;
        if response.status == 204 && response.body.is_null() {
            // A write in check/plan mode: recorded by the host, not sent.
            return Ok((Value::Null, None, None));
        }
        let answer = match response.body {
            Value::String(_) | Value::Null => {
                return Err(FlowError::Upstream(format!(
                    "Wiki.js answered {} with a body that is not JSON: is sso.http.base_url Wiki.js?",
                    response.status
                )));
            }
            answer => answer,
        };
        let error = answer
            .pointer("/errors/0/message")
            .and_then(Value::as_str)
            .map(str::to_string);
        if error.is_none() && !(200..300).contains(&response.status) {
            return Err(FlowError::Upstream(format!("Wiki.js answered {}", response.status)));
        }
        Ok((
            answer.get("data").cloned().unwrap_or(Value::Null),
            error,
            response.captured.into_iter().next().flatten(),
        ))
    }

    /// Whether the key is accepted; the reason when it is not.
    fn key_works(&self, key: &Secret) -> Result<Result<(), String>, FlowError> {
        let (data, error, _) = self.graphql(Some(key), "{ authentication { apiState } }", json!({}), None, None)?;
        Ok(match (data.pointer("/authentication/apiState"), error) {
            (Some(Value::Bool(true)), _) => Ok(()),
            (_, Some(message)) => Err(message),
            _ => Err("the API is switched off".into()),
        })
    }

    /// Local admin login → API on → `stored` when that now works (the API had only been switched
    /// off), else a new full-access key, stored in `.env`, with the older keys this flow minted
    /// revoked. None in plan mode, where the login is only recorded.
    fn bootstrap_key(&self, stored: Option<Secret>) -> Result<Option<Secret>, FlowError> {
        let email = service_config::get_env(&self.admin_email_env)?.ok_or_else(|| {
            FlowError::Invalid(format!(
                "{} is not set in .env: ssoctl logs in as Wiki.js's local admin once to create an API key",
                self.admin_email_env
            ))
        })?;
        let password = service_config::env_secret(&self.admin_password_env)?
            .ok_or_else(|| FlowError::Invalid(format!("{} is not set in .env", self.admin_password_env)))?;
        let (data, error, jwt) = self.graphql(
            None,
            "mutation ($u: String!, $p: String!) { authentication { login(username: $u, password: $p, \
             strategy: \"local\") { jwt responseResult { succeeded message } } } }",
            json!({"u": email, "p": SECRET}),
            Some(&password),
            Some("/data/authentication/login/jwt"),
        )?;
        if data.is_null() && error.is_none() && jwt.is_none() {
            return Ok(None);
        }
        let Some(jwt) = jwt else {
            let why = error
                .or_else(|| message(&data, "/authentication/login"))
                .unwrap_or_default();
            return Err(FlowError::Upstream(format!(
                "Wiki.js refused the local admin login ({}): {why}",
                self.admin_email_env
            )));
        };
        let (data, error, _) = self.graphql(
            Some(&jwt),
            "mutation { authentication { setApiState(enabled: true) { responseResult { succeeded message } } } }",
            json!({}),
            None,
            None,
        )?;
        succeeded(&data, error, "/authentication/setApiState", "switching the API on")?;
        if let Some(stored) = stored
            && self.key_works(&stored)?.is_ok()
        {
            ssoctl_flow_sdk::event("switched Wiki.js's API back on");
            return Ok(Some(stored));
        }
        let (data, error, key) = self.graphql(
            Some(&jwt),
            "mutation ($n: String!) { authentication { createApiKey(name: $n, expiration: \"10y\", fullAccess: true) \
             { key responseResult { succeeded message } } } }",
            json!({"n": KEY_NAME}),
            None,
            Some("/data/authentication/createApiKey/key"),
        )?;
        let key = match key {
            Some(key) => key,
            None => {
                succeeded(&data, error, "/authentication/createApiKey", "creating an API key")?;
                return Err(FlowError::Upstream(
                    "Wiki.js created an API key but did not return it".into(),
                ));
            }
        };
        service_config::set_env_secret(&self.api_key_env, &key)?;
        self.revoke_older_keys(&key)?;
        ssoctl_flow_sdk::event(&format!(
            "created Wiki.js API key `{KEY_NAME}` and stored it in {}",
            self.api_key_env
        ));
        Ok(Some(key))
    }

    /// Revokes every unrevoked key named `ssoctl` but the newest (the one just minted).
    fn revoke_older_keys(&self, key: &Secret) -> Result<(), FlowError> {
        let (data, error, _) = self.graphql(
            Some(key),
            "{ authentication { apiKeys { id name isRevoked } } }",
            json!({}),
            None,
            None,
        )?;
        if let Some(error) = error {
            return Err(FlowError::Upstream(format!(
                "Wiki.js refused to list API keys: {error}"
            )));
        }
        let mut ours: Vec<i64> = data
            .pointer("/authentication/apiKeys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|k| k["name"] == KEY_NAME && k["isRevoked"] == false)
            .filter_map(|k| k["id"].as_i64())
            .collect();
        ours.sort_unstable();
        ours.pop();
        for id in ours {
            let (data, error, _) = self.graphql(
                Some(key),
                "mutation ($id: Int!) { authentication { revokeApiKey(id: $id) { responseResult { succeeded message } } } }",
                json!({"id": id}),
                None,
                None,
            )?;
            succeeded(
                &data,
                error,
                "/authentication/revokeApiKey",
                "revoking an older ssoctl API key",
            )?;
        }
        Ok(())
    }
}

fn message(data: &Value, at: &str) -> Option<String> {
    data.pointer(&format!("{at}/responseResult/message"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Turns a mutation's `responseResult` (or GraphQL error) into an error naming `what`.
fn succeeded(data: &Value, error: Option<String>, at: &str, what: &str) -> Result<(), FlowError> {
    if data.is_null() && error.is_none() {
        return Ok(()); // not sent (check/plan)
    }
    if data.pointer(&format!("{at}/responseResult/succeeded")) == Some(&Value::Bool(true)) {
        return Ok(());
    }
    let why = error.or_else(|| message(data, at)).unwrap_or_default();
    Err(FlowError::Upstream(format!("Wiki.js failed {what}: {why}")))
}

/// A configured strategy as `activeStrategies` returns it, config values decoded.
struct Strategy {
    key: String,
    module: String,
    display_name: String,
    order: i64,
    enabled: bool,
    config: Vec<(String, Value)>,
    self_registration: bool,
    domain_whitelist: Vec<Value>,
    auto_enroll_groups: Vec<Value>,
}

impl Strategy {
    fn parse(v: &Value) -> Self {
        let list = |k: &str| -> Vec<Value> {
            v[k].as_array()
                .map(|a| a.iter().filter(|x| !x.is_null()).cloned().collect())
                .unwrap_or_default()
        };
        Strategy {
            key: v["key"].as_str().unwrap_or("").to_string(),
            module: v
                .pointer("/strategy/key")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            display_name: v["displayName"].as_str().unwrap_or("").to_string(),
            order: v["order"].as_i64().unwrap_or(0),
            enabled: v["isEnabled"].as_bool().unwrap_or(false),
            // Each value is the JSON of `{...propDefinition, value}`.
            config: v["config"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|pair| {
                    let key = pair["key"].as_str()?.to_string();
                    let shown: Value = serde_json::from_str(pair["value"].as_str()?).ok()?;
                    Some((key, shown.get("value").cloned().unwrap_or(Value::Null)))
                })
                .collect(),
            self_registration: v["selfRegistration"].as_bool().unwrap_or(false),
            domain_whitelist: list("domainWhitelist"),
            auto_enroll_groups: list("autoEnrollGroups"),
        }
    }

    fn local() -> Self {
        Strategy {
            key: "local".into(),
            module: "local".into(),
            display_name: "Local".into(),
            order: 0,
            enabled: true,
            config: Vec::new(),
            self_registration: false,
            domain_whitelist: Vec::new(),
            auto_enroll_groups: Vec::new(),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.config.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `AuthenticationStrategyInput`, config values encoded the way the admin UI sends them.
    fn input(&self) -> Value {
        let config: Vec<Value> = self
            .config
            .iter()
            .map(|(k, v)| json!({"key": k, "value": json!({"v": v}).to_string()}))
            .collect();
        json!({
            "key": self.key,
            "strategyKey": self.module,
            "displayName": self.display_name,
            "order": self.order,
            "isEnabled": self.enabled,
            "config": config,
            "selfRegistration": self.self_registration,
            "domainWhitelist": self.domain_whitelist,
            "autoEnrollGroups": self.auto_enroll_groups,
        })
    }
}

/// The strategy instance key persisted in `.env`, or one derived from the provider's issuer
/// (UUID v5) when none is persisted yet (`true`: persist it).
fn strategy_key(env_key: &str, issuer: &str) -> Result<(String, bool), FlowError> {
    if let Some(key) = service_config::get_env(env_key)?.filter(|k| !k.is_empty()) {
        if uuid::Uuid::parse_str(&key).is_err() {
            return Err(FlowError::Invalid(format!("{env_key} `{key}` is not a UUID")));
        }
        return Ok((key, false));
    }
    Ok((
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, issuer.as_bytes()).to_string(),
        true,
    ))
}

/// The OIDC module config this flow wants (`clientSecret` is the placeholder the host fills).
fn desired_config(provider: &Oauth2Provider, settings: &Settings) -> Result<Vec<(String, Value)>, FlowError> {
    let text = |k: &str, v: &str| (k.to_string(), Value::String(v.to_string()));
    Ok(vec![
        text("clientId", &provider.client_id),
        text("clientSecret", SECRET),
        text("authorizationURL", &provider.authorize_url),
        text("tokenURL", &provider.token_url),
        text("userInfoURL", &provider.userinfo_url),
        text("issuer", &provider.issuer),
        text("logoutURL", &provider.end_session_url),
        text("emailClaim", settings.get("email_claim").unwrap_or("email")),
        text("displayNameClaim", settings.get("display_name_claim").unwrap_or("name")),
        ("mapGroups".into(), Value::Bool(settings.bool("map_groups", false)?)),
        text("groupsClaim", settings.get("groups_claim").unwrap_or("groups")),
        ("skipUserProfile".into(), Value::Bool(false)),
    ])
}

impl Guest for WikijsFlow {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: "wikijs".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "Wiki.js 2.x OIDC strategy over its GraphQL API (API key bootstrapped once)".to_string(),
        }
    }

    fn run(service: Service, mode: Mode) -> Result<Outcome, FlowError> {
        ssoctl_flow_sdk::install_panic_hook();
        let settings = Settings::new(&service.settings);
        ssoctl_flow_sdk::roles::unsupported(
            &settings,
            "Wiki.js assigns groups itself (its strategy's group mapping); use sso.access for who may log in",
        )?;
        let prefix = &service.env_prefix;
        let env = |setting: &str, default: &str| {
            settings
                .get(setting)
                .map_or(format!("{prefix}{default}"), str::to_string)
        };
        let api = Api {
            path: settings.get("http.graphql_path").unwrap_or("/graphql").to_string(),
            api_key_env: env("api_key_env", "API_KEY"),
            admin_email_env: env("admin_email_env", "ADMIN_EMAIL"),
            admin_password_env: env("admin_password_env", "ADMIN_PASSWORD"),
        };
        let server = authentik::server_info();
        let issuer = format!("{}/application/o/{}/", server.url, service.slug);
        let key_env = env("strategy_key_env", "OIDC_STRATEGY_KEY");
        let (key, derived) = strategy_key(&key_env, &issuer)?;
        let callback = format!("{}/login/{key}/callback", service.public_url);
        let provider = authentik::ensure_oauth2_provider(
            &service.slug,
            // passport-openidconnect asks for `openid profile email`: the default scopes.
            &ssoctl_flow_sdk::oauth::confidential_oidc_spec(callback),
        )?;
        ssoctl_flow_sdk::ensure_application(&service, &settings)?;
        let mut findings = Vec::new();
        let mut finding = |kind: &str, message: String| {
            findings.push(Finding {
                kind: kind.into(),
                message,
            })
        };
        if provider.client_id.is_empty() {
            // Check/plan, provider not registered yet: that is the finding.
            return Ok(Outcome {
                summary: String::new(),
                findings,
            });
        }
        if derived {
            service_config::set_env(&key_env, &key)?;
        }

        // The API key.
        let stored = service_config::env_secret(&api.api_key_env)?;
        let refused = match &stored {
            Some(k) => api.key_works(k)?.err(),
            None => Some(format!("{} is not set in .env", api.api_key_env)),
        };
        let auth = match (refused, stored) {
            (None, Some(k)) => k,
            (Some(why), _) if mode == Mode::Check => {
                finding(
                    "api-key-invalid",
                    format!("Wiki.js API key {} is not usable: {why}", api.api_key_env),
                );
                return Ok(Outcome {
                    summary: String::new(),
                    findings,
                });
            }
            (_, stored) => match api.bootstrap_key(stored)? {
                Some(key) => key,
                None => {
                    ssoctl_flow_sdk::debug("plan: the API key is created first; strategies are compared after that");
                    return Ok(Outcome {
                        summary: String::new(),
                        findings,
                    });
                }
            },
        };

        // The strategies.
        let (data, error, _) = api.graphql(Some(&auth), ACTIVE_STRATEGIES, json!({}), None, None)?;
        if let Some(error) = error {
            return Err(FlowError::Upstream(format!(
                "Wiki.js refused to list strategies: {error}"
            )));
        }
        let mut strategies: Vec<Strategy> = data
            .pointer("/authentication/activeStrategies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(Strategy::parse)
            .collect();
        let desired = desired_config(&provider, &settings)?;
        let display_name = settings.get("display_name").unwrap_or("Authentik").to_string();
        let self_registration = settings.bool("self_registration", true)?;
        let mut drift: Vec<(&str, String)> = Vec::new();
        if !strategies.iter().any(|s| s.key == "local") {
            drift.push((
                "local-strategy-missing",
                "Wiki.js has no `local` strategy: admins cannot sign in without SSO".into(),
            ));
            strategies.insert(0, Strategy::local());
        }
        let next_order = strategies.iter().map(|s| s.order + 1).max().unwrap_or(0);
        match strategies.iter_mut().find(|s| s.key == key) {
            None => {
                drift.push(("strategy-missing", format!("Wiki.js has no OIDC strategy `{key}`")));
                strategies.push(Strategy {
                    key: key.clone(),
                    module: "oidc".into(),
                    display_name,
                    order: next_order,
                    enabled: true,
                    config: desired,
                    self_registration,
                    domain_whitelist: Vec::new(),
                    auto_enroll_groups: Vec::new(),
                });
            }
            Some(ours) => {
                if ours.module != "oidc" {
                    return Err(FlowError::Invalid(format!(
                        "Wiki.js strategy `{key}` uses module `{}`, not `oidc`: remove it or change {}",
                        ours.module, key_env
                    )));
                }
                for (field, want) in &desired {
                    if ours.get(field) != Some(want) {
                        let kind = if field == "clientSecret" {
                            "client-secret-mismatch"
                        } else {
                            "strategy-mismatch"
                        };
                        let message = if field == "clientSecret" {
                            format!(
                                "client secret mismatch: Wiki.js strategy `{key}` holds another secret than Authentik"
                            )
                        } else {
                            format!("Wiki.js strategy `{key}`: {field} differs from Authentik's")
                        };
                        drift.push((kind, message));
                        ours.config.retain(|(k, _)| k != field);
                        ours.config.push((field.clone(), want.clone()));
                    }
                }
                if !ours.enabled {
                    drift.push(("strategy-disabled", format!("Wiki.js strategy `{key}` is disabled")));
                    ours.enabled = true;
                }
            }
        }
        if mode == Mode::Check {
            for (kind, message) in drift {
                finding(kind, message);
            }
        } else if !drift.is_empty() {
            let inputs: Vec<Value> = strategies.iter().map(Strategy::input).collect();
            let mut variables = Map::new();
            variables.insert("s".into(), Value::Array(inputs));
            let (data, error, _) = api.graphql(
                Some(&auth),
                "mutation ($s: [AuthenticationStrategyInput]!) { authentication { updateStrategies(strategies: $s) \
                 { responseResult { succeeded message } } } }",
                Value::Object(variables),
                Some(&provider.client_secret),
                None,
            )?;
            succeeded(
                &data,
                error,
                "/authentication/updateStrategies",
                "updating the strategies",
            )?;
            if mode == Mode::Apply {
                ssoctl_flow_sdk::event(&format!(
                    "registered OAuth app in {} for Wiki.js strategy `{key}`",
                    server.url
                ));
            }
        }
        Ok(Outcome {
            summary: "Authentik app present, API key valid, strategy matches".to_string(),
            findings,
        })
    }
}

ssoctl_flow_sdk::flow!(WikijsFlow);
