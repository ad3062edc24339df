//! Components built against an earlier `sso:flow` release, linked onto this host's.
//!
//! Every release so far only adds to the one before: `0.2.0` is `0.1.0` plus `ensure-access` (and
//! its record) in the `authentik` interface, every other function and type unchanged
//! (`docs/capabilities.md`, "Releases"). A component built against `0.1.0` therefore needs no
//! translation of its calls, only of its names: it imports `sso:flow/<interface>@0.1.0` and
//! exports `sso:flow/flow@0.1.0`, which this module renames to the `0.2.0` names the host links.
//! Nothing else in the binary changes. Wasmtime then checks the renamed imports and export
//! against the `0.2.0` definitions structurally, function by function and type by type, when the
//! component is prepared; a release that changed a signature would fail there, and need an
//! adapter that translates calls instead.
//!
//! The grants, the capability checks and the limits are the host's, so an adapted component
//! runs with exactly the guarantees of a current one.

use std::borrow::Cow;

use wasm_encoder::reencode::{Error as ReencodeError, Reencode, ReencodeComponent};

use crate::bindings::API_VERSION;

/// The releases whose components are linked by renaming (all that only add to their successor).
const ADAPTED: [&str; 1] = ["0.1.0"];

/// The release a component was built against, from its `sso:flow/flow@<release>` export.
pub fn built_against(bytes: &[u8]) -> Option<String> {
    top_level_names(bytes)
        .ok()?
        .into_iter()
        .find_map(|name| name.strip_prefix("sso:flow/flow@").map(str::to_string))
}

/// The component with its `sso:flow` names moved to this host's release, or unchanged when it
/// was built against this release (or is not a flow at all: the loader says why then). `release`
/// is what [`built_against`] found, read once by the caller.
pub fn adapt<'a>(bytes: &'a [u8], release: Option<&str>) -> Result<Cow<'a, [u8]>, String> {
    let Some(release) = release else {
        return Ok(Cow::Borrowed(bytes));
    };
    if release == API_VERSION || !ADAPTED.contains(&release) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut renamer = Renamer {
        from: format!("@{release}"),
        to: format!("@{API_VERSION}"),
        depth: 0,
    };
    let mut component = wasm_encoder::Component::new();
    renamer
        .parse_component(&mut component, wasmparser::Parser::new(0), bytes)
        .map_err(|e| format!("linking a component built against sso:flow@{release}: {e}"))?;
    Ok(Cow::Owned(component.finish()))
}

/// The names of a component's top-level imports and exports.
fn top_level_names(bytes: &[u8]) -> Result<Vec<String>, wasmparser::BinaryReaderError> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload? {
            wasmparser::Payload::ModuleSection { .. } | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    names.push(import?.name.name.to_string());
                }
            }
            wasmparser::Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    names.push(export?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// Re-encodes a component unchanged but for the `sso:flow` names of its top-level imports and
/// exports (nested components keep theirs: they are wired by index, not by these names).
struct Renamer {
    from: String,
    to: String,
    depth: usize,
}

impl Renamer {
    fn rename<'a>(&self, name: &'a str) -> Cow<'a, str> {
        match name.strip_suffix(self.from.as_str()) {
            Some(base) if self.depth == 0 && base.starts_with("sso:flow/") => Cow::Owned(format!("{base}{}", self.to)),
            _ => Cow::Borrowed(name),
        }
    }
}

impl Reencode for Renamer {
    type Error = std::convert::Infallible;
}

impl ReencodeComponent for Renamer {
    fn parse_component_import_section(
        &mut self,
        imports: &mut wasm_encoder::ComponentImportSection,
        section: wasmparser::ComponentImportSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        for import in section {
            let import = import?;
            let mut name: wasm_encoder::ComponentExternName<'_> = import.name.into();
            name.name = Cow::Owned(self.rename(import.name.name).into_owned());
            imports.import(name, self.component_type_ref(import.ty)?);
        }
        Ok(())
    }

    fn parse_component_export(
        &mut self,
        exports: &mut wasm_encoder::ComponentExportSection,
        export: wasmparser::ComponentExport<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        let mut name: wasm_encoder::ComponentExternName<'_> = export.name.into();
        name.name = Cow::Owned(self.rename(export.name.name).into_owned());
        let ty = export.ty.map(|t| self.component_type_ref(t)).transpose()?;
        exports.export(
            name,
            export.kind.into(),
            self.component_external_index(export.kind, export.index),
            ty,
        );
        Ok(())
    }

    fn push_depth(&mut self) {
        self.depth += 1;
    }

    fn pop_depth(&mut self) {
        self.depth -= 1;
    }
}
