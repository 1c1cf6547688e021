//! The Solve RPC: a wire request mapped onto an engine build over a session's copies, its
//! progress streamed as rawjson events, exports bound for the client streamed back as bytes, and
//! the outcome or failure as the last message.
//!
//! A request carrying the client's frontend policy or offline mode runs on the engine with the
//! daemon's frontend settings narrowed by the client's (both policies must allow a frontend).
//!
//! A build whose client goes away (the response stream is dropped) is cancelled: the engine's
//! running steps are killed and nothing half-done enters the cache.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hoist_api::proto::{self, solve_event, SolveEvent, SolveRequest};
use hoist_engine::{
    BuildOutcome, BuildRequest, ContextSource, Engine, Event, ExportKind, ExportSpec,
    FrontendChoice, FrontendPolicy, FrontendSettings, Progress,
};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;
use tonic::Status;

use crate::session::SessionData;
use crate::Daemon;

/// The sending half of a Solve response stream.
pub type EventSender = mpsc::Sender<Result<SolveEvent, Status>>;

/// An export whose bytes go back to the client.
struct ClientExport {
    /// Index in the request.
    index: u32,
    /// Where the daemon writes it first.
    scratch: PathBuf,
    /// What the client calls it (for descriptions).
    client_dest: String,
}

/// Runs one Solve to its end, sending everything on `tx`.
pub async fn serve(
    daemon: Arc<Daemon>,
    request: SolveRequest,
    tx: EventSender,
) -> Result<(), Status> {
    let session = if request.session_id.is_empty() {
        Arc::new(SessionData::default())
    } else {
        daemon.sessions.get(&request.session_id).ok_or_else(|| {
            Status::failed_precondition(format!(
                "session {:?} is not open (or has not committed)",
                request.session_id
            ))
        })?
    };
    let scratch = tempfile::Builder::new()
        .prefix("solve")
        .tempdir_in(daemon.engine.state_dir().join("tmp"))
        .map_err(|e| Status::internal(format!("making a scratch directory: {e}")))?;
    let (build, client_exports) = build_request(&request, &session, scratch.path())?;
    let engine = engine_for(&daemon, &request)?;

    daemon.builds_started.fetch_add(1, Ordering::Relaxed);
    daemon.builds_running.fetch_add(1, Ordering::Relaxed);
    let _running = Running(&daemon);

    let (progress, events) = Progress::channel();
    let renames: Vec<(String, String)> = client_exports
        .iter()
        .map(|e| (e.scratch.display().to_string(), e.client_dest.clone()))
        .collect();
    let forwarder = tokio::spawn(forward_progress(events, tx.clone(), renames.clone()));
    let result = tokio::select! {
        result = engine.build(build, progress) => Some(result),
        () = tx.closed() => None,
    };
    // All progress goes out before the outcome (the forwarder ends when the build's senders drop).
    let _ = forwarder.await;
    let Some(result) = result else {
        tracing::info!("client went away; build cancelled");
        return Ok(());
    };
    match result {
        Ok(outcome) => {
            for export in &client_exports {
                stream_file(&export.scratch, export.index, &tx).await?;
            }
            let result = result_of(outcome, &renames);
            let _ = tx
                .send(Ok(SolveEvent {
                    event: Some(solve_event::Event::Result(result)),
                }))
                .await;
        }
        Err(err) => {
            let failure = proto::SolveFailure {
                message: rename(&err.to_string(), &renames),
                location: err.location().map(|l| proto::Location {
                    file: l.file.clone(),
                    ranges: l
                        .ranges
                        .iter()
                        .map(|r| proto::LineRange {
                            start: r.start,
                            end: r.end,
                        })
                        .collect(),
                }),
                failed_vertex: err
                    .failed_vertex()
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                cancelled: err.is_cancelled(),
            };
            let _ = tx
                .send(Ok(SolveEvent {
                    event: Some(solve_event::Event::Failure(failure)),
                }))
                .await;
        }
    }
    Ok(())
}

/// The engine a build runs on: the daemon's, its frontend settings narrowed by the client's
/// (`allow_frontends`, `frontend_offline`) when the request carries any.
fn engine_for(daemon: &Daemon, request: &SolveRequest) -> Result<Engine, Status> {
    if request.allow_frontends.is_empty() && !request.frontend_offline {
        return Ok(daemon.engine.clone());
    }
    let client = FrontendSettings {
        policy: FrontendPolicy::parse(&request.allow_frontends)
            .map_err(|e| Status::invalid_argument(format!("the client's {e}")))?,
        offline: request.frontend_offline,
    };
    let settings = daemon.engine.frontend_settings().and(&client);
    Ok(daemon.engine.with_frontend_settings(settings))
}

