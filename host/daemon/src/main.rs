//! `hoistd`: the hoist build daemon. `hoistd [OPTIONS]` serves the control API until SIGINT or
//! SIGTERM; `hoistd info --addr ADDR` asks a running daemon for its version and counters (JSON).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use hoist_api::{Address, ClientTls};
use hoist_daemon::listen::{self, ListenOptions, ServerTls};
use hoist_daemon::{Daemon, DaemonConfig};
use hoist_engine::{FrontendPolicy, FrontendSettings};

/// The default socket.
const DEFAULT_ADDRESS: &str = "unix:///run/hoist/hoistd.sock";

/// The hoist build daemon.
#[derive(Debug, Parser)]
#[command(
    name = "hoistd",
    version,
    about = "The hoist build daemon: builds for hoist clients over gRPC"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeFlags,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a running daemon's version, state directory and transfer counters as JSON.
    Info(InfoFlags),
}

/// How the daemon serves.
#[derive(Debug, Args)]
struct ServeFlags {
    /// Address to listen on: unix:///PATH or tcp://HOST:PORT (repeatable).
    #[arg(long = "addr", value_name = "ADDR", value_parser = parse_address)]
    addrs: Vec<Address>,
    /// Directory holding the daemon's cache, content store, snapshots and context copies.
    #[arg(
        long,
        env = "HOISTD_STATE_DIR",
        value_name = "DIR",
        default_value = "/var/lib/hoistd"
    )]
    state_dir: PathBuf,
    /// Most build steps running at once (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    parallelism: Option<usize>,
    /// The daemon's TLS certificate (PEM), for tcp:// addresses.
    #[arg(long, value_name = "FILE", requires = "tlskey")]
    tlscert: Option<PathBuf>,
    /// The daemon's TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tlscert")]
    tlskey: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM) on tcp:// addresses.
    #[arg(long, value_name = "FILE", requires = "tlscert")]
    tlscacert: Option<PathBuf>,
    /// Allow tcp:// addresses without TLS (only on a network you trust).
    #[arg(long)]
    insecure_tcp: bool,
    /// Allow only frontends matching these rules in every build: a registry HOST[:PORT], a
    /// repository HOST/PATH[/*] or a digest sha256:HEX (repeatable, comma-separated); built-ins
    /// always run. A client's own --allow-frontend can narrow this further, never widen it.
    #[arg(long = "allow-frontend", env = "HOISTD_ALLOW_FRONTENDS", value_name = "RULE", value_delimiter = ',', value_parser = parse_rule)]
    allow_frontends: Vec<String>,
    /// Never ask registries about frontends: a tag keeps the digest its last build resolved.
    #[arg(long, env = "HOISTD_FRONTEND_OFFLINE")]
    frontend_offline: bool,
}

/// How `hoistd info` reaches the daemon.
#[derive(Debug, Args)]
struct InfoFlags {
    /// The daemon's address.
    #[arg(long, env = "HOIST_HOST", value_name = "ADDR", value_parser = parse_address, default_value = DEFAULT_ADDRESS)]
    addr: Address,
    /// CA certificate (PEM) to verify the daemon with.
    #[arg(long, value_name = "FILE")]
    tlscacert: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, value_name = "FILE")]
    tlscert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, value_name = "FILE")]
    tlskey: Option<PathBuf>,
    /// Name to verify the daemon's certificate against.
    #[arg(long, value_name = "NAME")]
    tlsservername: Option<String>,
}

fn parse_address(text: &str) -> Result<Address, String> {
    Address::parse(text).map_err(|e| e.to_string())
}

/// Checks one `--allow-frontend` rule.
fn parse_rule(text: &str) -> Result<String, String> {
    FrontendPolicy::parse(&[text])?;
    Ok(text.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOISTD_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| {
            rt.block_on(async {
                match cli.command {
                    Some(Command::Info(flags)) => info(flags).await,
                    None => serve(cli.serve).await,
                }
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hoistd: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the daemon and serves until a signal.
async fn serve(flags: ServeFlags) -> anyhow::Result<()> {
    let mut config = DaemonConfig::new(flags.state_dir.clone());
    if let Some(n) = flags.parallelism {
        config.engine.parallelism = n.max(1);
    }
    config.engine.frontends = FrontendSettings {
        policy: FrontendPolicy::parse(&flags.allow_frontends)
            .map_err(anyhow::Error::msg)?
            .set_by("hoistd --allow-frontend"),
        offline: flags.frontend_offline,
    };
    let daemon = tokio::task::spawn_blocking(move || Daemon::start(config))
        .await
        .context("start-up task")??;
    let tls = match (flags.tlscert, flags.tlskey) {
        (Some(cert), Some(key)) => Some(ServerTls {
            cert,
            key,
            client_ca: flags.tlscacert,
        }),
        _ => None,
    };
    let addresses = if flags.addrs.is_empty() {
        vec![Address::parse(DEFAULT_ADDRESS)?]
    } else {
        flags.addrs
    };
    let options = ListenOptions {
        tls,
        insecure_tcp: flags.insecure_tcp,
    };
    listen::serve(daemon, addresses, options, shutdown_signal()).await?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("hoistd: shutting down");
}

/// `hoistd info`.
async fn info(flags: InfoFlags) -> anyhow::Result<()> {
    let tls = ClientTls {
        ca_cert: flags.tlscacert,
        cert: flags.tlscert,
        key: flags.tlskey,
        server_name: flags.tlsservername,
    };
    let channel = hoist_api::connect(&flags.addr, &tls).await?;
    let mut control = hoist_api::proto::control_client::ControlClient::new(channel);
    let info = control
        .info(hoist_api::proto::InfoRequest {})
        .await
        .context("asking the daemon for its info")?
        .into_inner();
    let transfer = info.transfer.unwrap_or_default();
    let json = serde_json::json!({
        "version": info.version,
        "state_dir": info.state_dir,
        "builds_started": info.builds_started,
        "builds_running": info.builds_running,
        "sessions_open": info.sessions_open,
        "transfer": {
            "files_received": transfer.files_received,
            "bytes_received": transfer.bytes_received,
            "contexts_synced": transfer.contexts_synced,
            "entries_listed": transfer.entries_listed,
        },
    });
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}
