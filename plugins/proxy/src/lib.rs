//! Flow `proxy`: services without native SSO, behind forward auth. A proxy provider in Authentik
//! (`forward_single` by default, `forward_domain` or `proxy` when the manifest asks), its
//! application, the provider attached to the embedded outpost, and on the service side the
//! Traefik dynamic configuration (forwardAuth middleware + routers) written under
//! `packages/<svc>/`.

use ssoctl_flow_sdk::sso::flow::authentik::{self, ProxyMode, ProxyProviderSpec};
use ssoctl_flow_sdk::sso::flow::service_config;
use ssoctl_flow_sdk::{FlowError, FlowInfo, Guest, Mode, Outcome, Service, Settings};

/// Headers the outpost sets for the service (authentik's Traefik integration guide).
const AUTH_RESPONSE_HEADERS: &[&str] = &[
    "X-authentik-username",
    "X-authentik-groups",
    "X-authentik-entitlements",
    "X-authentik-email",
    "X-authentik-name",
    "X-authentik-uid",
    "X-authentik-jwt",
    "X-authentik-meta-jwks",
    "X-authentik-meta-outpost",
    "X-authentik-meta-provider",
    "X-authentik-meta-app",
    "X-authentik-meta-version",
];

/// Where Traefik reaches the embedded outpost: the authentik server container, port 9000.
const DEFAULT_OUTPOST_URL: &str = "http://authentik-server:9000";

struct ProxyFlow;

impl Guest for ProxyFlow {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: "proxy".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "forward-auth proxy provider on the embedded outpost, with its Traefik configuration"
                .to_string(),
        }
    }

    fn run(service: Service, _mode: Mode) -> Result<Outcome, FlowError> {
        ssoctl_flow_sdk::install_panic_hook();
        let settings = Settings::new(&service.settings);
        ssoctl_flow_sdk::roles::unsupported(
            &settings,
            "the outpost passes the user's groups to the upstream in the X-authentik-groups header (separated by |); map them in the service",
        )?;
        let proxy_mode = match settings.get("mode").unwrap_or("forward_single") {
            "forward_single" => ProxyMode::ForwardSingle,
            "forward_domain" => ProxyMode::ForwardDomain,
            "proxy" => ProxyMode::Proxy,
            other => {
                return Err(FlowError::Invalid(format!(
                    "sso.mode must be forward_single, forward_domain or proxy, not `{other}`"
                )));
            }
        };
        // The Traefik file is built (and its settings checked) before anything is registered.
        let traefik = match proxy_mode {
            ProxyMode::Proxy => None,
            _ => Some(traefik_config(&service, &settings)?),
        };
        let server = authentik::server_info();
        let external_host = match proxy_mode {
            // One provider for the whole domain: logins go through Authentik's own host.
            ProxyMode::ForwardDomain => settings.get("external_host").unwrap_or(&server.url).to_string(),
            _ => service.public_url.clone(),
        };
        authentik::ensure_proxy_provider(
            &service.slug,
            &ProxyProviderSpec {
                mode: proxy_mode,
                external_host,
                internal_host: settings.get("internal_host").map(str::to_string),
                cookie_domain: settings.get("cookie_domain").map(str::to_string),
                skip_path_regex: settings.get("skip_path_regex").map(str::to_string),
                access_token_validity: settings.get("access_token_validity").map(str::to_string),
            },
        )?;
        ssoctl_flow_sdk::ensure_application(&service, &settings)?;
        let outpost = authentik::attach_to_embedded_outpost()?;
        if let Some(config) = traefik {
            let file = settings.get("traefik_file").unwrap_or("traefik/sso.yml");
            service_config::write_file(file, &config)?;
        }
        Ok(Outcome {
            summary: format!("Authentik app present, attached to {outpost}"),
            findings: Vec::new(),
        })
    }
}

