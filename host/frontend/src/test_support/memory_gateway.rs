//! [`MemoryGateway`]: an engine stand-in for frontend tests and benchmarks.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use hoist_llb::{Definition, Platform};

use crate::{
    FileStat, FrontendEvent, FrontendSolved, Gateway, GatewayError, RefId, RefReader,
    ResolveMode, ResolvedImageConfig, Solver,
};

/// The image config every base image resolves to unless [`MemoryGateway::with_image_config`]
/// says otherwise.
const DEFAULT_IMAGE_CONFIG: &str =
    r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"]}}"#;

/// Answers a frontend at once, from memory: every solve succeeds (`ref-N` for the N-th) and is
/// recorded, every image resolves to one config (also recorded), files are served from a map
/// whatever the result they are read from, and events are kept. Running another frontend is
/// refused. What it records is what tests assert on; benchmarks use it so that they time the
/// frontend and the host, not an engine.
#[derive(Default)]
pub struct MemoryGateway {
    files: HashMap<String, Vec<u8>>,
    image_config: Option<String>,
    solves: Mutex<Vec<Definition>>,
    resolved: Mutex<Vec<String>>,
    events: Mutex<Vec<FrontendEvent>>,
}

impl MemoryGateway {
    /// Serves `data` as the file `path` (a leading `/` is ignored) of every result.
    pub fn with_file(mut self, path: &str, data: impl Into<Vec<u8>>) -> Self {
        self.files.insert(path.trim_start_matches('/').to_string(), data.into());
        self
    }

    /// Resolves every image to `config` (OCI image config JSON).
    pub fn with_image_config(mut self, config: &str) -> Self {
        self.image_config = Some(config.to_string());
        self
    }

    /// The definitions solved so far, in order.
    pub fn solves(&self) -> Vec<Definition> {
        self.solves.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The image references resolved so far, in order.
    pub fn resolved(&self) -> Vec<String> {
        self.resolved.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The events (logs, warnings) reported so far, in order.
    pub fn events(&self) -> Vec<FrontendEvent> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Solver for MemoryGateway {
    async fn solve(&self, def: Definition, _evaluate: bool) -> Result<Option<RefId>, GatewayError> {
        let mut solves = self.solves.lock().unwrap_or_else(|p| p.into_inner());
        solves.push(def);
        Ok(Some(format!("ref-{}", solves.len() - 1)))
    }

    async fn solve_frontend(
        &self,
        _source: String,
        _options: Vec<(String, String)>,
        _inputs: Vec<(String, Definition)>,
    ) -> Result<FrontendSolved, GatewayError> {
        Err(GatewayError::new("no frontends here"))
    }

    async fn resolve_image_config(
        &self,
        reference: String,
        _platform: Option<Platform>,
        _mode: ResolveMode,
    ) -> Result<ResolvedImageConfig, GatewayError> {
        self.resolved.lock().unwrap_or_else(|p| p.into_inner()).push(reference.clone());
        Ok(ResolvedImageConfig {
            // A well-formed digest that differs between references.
            digest: format!("sha256:{:064x}", reference.len()),
            canonical_ref: reference,
            config: self.image_config.as_deref().unwrap_or(DEFAULT_IMAGE_CONFIG).to_string(),
        })
    }
}

#[async_trait]
impl RefReader for MemoryGateway {
    /// `length` 0 reads to the end.
    async fn read_file(
        &self,
        _reference: &RefId,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, GatewayError> {
        let data = self
            .files
            .get(path.trim_start_matches('/'))
            .ok_or_else(|| GatewayError::not_found(path))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let end = match length {
            0 => data.len(),
            n => start.saturating_add(usize::try_from(n).unwrap_or(usize::MAX)).min(data.len()),
        };
        Ok(data[start..end].to_vec())
    }

    async fn read_dir(
        &self,
        _reference: &RefId,
        _path: &str,
        _pattern: Option<&str>,
        _limit: usize,
    ) -> Result<Vec<FileStat>, GatewayError> {
        Ok(Vec::new())
    }

    async fn stat(&self, _reference: &RefId, path: &str) -> Result<FileStat, GatewayError> {
        Err(GatewayError::not_found(path))
    }
}

impl Gateway for MemoryGateway {
    fn inputs(&self) -> Vec<(String, Definition)> {
        Vec::new()
    }

    fn report(&self, event: FrontendEvent) {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    }
}
