"""A typed client over the ``gateway`` imports: everything a frontend can ask of the host.

Host errors arrive as :class:`FrontendError` (with the location the host gave, if any). Outside
a component (native unit tests) the bindings are stubs: calling these raises
``NotImplementedError``, as there is no host to answer.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

from componentize_py_types import Err
from hoist_wit.imports import gateway, types

from .errors import FrontendError
from .llb import State


def _call(f, *args):
    try:
        return f(*args)
    except Err as e:
        raise FrontendError.from_wit(e.value) from None


class Ref:
    """A build result held by the host; empty for the empty filesystem."""

    def __init__(self, inner: Optional[gateway.Reference] = None):
        self._inner = inner

    @classmethod
    def empty(cls) -> "Ref":
        """The empty filesystem (no host resource)."""
        return cls(None)

    def is_empty(self) -> bool:
        """Whether this is the empty filesystem."""
        return self._inner is None

    def _get(self, path: str) -> gateway.Reference:
        if self._inner is None:
            raise FrontendError(f"{path}: not found (empty filesystem)")
        return self._inner

    def read_file(self, path: str) -> bytes:
        """Reads the whole file at ``path`` (the host caps the size it returns)."""
        return _call(self._get(path).read_file, path, None)

    def read_text(self, path: str) -> str:
        """Reads the file at ``path`` as UTF-8 text."""
        data = self.read_file(path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FrontendError(f"{path} is not valid UTF-8 (byte {e.start})") from None

    def read_file_range(self, path: str, offset: int, length: int) -> bytes:
        """Reads ``length`` bytes of the file at ``path`` from ``offset``."""
        return _call(self._get(path).read_file, path, types.ReadRange(offset=offset, length=length))

    def read_dir(self, path: str, pattern: Optional[str] = None) -> List[types.FileStat]:
        """Lists the directory at ``path``, optionally only names matching ``pattern``."""
        return _call(self._get(path).read_dir, path, pattern)

    def stat(self, path: str) -> types.FileStat:
        """Describes ``path`` without following a final symlink."""
        return _call(self._get(path).stat, path)

    def into_wit(self) -> Optional[gateway.Reference]:
        """The host resource (``None`` when empty), for the WIT build result."""
        return self._inner


def _definition(what: Union[State, types.Definition]) -> types.Definition:
    return what.definition() if isinstance(what, State) else what


def _solve(target: object, evaluate: bool) -> gateway.SolveResponse:
    return _call(gateway.solve, gateway.SolveRequest(target=target, evaluate=evaluate))


def solve(what: Union[State, types.Definition]) -> Ref:
    """Solves a state (or definition) lazily: the host builds it when a file is read or the
    result is exported."""
    return Ref(_solve(gateway.SolveTarget_Definition(_definition(what)), False).reference)


def solve_evaluated(what: Union[State, types.Definition]) -> Ref:
    """Solves now, so build errors surface here rather than at export."""
    return Ref(_solve(gateway.SolveTarget_Definition(_definition(what)), True).reference)


def solve_frontend(source: str, options: Optional[List[Tuple[str, str]]] = None,
                   inputs: Optional[Dict[str, Union[State, types.Definition]]] = None
                   ) -> Tuple[Ref, Optional[str]]:
    """Runs another frontend (``builtin:NAME`` or an OCI reference); returns its result and
    image config."""
    req = gateway.FrontendRequest(
        source=source, options=list(options or []),
        inputs=[(k, _definition(v)) for k, v in (inputs or {}).items()])
    res = _solve(gateway.SolveTarget_Frontend(req), False)
    return Ref(res.reference), res.image_config


def resolve_image_config(reference: str, platform: Optional[types.Platform] = None,
                         mode: types.ResolveMode = types.ResolveMode.DEFAULT) -> types.ImageConfig:
    """Resolves an image reference for a platform to its canonical name, digest and config JSON."""
    return _call(gateway.resolve_image_config, reference, platform, mode)


def inputs() -> Dict[str, types.Definition]:
    """The named build contexts given by the client (``context``, ``dockerfile``, …)."""
    return dict(gateway.inputs())


def warn(warning: Union[str, types.Warning], location: Optional[types.SourceLocation] = None,
         rule: Optional[str] = None) -> None:
    """Reports a warning (e.g. a build check) to the user."""
    if isinstance(warning, str):
        warning = types.Warning(rule=rule, message=warning, detail=[], url=None, location=location)
    gateway.warn(warning)


def log(level: types.LogLevel, message: str) -> None:
    """Writes a line to the build log."""
    gateway.log(level, message)


def read_build_file(filename: str) -> Tuple[Ref, str]:
    """Reads the build file ``filename`` from the ``dockerfile`` context (where the client puts
    the file given with ``-f``), as the Dockerfile frontend does; returns the context's result
    and the text."""
    from .llb import local

    ctx = local("dockerfile").include(filename).description(f"[internal] load build definition from {filename}")
    files = solve(ctx)
    try:
        return files, files.read_text(filename)
    except FrontendError as e:
        raise FrontendError(f"failed to read the build file {filename!r}: {e.message}") from None
