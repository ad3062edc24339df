//! `packages/<svc>/manifest.yaml`: parsed with file and line in every error, and the one-line
//! `configured: true` edit that keeps the operator's comments and layout.

use std::path::Path;

use serde_yaml::Value;

use crate::error::{Error, Result};
use crate::stack::envfile::{resolve_link, write_atomic};

/// A manifest as read from disk.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub doc: Value,
    /// The text, for pointing errors at the line of a key.
    text: String,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let doc: Value = serde_yaml::from_str(text).map_err(|e| yaml_error(path, &e))?;
        let bad = |message: &str| Error::Stack {
            path: path.to_path_buf(),
            message: message.into(),
        };
        if doc.is_null() {
            return Err(bad(
                "the manifest is empty; a service without SSO still has a mapping (name, image, …)",
            ));
        }
        if !doc.is_mapping() {
            return Err(bad("a manifest must be a YAML mapping"));
        }
        let manifest = Self {
            doc,
            text: text.to_string(),
        };
        match manifest.doc.get("sso") {
            None | Some(Value::Null) | Some(Value::Mapping(_)) => Ok(manifest),
            Some(_) => Err(bad(&format!(
                "line {}: `sso:` must be a mapping (type, redirect_path, …)",
                manifest.line_of(&["sso"]).unwrap_or(1)
            ))),
        }
    }

    /// The `sso:` block, if the service has SSO at all.
    pub fn sso(&self) -> Option<&serde_yaml::Mapping> {
        self.doc.get("sso").and_then(Value::as_mapping)
    }

    /// 1-based line of `keys` (a path of nested block-style keys, e.g. `["sso", "type"]`).
    pub fn line_of(&self, keys: &[&str]) -> Option<usize> {
        Self::lines_of(&self.text).line_of(keys)
    }

    /// Line lookups in any YAML text (`services.yaml` too).
    pub fn lines_of(text: &str) -> Lines<'_> {
        Lines { text }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.doc.get(key).and_then(Value::as_str)
    }
}

/// Finds the line of a key or value in YAML text, for error messages.
pub struct Lines<'a> {
    text: &'a str,
}

impl Lines<'_> {
    /// The first line at or after `from` (1-based) that mentions `needle`.
    pub fn line_after(&self, from: usize, needle: &str) -> Option<usize> {
        self.text
            .lines()
            .enumerate()
            .skip(from.saturating_sub(1))
            .find(|(_, l)| l.contains(needle))
            .map(|(i, _)| i + 1)
    }

    /// 1-based line of `keys` (a path of nested block-style keys, e.g. `["sso", "type"]`).
    pub fn line_of(&self, keys: &[&str]) -> Option<usize> {
        let mut depth_indent: Option<usize> = None;
        let mut want = keys.iter();
        let mut key = want.next()?;
        for (i, line) in self.text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if let Some(parent) = depth_indent
                && indent <= parent
            {
                return None; // left the parent block without finding the key
            }
            if trimmed.starts_with(&format!("{key}:")) && depth_indent.is_none_or(|p| indent > p) {
                match want.next() {
                    Some(next) => {
                        depth_indent = Some(indent);
                        key = next;
                    }
                    None => return Some(i + 1),
                }
            }
        }
        None
    }
}

/// `path: line L column C: message` for a YAML syntax or shape error.
pub fn yaml_error(path: &Path, e: &serde_yaml::Error) -> Error {
    let message = match e.location() {
        Some(loc) => format!("line {} column {}: {e}", loc.line(), loc.column()),
        None => e.to_string(),
    };
    Error::Stack {
        path: path.to_path_buf(),
        message: message.replace(" at line", " (at line"),
    }
}

/// Flattens the `sso:` block to dotted keys with string values, the shape flows receive:
/// `scopes: [a, b]` → `scopes.0 = a`, `scopes.1 = b`; `env: {K: v}` → `env.K = v`.
pub fn flatten(block: &serde_yaml::Mapping) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Null => {}
            Value::Bool(b) => out.push((prefix.to_string(), b.to_string())),
            Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
            Value::String(s) => out.push((prefix.to_string(), s.clone())),
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(&format!("{prefix}.{i}"), item, out);
                }
            }
            Value::Mapping(m) => {
                for (k, item) in m {
                    let key = match k {
                        Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
                    };
                    let path = if prefix.is_empty() {
                        key
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, item, out);
                }
            }
            Value::Tagged(t) => walk(prefix, &t.value, out),
        }
    }
    let mut out = Vec::new();
    walk("", &Value::Mapping(block.clone()), &mut out);
    out
}

/// Sets `sso.configured: true` by editing that one line (or adding it after `type:`), so
/// comments and layout survive; written atomically with the file's mode kept. A no-op when
/// already true.
pub fn mark_configured(path: &Path) -> Result<bool> {
    match configured_edit(path)? {
        None => Ok(false),
        Some(edited) => {
            // A symlinked manifest stays a link: its target is replaced.
            write_atomic(&resolve_link(path)?, edited.as_bytes(), None)?;
            Ok(true)
        }
    }
}

