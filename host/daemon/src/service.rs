//! The tonic service: each control RPC mapped onto the [`Daemon`].

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::Stream;
use hoist_api::proto::control_server::{Control, ControlServer};
use hoist_api::proto::{self, SessionMessage, SessionReply, SolveEvent, SolveRequest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::Daemon;

/// Messages buffered per response stream.
const STREAM_BUFFER: usize = 64;

/// A boxed response stream.
type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The control service over a daemon.
#[derive(Clone)]
pub struct ControlService {
    daemon: Arc<Daemon>,
}

impl ControlService {
    /// The service for `daemon`, ready to add to a tonic server.
    pub fn server(daemon: Arc<Daemon>) -> ControlServer<ControlService> {
        ControlServer::new(ControlService { daemon })
            .max_decoding_message_size(hoist_api::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(hoist_api::MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl Control for ControlService {
    async fn info(
        &self,
        _request: Request<proto::InfoRequest>,
    ) -> Result<Response<proto::InfoResponse>, Status> {
        let d = &self.daemon;
        let transfer = proto::TransferCounters {
            files_received: d.transfer.files_received.load(Ordering::Relaxed),
            bytes_received: d.transfer.bytes_received.load(Ordering::Relaxed),
            contexts_synced: d.transfer.contexts_synced.load(Ordering::Relaxed),
            entries_listed: d.transfer.entries_listed.load(Ordering::Relaxed),
        };
        Ok(Response::new(proto::InfoResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            state_dir: d.engine.state_dir().display().to_string(),
            transfer: Some(transfer),
            builds_started: d.builds_started.load(Ordering::Relaxed),
            builds_running: d.builds_running.load(Ordering::Relaxed),
            sessions_open: d.sessions.count() as u64,
            features: vec![hoist_api::FEATURE_CLIENT_FRONTEND_POLICY.to_string()],
        }))
    }

    async fn list_workers(
        &self,
        _request: Request<proto::ListWorkersRequest>,
    ) -> Result<Response<proto::ListWorkersResponse>, Status> {
        let worker = &self.daemon.worker;
        let platform = format!("linux/{}", oci_arch());
        Ok(Response::new(proto::ListWorkersResponse {
            workers: vec![proto::Worker {
                id: "runc-overlayfs".into(),
                runtime: worker.runtime.clone(),
                snapshotter: "overlayfs".into(),
                platforms: vec![platform],
                parallelism: u32::try_from(worker.parallelism).unwrap_or(u32::MAX),
            }],
        }))
    }

    async fn disk_usage(
        &self,
        _request: Request<proto::DiskUsageRequest>,
    ) -> Result<Response<proto::DiskUsageResponse>, Status> {
        crate::usage::disk_usage(&self.daemon)
            .await
            .map(Response::new)
    }

    async fn prune(
        &self,
        request: Request<proto::PruneRequest>,
    ) -> Result<Response<proto::PruneResponse>, Status> {
        crate::usage::prune(&self.daemon, request.into_inner())
            .await
            .map(Response::new)
    }

    type SessionStream = ResponseStream<SessionReply>;

    async fn session(
        &self,
        request: Request<Streaming<SessionMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let daemon = self.daemon.clone();
        let inbound = request.into_inner();
        tokio::spawn(async move {
            if let Err(status) = crate::session::serve(daemon, inbound, tx.clone()).await {
                tracing::warn!(error = %status.message(), "session ended with an error");
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type SolveStream = ResponseStream<SolveEvent>;

    async fn solve(
        &self,
        request: Request<SolveRequest>,
    ) -> Result<Response<Self::SolveStream>, Status> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let daemon = self.daemon.clone();
        let request = request.into_inner();
        tokio::spawn(async move {
            if let Err(status) = crate::solve::serve(daemon, request, tx.clone()).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// The OCI name of this machine's architecture.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
