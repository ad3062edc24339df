//! The stack's `.env`, kept byte for byte except the keys ssoctl owns.
//!
//! Values are read with dotenvy's parser (the semantics docker compose users expect); the file's
//! structure (which lines make up an entry, where its value and trailing comment are) is found by
//! [`scan`], which follows dotenvy's own line-joining rules (`dotenvy::iter::QuotedLines`), so a
//! `KEY=...` line inside a multi-line quoted value is a value, never a key. A write replaces only
//! the value of each changed entry, keeping its `export`, spacing, quote style, trailing comment
//! and line ending; new keys are appended with the file's line ending. The file is replaced
//! atomically; a symlinked `.env` keeps its link (the target is replaced), an existing file keeps
//! its mode, owner and group, and a new one is created at 0600. Errors name the line and never
//! contain a value: a `.env` holds the admin token.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One `KEY=value` entry: where it lies in the text and how its value is written.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    key: String,
    /// 1-based line the entry starts on.
    line: usize,
    /// Byte offset of the start of that line: the entry's text is `start..value.end`.
    start: usize,
    /// Byte range of the value as written (quotes included), which a write replaces.
    value: std::ops::Range<usize>,
    style: Style,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

/// A parsed `.env` file plus its original text.
#[derive(Clone, Debug, Default)]
pub struct EnvFile {
    path: PathBuf,
    text: String,
    entries: Vec<Entry>,
    values: BTreeMap<String, String>,
}