/// The manifest's text with `sso.configured: true` set (`None` when it already is), or why the
/// one-line edit cannot be made: a flow-style `sso: {...}`, an anchor or alias on the block.
/// The edit must change nothing else the file means; nothing is written here.
pub fn configured_edit(path: &Path) -> Result<Option<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let manifest = Manifest::parse(path, &text)?;
    let already = manifest
        .sso()
        .and_then(|s| s.get("configured"))
        .and_then(Value::as_bool)
        == Some(true);
    if already {
        return Ok(None);
    }
    let refuse = |why: &str| Error::Stack {
        path: path.to_path_buf(),
        message: format!(
            "line {}: {why}, so ssoctl cannot set `configured: true` after registering the service; write `sso:` \
             as a block (one key per line, no anchor) or set `configured: true` by hand. Nothing was registered",
            manifest.line_of(&["sso"]).unwrap_or(1)
        ),
    };
    let edited = edit_configured_line(&text).ok_or_else(|| refuse("`sso:` is not a plain block mapping"))?;
    let check = Manifest::parse(path, &edited)?;
    let mut expected = manifest.doc.clone();
    if let Some(sso) = expected.get_mut("sso").and_then(Value::as_mapping_mut) {
        sso.insert("configured".into(), Value::Bool(true));
    }
    if check.doc != expected {
        return Err(refuse(
            "setting `configured: true` in place would change more than that one key",
        ));
    }
    Ok(Some(edited))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn edit_configured_line(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| indent_of(l) == 0 && l.split('#').next().unwrap_or("").trim_end() == "sso:")?;
    let mut child_indent = None;
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = indent_of(line);
        if indent == 0 {
            end = i;
            break;
        }
        child_indent.get_or_insert(indent);
    }
    let child_indent = child_indent?;
    let is_child = |l: &&str| indent_of(l) == child_indent;
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let configured =
        (start + 1..end).find(|&i| is_child(&lines[i]) && lines[i].trim_start().starts_with("configured:"));
    match configured {
        Some(i) => {
            // Replace only the value token: spacing and a trailing comment stay as they were.
            let rest = lines[i].trim_start().trim_start_matches("configured:");
            let value = rest.trim_start();
            let value_len = value
                .find(|c: char| c.is_whitespace() || c == '#')
                .unwrap_or(value.len());
            let tail = &value[value_len..];
            out[i] = format!("{}configured: true{tail}", " ".repeat(child_indent));
        }
        None => {
            let after = (start + 1..end)
                .find(|&i| is_child(&lines[i]) && lines[i].trim_start().starts_with("type:"))
                .unwrap_or(start);
            out.insert(after + 1, format!("{}configured: true", " ".repeat(child_indent)));
        }
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    Some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_configured_in_place_keeping_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.yaml");
        let text = "# Grafana\nname: Grafana\nsso:\n  type: oidc   # flow\n  redirect_path: /login/generic_oauth\n  configured: false  # set by ssoctl\n  env:\n    configured: x\nports: [3000]\n";
        std::fs::write(&path, text).unwrap();
        assert!(mark_configured(&path).unwrap());
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            after,
            text.replace(
                "configured: false  # set by ssoctl",
                "configured: true  # set by ssoctl"
            )
        );
        assert!(!mark_configured(&path).unwrap(), "second call is a no-op");
    }

    #[test]
    fn a_symlinked_manifest_keeps_its_link() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared-grafana.yaml");
        std::fs::write(&shared, "sso:\n  type: oidc\n  redirect_path: /cb\n").unwrap();
        let path = dir.path().join("manifest.yaml");
        std::os::unix::fs::symlink("shared-grafana.yaml", &path).unwrap();
        assert!(mark_configured(&path).unwrap());
        assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(
            std::fs::read_to_string(&shared).unwrap(),
            "sso:\n  type: oidc\n  configured: true\n  redirect_path: /cb\n"
        );
    }

    #[test]
    fn flow_style_and_anchored_blocks_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.yaml");
        for text in [
            "sso: {type: oidc, redirect_path: /cb}\n",
            "sso: &s\n  type: oidc\n  redirect_path: /cb\nother: *s\n",
        ] {
            std::fs::write(&path, text).unwrap();
            let err = configured_edit(&path).unwrap_err().to_string();
            assert!(
                err.contains("line 1") && err.contains("Nothing was registered"),
                "{err}"
            );
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        }
    }

    #[test]
    fn adds_the_line_after_type_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.yaml");
        std::fs::write(&path, "sso:\n    type: oauth\n    redirect_path: /cb\nother: 1\n").unwrap();
        mark_configured(&path).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            after,
            "sso:\n    type: oauth\n    configured: true\n    redirect_path: /cb\nother: 1\n"
        );
    }

    #[test]
    fn yaml_errors_name_file_and_line() {
        let err = Manifest::parse(
            Path::new("packages/x/manifest.yaml"),
            "sso:\n  type: [oidc\n  redirect_path: /x\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("packages/x/manifest.yaml: line "), "{err}");
    }

    #[test]
    fn flattening_lists_and_maps() {
        let m: serde_yaml::Mapping =
            serde_yaml::from_str("type: oidc\nscopes: [openid, email]\nenv:\n  K: '{client_id}'\nconfigured: false\n")
                .unwrap();
        let flat = flatten(&m);
        assert!(flat.contains(&("scopes.1".into(), "email".into())));
        assert!(flat.contains(&("env.K".into(), "{client_id}".into())));
        assert!(flat.contains(&("configured".into(), "false".into())));
    }
}