/// Counts a build as running while alive.
struct Running<'a>(&'a Daemon);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.builds_running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The engine request for a wire request: local contexts point at the session's copies, OCI
/// layouts too (and the frontend's `context:NAME` option with them), client exports at scratch files.
fn build_request(
    request: &SolveRequest,
    session: &SessionData,
    scratch: &Path,
) -> Result<(BuildRequest, Vec<ClientExport>), Status> {
    let frontend = match request.frontend.as_ref().and_then(|f| f.kind.clone()) {
        None => FrontendChoice::Builtin("dockerfile".into()),
        Some(proto::frontend::Kind::Builtin(name)) => FrontendChoice::Builtin(name),
        Some(proto::frontend::Kind::Component(bytes)) => FrontendChoice::Bytes(bytes),
        Some(proto::frontend::Kind::Reference(r)) => FrontendChoice::Reference(r),
    };
    let copy_of = |context: &str, session_name: &str| {
        session.contexts.get(session_name).cloned().ok_or_else(|| {
            Status::invalid_argument(format!(
                "build context {context:?}: session context {session_name:?} was not synced"
            ))
        })
    };
    let mut options: Vec<(String, String)> = request
        .options
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    let mut contexts = Vec::new();
    for named in &request.contexts {
        let source = match &named.source {
            Some(proto::named_context::Source::SessionContext(s)) => {
                ContextSource::Local(copy_of(&named.name, s)?)
            }
            Some(proto::named_context::Source::Image(r)) => ContextSource::Image(r.clone()),
            Some(proto::named_context::Source::OciLayout(layout)) => {
                let dir = copy_of(&named.name, &layout.session_context)?;
                let value = format!("{}{}", dir.display(), layout.selector);
                let option = format!("context:{}", named.name);
                for (key, v) in &mut options {
                    if *key == option {
                        *v = format!("oci-layout://{value}");
                    }
                }
                ContextSource::OciLayout(value)
            }
            None => {
                return Err(Status::invalid_argument(format!(
                    "build context {:?} has no source",
                    named.name
                )))
            }
        };
        contexts.push((named.name.clone(), source));
    }
    let mut exports = Vec::new();
    let mut client_exports = Vec::new();
    for (i, export) in request.exports.iter().enumerate() {
        let index = u32::try_from(i).map_err(|_| Status::invalid_argument("too many exports"))?;
        let kind = match export.kind() {
            proto::ExportKind::Oci => ExportKind::Oci,
            proto::ExportKind::Docker => ExportKind::Docker,
            proto::ExportKind::Image => ExportKind::Image,
            proto::ExportKind::Registry => ExportKind::Registry,
            // A directory reaches the client as a tar it unpacks.
            proto::ExportKind::Local | proto::ExportKind::Tar => ExportKind::Tar,
            proto::ExportKind::Unspecified => {
                return Err(Status::invalid_argument(format!("export {i} has no kind")))
            }
        };
        let to_client = matches!(kind, ExportKind::Oci | ExportKind::Docker | ExportKind::Tar);
        let dest = to_client.then(|| scratch.join(format!("export-{i}")));
        if let Some(path) = &dest {
            let client_dest = if export.client_dest.is_empty() {
                format!("export {i}")
            } else {
                export.client_dest.clone()
            };
            client_exports.push(ClientExport {
                index,
                scratch: path.clone(),
                client_dest,
            });
        }
        exports.push(ExportSpec {
            kind,
            dest,
            names: export.names.clone(),
            push: export.push,
        });
    }
    let build = BuildRequest {
        frontend,
        options,
        contexts,
        secrets: session.secrets.clone(),
        // Agent sockets are not forwarded through sessions: the client refuses --ssh with --addr.
        ssh: Default::default(),
        no_cache: request.no_cache,
        exports,
    };
    Ok((build, client_exports))
}

/// Sends each engine event as a rawjson line; scratch paths in export descriptions become the
/// client's destinations. Keeps draining after the client left so the build never blocks.
async fn forward_progress(
    mut events: mpsc::UnboundedReceiver<Event>,
    tx: EventSender,
    renames: Vec<(String, String)>,
) {
    let mut open = true;
    while let Some(mut event) = events.recv().await {
        if !open {
            continue;
        }
        if let Event::Exported { description } = &mut event {
            *description = rename(description, &renames);
        }
        let Ok(json) = serde_json::to_string(&event) else {
            continue;
        };
        open = tx
            .send(Ok(SolveEvent {
                event: Some(solve_event::Event::ProgressJson(json)),
            }))
            .await
            .is_ok();
    }
}

/// Replaces daemon scratch paths with the client's names for them.
fn rename(text: &str, renames: &[(String, String)]) -> String {
    renames
        .iter()
        .fold(text.to_string(), |t, (from, to)| t.replace(from, to))
}

/// Streams a scratch file's bytes as export chunks.
async fn stream_file(path: &Path, index: u32, tx: &EventSender) -> Result<(), Status> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Status::internal(format!("reading export {}: {e}", path.display())))?;
    let mut buf = vec![0u8; hoist_api::CHUNK_BYTES];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| Status::internal(format!("reading export {}: {e}", path.display())))?;
        if n == 0 {
            return Ok(());
        }
        let chunk = proto::ExportChunk {
            index,
            data: buf[..n].to_vec(),
        };
        tx.send(Ok(SolveEvent {
            event: Some(solve_event::Event::Export(chunk)),
        }))
        .await
        .map_err(|_| Status::cancelled("the client went away"))?;
    }
}

/// The wire form of a build's outcome.
fn result_of(outcome: BuildOutcome, renames: &[(String, String)]) -> proto::SolveResult {
    proto::SolveResult {
        frontend_digest: outcome.frontend_digest,
        frontend_reference: outcome.frontend_reference,
        image_config: outcome.image_config,
        metadata: outcome
            .metadata
            .into_iter()
            .map(|(key, value)| proto::Metadata { key, value })
            .collect(),
        exported: outcome
            .exported
            .into_iter()
            .map(|e| proto::Exported {
                manifest_digest: e.manifest_digest,
                config_digest: e.config_digest,
                description: rename(&e.description, renames),
            })
            .collect(),
    }
}
