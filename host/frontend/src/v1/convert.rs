//! WIT `types` records (1.x) ⇄ `hoist_llb`: field for field, no validation (that is
//! `Definition::validate`'s job, called by the import that receives a definition).

use super::hoist::frontend::types as w;
use hoist_llb as l;

pub(crate) fn platform_from_wit(p: w::Platform) -> l::Platform {
    l::Platform {
        os: p.os,
        architecture: p.architecture,
        variant: p.variant,
    }
}

pub(crate) fn platform_to_wit(p: l::Platform) -> w::Platform {
    w::Platform {
        os: p.os,
        architecture: p.architecture,
        variant: p.variant,
    }
}

pub(crate) fn location_from_wit(loc: w::SourceLocation) -> l::SourceLocation {
    l::SourceLocation {
        file: loc.file,
        ranges: loc
            .ranges
            .into_iter()
            .map(|r| l::LineRange {
                start: r.start,
                end: r.end,
            })
            .collect(),
    }
}

pub(crate) fn location_to_wit(loc: l::SourceLocation) -> w::SourceLocation {
    w::SourceLocation {
        file: loc.file,
        ranges: loc
            .ranges
            .into_iter()
            .map(|r| w::LineRange {
                start: r.start,
                end: r.end,
            })
            .collect(),
    }
}

pub(crate) fn stat_to_wit(s: crate::FileStat) -> w::FileStat {
    w::FileStat {
        path: s.path,
        mode: s.mode,
        size: s.size,
        mtime_ns: s.mtime_ns,
        uid: s.uid,
        gid: s.gid,
        link_target: s.link_target,
    }
}

fn ref_from(r: w::OpRef) -> l::OpRef {
    l::OpRef {
        op: r.op,
        output: r.output,
    }
}

fn ref_to(r: l::OpRef) -> w::OpRef {
    w::OpRef {
        op: r.op,
        output: r.output,
    }
}

fn owner_from(o: w::OwnerId) -> l::OwnerId {
    match o {
        w::OwnerId::Id(n) => l::OwnerId::Id(n),
        w::OwnerId::Name(s) => l::OwnerId::Name(s),
    }
}

fn owner_to(o: l::OwnerId) -> w::OwnerId {
    match o {
        l::OwnerId::Id(n) => w::OwnerId::Id(n),
        l::OwnerId::Name(s) => w::OwnerId::Name(s),
    }
}

fn chown_from(c: w::Chown) -> l::Chown {
    l::Chown {
        user: c.user.map(owner_from),
        group: c.group.map(owner_from),
    }
}

fn chown_to(c: l::Chown) -> w::Chown {
    w::Chown {
        user: c.user.map(owner_to),
        group: c.group.map(owner_to),
    }
}

fn mount_kind_from(k: w::MountKind) -> l::MountKind {
    match k {
        w::MountKind::Bind => l::MountKind::Bind,
        w::MountKind::Cache(c) => l::MountKind::Cache(l::CacheMount {
            id: c.id,
            sharing: match c.sharing {
                w::CacheSharing::Shared => l::CacheSharing::Shared,
                w::CacheSharing::Private => l::CacheSharing::Private,
                w::CacheSharing::Locked => l::CacheSharing::Locked,
            },
        }),
        w::MountKind::Tmpfs(t) => l::MountKind::Tmpfs(l::TmpfsMount { size: t.size }),
        w::MountKind::Secret(s) => l::MountKind::Secret(l::SecretMount {
            id: s.id,
            mode: s.mode,
            uid: s.uid,
            gid: s.gid,
            optional: s.optional,
        }),
        w::MountKind::Ssh(id) => l::MountKind::Ssh(id),
    }
}

fn mount_kind_to(k: l::MountKind) -> w::MountKind {
    match k {
        l::MountKind::Bind => w::MountKind::Bind,
        l::MountKind::Cache(c) => w::MountKind::Cache(w::CacheMount {
            id: c.id,
            sharing: match c.sharing {
                l::CacheSharing::Shared => w::CacheSharing::Shared,
                l::CacheSharing::Private => w::CacheSharing::Private,
                l::CacheSharing::Locked => w::CacheSharing::Locked,
            },
        }),
        l::MountKind::Tmpfs(t) => w::MountKind::Tmpfs(w::TmpfsMount { size: t.size }),
        l::MountKind::Secret(s) => w::MountKind::Secret(w::SecretMount {
            id: s.id,
            mode: s.mode,
            uid: s.uid,
            gid: s.gid,
            optional: s.optional,
        }),
        l::MountKind::Ssh(id) => w::MountKind::Ssh(id),
    }
}

