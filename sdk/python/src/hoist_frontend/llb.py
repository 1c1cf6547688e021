"""An immutable LLB builder mirroring the Rust SDK's (``sdk/src/llb.rs``).

Every operation returns a new :class:`State`; states share the vertices they were built from,
so branching a build graph is cheap. :meth:`State.definition` flattens the graph into the WIT
``definition``: ops in dependency order, each shared op (and each structurally identical op)
emitted once. The flattening follows the Rust SDK step for step, so the same build written with
either SDK yields the same definition, op for op (and so the same digests).

Relative paths in file actions and :meth:`State.dir` resolve against the state's working
directory, as in a Dockerfile; copy sources resolve against the root of the source state.

Example::

    from hoist_frontend import image, mkfile
    state = (image("busybox:latest")
             .run("sh", "-c", "make > /out")
             .root()
             .file(mkfile("/greeting", 0o644, "hello\\n")))
    definition = state.definition()
"""

from __future__ import annotations

import copy as _copy
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from hoist_wit.imports import types

from .errors import Lines, location as _location

__all__ = [
    "Action", "Exec", "FileActions", "MountSpec", "Source", "State",
    "bind", "cache", "chown", "copy", "diff", "image", "local", "merge", "mkdir", "mkfile",
    "oci_layout", "rm", "scratch", "secret", "source", "ssh", "symlink", "tmpfs",
]


class _Vertex:
    """One op of the graph; the ``OpRef``s inside ``op`` index ``inputs``, not a definition."""

    __slots__ = ("op", "inputs")

    def __init__(self, op: types.Op, inputs: List["_Output"]):
        self.op = op
        self.inputs = inputs


class _Output:
    """One output of a vertex."""

    __slots__ = ("vertex", "index")

    def __init__(self, vertex: _Vertex, index: int):
        self.vertex = vertex
        self.index = index


class _Inputs:
    """Collects the inputs of a vertex under construction, handing out placeholder refs."""

    def __init__(self) -> None:
        self.outputs: List[_Output] = []

    def add(self, out: _Output) -> types.OpRef:
        self.outputs.append(out)
        return types.OpRef(op=len(self.outputs) - 1, output=0)


def _refs(op: types.Op) -> List[Tuple[object, str]]:
    """Every ``(holder, attribute)`` holding an op ref of ``op``, in input order."""
    kind = op.kind
    out: List[Tuple[object, str]] = []
    if isinstance(kind, types.OpKind_Exec):
        out += [(m, "input") for m in kind.value.mounts if m.input is not None]
    elif isinstance(kind, types.OpKind_File):
        if kind.value.base is not None:
            out.append((kind.value, "base"))
        out += [(a.value, "src") for a in kind.value.actions if isinstance(a, types.FileAction_Copy)]
    elif isinstance(kind, types.OpKind_Merge):
        out += [(kind.value.inputs, i) for i in range(len(kind.value.inputs))]  # type: ignore[misc]
    elif isinstance(kind, types.OpKind_Diff):
        if kind.value.lower is not None:
            out.append((kind.value, "lower"))
        out.append((kind.value, "upper"))
    return out


def _get(holder: object, key: object) -> types.OpRef:
    return holder[key] if isinstance(key, int) else getattr(holder, key)  # type: ignore[index]


def _set(holder: object, key: object, value: types.OpRef) -> None:
    if isinstance(key, int):
        holder[key] = value  # type: ignore[index]
    else:
        setattr(holder, key, value)  # type: ignore[arg-type]


def _new_op(kind: object, platform: Optional[types.Platform]) -> types.Op:
    return types.Op(kind=kind, platform=platform, description=None, ignore_cache=False, location=None)


def _resolve_path(cwd: str, path: str) -> str:
    """Joins ``path`` onto ``cwd`` unless it is absolute."""
    if path.startswith("/"):
        return path
    if cwd.endswith("/"):
        return cwd + path
    return f"{cwd}/{path}"


