//! Dockerfile → LLB: walks the stages a target needs and turns each instruction into SDK states
//! plus the image config the final stage accumulates.
//!
//! This module owns Dockerfile *semantics* (stage graph, variable scoping, what each instruction
//! does to the filesystem and the config); syntax is the parser's and instructions' job, and
//! talking to the host goes through [`ImageResolver`] so the conversion is testable natively.
//!
//! Rules carried over from BuildKit: only the stages the target needs are converted; build args
//! declared before the first `FROM` are visible in `FROM` lines and are re-declared with a bare
//! `ARG NAME` inside a stage; `ENV` wins over `ARG` of the same name; `RUN` sees the stage's args
//! in its environment but the image config does not; base images are pinned by digest (and
//! resolved once per reference and platform); a stage name only refers to stages defined before
//! it (`FROM node AS node` is the image); `--target` names a stage, never an index.
//!
//! Build checks ([`lint`]) ride along: [`convert`] returns the warnings of the stages it
//! converted, [`check`] converts every stage to answer `--call check`.

mod dispatch;
mod remote;
pub mod image;
pub mod lint;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use hoist_frontend_sdk::llb::{self, State};
use hoist_frontend_sdk::types::Platform;

use crate::instructions::{self, Stage};
use crate::parser::{self, Location};
use crate::shell::Lexer;
use image::Image;

/// Options of one conversion (from the frontend's build options).
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// The Dockerfile's name as the user knows it (for locations).
    pub filename: String,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--label` values added to the final image.
    pub labels: BTreeMap<String, String>,
    /// Target platform (default: the host's, decided by the engine).
    pub platform: Option<Platform>,
    /// Named contexts (`context:NAME` options): NAME → `docker-image://…`, `local:NAME`, ….
    pub named_contexts: BTreeMap<String, String>,
    /// Exclude patterns for the build context (from .dockerignore).
    pub excludes: Vec<String>,
    /// `--no-cache`: every step re-runs.
    pub no_cache: bool,
}

/// An image resolved by the host.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// Fully qualified reference.
    pub canonical_ref: String,
    /// Manifest digest.
    pub digest: String,
    /// Image config JSON.
    pub config: String,
}

/// Resolves base images (the gateway in the component, a table in tests).
pub trait ImageResolver {
    /// Resolves `reference` for `platform`.
    fn resolve(
        &mut self,
        reference: &str,
        platform: Option<&Platform>,
    ) -> Result<ResolvedImage, String>;
}

/// A conversion failure, located in the Dockerfile where it applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConvertError {
    /// What went wrong.
    pub message: String,
    /// The lines concerned.
    pub location: Option<Location>,
}

impl ConvertError {
    /// An error at `location`.
    pub fn at(location: Location, message: impl Into<String>) -> ConvertError {
        ConvertError {
            message: message.into(),
            location: Some(location),
        }
    }
}

impl From<parser::Error> for ConvertError {
    fn from(e: parser::Error) -> ConvertError {
        ConvertError {
            message: e.kind.to_string(),
            location: Some(e.location),
        }
    }
}

/// The result of a conversion: the final stage's filesystem and image config.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The target stage's filesystem.
    pub state: State,
    /// The target stage's image config.
    pub image: Image,
    /// Index of the target stage.
    pub target: usize,
    /// Build-check warnings (those the `# check=` directive keeps), in line order.
    pub warnings: Vec<lint::Warning>,
    /// The build checks configuration in effect (`# check=` or `BUILDKIT_DOCKERFILE_CHECK`).
    pub checks: lint::CheckConfig,
}

/// A converted stage.
#[derive(Debug, Clone)]
struct StageResult {
    state: State,
    image: Image,
}

/// Parses `dockerfile` and converts the target stage (and what it needs) to LLB.
///
/// Build checks run along the way; their warnings come back in [`Converted::warnings`].
pub fn convert(
    dockerfile: &str,
    opts: &ConvertOptions,
    resolver: &mut dyn ImageResolver,
) -> Result<Converted, ConvertError> {
    let parsed = parser::parse(dockerfile)?;
    let (meta_args, stages) = instructions::parse_stages(&parsed.ast)?;
    let checks = lint::CheckConfig::from_parse(&parsed, opts)?;
    let mut converter = Converter::new(opts, resolver, Lexer::new(parsed.escape_token), stages);
    converter.declare_global_args(&meta_args)?;
    let target = converter.target_index()?;
    let mut result = converter.convert_stage(target)?;
    for (key, value) in &opts.labels {
        result
            .image
            .config
            .labels
            .insert(key.clone(), value.clone());
    }
    let mut warnings = lint::static_checks(&parsed);
    warnings.extend(converter.warnings.take());
    Ok(Converted {
        state: result.state,
        image: result.image,
        target,
        warnings: checks.filter(warnings),
        checks,
    })
}

