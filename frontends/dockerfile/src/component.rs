//! The component's export: reads the Dockerfile and .dockerignore through the gateway, converts,
//! reports build-check warnings, solves, and answers subrequests (`outline`, `targets`, `check`).
//!
//! Like BuildKit, the Dockerfile comes from the `dockerfile` local context (only the file and
//! its `NAME.dockerignore` are transferred) and the ignore rules from `.dockerignore` of the
//! `context` local context.

use hoist_frontend_sdk::types::{Platform, ResolveMode};
use hoist_frontend_sdk::{local, solve, BuildResult, Error, Frontend, Options, Ref, Warning};

use crate::convert::{self, lint, ConvertError, ConvertOptions, ImageResolver, ResolvedImage};
use crate::subrequest;

/// The Dockerfile frontend.
pub struct DockerfileFrontend;

hoist_frontend_sdk::export_frontend!(DockerfileFrontend);

impl Frontend for DockerfileFrontend {
    fn build(options: Options) -> Result<BuildResult, Error> {
        let filename = options.filename().to_string();
        let (dockerfile, excludes) = read_inputs(&filename)?;
        let opts = ConvertOptions {
            filename: filename.clone(),
            build_args: options.build_args(),
            target: options.target().map(str::to_string),
            labels: options.labels(),
            platform: options.platforms()?.into_iter().next(),
            named_contexts: options.named_contexts(),
            excludes,
            no_cache: options.no_cache(),
        };
        if let Some(request) = options.request_id() {
            return subrequest::answer(request, &dockerfile, &opts, &mut GatewayResolver);
        }
        let converted = convert::convert(&dockerfile, &opts, &mut GatewayResolver)
            .map_err(|e| located(e, &filename))?;
        report_warnings(&converted.warnings, &filename);
        if let Some(error) = converted.checks.error_for(&converted.warnings) {
            return Err(located(error, &filename));
        }
        let reference = if converted.state.is_scratch() {
            Ref::empty()
        } else {
            solve(&converted.state.definition())?
        };
        Ok(BuildResult::single(
            reference,
            Some(converted.image.to_json()),
        ))
    }
}

/// Shows build-check warnings to the user through the gateway (only in the component: natively
/// there is no host to tell).
fn report_warnings(warnings: &[lint::Warning], filename: &str) {
    for w in warnings {
        let warning = gateway_warning(w, filename);
        #[cfg(target_arch = "wasm32")]
        hoist_frontend_sdk::warn(&warning);
        #[cfg(not(target_arch = "wasm32"))]
        drop(warning);
    }
}

/// A build-check warning as the WIT record: the detail as the message, the rule's description
/// as the detail line.
pub(crate) fn gateway_warning(w: &lint::Warning, filename: &str) -> Warning {
    let lines = (clamp(w.location.start_line), clamp(w.location.end_line));
    Warning {
        rule: Some(w.rule.to_string()),
        message: w.detail.clone(),
        detail: vec![w.description.to_string()],
        url: Some(w.url.clone()),
        location: Some(hoist_frontend_sdk::location(filename, &[lines])),
    }
}

/// Reads the Dockerfile and the context's ignore patterns.
fn read_inputs(filename: &str) -> Result<(String, Vec<String>), Error> {
    let ignore_name = format!("{filename}.dockerignore");
    let dockerfile_dir = local("dockerfile")
        .include([filename.to_string(), ignore_name.clone()])
        .description("[internal] load build definition from Dockerfile");
    let files = solve(&dockerfile_dir.state().definition())?;
    let text = files.read_file(filename).map_err(|e| {
        Error::new(format!(
            "failed to read the Dockerfile {filename:?}: {}",
            e.message
        ))
    })?;
    let dockerfile = String::from_utf8(text)
        .map_err(|_| Error::new(format!("{filename} is not valid UTF-8")))?;

    // A Dockerfile-specific ignore file wins over the context's .dockerignore.
    let ignore = match files.read_file(&ignore_name) {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            let context = local("context")
                .include([".dockerignore"])
                .description("[internal] load .dockerignore");
            solve(&context.state().definition())?
                .read_file(".dockerignore")
                .ok()
        }
    };
    let excludes = match ignore {
        Some(bytes) => hoist_patternmatcher::read_ignore_file(&String::from_utf8_lossy(&bytes)),
        None => Vec::new(),
    };
    Ok((dockerfile, excludes))
}

/// A conversion error as the WIT error, located in the Dockerfile.
pub(crate) fn located(e: ConvertError, filename: &str) -> Error {
    let err = Error::new(e.message);
    match e.location {
        Some(loc) => err.at(filename, clamp(loc.start_line), clamp(loc.end_line)),
        None => err,
    }
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Resolves base images through the gateway.
struct GatewayResolver;

impl ImageResolver for GatewayResolver {
    fn resolve(
        &mut self,
        reference: &str,
        platform: Option<&Platform>,
    ) -> Result<ResolvedImage, String> {
        let resolved =
            hoist_frontend_sdk::resolve_image_config(reference, platform, ResolveMode::Default)
                .map_err(|e| e.message)?;
        Ok(ResolvedImage {
            canonical_ref: resolved.canonical_ref,
            digest: resolved.digest,
            config: resolved.config,
        })
    }
}
