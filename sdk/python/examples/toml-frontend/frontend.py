"""A hoist frontend for builds described in TOML: stages of steps (run, copy, mkdir, write, rm),
build arguments, a target stage and the image config, turned into LLB.

See README.md beside this file for the format. Errors name the build file and the lines
concerned; the CLI shows them like a Dockerfile's.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from hoist_frontend import (
    BuildResult, FrontendError, ImageConfig, Options, Platform, State, cache, chown, copy, export,
    image, local, location, mkdir, mkfile, read_build_file, resolve_image_config, rm, scratch,
    solve, source,
)

DEFAULT_FILENAME = "hoist.toml"
STEP_KINDS = ("run", "copy", "mkdir", "write", "rm")
ARG_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Lines:
    """Finds the lines of tables and values in the build file (tomllib keeps no positions)."""

    def __init__(self, filename: str, text: str):
        self.filename = filename
        self.lines = text.splitlines()
        self.stage_headers = [i + 1 for i, line in enumerate(self.lines)
                              if re.match(r"\s*\[\[\s*stage\s*\]\]", line)]

    def stage_range(self, index: int) -> Tuple[int, int]:
        """Lines of the ``index``-th ``[[stage]]`` table (header to the last non-blank line)."""
        if index >= len(self.stage_headers):
            return (1, max(1, len(self.lines)))
        start = self.stage_headers[index]
        end = len(self.lines)
        for i in range(start, len(self.lines)):
            if re.match(r"\s*\[", self.lines[i]):
                end = i
                break
        while end > start and not self.lines[end - 1].strip():
            end -= 1
        return (start, end)

    def find(self, index: int, *needles: str) -> Tuple[int, int]:
        """The first line of stage ``index`` containing every needle, else the whole stage."""
        start, end = self.stage_range(index)
        for n in range(start, end + 1):
            if all(needle in self.lines[n - 1] for needle in needles):
                return (n, n)
        return (start, end)

    def error(self, message: str, lines: Tuple[int, int]) -> FrontendError:
        return FrontendError(message, location(self.filename, [lines]))


@dataclass
class Step:
    kind: str
    spec: dict
    lines: Tuple[int, int]


@dataclass
class Stage:
    index: int
    name: str
    base: str
    workdir: Optional[str]
    env: Dict[str, str]
    user: Optional[str]
    steps: List[Step]
    lines: Tuple[int, int]
    image_config: Optional[ImageConfig] = field(default=None)


def substitute(value: str, args: Dict[str, str]) -> str:
    """Replaces ``${NAME}`` of declared build arguments; anything else is left for the shell."""
    return ARG_REF.sub(lambda m: args.get(m.group(1), m.group(0)), value)


def parse(filename: str, text: str, build_args: Dict[str, str]) -> Tuple[List[Stage], dict, Dict[str, str]]:
    """Parses and checks the build file: its stages, its ``[image]`` table and the arguments."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        line = int(m.group(1)) if m else 1
        reason = re.sub(r" \(at line.*\)", "", str(e))
        raise FrontendError(f"invalid TOML: {reason}").at(filename, line) from None
    lines = Lines(filename, text)
    unknown = set(doc) - {"args", "stage", "image"}
    if unknown:
        key = sorted(unknown)[0]
        raise lines.error(f"unknown table {key!r}: want args, stage, image", find_line(lines, key))
    args = {k: str(v) for k, v in doc.get("args", {}).items()}
    args.update({k: v for k, v in build_args.items() if k in args})
    raw_stages = doc.get("stage")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise FrontendError(f"{filename} has no [[stage]]: a build needs at least one").at(filename, 1)
    stages: List[Stage] = []
    for i, raw in enumerate(raw_stages):
        stages.append(parse_stage(i, raw, stages, lines, args))
    return stages, doc.get("image", {}), args


def find_line(lines: Lines, needle: str) -> Tuple[int, int]:
    for n, line in enumerate(lines.lines, 1):
        if needle in line:
            return (n, n)
    return (1, 1)