impl EnvFile {
    /// Reads `path`; a missing file is an empty one (it is created on the first write).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(path, e)),
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            Error::Stack {
                path: path.to_path_buf(),
                message: format!("line {line}: not UTF-8 text; save the file as UTF-8"),
            }
        })?;
        Self::parse(path, text)
    }

    fn parse(path: &Path, text: String) -> Result<Self> {
        let bad = |message: String| Error::Stack {
            path: path.to_path_buf(),
            message,
        };
        let entries = scan(&text).map_err(bad)?;
        let mut values = BTreeMap::new();
        for (index, item) in dotenvy::from_read_iter(text.as_bytes()).enumerate() {
            // dotenvy's error carries the line's text, value included: only its place is reported.
            let (key, value) = item.map_err(|_| {
                bad(match entries.get(index) {
                    Some(e) => format!(
                        "line {}: the value of `{}` cannot be read (check its quotes and backslash escapes)",
                        e.line, e.key
                    ),
                    None => "an entry cannot be read (check its quotes and backslash escapes)".to_string(),
                })
            })?;
            values.insert(key, value);
        }
        Ok(Self {
            path: path.to_path_buf(),
            text,
            entries,
            values,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// ssoctl's own setting `key` (`AUTHENTIK_*`): from the process environment, else from this
    /// file; empty counts as unset.
    pub fn setting(&self, key: &str) -> Option<String> {
        std::env::var(key)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| self.get(key).map(str::to_string))
            .filter(|v| !v.is_empty())
    }

    /// Keys set more than once, with the lines that set them (the last one wins).
    pub fn duplicates(&self) -> BTreeMap<String, Vec<usize>> {
        let mut lines: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for e in &self.entries {
            lines.entry(e.key.clone()).or_default().push(e.line);
        }
        lines.retain(|_, l| l.len() > 1);
        lines
    }

    /// Applies `changes` (only those that differ) and writes the file atomically.
    /// Returns the keys that changed; nothing is written when none did.
    pub fn apply(&mut self, changes: &BTreeMap<String, String>) -> Result<Vec<String>> {
        let changed = self.stage(changes)?;
        if !changed.is_empty() {
            self.save()?;
        }
        Ok(changed)
    }

    /// Applies `changes` in memory only; returns the keys that changed. [`EnvFile::save`] writes.
    /// A changed key set on two lines is refused (naming both): which one the operator meant is
    /// theirs to say. Nothing is staged when any change is refused.
    pub fn stage(&mut self, changes: &BTreeMap<String, String>) -> Result<Vec<String>> {
        let changed: Vec<String> = changes
            .iter()
            .filter(|(k, v)| self.values.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        if changed.is_empty() {
            return Ok(changed);
        }
        // A changed key set on several lines: which one the operator meant is theirs to say.
        for key in &changed {
            let lines: Vec<usize> = self.entries.iter().filter(|e| &e.key == key).map(|e| e.line).collect();
            if lines.len() > 1 {
                return Err(self.bad(duplicate_message(key, &lines)));
            }
        }
        // Each new value is rendered and read back on its own, under dotenvy's rules, before
        // anything changes (its value never depends on another entry's: ssoctl writes no `$`
        // unescaped). Then the file is edited in place and the entries after each changed value
        // shifted, rather than copied and parsed again: a bootstrap of a thousand services
        // stages a thousand times.
        let mut edits: Vec<(usize, String)> = Vec::new();
        let mut appended: Vec<String> = Vec::new();
        for key in &changed {
            let value = changes[key].as_str();
            let (candidate, edit) = match self.entries.iter().position(|e| &e.key == key) {
                Some(i) => {
                    let e = &self.entries[i];
                    let mut written = render(value, e.style);
                    // `KEY= # note`: a `#` right after a value would become part of it.
                    if e.value.is_empty() && !written.is_empty() && self.text[e.value.end..].starts_with('#') {
                        written.push(' ');
                    }
                    (
                        format!("{}{}\n", &self.text[e.start..e.value.start], written),
                        Some((i, written)),
                    )
                }
                None => (format!("{key}={}\n", render(value, Style::Plain)), None),
            };
            let mut items = dotenvy::from_read_iter(candidate.as_bytes());
            let reads = match (items.next(), items.next()) {
                (Some(Ok((k, v))), None) if &k == key => Some(v),
                _ => None,
            };
            if reads.as_deref() != Some(value) {
                return Err(self.bad(format!(
                    "`{key}`: its new value cannot be written so that it reads back unchanged; nothing was written"
                )));
            }
            match edit {
                Some(edit) => edits.push(edit),
                None => appended.push(candidate.trim_end_matches('\n').to_string()),
            }
        }
        edits.sort_by_key(|(i, _)| std::cmp::Reverse(self.entries[*i].value.start));
        for (i, written) in edits {
            let range = self.entries[i].value.clone();
            let line_delta =
                written.matches('\n').count() as isize - self.text[range.clone()].matches('\n').count() as isize;
            self.text.replace_range(range.clone(), &written);
            let delta = written.len() as isize - range.len() as isize;
            // The blank kept before a `#` is spacing, not value (as `scan` reads it).
            let entry = &mut self.entries[i];
            entry.value = range.start..range.start + written.trim_end().len();
            entry.style = style_of(written.trim_end());
            for later in self.entries.iter_mut().filter(|e| e.start > range.start) {
                later.start = later.start.saturating_add_signed(delta);
                later.value =
                    later.value.start.saturating_add_signed(delta)..later.value.end.saturating_add_signed(delta);
                later.line = later.line.saturating_add_signed(line_delta);
            }
        }
        if !appended.is_empty() {
            let newline = if self.text.contains("\r\n") { "\r\n" } else { "\n" };
            let appended_at = self.text.len();
            for line in appended {
                if !self.text.is_empty() && !self.text.ends_with('\n') {
                    self.text.push_str(newline);
                }
                self.text.push_str(&line);
                self.text.push_str(newline);
            }
            // Only what was appended is scanned for the new entries.
            let base_line = self.text[..appended_at].matches('\n').count();
            let tail = scan(&self.text[appended_at..]).map_err(|e| self.bad(e))?;
            for mut e in tail {
                e.start += appended_at;
                e.value = e.value.start + appended_at..e.value.end + appended_at;
                e.line += base_line;
                self.entries.push(e);
            }
        }
        for key in &changed {
            self.values.insert(key.clone(), changes[key].clone());
        }
        Ok(changed)
    }

    fn bad(&self, message: String) -> Error {
        Error::Stack {
            path: self.path.clone(),
            message,
        }
    }

    /// Writes the file atomically: through a symlink to its target, keeping an existing file's
    /// mode, owner and group; a new file is created at 0600.
    pub fn save(&self) -> Result<()> {
        let target = resolve_link(&self.path)?;
        let existing = std::fs::metadata(&target).ok();
        if let Some(meta) = &existing {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    "{} is readable by other users (mode {mode:o}) and holds client secrets; ssoctl keeps \
                     the mode you set",
                    self.path.display()
                );
            }
        }
        write_atomic(&target, self.text.as_bytes(), existing.is_none().then_some(0o600))
    }
}

