//! What the engine and admission both speak of: where a component came from, what it imports
//! and exports, and why one was refused.

use std::path::PathBuf;

/// Largest component accepted (compilation time grows with size, and compile-time DoS is
/// outside wasmtime's security policy).
pub const MAX_COMPONENT_BYTES: usize = 32 * 1024 * 1024;

/// Where a component came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "path")]
pub enum Source {
    /// Embedded in the ssoctl binary.
    Stock,
    /// A file the operator provided.
    File(PathBuf),
    /// A file in the development folder (`--dev-plugins`): not pinned, read afresh each run.
    Dev(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Stock => f.write_str("stock"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Dev(p) => write!(f, "{} (dev, unpinned)", p.display()),
        }
    }
}

/// A function a component imports or exports, for the audit view.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InterfaceUse {
    pub name: String,
    pub functions: Vec<String>,
}

/// Why a component was refused.
#[derive(Clone, Debug, thiserror::Error)]
pub enum LoadError {
    #[error("flow component `{what}` is {size} bytes; the limit is {limit} bytes")]
    TooLarge { what: String, size: usize, limit: usize },
    #[error("flow component `{what}` is not a valid WebAssembly component: {reason}")]
    Invalid { what: String, reason: String },
    #[error("flow component `{what}` imports `{import}`, which ssoctl does not grant to flows (granted: {granted})")]
    UngrantedImport {
        what: String,
        import: String,
        granted: String,
    },
    #[error("flow component `{what}` does not export `{export}` (built against another sso:flow version?)")]
    MissingExport { what: String, export: String },
    /// A drop-in refused before it was loaded (its pin, its size, a stock type without `--override`).
    #[error("{reason}")]
    Refused { what: String, reason: String },
    /// An optional capability the component's type is not granted; `hint` says how to grant it.
    #[error("flow component `{what}` imports {import}, which is not granted to {hint}")]
    NotGranted { what: String, import: String, hint: String },
}
