//! Files under `packages/<svc>/`, reached only through a cap-std `Dir` opened on that folder:
//! absolute paths, `..` and symlinks pointing outside cannot escape it.

use std::path::{Component, Path};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::capabilities::state::{FlowError, Mode, RunState};

/// The service's own folder, as a capability.
pub fn service_dir(state: &RunState) -> Result<Dir, FlowError> {
    let folder = state.service.manifest_path.parent().unwrap_or(Path::new("."));
    Dir::open_ambient_dir(folder, ambient_authority())
        .map_err(|e| FlowError::Upstream(format!("open {}: {e}", folder.display())))
}

/// Rejects anything but a plain relative path before cap-std even sees it, so the error names
/// the problem instead of a generic "escape".
fn check_path(state: &RunState, path: &str) -> Result<(), FlowError> {
    let p = Path::new(path);
    let plain = !path.is_empty()
        && !path.contains('\0')
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if plain {
        Ok(())
    } else {
        Err(FlowError::Denied(format!(
            "`{path}` is outside packages/{}/: flows may only use relative paths inside their own folder",
            state.service.name
        )))
    }
}

/// A declared file that is a link to the manifest (or any path resolving to it) is still the
/// operator's intent: refused.
fn not_the_manifest(state: &RunState, path: &str) -> Result<(), FlowError> {
    let folder = state.service.manifest_path.parent().unwrap_or(Path::new("."));
    let target = std::fs::canonicalize(folder.join(path));
    let manifest = std::fs::canonicalize(&state.service.manifest_path);
    match (target, manifest) {
        (Ok(t), Ok(m)) if t == m => Err(FlowError::Denied(format!(
            "packages/{}/{path} resolves to the service's manifest, the operator's own file",
            state.service.name
        ))),
        _ => Ok(()),
    }
}

pub fn read(state: &RunState, path: &str) -> Result<Option<String>, FlowError> {
    check_path(state, path)?;
    if let Some(staged) = state.record.file_writes.get(path) {
        return Ok(Some(staged.clone()));
    }
    match service_dir(state)?.read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FlowError::Denied(format!(
            "packages/{}/{path}: {e}",
            state.service.name
        ))),
    }
}

pub fn stage_write(state: &mut RunState, path: &str, contents: String) -> Result<(), FlowError> {
    check_path(state, path)?;
    file_write(state, path, &contents)?;
    not_the_manifest(state, path)?;
    const MAX: usize = 1 << 20;
    if contents.len() > MAX {
        return Err(FlowError::Invalid(format!(
            "`{path}`: {} bytes is over the 1 MiB file limit",
            contents.len()
        )));
    }
    let current = match service_dir(state)?.read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(FlowError::Denied(format!(
                "packages/{}/{path}: {e}",
                state.service.name
            )));
        }
    };
    let differs = current.as_deref() != Some(contents.as_str());
    let shown = format!("packages/{}/{path}", state.service.name);
    match state.mode {
        Mode::Apply => {
            state.record.file_writes.insert(path.to_string(), contents);
        }
        Mode::Plan if differs => state.change(format!("write {shown}")),
        Mode::Check if differs => {
            let message = if current.is_some() {
                format!("{shown} differs from the expected configuration")
            } else {
                format!("{shown} is missing")
            };
            state.finding("file-mismatch", message);
        }
        _ => {}
    }
    Ok(())
}

/// Writes the staged files (temp file + rename inside the folder). Returns the paths changed.
pub fn commit(dir: &Dir, writes: &std::collections::BTreeMap<String, String>) -> std::io::Result<Vec<String>> {
    let mut changed = Vec::new();
    for (path, contents) in writes {
        if dir.read_to_string(path).ok().as_deref() == Some(contents.as_str()) {
            continue;
        }
        if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            dir.create_dir_all(parent)?;
        }
        let tmp = format!("{path}.ssoctl-tmp");
        dir.write(&tmp, contents)?;
        dir.rename(&tmp, dir, path)?;
        changed.push(path.clone());
    }
    Ok(changed)
}

/// A file the flow writes: one the manifest declares (`sso.files`, the Traefik file), and the
/// Traefik file only routing the service's own hosts.
pub fn file_write(state: &RunState, path: &str, contents: &str) -> Result<(), FlowError> {
    let declared = &state.service.declared;
    if !declared.files.iter().any(|f| f == path) {
        return Err(FlowError::Denied(format!(
            "`{path}` is not a file {} may write: the manifest declares {} (sso.files, sso.traefik_file in {})",
            state.service.name,
            declared.files.join(", "),
            state.service.manifest_path.display()
        )));
    }
    // Traefik's file provider watches a folder: the Traefik file and any file beside it route hosts.
    let folder = |p: &str| std::path::Path::new(p).parent().map(|d| d.to_path_buf());
    if folder(path) == folder(&declared.traefik_file) {
        super::traefik::check(contents, &state.service.slug, &declared.hosts)
            .map_err(|why| FlowError::Denied(format!("`{path}`: {why}")))?;
    }
    Ok(())
}
