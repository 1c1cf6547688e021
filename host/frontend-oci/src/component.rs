//! What a component says about itself: its top-level import and export names, read with
//! wasmparser without compiling anything.

use crate::Error;

/// The `component` object of the artifact config: the component's world, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ComponentInfo {
    /// Every top-level export name, e.g. `hoist:frontend/builder@1.0.0`.
    #[serde(default)]
    pub exports: Vec<String>,
    /// Every top-level import name, e.g. `wasi:cli/stdout@0.2.6`.
    #[serde(default)]
    pub imports: Vec<String>,
    /// The world the component targets, when the publisher named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Reads the top-level imports and exports of component `bytes`.
///
/// Nested modules and components are skipped: only the outer component's names say what the
/// host must provide and what it may call. A core module or bytes that do not parse are refused.
pub fn describe(bytes: &[u8]) -> Result<ComponentInfo, Error> {
    use wasmparser::{Encoding, Parser, Payload};
    let invalid = |reason: String| Error::InvalidComponent { reason };
    let mut info = ComponentInfo::default();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| invalid(e.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } if depth == 0 && encoding != Encoding::Component => {
                return Err(invalid(
                    "it is a core module, not a component (build it for wasm32-wasip2)".into(),
                ));
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| invalid(e.to_string()))?;
                    info.imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| invalid(e.to_string()))?;
                    info.exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_dockerfile_frontend_describes_itself() {
        let info = describe(hoist_builtin_frontends::DOCKERFILE).unwrap();
        assert!(
            info.exports
                .iter()
                .any(|e| e.starts_with("hoist:frontend/builder@1.")),
            "{info:?}"
        );
        assert!(
            info.imports
                .iter()
                .any(|i| i.starts_with("hoist:frontend/gateway@1.")),
            "{info:?}"
        );
        assert!(
            info.imports.iter().any(|i| i.starts_with("wasi:")),
            "{info:?}"
        );
        // Nested core modules import `wasi_snapshot_preview1` etc.; none of that leaks out.
        assert!(info.imports.iter().all(|i| i.contains(':')), "{info:?}");
    }

    #[test]
    fn core_modules_and_garbage_are_refused() {
        let core = b"\0asm\x01\0\0\0";
        assert!(matches!(
            describe(core),
            Err(Error::InvalidComponent { .. })
        ));
        assert!(matches!(
            describe(b"#!/bin/sh\n"),
            Err(Error::InvalidComponent { .. })
        ));
    }
}
