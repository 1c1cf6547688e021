//! The plan turned into LLB and an image config: nothing is decided here that the plan does
//! not already say.
//!
//! Build steps run on the builder image in `/app`, each on the step it follows; the run image
//! gets `/app` owned by the app user, then the dependency layers, then the app as the last
//! layer. The image config starts from the run base's and adds the plan's environment,
//! `PATH`, user, working directory, entrypoint, ports and labels.

use std::collections::HashMap;

use hoist_frontend_sdk::types::{CacheSharing, Chown, NetworkMode, OwnerId};
use hoist_frontend_sdk::{cache, copy, local, mkdir, mkfile, ImageConfig, Platform, State};
use serde_json::{json, Value};

use crate::plan::{Layer, Plan, APP_DIR, APP_UID};
use crate::Error;

/// The label holding the plan (compact JSON).
pub const LABEL_PLAN: &str = "io.hoist.buildpacks.plan";
/// The label holding the run base image, as resolved (pinned by digest).
pub const LABEL_RUN_IMAGE: &str = "io.hoist.buildpacks.run-image";
/// The label holding the builder image, as resolved.
pub const LABEL_BUILDER_IMAGE: &str = "io.hoist.buildpacks.builder-image";
/// The label naming the provider.
pub const LABEL_PROVIDER: &str = "io.hoist.buildpacks.provider";

/// `PATH` when the run base sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A base image made ready for LLB: its source state and what its config says.
#[derive(Debug, Clone)]
pub struct Base {
    /// The image's filesystem.
    pub state: State,
    /// The reference as resolved (e.g. `docker.io/library/python:3.12-slim@sha256:…`).
    pub pinned: String,
    /// Its OCI image config JSON, if it has one.
    pub config: Option<String>,
}

