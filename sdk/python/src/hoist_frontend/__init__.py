"""The SDK for writing hoist build frontends in Python.

A hoist frontend is a WebAssembly component targeting the WIT world
``hoist:frontend/frontend@1.0.0`` (``wit/frontend.wit``): it exports ``builder.build(options)``
and imports the host's ``gateway`` (solve, resolve-image-config, reads on results, inputs, warn,
log). This package is the Python side of that contract, mirroring the Rust SDK (``sdk/``): an
immutable LLB builder (:func:`image`, :class:`State`, :func:`copy`, :func:`mkfile`, …), a typed
client over the imports (:func:`solve`, :class:`Ref`, :func:`resolve_image_config`, …), build
:class:`Options`, results (:class:`BuildResult`, :class:`ImageConfig`), located errors
(:class:`FrontendError`) and the :func:`export` glue.

The WIT types come from bindings componentize-py generates from ``wit/`` (module
``hoist_wit``): ``sdk/python/build.sh`` builds the component and regenerates the binding stubs
that IDEs, type checkers and native unit tests import. Nothing here is hand-copied from WIT.

Example (a complete frontend; build it with ``sdk/python/build.sh DIR -o frontend.wasm``)::

    from hoist_frontend import BuildResult, ImageConfig, Options, export, image, mkfile, solve

    def build(options: Options) -> BuildResult:
        greeting = options.build_arg("GREETING", "hello")
        state = (image("busybox:latest")
                 .run("sh", "-c", "echo built > /built")
                 .root()
                 .file(mkfile("/greeting", 0o644, greeting)))
        config = ImageConfig().set_env("GREETING", greeting).set_cmd(["cat", "/greeting"])
        return BuildResult.single(solve(state), config)

    Builder = export(build)
"""

from hoist_wit.imports.types import (
    CacheSharing,
    Chown,
    Definition,
    LogLevel,
    NetworkMode,
    Platform,
    ResolveMode,
    SecurityMode,
    SourceLocation,
    Warning,
)

from .client import (
    Ref,
    inputs,
    log,
    read_build_file,
    resolve_image_config,
    solve,
    solve_evaluated,
    solve_frontend,
    warn,
)
from .errors import FrontendError, format_location, location
from .export import export
from .llb import (
    Action,
    Exec,
    FileActions,
    MountSpec,
    Source,
    State,
    bind,
    cache,
    chown,
    copy,
    diff,
    image,
    local,
    merge,
    mkdir,
    mkfile,
    oci_layout,
    rm,
    scratch,
    secret,
    source,
    ssh,
    symlink,
    tmpfs,
)
from .options import Options, format_platform, parse_platform
from .result import BuildResult, ImageConfig

__all__ = [
    "Action", "BuildResult", "CacheSharing", "Chown", "Definition", "Exec", "FileActions",
    "FrontendError", "ImageConfig", "LogLevel", "MountSpec", "NetworkMode", "Options", "Platform",
    "Ref", "ResolveMode", "SecurityMode", "Source", "SourceLocation", "State", "Warning", "bind",
    "cache", "chown", "copy", "diff", "export", "format_location", "format_platform", "image",
    "inputs", "local", "location", "log", "merge", "mkdir", "mkfile", "oci_layout",
    "parse_platform", "read_build_file", "resolve_image_config", "rm", "scratch", "secret",
    "solve", "solve_evaluated", "solve_frontend", "source", "ssh", "symlink", "tmpfs", "warn",
]
