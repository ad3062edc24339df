//! On-disk cache of precompiled components, so start-up does not pay Cranelift again.
//!
//! Precompiled artifacts are native code: only files this host wrote are ever deserialized. They
//! live in a host-owned folder (mode 0700), keyed by sha256 of the component and the engine's
//! compatibility hash (wasmtime version and every setting that affects code generation), and are
//! written atomically. Anything unreadable is deleted and recompiled.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

/// Feeds `Hash` output into sha256, so the key is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ArtifactCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..16]);
        Self { dir, engine_key }
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// Loads the component from its cached artifact, compiling and caching it on a miss.
    pub fn load(&self, engine: &Engine, bytes: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let path = self.path_for(sha256);
        // Read into memory rather than mmap (`deserialize_file`): another process replacing or
        // truncating the file must not pull code out from under a running flow (SIGBUS).
        if let Ok(artifact) = std::fs::read(&path) {
            // SAFETY: the file is in the host's own cache folder, named by the sha256 of the
            // component and the engine configuration, and was written by `store` below;
            // wasmtime still checks the header and engine compatibility before using it.
            match unsafe { Component::deserialize(engine, &artifact) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!("discarding unreadable cached artifact {}: {e}", path.display());
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let artifact = engine.precompile_component(bytes)?;
        if let Err(e) = self.store(&path, &artifact) {
            // The cache is an optimisation: a read-only home folder must not stop a run.
            tracing::debug!("could not cache {}: {e}", path.display());
        }
        // SAFETY: the bytes were produced by this engine a moment ago.
        unsafe { Component::deserialize(engine, &artifact) }
    }

    fn store(&self, path: &std::path::Path, artifact: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.dir)?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(artifact)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Default cache folder: `$SSOCTL_CACHE_DIR`, else `$XDG_CACHE_HOME/ssoctl/components`, else
/// `~/.cache/ssoctl/components`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SSOCTL_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("ssoctl").join("components"))
}
