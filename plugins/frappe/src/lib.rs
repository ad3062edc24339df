//! Flow `frappe`: Frappe/ERPNext Social Login Key over its REST API.
//!
//! Not implemented yet: the component builds and loads, and every run answers
//! `unsupported`, so the host reports "flow `frappe` is not implemented yet" as an error instead
//! of a silent success.

use ssoctl_flow_sdk::{FlowError, FlowInfo, Guest, Mode, Outcome, Service};

struct FrappeFlow;

impl Guest for FrappeFlow {
    fn describe() -> FlowInfo {
        FlowInfo {
            sso_type: "frappe".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "Frappe/ERPNext Social Login Key over its REST API (not implemented yet)".to_string(),
        }
    }

    fn run(_service: Service, _mode: Mode) -> Result<Outcome, FlowError> {
        Err(FlowError::Unsupported(
            "flow `frappe` is not implemented yet".to_string(),
        ))
    }
}

ssoctl_flow_sdk::flow!(FrappeFlow);
