//! `hoist build --addr ADDR`: the same build request the embedded engine runs, sent to hoistd.
//!
//! Local contexts travel through a session (only what changed since the daemon's copy), secrets
//! too; the Solve stream's progress events are rendered by the same renderer as embedded builds,
//! exports bound for this machine arrive as bytes, and the outcome or failure is reported exactly
//! as for an embedded build (same output, same exit codes).
//!
//! The client's frontend policy (`--allow-frontend`, `HOIST_ALLOW_FRONTENDS`) and
//! `--frontend-offline` travel in the Solve request; the daemon applies them on top of its own
//! (a frontend must be allowed by both). A daemon too old to know them would ignore them, so the
//! client asks first and refuses with a usage error rather than drop them silently.

pub mod gc;
mod session;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use hoist_api::proto::control_client::ControlClient;
use hoist_api::proto::{self, solve_event};
use hoist_api::{Address, ClientTls};
use hoist_engine::context::{IncludeAll, PathFilter, PatternFilter, PrefixFilter};
use hoist_engine::{
    BuildOutcome, BuildRequest, ContextSource, Event, ExportKind, Exported, FrontendChoice,
    Progress,
};
use tonic::transport::Channel;

use crate::build_cmd;
use crate::flags::{self, BuildArgs, DockerfileSource};
use crate::progress::{FailureReport, Renderer};
use session::{context_key, KeepingIgnoreFile, Session};

