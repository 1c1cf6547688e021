//! An immutable LLB builder in the spirit of BuildKit's Go `llb` package.
//!
//! Every operation returns a new [`State`]; states share the ops they were built from by `Rc`, so
//! branching a build graph is cheap. [`State::definition`] flattens the graph into the WIT
//! [`Definition`]: ops in dependency order, each shared op (and each structurally identical op)
//! emitted once.
//!
//! Relative paths in file actions and `dir` are resolved against the state's working directory,
//! as a Dockerfile does; copy sources are resolved against the root of the source state.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::ops::Deref;
use std::rc::Rc;

use crate::types::{
    CacheMount, CacheSharing, Chown, CopyAction, Definition, DiffOp, ExecOp, FileAction, FileOp,
    LineRange, MergeOp, MkdirAction, MkfileAction, Mount, MountKind, NetworkMode, Op, OpKind,
    OpRef, OwnerId, Platform, RmAction, SecretMount, SecurityMode, SourceLocation, SourceOp,
    SymlinkAction, TmpfsMount,
};

/// One op of the graph; `OpRef`s inside `op` index `inputs`, not a definition.
#[derive(Debug)]
struct Vertex {
    op: Op,
    inputs: Vec<Output>,
}

impl Drop for Vertex {
    /// Drops long chains iteratively: a recursive drop of a 10 000-op chain overflows the stack.
    fn drop(&mut self) {
        let mut stack: Vec<Rc<Vertex>> = self.inputs.drain(..).map(|o| o.vertex).collect();
        while let Some(v) = stack.pop() {
            if let Ok(mut only) = Rc::try_unwrap(v) {
                stack.extend(only.inputs.drain(..).map(|o| o.vertex));
            }
        }
    }
}

/// One output of a vertex.
#[derive(Debug, Clone)]
struct Output {
    vertex: Rc<Vertex>,
    index: u32,
}

/// Collects the inputs of a vertex under construction, handing out placeholder refs.
#[derive(Default)]
struct Inputs(Vec<Output>);

impl Inputs {
    fn add_output(&mut self, out: &Output) -> OpRef {
        let op = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        self.0.push(out.clone());
        OpRef { op, output: 0 }
    }
}

/// Calls `f` on every op reference of `op`, in [`Op`] input order, replacing it with the result.
fn map_refs(op: &mut Op, mut f: impl FnMut(OpRef) -> OpRef) {
    match &mut op.kind {
        OpKind::Source(_) => {}
        OpKind::Exec(e) => {
            for m in &mut e.mounts {
                if let Some(r) = m.input.as_mut() {
                    *r = f(*r);
                }
            }
        }
        OpKind::File(fo) => {
            if let Some(b) = fo.base.as_mut() {
                *b = f(*b);
            }
            for a in &mut fo.actions {
                if let FileAction::Copy(c) = a {
                    c.src = f(c.src);
                }
            }
        }
        OpKind::Merge(m) => {
            for r in &mut m.inputs {
                *r = f(*r);
            }
        }
        OpKind::Diff(d) => {
            if let Some(l) = d.lower.as_mut() {
                *l = f(*l);
            }
            d.upper = f(d.upper);
        }
    }
}

fn new_op(kind: OpKind, platform: Option<Platform>) -> Op {
    Op {
        kind,
        platform,
        description: None,
        ignore_cache: false,
        location: None,
    }
}

/// Joins `path` onto `cwd` unless it is absolute.
fn resolve_path(cwd: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else if cwd.ends_with('/') {
        format!("{cwd}{path}")
    } else {
        format!("{cwd}/{path}")
    }
}

/// A filesystem state (the output of an op, or scratch) plus the defaults that later `run`s and
/// file actions inherit: environment, working directory, user and platform.
#[derive(Debug, Clone)]
pub struct State {
    out: Option<Output>,
    env: Vec<(String, String)>,
    cwd: String,
    user: String,
    platform: Option<Platform>,
}

/// The empty filesystem (`FROM scratch`).
pub fn scratch() -> State {
    State {
        out: None,
        env: Vec::new(),
        cwd: "/".into(),
        user: String::new(),
        platform: None,
    }
}

