"""The Python twin of the Rust SDK's example (sdk/examples/hello-frontend).

It builds ``busybox:latest`` plus one ``RUN`` and one generated file, and returns an image config
with ``Env`` and ``Cmd``. Options: ``build-arg:GREETING`` (default ``hello``) and
``build-arg:BASE`` (the base image, default ``busybox:latest``). Written op for op
like the Rust one, so both emit the same LLB (tests/python_sdk.rs checks the digests).
"""

from hoist_frontend import (
    BuildResult, ImageConfig, LogLevel, Options, State, export, image, log, mkdir, mkfile, solve,
)


def plan(greeting: str) -> State:
    """The build graph for ``greeting``."""
    return plan_on("busybox:latest", greeting)


def plan_on(base: str, greeting: str) -> State:
    """The build graph for ``greeting`` on base image ``base``."""
    return (image(base)
            .description(f"[1/3] FROM {base}")
            .state()
            .run(["sh", "-c", "echo built > /built"])
            .env("GREETING", greeting)
            .description("[2/3] RUN echo built > /built")
            .location("Hellofile", [(2, 2)])
            .root()
            .file(mkdir("/app", 0o755).parents(True).then(mkfile("/app/greeting", 0o644, f"{greeting}\n")))
            .description("[3/3] WRITE /app/greeting"))


def config(greeting: str) -> ImageConfig:
    """The image config for ``greeting``."""
    return (ImageConfig()
            .set_env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .set_env("GREETING", greeting)
            .set_cmd(["cat", "/app/greeting"]))


def build(options: Options) -> BuildResult:
    greeting = options.build_arg("GREETING", "hello")
    state = plan_on(options.build_arg("BASE", "busybox:latest"), greeting)
    log(LogLevel.INFO, "hello-frontend (python): solving")
    return BuildResult.single(solve(state), config(greeting))


Builder = export(build)
