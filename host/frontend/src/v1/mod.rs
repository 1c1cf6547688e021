//! `hoist:frontend@1.x`: bindings, the gateway imports served to 1.x frontends, and the
//! conversions between the WIT records and `hoist_llb`.
//!
//! A future 2.x contract gets a sibling module `v2`, served side by side.

mod convert;

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Resource;

use crate::gateway::{Gateway, LogLevel as HostLogLevel, Warning as HostWarning};
use crate::limits::{normalize, MAX_DIR_ENTRIES, MAX_PATH_BYTES, MAX_READ_BYTES};
use crate::store::{HostState, LogSink};
use crate::RefId;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "frontend",
    imports: { default: async },
    exports: { default: async },
    with: {
        "hoist:frontend/gateway.reference": RefHandle,
    },
});

pub(crate) use exports::hoist::frontend::builder::BuildResult as WitBuildResult;
pub(crate) use hoist::frontend::types::Error as WitError;
pub(crate) use Frontend as World;
pub(crate) use FrontendPre as WorldPre;

use hoist::frontend::gateway::{
    self as gw, FileStat, ReadRange, SolveRequest, SolveResponse, SolveTarget,
};
use hoist::frontend::types::{
    self as wit, Definition as WitDefinition, ImageConfig, LogLevel, Platform, ResolveMode, Warning,
};

/// Most references a frontend may hold at once: each is a table slot and an engine handle.
pub const MAX_LIVE_REFS: usize = 65_536;

/// The host side of a `reference` resource: the engine's handle.
#[derive(Debug, Clone)]
pub struct RefHandle {
    pub(crate) id: RefId,
}

/// The contract version this module serves, as found in import and export names.
pub(crate) const MAJOR: u64 = 1;

fn err(message: impl Into<String>) -> WitError {
    WitError {
        message: message.into(),
        location: None,
    }
}

fn gateway_err(e: crate::GatewayError) -> WitError {
    WitError {
        message: e.message,
        location: e.location.map(convert::location_to_wit),
    }
}

impl HostState {
    fn push_ref(&mut self, id: RefId) -> Result<Resource<RefHandle>, WitError> {
        if self.live_refs >= MAX_LIVE_REFS {
            return Err(err(format!(
                "frontend holds {} references, the limit is {MAX_LIVE_REFS} (MAX_LIVE_REFS); \
                 drop references it no longer reads",
                self.live_refs
            )));
        }
        let r = self
            .table
            .push(RefHandle { id })
            .map_err(|e| err(format!("cannot hand out a reference: {e}")))?;
        self.live_refs += 1;
        Ok(r)
    }

    fn ref_id(&self, r: &Resource<RefHandle>) -> Result<RefId, WitError> {
        self.table
            .get(r)
            .map(|h| h.id.clone())
            .map_err(|e| err(format!("invalid reference: {e}")))
    }

    /// Takes a reference handed back by the frontend out of the table.
    pub(crate) fn take_ref(&mut self, r: Resource<RefHandle>) -> Result<RefId, String> {
        let h = self
            .table
            .delete(r)
            .map_err(|e| format!("invalid reference: {e}"))?;
        self.live_refs = self.live_refs.saturating_sub(1);
        Ok(h.id)
    }

    fn gateway(&self) -> Arc<dyn Gateway> {
        self.gateway.clone()
    }

    fn sink(&self) -> Arc<LogSink> {
        self.log.clone()
    }
}

/// Times a gateway call so it does not count against the frontend's deadline.
async fn timed<T>(state: &mut HostState, fut: impl std::future::Future<Output = T>) -> T {
    let start = Instant::now();
    let out = fut.await;
    state.clock.host_time += start.elapsed();
    out
}

fn validated(def: WitDefinition) -> Result<hoist_llb::Definition, WitError> {
    let def = convert::definition_from_wit(def);
    def.validate().map_err(|e| WitError {
        message: format!("invalid definition: {e}"),
        location: e.location().cloned().map(convert::location_to_wit),
    })?;
    Ok(def)
}

fn checked_path(path: &str) -> Result<String, WitError> {
    normalize(path).map_err(|e| err(e.to_string()))
}

impl wit::Host for HostState {}

impl gw::Host for HostState {
    async fn solve(&mut self, request: SolveRequest) -> Result<SolveResponse, WitError> {
        let gateway = self.gateway();
        match request.target {
            SolveTarget::Definition(def) => {
                let def = validated(def)?;
                let solved = timed(self, gateway.solve(def, request.evaluate)).await;
                let id = solved.map_err(gateway_err)?;
                let reference = id.map(|id| self.push_ref(id)).transpose()?;
                Ok(SolveResponse {
                    reference,
                    image_config: None,
                })
            }
            SolveTarget::Frontend(req) => {
                let inputs = req
                    .inputs
                    .into_iter()
                    .map(|(name, def)| Ok((name, validated(def)?)))
                    .collect::<Result<Vec<_>, WitError>>()?;
                let solved = timed(
                    self,
                    gateway.solve_frontend(req.source, req.options, inputs),
                )
                .await;
                let solved = solved.map_err(gateway_err)?;
                let reference = solved.reference.map(|id| self.push_ref(id)).transpose()?;
                Ok(SolveResponse {
                    reference,
                    image_config: solved.image_config,
                })
            }
        }
    }

