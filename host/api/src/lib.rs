//! hoistd's control API, shared by the `hoist` client and the `hoistd` daemon: the protobuf
//! messages and the tonic client and server generated from `proto/hoist/control/v1/control.proto`,
//! the daemon addresses (`unix:///PATH`, `tcp://HOST:PORT`) and how a client connects to one
//! (TLS with an optional client certificate on TCP).
//!
//! This crate owns the wire contract only. It must not know the engine: the daemon maps these
//! messages onto engine requests, the CLI maps its flags onto them.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), hoist_api::Error> {
//! use hoist_api::{connect, Address, ClientTls};
//! let address = Address::parse("unix:///run/hoist/hoistd.sock")?;
//! let channel = connect(&address, &ClientTls::default()).await?;
//! let mut control = hoist_api::proto::control_client::ControlClient::new(channel);
//! let info = control.info(hoist_api::proto::InfoRequest {}).await;
//! # Ok(()) }
//! ```
//!
//! # Key decision
//!
//! Progress events travel as the JSON of the engine's event (the `--progress=rawjson` line
//! format) rather than as a parallel protobuf schema: the CLI renders exactly what the embedded
//! engine emits, and an event kind added to the engine needs no second definition here.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

/// The generated protobuf types, client and server of package `hoist.control.v1`.
#[allow(
    missing_docs,
    reason = "generated code: the .proto file documents every message"
)]
pub mod proto {
    tonic::include_proto!("hoist.control.v1");

    impl std::fmt::Debug for Secret {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "Secret {{ id: {:?}, value: <{} bytes> }}",
                self.id,
                self.value.len()
            )
        }
    }
}

/// Largest message either side accepts: a manifest batch of long paths, a file chunk.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Bytes of file or export data per message.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Entries per manifest batch.
pub const MANIFEST_BATCH: usize = 2048;

/// The `InfoResponse.features` entry of a daemon that applies a client's frontend policy and
/// offline mode (`SolveRequest.allow_frontends`, `frontend_offline`); older daemons ignore them.
pub const FEATURE_CLIENT_FRONTEND_POLICY: &str = "client-frontend-policy";

/// Why an address could not be used or reached.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address is not `unix:///PATH` or `tcp://HOST:PORT`.
    #[error("bad daemon address {address:?}: {reason}")]
    BadAddress {
        /// What was given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A TLS file could not be read.
    #[error("reading TLS file {}: {source}", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// TLS settings are incomplete or inconsistent.
    #[error("TLS settings: {0}")]
    TlsSettings(String),
    /// The daemon could not be reached.
    #[error("cannot reach the hoistd daemon at {address}")]
    Connect {
        /// The address.
        address: String,
        /// The cause (its own causes say why: no such socket, refused, certificate).
        #[source]
        source: tonic::transport::Error,
    },
}

/// Where a daemon listens or a client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A Unix socket path (`unix:///run/hoist/hoistd.sock`).
    Unix(PathBuf),
    /// A TCP host and port (`tcp://127.0.0.1:7420`).
    Tcp {
        /// Host name or IP address (IPv6 in brackets).
        host: String,
        /// Port.
        port: u16,
    },
}

impl Address {
    /// Parses `unix:///PATH` (absolute path) or `tcp://HOST:PORT`.
    pub fn parse(text: &str) -> Result<Address, Error> {
        let bad = |reason: &str| Error::BadAddress {
            address: text.to_string(),
            reason: reason.to_string(),
        };
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad("a unix socket path must be absolute (unix:///PATH)"));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            let rest = rest.trim_end_matches('/');
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("expected tcp://HOST:PORT"))?;
            if host.is_empty() {
                return Err(bad("the host is empty"));
            }
            let port: u16 = port
                .parse()
                .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
            return Ok(Address::Tcp {
                host: host.to_string(),
                port,
            });
        }
        Err(bad("expected unix:///PATH or tcp://HOST:PORT"))
    }

    /// The unix socket path, if this is one.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            Address::Unix(p) => Some(p),
            Address::Tcp { .. } => None,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// A client's TLS settings for a `tcp://` address; all unset means plain TCP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// CA certificate (PEM) the daemon's certificate must chain to.
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM), for daemons that verify clients.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key: Option<PathBuf>,
    /// Name to verify the daemon's certificate against (default: the address's host).
    pub server_name: Option<String>,
}