/// Runs the build checks (`--call check`): the static rules plus those found while converting
/// every stage, filtered by the `# check=` directive.
pub fn check(
    dockerfile: &str,
    opts: &ConvertOptions,
    resolver: &mut dyn ImageResolver,
) -> Result<lint::Report, ConvertError> {
    let parsed = parser::parse(dockerfile)?;
    let (meta_args, stages) = instructions::parse_stages(&parsed.ast)?;
    let checks = lint::CheckConfig::from_parse(&parsed, opts)?;
    let count = stages.len();
    let mut converter = Converter::new(opts, resolver, Lexer::new(parsed.escape_token), stages);
    converter.declare_global_args(&meta_args)?;
    for index in 0..count {
        converter.convert_stage(index)?;
    }
    let mut warnings = lint::static_checks(&parsed);
    warnings.extend(converter.warnings.take());
    Ok(lint::Report {
        warnings: checks.filter(warnings),
        config: checks,
    })
}

/// Conversion state shared by all stages.
struct Converter<'a> {
    opts: &'a ConvertOptions,
    resolver: &'a mut dyn ImageResolver,
    lexer: Lexer,
    stages: Vec<Stage>,
    /// Build args declared before the first FROM, with their values.
    global_args: Vec<(String, String)>,
    /// Names of the build args declared before the first FROM (with or without a value), and
    /// the predefined platform args.
    global_declared: BTreeSet<String>,
    /// Base images already resolved, by reference and platform.
    resolved: HashMap<(String, Option<String>), ResolvedImage>,
    /// Warnings found while expanding words (`UndefinedVar`, `UndefinedArgInFrom`).
    warnings: RefCell<Vec<lint::Warning>>,
    /// Converted stages, by index.
    done: Vec<Option<StageResult>>,
    /// Stages being converted (to report cycles instead of looping).
    in_progress: Vec<bool>,
    /// The build context, shared by every COPY/ADD so it syncs once.
    context: State,
}

impl<'a> Converter<'a> {
    fn new(
        opts: &'a ConvertOptions,
        resolver: &'a mut dyn ImageResolver,
        lexer: Lexer,
        stages: Vec<Stage>,
    ) -> Self {
        let count = stages.len();
        let mut context = llb::local("context").exclude(opts.excludes.iter().cloned());
        context = context.description("[internal] load build context");
        Converter {
            opts,
            resolver,
            lexer,
            stages,
            global_args: Vec::new(),
            global_declared: BTreeSet::new(),
            resolved: HashMap::new(),
            warnings: RefCell::new(Vec::new()),
            done: vec![None; count],
            in_progress: vec![false; count],
            context: context.state(),
        }
    }

    /// Evaluates the ARGs before the first FROM: build args override defaults.
    fn declare_global_args(
        &mut self,
        meta_args: &[instructions::MetaArg],
    ) -> Result<(), ConvertError> {
        for (key, value) in predefined_args(self.opts.platform.as_ref()) {
            self.global_declared.insert(key.clone());
            self.global_args.push((key, value));
        }
        for meta in meta_args {
            for arg in &meta.arg.args {
                self.global_declared.insert(arg.key.clone());
                let value = match (self.opts.build_args.get(&arg.key), &arg.value) {
                    (Some(given), _) => Some(given.clone()),
                    (None, Some(default)) => {
                        Some(self.expand_with(default, &self.global_args.clone(), meta.location)?)
                    }
                    (None, None) => None,
                };
                if let Some(value) = value {
                    self.global_args.push((arg.key.clone(), value));
                }
            }
        }
        Ok(())
    }

    /// The stage to build: `--target` by name (never by index, as BuildKit), else the last.
    fn target_index(&self) -> Result<usize, ConvertError> {
        match &self.opts.target {
            Some(target) => self.stage_named(target).ok_or_else(|| ConvertError {
                message: format!("target stage {target:?} could not be found"),
                location: None,
            }),
            None => self
                .stages
                .len()
                .checked_sub(1)
                .ok_or_else(|| ConvertError {
                    message: "the Dockerfile has no FROM instruction".into(),
                    location: None,
                }),
        }
    }