/// A source op with the given BuildKit identifier (`docker-image://…`, `local://…`, `git://…`).
pub fn source(identifier: impl Into<String>) -> Source {
    Source::new(SourceOp {
        identifier: identifier.into(),
        include_patterns: Vec::new(),
        exclude_patterns: Vec::new(),
        follow_paths: Vec::new(),
        attrs: Vec::new(),
    })
}

/// An image from a registry, e.g. `image("busybox:latest")`.
pub fn image(reference: impl Into<String>) -> Source {
    source(format!("docker-image://{}", reference.into()))
}

/// A local directory sent by the client, e.g. `local("context")`.
pub fn local(name: impl Into<String>) -> Source {
    source(format!("local://{}", name.into()))
}

/// An image in an OCI layout directory, `PATH@sha256:DIGEST`.
pub fn oci_layout(path_at_digest: impl Into<String>) -> Source {
    source(format!("oci-layout://{}", path_at_digest.into()))
}

impl State {
    fn from_vertex(parent: &State, vertex: Rc<Vertex>, index: u32) -> State {
        State {
            out: Some(Output { vertex, index }),
            ..parent.clone()
        }
    }

    /// Whether this is the empty filesystem.
    pub fn is_scratch(&self) -> bool {
        self.out.is_none()
    }

    /// The state with `key=value` added to the environment of later `run`s.
    pub fn add_env(&self, key: impl Into<String>, value: impl Into<String>) -> State {
        let mut s = self.clone();
        set_env(&mut s.env, key.into(), value.into());
        s
    }