fn exec_from(e: w::ExecOp) -> l::ExecOp {
    l::ExecOp {
        args: e.args,
        env: e.env,
        cwd: e.cwd,
        user: e.user,
        hostname: e.hostname,
        network: match e.network {
            w::NetworkMode::None => l::NetworkMode::None,
            w::NetworkMode::Host => l::NetworkMode::Host,
        },
        security: match e.security {
            w::SecurityMode::Sandbox => l::SecurityMode::Sandbox,
            w::SecurityMode::Insecure => l::SecurityMode::Insecure,
        },
        mounts: e
            .mounts
            .into_iter()
            .map(|m| l::Mount {
                dest: m.dest,
                input: m.input.map(ref_from),
                selector: m.selector,
                readonly: m.readonly,
                output: m.output,
                kind: mount_kind_from(m.kind),
            })
            .collect(),
    }
}

fn exec_to(e: l::ExecOp) -> w::ExecOp {
    w::ExecOp {
        args: e.args,
        env: e.env,
        cwd: e.cwd,
        user: e.user,
        hostname: e.hostname,
        network: match e.network {
            l::NetworkMode::None => w::NetworkMode::None,
            l::NetworkMode::Host => w::NetworkMode::Host,
        },
        security: match e.security {
            l::SecurityMode::Sandbox => w::SecurityMode::Sandbox,
            l::SecurityMode::Insecure => w::SecurityMode::Insecure,
        },
        mounts: e
            .mounts
            .into_iter()
            .map(|m| w::Mount {
                dest: m.dest,
                input: m.input.map(ref_to),
                selector: m.selector,
                readonly: m.readonly,
                output: m.output,
                kind: mount_kind_to(m.kind),
            })
            .collect(),
    }
}

fn action_from(a: w::FileAction) -> l::FileAction {
    match a {
        w::FileAction::Copy(c) => l::FileAction::Copy(l::CopyAction {
            src: ref_from(c.src),
            src_path: c.src_path,
            dest: c.dest,
            owner: c.owner.map(chown_from),
            mode: c.mode,
            follow_symlinks: c.follow_symlinks,
            dir_contents_only: c.dir_contents_only,
            create_dest_path: c.create_dest_path,
            allow_wildcard: c.allow_wildcard,
            allow_empty_wildcard: c.allow_empty_wildcard,
            include_patterns: c.include_patterns,
            exclude_patterns: c.exclude_patterns,
            attempt_unpack: c.attempt_unpack,
            timestamp: c.timestamp,
        }),
        w::FileAction::Mkdir(m) => l::FileAction::Mkdir(l::MkdirAction {
            path: m.path,
            mode: m.mode,
            make_parents: m.make_parents,
            owner: m.owner.map(chown_from),
            timestamp: m.timestamp,
        }),
        w::FileAction::Mkfile(m) => l::FileAction::Mkfile(l::MkfileAction {
            path: m.path,
            mode: m.mode,
            data: m.data,
            owner: m.owner.map(chown_from),
            timestamp: m.timestamp,
        }),
        w::FileAction::Rm(r) => l::FileAction::Rm(l::RmAction {
            path: r.path,
            allow_not_found: r.allow_not_found,
            allow_wildcard: r.allow_wildcard,
        }),
        w::FileAction::Symlink(s) => l::FileAction::Symlink(l::SymlinkAction {
            target: s.target,
            path: s.path,
            owner: s.owner.map(chown_from),
            timestamp: s.timestamp,
        }),
    }
}

