//! `ssoctl plugins list` and `ssoctl plugins audit [FILE]`: what each flow component is, and
//! exactly which interfaces and functions it imports (its whole reach) and exports.

use std::path::Path;

use crate::grants::{GrantSource, Optional};
use crate::runtime::bindings::known_imports;
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
    imports: &'a [crate::runtime::InterfaceUse],
    exports: &'a [crate::runtime::InterfaceUse],
    /// The optional capabilities the component imports.
    optional_imports: Vec<&'static str>,
    grants: GrantsInForce,
    /// Why the component may not run: an import outside its grants, a missing export.
    refused: Option<String>,
    wasi_imports: Vec<&'a str>,
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
        wit_package: flow
            .exports
            .iter()
            .find_map(|e| e.name.strip_prefix("sso:flow/flow@"))
            .map(|version| format!("sso:flow@{version}")),
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
    }
}

/// Every component, described even when refused.
fn loaded(runtime: &FlowRuntime) -> Result<Vec<std::sync::Arc<LoadedFlow>>, String> {
    runtime
        .known_types()
        .iter()
        .map(|t| {
            runtime
                .inspect(t)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no component for `{t}`"))
        })
        .collect()
}

pub fn list(runtime: &FlowRuntime, json: bool) -> u8 {
    let flows = match loaded(runtime) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if json {
        let items: Vec<_> = flows.iter().map(|f| audit_of(f)).collect();
        let code = u8::from(flows.iter().any(|f| f.refusal.is_some()));
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
    if flows.iter().any(|f| f.refusal.is_some()) {
        1
    } else {
        0
    }
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
    match loaded(runtime) {
        Ok(flows) => print_audit(&flows, json),
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
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
        println!("  WIT package: {}", a.wit_package.as_deref().unwrap_or("unknown"));
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