def _set_env(env: List[Tuple[str, str]], key: str, value: str) -> List[Tuple[str, str]]:
    out = list(env)
    for i, (k, _) in enumerate(out):
        if k == key:
            out[i] = (key, value)
            return out
    out.append((key, value))
    return out


class _Meta:
    """Platform, description, location and cache flag of an op being configured."""

    __slots__ = ("platform", "description", "location", "ignore_cache")

    def __init__(self, platform: Optional[types.Platform] = None):
        self.platform = platform
        self.description: Optional[str] = None
        self.location: Optional[types.SourceLocation] = None
        self.ignore_cache = False

    def apply(self, op: types.Op) -> None:
        op.platform = self.platform
        op.description = self.description
        op.location = self.location
        op.ignore_cache = self.ignore_cache


class State:
    """A filesystem state (the output of an op, or scratch) plus the defaults later ``run``s and
    file actions inherit: environment, working directory, user and platform."""

    def __init__(self) -> None:
        self._out: Optional[_Output] = None
        self._env: List[Tuple[str, str]] = []
        self._cwd = "/"
        self._user = ""
        self._platform: Optional[types.Platform] = None

    def _clone(self) -> "State":
        s = State()
        s._out, s._env, s._cwd, s._user, s._platform = (
            self._out, self._env, self._cwd, self._user, self._platform)
        return s

    def _from_vertex(self, vertex: _Vertex, index: int) -> "State":
        s = self._clone()
        s._out = _Output(vertex, index)
        return s

    def __repr__(self) -> str:
        what = "scratch" if self._out is None else type(self._out.vertex.op.kind).__name__
        return f"<State {what} cwd={self._cwd!r}>"

    def is_scratch(self) -> bool:
        """Whether this is the empty filesystem."""
        return self._out is None

    def add_env(self, key: str, value: str) -> "State":
        """The state with ``key=value`` added to the environment of later ``run``s."""
        s = self._clone()
        s._env = _set_env(self._env, key, value)
        return s

    def get_env(self, key: str) -> Optional[str]:
        """The value of ``key`` in this state's environment."""
        return next((v for k, v in self._env if k == key), None)

    def env_list(self) -> List[Tuple[str, str]]:
        """The environment as ``(key, value)`` pairs, in the order they were first set."""
        return list(self._env)

    def dir(self, path: str) -> "State":
        """The state with its working directory changed (relative paths join the current one)."""
        s = self._clone()
        s._cwd = _resolve_path(self._cwd, path)
        return s

    def get_dir(self) -> str:
        """The working directory of later ``run``s and relative file paths."""
        return self._cwd

    def user(self, user: str) -> "State":
        """The state with the user of later ``run``s changed (``uid[:gid]`` or ``name[:group]``)."""
        s = self._clone()
        s._user = user
        return s

    def get_user(self) -> str:
        """The user of later ``run``s; empty for root."""
        return self._user

    def platform(self, platform: types.Platform) -> "State":
        """The state with the platform of later ops changed."""
        s = self._clone()
        s._platform = platform
        return s

    def get_platform(self) -> Optional[types.Platform]:
        """The platform of later ops; ``None`` means the host's."""
        return self._platform

    def run(self, *args: Union[str, Sequence[str]]) -> "Exec":
        """Starts an exec op running ``args`` on this state as its root filesystem.

        ``run("make", "all")`` and ``run(["make", "all"])`` are the same; use
        ``run("sh", "-c", "make && make install")`` for a shell.
        """
        if len(args) == 1 and not isinstance(args[0], str):
            argv = [str(a) for a in args[0]]
        else:
            argv = [a for a in args if isinstance(a, str)]
            if len(argv) != len(args):
                raise TypeError("run() takes strings, or one list of strings")
        return Exec(self, argv)

    def file(self, actions: Union["Action", "FileActions", Iterable["Action"]]) -> "State":
        """Applies file actions to this state in one file op."""
        inputs = _Inputs()
        base = inputs.add(self._out) if self._out is not None else None
        resolved = [a._resolve(self._cwd, inputs) for a in FileActions.of(actions)]
        op = _new_op(types.OpKind_File(types.FileOp(base=base, actions=resolved)), self._platform)
        return self._from_vertex(_Vertex(op, inputs.outputs), 0)

    def description(self, text: str) -> "State":
        """The state with the op that produced it re-described (progress output).

        For an exec op, set this on the :class:`Exec` instead so every mount output shares it.
        """
        return self._with_op(lambda op: setattr(op, "description", text))

    def location(self, file: str, ranges: Iterable[Lines]) -> "State":
        """The state with the op that produced it located in a build file."""
        loc = _location(file, ranges)
        return self._with_op(lambda op: setattr(op, "location", loc))

    def ignore_cache(self) -> "State":
        """The state with the op that produced it never taken from the cache."""
        return self._with_op(lambda op: setattr(op, "ignore_cache", True))

    def _with_op(self, f) -> "State":
        if self._out is None:
            return self
        op = _copy.deepcopy(self._out.vertex.op)
        f(op)
        return self._from_vertex(_Vertex(op, list(self._out.vertex.inputs)), self._out.index)

    def definition(self) -> types.Definition:
        """The build graph that produces this state, ready to :func:`hoist_frontend.solve`."""
        b = _DefinitionBuilder()
        output = None
        if self._out is not None:
            output = types.OpRef(op=b.intern(self._out.vertex), output=self._out.index)
        return types.Definition(ops=b.ops, output=output)


