//! A tiny hoist frontend, the SDK's runnable example.
//!
//! It builds `busybox:latest` plus one `RUN` and one generated file, and returns an image config
//! with `Env` and `Cmd`. Options: `build-arg:GREETING` (default `hello`), `build-arg:BASE` (the
//! base image, default `busybox:latest`), and `platform`.
//! Build it with `cargo build -p hello-frontend --target wasm32-wasip2 --profile frontend`; the
//! component is `target/wasm32-wasip2/frontend/hello_frontend.wasm`.

use hoist_frontend_sdk::{
    export_frontend, image, mkdir, mkfile, solve, BuildResult, Error, Frontend, ImageConfig,
    Options, State,
};

/// The example frontend.
pub struct Hello;

/// The build graph for `greeting` (pure, so it is unit-tested natively).
pub fn plan(greeting: &str) -> State {
    plan_on("busybox:latest", greeting)
}

/// The build graph for `greeting` on base image `base`.
pub fn plan_on(base: &str, greeting: &str) -> State {
    image(base)
        .description(format!("[1/3] FROM {base}"))
        .state()
        .run(["sh", "-c", "echo built > /built"])
        .env("GREETING", greeting)
        .description("[2/3] RUN echo built > /built")
        .location("Hellofile", &[(2, 2)])
        .root()
        .file(mkdir("/app", 0o755).parents(true).then(mkfile(
            "/app/greeting",
            0o644,
            format!("{greeting}\n"),
        )))
        .description("[3/3] WRITE /app/greeting")
}

/// The image config for `greeting`.
pub fn config(greeting: &str) -> ImageConfig {
    let mut config = ImageConfig::new(None);
    config
        .set_env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .set_env("GREETING", greeting)
        .set_cmd(&["cat", "/app/greeting"]);
    config
}

impl Frontend for Hello {
    fn build(options: Options) -> Result<BuildResult, Error> {
        let greeting = options.build_arg("GREETING").unwrap_or("hello");
        let state = plan_on(options.build_arg("BASE").unwrap_or("busybox:latest"), greeting);
        hoist_frontend_sdk::log(
            hoist_frontend_sdk::LogLevel::Info,
            "hello-frontend: solving",
        );
        let result = solve(&state.definition())?;
        Ok(BuildResult::single(
            result,
            Some(config(greeting).to_json()),
        ))
    }
}

export_frontend!(Hello);

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_frontend_sdk::types::OpKind;

    #[test]
    fn plan_has_image_exec_and_file_ops_in_order() {
        let def = plan("hi").definition();
        let kinds: Vec<&str> = def
            .ops
            .iter()
            .map(|op| match op.kind {
                OpKind::Source(_) => "source",
                OpKind::Exec(_) => "exec",
                OpKind::File(_) => "file",
                OpKind::Merge(_) => "merge",
                OpKind::Diff(_) => "diff",
            })
            .collect();
        assert_eq!(kinds, ["source", "exec", "file"]);
        assert_eq!(def.output.map(|o| o.op), Some(2));
    }

    #[test]
    fn config_has_env_and_cmd() {
        let json = config("hi").to_json();
        assert!(json.contains("\"GREETING=hi\""), "{json}");
        assert!(
            json.contains("\"Cmd\":[\"cat\",\"/app/greeting\"]"),
            "{json}"
        );
    }
}
