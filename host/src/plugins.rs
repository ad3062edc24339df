//! `ssoctl plugins list` and `ssoctl plugins audit [FILE]`: what each flow component is, and
//! exactly which interfaces and functions it imports (its whole reach) and exports.

use std::path::Path;

use crate::bindings::known_imports;
use crate::grants::{GrantSource, Optional};
use crate::runtime::{FlowRuntime, LoadedFlow, Source};

/// What a component's type may use, and where that comes from.
#[derive(serde::Serialize)]
struct GrantsInForce {
    source: GrantSource,
    /// The interfaces every flow may import.
    base: Vec<String>,
    /// The optional capabilities granted to this type (`service-http`, `idp-http to <origin>`).
    optional: Vec<String>,
}

#[derive(serde::Serialize)]
struct Audit<'a> {
    sso_type: &'a str,
    source: &'a Source,
    sha256: &'a str,
    size: usize,
    /// The WIT package the component was built against, from the version in its export's name.
    wit_package: Option<String>,
    /// The host's release an earlier one is linked to (`runtime::adapter`), if it is.
    linked_as: Option<String>,
    imports: &'a [crate::runtime::InterfaceUse],
    exports: &'a [crate::runtime::InterfaceUse],
    /// The optional capabilities the component imports.
    optional_imports: Vec<&'static str>,
    grants: GrantsInForce,
    /// Why the component may not run: an import outside its grants, a missing export.
    refused: Option<String>,
    wasi_imports: Vec<&'a str>,
    /// What it can reach, in the operator's terms (docs/threat-model.md), and what it never can.
    reach: Reach,
}

/// A component's reach: each line what one of its imports lets it do for the service it runs
/// for, as the host bounds it; then what no import lets it do.
#[derive(serde::Serialize)]
struct Reach {
    may: Vec<String>,
    never: Vec<&'static str>,
}

/// What each function a flow may import lets it do, as the host bounds it.
const FUNCTION_REACH: [(&str, &str, &str); 15] = [
    ("authentik", "server-info", "read Authentik's public URL and version"),
    (
        "authentik",
        "ensure-oauth2-provider",
        "create or change the OAuth2 provider named after its service; redirect URIs only on the service's \
         declared origins (public URL, sso.origins) or verbatim from sso.redirect_uris_regex; a public client or \
         grant types beyond authorization code and refresh token only when the manifest declares them",
    ),
    (
        "authentik",
        "ensure-saml-provider",
        "create or change the SAML provider named after its service; its ACS URL only on a declared origin",
    ),
    (
        "authentik",
        "ensure-proxy-provider",
        "create or change the proxy provider named after its service; external host on a declared origin; \
         mode, internal host, cookie domain and skip paths only as the manifest says",
    ),
    (
        "authentik",
        "attach-to-embedded-outpost",
        "add its own proxy provider to the embedded outpost (every other provider is kept)",
    ),
    (
        "authentik",
        "ensure-scope-mapping",
        "create or change scope mappings named `ssoctl <slug> <scope>`, whose expressions (Python Authentik \
         runs) only verbatim from the manifest's sso.scope_mappings",
    ),
    (
        "authentik",
        "ensure-application",
        "create or change the application named after its service, linked to its own provider; launch URL \
         only on a declared origin",
    ),
    (
        "authentik",
        "ensure-access",
        "bind exactly the groups and users of the manifest's sso.access to its own application; remove only the \
         bindings it made (order 10000 and up), never another's",
    ),
    (
        "service-config",
        "get-env",
        "read its own non-secret .env keys (its prefix, sso.env, sso.http.*_env)",
    ),
    (
        "service-config",
        "set-env",
        "set its own .env keys, except those a manifest expands with ${VAR}",
    ),
    (
        "service-config",
        "env-secret",
        "route its own secret .env values into requests, as handles it cannot read",
    ),
    (
        "service-config",
        "set-env-secret",
        "store secrets (client secrets, captured credentials) in its own .env keys, unread",
    ),
    (
        "service-config",
        "read-file",
        "read files in its own packages/<svc>/ folder",
    ),
    (
        "service-config",
        "write-file",
        "write the files its manifest declares (sso.files, sso.traefik_file) in its own folder; a Traefik \
         file routes only the service's own hosts",
    ),
    (
        "log",
        "event",
        "print event lines and log lines, one line each, secrets redacted",
    ),
];

