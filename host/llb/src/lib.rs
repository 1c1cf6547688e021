//! The LLB model: the build-graph records frontends send, their canonical encoding, op digests
//! and validation. Pure data: no I/O, no async, no knowledge of how ops are executed.
//!
//! The types mirror interface `types` of `wit/frontend.wit` field for field (snake_case names,
//! all fields public), so the frontend host converts WIT values 1:1 and the SDK builds them
//! directly. This crate must not touch the store, workers, sources or the solver; those crates
//! read it.
//!
//! # Example
//!
//! ```
//! use hoist_llb::*;
//! let src = Op::new(OpKind::Source(SourceOp {
//!     identifier: "docker-image://alpine:3.20".into(),
//!     include_patterns: vec![], exclude_patterns: vec![], follow_paths: vec![], attrs: vec![],
//! }));
//! let def = Definition { ops: vec![src], output: Some(OpRef { op: 0, output: 0 }) };
//! def.validate()?;
//! let digests = def.digests()?;
//! assert!(digests[0].to_string().starts_with("sha256:"));
//! # Ok::<(), hoist_llb::Error>(())
//! ```
//!
//! # Key decision: how an op digest is computed
//!
//! `digest(op) = sha256(canonical(op))`, where `canonical` is a deterministic, length-prefixed
//! binary encoding, version-tagged with [`ENCODING_VERSION`]:
//!
//! * integers little-endian fixed width (`u32` 4 bytes, `u64`/`s64` 8), `bool` one byte 0/1;
//! * strings and byte lists: `u64` length, then the bytes; lists: `u64` count, then the items;
//! * `option`: byte 0 (none) or 1 followed by the value; a variant or enum: one tag byte, its
//!   position in the WIT declaration, then the payload; a record: its fields in WIT order;
//! * every `op-ref` is written as the 32 raw bytes of the **referenced op's digest** followed by
//!   the output index as `u32`, so a digest does not depend on where an op sits in the list, and
//!   changes whenever anything upstream changes;
//! * source `attrs` are encoded sorted by (key, value): they are a map in meaning;
//! * an op is `ENCODING_VERSION`, its kind, then its platform. `description`, `location` and
//!   `ignore_cache` are metadata (as in BuildKit) and are **not** hashed: they change how a step
//!   is shown or scheduled, not what it produces.
//!
//! # Guarantees
//!
//! [`Definition::validate`] accepts only definitions whose refs point to earlier ops (hence no
//! cycles) and existing outputs, whose sources use a known scheme, whose execs have arguments and
//! exactly one root mount, and which stay within the documented limits (`MAX_*`). Every error
//! names the op index and, where set, its description and source location. Nothing in this crate
//! panics on frontend-controlled input.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod digest;
mod source;
mod types;

use std::fmt;

pub use digest::{Digest, ParseDigestError, ENCODING_VERSION};
pub use source::{Source, SOURCE_SCHEMES};
pub use types::*;

/// Most ops in one definition: a generous ceiling for real builds (a 1,000-stage Dockerfile
/// makes a few thousand ops) that bounds the memory and time validation and solving take.
pub const MAX_OPS: usize = 100_000;
/// Most arguments of one exec op.
pub const MAX_ARGS: usize = 16_384;
/// Most environment entries of one exec op.
pub const MAX_ENV: usize = 16_384;
/// Most mounts of one exec op (the kernel and runtimes struggle well before this).
pub const MAX_MOUNTS: usize = 256;
/// Most actions in one file op.
pub const MAX_FILE_ACTIONS: usize = 10_000;
/// Largest `mkfile` content: inline data is for small generated files, not payloads.
pub const MAX_MKFILE_BYTES: usize = 16 * 1024 * 1024;
/// Most inputs of one merge op.
pub const MAX_MERGE_INPUTS: usize = 4_096;
/// Most include/exclude/follow patterns in one list of a source or copy.
pub const MAX_PATTERNS: usize = 16_384;
/// Longest single string (arg, env entry, path, pattern, identifier): Linux's `MAX_ARG_STRLEN`.
pub const MAX_STRING_BYTES: usize = 128 * 1024;