    /// The value of `key` in this state's environment.
    pub fn get_env(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The environment as `(key, value)` pairs, in the order they were first set.
    pub fn env_list(&self) -> &[(String, String)] {
        &self.env
    }

    /// The state with its working directory changed (relative paths join the current one).
    pub fn dir(&self, path: impl AsRef<str>) -> State {
        State {
            cwd: resolve_path(&self.cwd, path.as_ref()),
            ..self.clone()
        }
    }

    /// The working directory of later `run`s and relative file paths.
    pub fn get_dir(&self) -> &str {
        &self.cwd
    }

    /// The state with the user of later `run`s changed.
    pub fn user(&self, user: impl Into<String>) -> State {
        State {
            user: user.into(),
            ..self.clone()
        }
    }

    /// The user of later `run`s; empty for root.
    pub fn get_user(&self) -> &str {
        &self.user
    }

    /// The state with the platform of later ops changed.
    pub fn platform(&self, platform: Platform) -> State {
        State {
            platform: Some(platform),
            ..self.clone()
        }
    }

    /// The platform of later ops; `None` means the host's.
    pub fn get_platform(&self) -> Option<&Platform> {
        self.platform.as_ref()
    }

    /// Starts an exec op running `args` on this state as its root filesystem.
    pub fn run<I, S>(&self, args: I) -> Exec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Exec {
            base: self.clone(),
            args: args.into_iter().map(Into::into).collect(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            hostname: String::new(),
            network: NetworkMode::None,
            security: SecurityMode::Sandbox,
            mounts: Vec::new(),
            meta: Meta {
                platform: self.platform.clone(),
                ..Meta::default()
            },
            built: OnceCell::new(),
        }
    }

    /// Applies file actions to this state in one file op.
    pub fn file(&self, actions: impl Into<FileActions>) -> State {
        let mut inputs = Inputs::default();
        let base = self.out.as_ref().map(|o| inputs.add_output(o));
        let actions = actions
            .into()
            .0
            .into_iter()
            .map(|a| a.resolve(&self.cwd, &mut inputs))
            .collect();
        let op = new_op(
            OpKind::File(FileOp { base, actions }),
            self.platform.clone(),
        );
        let vertex = Rc::new(Vertex {
            op,
            inputs: inputs.0,
        });
        State::from_vertex(self, vertex, 0)
    }

    /// The state with the op that produced it re-described (progress output).
    ///
    /// For an exec op, set this on the [`Exec`] instead so every mount output shares it.
    pub fn description(&self, text: impl Into<String>) -> State {
        let text = text.into();
        self.with_op(|op| op.description = Some(text))
    }

    /// The state with the op that produced it located in a build file.
    pub fn location(&self, file: impl Into<String>, ranges: &[(u32, u32)]) -> State {
        let loc = location(file, ranges);
        self.with_op(|op| op.location = Some(loc))
    }

    /// The state with the op that produced it never taken from the cache.
    pub fn ignore_cache(&self) -> State {
        self.with_op(|op| op.ignore_cache = true)
    }

    fn with_op(&self, f: impl FnOnce(&mut Op)) -> State {
        let Some(out) = &self.out else {
            return self.clone();
        };
        let mut op = out.vertex.op.clone();
        f(&mut op);
        let vertex = Rc::new(Vertex {
            op,
            inputs: out.vertex.inputs.clone(),
        });
        State::from_vertex(self, vertex, out.index)
    }

    /// The build graph that produces this state, ready to [`solve`](crate::solve).
    pub fn definition(&self) -> Definition {
        let mut b = DefinitionBuilder::default();
        let output = self.out.as_ref().map(|o| OpRef {
            op: b.intern(&o.vertex),
            output: o.index,
        });
        Definition { ops: b.ops, output }
    }
}

fn set_env(env: &mut Vec<(String, String)>, key: String, value: String) {
    if let Some(slot) = env.iter_mut().find(|(k, _)| *k == key) {
        slot.1 = value;
    } else {
        env.push((key, value));
    }
}

/// A source location from a file name and `(start, end)` line ranges.
pub fn location(file: impl Into<String>, ranges: &[(u32, u32)]) -> SourceLocation {
    SourceLocation {
        file: file.into(),
        ranges: ranges
            .iter()
            .map(|&(start, end)| LineRange { start, end })
            .collect(),
    }
}

#[derive(Default)]
struct DefinitionBuilder {
    ops: Vec<Op>,
    by_vertex: HashMap<*const Vertex, u32>,
    by_op: HashMap<Op, u32>,
}

impl DefinitionBuilder {
    /// Emits `root` and everything it depends on (iteratively: graphs may be deep), returning
    /// the index of `root`.
    fn intern(&mut self, root: &Rc<Vertex>) -> u32 {
        let mut stack: Vec<(Rc<Vertex>, bool)> = vec![(root.clone(), false)];
        while let Some((v, expanded)) = stack.pop() {
            let key = Rc::as_ptr(&v);
            if self.by_vertex.contains_key(&key) {
                continue;
            }
            if !expanded {
                stack.push((v.clone(), true));
                for input in v.inputs.iter().rev() {
                    if !self.by_vertex.contains_key(&Rc::as_ptr(&input.vertex)) {
                        stack.push((input.vertex.clone(), false));
                    }
                }
                continue;
            }
            let mut op = v.op.clone();
            let by_vertex = &self.by_vertex;
            map_refs(&mut op, |r| {
                let input = &v.inputs[r.op as usize];
                // Every input was interned before this vertex was expanded a second time.
                let op = by_vertex
                    .get(&Rc::as_ptr(&input.vertex))
                    .copied()
                    .unwrap_or(u32::MAX);
                OpRef {
                    op,
                    output: input.index,
                }
            });
            let index = match self.by_op.get(&op) {
                Some(&i) => i,
                None => {
                    let i = u32::try_from(self.ops.len()).unwrap_or(u32::MAX);
                    self.by_op.insert(op.clone(), i);
                    self.ops.push(op);
                    i
                }
            };
            self.by_vertex.insert(key, index);
        }
        self.by_vertex
            .get(&Rc::as_ptr(root))
            .copied()
            .unwrap_or(u32::MAX)
    }
}

#[derive(Debug, Clone, Default)]
struct Meta {
    platform: Option<Platform>,
    description: Option<String>,
    location: Option<SourceLocation>,
    ignore_cache: bool,
}

impl Meta {
    fn apply(&self, op: &mut Op) {
        op.platform.clone_from(&self.platform);
        op.description.clone_from(&self.description);
        op.location.clone_from(&self.location);
        op.ignore_cache = self.ignore_cache;
    }
}

/// A source op being configured; usable as a [`State`] at any point (it derefs to one).
#[derive(Debug, Clone)]
pub struct Source {
    op: SourceOp,
    meta: Meta,
    state: State,
}

impl Source {
    fn new(op: SourceOp) -> Source {
        let mut s = Source {
            op,
            meta: Meta::default(),
            state: scratch(),
        };
        s.rebuild();
        s
    }