    /// The value of a global build arg (for a bare `ARG NAME` in a stage).
    fn global_value(&self, name: &str) -> Option<String> {
        self.global_args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// A stage by name (case-insensitive).
    fn stage_named(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
    }

    /// Converts stage `index`, converting the stages it depends on first.
    fn convert_stage(&mut self, index: usize) -> Result<StageResult, ConvertError> {
        if let Some(done) = &self.done[index] {
            return Ok(done.clone());
        }
        let location = self.stages[index].location;
        if self.in_progress[index] {
            let name = self.stages[index]
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{index}"));
            return Err(ConvertError::at(
                location,
                format!("circular dependency detected on stage: {name}"),
            ));
        }
        self.in_progress[index] = true;
        let stage = self.stages[index].clone();
        let mut builder = dispatch::StageBuilder::start(self, index, &stage)?;
        for command in &stage.commands {
            builder.dispatch(self, command)?;
        }
        let result = builder.finish();
        self.in_progress[index] = false;
        self.done[index] = Some(result.clone());
        Ok(result)
    }

    /// Expands `word` with the variables in `env`, reporting under `rule` the names it used
    /// that are unset and not `declared`.
    fn expand_checked(
        &self,
        word: &str,
        env: &[(String, String)],
        declared: &dyn Fn(&str) -> bool,
        rule: &'static lint::Rule,
        location: Location,
    ) -> Result<String, ConvertError> {
        let (value, _, unmatched) = self
            .lexer
            .process_word_with_matches(word, &env)
            .map_err(|e| ConvertError::at(location, format!("failed to expand {word:?}: {e}")))?;
        for name in unmatched.iter().filter(|n| !declared(n)) {
            let known = env.iter().map(|(k, _)| k.as_str());
            let warning = lint::Warning::undefined(rule, name, known, location);
            self.warnings.borrow_mut().push(warning);
        }
        Ok(value)
    }

    /// Expands a word of a `FROM` line with the global build args.
    fn expand_global(&self, word: &str, location: Location) -> Result<String, ConvertError> {
        let declared = |name: &str| self.global_declared.contains(name);
        let rule = &lint::UNDEFINED_ARG_IN_FROM;
        self.expand_checked(word, &self.global_args, &declared, rule, location)
    }

    /// Expands `word` with the variables in `env` (no checks).
    fn expand_with(
        &self,
        word: &str,
        env: &[(String, String)],
        location: Location,
    ) -> Result<String, ConvertError> {
        self.lexer
            .process_word(word, &env)
            .map_err(|e| ConvertError::at(location, format!("failed to expand {word:?}: {e}")))
    }

    /// Resolves a base image (once per reference and platform) and makes its source op, pinned
    /// by digest and located at `location` (the caller describes it).
    fn resolve_image(
        &mut self,
        reference: &str,
        platform: Option<&Platform>,
        location: Location,
    ) -> Result<StageResult, ConvertError> {
        let key = (
            reference.to_string(),
            platform.map(hoist_frontend_sdk::format_platform),
        );
        let resolved = match self.resolved.get(&key) {
            Some(resolved) => resolved.clone(),
            None => {
                let resolved = self.resolver.resolve(reference, platform).map_err(|e| {
                    let message = format!("failed to resolve base image {reference:?}: {e}");
                    ConvertError::at(location, message)
                })?;
                self.resolved.insert(key, resolved.clone());
                resolved
            }
        };
        let pinned = if resolved.canonical_ref.contains('@') {
            resolved.canonical_ref.clone()
        } else {
            format!("{}@{}", resolved.canonical_ref, resolved.digest)
        };
        let image = Image::parse(&resolved.config).map_err(|e| ConvertError::at(location, e))?;
        // An OCI layout named context resolves to `oci-layout://PATH@DIGEST`; the rest are images.
        let source = if pinned.starts_with("oci-layout://") {
            llb::source(pinned)
        } else {
            llb::image(pinned)
        };
        let mut source = source.location(self.opts.filename.clone(), &[dispatch::lines(location)]);
        if let Some(p) = platform {
            source = source.platform(p.clone());
        }
        Ok(StageResult {
            state: source.state(),
            image,
        })
    }
}

/// Whether `name` is one of the platform arguments BuildKit predefines.
fn is_predefined_arg(name: &str) -> bool {
    let rest = name
        .strip_prefix("BUILD")
        .or_else(|| name.strip_prefix("TARGET"));
    matches!(rest, Some("PLATFORM" | "OS" | "ARCH" | "VARIANT"))
}

/// The platform arguments BuildKit predefines (`TARGETPLATFORM`, `TARGETOS`, …).
fn predefined_args(platform: Option<&Platform>) -> Vec<(String, String)> {
    let host = Platform {
        os: "linux".into(),
        architecture: host_arch().into(),
        variant: None,
    };
    let target = platform.cloned().unwrap_or_else(|| host.clone());
    let mut args = Vec::new();
    for (prefix, p) in [("BUILD", &host), ("TARGET", &target)] {
        let spec = hoist_frontend_sdk::format_platform(p);
        args.push((format!("{prefix}PLATFORM"), spec));
        args.push((format!("{prefix}OS"), p.os.clone()));
        args.push((format!("{prefix}ARCH"), p.architecture.clone()));
        args.push((
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        ));
    }
    args
}

/// The host's architecture in OCI terms. A wasm guest cannot see the host, so this is the
/// architecture the engine reports through the `platform` option, else amd64.
fn host_arch() -> &'static str {
    "amd64"
}