/// The message for a key set on several lines.
pub fn duplicate_message(key: &str, lines: &[usize]) -> String {
    let lines: Vec<String> = lines.iter().map(usize::to_string).collect();
    format!(
        "`{key}` is set on lines {}; the last one wins, so ssoctl will not guess which to update: remove the others",
        lines.join(" and ")
    )
}

/// Where a write to `path` lands: the final target of a symlink chain, so the link stays a link.
pub fn resolve_link(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&current).map_err(|e| Error::io(&current, e))?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(Error::Stack {
        path: path.to_path_buf(),
        message: "too many levels of symbolic links".into(),
    })
}

/// States of dotenvy's line joiner (`dotenvy::iter::ParseState`): a logical entry goes on to the
/// next line while a quote is open or a backslash waits for its character.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    Complete,
    WhiteSpace,
    Escape,
    Weak,
    WeakEscape,
    Strong,
}

/// The entries of `text`, each with its key, first line and value range. Errors name the line
/// and never quote the text.
fn scan(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut offset = 0;
    let mut line_no = 0;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(first) = lines.next() {
        line_no += 1;
        let start = offset;
        offset += first.len();
        let trimmed = first.trim_start();
        if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry_line = line_no;
        // Join lines as dotenvy does, remembering where a comment cuts the entry.
        let mut state = Scan::Complete;
        let mut end = start + first.len();
        let mut comment = None;
        let mut chunk = first;
        let mut chunk_start = start;
        loop {
            for (pos, c) in chunk.char_indices() {
                state = match state {
                    Scan::WhiteSpace if c == '#' => {
                        comment = Some(chunk_start + pos);
                        break;
                    }
                    Scan::WhiteSpace | Scan::Complete => match c {
                        '\\' => Scan::Escape,
                        '"' => Scan::Weak,
                        '\'' => Scan::Strong,
                        c if c.is_whitespace() && c != '\n' && c != '\r' => Scan::WhiteSpace,
                        _ => Scan::Complete,
                    },
                    Scan::Escape => Scan::Complete,
                    Scan::Weak => match c {
                        '\\' => Scan::WeakEscape,
                        '"' => Scan::Complete,
                        _ => Scan::Weak,
                    },
                    Scan::WeakEscape => Scan::Weak,
                    Scan::Strong if c == '\'' => Scan::Complete,
                    Scan::Strong => Scan::Strong,
                };
            }
            if comment.is_some() || matches!(state, Scan::Complete | Scan::WhiteSpace) {
                break;
            }
            match lines.next() {
                Some(next) => {
                    line_no += 1;
                    chunk_start = offset;
                    offset += next.len();
                    end = offset;
                    chunk = next;
                }
                None => {
                    return Err(format!(
                        "line {entry_line}: this entry's value never ends (a quote opened in it is never closed, or it ends in a backslash)"
                    ));
                }
            }
        }
        let body_end = comment.unwrap_or(end);
        let body = &text[start..body_end];
        let (key, value_at) = entry_key(body).ok_or_else(|| {
            format!("line {entry_line}: not a `KEY=value` entry (a key is letters, digits, `_` and `.`, then `=`)")
        })?;
        let value_start = start + value_at;
        let raw = text[value_start..body_end].trim_end();
        let value = value_start..value_start + raw.len();
        entries.push(Entry {
            key,
            line: entry_line,
            start,
            value,
            style: style_of(raw),
        });
    }
    Ok(entries)
}