def scratch() -> State:
    """The empty filesystem (``FROM scratch``)."""
    return State()


class _DefinitionBuilder:
    """Flattens vertices into a definition, as ``DefinitionBuilder`` in the Rust SDK does."""

    def __init__(self) -> None:
        self.ops: List[types.Op] = []
        self.by_vertex: Dict[int, int] = {}
        self.by_op: Dict[str, int] = {}
        self.keep: List[_Vertex] = []  # keeps ids stable while building

    def intern(self, root: _Vertex) -> int:
        """Emits ``root`` and everything it depends on (iteratively), returning its index."""
        stack: List[Tuple[_Vertex, bool]] = [(root, False)]
        while stack:
            v, expanded = stack.pop()
            if id(v) in self.by_vertex:
                continue
            if not expanded:
                stack.append((v, True))
                for inp in reversed(v.inputs):
                    if id(inp.vertex) not in self.by_vertex:
                        stack.append((inp.vertex, False))
                continue
            op = _copy.deepcopy(v.op)
            for holder, key in _refs(op):
                placeholder = _get(holder, key)
                inp = v.inputs[placeholder.op]
                _set(holder, key, types.OpRef(op=self.by_vertex[id(inp.vertex)], output=inp.index))
            key = repr(op)  # dataclass reprs are structural: equal ops, equal keys
            index = self.by_op.get(key)
            if index is None:
                index = len(self.ops)
                self.by_op[key] = index
                self.ops.append(op)
            self.keep.append(v)
            self.by_vertex[id(v)] = index
        return self.by_vertex[id(root)]


