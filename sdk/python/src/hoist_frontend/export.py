"""The export glue: turns a Python ``build(options) -> BuildResult`` into the component's
``builder`` interface.

componentize-py looks for a class named after the exported interface (``Builder``) in the app
module, so a frontend ends with ``Builder = export(build)``.
"""

from __future__ import annotations

import io
import sys
import traceback
from typing import Callable, List, Tuple

from componentize_py_types import Err
from hoist_wit import exports
from hoist_wit.exports import builder
from hoist_wit.imports import gateway, types

from .errors import FrontendError
from .options import Options
from .result import BuildResult

#: What a frontend author writes.
BuildFn = Callable[[Options], BuildResult]


def _unexpected(e: BaseException) -> types.Error:
    """A Python exception the frontend did not handle, as an error naming where it was raised."""
    frames = traceback.extract_tb(e.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    return types.Error(message=f"frontend raised {type(e).__name__}: {e}{where}", location=None)


class _LogWriter(io.TextIOBase):
    """A text stream whose lines become gateway log lines (the component has no stdout)."""

    def __init__(self, level: types.LogLevel):
        self._level = level
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            gateway.log(self._level, line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            gateway.log(self._level, self._pending)
            self._pending = ""


def run(build: BuildFn, options: List[Tuple[str, str]]) -> builder.BuildResult:
    """Runs ``build`` for the generated export; every failure becomes the WIT ``error``.

    While it runs, ``print()`` output becomes ``info`` log lines and stderr ``warn`` lines, as
    the host does for Rust frontends' stdout and stderr.
    """
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _LogWriter(types.LogLevel.INFO), _LogWriter(types.LogLevel.WARN)
    try:
        return _run(build, options)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a failed log line must not hide the result
                pass
        sys.stdout, sys.stderr = saved


def _run(build: BuildFn, options: List[Tuple[str, str]]) -> builder.BuildResult:
    try:
        result = build(Options(options))
        if not isinstance(result, BuildResult):
            raise TypeError(f"build() returned {type(result).__name__}, not a BuildResult")
        return builder.BuildResult(
            platforms=[builder.PlatformResult(platform=p, reference=r.into_wit() if r is not None else None,
                                              image_config=c)
                       for p, r, c in result.platforms],
            metadata=list(result.metadata))
    except FrontendError as e:
        raise Err(e.to_wit()) from None
    except Err:
        raise
    except Exception as e:  # noqa: BLE001 - every failure must reach the user as an error value
        raise Err(_unexpected(e)) from None


def export(build: BuildFn) -> type:
    """The ``Builder`` class componentize-py exports, calling ``build``."""

    class Builder(exports.Builder):
        """The ``hoist:frontend/builder`` export."""

        def build(self, options: List[Tuple[str, str]]) -> builder.BuildResult:
            return run(build, options)

    Builder.__doc__ = f"The builder export of {getattr(build, '__qualname__', 'build')}."
    return Builder
