//! Subrequests (`docker buildx build --call`): `outline`, `targets` and `check` answer questions
//! about the Dockerfile without building it. Answers are JSON under `result.json` and text under
//! `result.txt`, as BuildKit returns them; `check` also sets `result.statuscode` (1 when it
//! found violations), the exit status the client ends with.

use hoist_frontend_sdk::{BuildResult, Error};
use serde_json::{json, Value};

use crate::component::located;
use crate::convert::{self, ConvertOptions, ImageResolver};
use crate::instructions::{self, Instruction, Stage};
use crate::parser;

/// Answers the subrequest `request` (`frontend.outline`, `frontend.targets`, `frontend.lint`);
/// `check` resolves base images through `resolver`, as their `ENV` matters to `UndefinedVar`.
pub fn answer(
    request: &str,
    dockerfile: &str,
    opts: &ConvertOptions,
    resolver: &mut dyn ImageResolver,
) -> Result<BuildResult, Error> {
    let filename = opts.filename.as_str();
    let parsed = parser::parse(dockerfile).map_err(|e| located(e.into(), filename))?;
    let (meta_args, stages) =
        instructions::parse_stages(&parsed.ast).map_err(|e| located(e.into(), filename))?;
    // Only `check` sets an exit status: 1 when it found violations, as BuildKit's does.
    let mut status = None;
    let (json, text) = match request {
        "frontend.targets" => targets(&stages, filename),
        "frontend.outline" => outline(&meta_args, &stages, opts.target.as_deref(), filename)?,
        "frontend.lint" => {
            let report =
                convert::check(dockerfile, opts, resolver).map_err(|e| located(e, filename))?;
            status = Some(report.status_code());
            (
                report.to_json(filename),
                report.to_text(filename, dockerfile),
            )
        }
        other => {
            let known = "frontend.outline, frontend.targets, frontend.lint";
            return Err(Error::new(format!(
                "unsupported subrequest {other:?} (known: {known})"
            )));
        }
    };
    let json = serde_json::to_vec_pretty(&json).map_err(|e| Error::new(e.to_string()))?;
    let result = BuildResult::new()
        .with_metadata("result.json", json)
        .with_metadata("result.txt", text.into_bytes());
    Ok(match status {
        Some(code) => result.with_metadata("result.statuscode", code.to_string().into_bytes()),
        None => result,
    })
}

/// Every stage, the last one marked as the default.
pub fn targets(stages: &[Stage], filename: &str) -> (Value, String) {
    let last = stages.len().saturating_sub(1);
    let mut text = String::from("TARGET\tDESCRIPTION\n");
    let list: Vec<Value> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let name = s.name.clone().unwrap_or_else(|| format!("stage-{i}"));
            let description = description_of(s);
            text.push_str(&format!("{name}{}\t{description}\n", if i == last { " (default)" } else { "" }));
            json!({
                "name": name,
                "default": i == last,
                "description": description,
                "base": s.base_name,
                "location": {"file": filename, "start": s.location.start_line, "end": s.location.end_line},
            })
        })
        .collect();
    (json!({ "targets": list }), text)
}

/// The build arguments, secrets and ssh ids the target uses.
pub fn outline(
    meta_args: &[instructions::MetaArg],
    stages: &[Stage],
    target: Option<&str>,
    filename: &str,
) -> Result<(Value, String), Error> {
    let index = match target {
        Some(t) => stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| Error::new(format!("target stage {t:?} could not be found")))?,
        None => stages.len().saturating_sub(1),
    };
    let mut args = Vec::new();
    let mut text = String::from("ARG\tDEFAULT\n");
    for meta in meta_args {
        for arg in &meta.arg.args {
            args.push(json!({"name": arg.key, "value": arg.value, "location": {"file": filename, "start": meta.location.start_line}}));
            text.push_str(&format!(
                "{}\t{}\n",
                arg.key,
                arg.value.clone().unwrap_or_default()
            ));
        }
    }
    let mut secrets = Vec::new();
    let mut ssh = Vec::new();
    if let Some(stage) = stages.get(index) {
        for command in &stage.commands {
            match &command.instruction {
                Instruction::Arg(a) => {
                    for arg in &a.args {
                        args.push(json!({"name": arg.key, "value": arg.value, "location": {"file": filename, "start": command.location.start_line}}));
                        text.push_str(&format!(
                            "{}\t{}\n",
                            arg.key,
                            arg.value.clone().unwrap_or_default()
                        ));
                    }
                }
                Instruction::Run(run) => {
                    for spec in &run.mounts {
                        let mut keep = |v: &str| Ok::<String, String>(v.to_string());
                        if let Ok(m) = instructions::parse_mount(spec, &mut keep) {
                            match m.kind {
                                instructions::MountType::Secret => secrets.push(json!({"name": m.id.or(m.target).unwrap_or_default(), "required": m.required})),
                                instructions::MountType::Ssh => ssh.push(json!({"name": m.id.unwrap_or_else(|| "default".into())})),
                                _ => {}
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let name = stages
        .get(index)
        .and_then(|s| s.name.clone())
        .unwrap_or_default();
    Ok((
        json!({"name": name, "args": args, "secrets": secrets, "ssh": ssh, "sources": [filename]}),
        text,
    ))
}

/// A stage's description: the comment right above its FROM (`# name: text` or any text).
fn description_of(stage: &Stage) -> String {
    let comment = stage.comment.join(" ");
    match &stage.name {
        Some(name) => comment
            .strip_prefix(&format!("{name} "))
            .map(str::to_string)
            .unwrap_or(comment),
        None => comment,
    }
}
