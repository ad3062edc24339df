//! Guest side of the `sso:flow` WIT world, shared by every stock flow component.
//!
//! A flow crate implements [`exports::sso::flow::flow::Guest`] and calls [`export_flow!`]. The
//! helpers here ([`Settings`], [`template`], [`oauth`]) keep the per-type crates small; everything
//! that talks to the outside world goes through the imported interfaces, which the host scopes to
//! the service being configured.

wit_bindgen::generate!({
    world: "sso-flow",
    // `wit/` is the repository's WIT folder (a link); a vendored copy holds the file itself.
    path: "wit",
    pub_export_macro: true,
    export_macro_name: "export_flow",
    default_bindings_module: "ssoctl_flow_sdk",
});

pub mod http;
pub mod oauth;
pub mod roles;
pub mod settings;
pub mod template;

pub use exports::sso::flow::flow::{FlowInfo, Guest, Outcome};
pub use settings::Settings;
pub use sso::flow::types::{Finding, FlowError, MatchMode, Mode, RedirectUri, Service};

/// Exports a flow implementation as the component's `sso:flow/flow` interface.
///
/// On wasm32 this is wit-bindgen's export. On the host target, where export names such as
/// `sso:flow/flow@0.1.0#run` cannot be linked into a shared library, it exports nothing, so
/// `cargo build --workspace` and `cargo clippy --workspace` work natively.
#[macro_export]
macro_rules! flow {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::export_flow!($ty);
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            // Keeps the implementation checked (and not dead) on the host target.
            let _ = <$ty as $crate::Guest>::describe;
            let _ = <$ty as $crate::Guest>::run;
            let _ = $ty;
        };
    };
}

/// Forwards panics to the host's `log` import; with `panic = "abort"` on wasm32 a panic would
/// otherwise surface only as "unreachable instruction executed".
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            sso::flow::log::log(sso::flow::log::Level::Error, &format!("flow panicked: {info}"));
        }));
    });
}

/// Ensures the service's application: its slug and display name, the launch URL from
/// `sso.launch_url` (default: the public URL), `sso.open_in_new_tab`, and who may use it
/// (`sso.access`, see [`ensure_access`]).
pub fn ensure_application(service: &Service, settings: &Settings) -> Result<(), FlowError> {
    let launch_url = match settings.get("launch_url") {
        Some(url) => url.to_string(),
        None => format!("{}/", service.public_url),
    };
    sso::flow::authentik::ensure_application(&sso::flow::authentik::ApplicationSpec {
        slug: service.slug.clone(),
        name: service.display_name.clone(),
        launch_url: Some(launch_url),
        open_in_new_tab: settings.bool("open_in_new_tab", false)?,
    })?;
    ensure_access(settings)
}

/// Ensures `sso.access` on the service's application (call after [`ensure_application`]): exactly
/// the manifest's groups and users may use it. Without `sso.access` nothing is called and the
/// application stays open to every user, as Authentik creates it.
pub fn ensure_access(settings: &Settings) -> Result<(), FlowError> {
    let groups: Vec<String> = settings
        .list("access.groups")
        .unwrap_or_default()
        .into_iter()
        .map(str::to_string)
        .collect();
    let users: Vec<String> = settings
        .list("access.users")
        .unwrap_or_default()
        .into_iter()
        .map(str::to_string)
        .collect();
    if groups.is_empty() && users.is_empty() {
        return Ok(());
    }
    sso::flow::authentik::ensure_access(&sso::flow::authentik::AccessSpec { groups, users })
}

/// Operator-facing event line (`[<service> sso] <message>`).
pub fn event(message: &str) {
    sso::flow::log::event(message);
}

/// Diagnostic line, shown with `-v`.
pub fn debug(message: &str) {
    sso::flow::log::log(sso::flow::log::Level::Debug, message);
}
