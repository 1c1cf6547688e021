//! The component's export: reads the context's manifests through the gateway, makes the plan,
//! answers `--call plan` with it, or resolves the builder and run images and solves the plan's
//! LLB. Only compiled for the WebAssembly component.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use hoist_frontend_sdk::types::ResolveMode;
use hoist_frontend_sdk::{
    image, local, log, resolve_image_config, solve, source, BuildResult, Error as WitError,
    Frontend, LogLevel, Options, Platform, Ref,
};

use crate::providers::DETECTION_FILES;
use crate::to_llb::{self, Base};
use crate::{make_plan, Error, Plan, Settings, SourceTree, PLAN_REQUEST};

/// The buildpacks-like frontend.
pub struct Buildpacks;

hoist_frontend_sdk::export_frontend!(Buildpacks);

impl Frontend for Buildpacks {
    fn build(options: Options) -> Result<BuildResult, WitError> {
        let settings = Settings::from_options(&options);
        let tree = GatewayTree::load()?;
        let plan = make_plan(&tree, &settings).map_err(located)?;
        if let Some(request) = options.request_id() {
            return answer(request, &plan);
        }
        for d in &plan.decisions {
            log(
                LogLevel::Info,
                &format!("buildpacks: {} = {} ({})", d.decision, d.value, d.reason),
            );
        }
        let platform = options.platforms()?.into_iter().next();
        let named = options.named_contexts();
        let builder = match &plan.builder_image {
            Some(reference) if !plan.steps.is_empty() => Some(resolve_base(
                "builder",
                reference,
                &named,
                platform.as_ref(),
            )?),
            _ => None,
        };
        let run = resolve_base("run", &plan.run_image, &named, platform.as_ref())?;
        let (state, config) =
            to_llb::build(&plan, builder.as_ref(), &run, platform.as_ref()).map_err(located)?;
        let result = solve(&state.definition())?;
        Ok(BuildResult::single(result, Some(config)))
    }
}

/// Answers a subrequest: only `frontend.plan`.
fn answer(request: &str, plan: &Plan) -> Result<BuildResult, WitError> {
    if request != PLAN_REQUEST {
        return Err(WitError::new(format!(
            "unsupported subrequest {request:?} (the buildpacks frontend answers: {PLAN_REQUEST}, i.e. --call plan)"
        )));
    }
    let json = plan.to_json_pretty();
    Ok(BuildResult::new()
        .with_metadata("result.json", json.clone())
        .with_metadata("result.txt", format!("{json}\n")))
}

/// A plan error as the WIT error, located in the file it is about where there is one.
fn located(e: Error) -> WitError {
    let message = e.to_string();
    match e {
        Error::Procfile { line, .. } => {
            let line = u32::try_from(line).unwrap_or(u32::MAX);
            WitError::new(message).at("Procfile", line, line)
        }
        _ => WitError::new(message),
    }
}

/// A base image: a named context of that name if the user gave one, else the reference.
fn resolve_base(
    role: &str,
    reference: &str,
    named: &BTreeMap<String, String>,
    platform: Option<&Platform>,
) -> Result<Base, WitError> {
    let target = match named.get(reference) {
        Some(value) if value.starts_with("oci-layout://") => value.clone(),
        Some(value) => match value.strip_prefix("docker-image://") {
            Some(image_ref) => image_ref.to_string(),
            None => {
                return Err(WitError::new(format!(
                    "the {role} image {reference:?} is a named context with an unsupported value {value:?} \
                     (want docker-image://REF or oci-layout://PATH[:TAG])"
                )))
            }
        },
        None => reference.to_string(),
    };
    let resolved = resolve_image_config(&target, platform, ResolveMode::Default).map_err(|e| {
        WitError::new(format!(
            "failed to resolve the {role} image {reference:?}: {}; set BP_{}_IMAGE, or bind it to a \
             local image with --build-context {reference}=oci-layout://PATH:TAG",
            e.message,
            role.to_ascii_uppercase()
        ))
    })?;
    let pinned = if resolved.canonical_ref.contains('@') {
        resolved.canonical_ref.clone()
    } else {
        format!("{}@{}", resolved.canonical_ref, resolved.digest)
    };
    let mut op = if pinned.starts_with("oci-layout://") {
        source(pinned.clone())
    } else {
        image(pinned.clone())
    };
    op = op.description(format!("[buildpacks] {role} image {reference}"));
    if let Some(p) = platform {
        op = op.platform(p.clone());
    }
    Ok(Base {
        state: op.state(),
        pinned,
        config: Some(resolved.config),
    })
}

/// The context as detection sees it: only [`DETECTION_FILES`] are transferred; the whole
/// context is listed only to explain a tree nothing recognized.
struct GatewayTree {
    files: Ref,
    top_level: OnceCell<Vec<String>>,
}

impl GatewayTree {
    fn load() -> Result<GatewayTree, WitError> {
        let def = local("context")
            .include(DETECTION_FILES.iter().copied())
            .description("[internal] load the app's manifests")
            .state()
            .definition();
        Ok(GatewayTree {
            files: solve(&def)?,
            top_level: OnceCell::new(),
        })
    }
}

/// The file-type bits of a mode, and the directory type.
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;

impl SourceTree for GatewayTree {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.files.read_file(path).ok()
    }

    /// By `stat`, not by reading: lock files are only looked at, and can be larger than a read.
    fn has_file(&self, path: &str) -> bool {
        const S_IFREG: u32 = 0o100_000;
        self.files
            .stat(path)
            .is_ok_and(|s| s.mode & S_IFMT == S_IFREG)
    }

    fn is_dir(&self, path: &str) -> bool {
        self.files
            .stat(path)
            .is_ok_and(|s| s.mode & S_IFMT == S_IFDIR)
    }

    fn top_level(&self) -> Vec<String> {
        self.top_level
            .get_or_init(|| {
                let def = local("context")
                    .description("[internal] list the build context")
                    .state()
                    .definition();
                let Ok(whole) = solve(&def) else {
                    return Vec::new();
                };
                let mut names: Vec<String> = whole
                    .read_dir("/", None)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| {
                        let name = s.path.trim_start_matches('/').to_string();
                        if s.mode & S_IFMT == S_IFDIR {
                            format!("{name}/")
                        } else {
                            name
                        }
                    })
                    .collect();
                names.sort();
                names
            })
            .clone()
    }
}
