"""Errors a frontend reports: a message and, where it applies, the build-file lines concerned."""

from __future__ import annotations

from typing import Iterable, Optional, Tuple, Union

from hoist_wit.imports import types

#: A line range as ``(start, end)`` (1-based, inclusive) or one line number.
Lines = Union[int, Tuple[int, int]]


def location(file: str, ranges: Iterable[Lines]) -> types.SourceLocation:
    """A source location from a file name and line ranges, e.g. ``location("hoist.toml", [(3, 5)])``."""
    out = []
    for r in ranges:
        start, end = (r, r) if isinstance(r, int) else r
        if start < 1 or end < start:
            raise ValueError(f"invalid line range {start}-{end} (1-based, start <= end)")
        out.append(types.LineRange(start=start, end=end))
    return types.SourceLocation(file=file, ranges=out)


def format_location(loc: Optional[types.SourceLocation]) -> str:
    """``file:line`` or ``file:start-end`` (the first range), as the CLI shows it."""
    if loc is None:
        return ""
    if not loc.ranges:
        return loc.file
    r = loc.ranges[0]
    return f"{loc.file}:{r.start}" if r.start == r.end else f"{loc.file}:{r.start}-{r.end}"


class FrontendError(Exception):
    """An error for the user, with the build-file lines it concerns.

    Raise it from ``build`` (or anything it calls): the export glue returns it to the host as
    the WIT ``error`` record, and the CLI points at the located lines. Errors the host returns
    (a failed solve, a missing file) arrive as this type too.
    """

    def __init__(self, message: str, location: Optional[types.SourceLocation] = None):
        super().__init__(message)
        self.message = message
        self.location = location

    def at(self, file: str, start: int, end: Optional[int] = None) -> "FrontendError":
        """The error located at ``file`` lines ``start..=end`` (one line when ``end`` is omitted)."""
        self.location = location(file, [(start, start if end is None else end)])
        return self

    def __str__(self) -> str:
        where = format_location(self.location)
        return f"{where}: {self.message}" if where else self.message

    def to_wit(self) -> types.Error:
        """The WIT ``error`` record."""
        return types.Error(message=self.message, location=self.location)

    @classmethod
    def from_wit(cls, error: types.Error) -> "FrontendError":
        """The error the host returned."""
        return cls(error.message, error.location)