    async fn resolve_image_config(
        &mut self,
        reference: String,
        platform: Option<Platform>,
        mode: ResolveMode,
    ) -> Result<ImageConfig, WitError> {
        let gateway = self.gateway();
        let platform = platform.map(convert::platform_from_wit);
        let mode = match mode {
            ResolveMode::Default => crate::ResolveMode::Default,
            ResolveMode::Pull => crate::ResolveMode::Pull,
            ResolveMode::Local => crate::ResolveMode::Local,
        };
        let resolved = timed(
            self,
            gateway.resolve_image_config(reference, platform, mode),
        )
        .await;
        let r = resolved.map_err(gateway_err)?;
        Ok(ImageConfig {
            canonical_ref: r.canonical_ref,
            digest: r.digest,
            config: r.config,
        })
    }

    async fn inputs(&mut self) -> Vec<(String, WitDefinition)> {
        self.gateway
            .inputs()
            .into_iter()
            .map(|(name, def)| (name, convert::definition_to_wit(def)))
            .collect()
    }

    async fn warn(&mut self, warning: Warning) {
        let w = HostWarning {
            rule: warning.rule,
            message: warning.message,
            detail: warning.detail,
            url: warning.url,
            location: warning.location.map(convert::location_from_wit),
        };
        self.sink().warn(w);
    }

    async fn log(&mut self, level: LogLevel, message: String) {
        let level = match level {
            LogLevel::Debug => HostLogLevel::Debug,
            LogLevel::Info => HostLogLevel::Info,
            LogLevel::Warn => HostLogLevel::Warn,
            LogLevel::Error => HostLogLevel::Error,
        };
        self.sink().line(level, message);
    }
}

impl gw::HostReference for HostState {
    async fn read_file(
        &mut self,
        reference: Resource<RefHandle>,
        path: String,
        range: Option<ReadRange>,
    ) -> Result<Vec<u8>, WitError> {
        let id = self.ref_id(&reference)?;
        let path = checked_path(&path)?;
        let (offset, length, whole) = match range {
            Some(r) if r.length > MAX_READ_BYTES => {
                return Err(err(format!(
                    "read of {} bytes is more than the limit of {MAX_READ_BYTES} bytes \
                     (MAX_READ_BYTES); read the file in smaller ranges",
                    r.length
                )));
            }
            Some(r) => (r.offset, r.length, false),
            // One byte more than the cap tells a too-big file from one exactly at the cap.
            None => (0, MAX_READ_BYTES + 1, true),
        };
        let gateway = self.gateway();
        let read = timed(self, gateway.read_file(&id, &path, offset, length)).await;
        let mut data = read.map_err(gateway_err)?;
        if whole && data.len() as u64 > MAX_READ_BYTES {
            return Err(err(format!(
                "/{path} is larger than {MAX_READ_BYTES} bytes (MAX_READ_BYTES); \
                 read it in ranges"
            )));
        }
        let max = usize::try_from(length).unwrap_or(usize::MAX);
        data.truncate(max);
        Ok(data)
    }

    async fn read_dir(
        &mut self,
        reference: Resource<RefHandle>,
        path: String,
        include_pattern: Option<String>,
    ) -> Result<Vec<FileStat>, WitError> {
        let id = self.ref_id(&reference)?;
        let path = checked_path(&path)?;
        if include_pattern
            .as_ref()
            .is_some_and(|p| p.len() > MAX_PATH_BYTES)
        {
            return Err(err(format!(
                "include pattern is longer than {MAX_PATH_BYTES} bytes (MAX_PATH_BYTES)"
            )));
        }
        let gateway = self.gateway();
        let listed = timed(
            self,
            gateway.read_dir(&id, &path, include_pattern.as_deref(), MAX_DIR_ENTRIES),
        )
        .await;
        let entries = listed.map_err(gateway_err)?;
        if entries.len() > MAX_DIR_ENTRIES {
            return Err(err(format!(
                "/{path} has more than {MAX_DIR_ENTRIES} entries (MAX_DIR_ENTRIES); \
                 narrow the listing with an include pattern"
            )));
        }
        Ok(entries.into_iter().map(convert::stat_to_wit).collect())
    }

    async fn stat(
        &mut self,
        reference: Resource<RefHandle>,
        path: String,
    ) -> Result<FileStat, WitError> {
        let id = self.ref_id(&reference)?;
        let path = checked_path(&path)?;
        let gateway = self.gateway();
        let st = timed(self, gateway.stat(&id, &path)).await;
        st.map(convert::stat_to_wit).map_err(gateway_err)
    }

    async fn drop(&mut self, reference: Resource<RefHandle>) -> wasmtime::Result<()> {
        // A handle the frontend drops is no longer reachable from it; the engine releases
        // unexported results at the end of the build.
        let _ = self.take_ref(reference);
        Ok(())
    }
}

/// Adds the 1.x imports to `linker`.
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<HostState>,
) -> wasmtime::Result<()> {
    World::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

/// Converts a frontend's build result, taking its references out of the table.
pub(crate) fn build_output(
    state: &mut HostState,
    result: WitBuildResult,
) -> Result<crate::BuildOutput, crate::Error> {
    let mut platforms = Vec::with_capacity(result.platforms.len());
    for p in result.platforms {
        let reference = match p.reference {
            Some(r) => Some(
                state
                    .take_ref(r)
                    .map_err(|reason| crate::Error::InvalidResult { reason })?,
            ),
            None => None,
        };
        platforms.push(crate::PlatformOutput {
            platform: p.platform.map(convert::platform_from_wit),
            reference,
            image_config: p.image_config,
        });
    }
    Ok(crate::BuildOutput {
        platforms,
        metadata: result.metadata,
    })
}

/// Converts a frontend's build error.
pub(crate) fn frontend_error(e: WitError) -> crate::Error {
    crate::Error::Frontend {
        message: e.message,
        location: e.location.map(convert::location_from_wit),
    }
}