/// Traefik dynamic configuration: the forwardAuth middleware, the service's router through it,
/// and the outpost's router for `/outpost.goauthentik.io/` on the service's own host, with a
/// priority above every per-service router (the outpost answers its callback only there).
fn traefik_config(service: &Service, settings: &Settings) -> Result<String, FlowError> {
    let outpost = settings
        .get("outpost_url")
        .unwrap_or(DEFAULT_OUTPOST_URL)
        .trim_end_matches('/');
    let host = service
        .public_url
        .split("://")
        .nth(1)
        .map(|rest| rest.split(['/', ':']).next().unwrap_or(rest))
        .filter(|h| !h.is_empty())
        .ok_or_else(|| FlowError::Invalid(format!("cannot take a host name from `{}`", service.public_url)))?;
    let name = &service.slug;
    let upstream = settings
        .get("traefik_service")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{name}@docker"));
    // Both go into the YAML as plain scalars: anything else would change the file's structure.
    let service_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@');
    if upstream.is_empty() || !upstream.chars().all(service_name) || upstream.matches('@').count() > 1 {
        return Err(FlowError::Invalid(format!(
            "sso.traefik_service `{upstream}` must be a Traefik service name such as `{name}@docker` or `{name}@file`"
        )));
    }
    let plain_url = (outpost.starts_with("http://") || outpost.starts_with("https://"))
        && outpost
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '#' | '\'' | '"' | '`' | '{' | '}' | '[' | ']' | ',' | '\\'));
    if !plain_url {
        return Err(FlowError::Invalid(format!(
            "sso.outpost_url `{outpost}` must be an http(s) URL where Traefik reaches the outpost, e.g. {DEFAULT_OUTPOST_URL}"
        )));
    }
    let headers = AUTH_RESPONSE_HEADERS.join(", ");
    // What the request carries into forward auth and on to the service, set before either:
    // - `X-Forwarded-Host` is the service's own: the outpost picks the application (and the
    //   session cookie it accepts) by it, and an entry point that trusts clients' forwarded
    //   headers (`forwardedHeaders.insecure`, common behind a tunnel) with `trustForwardHeader`
    //   would let a session for one application open another by naming its host.
    // - Traefik passes a client's `X_authentik_username` (or `X.authentik.username`) on beside the
    //   outpost's `X-authentik-username`, and a CGI or PHP backend reads both as the same
    //   variable: a logged-in user could claim to be someone else. Those aliases are deleted
    //   (Traefik deletes a request header set to "" and matches names case-insensitively).
    let authority = service
        .public_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or(host);
    let mut request_headers = format!("\x20         \"X-Forwarded-Host\": \"{authority}\"\n");
    for alias in AUTH_RESPONSE_HEADERS
        .iter()
        .flat_map(|h| [h.replace('-', "_"), h.replace('-', ".")])
    {
        request_headers.push_str(&format!("          \"{alias}\": \"\"\n"));
    }
    Ok(format!(
        "# Written by ssoctl (flow `proxy`): forward auth for {name} through the authentik embedded outpost.\n\
         # Changes are overwritten by `ssoctl fix {name}`; set them in packages/{name}/manifest.yaml instead.\n\
         http:\n\
         \x20 middlewares:\n\
         \x20   {name}-authentik-request:\n\
         \x20     headers:\n\
         \x20       customRequestHeaders:\n\
         {request_headers}\
         \x20   {name}-authentik:\n\
         \x20     forwardAuth:\n\
         \x20       address: {outpost}/outpost.goauthentik.io/auth/traefik\n\
         \x20       trustForwardHeader: true\n\
         \x20       authResponseHeaders: [{headers}]\n\
         \x20 routers:\n\
         \x20   {name}:\n\
         \x20     rule: \"Host(`{host}`)\"\n\
         \x20     middlewares: [{name}-authentik-request, {name}-authentik]\n\
         \x20     service: {upstream}\n\
         \x20     priority: 10\n\
         \x20   {name}-authentik-outpost:\n\
         \x20     rule: \"Host(`{host}`) && PathPrefix(`/outpost.goauthentik.io/`)\"\n\
         \x20     service: {name}-authentik-outpost\n\
         \x20     priority: 1000\n\
         \x20 services:\n\
         \x20   {name}-authentik-outpost:\n\
         \x20     loadBalancer:\n\
         \x20       servers:\n\
         \x20         - url: {outpost}/outpost.goauthentik.io\n"
    ))
}

ssoctl_flow_sdk::flow!(ProxyFlow);
