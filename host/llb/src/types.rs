//! Rust mirrors of the records of `wit/frontend.wit`, interface `types` (LLB part).
//!
//! Field names are the WIT names in snake_case; every field is public so frontends, the SDK and
//! the engine can build and inspect definitions directly.

use serde::{Deserialize, Serialize};

/// One output of an earlier op in the same definition: `op` indexes `Definition::ops`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpRef {
    /// Index of the referenced op in `Definition::ops`; must be lower than the referencing op's.
    pub op: u32,
    /// Output index of the referenced op (0 for source/file/merge/diff).
    pub output: u32,
}

/// A target platform, as in the OCI image index (`linux`, `amd64`, `v8`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture, e.g. `amd64`.
    pub architecture: String,
    /// CPU variant, e.g. `v8`.
    pub variant: Option<String>,
}

/// A 1-based, inclusive line range in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LineRange {
    /// First line (1-based).
    pub start: u32,
    /// Last line (inclusive).
    pub end: u32,
}

/// Where in a build file something comes from (for errors, warnings and progress).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceLocation {
    /// File name as the user knows it, e.g. `Dockerfile`.
    pub file: String,
    /// Line ranges concerned.
    pub ranges: Vec<LineRange>,
}

/// A source op: an image, a local context, an OCI layout directory, git or http(s).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceOp {
    /// `docker-image://REF`, `local://NAME`, `oci-layout://PATH@sha256:DIGEST`, `git://…`, `https://…`.
    pub identifier: String,
    /// local: only these paths (gitignore-style patterns); empty means everything.
    pub include_patterns: Vec<String>,
    /// local: paths left out (.dockerignore semantics, `!` exceptions allowed).
    pub exclude_patterns: Vec<String>,
    /// local: paths whose symlinks are followed when syncing.
    pub follow_paths: Vec<String>,
    /// Scheme-specific attributes (e.g. `image.resolvemode=pull`).
    pub attrs: Vec<(String, String)>,
}

/// Network access of an exec op. `None` gives a network namespace with only loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// Only loopback.
    None,
    /// The host's network namespace.
    Host,
}

/// Whether the exec op runs with the default capability set or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecurityMode {
    /// Default capabilities.
    Sandbox,
    /// All capabilities.
    Insecure,
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheSharing {
    /// Used concurrently by every build.
    Shared,
    /// Each concurrent build gets its own copy.
    Private,
    /// One build at a time.
    Locked,
}

/// A cache mount: persists across builds, keyed by `id`, never part of the image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheMount {
    /// Cache identity.
    pub id: String,
    /// Sharing mode.
    pub sharing: CacheSharing,
}

/// A tmpfs mount; `size` in bytes, 0 for the kernel default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TmpfsMount {
    /// Size in bytes, 0 for the kernel default.
    pub size: u64,
}

/// A secret file provided by the client, never stored in a layer or the cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretMount {
    /// Secret id as given by the client.
    pub id: String,
    /// File mode.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Missing secret is not an error.
    pub optional: bool,
}

/// What is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountKind {
    /// `input` (or an empty directory when there is no input) at `selector`.
    Bind,
    /// A persistent cache mount.
    Cache(CacheMount),
    /// A tmpfs.
    Tmpfs(TmpfsMount),
    /// A client secret.
    Secret(SecretMount),
    /// An SSH agent socket forwarded by the client, by id.
    Ssh(String),
}

/// A mount of an exec op. The mount at `/` is the root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mount {
    /// Mount point inside the container.
    pub dest: String,
    /// The filesystem to mount; `None` means an empty (scratch) directory.
    pub input: Option<OpRef>,
    /// Path inside `input` to mount (bind mounts), `/` or empty for all of it.
    pub selector: String,
    /// Mounted read-only.
    pub readonly: bool,
    /// The output index this mount's final state is published as, if any.
    pub output: Option<u32>,
    /// What is mounted.
    pub kind: MountKind,
}

