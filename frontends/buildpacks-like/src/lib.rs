//! The buildpacks-like frontend: a runnable image from a source tree with no Dockerfile.
//!
//! It owns detection (which kind of app a tree is), the plan (what the image is made of and
//! why) and turning the plan into LLB; it reads the context only through a read-only
//! [`SourceTree`] and touches nothing of the host beyond the SDK's gateway calls (in
//! `component`, compiled only for the WebAssembly component).
//!
//! # How a build goes
//!
//! 1. The context's manifest files ([`providers::DETECTION_FILES`]) are read; `project.toml`
//!    and `Procfile` are parsed ([`project`]).
//! 2. Providers are tried in order (python, node, go, static, procfile; `project.toml`'s
//!    `[[io.buildpacks.group]]` or `BP_PROVIDERS` reorder them): the first match wins and every
//!    other match is recorded as a decision, so an ambiguous tree says what was passed over.
//! 3. The winner drafts steps; [`make_plan`] adds the start command (`BP_START_COMMAND`, else
//!    the Procfile's `web`, `worker` or first process, else the provider's guess), images,
//!    environment and include/exclude into a [`Plan`].
//! 4. `--call plan` prints the plan as JSON; a build turns it into LLB ([`to_llb`]).
//!
//! # Example
//!
//! ```
//! use hoist_buildpacks::{make_plan, MemTree, Settings};
//!
//! let tree = MemTree::new()
//!     .with("requirements.txt", "flask==3.0.0\n")
//!     .with("Procfile", "web: flask run --host 0.0.0.0\n");
//! let plan = make_plan(&tree, &Settings::default()).unwrap();
//! assert_eq!(plan.provider, "python");
//! assert_eq!(plan.start.command, "flask run --host 0.0.0.0");
//! assert_eq!(plan.steps[0].inputs, ["requirements.txt"]);
//! ```
//!
//! # Guarantees
//!
//! - A dependency step's inputs are manifests and lock files only: changing app code leaves
//!   its cache key alone. The app is the last layer of the image.
//! - Package-manager caches are cache mounts, never image content.
//! - The app runs as the numeric user [`plan::APP_USER`], not root, from [`plan::APP_DIR`].
//! - The same tree and settings always give the same plan, byte for byte.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod plan;
pub mod project;
pub mod providers;
pub mod to_llb;
mod tree;

#[cfg(target_arch = "wasm32")]
mod component;

pub use error::Error;
pub use plan::{Plan, Settings};
pub use providers::ProviderId;
pub use tree::{MemTree, SourceTree};

use plan::{Decision, Start, APP_DIR, APP_USER};
use project::{Process, ProjectDescriptor};

/// The subrequest (`--call plan`) that prints the plan instead of building.
pub const PLAN_REQUEST: &str = "frontend.plan";

/// Makes the plan for `tree` under `settings`.
pub fn make_plan(tree: &dyn SourceTree, settings: &Settings) -> Result<Plan, Error> {
    let project = match tree.read_text("project.toml") {
        Some(text) => project::parse_project_toml(&text)?,
        None => ProjectDescriptor::default(),
    };
    let processes = match tree.read_text("Procfile") {
        Some(text) => project::parse_procfile(&text)?,
        None => Vec::new(),
    };
    let mut decisions = Vec::new();
    let provider = detect(tree, settings, &project, &mut decisions)?;
    let draft = provider.draft(tree)?;
    decisions.extend(draft.decisions.iter().cloned());

    let start = start_command(settings, &processes, &draft, provider, &mut decisions)?;
    let builder_image = match (&settings.builder_image, &draft.builder_image) {
        (_, None) => None,
        (Some(image), Some(_)) => {
            decisions.push(Decision::new(
                "builder-image",
                image,
                "build-arg BP_BUILDER_IMAGE",
            ));
            Some(image.clone())
        }
        (None, Some(image)) => {
            decisions.push(Decision::new(
                "builder-image",
                image,
                format!("{} default", provider.name()),
            ));
            Some(image.clone())
        }
    };
    let run_image = match &settings.run_image {
        Some(image) => {
            decisions.push(Decision::new("run-image", image, "build-arg BP_RUN_IMAGE"));
            image.clone()
        }
        None => {
            decisions.push(Decision::new(
                "run-image",
                &draft.run_image,
                format!("{} default", provider.name()),
            ));
            draft.run_image.clone()
        }
    };

    let mut source = plan::SourceFilter {
        include: Vec::new(),
        exclude: providers::strings(providers::ALWAYS_EXCLUDED),
    };
    source.exclude.extend(draft.source_excludes.iter().cloned());
    if !project.include.is_empty() {
        decisions.push(Decision::new(
            "include",
            project.include.join(", "),
            "project.toml include",
        ));
        source.include = project.include.clone();
    }
    if !project.exclude.is_empty() {
        decisions.push(Decision::new(
            "exclude",
            project.exclude.join(", "),
            "project.toml exclude",
        ));
        source.exclude.extend(project.exclude.iter().cloned());
    }
    let mut build_env = project.build_env.clone();
    build_env.extend(settings.build_args.clone());
    let mut env = draft.env;
    env.insert("HOME".into(), APP_DIR.into());
    Ok(Plan {
        provider: provider.name().to_string(),
        decisions,
        builder_image,
        run_image,
        build_env,
        steps: draft.steps,
        source,
        layers: draft.layers,
        app: draft.app,
        user: APP_USER.into(),
        workdir: APP_DIR.into(),
        env,
        path: draft.path,
        ports: draft.ports,
        processes,
        start,
    })
}