class Source(State):
    """A source op being configured; usable as a :class:`State` at any point."""

    def __init__(self, op: types.SourceOp):
        super().__init__()
        self._op = op
        self._meta = _Meta()
        self._rebuild()

    def _rebuild(self) -> None:
        op = _new_op(types.OpKind_Source(_copy.deepcopy(self._op)), None)
        self._meta.apply(op)
        base = State()
        base._platform = self._meta.platform
        self._out, self._env, self._cwd, self._user, self._platform = (
            _Output(_Vertex(op, []), 0), base._env, base._cwd, base._user, base._platform)

    def _with(self, f) -> "Source":
        s = Source.__new__(Source)
        s._op = _copy.deepcopy(self._op)
        s._meta = _copy.copy(self._meta)
        f(s)
        s._rebuild()
        return s

    def include(self, *patterns: str) -> "Source":
        """Only these paths (gitignore-style patterns) of a local source."""
        return self._with(lambda s: s._op.include_patterns.extend(patterns))

    def exclude(self, *patterns: str) -> "Source":
        """Leave these paths out of a local source (``.dockerignore`` semantics)."""
        return self._with(lambda s: s._op.exclude_patterns.extend(patterns))

    def follow_paths(self, *paths: str) -> "Source":
        """Follow symlinks under these paths of a local source."""
        return self._with(lambda s: s._op.follow_paths.extend(paths))

    def attr(self, key: str, value: str) -> "Source":
        """A scheme-specific attribute, e.g. ``attr("image.resolvemode", "pull")``."""
        return self._with(lambda s: s._op.attrs.append((key, value)))

    def platform(self, platform: types.Platform) -> "Source":  # type: ignore[override]
        """The platform to fetch (images) and of every op built on this source."""
        return self._with(lambda s: setattr(s._meta, "platform", platform))

    def description(self, text: str) -> "Source":  # type: ignore[override]
        """Progress text of the source op."""
        return self._with(lambda s: setattr(s._meta, "description", text))

    def location(self, file: str, ranges: Iterable[Lines]) -> "Source":  # type: ignore[override]
        """Build-file location of the source op."""
        loc = _location(file, ranges)
        return self._with(lambda s: setattr(s._meta, "location", loc))

    def ignore_cache(self) -> "Source":  # type: ignore[override]
        """Never take the source from the cache."""
        return self._with(lambda s: setattr(s._meta, "ignore_cache", True))

    def state(self) -> State:
        """The configured source as a plain state."""
        return self._clone()


def source(identifier: str) -> Source:
    """A source op with a BuildKit identifier (``docker-image://…``, ``local://…``)."""
    return Source(types.SourceOp(identifier=identifier, include_patterns=[], exclude_patterns=[],
                                 follow_paths=[], attrs=[]))


def image(reference: str) -> Source:
    """An image from a registry, e.g. ``image("busybox:latest")``."""
    return source(f"docker-image://{reference}")


def local(name: str) -> Source:
    """A local directory sent by the client, e.g. ``local("context")``."""
    return source(f"local://{name}")


def oci_layout(path_at_digest: str) -> Source:
    """An image in an OCI layout directory, ``PATH@sha256:DIGEST``."""
    return source(f"oci-layout://{path_at_digest}")


class MountSpec:
    """A mount of an exec op being configured: :func:`bind`, :func:`cache`, :func:`tmpfs`,
    :func:`secret`, :func:`ssh`. Every method returns a new spec."""

    def __init__(self, dest: str, input: Optional[_Output], readonly: bool, kind: object):
        self._dest = dest
        self._input = input
        self._selector = ""
        self._readonly = readonly
        self._kind = kind

    def _with(self, f) -> "MountSpec":
        m = _copy.copy(self)
        m._kind = _copy.deepcopy(self._kind)
        f(m)
        return m

    def readonly(self) -> "MountSpec":
        """Mount read-only (a read-only bind mount publishes no output)."""
        return self._with(lambda m: setattr(m, "_readonly", True))

    def selector(self, path: str) -> "MountSpec":
        """Mount only this path of the input."""
        return self._with(lambda m: setattr(m, "_selector", path))

    def id(self, id: str) -> "MountSpec":
        """The cache id (cache mounts), secret id (secret mounts) or SSH id."""
        def f(m: "MountSpec") -> None:
            if isinstance(m._kind, (types.MountKind_Cache, types.MountKind_Secret)):
                m._kind.value.id = id
            elif isinstance(m._kind, types.MountKind_Ssh):
                m._kind.value = id
        return self._with(f)

    def sharing(self, sharing: types.CacheSharing) -> "MountSpec":
        """How concurrent builds share a cache mount."""
        def f(m: "MountSpec") -> None:
            if isinstance(m._kind, types.MountKind_Cache):
                m._kind.value.sharing = sharing
        return self._with(f)

    def size(self, nbytes: int) -> "MountSpec":
        """Size of a tmpfs in bytes."""
        def f(m: "MountSpec") -> None:
            if isinstance(m._kind, types.MountKind_Tmpfs):
                m._kind.value.size = nbytes
        return self._with(f)

    def secret_file(self, mode: int, uid: int, gid: int, optional: bool) -> "MountSpec":
        """Mode, owner and optionality of a secret file."""
        def f(m: "MountSpec") -> None:
            if isinstance(m._kind, types.MountKind_Secret):
                m._kind.value.mode, m._kind.value.uid = mode, uid
                m._kind.value.gid, m._kind.value.optional = gid, optional
        return self._with(f)

    def from_state(self, state: State) -> "MountSpec":
        """Seed a cache mount from ``state`` (it is still never part of the image)."""
        return self._with(lambda m: setattr(m, "_input", state._out))


