//! Flow `proxy`: forward-auth proxy provider on the embedded outpost.
//!
//! Not implemented yet: the component builds and loads, and every run answers
//! `unsupported`, so the host reports "flow `proxy` is not implemented yet" as an error instead
//! of a silent success.

use ssoctl_flow_sdk::{FlowError, FlowInfo, Guest, Mode, Outcome, Service};

struct ProxyFlow;

impl Guest for ProxyFlow {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: "proxy".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "forward-auth proxy provider on the embedded outpost (not implemented yet)".to_string(),
        }
    }

    fn run(_service: Service, _mode: Mode) -> Result<Outcome, FlowError> {
        Err(FlowError::Unsupported(
            "flow `proxy` is not implemented yet".to_string(),
        ))
    }
}

ssoctl_flow_sdk::flow!(ProxyFlow);