/// Tries the providers in order; the first match wins, later matches are recorded.
fn detect(
    tree: &dyn SourceTree,
    settings: &Settings,
    project: &ProjectDescriptor,
    decisions: &mut Vec<Decision>,
) -> Result<ProviderId, Error> {
    let (ids, origin) = match (&settings.providers, project.providers.is_empty()) {
        (Some(ids), _) => (ids.clone(), "build-arg BP_PROVIDERS"),
        (None, false) => (
            project.providers.clone(),
            "project.toml [[io.buildpacks.group]]",
        ),
        (None, true) => (Vec::new(), "the default order"),
    };
    let order: Vec<ProviderId> = if ids.is_empty() {
        providers::DEFAULT_ORDER.to_vec()
    } else {
        ids.iter()
            .map(|id| {
                ProviderId::parse(id).ok_or_else(|| Error::UnknownProvider {
                    id: id.clone(),
                    origin: origin.to_string(),
                    known: ProviderId::known(),
                })
            })
            .collect::<Result<_, _>>()?
    };
    let order_text = order
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ");
    let matches: Vec<(ProviderId, String)> = order
        .iter()
        .filter_map(|p| p.detect(tree).map(|files| (*p, files)))
        .collect();
    let Some((chosen, files)) = matches.first().cloned() else {
        return Err(Error::NothingDetected {
            found: tree.top_level(),
            looked_for: order
                .iter()
                .map(|p| (p.name().to_string(), p.looked_for().to_string()))
                .collect(),
        });
    };
    decisions.push(Decision::new(
        "provider",
        chosen.name(),
        format!("{files} (first match in {origin}: {order_text})"),
    ));
    for (other, files) in &matches[1..] {
        decisions.push(Decision::new(
            "also-matched",
            other.name(),
            format!("{files}; not used: {} comes first", chosen.name()),
        ));
    }
    Ok(chosen)
}

/// The entrypoint: `BP_START_COMMAND`, else a Procfile process (`BP_PROCESS`, else `web`,
/// `worker`, the first), else the provider's guess.
fn start_command(
    settings: &Settings,
    processes: &[Process],
    draft: &providers::Draft,
    provider: ProviderId,
    decisions: &mut Vec<Decision>,
) -> Result<Start, Error> {
    if let Some(command) = &settings.start_command {
        decisions.push(Decision::new(
            "start",
            command,
            "build-arg BP_START_COMMAND",
        ));
        return Ok(Start {
            process: "default".into(),
            command: command.clone(),
        });
    }
    let chosen = match &settings.process {
        Some(name) => Some(processes.iter().find(|p| &p.name == name).ok_or_else(|| {
            Error::UnknownProcess {
                name: name.clone(),
                defined: processes
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })?),
        None => project::default_process(processes),
    };
    if let Some(process) = chosen {
        let why = if settings.process.is_some() {
            "build-arg BP_PROCESS"
        } else {
            "web, then worker, then the first"
        };
        decisions.push(Decision::new(
            "start",
            &process.command,
            format!("Procfile {} ({why})", process.name),
        ));
        return Ok(Start {
            process: process.name.clone(),
            command: process.command.clone(),
        });
    }
    match &draft.default_start {
        Some((command, reason)) => {
            decisions.push(Decision::new("start", command, reason));
            Ok(Start {
                process: "default".into(),
                command: command.clone(),
            })
        }
        None => Err(Error::MissingStart {
            provider: provider.name().into(),
            looked_for: draft.start_looked_for.into(),
            example: draft.start_example.into(),
        }),
    }
}
