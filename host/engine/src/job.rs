//! One build job: pick the frontend, run it against a gateway bound to this job's contexts and
//! secrets, solve what it returns, and export.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::export::{export, ExportSpec, Exported};
use crate::gateway::JobGateway;
use crate::state::{Engine, Event, Progress, Secrets, SshSockets};
use crate::Error;

/// Which frontend interprets the build.
#[derive(Debug, Clone)]
pub enum FrontendChoice {
    /// A frontend carried in the binary, by name (`dockerfile`).
    Builtin(String),
    /// A component given as bytes (tests, `--frontend file:`).
    Bytes(Vec<u8>),
    /// A component in an OCI registry (`# syntax=REF`).
    Reference(String),
}

/// What a named build context is.
#[derive(Debug, Clone)]
pub enum ContextSource {
    /// A directory on the client.
    Local(PathBuf),
    /// A container image (`docker-image://REF`).
    Image(String),
    /// An image in an OCI layout directory (`oci-layout://PATH[:TAG|@DIGEST]`).
    OciLayout(String),
}

/// Everything a build needs.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The frontend.
    pub frontend: FrontendChoice,
    /// Frontend options with BuildKit's keys (`build-arg:NAME`, `target`, `filename`, ...).
    pub options: Vec<(String, String)>,
    /// Named contexts; `context` and `dockerfile` are the main ones.
    pub contexts: Vec<(String, ContextSource)>,
    /// Secrets by id (memory only).
    pub secrets: Secrets,
    /// SSH agent sockets by id, for `RUN --mount=type=ssh`.
    pub ssh: SshSockets,
    /// Re-run every step.
    pub no_cache: bool,
    /// Where the result goes.
    pub exports: Vec<ExportSpec>,
}

impl BuildRequest {
    /// A Dockerfile build of `dir` (context and Dockerfile both from it), exporting nothing.
    pub fn dockerfile(dir: PathBuf) -> BuildRequest {
        BuildRequest {
            frontend: FrontendChoice::Builtin("dockerfile".into()),
            options: Vec::new(),
            contexts: vec![("context".into(), ContextSource::Local(dir.clone())), ("dockerfile".into(), ContextSource::Local(dir))],
            secrets: Secrets::new(),
            ssh: SshSockets::new(),
            no_cache: false,
            exports: Vec::new(),
        }
    }
}

/// What a build produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildOutcome {
    /// Digest of the frontend component that ran.
    pub frontend_digest: String,
    /// Which frontend ran: `builtin:dockerfile`, or a registry reference pinned to its
    /// manifest digest (`# syntax=`, `--frontend`).
    pub frontend_reference: String,
    /// The image config the frontend returned.
    pub image_config: Option<String>,
    /// Metadata the frontend returned (e.g. `result.json` of a subrequest).
    pub metadata: Vec<(String, Vec<u8>)>,
    /// One entry per export.
    pub exported: Vec<Exported>,
}

impl Engine {
    /// Runs one build to the end; progress goes to `progress`.
    pub async fn build(&self, request: BuildRequest, progress: Progress) -> Result<BuildOutcome, Error> {
        // A prune waits until this build is over (see gc.rs).
        let _gc = self.shared.gc.build_guard().await;
        // `# syntax=` and its overrides pick the frontend; a registry one is pulled here.
        let selection = crate::frontend_ref::select(&request);
        let mut request = request;
        request.options.extend(selection.extra_options.iter().cloned());
        let loaded = self.load_frontend(&selection.choice, &request.contexts, &selection.origin).await?;
        let (frontend, reference) = (loaded.frontend, loaded.reference);
        progress.send(Event::Frontend { reference: reference.clone(), digest: frontend.digest().to_string() });

        let secret_ids = publish(&self.shared.secrets, &request.secrets);
        let ssh_ids = publish(&self.shared.ssh, &request.ssh);
        let explain = self.explain_session(&request, &reference, &frontend.digest().to_string());
        let gateway = Arc::new(
            JobGateway::new(self.clone(), &request, progress.clone())?.with_frontend(&reference).with_explain(explain.clone()),
        );
        let result = self.run_frontend(&frontend, &request, gateway.clone()).await;
        withdraw(&self.shared.secrets, &secret_ids);
        withdraw(&self.shared.ssh, &ssh_ids);
        let (chain, image_config, metadata) = result?;
        if let Some(session) = explain {
            // The next build is compared with this one; failing to record it fails nothing.
            match tokio::task::spawn_blocking(move || session.commit()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("recording the build for explanations: {e}"),
                Err(e) => tracing::warn!("recording the build for explanations: {e}"),
            }
        }

        let mut exported = Vec::new();
        for spec in &request.exports {
            let done = export(&self.shared, &chain, image_config.as_deref(), spec).await?;
            progress.send(Event::Exported { description: done.description.clone() });
            exported.push(done);
        }
        Ok(BuildOutcome { frontend_digest: frontend.digest().to_string(), frontend_reference: reference, image_config, metadata, exported })
    }

    /// The explain session of a build, unless explaining is off or its store fails.
    fn explain_session(&self, request: &BuildRequest, reference: &str, frontend_digest: &str) -> Option<Arc<hoist_solver::ExplainSession>> {
        if !self.shared.explain {
            return None;
        }
        let scope = crate::explain::scope_of(request, reference);
        let args = crate::explain::build_arg_names(request);
        match self.solver.explain_store().session(&scope, frontend_digest, args) {
            Ok(session) => Some(Arc::new(session)),
            Err(e) => {
                tracing::warn!("explanations unavailable: {e}");
                None
            }
        }
    }

    /// Runs the frontend and solves the reference it returns.
    async fn run_frontend(
        &self,
        frontend: &hoist_frontend_host::Frontend,
        request: &BuildRequest,
        gateway: Arc<JobGateway>,
    ) -> Result<(crate::chain::Chain, Option<String>, Vec<(String, Vec<u8>)>), Error> {
        let output = frontend.build(request.options.clone(), gateway.clone()).await?;
        let first = output.platforms.into_iter().next();
        let (chain, config) = match first {
            Some(p) => {
                let chain = match &p.reference {
                    Some(id) => gateway.chain_of(id).await?,
                    None => crate::chain::Chain::scratch(),
                };
                (chain, p.image_config)
            }
            None => (crate::chain::Chain::scratch(), None),
        };
        Ok((chain, config, output.metadata))
    }
}

/// Makes a job's secrets or ssh sockets visible to exec ops; returns the ids to remove afterwards.
fn publish<V: Clone>(all: &Mutex<HashMap<String, V>>, mine: &HashMap<String, V>) -> Vec<String> {
    let mut all = all.lock().unwrap_or_else(|p| p.into_inner());
    for (id, value) in mine {
        all.insert(id.clone(), value.clone());
    }
    mine.keys().cloned().collect()
}

/// Forgets a finished job's secrets or ssh sockets.
fn withdraw<V>(all: &Mutex<HashMap<String, V>>, ids: &[String]) {
    let mut all = all.lock().unwrap_or_else(|p| p.into_inner());
    for id in ids {
        all.remove(id);
    }
}