def bind(dest: str, state: State) -> MountSpec:
    """A read-write bind mount of ``state`` at ``dest``; its final state is an output of the exec."""
    return MountSpec(dest, state._out, False, types.MountKind_Bind())


def cache(dest: str) -> MountSpec:
    """A persistent cache mount at ``dest``, id defaulting to ``dest``, sharing ``SHARED``."""
    return MountSpec(dest, None, False,
                     types.MountKind_Cache(types.CacheMount(id=dest, sharing=types.CacheSharing.SHARED)))


def tmpfs(dest: str) -> MountSpec:
    """A tmpfs at ``dest`` of the kernel's default size."""
    return MountSpec(dest, None, False, types.MountKind_Tmpfs(types.TmpfsMount(size=0)))


def secret(dest: str, id: str) -> MountSpec:
    """A client secret ``id`` as the file ``dest`` (mode 0400, owned by root, required)."""
    return MountSpec(dest, None, True, types.MountKind_Secret(
        types.SecretMount(id=id, mode=0o400, uid=0, gid=0, optional=False)))


def ssh(dest: str, id: str) -> MountSpec:
    """The client's SSH agent socket ``id`` at ``dest``."""
    return MountSpec(dest, None, True, types.MountKind_Ssh(id))


def _is_output_mount(m: MountSpec) -> bool:
    return isinstance(m._kind, types.MountKind_Bind) and not m._readonly


