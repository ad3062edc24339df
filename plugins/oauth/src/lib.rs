//! Flow `oauth`: an OAuth2 client in Authentik for services configured with explicit endpoints
//! (Redmine, Mattermost's GitLab settings, Linkding), and the `.env` keys they read.

use ssoctl_flow_sdk::oauth::{self, Flavor};
use ssoctl_flow_sdk::{FlowError, FlowInfo, Guest, Mode, Outcome, Service};

const FLAVOR: Flavor = Flavor {
    sso_type: "oauth",
    default_env: &[
        ("OAUTH_CLIENT_ID", "{client_id}"),
        ("OAUTH_CLIENT_SECRET", "{client_secret}"),
        ("OAUTH_AUTH_URL", "{authorize_url}"),
        ("OAUTH_TOKEN_URL", "{token_url}"),
        ("OAUTH_USERINFO_URL", "{userinfo_url}"),
        ("OAUTH_ISSUER", "{issuer}"),
    ],
    force_openid: false,
};

struct OauthFlow;

impl Guest for OauthFlow {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: FLAVOR.sso_type.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "OAuth2 client with explicit endpoints (Redmine, Mattermost, Linkding)".to_string(),
        }
    }

    fn run(service: Service, mode: Mode) -> Result<Outcome, FlowError> {
        ssoctl_flow_sdk::install_panic_hook();
        oauth::run(&FLAVOR, &service, mode)
    }
}

ssoctl_flow_sdk::flow!(OauthFlow);
