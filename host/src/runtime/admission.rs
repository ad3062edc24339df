//! Admission: which components may serve a type, before and after the engine loads them. A
//! drop-in is admitted by its place (`setup-<type>.wasm` in the plugin folder), its size, its pin
//! in `plugins.lock` and, for a stock type, an explicit `--override`; a loaded component by its
//! imports (only the WIT's interfaces), its export and the operator's grants for its type.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::component::{InterfaceUse, LoadError, MAX_COMPONENT_BYTES};
use super::stock::stock_types;
use crate::bindings;
use crate::grants::{Grant, Grants, Optional};

/// The lock file `ssoctl plugins pin` writes in the plugin folder: drop-in file name → sha256.
pub const PIN_FILE: &str = "plugins.lock";

/// The pins in `dir`, if it has a lock file.
pub(super) fn read_pins(dir: &Path) -> Result<Option<std::collections::BTreeMap<String, String>>, String> {
    let path = dir.join(PIN_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    serde_yaml::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{}: not a map of file name to sha256: {e}", path.display()))
}

/// The drop-in components in `dir` (`setup-<type>.wasm`), sorted, with their types.
pub(super) fn drop_in_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("plugin folder {}: {e}", dir.display())),
    };
    paths.sort();
    let mut found = Vec::new();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let Some(sso_type) = name
            .strip_prefix("setup-")
            .and_then(|n| n.strip_suffix(".wasm"))
            .map(str::to_string)
        else {
            // A component under another name (cargo writes `setup_hello.wasm`) is never loaded:
            // say so rather than leave its type "unknown".
            if name.ends_with(".wasm") {
                let hint = match name.strip_prefix("setup_") {
                    Some(rest) => format!("rename it to setup-{}", rest.replace('_', "-")),
                    None => "a drop-in is named setup-<type>.wasm".to_string(),
                };
                tracing::warn!("{}: not loaded: {hint} (it serves sso.type: <type>)", path.display());
            }
            continue;
        };
        let valid = !sso_type.is_empty()
            && sso_type
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            return Err(format!(
                "{}: `{sso_type}` is not a valid sso.type (lower-case letters, digits, `-` and `_`)",
                path.display()
            ));
        }
        found.push((sso_type, path));
    }
    Ok(found)
}