class Exec:
    """An exec op being configured; :meth:`root` gives the resulting root filesystem.

    Every method returns a new ``Exec``; call ``root()`` (or ``mount_state``) at the end.
    """

    def __init__(self, base: State, args: List[str]):
        self._base = base
        self._args = args
        self._env = list(base._env)
        self._cwd = base._cwd
        self._user = base._user
        self._hostname = ""
        self._network = types.NetworkMode.NONE
        self._security = types.SecurityMode.SANDBOX
        self._mounts: List[MountSpec] = []
        self._meta = _Meta(base._platform)
        self._built: Optional[_Vertex] = None

    def _with(self, f) -> "Exec":
        e = _copy.copy(self)
        e._mounts = list(self._mounts)
        e._meta = _copy.copy(self._meta)
        e._built = None
        f(e)
        return e

    def env(self, key: str, value: str) -> "Exec":
        """Sets ``key=value`` in the process environment."""
        return self._with(lambda e: setattr(e, "_env", _set_env(e._env, key, value)))

    def cwd(self, path: str) -> "Exec":
        """The working directory (relative paths join the state's)."""
        return self._with(lambda e: setattr(e, "_cwd", _resolve_path(e._cwd, path)))

    def user(self, user: str) -> "Exec":
        """The user (``uid[:gid]`` or ``name[:group]``)."""
        return self._with(lambda e: setattr(e, "_user", user))

    def hostname(self, name: str) -> "Exec":
        """The container's hostname."""
        return self._with(lambda e: setattr(e, "_hostname", name))

    def network(self, mode: types.NetworkMode) -> "Exec":
        """Network access (default: loopback only)."""
        return self._with(lambda e: setattr(e, "_network", mode))

    def security(self, mode: types.SecurityMode) -> "Exec":
        """Capability set (default: sandbox)."""
        return self._with(lambda e: setattr(e, "_security", mode))

    def mount(self, dest: str, state: State) -> "Exec":
        """Bind-mounts ``state`` read-write at ``dest``; see :meth:`mount_state`."""
        return self.with_mount(bind(dest, state))

    def with_mount(self, mount: MountSpec) -> "Exec":
        """Adds a mount configured with :func:`bind`, :func:`cache`, :func:`tmpfs`, :func:`secret`
        or :func:`ssh`."""
        return self._with(lambda e: e._mounts.append(mount))

    def platform(self, platform: types.Platform) -> "Exec":
        """The platform the op runs for."""
        return self._with(lambda e: setattr(e._meta, "platform", platform))

    def description(self, text: str) -> "Exec":
        """Progress text, e.g. ``[build 3/5] RUN make``."""
        return self._with(lambda e: setattr(e._meta, "description", text))

    def location(self, file: str, ranges: Iterable[Lines]) -> "Exec":
        """Build-file location of the op."""
        loc = _location(file, ranges)
        return self._with(lambda e: setattr(e._meta, "location", loc))

    def ignore_cache(self) -> "Exec":
        """Never take this op from the cache."""
        return self._with(lambda e: setattr(e._meta, "ignore_cache", True))

    def _output_of(self, dest: str) -> Optional[int]:
        """Output numbers: root is 0, then each read-write bind mount in order."""
        n = 1
        for m in self._mounts:
            if _is_output_mount(m):
                if m._dest == dest:
                    return n
                n += 1
        return None

    def _vertex(self) -> _Vertex:
        if self._built is not None:
            return self._built
        inputs = _Inputs()
        base = self._base._out
        mounts = [types.Mount(dest="/", input=inputs.add(base) if base is not None else None,
                              selector="", readonly=False, output=0, kind=types.MountKind_Bind())]
        n = 1
        for m in self._mounts:
            output = None
            if _is_output_mount(m):
                output, n = n, n + 1
            mounts.append(types.Mount(
                dest=_resolve_path(self._cwd, m._dest),
                input=inputs.add(m._input) if m._input is not None else None,
                selector=m._selector, readonly=m._readonly, output=output,
                kind=_copy.deepcopy(m._kind)))
        exec_op = types.ExecOp(args=list(self._args), env=[f"{k}={v}" for k, v in self._env],
                               cwd=self._cwd, user=self._user, hostname=self._hostname,
                               network=self._network, security=self._security, mounts=mounts)
        op = _new_op(types.OpKind_Exec(exec_op), None)
        self._meta.apply(op)
        self._built = _Vertex(op, inputs.outputs)
        return self._built

    def root(self) -> State:
        """The root filesystem after the process ran."""
        s = self._base._clone()
        s._platform = self._meta.platform
        return s._from_vertex(self._vertex(), 0)

    def mount_state(self, dest: str) -> Optional[State]:
        """The final state of the read-write bind mount at ``dest``, if there is one."""
        index = self._output_of(dest)
        if index is None:
            return None
        return scratch()._from_vertex(self._vertex(), index)


def merge(states: Sequence[State]) -> State:
    """The union of ``states``, later ones winning; scratch inputs are skipped."""
    present = [s for s in states if not s.is_scratch()]
    if not present:
        return scratch()
    if len(present) == 1:
        return present[0]._clone()
    inputs = _Inputs()
    refs = [inputs.add(s._out) for s in present if s._out is not None]
    op = _new_op(types.OpKind_Merge(types.MergeOp(inputs=refs)), None)
    return present[0]._from_vertex(_Vertex(op, inputs.outputs), 0)