/// A process run in a container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExecOp {
    /// argv; must not be empty.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// `uid[:gid]` or `name[:group]`, resolved in the root filesystem; empty for root.
    pub user: String,
    /// Container hostname.
    pub hostname: String,
    /// Network mode.
    pub network: NetworkMode,
    /// Security mode.
    pub security: SecurityMode,
    /// Mounts; exactly one at `/`.
    pub mounts: Vec<Mount>,
}

/// A user or group, by number or by name (resolved in the destination's /etc files).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OwnerId {
    /// Numeric id.
    Id(u32),
    /// Name looked up in /etc/passwd or /etc/group.
    Name(String),
}

/// Owner for created files; a missing group follows the user's primary group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Chown {
    /// Owning user.
    pub user: Option<OwnerId>,
    /// Owning group.
    pub group: Option<OwnerId>,
}

/// Copy from another op's output into the file op's filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CopyAction {
    /// Where to copy from.
    pub src: OpRef,
    /// Path inside `src`.
    pub src_path: String,
    /// Destination path.
    pub dest: String,
    /// Owner of copied files.
    pub owner: Option<Chown>,
    /// Octal (`"755"`) or symbolic (`"u+x,go-w"`) mode applied to copied files.
    pub mode: Option<String>,
    /// Follow symlinks in `src_path`.
    pub follow_symlinks: bool,
    /// Copy the contents of a directory, not the directory itself.
    pub dir_contents_only: bool,
    /// Create missing parents of `dest`.
    pub create_dest_path: bool,
    /// `src_path` may contain wildcards.
    pub allow_wildcard: bool,
    /// A wildcard matching nothing is not an error.
    pub allow_empty_wildcard: bool,
    /// Only these paths.
    pub include_patterns: Vec<String>,
    /// Paths left out.
    pub exclude_patterns: Vec<String>,
    /// Unpack a tar archive source into `dest` (ADD of a local archive).
    pub attempt_unpack: bool,
    /// Fixed modification time (seconds since the epoch) for copied files.
    pub timestamp: Option<i64>,
}

/// Make a directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MkdirAction {
    /// Directory path.
    pub path: String,
    /// Mode bits.
    pub mode: u32,
    /// Create missing parents.
    pub make_parents: bool,
    /// Owner.
    pub owner: Option<Chown>,
    /// Fixed modification time (seconds since the epoch).
    pub timestamp: Option<i64>,
}

/// Make a file with the given contents.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MkfileAction {
    /// File path.
    pub path: String,
    /// Mode bits.
    pub mode: u32,
    /// Contents (at most [`crate::MAX_MKFILE_BYTES`]).
    pub data: Vec<u8>,
    /// Owner.
    pub owner: Option<Chown>,
    /// Fixed modification time (seconds since the epoch).
    pub timestamp: Option<i64>,
}

/// Remove a path (wildcards allowed when `allow_wildcard`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RmAction {
    /// Path to remove.
    pub path: String,
    /// A missing path is not an error.
    pub allow_not_found: bool,
    /// `path` may contain wildcards.
    pub allow_wildcard: bool,
}

/// Make a symbolic link at `path` pointing to `target`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SymlinkAction {
    /// Link target.
    pub target: String,
    /// Link path.
    pub path: String,
    /// Owner.
    pub owner: Option<Chown>,
    /// Fixed modification time (seconds since the epoch).
    pub timestamp: Option<i64>,
}

/// One step of a file op.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileAction {
    /// Copy from another op's output.
    Copy(CopyAction),
    /// Make a directory.
    Mkdir(MkdirAction),
    /// Make a file.
    Mkfile(MkfileAction),
    /// Remove a path.
    Rm(RmAction),
    /// Make a symlink.
    Symlink(SymlinkAction),
}