    fn rebuild(&mut self) {
        let mut op = new_op(OpKind::Source(self.op.clone()), None);
        self.meta.apply(&mut op);
        let vertex = Rc::new(Vertex {
            op,
            inputs: Vec::new(),
        });
        let mut state = scratch();
        state.platform.clone_from(&self.meta.platform);
        self.state = State::from_vertex(&state, vertex, 0);
    }

    fn with(mut self, f: impl FnOnce(&mut Source)) -> Source {
        f(&mut self);
        self.rebuild();
        self
    }

    /// Only these paths (gitignore-style patterns) of a local source.
    pub fn include<I: IntoIterator<Item = S>, S: Into<String>>(self, patterns: I) -> Source {
        self.with(|s| {
            s.op.include_patterns
                .extend(patterns.into_iter().map(Into::into))
        })
    }

    /// Leave these paths out of a local source (`.dockerignore` semantics).
    pub fn exclude<I: IntoIterator<Item = S>, S: Into<String>>(self, patterns: I) -> Source {
        self.with(|s| {
            s.op.exclude_patterns
                .extend(patterns.into_iter().map(Into::into))
        })
    }

    /// Follow symlinks under these paths of a local source.
    pub fn follow_paths<I: IntoIterator<Item = S>, S: Into<String>>(self, paths: I) -> Source {
        self.with(|s| s.op.follow_paths.extend(paths.into_iter().map(Into::into)))
    }

    /// A scheme-specific attribute, e.g. `("image.resolvemode", "pull")`.
    pub fn attr(self, key: impl Into<String>, value: impl Into<String>) -> Source {
        let (k, v) = (key.into(), value.into());
        self.with(|s| s.op.attrs.push((k, v)))
    }

    /// The platform to fetch (images) and of every op built on this source.
    pub fn platform(self, platform: Platform) -> Source {
        self.with(|s| s.meta.platform = Some(platform))
    }

    /// Progress text of the source op.
    pub fn description(self, text: impl Into<String>) -> Source {
        let text = text.into();
        self.with(|s| s.meta.description = Some(text))
    }

    /// Build-file location of the source op.
    pub fn location(self, file: impl Into<String>, ranges: &[(u32, u32)]) -> Source {
        let loc = location(file, ranges);
        self.with(|s| s.meta.location = Some(loc))
    }

    /// Never take the source from the cache.
    pub fn ignore_cache(self) -> Source {
        self.with(|s| s.meta.ignore_cache = true)
    }

    /// The configured source as a plain state.
    pub fn state(self) -> State {
        self.state
    }
}

impl Deref for Source {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl From<Source> for State {
    fn from(s: Source) -> State {
        s.state
    }
}

/// A mount of an exec op being configured: [`bind`], [`cache`], [`tmpfs`], [`secret`], [`ssh`].
#[derive(Debug, Clone)]
pub struct MountSpec {
    dest: String,
    input: Option<Output>,
    selector: String,
    readonly: bool,
    kind: MountKind,
}

/// A read-write bind mount of `state` at `dest`; its final state is an output of the exec.
pub fn bind(dest: impl Into<String>, state: &State) -> MountSpec {
    MountSpec {
        dest: dest.into(),
        input: state.out.clone(),
        selector: String::new(),
        readonly: false,
        kind: MountKind::Bind,
    }
}

/// A persistent cache mount at `dest`, id defaulting to `dest`, sharing `shared`.
pub fn cache(dest: impl Into<String>) -> MountSpec {
    let dest = dest.into();
    MountSpec {
        kind: MountKind::Cache(CacheMount {
            id: dest.clone(),
            sharing: CacheSharing::Shared,
        }),
        dest,
        input: None,
        selector: String::new(),
        readonly: false,
    }
}

/// A tmpfs at `dest` of the kernel's default size.
pub fn tmpfs(dest: impl Into<String>) -> MountSpec {
    MountSpec {
        dest: dest.into(),
        input: None,
        selector: String::new(),
        readonly: false,
        kind: MountKind::Tmpfs(TmpfsMount { size: 0 }),
    }
}

/// A client secret `id` as the file `dest` (mode 0400, owned by root, required).
pub fn secret(dest: impl Into<String>, id: impl Into<String>) -> MountSpec {
    MountSpec {
        dest: dest.into(),
        input: None,
        selector: String::new(),
        readonly: true,
        kind: MountKind::Secret(SecretMount {
            id: id.into(),
            mode: 0o400,
            uid: 0,
            gid: 0,
            optional: false,
        }),
    }
}

/// The client's SSH agent socket `id` at `dest`.
pub fn ssh(dest: impl Into<String>, id: impl Into<String>) -> MountSpec {
    MountSpec {
        dest: dest.into(),
        input: None,
        selector: String::new(),
        readonly: true,
        kind: MountKind::Ssh(id.into()),
    }
}

impl MountSpec {
    /// Mount read-only (a read-only bind mount publishes no output).
    pub fn readonly(mut self) -> MountSpec {
        self.readonly = true;
        self
    }

