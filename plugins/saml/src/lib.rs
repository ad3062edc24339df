//! Flow `saml`: SAML service provider (Zammad).
//!
//! Not implemented yet: the component builds and loads, and every run answers
//! `unsupported`, so the host reports "flow `saml` is not implemented yet" as an error instead
//! of a silent success.

use ssoctl_flow_sdk::{FlowError, FlowInfo, Guest, Mode, Outcome, Service};

struct SamlFlow;

impl Guest for SamlFlow {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: "saml".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "SAML service provider (Zammad) (not implemented yet)".to_string(),
        }
    }

    fn run(_service: Service, _mode: Mode) -> Result<Outcome, FlowError> {
        Err(FlowError::Unsupported("flow `saml` is not implemented yet".to_string()))
    }
}

ssoctl_flow_sdk::flow!(SamlFlow);
