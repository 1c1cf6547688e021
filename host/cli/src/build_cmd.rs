//! `hoist build`: maps the resolved flags onto an engine request, runs it with a progress
//! display, and reports the result (stdout for subrequests, metadata file, iidfile, `--quiet`).
//!
//! A failed build ends with a failure report printed after everything else: the failing step,
//! its Dockerfile location with the source lines, the error and the step's last log lines.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use hoist_engine::{BuildOutcome, BuildRequest, ContextSource, Engine, EngineConfig, ExportKind, ExportSpec, FrontendChoice, Progress, Secrets};

use crate::flags::{self, BuildArgs, CallMode, DockerfileSource, EngineChoice, OutputDest};
use crate::progress::{FailureReport, Renderer};

/// Runs `hoist build` with resolved flags.
pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let state_dir = match &args.engine {
        EngineChoice::Embedded { state_dir } => state_dir,
        EngineChoice::Remote { address, tls } => return crate::remote::build(&args, address, tls).await,
    };
    let mut config = EngineConfig::new(state_dir.clone());
    config.frontends = hoist_engine::FrontendSettings {
        policy: hoist_engine::FrontendPolicy::parse(&args.allow_frontends).map_err(anyhow::Error::msg)?,
        offline: args.frontend_offline,
    };
    let engine = Engine::open(config)?;
    let scratch = tempfile::Builder::new().prefix("cli").tempdir_in(engine.state_dir().join("tmp")).context("making a scratch directory")?;
    let (request, stdout_exports) = request_of(&args, scratch.path())?;
    let dockerfile_path = dockerfile_path(&args, scratch.path());

    let log_file = args.log_file.as_deref().map(crate::progress::LogFile::create).transpose()?;
    let (progress, events) = Progress::channel();
    let renderer = Renderer::spawn(args.progress, events, log_file);
    if let Some(why) = frontend_choice_note(&args) {
        progress.send(hoist_engine::Event::FrontendLog { message: why });
    }
    let result = engine.build(request, progress).await;
    let mut report = renderer.finish().await;

    match result {
        Ok(outcome) => {
            let code = finish_success(&args, &outcome, &stdout_exports)?;
            crate::explain_out::finish(&args, &mut report, None)?;
            Ok(code)
        }
        Err(err) => {
            // The failure report comes last, after the explanation and everything else.
            let failure = FailureReport::new(&err, &report, dockerfile_path.as_deref());
            crate::explain_out::finish(&args, &mut report, Some(&failure))?;
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Prints and writes what a successful build produced.
pub(crate) fn finish_success(args: &BuildArgs, outcome: &BuildOutcome, stdout_exports: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    if args.call != CallMode::Build {
        let key = if args.progress == flags::ProgressMode::RawJson { "result.json" } else { "result.txt" };
        if let Some((_, value)) = outcome.metadata.iter().find(|(k, _)| k == key) {
            stdout.write_all(value)?;
        }
        stdout.flush()?;
        return Ok(subrequest_status(outcome));
    }
    for path in stdout_exports {
        let mut file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        std::io::copy(&mut file, &mut stdout)?;
    }
    let image = outcome.exported.iter().find(|e| e.config_digest.is_some());
    let config_digest = image.and_then(|e| e.config_digest.clone());
    if args.quiet {
        if let Some(id) = &config_digest {
            writeln!(stdout, "{id}")?;
        }
    }
    if let Some(path) = &args.iidfile {
        if let Some(id) = &config_digest {
            std::fs::write(path, id).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if let Some(path) = &args.metadata_file {
        let mut meta = serde_json::Map::new();
        if let Some(e) = image {
            meta.insert("containerimage.digest".into(), serde_json::json!(e.manifest_digest));
            meta.insert("containerimage.config.digest".into(), serde_json::json!(e.config_digest));
        }
        meta.insert("hoist.frontend.digest".into(), serde_json::json!(outcome.frontend_digest));
        meta.insert("hoist.frontend.reference".into(), serde_json::json!(outcome.frontend_reference));
        let text = serde_json::to_string_pretty(&meta)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The exit status a subrequest's answer asks for (`result.statuscode`, as buildx honours it:
/// `--call check` ends with 1 when it found violations); success when absent or unreadable.
fn subrequest_status(outcome: &BuildOutcome) -> ExitCode {
    let value = outcome.metadata.iter().find(|(k, _)| k == "result.statuscode").map(|(_, v)| v);
    let code = value.and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0);
    match code {
        0 => ExitCode::SUCCESS,
        // A status that does not fit an exit code is still a failure.
        n => ExitCode::from(u8::try_from(n).unwrap_or(1)),
    }
}

/// Why the built-in buildpacks frontend runs when nobody asked for a frontend, for the progress
/// output; `None` when the user chose.
fn frontend_choice_note(args: &BuildArgs) -> Option<String> {
    (args.frontend.is_none() && args.dockerfile == DockerfileSource::Absent).then(|| {
        "no Dockerfile in the context and no -f: building with the built-in buildpacks frontend \
         (--frontend dockerfile to force a Dockerfile build)"
            .to_string()
    })
}

/// The engine request for the flags; exports to stdout go to files in `scratch` first.
pub(crate) fn request_of(args: &BuildArgs, scratch: &Path) -> anyhow::Result<(BuildRequest, Vec<PathBuf>)> {
    let frontend = match args.frontend.as_deref() {
        // No Dockerfile in the context and no -f: the source tree is the build definition.
        None if args.dockerfile == DockerfileSource::Absent => FrontendChoice::Builtin("buildpacks".into()),
        Some("buildpacks") | Some("builtin:buildpacks") => FrontendChoice::Builtin("buildpacks".into()),
        None | Some("dockerfile") | Some("dockerfile.v0") | Some("builtin:dockerfile") => FrontendChoice::Builtin("dockerfile".into()),
        // BuildKit's gateway frontend: the engine runs `--opt source=REF`.
        Some("gateway.v0") => FrontendChoice::Builtin("dockerfile".into()),
        // A component file (`file:PATH`), e.g. a frontend being developed (docs/frontend-authors.md).
        Some(other) => match other.strip_prefix("file:") {
            Some(path) => FrontendChoice::Bytes(std::fs::read(path).with_context(|| format!("reading the frontend component {path}"))?),
            None => FrontendChoice::Reference(other.to_string()),
        },
    };
    let mut contexts = Vec::new();
    if let Some(dir) = &args.context {
        contexts.push(("context".to_string(), ContextSource::Local(dir.clone())));
    }
    let mut options = args.frontend_options.clone();
    match &args.dockerfile {
        DockerfileSource::File { dir, .. } => contexts.push(("dockerfile".into(), ContextSource::Local(dir.clone()))),
        DockerfileSource::Inline(bytes) => {
            let dir = scratch.join("dockerfile");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("Dockerfile"), bytes)?;
            contexts.push(("dockerfile".into(), ContextSource::Local(dir)));
            options.push(("filename".into(), "Dockerfile".into()));
        }
        DockerfileSource::Absent => {
            if let Some(dir) = &args.context {
                contexts.push(("dockerfile".into(), ContextSource::Local(dir.clone())));
            }
        }
    }
    for named in &args.named_contexts {
        let source = match &named.source {
            flags::ContextSource::Local(p) => ContextSource::Local(p.clone()),
            flags::ContextSource::Image(r) => ContextSource::Image(r.clone()),
            flags::ContextSource::OciLayout { path, tag, digest } => {
                let mut v = path.display().to_string();
                if let Some(t) = tag {
                    v = format!("{v}:{t}");
                }
                if let Some(d) = digest {
                    v = format!("{v}@{d}");
                }
                ContextSource::OciLayout(v)
            }
            flags::ContextSource::Url(u) => anyhow::bail!("build context {u} is not supported yet"),
        };
        contexts.push((named.name.clone(), source));
    }
    let secrets: Secrets = args.secrets.iter().map(|s| (s.id.clone(), s.value.0.clone())).collect();
    let mut exports = Vec::new();
    let mut stdout_exports = Vec::new();
    for (i, spec) in args.exports.iter().enumerate() {
        let mut to_file = |dest: &OutputDest| match dest {
            OutputDest::Path(p) => Some(p.clone()),
            OutputDest::Stdout => {
                let p = scratch.join(format!("stdout-{i}"));
                stdout_exports.push(p.clone());
                Some(p)
            }
        };
        let (kind, dest, push) = match &spec.kind {
            flags::ExportKind::Oci { dest } => (ExportKind::Oci, to_file(dest), false),
            flags::ExportKind::Docker { dest } => (ExportKind::Docker, to_file(dest), false),
            flags::ExportKind::Image { push } => (ExportKind::Image, None, *push),
            flags::ExportKind::Local { dest } => (ExportKind::Local, Some(dest.clone()), false),
            flags::ExportKind::Tar { dest } => (ExportKind::Tar, to_file(dest), false),
        };
        let names = if spec.names.is_empty() { args.tags.clone() } else { spec.names.clone() };
        exports.push(ExportSpec { kind, dest, names, push });
    }
    if args.call != CallMode::Build {
        exports.clear();
    }
    let ssh = args.ssh.iter().cloned().collect();
    let request = BuildRequest { frontend, options, contexts, secrets, ssh, no_cache: args.no_cache, exports };
    Ok((request, stdout_exports))
}

/// Where the Dockerfile is on disk, for printing source lines in a failure report.
pub(crate) fn dockerfile_path(args: &BuildArgs, scratch: &Path) -> Option<PathBuf> {
    match &args.dockerfile {
        DockerfileSource::File { dir, filename } => Some(dir.join(filename)),
        DockerfileSource::Inline(_) => Some(scratch.join("dockerfile/Dockerfile")),
        DockerfileSource::Absent => None,
    }
}
