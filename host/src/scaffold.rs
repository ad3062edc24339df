//! `ssoctl plugins new` and `ssoctl plugins build`: a flow from zero with only the ssoctl binary.
//!
//! With `--lang python`, `new` writes `app.py`, the WIT, a pinned componentize-py and the same
//! test script, and `build` runs componentize-py. Otherwise it writes a self-contained Rust project: the flow (`src/lib.rs`, an OAuth2 client whose id
//! and secret land in `.env`), the flow SDK and the WIT it binds vendored under `sdk/` (the
//! binary carries them, so no checkout of this repository is needed), a `Cargo.lock` pinning what
//! the SDK was tested with, a sample manifest and a test script that runs the flow against
//! `ssoctl sim`. `build` runs cargo for `wasm32-unknown-unknown` (adding the target through
//! rustup when it is missing) and turns the core module into `setup-<type>.wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::runtime::stock_types;

/// The flow SDK's sources and the WIT, as `plugins new` vendors them (path in the project, text).
const SDK_FILES: [(&str, &str); 8] = [
    ("sdk/Cargo.toml", include_str!("../../plugins/sdk/Cargo.toml")),
    ("sdk/src/lib.rs", include_str!("../../plugins/sdk/src/lib.rs")),
    ("sdk/src/http.rs", include_str!("../../plugins/sdk/src/http.rs")),
    ("sdk/src/oauth.rs", include_str!("../../plugins/sdk/src/oauth.rs")),
    ("sdk/src/roles.rs", include_str!("../../plugins/sdk/src/roles.rs")),
    ("sdk/src/settings.rs", include_str!("../../plugins/sdk/src/settings.rs")),
    ("sdk/src/template.rs", include_str!("../../plugins/sdk/src/template.rs")),
    ("sdk/wit/sso-flow.wit", include_str!("../../wit/sso-flow.wit")),
];

/// The language a new flow is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    /// Built with componentize-py (CPython inside the component).
    Python,
}

/// The Python project's files; `{{type}}` is replaced by the sso.type.
const PYTHON_FILES: [(&str, &str); 7] = [
    ("app.py", include_str!("../templates/flow-python/app.py.tmpl")),
    (
        "pyproject.toml",
        include_str!("../templates/flow-python/pyproject.toml.tmpl"),
    ),
    (
        "requirements.txt",
        include_str!("../templates/flow-python/requirements.txt.tmpl"),
    ),
    ("README.md", include_str!("../templates/flow-python/README.md.tmpl")),
    ("wit/sso-flow.wit", include_str!("../../wit/sso-flow.wit")),
    (
        "example/manifest.yaml",
        include_str!("../templates/flow/manifest.yaml.tmpl"),
    ),
    ("test.sh", include_str!("../templates/flow/test.sh.tmpl")),
];

/// The Rust project's own files; `{{type}}` is replaced by the sso.type.
const PROJECT_FILES: [(&str, &str); 6] = [
    ("Cargo.toml", include_str!("../templates/flow/Cargo.toml.tmpl")),
    ("Cargo.lock", include_str!("../templates/flow/Cargo.lock.tmpl")),
    ("src/lib.rs", include_str!("../templates/flow/lib.rs.tmpl")),
    (
        "example/manifest.yaml",
        include_str!("../templates/flow/manifest.yaml.tmpl"),
    ),
    ("test.sh", include_str!("../templates/flow/test.sh.tmpl")),
    ("README.md", include_str!("../templates/flow/README.md.tmpl")),
];

/// The target flow components are built for.
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Why a name cannot be an sso.type of a flow project, if it cannot.
fn invalid_format(sso_type: &str) -> Option<String> {
    let valid = !sso_type.is_empty()
        && sso_type.len() <= 64
        && sso_type.starts_with(|c: char| c.is_ascii_lowercase())
        && sso_type
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (!valid).then(|| {
        format!(
            "`{sso_type}` is not a valid sso.type for a flow project: lower-case letters, digits and `-`, starting \
             with a letter"
        )
    })
}

/// Why a name cannot be a new flow's type, if it cannot: its format, or a stock type's name.
fn invalid_type(sso_type: &str) -> Option<String> {
    invalid_format(sso_type).or_else(|| {
        stock_types().contains(&sso_type).then(|| {
            format!(
                "`{sso_type}` is a stock type; a new flow needs a name of its own (replacing a stock flow takes \
                 --override when it is dropped in)"
            )
        })
    })
}

