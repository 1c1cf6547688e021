//! Listeners: the control service on unix sockets and on TCP with TLS (rustls through tonic),
//! optionally requiring client certificates signed by a given CA.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hoist_api::Address;
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::service::ControlService;
use crate::Daemon;

/// Why the daemon cannot listen or serve.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Binding an address failed.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Another daemon already answers on the socket.
    #[error("cannot listen on {0}: another daemon is listening there")]
    InUse(String),
    /// A TCP address was given without TLS and plain TCP was not allowed.
    #[error("refusing to listen on {0} without TLS: give --tlscert and --tlskey (or --insecure-tcp on a trusted network)")]
    PlainTcp(String),
    /// A TLS file could not be read or the settings are unusable.
    #[error(transparent)]
    Tls(#[from] hoist_api::Error),
    /// The gRPC server failed.
    #[error("serving {address}: {source}")]
    Serve {
        /// The address.
        address: String,
        /// The cause.
        source: tonic::transport::Error,
    },
}

/// The server's TLS settings for TCP addresses.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The daemon's certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA (PEM).
    pub client_ca: Option<PathBuf>,
}

/// Listening options.
#[derive(Debug, Clone, Default)]
pub struct ListenOptions {
    /// TLS for `tcp://` addresses.
    pub tls: Option<ServerTls>,
    /// Allow `tcp://` without TLS.
    pub insecure_tcp: bool,
}

/// Serves the control API on every address until `shutdown` completes; removes the unix
/// sockets it made on the way out.
pub async fn serve(
    daemon: Arc<Daemon>,
    addresses: Vec<Address>,
    options: ListenOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ListenError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut servers = Vec::new();
    let mut sockets = Vec::new();
    for address in addresses {
        let service = ControlService::server(daemon.clone());
        let mut stop = stop_rx.clone();
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let shown = address.to_string();
        match &address {
            Address::Unix(path) => {
                let listener = bind_unix(path, &shown).await?;
                sockets.push(path.clone());
                tracing::info!("listening on {shown}");
                eprintln!("hoistd listening on {shown}");
                let incoming = UnixListenerStream::new(listener);
                servers.push(tokio::spawn(async move {
                    Server::builder()
                        .add_service(service)
                        .serve_with_incoming_shutdown(incoming, stopped)
                        .await
                        .map_err(|source| ListenError::Serve {
                            address: shown,
                            source,
                        })
                }));
            }
            Address::Tcp { host, port } => {
                let mut builder = Server::builder();
                match &options.tls {
                    Some(tls) => {
                        builder = builder.tls_config(server_tls(tls)?).map_err(|source| {
                            ListenError::Serve {
                                address: shown.clone(),
                                source,
                            }
                        })?;
                    }
                    None if options.insecure_tcp => {}
                    None => return Err(ListenError::PlainTcp(shown)),
                }
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let listener =
                    TcpListener::bind((host, *port))
                        .await
                        .map_err(|source| ListenError::Bind {
                            address: shown.clone(),
                            source,
                        })?;
                let local = listener.local_addr().map_err(|source| ListenError::Bind {
                    address: shown.clone(),
                    source,
                })?;
                let tls_note = match &options.tls {
                    Some(ServerTls {
                        client_ca: Some(_), ..
                    }) => " (TLS, client certificates required)",
                    Some(_) => " (TLS)",
                    None => " (plain TCP)",
                };
                tracing::info!("listening on tcp://{local}{tls_note}");
                eprintln!("hoistd listening on tcp://{local}{tls_note}");
                let incoming = TcpListenerStream::new(listener);
                servers.push(tokio::spawn(async move {
                    builder
                        .add_service(service)
                        .serve_with_incoming_shutdown(incoming, stopped)
                        .await
                        .map_err(|source| ListenError::Serve {
                            address: shown,
                            source,
                        })
                }));
            }
        }
    }
    let mut result = Ok(());
    for server in servers {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => tracing::error!("server task failed: {e}"),
        }
    }
    for socket in sockets {
        let _ = std::fs::remove_file(socket);
    }
    result
}

/// Binds a unix socket, replacing a stale socket file but never a live daemon's.
async fn bind_unix(path: &Path, shown: &str) -> Result<UnixListener, ListenError> {
    let bind_err = |source| ListenError::Bind {
        address: shown.to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(bind_err)?;
    }
    if std::fs::symlink_metadata(path).is_ok() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(ListenError::InUse(shown.to_string()));
        }
        std::fs::remove_file(path).map_err(bind_err)?;
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    // Builds run as root: only root and the socket's group may talk to the daemon.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(bind_err)?;
    Ok(listener)
}

/// The tonic TLS configuration: the daemon's identity, and the client CA when clients must
/// present certificates.
fn server_tls(tls: &ServerTls) -> Result<ServerTlsConfig, ListenError> {
    let identity = Identity::from_pem(hoist_api::read(&tls.cert)?, hoist_api::read(&tls.key)?);
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &tls.client_ca {
        config = config
            .client_ca_root(Certificate::from_pem(hoist_api::read(ca)?))
            .client_auth_optional(false);
    }
    Ok(config)
}