impl ClientTls {
    /// Whether any TLS setting is given.
    pub fn is_enabled(&self) -> bool {
        self.ca_cert.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// The tonic client TLS configuration for `host`.
    fn config(&self, host: &str) -> Result<ClientTlsConfig, Error> {
        let mut config = ClientTlsConfig::new()
            .domain_name(self.server_name.clone().unwrap_or_else(|| host.to_string()));
        match &self.ca_cert {
            Some(ca) => config = config.ca_certificate(Certificate::from_pem(read(ca)?)),
            None => {
                return Err(Error::TlsSettings(
                    "a CA certificate (--tlscacert) is needed to verify the daemon".into(),
                ))
            }
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(read(cert)?, read(key)?))
            }
            (None, None) => {}
            _ => {
                return Err(Error::TlsSettings(
                    "a client certificate needs both --tlscert and --tlskey".into(),
                ))
            }
        }
        Ok(config)
    }
}

/// Reads a PEM file.
pub fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::TlsFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Connects to a daemon; TLS settings apply to `tcp://` addresses only.
pub async fn connect(address: &Address, tls: &ClientTls) -> Result<Channel, Error> {
    let connect_err = |source| Error::Connect {
        address: address.to_string(),
        source,
    };
    match address {
        Address::Unix(path) => {
            let path = path.clone();
            // The URI is required by the API but unused: the connector dials the socket.
            let endpoint = Endpoint::from_static("http://hoistd.invalid");
            endpoint
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(
                            tokio::net::UnixStream::connect(path).await?,
                        ))
                    }
                }))
                .await
                .map_err(connect_err)
        }
        Address::Tcp { host, port } => {
            let scheme = if tls.is_enabled() { "https" } else { "http" };
            let uri = format!("{scheme}://{host}:{port}");
            let mut endpoint =
                Endpoint::from_shared(uri.clone()).map_err(|_| Error::BadAddress {
                    address: address.to_string(),
                    reason: format!("{uri} is not a valid URI"),
                })?;
            if tls.is_enabled() {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                endpoint = endpoint
                    .tls_config(tls.config(host)?)
                    .map_err(connect_err)?;
            }
            endpoint.connect().await.map_err(connect_err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_and_tcp_addresses() {
        assert_eq!(
            Address::parse("unix:///run/h.sock").unwrap(),
            Address::Unix("/run/h.sock".into())
        );
        assert_eq!(
            Address::parse("tcp://127.0.0.1:7420").unwrap(),
            Address::Tcp {
                host: "127.0.0.1".into(),
                port: 7420
            }
        );
        assert_eq!(
            Address::parse("tcp://[::1]:1").unwrap(),
            Address::Tcp {
                host: "[::1]".into(),
                port: 1
            }
        );
        assert_eq!(
            Address::parse("unix:///run/h.sock").unwrap().to_string(),
            "unix:///run/h.sock"
        );
    }

    #[test]
    fn rejects_bad_addresses_with_the_reason() {
        for (text, reason) in [
            ("unix://rel.sock", "absolute"),
            ("tcp://host", "HOST:PORT"),
            ("tcp://:80", "host is empty"),
            ("tcp://h:99999", "port"),
            ("http://h:1", "expected unix"),
        ] {
            let err = Address::parse(text).unwrap_err().to_string();
            assert!(err.contains(reason) && err.contains(text), "{text}: {err}");
        }
    }

    #[test]
    fn secret_debug_hides_the_value() {
        let secret = proto::Secret {
            id: "token".into(),
            value: b"hunter2".to_vec(),
        };
        let shown = format!("{secret:?}");
        assert!(
            shown.contains("token") && shown.contains("7 bytes") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn client_tls_needs_a_ca_and_both_halves_of_a_client_cert() {
        let tls = ClientTls {
            cert: Some("/c".into()),
            ..ClientTls::default()
        };
        assert!(tls
            .config("h")
            .unwrap_err()
            .to_string()
            .contains("CA certificate"));
    }
}