/// `plugins new <type>`: writes the project into `dir` (which must not exist or be empty).
/// Returns the files written.
pub fn new_flow(sso_type: &str, dir: &Path, lang: Lang) -> Result<Vec<PathBuf>, String> {
    if let Some(why) = invalid_type(sso_type) {
        return Err(why);
    }
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .next()
            .is_none();
        if !empty {
            return Err(format!(
                "{} exists and is not empty: name a new folder with --dir",
                dir.display()
            ));
        }
    }
    let mut written = Vec::new();
    let files: Vec<(&str, String)> = match lang {
        Lang::Rust => PROJECT_FILES
            .iter()
            .map(|(path, text)| (*path, text.replace("{{type}}", sso_type)))
            .chain(SDK_FILES.iter().map(|(path, text)| (*path, text.to_string())))
            .collect(),
        Lang::Python => PYTHON_FILES
            .iter()
            .map(|(path, text)| (*path, text.replace("{{type}}", sso_type)))
            .collect(),
    };
    for (path, text) in files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let mode = if path.ends_with(".sh") { 0o755 } else { 0o644 };
        crate::stack::envfile::write_atomic(&target, text.as_bytes(), Some(mode)).map_err(|e| e.to_string())?;
        written.push(target);
    }
    Ok(written)
}

/// A key of the ssoctl section of a generated project file (`[package.metadata.ssoctl]` in
/// Cargo.toml, `[tool.ssoctl]` in pyproject.toml), read as `ssoctl plugins new` wrote it.
fn project_key(file: &Path, section: &str, key: &str) -> Result<Option<String>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == section;
            continue;
        }
        if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Ok(Some(v.trim().trim_matches('"').to_string()));
        }
    }
    Ok(None)
}

/// The project's type, from its ssoctl section.
fn project_type(file: &Path, section: &str) -> Result<String, String> {
    let value = project_key(file, section, "sso-type")?.ok_or_else(|| {
        format!(
            "{} has no `{section} sso-type = \"<type>\"`: the component's type decides its file name",
            file.display()
        )
    })?;
    if let Some(why) = invalid_format(&value) {
        return Err(format!("{}: {why}", file.display()));
    }
    Ok(value)
}

/// Adds the wasm target through rustup when the active toolchain lacks it.
fn ensure_target(dir: &Path) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .output();
    match installed {
        Ok(out)
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == WASM_TARGET) =>
        {
            Ok(())
        }
        Ok(_) => {
            eprintln!("adding the {WASM_TARGET} target (rustup target add {WASM_TARGET})");
            let status = Command::new("rustup")
                .args(["target", "add", WASM_TARGET])
                .current_dir(dir)
                .status()
                .map_err(|e| format!("rustup target add {WASM_TARGET}: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("rustup target add {WASM_TARGET} failed ({status})"))
            }
        }
        // Without rustup the toolchain may still have the target (a distribution's Rust): cargo
        // says so if it does not.
        Err(_) => Ok(()),
    }
}

/// `plugins build [DIR]`: builds the project in `dir` and writes `setup-<type>.wasm` (into `dir`
/// unless `output` names another path). Returns where the component went and its size.
pub fn build_flow(dir: &Path, output: Option<&Path>) -> Result<(PathBuf, usize), String> {
    if !dir.join("Cargo.toml").is_file() && dir.join("pyproject.toml").is_file() {
        return build_python(dir, output);
    }
    if !dir.join("Cargo.toml").is_file() {
        return Err(format!(
            "{} holds no Cargo.toml or pyproject.toml: `ssoctl plugins build` runs in a project made by `ssoctl plugins new`",
            dir.display()
        ));
    }
    let sso_type = project_type(&dir.join("Cargo.toml"), "[package.metadata.ssoctl]")?;
    ensure_target(dir)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo build failed in {} ({})", dir.display(), out.status));
    }
    // The artifact cargo reports for the project's own cdylib, wherever the target folder is.
    let module = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["kind"].to_string().contains("cdylib"))
        .filter(|m| m["target"]["name"] == format!("setup_{}", sso_type.replace('-', "_")))
        .find_map(|m| {
            m["filenames"]
                .as_array()?
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from)
        })
        .ok_or_else(|| format!("cargo built no setup_{sso_type}.wasm in {}", dir.display()))?;
    let target = component_path(dir, &sso_type, output);
    let size = crate::plugins::componentize(&module, &target)?;
    Ok((target, size))
}