impl Base {
    /// The `KEY=VALUE` environment of the image config.
    fn env(&self) -> Vec<(String, String)> {
        let Some(json) = &self.config else {
            return Vec::new();
        };
        ImageConfig::parse(json)
            .map(|c| c.env())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| {
                e.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect()
    }
}

/// The final image's filesystem and config for `plan`.
pub fn build(
    plan: &Plan,
    builder: Option<&Base>,
    run: &Base,
    platform: Option<&Platform>,
) -> Result<(State, String), Error> {
    let steps = build_steps(plan, builder)?;
    let owner = Chown {
        user: Some(OwnerId::Id(APP_UID)),
        group: Some(OwnerId::Id(APP_UID)),
    };
    let mut image = run
        .state
        .file(mkdir(APP_DIR, 0o755).parents(true).chown(owner.clone()))
        .description(format!(
            "[buildpacks {}] run image: {APP_DIR} for user {}",
            plan.provider, plan.user
        ));
    let mut history = vec![format!("buildpacks: mkdir {APP_DIR} (user {})", plan.user)];
    for layer in plan.layers.iter().chain(std::iter::once(&plan.app)) {
        let is_app = std::ptr::eq(layer, &plan.app);
        let (source, src) = layer_source(plan, layer, &steps)?;
        let action = copy(&source, src, layer.dest.clone())
            .follow_symlinks(true)
            .dir_contents_only(true)
            .create_dest_path(true)
            .chown(owner.clone());
        let what = if is_app { "app" } else { "layer" };
        let line = format!("{what}: {} from {} {}", layer.dest, layer.from, layer.src);
        image = image
            .file(action)
            .description(format!("[buildpacks {}] {line}", plan.provider));
        history.push(format!("buildpacks: {line}"));
    }
    let config = image_config(plan, builder, run, platform, &history)?;
    Ok((image, config))
}

/// Each step's result, by name.
fn build_steps(plan: &Plan, builder: Option<&Base>) -> Result<HashMap<String, State>, Error> {
    let mut done: HashMap<String, State> = HashMap::new();
    if plan.steps.is_empty() {
        return Ok(done);
    }
    let builder = builder.ok_or_else(|| Error::Manifest {
        file: "plan".into(),
        message: "the plan has build steps but no builder image".into(),
    })?;
    let mut base_state = builder.state.dir(APP_DIR);
    for (k, v) in builder.env() {
        base_state = base_state.add_env(k, v);
    }
    let total = plan.steps.len();
    for (index, step) in plan.steps.iter().enumerate() {
        let mut state = match &step.after {
            None => base_state.clone(),
            Some(name) => done.get(name).cloned().ok_or_else(|| Error::Manifest {
                file: "plan".into(),
                message: format!(
                    "step {:?} follows {name:?}, which comes later or does not exist",
                    step.name
                ),
            })?,
        };
        let prefix = format!(
            "[buildpacks {} {}/{total}] {}",
            plan.provider,
            index + 1,
            step.name
        );
        if !step.inputs.is_empty() {
            let source = if step.inputs == ["."] {
                app_context(plan)
            } else {
                local("context")
                    .include(step.inputs.iter().cloned())
                    .description(format!("[buildpacks] load {}", step.inputs.join(", ")))
                    .state()
            };
            state = state
                .file(
                    copy(&source, "/", APP_DIR)
                        .follow_symlinks(true)
                        .dir_contents_only(true)
                        .create_dest_path(true),
                )
                .description(format!("{prefix}: copy {}", step.inputs.join(", ")));
        }
        for file in &step.files {
            let parent = file
                .path
                .rsplit_once('/')
                .map(|(p, _)| p)
                .filter(|p| !p.is_empty())
                .unwrap_or("/");
            state = state
                .file(mkdir(parent, 0o755).parents(true).then(mkfile(
                    file.path.clone(),
                    0o644,
                    file.contents.clone(),
                )))
                .description(format!("{prefix}: write {}", file.path));
        }
        let script = step.commands.join(" && ");
        let mut exec = state
            .run(["/bin/sh", "-c", script.as_str()])
            .description(format!("{prefix}: {script}"));
        for (k, v) in plan.build_env.iter().chain(&step.env) {
            exec = exec.env(k.clone(), v.clone());
        }
        if step.network == "host" {
            exec = exec.network(NetworkMode::Host);
        }
        for mount in &step.cache_mounts {
            exec = exec.with_mount(
                cache(mount.target.clone())
                    .id(mount.id.clone())
                    .sharing(CacheSharing::Locked),
            );
        }
        done.insert(step.name.clone(), exec.root());
    }
    Ok(done)
}

/// The app's files from the context, filtered by the plan's include/exclude patterns.
fn app_context(plan: &Plan) -> State {
    let mut source = local("context").exclude(plan.source.exclude.iter().cloned());
    if !plan.source.include.is_empty() {
        source = source.include(plan.source.include.iter().cloned());
    }
    source.description("[buildpacks] load the app").state()
}

/// Where a layer's files come from: the context or a step, and the path in it.
fn layer_source(
    plan: &Plan,
    layer: &Layer,
    steps: &HashMap<String, State>,
) -> Result<(State, String), Error> {
    if layer.from == "context" {
        return Ok((app_context(plan), layer.src.clone()));
    }
    let state = steps
        .get(&layer.from)
        .cloned()
        .ok_or_else(|| Error::Manifest {
            file: "plan".into(),
            message: format!(
                "a layer comes from step {:?}, which the {} plan does not have",
                layer.from, plan.provider
            ),
        })?;
    Ok((state, layer.src.clone()))
}

/// The run base's config with the plan's runtime settings, labels and history.
fn image_config(
    plan: &Plan,
    builder: Option<&Base>,
    run: &Base,
    platform: Option<&Platform>,
    history: &[String],
) -> Result<String, Error> {
    let mut config = match &run.config {
        Some(json) => ImageConfig::parse(json).map_err(|e| Error::Manifest {
            file: run.pinned.clone(),
            message: e.message,
        })?,
        None => ImageConfig::new(platform),
    };
    let base_path = config
        .env()
        .iter()
        .find_map(|e| e.strip_prefix("PATH=").map(str::to_string))
        .unwrap_or_else(|| DEFAULT_PATH.to_string());
    for (k, v) in &plan.env {
        config.set_env(k, v);
    }
    let mut path = plan.path.clone();
    path.push(base_path);
    config.set_env("PATH", &path.join(":"));
    config
        .set_user(&plan.user)
        .set_working_dir(&plan.workdir)
        .set_entrypoint(&["/bin/sh", "-c", plan.start.command.as_str()])
        .set_cmd::<&str>(&[]);
    for port in &plan.ports {
        config.add_exposed_port(&format!("{port}/tcp"));
    }
    config
        .set_label(LABEL_PROVIDER, &plan.provider)
        .set_label(LABEL_RUN_IMAGE, &run.pinned)
        .set_label(LABEL_PLAN, &plan.to_json());
    if let Some(b) = builder.filter(|_| !plan.steps.is_empty()) {
        config.set_label(LABEL_BUILDER_IMAGE, &b.pinned);
    }
    let mut doc: Value = serde_json::from_str(&config.to_json()).map_err(|e| Error::Manifest {
        file: "image config".into(),
        message: e.to_string(),
    })?;
    if let Some(obj) = doc.as_object_mut() {
        let entry = obj.entry("history").or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.extend(
                history
                    .iter()
                    .map(|line| json!({ "created_by": line, "comment": "hoist buildpacks" })),
            );
        }
    }
    Ok(doc.to_string())
}
