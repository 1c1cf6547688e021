//! Runs an exec step with the runc command line: one bundle directory and one container id
//! per run, output streamed as it arrives, and the container deleted on every path.

use std::collections::VecDeque;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::request::{CancelToken, ExecRequest, Network, Stream};
use crate::rootfs::{resolve_user, Stubs};
use crate::spec::{build_spec, host_bounding_caps, hostname, mount_destinations, EtcFiles};

/// How many trailing output lines an [`Error::ExitStatus`] carries.
const LOG_LINES: usize = 20;
/// Fallback when the host has no /etc/resolv.conf.
const DEFAULT_RESOLV_CONF: &str = "nameserver 1.1.1.1\nnameserver 8.8.8.8\n";

/// Runs exec steps in containers through the runc CLI.
#[derive(Debug, Clone)]
pub struct RuncExecutor {
    runc: PathBuf,
    /// runc's `--root` (container state).
    runc_root: PathBuf,
    /// Per-run bundle directories.
    bundles: PathBuf,
    /// This process's bounding capability set; containers get a subset.
    host_caps: u64,
}

impl RuncExecutor {
    /// An executor keeping its state under `state_dir`, using `runc` found in PATH.
    pub fn new(state_dir: &Path) -> Result<Self> {
        let runc = find_in_path("runc").ok_or_else(|| Error::RuntimeMissing {
            runtime: "runc".into(),
        })?;
        RuncExecutor::with_runtime(state_dir, &runc)
    }

    /// An executor using the runc binary at `runc`.
    pub fn with_runtime(state_dir: &Path, runc: &Path) -> Result<Self> {
        if !runc.is_file() {
            return Err(Error::RuntimeMissing {
                runtime: runc.display().to_string(),
            });
        }
        let exec = RuncExecutor {
            runc: runc.to_path_buf(),
            runc_root: state_dir.join("runc"),
            bundles: state_dir.join("bundles"),
            host_caps: host_bounding_caps(),
        };
        for dir in [&exec.runc_root, &exec.bundles] {
            fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        }
        Ok(exec)
    }