    /// Mount only this path of the input.
    pub fn selector(mut self, path: impl Into<String>) -> MountSpec {
        self.selector = path.into();
        self
    }

    /// The cache id (cache mounts) or secret id (secret mounts).
    pub fn id(mut self, id: impl Into<String>) -> MountSpec {
        match &mut self.kind {
            MountKind::Cache(c) => c.id = id.into(),
            MountKind::Secret(s) => s.id = id.into(),
            MountKind::Ssh(s) => *s = id.into(),
            MountKind::Bind | MountKind::Tmpfs(_) => {}
        }
        self
    }

    /// How concurrent builds share a cache mount.
    pub fn sharing(mut self, sharing: CacheSharing) -> MountSpec {
        if let MountKind::Cache(c) = &mut self.kind {
            c.sharing = sharing;
        }
        self
    }

    /// Size of a tmpfs in bytes.
    pub fn size(mut self, bytes: u64) -> MountSpec {
        if let MountKind::Tmpfs(t) = &mut self.kind {
            t.size = bytes;
        }
        self
    }

    /// Mode, owner and optionality of a secret file.
    pub fn secret_file(mut self, mode: u32, uid: u32, gid: u32, optional: bool) -> MountSpec {
        if let MountKind::Secret(s) = &mut self.kind {
            s.mode = mode;
            s.uid = uid;
            s.gid = gid;
            s.optional = optional;
        }
        self
    }

    /// Seed a cache mount from `state` (it is still never part of the image).
    pub fn from_state(mut self, state: &State) -> MountSpec {
        self.input = state.out.clone();
        self
    }
}

/// An exec op being configured; [`Exec::root`] gives the resulting root filesystem.
#[derive(Debug, Clone)]
pub struct Exec {
    base: State,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
    user: String,
    hostname: String,
    network: NetworkMode,
    security: SecurityMode,
    mounts: Vec<MountSpec>,
    meta: Meta,
    built: OnceCell<Rc<Vertex>>,
}

impl Exec {
    fn with(mut self, f: impl FnOnce(&mut Exec)) -> Exec {
        f(&mut self);
        self.built = OnceCell::new();
        self
    }

    /// Sets `key=value` in the process environment.
    pub fn env(self, key: impl Into<String>, value: impl Into<String>) -> Exec {
        let (k, v) = (key.into(), value.into());
        self.with(|e| set_env(&mut e.env, k, v))
    }

    /// The working directory (relative paths join the state's).
    pub fn cwd(self, path: impl AsRef<str>) -> Exec {
        let cwd = resolve_path(&self.cwd, path.as_ref());
        self.with(|e| e.cwd = cwd)
    }

    /// The user (`uid[:gid]` or `name[:group]`).
    pub fn user(self, user: impl Into<String>) -> Exec {
        let user = user.into();
        self.with(|e| e.user = user)
    }

    /// The container's hostname.
    pub fn hostname(self, name: impl Into<String>) -> Exec {
        let name = name.into();
        self.with(|e| e.hostname = name)
    }

    /// Network access (default: loopback only).
    pub fn network(self, mode: NetworkMode) -> Exec {
        self.with(|e| e.network = mode)
    }

    /// Capability set (default: sandbox).
    pub fn security(self, mode: SecurityMode) -> Exec {
        self.with(|e| e.security = mode)
    }

    /// Bind-mounts `state` read-write at `dest`; see [`Exec::mount_state`].
    pub fn mount(self, dest: impl Into<String>, state: &State) -> Exec {
        self.with_mount(bind(dest, state))
    }

    /// Adds a mount configured with [`bind`], [`cache`], [`tmpfs`], [`secret`] or [`ssh`].
    pub fn with_mount(self, mount: MountSpec) -> Exec {
        self.with(|e| e.mounts.push(mount))
    }

