//! `ssoctl plugins list` and `ssoctl plugins audit [FILE]`: what each flow component is, and
//! exactly which interfaces and functions it imports (its whole reach) and exports.

use std::path::Path;

use crate::runtime::bindings::granted_imports;
use crate::runtime::{FlowRuntime, LoadedFlow, Source};

#[derive(serde::Serialize)]
struct Audit<'a> {
    sso_type: &'a str,
    source: &'a Source,
    sha256: &'a str,
    size: usize,
    /// The WIT package the component was built against, from the version in its export's name.
    wit_package: Option<String>,
    /// What the host grants every flow: the interfaces a component may import.
    granted: Vec<String>,
    imports: &'a [crate::runtime::InterfaceUse],
    exports: &'a [crate::runtime::InterfaceUse],
    /// Imports outside the host's grant (a component with any is refused at load time).
    ungranted: Vec<&'a str>,
    wasi_imports: Vec<&'a str>,
}

fn audit_of(flow: &LoadedFlow) -> Audit<'_> {
    let granted = granted_imports();
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
        granted: granted.clone(),
        imports: &flow.imports,
        exports: &flow.exports,
        ungranted: flow
            .imports
            .iter()
            .filter(|i| !granted.contains(&i.name))
            .map(|i| i.name.as_str())
            .collect(),
        wasi_imports: flow
            .imports
            .iter()
            .filter(|i| i.name.starts_with("wasi:"))
            .map(|i| i.name.as_str())
            .collect(),
    }
}

fn loaded(runtime: &FlowRuntime) -> Result<Vec<std::sync::Arc<LoadedFlow>>, String> {
    runtime
        .known_types()
        .iter()
        .map(|t| {
            runtime
                .flow(t)
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
        let doc = serde_json::json!({"command": "plugins list", "exit_code": 0, "components": items});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return 0;
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
    0
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
        return match runtime.flow(&sso_type) {
            Ok(Some(flow)) => print_audit(&[flow], json),
            Ok(None) => 2,
            Err(e) => {
                // Refused at load time: say why, naming the import.
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
    if json {
        let doc = serde_json::json!({"command": "plugins audit", "exit_code": 0, "components": audits});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
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
            if !a.ungranted.is_empty() {
                println!("  NOT GRANTED: {}", a.ungranted.join(", "));
            }
            println!("  granted to every flow: {}", a.granted.join(", "));
        }
    }
    if audits.iter().any(|a| !a.ungranted.is_empty()) {
        1
    } else {
        0
    }
}