/// Reads a drop-in, refusing one over the size limit before reading it.
fn read_drop_in(path: &Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_COMPONENT_BYTES as u64 {
        return Err(LoadError::TooLarge {
            what: path.display().to_string(),
            size: size as usize,
            limit: MAX_COMPONENT_BYTES,
        }
        .to_string());
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A drop-in that was read: its bytes, and why its pin keeps it from running (a component
/// changed since review or never reviewed), if it does. It is still described by `plugins list`
/// and `plugins audit`, so the operator sees what changed before pinning it again.
pub(super) struct Admitted {
    pub bytes: Vec<u8>,
    pub pin_refusal: Option<String>,
}

/// Where the pins of a folder come from: its `plugins.lock`, or none at all for the development
/// folder (`--dev-plugins`), whose components are rebuilt too often to be reviewed.
pub(super) enum Pins<'a> {
    Lock(&'a Result<Option<std::collections::BTreeMap<String, String>>, String>),
    Unpinned,
}

/// The bytes of drop-in `path` serving `sso_type`, or why it may not be used at all.
pub(super) fn admit_drop_in(
    dir: &Path,
    sso_type: &str,
    path: &Path,
    pins: Pins<'_>,
    overrides: &[String],
) -> Result<Admitted, String> {
    if stock_types().contains(&sso_type) && !overrides.iter().any(|o| o == sso_type) {
        return Err(format!(
            "{} would replace the stock `{sso_type}` flow; pass --override {sso_type} to use it instead, \
             or remove the file",
            path.display()
        ));
    }
    let bytes = read_drop_in(path)?;
    // `\0asm` then version 1: a core module (what `cargo build --target wasm32-unknown-unknown`
    // writes), not the component a flow must be.
    if bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0] {
        return Err(format!(
            "{} is a core WebAssembly module, not a component: turn it into one with `ssoctl plugins \
             componentize {} -o {}`",
            path.display(),
            path.display(),
            path.display()
        ));
    }
    let pins = match pins {
        Pins::Unpinned => &None,
        Pins::Lock(Ok(pins)) => pins,
        Pins::Lock(Err(e)) => return Err(format!("{e}; no drop-in is used while the lock file is unreadable")),
    };
    let mut pin_refusal = None;
    if let Some(pins) = pins {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let actual = hex::encode(Sha256::digest(&bytes));
        let lock = dir.join(PIN_FILE);
        pin_refusal = match pins.get(name) {
            Some(pinned) if *pinned == actual => None,
            Some(pinned) => Some(format!(
                "{} has sha256 {actual}, but {} pins {pinned}: the component changed since it was \
                 reviewed; review it (`ssoctl plugins audit {}`), then run `ssoctl plugins pin`",
                path.display(),
                lock.display(),
                path.display()
            )),
            None => Some(format!(
                "{} (sha256 {actual}) is not pinned in {}; review it (`ssoctl plugins audit {}`), then run \
                 `ssoctl plugins pin`",
                path.display(),
                lock.display(),
                path.display()
            )),
        };
    }
    Ok(Admitted { bytes, pin_refusal })
}

/// `ssoctl plugins pin`: writes the sha256 of every drop-in in `dir` to its lock file (replacing
/// earlier pins). Returns (file name, sha256) of each.
pub fn pin_drop_ins(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let mut pins = Vec::new();
    for (_, path) in drop_in_files(dir)? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        pins.push((name, hex::encode(Sha256::digest(read_drop_in(&path)?))));
    }
    let mut text = String::from(
        "# Written by `ssoctl plugins pin`: the sha256 of each reviewed drop-in flow component.\n\
         # A component whose hash differs, or that is not listed, is refused.\n",
    );
    for (name, sha) in &pins {
        text.push_str(&format!("{name}: {sha}\n"));
    }
    crate::stack::envfile::write_atomic(&dir.join(PIN_FILE), text.as_bytes(), Some(0o644))
        .map_err(|e| e.to_string())?;
    Ok(pins)
}

/// The optional capabilities among `imports`.
pub(super) fn optional_imports(imports: &[InterfaceUse]) -> Vec<Optional> {
    Optional::all()
        .into_iter()
        .filter(|o| imports.iter().any(|i| i.name == o.import()))
        .collect()
}

/// Why a loaded component may not run, if it may not: an import outside the WIT, no `flow`
/// export, or an optional capability its type is not granted (with how to grant it).
pub(super) fn refusal(
    sso_type: &str,
    what: &str,
    imports: &[InterfaceUse],
    exports: &[InterfaceUse],
    grants: &Grants,
    grant: &Grant,
    optional: &[Optional],
) -> Option<LoadError> {
    let known = bindings::known_imports();
    let export = bindings::required_export();
    if let Some(bad) = imports.iter().find(|i| !known.contains(&i.name)) {
        Some(LoadError::UngrantedImport {
            what: what.to_string(),
            import: bad.name.clone(),
            granted: known.join(", "),
        })
    } else if !exports.iter().any(|e| e.name == export) {
        Some(LoadError::MissingExport {
            what: what.to_string(),
            export,
        })
    } else {
        optional
            .iter()
            .find(|o| !grant.allows(**o))
            .map(|o| LoadError::NotGranted {
                what: what.to_string(),
                import: o.import(),
                hint: format!(
                    "sso.type `{sso_type}`; if you trust it with {}, grant it in {}, e.g. `{}`",
                    o.name(),
                    grants.describe_file(),
                    o.example(sso_type)
                ),
            })
    }
}
