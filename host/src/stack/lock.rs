//! One writer per stack: an advisory lock on `<root>/.ssoctl.lock`, held by every command that
//! writes (bootstrap, add, fix) for its whole run, so two runs never interleave their reads and
//! writes of `.env` and the manifests. `check` and `plan` do not take it: every write is an
//! atomic rename, so a reader sees the old file or the new one, never half of one.
//!
//! The lock is the kernel's `flock` (`std::fs::File::lock`): it is released when the process
//! exits, however it exits, so a crashed run never leaves a stale lock behind. The file itself
//! stays (removing a lock file races with the next process opening it); it holds the holder's
//! pid and command, for the message a waiting run prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

use crate::stack::envfile::TEMP_PREFIX;

pub const LOCK_FILE: &str = ".ssoctl.lock";

/// The held lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct StackLock {
    _file: File,
}

impl StackLock {
    /// Takes the stack's lock for `command`, waiting up to `timeout` for another run to finish
    /// (saying once who holds it). A timeout of zero fails at once when the lock is held.
    pub fn acquire(root: &Path, command: &str, timeout: Duration) -> Result<Self> {
        let path = root.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let started = Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            let holder = holder(&mut file);
            if started.elapsed() >= timeout {
                return Err(Error::Stack {
                    path,
                    message: format!(
                        "another ssoctl run holds this stack ({holder}); gave up after {} s (--lock-timeout)",
                        timeout.as_secs()
                    ),
                });
            }
            if !said {
                tracing::warn!(
                    "waiting for another ssoctl run on this stack to finish ({holder}; lock {}); \
                     --lock-timeout sets how long to wait",
                    path.display()
                );
                said = true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Who holds it, for the next waiter's message. Best effort: the lock is what counts.
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _ = file.set_len(0).and_then(|()| {
            file.rewind()?;
            writeln!(
                file,
                "pid {} · `{command}` · since unix time {since}",
                std::process::id()
            )
        });
        Ok(Self { _file: file })
    }
}

/// The holder's line from the lock file, or a generic description.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let read = file.rewind().and_then(|()| file.take(256).read_to_string(&mut text));
    match read {
        Ok(_) if !text.trim().is_empty() => text.trim().to_string(),
        _ => "pid unknown".to_string(),
    }
}

/// Temp files a crashed run left behind (full copies of `.env` among them, secrets included):
/// in the stack root, under `packages/` and beside a symlinked `.env`'s target. Never read;
/// removed by a run that holds the lock (no other ssoctl can be writing them then), only
/// listed otherwise.
pub fn leftover_temp_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), 0usize)];
    if let Ok(target) = crate::stack::envfile::resolve_link(&root.join(".env"))
        && let Some(dir) = target.parent()
        && dir != root
    {
        dirs.push((dir.to_path_buf(), usize::MAX));
    }
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_file() && name.starts_with(TEMP_PREFIX) {
                found.push(entry.path());
            } else if kind.is_dir() && depth < 6 && (depth > 0 || name == "packages") {
                dirs.push((entry.path(), depth + 1));
            }
        }
    }
    found.sort();
    found
}

/// Removes `files`; returns those it could not remove, with why.
pub fn remove_temp_files(files: &[PathBuf]) -> Vec<(PathBuf, std::io::Error)> {
    files
        .iter()
        .filter_map(|f| std::fs::remove_file(f).err().map(|e| (f.clone(), e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_gives_up_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = StackLock::acquire(dir.path(), "ssoctl fix grafana", Duration::ZERO).unwrap();
        let err = StackLock::acquire(dir.path(), "ssoctl bootstrap", Duration::from_millis(120))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(err.contains("ssoctl fix grafana"), "{err}");
        drop(first);
        StackLock::acquire(dir.path(), "ssoctl bootstrap", Duration::ZERO).expect("free once released");
    }

    #[test]
    fn leftovers_are_found_in_the_root_and_under_packages_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            ".ssoctl-abc",
            "packages/grafana/.ssoctl-x1",
            "packages/grafana/traefik/.ssoctl-x2",
            "other/.ssoctl-not-ours",
            "packages/grafana/manifest.yaml",
        ] {
            std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            std::fs::write(root.join(f), "x").unwrap();
        }
        let found = leftover_temp_files(root);
        let names: Vec<String> = found
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            vec![
                ".ssoctl-abc",
                "packages/grafana/.ssoctl-x1",
                "packages/grafana/traefik/.ssoctl-x2"
            ]
        );
        assert!(remove_temp_files(&found).is_empty());
        assert!(leftover_temp_files(root).is_empty());
    }
}
