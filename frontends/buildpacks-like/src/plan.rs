//! The plan: what an app's image is made of, as data. `--call plan` prints it; the build is only
//! the plan turned into LLB (`to_llb`). Field order is the JSON order, and every map is sorted,
//! so a plan prints the same way every time.

use std::collections::BTreeMap;

use serde::Serialize;

/// Where the app lives in the build and run images.
pub const APP_DIR: &str = "/app";
/// The non-root user the app runs as (`uid:gid`, numeric so the run image needs no passwd entry).
pub const APP_USER: &str = "1000:1000";
/// The user and group id of [`APP_USER`].
pub const APP_UID: u32 = 1000;

/// How to build and run one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The provider that recognized the app (`python`, `node`, `go`, `static`, `procfile`).
    pub provider: String,
    /// Every choice made, with the file or setting it came from.
    pub decisions: Vec<Decision>,
    /// The image the build steps run on; `None` when nothing is built (static, procfile).
    pub builder_image: Option<String>,
    /// The base of the final image.
    pub run_image: String,
    /// Environment of every build step (`project.toml` build env, other build args).
    pub build_env: BTreeMap<String, String>,
    /// The build steps, in order.
    pub steps: Vec<Step>,
    /// What of the context is the app (steps with input `.` and an app layer from `context`).
    pub source: SourceFilter,
    /// Paths a step leaves that go into the run image (dependencies), before the app.
    pub layers: Vec<Layer>,
    /// The app itself: the last layer of the image.
    pub app: Layer,
    /// The user the app runs as.
    pub user: String,
    /// The working directory of the app.
    pub workdir: String,
    /// Environment of the running app (added to the run image's).
    pub env: BTreeMap<String, String>,
    /// Directories put in front of the run image's `PATH`.
    pub path: Vec<String>,
    /// Ports the app listens on.
    pub ports: Vec<u16>,
    /// The Procfile's processes, in file order.
    pub processes: Vec<crate::project::Process>,
    /// The process that becomes the entrypoint.
    pub start: Start,
}

/// One choice and why it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// What was decided (`provider`, `python-version`, `package-manager`, `start`, ...).
    pub decision: String,
    /// The outcome.
    pub value: String,
    /// Why: the file, field or setting it came from.
    pub reason: String,
}

impl Decision {
    /// A decision.
    pub fn new(decision: &str, value: impl Into<String>, reason: impl Into<String>) -> Decision {
        Decision {
            decision: decision.to_string(),
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// One build step: copy `inputs` from the context into the working directory, then run
/// `commands` (one shell, `&&`-joined) with the cache mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The step's name (`install dependencies`, `build`).
    pub name: String,
    /// The step it runs on; `None` for the builder image.
    pub after: Option<String>,
    /// Context paths copied in first; `.` is the whole app (with include/exclude applied).
    pub inputs: Vec<String>,
    /// Files the frontend writes before the commands (e.g. a requirements list it derived).
    pub files: Vec<GeneratedFile>,
    /// Shell commands.
    pub commands: Vec<String>,
    /// Environment of the commands, besides the plan's `build_env`.
    pub env: BTreeMap<String, String>,
    /// Package-manager caches: kept between builds, never in the image.
    pub cache_mounts: Vec<CacheMount>,
    /// Whether the commands reach the network (`host`) or not (`none`).
    pub network: String,
}

/// A file the frontend writes into a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneratedFile {
    /// Absolute path.
    pub path: String,
    /// What it holds.
    pub contents: String,
}

/// A cache mount of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheMount {
    /// Where it is mounted.
    pub target: String,
    /// The cache's id, shared by builds of every app.
    pub id: String,
}

impl CacheMount {
    /// A cache mount at `target` with id `hoist-buildpacks/ID`.
    pub fn new(target: &str, id: &str) -> CacheMount {
        CacheMount {
            target: target.to_string(),
            id: format!("hoist-buildpacks/{id}"),
        }
    }
}

/// Files copied into the run image, owned by the app user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    /// `context`, or the name of the step they come from.
    pub from: String,
    /// The path in the source (`/` for the whole context).
    pub src: String,
    /// The path in the run image.
    pub dest: String,
}

/// Which files of the context are the app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceFilter {
    /// Only these paths (context patterns), if any.
    pub include: Vec<String>,
    /// Not these paths (context patterns).
    pub exclude: Vec<String>,
}

impl Layer {
    /// `path` of step `step`, at the same path in the run image.
    pub fn from_step(step: &str, path: &str) -> Layer {
        Layer {
            from: step.to_string(),
            src: path.to_string(),
            dest: path.to_string(),
        }
    }
}

/// The entrypoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Start {
    /// The Procfile process type, or `default` when it came from elsewhere.
    pub process: String,
    /// The shell command.
    pub command: String,
}

/// What the user set through build options, as opposed to what the tree says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The builder image (`BP_BUILDER_IMAGE` / `builder-image`).
    pub builder_image: Option<String>,
    /// The run base image (`BP_RUN_IMAGE` / `run-image`).
    pub run_image: Option<String>,
    /// The start command (`BP_START_COMMAND`).
    pub start_command: Option<String>,
    /// The Procfile process to start (`BP_PROCESS`).
    pub process: Option<String>,
    /// Provider ids in the order to try (`BP_PROVIDERS`, comma-separated).
    pub providers: Option<Vec<String>>,
    /// Other build arguments: the build steps' environment.
    pub build_args: BTreeMap<String, String>,
}

impl Settings {
    /// The settings in build options: `build-arg:BP_*` (or `--opt` keys `builder-image`,
    /// `run-image`); other build args become the build steps' environment.
    pub fn from_options(options: &hoist_frontend_sdk::Options) -> Settings {
        let mut args = options.build_args();
        let mut take = |arg: &str, opt: &str| {
            let from_arg = args.remove(arg).filter(|v| !v.is_empty());
            from_arg.or_else(|| {
                options
                    .get(opt)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            })
        };
        let builder_image = take("BP_BUILDER_IMAGE", "builder-image");
        let run_image = take("BP_RUN_IMAGE", "run-image");
        let start_command = take("BP_START_COMMAND", "start-command");
        let process = take("BP_PROCESS", "process");
        let providers = take("BP_PROVIDERS", "providers").map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        });
        Settings {
            builder_image,
            run_image,
            start_command,
            process,
            providers,
            build_args: args,
        }
    }
}

impl Plan {
    /// The plan as pretty JSON (what `--call plan` prints).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
    }

    /// The plan as compact JSON (the image label).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }
}