/// File actions applied in order on `base` (or an empty filesystem); one output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileOp {
    /// Filesystem the actions apply to; `None` is empty.
    pub base: Option<OpRef>,
    /// Actions, applied in order.
    pub actions: Vec<FileAction>,
}

/// The union of several filesystems, later inputs winning; one output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MergeOp {
    /// Layers, later ones winning.
    pub inputs: Vec<OpRef>,
}

/// The changes that turn `lower` (or an empty filesystem) into `upper`; one output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiffOp {
    /// Base filesystem; `None` is empty.
    pub lower: Option<OpRef>,
    /// Changed filesystem.
    pub upper: OpRef,
}

/// What an op does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// Fetch a source.
    Source(SourceOp),
    /// Run a process.
    Exec(ExecOp),
    /// Apply file actions.
    File(FileOp),
    /// Merge filesystems.
    Merge(MergeOp),
    /// Diff filesystems.
    Diff(DiffOp),
}

/// One vertex of the build graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Op {
    /// What the op does.
    pub kind: OpKind,
    /// Platform the op runs for; `None` means the host's.
    pub platform: Option<Platform>,
    /// Shown in progress output, e.g. `[build 3/5] RUN make` (not part of the digest).
    pub description: Option<String>,
    /// Never take this op from the cache (not part of the digest).
    pub ignore_cache: bool,
    /// Where the op comes from in the build file (not part of the digest).
    pub location: Option<SourceLocation>,
}

/// A build graph: ops in dependency order and the output the caller wants.
/// `output` of `None` is the empty filesystem (`FROM scratch`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Definition {
    /// Ops; each refers only to earlier ones.
    pub ops: Vec<Op>,
    /// The requested output.
    pub output: Option<OpRef>,
}

impl Op {
    /// A plain op of `kind` with no platform, description or location.
    pub fn new(kind: OpKind) -> Op {
        Op {
            kind,
            platform: None,
            description: None,
            ignore_cache: false,
            location: None,
        }
    }

    /// Every reference this op reads, in a fixed order (mounts, base then copies, merge inputs,
    /// lower then upper).
    pub fn inputs(&self) -> Vec<OpRef> {
        let mut out = Vec::new();
        self.for_each_input(|r| out.push(r));
        out
    }

    /// Calls `f` on every reference this op reads, in the order of [`Op::inputs`].
    pub fn for_each_input(&self, mut f: impl FnMut(OpRef)) {
        match &self.kind {
            OpKind::Source(_) => {}
            OpKind::Exec(e) => e.mounts.iter().filter_map(|m| m.input).for_each(f),
            OpKind::File(fo) => {
                if let Some(b) = fo.base {
                    f(b);
                }
                for a in &fo.actions {
                    if let FileAction::Copy(c) = a {
                        f(c.src);
                    }
                }
            }
            OpKind::Merge(m) => m.inputs.iter().copied().for_each(f),
            OpKind::Diff(d) => {
                if let Some(l) = d.lower {
                    f(l);
                }
                f(d.upper);
            }
        }
    }

    /// Whether this op has an output numbered `output` (exec: a mount's `output`; others: 0).
    pub fn has_output(&self, output: u32) -> bool {
        match &self.kind {
            OpKind::Exec(e) => e.mounts.iter().any(|m| m.output == Some(output)),
            _ => output == 0,
        }
    }

    /// Short name of the op kind (`source`, `exec`, `file`, `merge`, `diff`).
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            OpKind::Source(_) => "source",
            OpKind::Exec(_) => "exec",
            OpKind::File(_) => "file",
            OpKind::Merge(_) => "merge",
            OpKind::Diff(_) => "diff",
        }
    }
}

impl std::fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file)?;
        if let Some(r) = self.ranges.first() {
            if r.start == r.end {
                write!(f, ":{}", r.start)?;
            } else {
                write!(f, ":{}-{}", r.start, r.end)?;
            }
        }
        Ok(())
    }
}