def diff(lower: State, upper: State) -> State:
    """The changes that turn ``lower`` into ``upper`` (scratch when ``upper`` is scratch)."""
    if upper._out is None:
        return scratch()
    inputs = _Inputs()
    lower_ref = inputs.add(lower._out) if lower._out is not None else None
    upper_ref = inputs.add(upper._out)
    op = _new_op(types.OpKind_Diff(types.DiffOp(lower=lower_ref, upper=upper_ref)), None)
    return upper._from_vertex(_Vertex(op, inputs.outputs), 0)


class Action:
    """A file action awaiting its state's working directory (and, for copies, its source).

    Every method returns a new action; options that do not apply to the kind are ignored, as
    in the Rust SDK.
    """

    def __init__(self, action: object, source: Optional[_Output] = None):
        self._action = action
        self._source = source

    def _with(self, f) -> "Action":
        a = Action(_copy.deepcopy(self._action), self._source)
        f(a._action.value)  # type: ignore[attr-defined]
        return a

    def _resolve(self, cwd: str, inputs: _Inputs) -> object:
        action = _copy.deepcopy(self._action)
        v = action.value  # type: ignore[attr-defined]
        if isinstance(action, types.FileAction_Copy):
            v.dest = _resolve_path(cwd, v.dest)
            v.src_path = _resolve_path("/", v.src_path)
            if self._source is not None:
                v.src = inputs.add(self._source)
            else:
                # Copy from scratch: an empty file op stands in for the empty filesystem.
                empty = _Vertex(_new_op(types.OpKind_File(types.FileOp(base=None, actions=[])), None), [])
                v.src = inputs.add(_Output(empty, 0))
        else:
            v.path = _resolve_path(cwd, v.path)
        return action

    def then(self, next: Union["Action", "FileActions", Iterable["Action"]]) -> "FileActions":
        """This action followed by ``next`` in the same file op."""
        return FileActions([self]).then(next)

    def chown(self, owner: Union[types.Chown, str]) -> "Action":
        """Owner of created files, a :class:`Chown` or ``"user[:group]"`` (ignored by ``rm``)."""
        own = chown(owner) if isinstance(owner, str) else owner
        return self._with(lambda v: hasattr(v, "owner") and setattr(v, "owner", own))

    def timestamp(self, secs: int) -> "Action":
        """Fixed modification time, seconds since the epoch (ignored by ``rm``)."""
        return self._with(lambda v: hasattr(v, "timestamp") and setattr(v, "timestamp", secs))

    def _only(self, kind: type, field: str, value: object) -> "Action":
        if not isinstance(self._action, kind):
            return self
        return self._with(lambda v: setattr(v, field, value))

    def parents(self, yes: bool = True) -> "Action":
        """mkdir: create missing parents."""
        return self._only(types.FileAction_Mkdir, "make_parents", yes)

    def allow_not_found(self, yes: bool = True) -> "Action":
        """rm: a missing path is not an error."""
        return self._only(types.FileAction_Rm, "allow_not_found", yes)

    def allow_wildcard(self, yes: bool = True) -> "Action":
        """rm and copy: the path may contain wildcards."""
        if isinstance(self._action, types.FileAction_Rm):
            return self._only(types.FileAction_Rm, "allow_wildcard", yes)
        return self._only(types.FileAction_Copy, "allow_wildcard", yes)

    def chmod(self, mode: str) -> "Action":
        """copy: mode applied to copied files, octal (``"755"``) or symbolic (``"u+x"``)."""
        return self._only(types.FileAction_Copy, "mode", mode)

    def follow_symlinks(self, yes: bool = True) -> "Action":
        """copy: follow a symlink at the source path."""
        return self._only(types.FileAction_Copy, "follow_symlinks", yes)

    def create_dest_path(self, yes: bool = True) -> "Action":
        """copy: create missing parents of the destination."""
        return self._only(types.FileAction_Copy, "create_dest_path", yes)

    def allow_empty_wildcard(self, yes: bool = True) -> "Action":
        """copy: a wildcard matching nothing is not an error."""
        return self._only(types.FileAction_Copy, "allow_empty_wildcard", yes)

    def dir_contents_only(self, yes: bool = True) -> "Action":
        """copy: copy a directory's contents rather than the directory."""
        return self._only(types.FileAction_Copy, "dir_contents_only", yes)

    def attempt_unpack(self, yes: bool = True) -> "Action":
        """copy: unpack a tar archive source into the destination."""
        return self._only(types.FileAction_Copy, "attempt_unpack", yes)

    def include(self, *patterns: str) -> "Action":
        """copy: only these paths."""
        if not isinstance(self._action, types.FileAction_Copy):
            return self
        return self._with(lambda v: v.include_patterns.extend(patterns))

    def exclude(self, *patterns: str) -> "Action":
        """copy: leave these paths out."""
        if not isinstance(self._action, types.FileAction_Copy):
            return self
        return self._with(lambda v: v.exclude_patterns.extend(patterns))


