"""Build options as BuildKit names them (``build-arg:NAME``, ``target``, ``platform``, …)."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from hoist_wit.imports import types

from .errors import FrontendError


class Options:
    """The options a build was started with, as the host passed them to ``build``."""

    def __init__(self, raw: Sequence[Tuple[str, str]] = ()):
        self._raw: List[Tuple[str, str]] = [(str(k), str(v)) for k, v in raw]

    def __repr__(self) -> str:
        return f"Options({self._raw!r})"

    def raw(self) -> List[Tuple[str, str]]:
        """The raw pairs, in the order given."""
        return list(self._raw)

    def get(self, key: str) -> Optional[str]:
        """The value of ``key`` (the last one when given twice)."""
        for k, v in reversed(self._raw):
            if k == key:
                return v
        return None

    def _prefixed(self, prefix: str) -> Dict[str, str]:
        out: Dict[str, str] = {}
        for k, v in self._raw:
            if k.startswith(prefix):
                out[k[len(prefix):]] = v
        return dict(sorted(out.items()))

    def build_args(self) -> Dict[str, str]:
        """Build arguments (``build-arg:NAME``), by name."""
        return self._prefixed("build-arg:")

    def build_arg(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """One build argument, or ``default``."""
        value = self.get(f"build-arg:{name}")
        return default if value is None else value

    def labels(self) -> Dict[str, str]:
        """Labels to add to the image (``label:NAME``)."""
        return self._prefixed("label:")

    def named_contexts(self) -> Dict[str, str]:
        """Named contexts (``context:NAME``), e.g. ``alpine`` → ``docker-image://alpine:3``."""
        return self._prefixed("context:")

    def target(self) -> Optional[str]:
        """The stage to build (``target``), if not the last."""
        t = self.get("target")
        return t or None

    def filename(self, default: str = "Dockerfile") -> str:
        """The build file name (``filename``), ``default`` when not given."""
        return self.get("filename") or default

    def no_cache(self) -> bool:
        """Whether caching is disabled for every op (``no-cache`` given empty or ``true``)."""
        v = self.get("no-cache")
        return v is not None and v in ("", "true")

    def request_id(self) -> Optional[str]:
        """A subrequest such as ``frontend.outline`` (``requestid``)."""
        return self.get("requestid") or None

    def platforms(self) -> List[types.Platform]:
        """Target platforms (``platform``, comma-separated); empty means the host's."""
        value = self.get("platform")
        if value is None:
            return []
        return [parse_platform(p.strip()) for p in value.split(",") if p.strip()]


def parse_platform(spec: str) -> types.Platform:
    """Parses ``os/arch[/variant]``, e.g. ``linux/arm64/v8``."""
    parts = spec.split("/")
    if len(parts) in (2, 3) and all(parts):
        return types.Platform(os=parts[0], architecture=parts[1],
                              variant=parts[2] if len(parts) == 3 else None)
    raise FrontendError(f"invalid platform {spec!r}: want os/arch[/variant]")


def format_platform(p: types.Platform) -> str:
    """Formats a platform as ``os/arch[/variant]``."""
    return f"{p.os}/{p.architecture}/{p.variant}" if p.variant else f"{p.os}/{p.architecture}"