/// What no flow can do, whatever it imports and is granted.
const NEVER: [&str; 8] = [
    "read Authentik's admin token or any secret's value",
    "touch another service's Authentik objects, .env keys or files",
    "read or set AUTHENTIK_* settings, or the .env keys an idp-http grant names",
    "write the manifest, plugins.lock, sso-grants.yaml or .env",
    "make Authentik run an expression the manifest does not contain",
    "register a URL on an origin the manifest does not declare, or on Authentik's own",
    "reach any network origin other than those listed above",
    "use WASI: files, sockets, clocks, randomness or environment of its own",
];

fn reach_of(flow: &LoadedFlow) -> Reach {
    let imports = |interface: &str, function: &str| {
        flow.imports
            .iter()
            .any(|i| i.name.starts_with(&format!("sso:flow/{interface}@")) && i.functions.iter().any(|f| f == function))
    };
    let mut may: Vec<String> = FUNCTION_REACH
        .iter()
        .filter(|(interface, function, _)| {
            imports(interface, function) || (*function == "event" && imports(interface, "log"))
        })
        .map(|(_, _, what)| what.to_string())
        .collect();
    if flow.optional.contains(&Optional::ServiceHttp) && flow.grant.service_http {
        may.push(
            "send HTTP to its service's own API origin (sso.http.base_url, default its public URL, set only by \
             the operator) with the credentials the manifest names, injected unseen"
                .to_string(),
        );
    }
    if flow.optional.contains(&Optional::IdpHttp)
        && let Some(idp) = &flow.grant.idp_http
    {
        let paths = if idp.paths.is_empty() {
            "any path".to_string()
        } else {
            format!("paths under {}", idp.paths.join(", "))
        };
        may.push(format!(
            "send HTTP to {} ({paths}, dot segments refused) with the granted credentials, injected unseen",
            idp.origin
        ));
    }
    Reach {
        may,
        never: NEVER.to_vec(),
    }
}

fn audit_of(flow: &LoadedFlow) -> Audit<'_> {
    let base: Vec<String> = known_imports()
        .into_iter()
        .filter(|i| !Optional::all().iter().any(|o| o.import() == *i))
        .collect();
    Audit {
        sso_type: &flow.sso_type,
        source: &flow.source,
        sha256: &flow.sha256,
        size: flow.size,
        wit_package: flow.wit_release.as_ref().map(|version| format!("sso:flow@{version}")),
        linked_as: flow
            .wit_release
            .as_ref()
            .filter(|v| v.as_str() != crate::bindings::API_VERSION)
            .map(|_| format!("sso:flow@{}", crate::bindings::API_VERSION)),
        imports: &flow.imports,
        exports: &flow.exports,
        optional_imports: flow.optional.iter().map(|o| o.name()).collect(),
        grants: GrantsInForce {
            source: flow.grant_source.clone(),
            base,
            optional: flow.grant.names(),
        },
        refused: flow.refusal.as_ref().map(|r| r.to_string()),
        wasi_imports: flow
            .imports
            .iter()
            .filter(|i| i.name.starts_with("wasi:"))
            .map(|i| i.name.as_str())
            .collect(),
        reach: reach_of(flow),
    }
}

/// Every component, described even when refused; a drop-in refused before it could be read as a
/// component (its pin, its size, a stock type without `--override`) as its type and the reason.
fn loaded(runtime: &FlowRuntime) -> (Vec<std::sync::Arc<LoadedFlow>>, Vec<(String, String)>) {
    let mut flows = Vec::new();
    let mut unreadable = Vec::new();
    for t in runtime.known_types() {
        match runtime.inspect(&t) {
            Ok(Some(flow)) => flows.push(flow),
            Ok(None) => unreadable.push((t.clone(), format!("no component for `{t}`"))),
            Err(e) => unreadable.push((t, e.to_string())),
        }
    }
    (flows, unreadable)
}

