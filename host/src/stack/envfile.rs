//! The stack's `.env`: read with dotenvy's parser, written back line by line so comments, blank
//! lines and key order survive; replaced atomically (temp file + rename) at mode 0600.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A parsed `.env` file plus its original lines.
#[derive(Clone, Debug, Default)]
pub struct EnvFile {
    path: PathBuf,
    lines: Vec<String>,
    values: BTreeMap<String, String>,
}

impl EnvFile {
    /// Reads `path`; a missing file is an empty one (it is created on the first write).
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut values = BTreeMap::new();
        for (index, item) in dotenvy::from_read_iter(text.as_bytes()).enumerate() {
            let (key, value) = item.map_err(|e| Error::Stack {
                path: path.to_path_buf(),
                message: format!("cannot parse entry {} of the file: {e}", index + 1),
            })?;
            values.insert(key, value);
        }
        Ok(Self {
            path: path.to_path_buf(),
            lines: text.lines().map(str::to_string).collect(),
            values,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Applies `changes` (only those that differ) and writes the file atomically.
    /// Returns the keys that changed; nothing is written when none did.
    pub fn apply(&mut self, changes: &BTreeMap<String, String>) -> Result<Vec<String>> {
        let changed = self.stage(changes);
        if !changed.is_empty() {
            self.save()?;
        }
        Ok(changed)
    }

    /// Applies `changes` in memory only; returns the keys that changed. [`EnvFile::save`] writes.
    pub fn stage(&mut self, changes: &BTreeMap<String, String>) -> Vec<String> {
        let changed: Vec<String> = changes
            .iter()
            .filter(|(k, v)| self.values.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &changed {
            let value = &changes[key];
            let line = format!("{key}={}", quote(value));
            match self.lines.iter().position(|l| line_key(l) == Some(key.as_str())) {
                Some(i) => self.lines[i] = line,
                None => self.lines.push(line),
            }
            self.values.insert(key.clone(), value.clone());
        }
        changed
    }

    /// Writes the file atomically, mode 0600.
    pub fn save(&self) -> Result<()> {
        let mut text = self.lines.join("\n");
        text.push('\n');
        write_atomic(&self.path, text.as_bytes(), Some(0o600))
    }
}

/// The key a `KEY=value` / `export KEY=value` line assigns, if any.
fn line_key(line: &str) -> Option<&str> {
    let line = line.trim_start();
    if line.starts_with('#') {
        return None;
    }
    let line = line.strip_prefix("export ").unwrap_or(line);
    let (key, _) = line.split_once('=')?;
    Some(key.trim())
}

/// Plain when safe, otherwise single-quoted (dotenvy reads single quotes literally).
fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@+,=%~".contains(c));
    if plain || value.is_empty() {
        value.to_string()
    } else if !value.contains('\'') {
        format!("'{value}'")
    } else {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$");
        format!("\"{escaped}\"")
    }
}

/// Writes `path` through a temp file in the same folder (mode 0600 from the start), fsync and a
/// rename, so readers and a crash at any point leave the old or the new file, never half of one. `mode` sets the permissions before the rename; without it the
/// existing file's permissions are kept.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Option<u32>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".ssoctl-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(contents).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(tmp.path(), e))?;
    let perms = match mode {
        Some(m) => Some(std::fs::Permissions::from_mode(m)),
        None => std::fs::metadata(path).ok().map(|m| m.permissions()),
    };
    if let Some(perms) = perms {
        std::fs::set_permissions(tmp.path(), perms).map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    // The rename itself is durable only once the folder is synced.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keeps_comments_and_order_and_sets_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# stack settings\nA=1\n\n# grafana\nGRAFANA_X=old\nexport B=\"two words\"\n",
        )
        .unwrap();
        let mut env = EnvFile::load(&path).unwrap();
        assert_eq!(env.get("B"), Some("two words"));
        let changes = BTreeMap::from([
            ("GRAFANA_X".to_string(), "new".to_string()),
            ("NEW_KEY".to_string(), "with space".to_string()),
            ("A".to_string(), "1".to_string()),
        ]);
        let changed = env.apply(&changes).unwrap();
        assert_eq!(changed, vec!["GRAFANA_X", "NEW_KEY"]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "# stack settings\nA=1\n\n# grafana\nGRAFANA_X=new\nexport B=\"two words\"\nNEW_KEY='with space'\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let reread = EnvFile::load(&path).unwrap();
        assert_eq!(reread.get("NEW_KEY"), Some("with space"));
    }

    #[test]
    fn unchanged_values_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "A=1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut env = EnvFile::load(&path).unwrap();
        let changed = env.apply(&BTreeMap::from([("A".into(), "1".into())])).unwrap();
        assert!(changed.is_empty());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "an untouched file is not rewritten");
    }

    #[test]
    fn awkward_values_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        let mut env = EnvFile::load(&path).unwrap();
        let values = [
            "it's $HOME \"quoted\"",
            "contains(groups, 'admins') && 'Admin'",
            "a#b",
            "",
        ];
        let changes: BTreeMap<String, String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("K{i}"), v.to_string()))
            .collect();
        env.apply(&changes).unwrap();
        let reread = EnvFile::load(&path).unwrap();
        for (k, v) in &changes {
            assert_eq!(reread.get(k), Some(v.as_str()), "{k}");
        }
    }
}