class FileActions:
    """An ordered list of file actions applied by one file op."""

    def __init__(self, actions: Iterable[Action] = ()):
        self._actions = list(actions)

    @staticmethod
    def of(actions: Union[Action, "FileActions", Iterable[Action]]) -> List[Action]:
        """The actions of an action, a ``FileActions`` or an iterable of actions."""
        if isinstance(actions, Action):
            return [actions]
        if isinstance(actions, FileActions):
            return list(actions._actions)
        out = list(actions)
        for a in out:
            if not isinstance(a, Action):
                raise TypeError(f"expected file actions, got {type(a).__name__}")
        return out

    def then(self, next: Union[Action, "FileActions", Iterable[Action]]) -> "FileActions":
        """These actions followed by ``next``."""
        return FileActions(self._actions + FileActions.of(next))

    def __iter__(self):
        return iter(self._actions)

    def __len__(self) -> int:
        return len(self._actions)


def mkdir(path: str, mode: int = 0o755) -> Action:
    """Make the directory ``path`` with ``mode``."""
    return Action(types.FileAction_Mkdir(types.MkdirAction(
        path=path, mode=mode, make_parents=False, owner=None, timestamp=None)))


def mkfile(path: str, mode: int, data: Union[str, bytes]) -> Action:
    """Make the file ``path`` with ``mode`` and contents ``data`` (a ``str`` is UTF-8 encoded)."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return Action(types.FileAction_Mkfile(types.MkfileAction(
        path=path, mode=mode, data=raw, owner=None, timestamp=None)))


def rm(path: str) -> Action:
    """Remove ``path``."""
    return Action(types.FileAction_Rm(types.RmAction(path=path, allow_not_found=False, allow_wildcard=False)))


def symlink(target: str, path: str) -> Action:
    """Make a symlink at ``path`` pointing to ``target``."""
    return Action(types.FileAction_Symlink(types.SymlinkAction(
        target=target, path=path, owner=None, timestamp=None)))


def copy(src_state: State, src: str, dest: str) -> Action:
    """Copy ``src`` of ``src_state`` to ``dest`` (relative to the target state's working directory)."""
    return Action(types.FileAction_Copy(types.CopyAction(
        src=types.OpRef(op=0, output=0), src_path=src, dest=dest, owner=None, mode=None,
        follow_symlinks=False, dir_contents_only=False, create_dest_path=False,
        allow_wildcard=False, allow_empty_wildcard=False, include_patterns=[],
        exclude_patterns=[], attempt_unpack=False, timestamp=None)), src_state._out)


def chown(spec: str) -> types.Chown:
    """Parses Dockerfile ``--chown`` syntax: ``user``, ``user:group``, numeric or by name."""
    def owner(s: str):
        if s.isascii() and s.isdigit() and int(s) < 2**32:
            return types.OwnerId_Id(int(s))
        return types.OwnerId_Name(s)
    user, _, group = spec.partition(":")
    return types.Chown(user=owner(user) if user else None, group=owner(group) if group else None)