/// The key of an entry's text and where its value starts (after `=` and any blanks), as
/// dotenvy's `LineParser` reads them: an optional `export`, then the key, then `=`.
fn entry_key(body: &str) -> Option<(String, usize)> {
    let is_key = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let skip_ws = |s: &str, at: usize| at + (s[at..].len() - s[at..].trim_start().len());
    let mut at = skip_ws(body, 0);
    let word = |at: usize| -> Option<(String, usize)> {
        let rest = &body[at..];
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        let len = rest.find(|c: char| !is_key(c)).unwrap_or(rest.len());
        Some((rest[..len].to_string(), at + len))
    };
    let (mut key, mut after) = word(at)?;
    at = skip_ws(body, after);
    if key == "export" && !body[at..].starts_with('=') {
        (key, after) = word(at)?;
        at = skip_ws(body, after);
    }
    if !body[at..].starts_with('=') {
        return None;
    }
    let value_at = at + 1;
    // Blanks after `=` are spacing, not value; a multi-line value starts on this line.
    let rest = &body[value_at..];
    let blanks = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    Some((key, value_at + blanks))
}

/// A value's style: one quoted token keeps its quotes; anything else is plain.
fn style_of(raw: &str) -> Style {
    let single =
        |q: char| raw.len() >= 2 && raw.starts_with(q) && raw.ends_with(q) && !raw[1..raw.len() - 1].contains(q);
    if single('\'') {
        Style::Single
    } else if raw.starts_with('"') && raw.ends_with('"') && raw.len() >= 2 {
        Style::Double
    } else {
        Style::Plain
    }
}

/// `value` written in `style` where it can be (single quotes cannot hold `'`), else plain when
/// safe, else quoted.
fn render(value: &str, style: Style) -> String {
    let plain_safe = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:@+,=%~".contains(c));
    let double = || {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$")
            .replace('\n', "\\n");
        format!("\"{escaped}\"")
    };
    match style {
        Style::Single if !value.contains('\'') => format!("'{value}'"),
        Style::Double if !value.contains('\r') => double(),
        _ if plain_safe => value.to_string(),
        _ if !value.contains('\'') => format!("'{value}'"),
        _ => double(),
    }
}