    /// The platform the op runs for.
    pub fn platform(self, platform: Platform) -> Exec {
        self.with(|e| e.meta.platform = Some(platform))
    }

    /// Progress text, e.g. `[build 3/5] RUN make`.
    pub fn description(self, text: impl Into<String>) -> Exec {
        let text = text.into();
        self.with(|e| e.meta.description = Some(text))
    }

    /// Build-file location of the op.
    pub fn location(self, file: impl Into<String>, ranges: &[(u32, u32)]) -> Exec {
        let loc = location(file, ranges);
        self.with(|e| e.meta.location = Some(loc))
    }

    /// Never take this op from the cache.
    pub fn ignore_cache(self) -> Exec {
        self.with(|e| e.meta.ignore_cache = true)
    }

    /// Output numbers: root is 0, then each read-write bind mount in order.
    fn output_of(&self, dest: &str) -> Option<u32> {
        let mut next = 1u32;
        for m in &self.mounts {
            if matches!(m.kind, MountKind::Bind) && !m.readonly {
                if m.dest == dest {
                    return Some(next);
                }
                next = next.saturating_add(1);
            }
        }
        None
    }

    fn vertex(&self) -> Rc<Vertex> {
        self.built
            .get_or_init(|| {
                let mut inputs = Inputs::default();
                let mut mounts = vec![Mount {
                    dest: "/".into(),
                    input: self.base.out.as_ref().map(|o| inputs.add_output(o)),
                    selector: String::new(),
                    readonly: false,
                    output: Some(0),
                    kind: MountKind::Bind,
                }];
                let mut next = 1u32;
                for m in &self.mounts {
                    let output = if matches!(m.kind, MountKind::Bind) && !m.readonly {
                        let o = next;
                        next = next.saturating_add(1);
                        Some(o)
                    } else {
                        None
                    };
                    mounts.push(Mount {
                        dest: resolve_path(&self.cwd, &m.dest),
                        input: m.input.as_ref().map(|o| inputs.add_output(o)),
                        selector: m.selector.clone(),
                        readonly: m.readonly,
                        output,
                        kind: m.kind.clone(),
                    });
                }
                let exec = ExecOp {
                    args: self.args.clone(),
                    env: self.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    cwd: self.cwd.clone(),
                    user: self.user.clone(),
                    hostname: self.hostname.clone(),
                    network: self.network,
                    security: self.security,
                    mounts,
                };
                let mut op = new_op(OpKind::Exec(exec), None);
                self.meta.apply(&mut op);
                Rc::new(Vertex {
                    op,
                    inputs: inputs.0,
                })
            })
            .clone()
    }

    /// The root filesystem after the process ran.
    pub fn root(&self) -> State {
        let state = State {
            platform: self.meta.platform.clone(),
            ..self.base.clone()
        };
        State::from_vertex(&state, self.vertex(), 0)
    }

