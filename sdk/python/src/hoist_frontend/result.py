"""What a frontend returns: results per platform, image config, metadata."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hoist_wit.imports import types

from .errors import FrontendError
from .options import format_platform


class ImageConfig:
    """An OCI image config (the ``config`` object plus platform and history), edited as JSON so
    fields this type does not know survive a round trip from a base image."""

    def __init__(self, platform: Optional[types.Platform] = None):
        p = platform or types.Platform(os="linux", architecture="amd64", variant=None)
        self._doc: Dict[str, Any] = {"architecture": p.architecture, "os": p.os}
        if p.variant:
            self._doc["variant"] = p.variant
        self._doc["rootfs"] = {"type": "layers", "diff_ids": []}
        self._config: Dict[str, Any] = {}

    @classmethod
    def parse(cls, config_json: str) -> "ImageConfig":
        """Parses a base image's config JSON (as ``resolve_image_config`` returns it)."""
        try:
            doc = json.loads(config_json)
        except ValueError as e:
            raise FrontendError(f"invalid image config JSON: {e}") from None
        if not isinstance(doc, dict):
            raise FrontendError("image config is not a JSON object")
        cfg = doc.pop("config", None)
        out = cls.__new__(cls)
        out._doc = doc
        out._config = cfg if isinstance(cfg, dict) else {}
        return out

    def env(self) -> List[str]:
        """The ``KEY=VALUE`` environment."""
        env = self._config.get("Env")
        return [e for e in env if isinstance(e, str)] if isinstance(env, list) else []

    def env_pairs(self) -> List[Tuple[str, str]]:
        """The environment as ``(key, value)`` pairs."""
        return [tuple(e.split("=", 1)) if "=" in e else (e, "") for e in self.env()]  # type: ignore[misc]

    def set_env(self, key: str, value: str) -> "ImageConfig":
        """Sets ``key=value`` in the environment, replacing an earlier value."""
        env = [e for e in self.env() if not e.startswith(f"{key}=")]
        env.append(f"{key}={value}")
        self._config["Env"] = env
        return self

    def set_cmd(self, cmd: Sequence[str]) -> "ImageConfig":
        """Sets ``Cmd``."""
        self._config["Cmd"] = list(cmd)
        return self

    def set_entrypoint(self, entrypoint: Sequence[str]) -> "ImageConfig":
        """Sets ``Entrypoint``."""
        self._config["Entrypoint"] = list(entrypoint)
        return self

    def set_working_dir(self, path: str) -> "ImageConfig":
        """Sets ``WorkingDir``."""
        self._config["WorkingDir"] = path
        return self

    def set_user(self, user: str) -> "ImageConfig":
        """Sets ``User``."""
        self._config["User"] = user
        return self

    def set_label(self, key: str, value: str) -> "ImageConfig":
        """Sets one label."""
        labels = self._config.get("Labels")
        if not isinstance(labels, dict):
            labels = self._config["Labels"] = {}
        labels[key] = value
        return self

    def add_exposed_port(self, port: str) -> "ImageConfig":
        """Declares an exposed port, e.g. ``8080/tcp``."""
        ports = self._config.get("ExposedPorts")
        if not isinstance(ports, dict):
            ports = self._config["ExposedPorts"] = {}
        ports[port] = {}
        return self

    def platform(self) -> str:
        """The platform the config is for, ``os/arch[/variant]``."""
        s = lambda k: self._doc.get(k) if isinstance(self._doc.get(k), str) else ""  # noqa: E731
        return format_platform(types.Platform(os=s("os"), architecture=s("architecture"),
                                              variant=self._doc.get("variant") or None))

    def to_json(self) -> str:
        """The config as OCI image config JSON (keys sorted, compact: as the Rust SDK writes it)."""
        doc = dict(self._doc)
        doc["config"] = self._config
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class BuildResult:
    """The result of a build: one filesystem (and image config) per platform plus metadata."""

    def __init__(self) -> None:
        self.platforms: List[Tuple[Optional[types.Platform], Any, Optional[str]]] = []
        self.metadata: List[Tuple[str, bytes]] = []

    @classmethod
    def single(cls, reference: Any, image_config: Optional[str | ImageConfig] = None) -> "BuildResult":
        """A result for the host's platform: ``reference`` (a :class:`Ref`) and its image config."""
        return cls().with_platform(None, reference, image_config)

    def with_platform(self, platform: Optional[types.Platform], reference: Any,
                      image_config: Optional[str | ImageConfig] = None) -> "BuildResult":
        """Adds the result for ``platform``."""
        if isinstance(image_config, ImageConfig):
            image_config = image_config.to_json()
        self.platforms.append((platform, reference, image_config))
        return self

    def with_metadata(self, key: str, value: str | bytes) -> "BuildResult":
        """Adds a metadata entry (e.g. ``result.json`` for a subrequest's answer)."""
        self.metadata.append((key, value.encode("utf-8") if isinstance(value, str) else bytes(value)))
        return self
