//! A typed client over the `gateway` imports: everything a frontend can ask of the host.
//!
//! On a non-wasm target these functions exist (so frontend logic compiles and unit-tests
//! natively) but calling one panics: there is no host to answer.

use crate::bindings::hoist::frontend::gateway::{
    self, FrontendRequest, Reference, SolveRequest, SolveTarget,
};
use crate::types::{
    Definition, FileStat, ImageConfig, LogLevel, Platform, ReadRange, ResolveMode, Warning,
};
use crate::Error;

/// A build result held by the host; `empty` for the empty filesystem.
#[derive(Debug)]
pub struct Ref {
    inner: Option<Reference>,
}

impl Ref {
    /// The empty filesystem (no host resource).
    pub fn empty() -> Ref {
        Ref { inner: None }
    }

    /// Whether this is the empty filesystem.
    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    fn get(&self, path: &str) -> Result<&Reference, Error> {
        self.inner
            .as_ref()
            .ok_or_else(|| Error::new(format!("{path}: not found (empty filesystem)")))
    }

    /// Reads the whole file at `path` (the host caps the size it returns).
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, Error> {
        self.get(path)?.read_file(path, None)
    }

    /// Reads `length` bytes of the file at `path` from `offset`.
    pub fn read_file_range(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>, Error> {
        self.get(path)?
            .read_file(path, Some(ReadRange { offset, length }))
    }

    /// Lists the directory at `path`, optionally only names matching `pattern`.
    pub fn read_dir(&self, path: &str, pattern: Option<&str>) -> Result<Vec<FileStat>, Error> {
        self.get(path)?.read_dir(path, pattern)
    }

    /// Describes `path` without following a final symlink.
    pub fn stat(&self, path: &str) -> Result<FileStat, Error> {
        self.get(path)?.stat(path)
    }

    pub(crate) fn into_inner(self) -> Option<Reference> {
        self.inner
    }
}

fn solve_request(target: SolveTarget, evaluate: bool) -> Result<gateway::SolveResponse, Error> {
    gateway::solve(&SolveRequest { target, evaluate })
}

/// Solves `def` lazily: the host builds it only when a file is read or the result is exported.
pub fn solve(def: &Definition) -> Result<Ref, Error> {
    let res = solve_request(SolveTarget::Definition(def.clone()), false)?;
    Ok(Ref {
        inner: res.reference,
    })
}

/// Solves `def` now, so build errors surface here rather than at export.
pub fn solve_evaluated(def: &Definition) -> Result<Ref, Error> {
    let res = solve_request(SolveTarget::Definition(def.clone()), true)?;
    Ok(Ref {
        inner: res.reference,
    })
}

/// Runs another frontend (`builtin:NAME` or an OCI reference); returns its result and config.
pub fn solve_frontend(
    source: &str,
    options: Vec<(String, String)>,
    inputs: Vec<(String, Definition)>,
) -> Result<(Ref, Option<String>), Error> {
    let req = FrontendRequest {
        source: source.to_string(),
        options,
        inputs,
    };
    let res = solve_request(SolveTarget::Frontend(req), false)?;
    Ok((
        Ref {
            inner: res.reference,
        },
        res.image_config,
    ))
}

/// Resolves an image reference for a platform to its canonical name, digest and config JSON.
pub fn resolve_image_config(
    reference: &str,
    platform: Option<&Platform>,
    mode: ResolveMode,
) -> Result<ImageConfig, Error> {
    gateway::resolve_image_config(reference, platform, mode)
}

/// The named build contexts given by the client (`context`, `dockerfile`, `--build-context`).
pub fn inputs() -> Vec<(String, Definition)> {
    gateway::inputs()
}

/// Reports a warning (e.g. a build check) to the user.
pub fn warn(warning: &Warning) {
    gateway::warn(warning)
}

/// Writes a line to the build log.
pub fn log(level: LogLevel, message: &str) {
    gateway::log(level, message)
}
