//! A frontend that misbehaves on purpose; option `mode` picks how. Each mode must end in a clear
//! error on the host while the host keeps serving other builds. A few well-behaved modes
//! (`tour`, `decide`, `forward`) exercise gateway calls the Dockerfile frontend does not make.

use hoist_frontend_sdk::types::{Definition, FileOp, Op, OpKind, OpRef, SourceOp};
use hoist_frontend_sdk::{
    export_frontend, image, inputs, location, parse_platform, resolve_image_config, solve,
    solve_evaluated, solve_frontend, warn, BuildResult, Error, Frontend, Options, Ref,
    ResolveMode, Warning,
};

/// The hostile frontend.
pub struct Hostile;

fn source(identifier: &str) -> Op {
    Op {
        kind: OpKind::Source(SourceOp {
            identifier: identifier.into(),
            include_patterns: vec![],
            exclude_patterns: vec![],
            follow_paths: vec![],
            attrs: vec![],
        }),
        platform: None,
        description: None,
        ignore_cache: false,
        location: None,
    }
}

fn file_on(base: u32) -> Op {
    Op {
        kind: OpKind::File(FileOp {
            base: Some(OpRef {
                op: base,
                output: 0,
            }),
            actions: vec![],
        }),
        platform: None,
        description: None,
        ignore_cache: false,
        location: None,
    }
}

fn context() -> Result<Ref, Error> {
    solve(&image("busybox:latest").definition())
}

impl Frontend for Hostile {
    fn build(options: Options) -> Result<BuildResult, Error> {
        let mode = options.get("mode").unwrap_or("");
        match mode {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hog: Vec<Vec<u8>> = Vec::new();
                loop {
                    hog.push(vec![1u8; 8 << 20]);
                    std::hint::black_box(&hog);
                }
            }
            "out-of-range" => {
                let def = Definition {
                    ops: vec![source("docker-image://busybox:latest"), file_on(7)],
                    output: Some(OpRef { op: 1, output: 0 }),
                };
                solve(&def)?;
                Err(Error::new("solve accepted an out-of-range index"))
            }
            "forward-ref" => {
                let def = Definition {
                    ops: vec![file_on(1), source("docker-image://busybox:latest")],
                    output: Some(OpRef { op: 0, output: 0 }),
                };
                solve(&def)?;
                Err(Error::new("solve accepted a forward reference"))
            }
            "read" => {
                let path = options.get("path").unwrap_or("/");
                let data = context()?.read_file(path)?;
                Ok(BuildResult::new().with_metadata("read", data))
            }
            "read-range" => {
                let len: u64 = options
                    .get("length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let data = context()?.read_file_range("/Dockerfile", 0, len)?;
                Ok(BuildResult::new().with_metadata("read", data))
            }
            "read-dir" => {
                let entries = context()?.read_dir("/", None)?;
                Ok(BuildResult::new().with_metadata("entries", entries.len().to_string()))
            }
            "panic" => panic!("hostile frontend panicked on purpose"),
            "hoard" => {
                let def = image("busybox:latest").definition();
                let mut refs = Vec::new();
                loop {
                    refs.push(solve(&def).map_err(|e| {
                        Error::new(format!("after {} references: {}", refs.len(), e.message))
                    })?);
                }
            }
            "tour" => {
                let inputs = inputs();
                let platform = parse_platform("linux/arm64/v8")?;
                let config = resolve_image_config("busybox", Some(&platform), ResolveMode::Pull)?;
                let mut warning = Warning::new("stage name casing");
                warning.rule = Some("StageNameCasing".into());
                warning.location = Some(location("Dockerfile", &[(1, 2)]));
                warn(&warning);
                let st = context()?.stat("/etc/../bin/sh")?;
                let sub = solve_frontend("builtin:none", vec![], vec![]).unwrap_err();
                Ok(BuildResult::new()
                    .with_metadata(
                        "inputs",
                        inputs
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                    )
                    .with_metadata("canonical", config.canonical_ref)
                    .with_metadata("stat", st.path)
                    .with_metadata("subrequest", sub.message))
            }
            // Runs frontend `forward-to` with this build's options (so forwarding to itself
            // loops) and returns its result: chaining, and the host's depth limit.
            "forward" => {
                let target = options.get("forward-to").unwrap_or("builtin:dockerfile");
                let (result, config) = solve_frontend(target, options.raw().to_vec(), vec![])?;
                Ok(BuildResult::single(result, config))
            }
            // Runs a step, reads the file it wrote from the evaluated intermediate result, and
            // picks the next step by that content (as a frontend reading a lock file would).
            "decide" => {
                let base = image(options.get("base").unwrap_or("busybox:latest")).state();
                let probe = base
                    .run(["sh", "-c", "echo second > /choice"])
                    .description("probe: RUN echo second > /choice")
                    .root();
                let choice = solve_evaluated(&probe.definition())?.read_file("/choice")?;
                let choice = String::from_utf8_lossy(&choice).trim().to_string();
                let script = format!("echo picked {choice} > /picked");
                let next = probe
                    .run(["sh".to_string(), "-c".to_string(), script.clone()])
                    .description(format!("decided: RUN {script}"))
                    .root();
                Ok(BuildResult::single(solve(&next.definition())?, None))
            }
            "print" => {
                println!("to stdout");
                eprintln!("to stderr");
                Ok(BuildResult::new())
            }
            other => Err(Error::new(format!("unknown mode {other:?}")).at("Hostilefile", 1, 1)),
        }
    }
}

export_frontend!(Hostile);