    /// Runs `req` to completion, streaming output to `on_output`; kills it when `cancel` is set.
    pub fn run(
        &self,
        req: &ExecRequest,
        on_output: &mut dyn FnMut(Stream, &[u8]),
        cancel: &CancelToken,
    ) -> Result<()> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled {
                args: req.args.clone(),
            });
        }
        let bundle = tempfile::Builder::new()
            .prefix("b")
            .rand_bytes(10)
            .tempdir_in(&self.bundles)
            .map_err(Error::io("create bundle in", &self.bundles))?;
        let name = bundle
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = format!("hoist-{name}");
        let user = resolve_user(&req.rootfs, &req.user)?;
        let etc = write_etc_files(bundle.path(), req)?;
        let spec = build_spec(req, &user, &id, &etc, self.host_caps)?;
        let config = bundle.path().join("config.json");
        spec.save(&config).map_err(|e| Error::Spec {
            reason: format!("writing {}: {e}", config.display()),
        })?;
        let stubs = Stubs::predict(
            &req.rootfs,
            mount_destinations(&spec).iter().map(String::as_str),
        );
        let result = self.run_container(&id, bundle.path(), req, on_output, cancel);
        self.delete(&id);
        stubs.remove();
        result
    }

    fn run_container(
        &self,
        id: &str,
        bundle: &Path,
        req: &ExecRequest,
        on_output: &mut dyn FnMut(Stream, &[u8]),
        cancel: &CancelToken,
    ) -> Result<()> {
        let log = bundle.join("runc.log");
        let mut child = self
            .command()
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "run", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(Error::io("spawn", &self.runc))?;
        let (tx, rx) = mpsc::channel();
        let readers: Vec<_> = [
            (
                Stream::Stdout,
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
            (
                Stream::Stderr,
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
        ]
        .into_iter()
        .filter_map(|(stream, pipe)| pipe.map(|p| spawn_reader(stream, p, tx.clone())))
        .collect();
        drop(tx);
        let mut tail = Tail::default();
        let mut killed = false;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok((stream, chunk)) => {
                    tail.push(&chunk);
                    on_output(stream, &chunk);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if cancel.is_cancelled() && !killed {
                killed = self.kill(id);
            }
        }
        for reader in readers {
            let _ = reader.join();
        }
        let status = child.wait().map_err(Error::io("wait for", &self.runc))?;
        if killed || cancel.is_cancelled() {
            return Err(Error::Cancelled {
                args: req.args.clone(),
            });
        }
        match status.code() {
            Some(0) => Ok(()),
            Some(code) => match runtime_errors(&log) {
                Some(message) => Err(Error::Runtime {
                    runtime: self.runc.clone(),
                    op: "run",
                    message,
                }),
                None => Err(Error::ExitStatus {
                    code,
                    args: req.args.clone(),
                    log: tail.lines(),
                }),
            },
            None => Err(Error::Runtime {
                runtime: self.runc.clone(),
                op: "run",
                message: format!("runc terminated by {status}"),
            }),
        }
    }

    /// Sends SIGKILL to the container; false when it is not running (yet).
    fn kill(&self, id: &str) -> bool {
        let out = self
            .command()
            .args(["kill", id, "KILL"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        matches!(out, Ok(o) if o.status.success())
    }

    /// Removes the container's state whatever happened; errors are only logged.
    fn delete(&self, id: &str) {
        let out = self
            .command()
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        if let Ok(o) = out {
            let stderr = String::from_utf8_lossy(&o.stderr);
            if !o.status.success() && !stderr.contains("does not exist") {
                tracing::warn!(container = id, stderr = %stderr.trim(), "runc delete failed");
            }
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.runc);
        cmd.arg("--root").arg(&self.runc_root);
        cmd
    }
}

/// Reads a pipe on its own thread and forwards chunks until EOF.
fn spawn_reader(
    stream: Stream,
    mut pipe: Box<dyn Read + Send>,
    tx: mpsc::Sender<(Stream, Vec<u8>)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send((stream, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    })
}

/// The last lines of output, kept bounded.
#[derive(Default)]
struct Tail {
    bytes: VecDeque<u8>,
}

impl Tail {
    const MAX: usize = 8 * 1024;

    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(Self::MAX);
        self.bytes.drain(..excess);
    }

    fn lines(&self) -> Vec<String> {
        let bytes: Vec<u8> = self.bytes.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines[lines.len().saturating_sub(LOG_LINES)..].to_vec()
    }
}

/// Error-level messages from runc's JSON log, if any.
fn runtime_errors(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).ok()?;
    let messages: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            matches!(
                v.get("level").and_then(|l| l.as_str()),
                Some("error" | "fatal")
            )
        })
        .filter_map(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}

/// Writes /etc/hosts, /etc/resolv.conf and /etc/hostname for this run into the bundle.
fn write_etc_files(bundle: &Path, req: &ExecRequest) -> Result<EtcFiles> {
    let dir = bundle.join("etc");
    fs::create_dir(&dir).map_err(Error::io("create", &dir))?;
    let name = hostname(req);
    let etc = EtcFiles {
        hosts: dir.join("hosts"),
        resolv_conf: dir.join("resolv.conf"),
        hostname: dir.join("hostname"),
    };
    let hosts = format!("127.0.0.1\tlocalhost {name}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let resolv = match (req.network, fs::read_to_string("/etc/resolv.conf")) {
        (Network::Host, Ok(host)) => host,
        (Network::None, Ok(host)) => host
            .lines()
            .filter(|l| !l.contains("127.0.0."))
            .map(|l| format!("{l}\n"))
            .collect(),
        (_, Err(_)) => DEFAULT_RESOLV_CONF.to_string(),
    };
    for (path, content) in [
        (&etc.hosts, hosts),
        (&etc.resolv_conf, resolv),
        (&etc.hostname, format!("{name}\n")),
    ] {
        fs::write(path, content).map_err(Error::io("write", path))?;
    }
    Ok(etc)
}

/// Looks `name` up in PATH, then in the sbin directories PATH often lacks.
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests;