    /// The final state of the read-write bind mount at `dest`, if there is one.
    pub fn mount_state(&self, dest: &str) -> Option<State> {
        let index = self.output_of(dest)?;
        Some(State::from_vertex(&scratch(), self.vertex(), index))
    }
}

/// The union of `states`, later ones winning; scratch inputs are skipped.
pub fn merge(states: &[&State]) -> State {
    let present: Vec<&State> = states.iter().copied().filter(|s| !s.is_scratch()).collect();
    match present.as_slice() {
        [] => scratch(),
        [one] => (*one).clone(),
        all => {
            let mut inputs = Inputs::default();
            let refs = all
                .iter()
                .filter_map(|s| s.out.as_ref())
                .map(|o| inputs.add_output(o));
            let op = new_op(
                OpKind::Merge(MergeOp {
                    inputs: refs.collect(),
                }),
                None,
            );
            let vertex = Rc::new(Vertex {
                op,
                inputs: inputs.0,
            });
            State::from_vertex(all[0], vertex, 0)
        }
    }
}

/// The changes that turn `lower` into `upper` (scratch when `upper` is scratch).
pub fn diff(lower: &State, upper: &State) -> State {
    let Some(up) = &upper.out else {
        return scratch();
    };
    let mut inputs = Inputs::default();
    let lower_ref = lower.out.as_ref().map(|o| inputs.add_output(o));
    let upper_ref = inputs.add_output(up);
    let op = new_op(
        OpKind::Diff(DiffOp {
            lower: lower_ref,
            upper: upper_ref,
        }),
        None,
    );
    let vertex = Rc::new(Vertex {
        op,
        inputs: inputs.0,
    });
    State::from_vertex(upper, vertex, 0)
}

/// A file action awaiting its state's working directory (and, for copies, its source).
#[derive(Debug, Clone)]
pub struct Action {
    action: FileAction,
    source: Option<Output>,
}

impl Action {
    fn resolve(mut self, cwd: &str, inputs: &mut Inputs) -> FileAction {
        match &mut self.action {
            FileAction::Copy(c) => {
                c.dest = resolve_path(cwd, &c.dest);
                c.src_path = resolve_path("/", &c.src_path);
                match &self.source {
                    Some(o) => c.src = inputs.add_output(o),
                    // Copy from scratch: an empty file op stands in for the empty filesystem.
                    None => {
                        let empty = Rc::new(Vertex {
                            op: new_op(
                                OpKind::File(FileOp {
                                    base: None,
                                    actions: vec![],
                                }),
                                None,
                            ),
                            inputs: vec![],
                        });
                        c.src = inputs.add_output(&Output {
                            vertex: empty,
                            index: 0,
                        });
                    }
                }
            }
            FileAction::Mkdir(m) => m.path = resolve_path(cwd, &m.path),
            FileAction::Mkfile(m) => m.path = resolve_path(cwd, &m.path),
            FileAction::Rm(r) => r.path = resolve_path(cwd, &r.path),
            FileAction::Symlink(s) => s.path = resolve_path(cwd, &s.path),
        }
        self.action
    }

    /// This action followed by `next` in the same file op.
    pub fn then(self, next: impl Into<FileActions>) -> FileActions {
        FileActions::from(self).then(next)
    }

    /// Owner of created files (ignored by `rm`).
    pub fn chown(mut self, owner: Chown) -> Action {
        match &mut self.action {
            FileAction::Copy(c) => c.owner = Some(owner),
            FileAction::Mkdir(m) => m.owner = Some(owner),
            FileAction::Mkfile(m) => m.owner = Some(owner),
            FileAction::Symlink(s) => s.owner = Some(owner),
            FileAction::Rm(_) => {}
        }
        self
    }

    /// Fixed modification time, seconds since the epoch (ignored by `rm`).
    pub fn timestamp(mut self, secs: i64) -> Action {
        match &mut self.action {
            FileAction::Copy(c) => c.timestamp = Some(secs),
            FileAction::Mkdir(m) => m.timestamp = Some(secs),
            FileAction::Mkfile(m) => m.timestamp = Some(secs),
            FileAction::Symlink(s) => s.timestamp = Some(secs),
            FileAction::Rm(_) => {}
        }
        self
    }

    /// mkdir: create missing parents.
    pub fn parents(mut self, yes: bool) -> Action {
        if let FileAction::Mkdir(m) = &mut self.action {
            m.make_parents = yes;
        }
        self
    }

    /// rm: a missing path is not an error.
    pub fn allow_not_found(mut self, yes: bool) -> Action {
        if let FileAction::Rm(r) = &mut self.action {
            r.allow_not_found = yes;
        }
        self
    }

    /// rm and copy: the path may contain wildcards.
    pub fn allow_wildcard(mut self, yes: bool) -> Action {
        match &mut self.action {
            FileAction::Rm(r) => r.allow_wildcard = yes,
            FileAction::Copy(c) => c.allow_wildcard = yes,
            _ => {}
        }
        self
    }

    fn copy_opt(mut self, f: impl FnOnce(&mut CopyAction)) -> Action {
        if let FileAction::Copy(c) = &mut self.action {
            f(c);
        }
        self
    }

    /// copy: mode applied to copied files, octal (`"755"`) or symbolic (`"u+x"`).
    pub fn chmod(self, mode: impl Into<String>) -> Action {
        let mode = mode.into();
        self.copy_opt(|c| c.mode = Some(mode))
    }

    /// copy: follow a symlink at the source path.
    pub fn follow_symlinks(self, yes: bool) -> Action {
        self.copy_opt(|c| c.follow_symlinks = yes)
    }

    /// copy: create missing parents of the destination.
    pub fn create_dest_path(self, yes: bool) -> Action {
        self.copy_opt(|c| c.create_dest_path = yes)
    }