/// Description and location of an op, carried by errors so users see which step failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpContext {
    /// The op's description, e.g. `[build 3/5] RUN make`.
    pub description: Option<String>,
    /// Where the op comes from in the build file.
    pub location: Option<SourceLocation>,
}

impl fmt::Display for OpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.description {
            write!(f, " ({d:?})")?;
        }
        if let Some(l) = &self.location {
            write!(f, " at {l}")?;
        }
        Ok(())
    }
}

/// Why an op or reference is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// A ref points to the op itself or a later op (would allow cycles).
    #[error("refers to op {} (output {}), which is not an earlier op", reference.op, reference.output)]
    ForwardRef {
        /// The offending reference.
        reference: OpRef,
    },
    /// A ref names an op index past the end of the definition.
    #[error("refers to op {}, but the definition has only {len} ops", reference.op)]
    MissingOp {
        /// The offending reference.
        reference: OpRef,
        /// Number of ops in the definition.
        len: usize,
    },
    /// A ref names an output the referenced op does not have.
    #[error("refers to output {} of op {}, which has no such output", reference.output, reference.op)]
    MissingOutput {
        /// The offending reference.
        reference: OpRef,
    },
    /// Source identifier with a scheme outside [`SOURCE_SCHEMES`].
    #[error("unknown source scheme {scheme:?} in {identifier:?}")]
    UnknownScheme {
        /// The identifier (truncated).
        identifier: String,
        /// Its scheme.
        scheme: String,
    },
    /// Source identifier that does not parse for its scheme.
    #[error("invalid source identifier {identifier:?}: {detail}")]
    BadIdentifier {
        /// The identifier (truncated).
        identifier: String,
        /// What is wrong.
        detail: String,
    },
    /// Exec op with no arguments.
    #[error("exec has no arguments")]
    EmptyArgs,
    /// Exec op without exactly one bind mount at `/`.
    #[error("exec must have exactly one bind mount at \"/\", found {count}")]
    RootMount {
        /// Number of mounts at `/`.
        count: usize,
    },
    /// Mount destination that is not an absolute path.
    #[error("mount destination {dest:?} is not an absolute path")]
    RelativeMount {
        /// The destination.
        dest: String,
    },
    /// Two mounts publish the same output index.
    #[error("output {output} is published by more than one mount")]
    DuplicateOutput {
        /// The repeated output index.
        output: u32,
    },
    /// A non-bind mount (cache, tmpfs, secret, ssh) publishes an output.
    #[error("mount at {dest:?} is not a bind mount and cannot publish an output")]
    OutputOnNonBind {
        /// The mount destination.
        dest: String,
    },
    /// A documented limit was exceeded.
    #[error("{what}: {count} exceeds the limit of {limit} ({name})")]
    Limit {
        /// What was counted, e.g. `exec arguments`.
        what: &'static str,
        /// The name of the limit constant, e.g. `MAX_ARGS`.
        name: &'static str,
        /// The count found.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// Errors of this crate; each names the op index (and its description/location) concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The definition has more than [`MAX_OPS`] ops.
    #[error("definition has {count} ops, more than the limit of {limit} (MAX_OPS)")]
    TooManyOps {
        /// Number of ops.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Op number `index` is invalid.
    #[error("op {index}{context}: {reason}")]
    Op {
        /// Index of the op in `Definition::ops`.
        index: usize,
        /// Its description and location (boxed to keep `Result`s small).
        context: Box<OpContext>,
        /// What is wrong.
        reason: Reason,
    },
    /// The definition's `output` is invalid.
    #[error("definition output: {reason}")]
    Output {
        /// What is wrong.
        reason: Reason,
    },
    /// A source identifier does not parse ([`SourceOp::parse`], no op index known).
    #[error("{reason}")]
    Source {
        /// What is wrong.
        reason: Reason,
    },
}

impl Error {
    fn op(index: usize, op: &Op, reason: Reason) -> Error {
        Error::Op {
            index,
            context: Box::new(digest::context_of(op)),
            reason,
        }
    }

    /// The index of the op concerned, if any.
    pub fn op_index(&self) -> Option<usize> {
        match self {
            Error::Op { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// The reason, for errors that have one.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Error::Op { reason, .. } | Error::Output { reason } | Error::Source { reason } => {
                Some(reason)
            }
            Error::TooManyOps { .. } => None,
        }
    }

    /// Whether a documented limit (`MAX_*`) was exceeded.
    pub fn is_limit(&self) -> bool {
        matches!(self, Error::TooManyOps { .. })
            || matches!(self.reason(), Some(Reason::Limit { .. }))
    }

    /// The op's source location, if the error concerns an op that has one.
    pub fn location(&self) -> Option<&SourceLocation> {
        match self {
            Error::Op { context, .. } => context.location.as_ref(),
            _ => None,
        }
    }
}

fn limit(what: &'static str, name: &'static str, count: usize, limit: usize) -> Result<(), Reason> {
    if count > limit {
        Err(Reason::Limit {
            what,
            name,
            count,
            limit,
        })
    } else {
        Ok(())
    }
}

fn check_str(what: &'static str, s: &str) -> Result<(), Reason> {
    limit(what, "MAX_STRING_BYTES", s.len(), MAX_STRING_BYTES)
}

fn check_strs(what: &'static str, v: &[String]) -> Result<(), Reason> {
    v.iter().try_for_each(|s| check_str(what, s))
}

fn check_patterns(what: &'static str, v: &[String]) -> Result<(), Reason> {
    limit(what, "MAX_PATTERNS", v.len(), MAX_PATTERNS)?;
    check_strs(what, v)
}

impl Definition {
    /// Checks refs, outputs, schemes, exec shape and limits; see the crate doc's guarantees.
    pub fn validate(&self) -> Result<(), Error> {
        limit_ops(self.ops.len())?;
        for (i, op) in self.ops.iter().enumerate() {
            self.validate_op(i, op)
                .map_err(|reason| Error::op(i, op, reason))?;
        }
        if let Some(r) = self.output {
            self.check_ref(self.ops.len(), r)
                .map_err(|reason| Error::Output { reason })?;
        }
        Ok(())
    }

    /// Checks that `r` names an op before `before` and one of its outputs.
    fn check_ref(&self, before: usize, r: OpRef) -> Result<(), Reason> {
        let idx = r.op as usize;
        let Some(target) = self.ops.get(idx) else {
            return Err(Reason::MissingOp {
                reference: r,
                len: self.ops.len(),
            });
        };
        if idx >= before {
            return Err(Reason::ForwardRef { reference: r });
        }
        if !target.has_output(r.output) {
            return Err(Reason::MissingOutput { reference: r });
        }
        Ok(())
    }

    fn validate_op(&self, i: usize, op: &Op) -> Result<(), Reason> {
        let mut res = Ok(());
        op.for_each_input(|r| {
            if res.is_ok() {
                res = self.check_ref(i, r);
            }
        });
        res?;
        if let Some(p) = &op.platform {
            check_str("platform os", &p.os)?;
            check_str("platform architecture", &p.architecture)?;
            p.variant
                .iter()
                .try_for_each(|v| check_str("platform variant", v))?;
        }
        match &op.kind {
            OpKind::Source(s) => {
                check_str("source identifier", &s.identifier)?;
                check_patterns("source include patterns", &s.include_patterns)?;
                check_patterns("source exclude patterns", &s.exclude_patterns)?;
                check_patterns("source follow paths", &s.follow_paths)?;
                limit(
                    "source attributes",
                    "MAX_PATTERNS",
                    s.attrs.len(),
                    MAX_PATTERNS,
                )?;
                for (k, v) in &s.attrs {
                    check_str("source attribute", k)?;
                    check_str("source attribute", v)?;
                }
                s.parse().map(|_| ()).map_err(|e| match e {
                    Error::Source { reason } => reason,
                    other => Reason::BadIdentifier {
                        identifier: String::new(),
                        detail: other.to_string(),
                    },
                })?;
            }
            OpKind::Exec(x) => validate_exec(x)?,
            OpKind::File(f) => {
                limit(
                    "file actions",
                    "MAX_FILE_ACTIONS",
                    f.actions.len(),
                    MAX_FILE_ACTIONS,
                )?;
                for a in &f.actions {
                    match a {
                        FileAction::Copy(c) => {
                            check_str("copy source path", &c.src_path)?;
                            check_str("copy destination", &c.dest)?;
                            check_patterns("copy include patterns", &c.include_patterns)?;
                            check_patterns("copy exclude patterns", &c.exclude_patterns)?;
                            c.mode.iter().try_for_each(|m| check_str("copy mode", m))?;
                        }
                        FileAction::Mkdir(m) => check_str("mkdir path", &m.path)?,
                        FileAction::Mkfile(m) => {
                            check_str("mkfile path", &m.path)?;
                            limit(
                                "mkfile data bytes",
                                "MAX_MKFILE_BYTES",
                                m.data.len(),
                                MAX_MKFILE_BYTES,
                            )?;
                        }
                        FileAction::Rm(r) => check_str("rm path", &r.path)?,
                        FileAction::Symlink(s) => {
                            check_str("symlink target", &s.target)?;
                            check_str("symlink path", &s.path)?;
                        }
                    }
                }
            }
            OpKind::Merge(m) => {
                limit(
                    "merge inputs",
                    "MAX_MERGE_INPUTS",
                    m.inputs.len(),
                    MAX_MERGE_INPUTS,
                )?;
            }
            OpKind::Diff(_) => {}
        }
        Ok(())
    }
}

fn limit_ops(count: usize) -> Result<(), Error> {
    if count > MAX_OPS {
        return Err(Error::TooManyOps {
            count,
            limit: MAX_OPS,
        });
    }
    Ok(())
}

fn validate_exec(x: &ExecOp) -> Result<(), Reason> {
    if x.args.is_empty() {
        return Err(Reason::EmptyArgs);
    }
    limit("exec arguments", "MAX_ARGS", x.args.len(), MAX_ARGS)?;
    limit("exec environment entries", "MAX_ENV", x.env.len(), MAX_ENV)?;
    limit("exec mounts", "MAX_MOUNTS", x.mounts.len(), MAX_MOUNTS)?;
    check_strs("exec argument", &x.args)?;
    check_strs("exec environment entry", &x.env)?;
    check_str("exec cwd", &x.cwd)?;
    check_str("exec user", &x.user)?;
    check_str("exec hostname", &x.hostname)?;
    let mut roots = 0usize;
    let mut root_is_bind = true;
    let mut outputs: Vec<u32> = Vec::with_capacity(x.mounts.len());
    for m in &x.mounts {
        check_str("mount destination", &m.dest)?;
        check_str("mount selector", &m.selector)?;
        if !m.dest.starts_with('/') {
            return Err(Reason::RelativeMount {
                dest: m.dest.clone(),
            });
        }
        if m.dest == "/" {
            roots += 1;
            root_is_bind &= m.kind == MountKind::Bind;
        }
        match &m.kind {
            MountKind::Cache(c) => check_str("cache mount id", &c.id)?,
            MountKind::Secret(s) => check_str("secret id", &s.id)?,
            MountKind::Ssh(id) => check_str("ssh id", id)?,
            MountKind::Bind | MountKind::Tmpfs(_) => {}
        }
        if let Some(o) = m.output {
            if m.kind != MountKind::Bind {
                return Err(Reason::OutputOnNonBind {
                    dest: m.dest.clone(),
                });
            }
            if outputs.contains(&o) {
                return Err(Reason::DuplicateOutput { output: o });
            }
            outputs.push(o);
        }
    }
    if roots != 1 || !root_is_bind {
        return Err(Reason::RootMount { count: roots });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