/// Where the component goes: `-o`, else `setup-<type>.wasm` beside the project file.
fn component_path(dir: &Path, sso_type: &str, output: Option<&Path>) -> PathBuf {
    let file = format!("setup-{sso_type}.wasm");
    match output {
        Some(path) => path.to_path_buf(),
        None if dir == Path::new(".") => PathBuf::from(file),
        None => dir.join(file),
    }
}

/// A Python project: componentize-py (from the project's `.venv`, else `PATH`) for the world
/// its pyproject.toml names, every WASI import stubbed out so the component imports none.
fn build_python(dir: &Path, output: Option<&Path>) -> Result<(PathBuf, usize), String> {
    let pyproject = dir.join("pyproject.toml");
    let sso_type = project_type(&pyproject, "[tool.ssoctl]")?;
    let world = project_key(&pyproject, "[tool.ssoctl]", "world")?.unwrap_or_else(|| "base-flow".to_string());
    if !["base-flow", "idp-flow", "service-flow", "sso-flow"].contains(&world.as_str()) {
        return Err(format!(
            "{}: `world = \"{world}\"` is not a world of the sso:flow WIT",
            pyproject.display()
        ));
    }
    let venv_tool = dir.join(".venv").join("bin").join("componentize-py");
    let tool: std::ffi::OsString = if venv_tool.is_file() {
        venv_tool.into()
    } else {
        "componentize-py".into()
    };
    let target = component_path(dir, &sso_type, output);
    // componentize-py runs in the project; the output path is the caller's, made absolute.
    let absolute = std::env::current_dir()
        .map(|cwd| cwd.join(&target))
        .map_err(|e| format!("the current folder: {e}"))?;
    let status = Command::new(&tool)
        .args(["-d", "wit", "-w", &world, "componentize", "app", "--stub-wasi", "-o"])
        .arg(&absolute)
        .current_dir(dir)
        .status()
        .map_err(|e| {
            format!(
                "componentize-py: {e}; install it (pinned in requirements.txt): python3 -m venv .venv && \
                 .venv/bin/pip install -r requirements.txt"
            )
        })?;
    if !status.success() {
        return Err(format!("componentize-py failed in {} ({status})", dir.display()));
    }
    let size = std::fs::metadata(&absolute)
        .map_err(|e| format!("{}: {e}", absolute.display()))?
        .len() as usize;
    Ok((target, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module added to the SDK must be vendored too, or every new project fails to build.
    #[test]
    fn every_sdk_source_is_vendored() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk/src");
        for entry in std::fs::read_dir(src).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let path = format!("sdk/src/{name}");
            assert!(SDK_FILES.iter().any(|(p, _)| *p == path), "{path} is not in SDK_FILES");
        }
    }

    #[test]
    fn types_are_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "Hello", "1x", "a_b", "oidc", "x/y"] {
            assert!(new_flow(bad, &dir.path().join("p"), Lang::Rust).is_err(), "{bad:?}");
        }
        assert!(!dir.path().join("p").exists());
    }

    #[test]
    fn a_new_project_names_its_type_everywhere_and_vendors_the_sdk() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        new_flow("hello", &project, Lang::Rust).unwrap();
        assert_eq!(
            project_type(&project.join("Cargo.toml"), "[package.metadata.ssoctl]").unwrap(),
            "hello"
        );
        let lib = std::fs::read_to_string(project.join("src/lib.rs")).unwrap();
        assert!(
            lib.contains("sso_type: \"hello\".to_string()") && !lib.contains("{{"),
            "{lib}"
        );
        let lock = std::fs::read_to_string(project.join("Cargo.lock")).unwrap();
        assert!(lock.contains("name = \"setup-hello\""), "{lock}");
        assert!(project.join("sdk/wit/sso-flow.wit").is_file());
        // Nothing points back into a checkout.
        for file in ["Cargo.toml", "sdk/Cargo.toml"] {
            let text = std::fs::read_to_string(project.join(file)).unwrap();
            assert!(
                !text.contains("workspace = true") && !text.contains("../"),
                "{file}: {text}"
            );
        }
        assert!(
            new_flow("hello", &project, Lang::Rust)
                .unwrap_err()
                .contains("is not empty")
        );
        let python = dir.path().join("py");
        new_flow("hello-py", &python, Lang::Python).unwrap();
        assert_eq!(
            project_type(&python.join("pyproject.toml"), "[tool.ssoctl]").unwrap(),
            "hello-py"
        );
        assert!(
            std::fs::read_to_string(python.join("app.py"))
                .unwrap()
                .contains("sso_type=\"hello-py\"")
        );
    }
}