    /// copy: a wildcard matching nothing is not an error.
    pub fn allow_empty_wildcard(self, yes: bool) -> Action {
        self.copy_opt(|c| c.allow_empty_wildcard = yes)
    }

    /// copy: copy a directory's contents rather than the directory.
    pub fn dir_contents_only(self, yes: bool) -> Action {
        self.copy_opt(|c| c.dir_contents_only = yes)
    }

    /// copy: unpack a tar archive source into the destination.
    pub fn attempt_unpack(self, yes: bool) -> Action {
        self.copy_opt(|c| c.attempt_unpack = yes)
    }

    /// copy: only these paths.
    pub fn include<I: IntoIterator<Item = S>, S: Into<String>>(self, patterns: I) -> Action {
        self.copy_opt(|c| {
            c.include_patterns
                .extend(patterns.into_iter().map(Into::into))
        })
    }

    /// copy: leave these paths out.
    pub fn exclude<I: IntoIterator<Item = S>, S: Into<String>>(self, patterns: I) -> Action {
        self.copy_opt(|c| {
            c.exclude_patterns
                .extend(patterns.into_iter().map(Into::into))
        })
    }
}

/// Make the directory `path` with `mode`.
pub fn mkdir(path: impl Into<String>, mode: u32) -> Action {
    Action {
        action: FileAction::Mkdir(MkdirAction {
            path: path.into(),
            mode,
            make_parents: false,
            owner: None,
            timestamp: None,
        }),
        source: None,
    }
}

/// Make the file `path` with `mode` and contents `data`.
pub fn mkfile(path: impl Into<String>, mode: u32, data: impl Into<Vec<u8>>) -> Action {
    Action {
        action: FileAction::Mkfile(MkfileAction {
            path: path.into(),
            mode,
            data: data.into(),
            owner: None,
            timestamp: None,
        }),
        source: None,
    }
}

/// Remove `path`.
pub fn rm(path: impl Into<String>) -> Action {
    Action {
        action: FileAction::Rm(RmAction {
            path: path.into(),
            allow_not_found: false,
            allow_wildcard: false,
        }),
        source: None,
    }
}

/// Make a symlink at `path` pointing to `target`.
pub fn symlink(target: impl Into<String>, path: impl Into<String>) -> Action {
    Action {
        action: FileAction::Symlink(SymlinkAction {
            target: target.into(),
            path: path.into(),
            owner: None,
            timestamp: None,
        }),
        source: None,
    }
}

/// Copy `src` of state `from` to `dest` (relative to the target state's working directory).
pub fn copy(from: &State, src: impl Into<String>, dest: impl Into<String>) -> Action {
    Action {
        action: FileAction::Copy(CopyAction {
            src: OpRef { op: 0, output: 0 },
            src_path: src.into(),
            dest: dest.into(),
            owner: None,
            mode: None,
            follow_symlinks: false,
            dir_contents_only: false,
            create_dest_path: false,
            allow_wildcard: false,
            allow_empty_wildcard: false,
            include_patterns: Vec::new(),
            exclude_patterns: Vec::new(),
            attempt_unpack: false,
            timestamp: None,
        }),
        source: from.out.clone(),
    }
}

/// An ordered list of file actions applied by one file op.
#[derive(Debug, Clone, Default)]
pub struct FileActions(Vec<Action>);

impl FileActions {
    /// These actions followed by `next`.
    pub fn then(mut self, next: impl Into<FileActions>) -> FileActions {
        self.0.extend(next.into().0);
        self
    }
}

impl From<Action> for FileActions {
    fn from(a: Action) -> FileActions {
        FileActions(vec![a])
    }
}

impl FromIterator<Action> for FileActions {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> FileActions {
        FileActions(iter.into_iter().collect())
    }
}

impl Chown {
    /// Parses Dockerfile `--chown` syntax: `user`, `user:group`, numeric or by name.
    pub fn parse(spec: &str) -> Chown {
        let id = |s: &str| match s.parse::<u32>() {
            Ok(n) => OwnerId::Id(n),
            Err(_) => OwnerId::Name(s.to_string()),
        };
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        Chown {
            user: (!user.is_empty()).then(|| id(user)),
            group: group.filter(|g| !g.is_empty()).map(id),
        }
    }
}
