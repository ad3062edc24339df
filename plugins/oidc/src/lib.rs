//! Flow `oidc`: an OpenID Connect client in Authentik (per-provider issuer, signed tokens, `openid`
//! scope always present) for Grafana, n8n, Superset and friends, and the `.env` keys they read.

use ssoctl_flow_sdk::oauth::{self, Flavor};
use ssoctl_flow_sdk::{FlowError, FlowInfo, Guest, Mode, Outcome, Service};

const FLAVOR: Flavor = Flavor {
    sso_type: "oidc",
    default_env: &[
        ("OIDC_CLIENT_ID", "{client_id}"),
        ("OIDC_CLIENT_SECRET", "{client_secret}"),
        ("OIDC_ISSUER", "{issuer}"),
        ("OIDC_DISCOVERY_URL", "{discovery_url}"),
        ("OIDC_AUTH_URL", "{authorize_url}"),
        ("OIDC_TOKEN_URL", "{token_url}"),
        ("OIDC_USERINFO_URL", "{userinfo_url}"),
        ("OIDC_JWKS_URL", "{jwks_url}"),
        ("OIDC_LOGOUT_URL", "{end_session_url}"),
    ],
    force_openid: true,
};

struct OidcFlow;

impl Guest for OidcFlow {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: FLAVOR.sso_type.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "OpenID Connect client with discovery (Grafana, n8n, Superset)".to_string(),
        }
    }

    fn run(service: Service, mode: Mode) -> Result<Outcome, FlowError> {
        ssoctl_flow_sdk::install_panic_hook();
        oauth::run(&FLAVOR, &service, mode)
    }
}

ssoctl_flow_sdk::flow!(OidcFlow);