pub fn list(runtime: &FlowRuntime, json: bool) -> u8 {
    let (flows, unreadable) = loaded(runtime);
    for (sso_type, why) in &unreadable {
        eprintln!("refused: {sso_type}: {why}");
    }
    let refused_any = !unreadable.is_empty();
    if json {
        let items: Vec<_> = flows.iter().map(|f| audit_of(f)).collect();
        let code = u8::from(refused_any || flows.iter().any(|f| f.refusal.is_some()));
        let doc = serde_json::json!({"command": "plugins list", "exit_code": code, "components": items});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return code;
    }
    println!("{:<10} {:<8} {:>9}  sha256", "type", "source", "bytes");
    for f in &flows {
        println!(
            "{:<10} {:<8} {:>9}  {}",
            f.sso_type,
            f.source.to_string(),
            f.size,
            f.sha256
        );
    }
    for f in flows.iter().filter(|f| f.refusal.is_some()) {
        eprintln!(
            "refused: {}",
            f.refusal.as_ref().map(|r| r.to_string()).unwrap_or_default()
        );
    }
    u8::from(refused_any || flows.iter().any(|f| f.refusal.is_some()))
}

pub fn audit(runtime: &FlowRuntime, file: Option<&Path>, json: bool) -> u8 {
    if let Some(path) = file {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return 2;
            }
        };
        let sso_type = path
            .file_stem()
            .map(|s| s.to_string_lossy().trim_start_matches("setup-").to_string())
            .unwrap_or_default();
        runtime.register(&sso_type, bytes, Source::File(path.to_path_buf()));
        return match runtime.inspect(&sso_type) {
            Ok(Some(flow)) => print_audit(&[flow], json),
            Ok(None) => 2,
            Err(e) => {
                // Not a component at all: nothing to describe.
                eprintln!("refused: {e}");
                2
            }
        };
    }
    let (flows, unreadable) = loaded(runtime);
    for (sso_type, why) in &unreadable {
        eprintln!("refused: {sso_type}: {why}");
    }
    print_audit(&flows, json).max(u8::from(!unreadable.is_empty()))
}

fn print_audit(flows: &[std::sync::Arc<LoadedFlow>], json: bool) -> u8 {
    let audits: Vec<Audit> = flows.iter().map(|f| audit_of(f)).collect();
    let code = u8::from(audits.iter().any(|a| a.refused.is_some()));
    if json {
        let doc = serde_json::json!({"command": "plugins audit", "exit_code": code, "components": audits});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return code;
    }
    for a in &audits {
        println!("{} ({}) sha256 {}", a.sso_type, a.source, a.sha256);
        match &a.linked_as {
            Some(host) => println!(
                "  WIT package: {} (linked as {host}, which only adds to it)",
                a.wit_package.as_deref().unwrap_or("unknown")
            ),
            None => println!("  WIT package: {}", a.wit_package.as_deref().unwrap_or("unknown")),
        }
        for i in a.imports {
            println!("  import {}: {}", i.name, i.functions.join(", "));
        }
        for e in a.exports {
            println!("  export {}: {}", e.name, e.functions.join(", "));
        }
        let wasi = if a.wasi_imports.is_empty() {
            "none".to_string()
        } else {
            a.wasi_imports.join(", ")
        };
        println!("  WASI imports: {wasi}");
        let optional = if a.grants.optional.is_empty() {
            "none".to_string()
        } else {
            a.grants.optional.join("; ")
        };
        let from = match &a.grants.source {
            GrantSource::BuiltIn => "built in".to_string(),
            GrantSource::Operator(Some(file)) => file.display().to_string(),
            GrantSource::Operator(None) => "given in code".to_string(),
            GrantSource::Default => "default: nothing optional".to_string(),
        };
        println!("  granted: base interfaces; optional: {optional} ({from})");
        println!("  may, for the service it runs for:");
        for line in &a.reach.may {
            println!("    - {line}");
        }
        println!("  never:");
        for line in &a.reach.never {
            println!("    - {line}");
        }
        if let Some(refused) = &a.refused {
            println!("  REFUSED: {refused}");
        }
    }
    code
}

/// `plugins componentize`: wraps a core module (with the component-type section wit-bindgen
/// embeds) into a component, validated, and writes it atomically.
pub fn componentize(module: &Path, output: &Path) -> Result<usize, String> {
    let core = std::fs::read(module).map_err(|e| format!("{}: {e}", module.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| {
            format!(
                "{} is not a core module built with wit-bindgen against the sso:flow WIT: {e:#}",
                module.display()
            )
        })?;
    crate::stack::envfile::write_atomic(output, &component, Some(0o644)).map_err(|e| e.to_string())?;
    Ok(component.len())
}