/// A control client on `address`, taking messages up to the API's size limit.
async fn connect(address: &Address, tls: &ClientTls) -> anyhow::Result<ControlClient<Channel>> {
    let channel = hoist_api::connect(address, tls).await?;
    Ok(ControlClient::new(channel)
        .max_decoding_message_size(hoist_api::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(hoist_api::MAX_MESSAGE_BYTES))
}

/// Runs `hoist build` on the daemon at `address`.
pub async fn build(
    args: &BuildArgs,
    address: &Address,
    tls: &ClientTls,
) -> anyhow::Result<ExitCode> {
    let mut control = connect(address, tls).await?;
    let scratch = tempfile::Builder::new()
        .prefix("hoist-remote")
        .tempdir()
        .context("making a scratch directory")?;
    let (request, stdout_exports) = build_cmd::request_of(args, scratch.path())?;
    let dockerfile_path = build_cmd::dockerfile_path(args, scratch.path());
    check_frontend_flags(&mut control, address, args).await?;

    let mut session = Session::open(&mut control).await?;
    let contexts = sync_contexts(&mut session, args, &request).await?;
    for (id, value) in &request.secrets {
        session.secret(id, value).await?;
    }
    session.commit().await?;

    let (mut wire, client_exports) = solve_request(&session.id, &request, contexts, scratch.path());
    wire.allow_frontends = args.allow_frontends.clone();
    wire.frontend_offline = args.frontend_offline;
    let stream = control
        .solve(wire)
        .await
        .with_context(|| format!("starting the build on hoistd at {address}"))?;
    // The same display, log file, explanation, metadata and failure report as an embedded
    // build: only where the events come from differs.
    let log_file = args.log_file.as_deref().map(crate::progress::LogFile::create).transpose()?;
    let (progress, events) = Progress::channel();
    let renderer = Renderer::spawn(args.progress, events, log_file);
    let received = receive(stream.into_inner(), &progress, &client_exports).await;
    drop(progress);
    let mut report = renderer.finish().await;
    session.close().await;

    match received? {
        Ok(outcome) => {
            for export in client_exports.values() {
                export.finish()?;
            }
            let code = build_cmd::finish_success(args, &outcome, &stdout_exports)?;
            crate::explain_out::finish(args, &mut report, None)?;
            Ok(code)
        }
        Err(failure) => {
            let location = failure
                .location
                .as_ref()
                .map(|l| hoist_llb::SourceLocation {
                    file: l.file.clone(),
                    ranges: l
                        .ranges
                        .iter()
                        .map(|r| hoist_llb::LineRange {
                            start: r.start,
                            end: r.end,
                        })
                        .collect(),
                });
            let vertex = failure.failed_vertex.parse::<hoist_llb::Digest>().ok();
            let failure = FailureReport::from_parts(
                &failure.message,
                location.as_ref(),
                vertex,
                &report,
                dockerfile_path.as_deref(),
            );
            crate::explain_out::finish(args, &mut report, Some(&failure))?;
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Refuses, with a usage error naming the flag, a frontend policy or offline mode that the daemon
/// would not apply (it predates [`hoist_api::FEATURE_CLIENT_FRONTEND_POLICY`]).
async fn check_frontend_flags(
    control: &mut ControlClient<tonic::transport::Channel>,
    address: &Address,
    args: &BuildArgs,
) -> anyhow::Result<()> {
    let flag = if !args.allow_frontends.is_empty() {
        "--allow-frontend (or HOIST_ALLOW_FRONTENDS)"
    } else if args.frontend_offline {
        "--frontend-offline (or HOIST_FRONTEND_OFFLINE)"
    } else {
        return Ok(());
    };
    let info = control
        .info(proto::InfoRequest {})
        .await
        .map_err(|status| anyhow::anyhow!("hoistd at {address}: info: {}", status.message()))?
        .into_inner();
    match unapplied(flag, &info, address) {
        Some(refusal) => Err(refusal),
        None => Ok(()),
    }
}

/// The usage error for `flag` if the daemon described by `info` would not apply it.
fn unapplied(flag: &str, info: &proto::InfoResponse, address: &Address) -> Option<anyhow::Error> {
    let applies = info
        .features
        .iter()
        .any(|f| f == hoist_api::FEATURE_CLIENT_FRONTEND_POLICY);
    (!applies).then(|| {
        anyhow::Error::new(flags::UsageError(format!(
            "{flag} cannot be applied by hoistd at {address} (version {}): it ignores a client's frontend settings; upgrade hoistd, or set them on the daemon (hoistd --allow-frontend, --frontend-offline)",
            info.version
        )))
    })
}

/// A session context: the directory, its role and the filter the client applies.
struct Planned {
    dir: PathBuf,
    role: &'static str,
    filter: Box<dyn PathFilter + Send>,
}

/// Where a build context is in the session: the session's name for its copy, and for an OCI
/// layout the selector (`:TAG`, `@DIGEST`) that follows the directory.
struct InSession {
    name: String,
    selector: String,
}

/// Syncs every local directory the request names (each directory and role once); returns where
/// each build context that is local or an OCI layout is in the session.
async fn sync_contexts(
    session: &mut Session,
    args: &BuildArgs,
    request: &BuildRequest,
) -> anyhow::Result<HashMap<String, InSession>> {
    let filename = request
        .options
        .iter()
        .find(|(k, _)| k == "filename")
        .map(|(_, v)| v.clone());
    let mut by_key: HashMap<String, String> = HashMap::new();
    let mut names = HashMap::new();
    for (name, source) in &request.contexts {
        let mut selector = String::new();
        let planned = match source {
            ContextSource::Local(dir) if name == "dockerfile" && filename.is_some() => {
                let filename = filename.clone().unwrap_or_default();
                let ignore = format!("{filename}.dockerignore");
                Planned {
                    dir: dir.clone(),
                    role: "dockerfile",
                    filter: Box::new(PrefixFilter::new(&[filename, ignore])),
                }
            }
            ContextSource::Local(dir) if name == "context" || name == "dockerfile" => {
                let patterns = ignore_patterns(args, dir, filename.as_deref())?;
                let filter = PatternFilter::new(&[] as &[String], &patterns)
                    .with_context(|| format!("bad .dockerignore pattern in {}", dir.display()))?;
                Planned {
                    dir: dir.clone(),
                    role: "context",
                    filter: Box::new(KeepingIgnoreFile(filter)),
                }
            }
            ContextSource::Local(dir) => Planned {
                dir: dir.clone(),
                role: "named",
                filter: Box::new(IncludeAll),
            },
            ContextSource::OciLayout(_) => {
                let (dir, layout_selector) = layout_of(args, name)?;
                selector = layout_selector;
                Planned {
                    dir,
                    role: "oci-layout",
                    filter: Box::new(IncludeAll),
                }
            }
            ContextSource::Image(_) => continue,
        };
        let key = context_key(&planned.dir, planned.role);
        if let Some(existing) = by_key.get(&key) {
            names.insert(
                name.clone(),
                InSession {
                    name: existing.clone(),
                    selector,
                },
            );
            continue;
        }
        let Planned { dir, filter, .. } = planned;
        let listing = tokio::task::spawn_blocking(move || session::list(&dir, filter.as_ref()))
            .await
            .context("listing task")??;
        session.sync(name, &key, listing).await?;
        by_key.insert(key, name.clone());
        names.insert(
            name.clone(),
            InSession {
                name: name.clone(),
                selector,
            },
        );
    }
    Ok(names)
}

/// The main context's ignore rules: `<Dockerfile>.dockerignore` beside the Dockerfile wins over
/// the context's `.dockerignore`, as the Dockerfile frontend reads them.
fn ignore_patterns(
    args: &BuildArgs,
    context: &Path,
    filename: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let specific = match (&args.dockerfile, filename) {
        (DockerfileSource::File { dir, .. }, Some(name)) => {
            Some(dir.join(format!("{name}.dockerignore")))
        }
        _ => None,
    };
    for path in specific.into_iter().chain([context.join(".dockerignore")]) {
        match std::fs::read(&path) {
            Ok(bytes) => {
                return Ok(hoist_patternmatcher::read_ignore_file(
                    &String::from_utf8_lossy(&bytes),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    Ok(Vec::new())
}

/// The directory and selector (`:TAG`, `@DIGEST`) of an `oci-layout://` build context.
fn layout_of(args: &BuildArgs, name: &str) -> anyhow::Result<(PathBuf, String)> {
    let named = args
        .named_contexts
        .iter()
        .find(|c| c.name == name)
        .with_context(|| format!("build context {name:?} is not an OCI layout"))?;
    match &named.source {
        flags::ContextSource::OciLayout { path, tag, digest } => {
            let mut selector = String::new();
            if let Some(t) = tag {
                selector.push(':');
                selector.push_str(t);
            }
            if let Some(d) = digest {
                selector.push('@');
                selector.push_str(d);
            }
            Ok((path.clone(), selector))
        }
        _ => anyhow::bail!("build context {name:?} is not an OCI layout"),
    }
}

/// An export whose bytes come back over the Solve stream.
struct ClientExport {
    /// Where the bytes go as they arrive.
    file: std::cell::RefCell<Option<std::fs::File>>,
    /// The file the bytes are written to.
    path: PathBuf,
    /// For `type=local`: the directory the received tar is unpacked into.
    unpack_into: Option<PathBuf>,
}

impl ClientExport {
    /// Completes the export: closes the file, unpacks a directory export.
    fn finish(&self) -> anyhow::Result<()> {
        let file = self.file.borrow_mut().take();
        if let Some(mut file) = file {
            file.flush()?;
        } else {
            // Nothing arrived: an empty tar or file is still what was asked for.
            std::fs::File::create(&self.path)
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        if let Some(dest) = &self.unpack_into {
            std::fs::create_dir_all(dest)
                .with_context(|| format!("creating {}", dest.display()))?;
            let tar = std::fs::File::open(&self.path)?;
            let mut archive = tar::Archive::new(tar);
            archive.set_preserve_permissions(true);
            archive.set_preserve_mtime(true);
            archive.set_preserve_ownerships(nix::unistd::geteuid().is_root());
            archive.set_unpack_xattrs(true);
            archive.set_overwrite(true);
            archive
                .unpack(dest)
                .with_context(|| format!("unpacking the result into {}", dest.display()))?;
        }
        Ok(())
    }

    fn write(&self, data: &[u8]) -> anyhow::Result<()> {
        let mut slot = self.file.borrow_mut();
        if slot.is_none() {
            *slot = Some(
                std::fs::File::create(&self.path)
                    .with_context(|| format!("writing {}", self.path.display()))?,
            );
        }
        if let Some(file) = slot.as_mut() {
            file.write_all(data)
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        Ok(())
    }
}

/// The wire request, and the exports whose bytes come back (by export index).
fn solve_request(
    session_id: &str,
    request: &BuildRequest,
    contexts: HashMap<String, InSession>,
    scratch: &Path,
) -> (proto::SolveRequest, HashMap<u32, ClientExport>) {
    let frontend = match &request.frontend {
        FrontendChoice::Builtin(name) => proto::frontend::Kind::Builtin(name.clone()),
        FrontendChoice::Bytes(bytes) => proto::frontend::Kind::Component(bytes.clone()),
        FrontendChoice::Reference(r) => proto::frontend::Kind::Reference(r.clone()),
    };
    let named = request
        .contexts
        .iter()
        .map(|(name, source)| {
            let (session_name, selector) = contexts
                .get(name)
                .map(|c| (c.name.clone(), c.selector.clone()))
                .unwrap_or_default();
            let source = match source {
                ContextSource::Local(_) => {
                    proto::named_context::Source::SessionContext(session_name)
                }
                ContextSource::Image(r) => proto::named_context::Source::Image(r.clone()),
                ContextSource::OciLayout(_) => {
                    proto::named_context::Source::OciLayout(proto::OciLayoutContext {
                        session_context: session_name,
                        selector,
                    })
                }
            };
            proto::NamedContext {
                name: name.clone(),
                source: Some(source),
            }
        })
        .collect();
    let mut client_exports = HashMap::new();
    let exports = request
        .exports
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let kind = match spec.kind {
                ExportKind::Oci => proto::ExportKind::Oci,
                ExportKind::Docker => proto::ExportKind::Docker,
                ExportKind::Image => proto::ExportKind::Image,
                ExportKind::Registry => proto::ExportKind::Registry,
                ExportKind::Local => proto::ExportKind::Local,
                ExportKind::Tar => proto::ExportKind::Tar,
            };
            let mut client_dest = String::new();
            if let Some(dest) = &spec.dest {
                client_dest = dest.display().to_string();
                let (path, unpack_into) = match spec.kind {
                    ExportKind::Local => {
                        (scratch.join(format!("local-{i}.tar")), Some(dest.clone()))
                    }
                    _ => (dest.clone(), None),
                };
                client_exports.insert(
                    index,
                    ClientExport {
                        file: std::cell::RefCell::new(None),
                        path,
                        unpack_into,
                    },
                );
            }
            proto::Export {
                kind: kind as i32,
                names: spec.names.clone(),
                push: spec.push,
                client_dest,
            }
        })
        .collect();
    let options = request
        .options
        .iter()
        .map(|(key, value)| proto::KeyValue {
            key: key.clone(),
            value: value.clone(),
        })
        .collect();
    let wire = proto::SolveRequest {
        session_id: session_id.to_string(),
        frontend: Some(proto::Frontend {
            kind: Some(frontend),
        }),
        options,
        contexts: named,
        no_cache: request.no_cache,
        exports,
        allow_frontends: Vec::new(),
        frontend_offline: false,
    };
    (wire, client_exports)
}

/// Reads the Solve stream: progress to the renderer, export bytes to their files, and the
/// outcome (Ok) or the failure (Err) at the end.
async fn receive(
    mut stream: tonic::Streaming<proto::SolveEvent>,
    progress: &Progress,
    exports: &HashMap<u32, ClientExport>,
) -> anyhow::Result<Result<BuildOutcome, proto::SolveFailure>> {
    loop {
        let message = stream
            .message()
            .await
            .map_err(|status| anyhow::anyhow!("hoistd: {}", status.message()))?;
        let Some(message) = message else {
            anyhow::bail!("hoistd ended the build without a result")
        };
        // An empty message is an event kind of a newer daemon: skipped.
        let Some(event) = message.event else { continue };
        match event {
            solve_event::Event::ProgressJson(json) => match serde_json::from_str::<Event>(&json) {
                Ok(event) => progress.send(event),
                Err(e) => {
                    tracing::debug!("skipping a progress event this client does not know: {e}")
                }
            },
            solve_event::Event::Export(chunk) => {
                let export = exports.get(&chunk.index).with_context(|| {
                    format!(
                        "hoistd sent bytes for export {}, which has no destination here",
                        chunk.index
                    )
                })?;
                export.write(&chunk.data)?;
            }
            solve_event::Event::Result(result) => {
                let outcome = BuildOutcome {
                    frontend_digest: result.frontend_digest,
                    frontend_reference: result.frontend_reference,
                    image_config: result.image_config,
                    metadata: result
                        .metadata
                        .into_iter()
                        .map(|m| (m.key, m.value))
                        .collect(),
                    exported: result
                        .exported
                        .into_iter()
                        .map(|e| Exported {
                            manifest_digest: e.manifest_digest,
                            config_digest: e.config_digest,
                            description: e.description,
                        })
                        .collect(),
                };
                return Ok(Ok(outcome));
            }
            solve_event::Event::Failure(failure) => return Ok(Err(failure)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_ignoring_client_frontend_settings_is_a_usage_error_naming_the_flag() {
        let address = Address::parse("unix:///run/h.sock").unwrap();
        let old = proto::InfoResponse {
            version: "0.0.9".into(),
            ..proto::InfoResponse::default()
        };
        let err = unapplied("--allow-frontend", &old, &address).expect("refused");
        assert!(err.downcast_ref::<flags::UsageError>().is_some());
        let text = err.to_string();
        assert!(
            text.contains("--allow-frontend")
                && text.contains("0.0.9")
                && text.contains("unix:///run/h.sock"),
            "{text}"
        );
        let current = proto::InfoResponse {
            features: vec![hoist_api::FEATURE_CLIENT_FRONTEND_POLICY.to_string()],
            ..old
        };
        assert!(unapplied("--frontend-offline", &current, &address).is_none());
    }
}