fn action_to(a: l::FileAction) -> w::FileAction {
    match a {
        l::FileAction::Copy(c) => w::FileAction::Copy(w::CopyAction {
            src: ref_to(c.src),
            src_path: c.src_path,
            dest: c.dest,
            owner: c.owner.map(chown_to),
            mode: c.mode,
            follow_symlinks: c.follow_symlinks,
            dir_contents_only: c.dir_contents_only,
            create_dest_path: c.create_dest_path,
            allow_wildcard: c.allow_wildcard,
            allow_empty_wildcard: c.allow_empty_wildcard,
            include_patterns: c.include_patterns,
            exclude_patterns: c.exclude_patterns,
            attempt_unpack: c.attempt_unpack,
            timestamp: c.timestamp,
        }),
        l::FileAction::Mkdir(m) => w::FileAction::Mkdir(w::MkdirAction {
            path: m.path,
            mode: m.mode,
            make_parents: m.make_parents,
            owner: m.owner.map(chown_to),
            timestamp: m.timestamp,
        }),
        l::FileAction::Mkfile(m) => w::FileAction::Mkfile(w::MkfileAction {
            path: m.path,
            mode: m.mode,
            data: m.data,
            owner: m.owner.map(chown_to),
            timestamp: m.timestamp,
        }),
        l::FileAction::Rm(r) => w::FileAction::Rm(w::RmAction {
            path: r.path,
            allow_not_found: r.allow_not_found,
            allow_wildcard: r.allow_wildcard,
        }),
        l::FileAction::Symlink(s) => w::FileAction::Symlink(w::SymlinkAction {
            target: s.target,
            path: s.path,
            owner: s.owner.map(chown_to),
            timestamp: s.timestamp,
        }),
    }
}

fn kind_from(k: w::OpKind) -> l::OpKind {
    match k {
        w::OpKind::Source(s) => l::OpKind::Source(l::SourceOp {
            identifier: s.identifier,
            include_patterns: s.include_patterns,
            exclude_patterns: s.exclude_patterns,
            follow_paths: s.follow_paths,
            attrs: s.attrs,
        }),
        w::OpKind::Exec(e) => l::OpKind::Exec(exec_from(e)),
        w::OpKind::File(f) => l::OpKind::File(l::FileOp {
            base: f.base.map(ref_from),
            actions: f.actions.into_iter().map(action_from).collect(),
        }),
        w::OpKind::Merge(m) => l::OpKind::Merge(l::MergeOp {
            inputs: m.inputs.into_iter().map(ref_from).collect(),
        }),
        w::OpKind::Diff(d) => l::OpKind::Diff(l::DiffOp {
            lower: d.lower.map(ref_from),
            upper: ref_from(d.upper),
        }),
    }
}

fn kind_to(k: l::OpKind) -> w::OpKind {
    match k {
        l::OpKind::Source(s) => w::OpKind::Source(w::SourceOp {
            identifier: s.identifier,
            include_patterns: s.include_patterns,
            exclude_patterns: s.exclude_patterns,
            follow_paths: s.follow_paths,
            attrs: s.attrs,
        }),
        l::OpKind::Exec(e) => w::OpKind::Exec(exec_to(e)),
        l::OpKind::File(f) => w::OpKind::File(w::FileOp {
            base: f.base.map(ref_to),
            actions: f.actions.into_iter().map(action_to).collect(),
        }),
        l::OpKind::Merge(m) => w::OpKind::Merge(w::MergeOp {
            inputs: m.inputs.into_iter().map(ref_to).collect(),
        }),
        l::OpKind::Diff(d) => w::OpKind::Diff(w::DiffOp {
            lower: d.lower.map(ref_to),
            upper: ref_to(d.upper),
        }),
    }
}

pub(crate) fn definition_from_wit(d: w::Definition) -> l::Definition {
    l::Definition {
        ops: d
            .ops
            .into_iter()
            .map(|op| l::Op {
                kind: kind_from(op.kind),
                platform: op.platform.map(platform_from_wit),
                description: op.description,
                ignore_cache: op.ignore_cache,
                location: op.location.map(location_from_wit),
            })
            .collect(),
        output: d.output.map(ref_from),
    }
}

pub(crate) fn definition_to_wit(d: l::Definition) -> w::Definition {
    w::Definition {
        ops: d
            .ops
            .into_iter()
            .map(|op| w::Op {
                kind: kind_to(op.kind),
                platform: op.platform.map(platform_to_wit),
                description: op.description,
                ignore_cache: op.ignore_cache,
                location: op.location.map(location_to_wit),
            })
            .collect(),
        output: d.output.map(ref_to),
    }
}