/// Prefix of the temp files atomic writes create beside their target (`stack::lock` cleans up
/// those a crashed run left).
pub const TEMP_PREFIX: &str = ".ssoctl-";

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
        .prefix(TEMP_PREFIX)
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
    // An existing file keeps its owner and group where this user may set them (a `.env` shared
    // with a `docker` group stays readable by it); otherwise the new file is this user's.
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()));
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

    fn edit(before: &str, changes: &[(&str, &str)]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, before).unwrap();
        let mut env = EnvFile::load(&path).unwrap();
        let changes: BTreeMap<String, String> = changes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        env.apply(&changes).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        let reread = EnvFile::load(&path).unwrap();
        for (k, v) in &changes {
            assert_eq!(reread.get(k), Some(v.as_str()), "{k} in {after:?}");
        }
        after
    }

    #[test]
    fn keeps_comments_order_and_an_existing_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# stack settings\nA=1\n\n# grafana\nGRAFANA_X=old\nexport B=\"two words\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
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
        assert_eq!(mode, 0o640, "the operator's mode is kept");
        let reread = EnvFile::load(&path).unwrap();
        assert_eq!(reread.get("NEW_KEY"), Some("with space"));
    }

    #[test]
    fn a_new_file_is_created_at_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        let mut env = EnvFile::load(&path).unwrap();
        env.apply(&BTreeMap::from([("A".into(), "secret".into())])).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
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
    fn crlf_export_quotes_and_comments_survive_an_edit() {
        let before = "# Windows\r\nexport A='old' # the A\r\nB=\"x\"\r\n  C = plain   # keep\r\nD=1\r\n";
        let after = edit(before, &[("A", "new"), ("B", "it's $x"), ("C", "v w"), ("E", "e")]);
        assert_eq!(
            after,
            "# Windows\r\nexport A='new' # the A\r\nB=\"it's \\$x\"\r\n  C = 'v w'   # keep\r\nD=1\r\nE=e\r\n"
        );
        // Without a final newline, the new key goes on a line of its own.
        assert_eq!(edit("A=1", &[("B", "2")]), "A=1\nB=2\n");
        // An empty value followed by a comment.
        assert_eq!(edit("A= # set me\n", &[("A", "v")]), "A= v # set me\n");
    }

    #[test]
    fn staging_in_place_agrees_with_a_fresh_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# head\r\nA=1\r\nCERT='x\r\ny'\r\n  export B = \"two\" # c\r\nC=\r\nD='d'",
        )
        .unwrap();
        let mut env = EnvFile::load(&path).unwrap();
        let rounds: [&[(&str, &str)]; 5] = [
            &[("A", "one\nline two"), ("NEW", "n")],
            &[("CERT", "z"), ("B", "it's"), ("D", "multi\nline\nvalue")],
            &[("C", "c v"), ("NEW2", "x y"), ("A", "1")],
            &[("NEW", "two\nlines"), ("D", "")],
            &[("B", "$HOME"), ("CERT", "a\nb\nc")],
        ];
        for (round, changes) in rounds.iter().enumerate() {
            let changes: BTreeMap<String, String> =
                changes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            env.stage(&changes).unwrap();
            let fresh = EnvFile::parse(&path, env.text.clone()).unwrap();
            assert_eq!(env.entries, fresh.entries, "round {round}: {:?}", env.text);
            assert_eq!(env.values, fresh.values, "round {round}");
        }
    }

    #[test]
    fn a_line_inside_a_multi_line_value_is_value() {
        let before = "CERT='-----BEGIN-----\nKEY=inside\n-----END-----'\nKEY=outside\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, before).unwrap();
        let env = EnvFile::load(&path).unwrap();
        assert!(env.duplicates().is_empty(), "{:?}", env.duplicates());
        assert_eq!(env.get("KEY"), Some("outside"));
        let after = edit(before, &[("KEY", "new")]);
        assert_eq!(after, before.replace("KEY=outside", "KEY=new"));
        let after = edit(before, &[("CERT", "one line")]);
        assert_eq!(after, "CERT='one line'\nKEY=outside\n");
    }

    #[test]
    fn a_duplicated_key_is_refused_naming_both_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        let before = "A=1\nB=2\nA=3\n";
        std::fs::write(&path, before).unwrap();
        let mut env = EnvFile::load(&path).unwrap();
        assert_eq!(env.get("A"), Some("3"), "the last one wins, as in dotenvy and compose");
        let err = env
            .apply(&BTreeMap::from([("A".into(), "9".into())]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lines 1 and 3"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "nothing written");
        // Another key is still written.
        env.apply(&BTreeMap::from([("B".into(), "9".into())])).unwrap();
    }

    #[test]
    fn parse_errors_name_the_line_and_never_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        for (text, line) in [
            ("A=1\nB='unclosed\nAUTHENTIK_ADMIN_TOKEN=s3cr3t-token\n", 2),
            ("A=1\nB=\"unclosed\nAUTHENTIK_ADMIN_TOKEN=s3cr3t-token\n", 2),
            ("A=1\n\nAUTHENTIK_ADMIN_TOKEN=s3cr3t-token extra\n", 3),
            ("A=1\ns3cr3t-token\n", 2),
            ("A=1\nB=\"bad \\q escape s3cr3t-token\"\n", 2),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = EnvFile::load(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("line {line}:")), "{err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        }
    }

    #[test]
    fn a_symlinked_env_keeps_its_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        let target = dir.path().join("secrets/stack.env");
        std::fs::write(&target, "A=1\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join(".env");
        std::os::unix::fs::symlink("secrets/stack.env", &link).unwrap();
        let mut env = EnvFile::load(&link).unwrap();
        env.apply(&BTreeMap::from([("A".into(), "2".into())])).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "A=2\n");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("secrets")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left beside the target");
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
            "two\nlines",
            "it's\ntwo",
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