def parse_stage(i: int, raw: dict, earlier: List[Stage], lines: Lines, args: Dict[str, str]) -> Stage:
    where = lines.stage_range(i)
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
        raise lines.error(f"stage {i + 1} needs a name of lowercase letters, digits, '.', '_', '-'", where)
    if any(s.name == name for s in earlier):
        raise lines.error(f"stage name {name!r} is used twice", lines.find(i, "name", name))
    base = raw.get("from")
    if not isinstance(base, str) or not base:
        raise lines.error(f"stage {name!r} needs 'from': an image, 'scratch' or an earlier stage", where)
    steps = []
    for j, spec in enumerate(raw.get("steps", [])):
        kinds = [k for k in STEP_KINDS if isinstance(spec, dict) and k in spec]
        if len(kinds) != 1:
            raise lines.error(f"stage {name!r} step {j + 1}: want exactly one of {', '.join(STEP_KINDS)}", where)
        kind = kinds[0]
        value = spec[kind]
        needle = value if isinstance(value, str) else (value[0] if value else kind)
        step_lines = lines.find(i, kind, str(needle))
        if kind == "copy" and "to" not in spec:
            raise lines.error(f"stage {name!r}: copy {value!r} needs 'to'", step_lines)
        if kind == "copy" and "from" in spec and spec["from"] not in [s.name for s in earlier]:
            raise lines.error(f"stage {name!r}: copy from unknown stage {spec['from']!r} "
                              f"(stages before it: {', '.join(s.name for s in earlier) or 'none'})",
                              lines.find(i, "from", str(spec["from"])))
        if kind == "write" and "content" not in spec:
            raise lines.error(f"stage {name!r}: write {value!r} needs 'content'", step_lines)
        steps.append(Step(kind, spec, step_lines))
    env = {str(k): substitute(str(v), args) for k, v in raw.get("env", {}).items()}
    return Stage(i, name, substitute(base, args), raw.get("workdir"), env, raw.get("user"), steps, where)


def octal(value: object, default: int, lines: Lines, where: Tuple[int, int]) -> int:
    if value is None:
        return default
    try:
        return int(str(value), 8)
    except ValueError:
        raise lines.error(f"mode {value!r} is not octal (e.g. \"0755\")", where) from None


def convert(filename: str, text: str, options: Options, resolve=None) -> Tuple[State, ImageConfig]:
    """The LLB state and image config of the build file; ``resolve(ref, platform)`` returns a
    base image's canonical reference, digest and config JSON (the gateway's
    ``resolve_image_config`` in the component)."""
    stages, image_table, args = parse(filename, text, options.build_args())
    lines = Lines(filename, text)
    platforms = options.platforms()
    platform: Optional[Platform] = platforms[0] if platforms else None
    target = options.target()
    if target is not None and target not in [s.name for s in stages]:
        raise FrontendError(f"target stage {target!r} not found (stages: {', '.join(s.name for s in stages)})")
    built: Dict[str, Tuple[State, ImageConfig]] = {}
    context = local("context").description("[internal] load build context")
    for stage in stages:
        built[stage.name] = build_stage(stage, built, context, args, platform, options, lines, resolve)
        if stage.name == target:
            break
    state, config = built[target or stages[-1].name]
    return state, image_config(config, image_table, options, lines)


def build_stage(stage: Stage, built, context: State, args, platform, options: Options, lines: Lines,
                resolve) -> Tuple[State, ImageConfig]:
    total = len(stage.steps) + 1
    prefix = lambda n: f"[{stage.name} {n}/{total}]"  # noqa: E731
    if stage.base in built:
        state, config = built[stage.base]
        config = ImageConfig.parse(config.to_json())
    elif stage.base == "scratch":
        state, config = scratch(), ImageConfig(platform)
    elif options.named_contexts().get(stage.base, "").startswith("local:"):
        # A directory given with --build-context NAME=DIR.
        name = options.named_contexts()[stage.base][len("local:"):]
        state, config = local(name).description(f"{prefix(1)} FROM {stage.base}").state(), ImageConfig(platform)
    else:
        # An image, or a named context standing for one (--build-context NAME=docker-image://…
        # or oci-layout://…), as the Dockerfile frontend treats FROM.
        named = options.named_contexts().get(stage.base)
        reference = named[len("docker-image://"):] if named and named.startswith("docker-image://") else named
        if named is not None and not named.startswith(("docker-image://", "oci-layout://")):
            raise lines.error(f"named context {stage.base!r} has an unsupported value {named!r}", stage.lines)
        reference = reference or stage.base
        resolved = resolve(reference, platform) if resolve else None
        reference = pinned(reference, resolved)
        src = source(reference) if reference.startswith("oci-layout://") else image(reference)
        if platform is not None:
            src = src.platform(platform)
        src = src.description(f"{prefix(1)} FROM {stage.base}").location(lines.filename, [stage.lines[0]])
        config = ImageConfig.parse(resolved.config) if resolved else ImageConfig(platform)
        state = src.state()
        for k, v in config.env_pairs():
            state = state.add_env(k, v)
    for k, v in stage.env.items():
        state = state.add_env(k, v)
        config.set_env(k, v)
    if stage.workdir:
        state = state.dir(substitute(stage.workdir, args))
        config.set_working_dir(state.get_dir())
    if stage.user:
        state = state.user(stage.user)
        config.set_user(stage.user)
    for n, step in enumerate(stage.steps, 2):
        state = build_step(step, f"{prefix(n)} {step.kind.upper()}", state, built, context, args, options, lines)
    return state, config


