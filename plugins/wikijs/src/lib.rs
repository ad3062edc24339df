//! Flow `wikijs`: Wiki.js OIDC strategy over its GraphQL API.
//!
//! Not implemented yet: the component builds and loads, and every run answers
//! `unsupported`, so the host reports "flow `wikijs` is not implemented yet" as an error instead
//! of a silent success.

use ssoctl_flow_sdk::{FlowError, FlowInfo, Guest, Mode, Outcome, Service};

struct WikijsFlow;

impl Guest for WikijsFlow {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: "wikijs".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "Wiki.js OIDC strategy over its GraphQL API (not implemented yet)".to_string(),
        }
    }

    fn run(_service: Service, _mode: Mode) -> Result<Outcome, FlowError> {
        Err(FlowError::Unsupported(
            "flow `wikijs` is not implemented yet".to_string(),
        ))
    }
}

ssoctl_flow_sdk::flow!(WikijsFlow);
