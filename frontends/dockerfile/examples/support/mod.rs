//! The Dockerfile the benchmarks convert: 500 lines, 20 stages (shared by `bench_convert` here
//! and `bench_component` in frontends/builtin, so native and in-component figures compare).

/// Stages in the generated Dockerfile.
pub const STAGES: usize = 20;
/// Lines per stage (the first stage's block includes the global ARGs).
pub const LINES_PER_STAGE: usize = 25;

/// A Dockerfile of `STAGES` stages of `LINES_PER_STAGE` lines each: every stage builds on an
/// image or the previous stage, and copies from the one before.
pub fn generate() -> String {
    let mut out = Vec::new();
    out.push("ARG ALPINE=3.19".to_string());
    out.push("ARG GO=1.22".to_string());
    for i in 0..STAGES {
        let start = out.len();
        let base = match i % 3 {
            0 => "alpine:${ALPINE}".to_string(),
            1 => "golang:${GO}".to_string(),
            _ => format!("s{}", i - 1),
        };
        out.push(format!("FROM {base} AS s{i}"));
        out.push("ARG ALPINE".into());
        out.push(format!("ARG STAGE={i}"));
        out.push(format!("ENV STAGE_DIR=/build/s{i} MODE=release"));
        out.push("WORKDIR $STAGE_DIR".into());
        out.push(format!("LABEL stage=\"s{i}\" alpine=$ALPINE"));
        out.push("COPY go.mod go.sum ./".into());
        out.push(format!("COPY --chown=1000:1000 src/s{i}/ ./src/"));
        out.push("RUN --mount=type=cache,target=/root/.cache \\".into());
        out.push("    --mount=type=secret,id=token \\".into());
        out.push(format!("    make -C src stage={i} mode=$MODE"));
        if i > 0 {
            out.push(format!(
                "COPY --from=s{} /build/s{}/out ./deps/",
                i - 1,
                i - 1
            ));
        } else {
            out.push("COPY vendor/ ./vendor/".into());
        }
        out.push("RUN <<EOF".into());
        out.push("set -eu".into());
        out.push(format!("echo stage {i} > out/VERSION"));
        out.push("EOF".into());
        out.push(format!("EXPOSE {}", 8000 + i));
        out.push("USER 1000:1000".into());
        out.push("HEALTHCHECK --interval=30s CMD [\"/bin/true\"]".into());
        out.push("VOLUME /data".into());
        out.push("ENV PATH=$STAGE_DIR/bin:$PATH".into());
        while out.len() - start < LINES_PER_STAGE - 2 - usize::from(i == 0) * 2 {
            out.push(format!("RUN echo filler {} > /dev/null", out.len()));
        }
        out.push("ENTRYPOINT [\"/app\"]".into());
        out.push("CMD [\"--help\"]".into());
    }
    out.join("\n") + "\n"
}