def build_step(step: Step, title: str, state: State, built, context: State, args, options: Options,
               lines: Lines) -> State:
    spec, where = step.spec, step.lines
    if step.kind == "run":
        cmd = spec["run"]
        if isinstance(cmd, str):
            argv = ["/bin/sh", "-c", substitute(cmd, args)]
        elif isinstance(cmd, list) and cmd and all(isinstance(a, str) for a in cmd):
            argv = [substitute(a, args) for a in cmd]
        else:
            raise lines.error("run wants a command string or a non-empty list of strings", where)
        run = state.run(argv).description(f"{title} {' '.join(argv[2:] if isinstance(cmd, str) else argv)}")
        for target in spec.get("cache", []):
            run = run.with_mount(cache(target))
        if options.no_cache():
            run = run.ignore_cache()
        return run.location(lines.filename, [where]).root()
    if step.kind == "copy":
        src_name = spec.get("from")
        src = built[src_name][0] if src_name else context
        action = copy(src, substitute(spec["copy"], args), substitute(spec["to"], args)).create_dest_path()
        if "chmod" in spec:
            action = action.chmod(str(spec["chmod"]))
        if "chown" in spec:
            action = action.chown(chown(str(spec["chown"])))
        text = f"{title} {spec['copy']} {spec['to']}" + (f" (from {src_name})" if src_name else "")
        return state.file(action).description(text).location(lines.filename, [where])
    if step.kind == "mkdir":
        action = mkdir(spec["mkdir"], octal(spec.get("mode"), 0o755, lines, where)).parents()
    elif step.kind == "write":
        content = substitute(str(spec["content"]), args)
        action = mkfile(spec["write"], octal(spec.get("mode"), 0o644, lines, where), content)
    else:
        action = rm(spec["rm"]).allow_not_found(bool(spec.get("allow-missing", False)))
    path = spec[step.kind]
    return state.file(action).description(f"{title} {path}").location(lines.filename, [where])


def image_config(config: ImageConfig, table: dict, options: Options, lines: Lines) -> ImageConfig:
    where = find_line(lines, "[image]")
    known = {"cmd", "entrypoint", "env", "workdir", "user", "labels", "expose"}
    for key in table:
        if key not in known:
            raise lines.error(f"unknown key {key!r} in [image]: want {', '.join(sorted(known))}", where)
    for key in ("cmd", "entrypoint"):
        value = table.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(a, str) for a in value)):
            raise lines.error(f"[image] {key} wants a list of strings", find_line(lines, f"{key} ="))
    if "cmd" in table:
        config.set_cmd(table["cmd"])
    if "entrypoint" in table:
        config.set_entrypoint(table["entrypoint"])
    for k, v in table.get("env", {}).items():
        config.set_env(str(k), str(v))
    if "workdir" in table:
        config.set_working_dir(str(table["workdir"]))
    if "user" in table:
        config.set_user(str(table["user"]))
    for k, v in {**table.get("labels", {}), **options.labels()}.items():
        config.set_label(str(k), str(v))
    for port in table.get("expose", []):
        config.add_exposed_port(str(port) if "/" in str(port) else f"{port}/tcp")
    return config


def pinned(reference: str, resolved) -> str:
    """The base as the engine fetches it: at the manifest digest the gateway resolved, as the
    Dockerfile frontend pins FROM (an OCI layout is read by digest only)."""
    if resolved is None:
        return reference
    if "@" in resolved.canonical_ref:
        return resolved.canonical_ref
    return f"{resolved.canonical_ref}@{resolved.digest}"


def gateway_resolve(reference: str, platform: Optional[Platform]):
    """The gateway's answer for a base image: canonical reference, digest, config JSON."""
    return resolve_image_config(reference, platform)


def build(options: Options) -> BuildResult:
    filename = options.filename(DEFAULT_FILENAME)
    _, text = read_build_file(filename)
    print(f"toml-frontend: building {filename}")  # becomes a build log line
    state, config = convert(filename, text, options, gateway_resolve)
    return BuildResult.single(solve(state), config)


Builder = export(build)
