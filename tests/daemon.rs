//! hoistd: builds through the daemon compared with embedded ones, the incremental context sync
//! (asserted through the daemon's transfer counters), concurrent clients sharing a stage, a
//! daemon killed mid-build, TLS with client certificates, `hoist du`/`prune` through the daemon,
//! and the frontend policy of the daemon and of its clients.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util::{
    archive_digest, build_cmd, busybox_image, du_sized_sum, entries_of_kind, out_path, run_ok,
    workspace_root, Dir, Steps, TestCommand,
};

/// How long a daemon may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Path of the `hoistd` binary, built once per test process like `hoist` (see `hoist_bin`).
fn hoistd_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("HOISTD_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let out = run_ok(Command::new(cargo).current_dir(workspace_root()).args([
            "build",
            "--bin",
            "hoistd",
            "--message-format",
            "json-render-diagnostics",
        ]));
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "hoistd")
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| panic!("cargo build reported no hoistd executable:\n{stdout}"))
    })
}

/// A running hoistd with a private state directory, killed on drop.
struct Hoistd {
    child: Option<Child>,
    state: PathBuf,
    address: String,
    extra: Vec<String>,
    log: PathBuf,
    /// Client flags `hoistd info` and `hoist` need for this address (TLS).
    client_flags: Vec<String>,
}

impl Hoistd {
    /// Starts hoistd on a fresh unix socket with its state beside `dir`'s.
    fn start(dir: &Dir) -> Hoistd {
        Hoistd::start_with(dir, &[])
    }

    /// Starts hoistd on a fresh unix socket with extra daemon flags.
    fn start_with(dir: &Dir, extra: &[&str]) -> Hoistd {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        // Socket paths are limited to 108 bytes: keep it short, outside the deep target dir.
        let socket = std::env::temp_dir().join(format!("hoistd-{}-{n}.sock", std::process::id()));
        Hoistd::start_at(
            dir,
            &format!("unix://{}", socket.display()),
            extra.iter().map(|s| s.to_string()).collect(),
            Vec::new(),
        )
    }

    /// Starts hoistd on `address` with extra daemon flags; `client_flags` are what clients add.
    fn start_at(dir: &Dir, address: &str, extra: Vec<String>, client_flags: Vec<String>) -> Hoistd {
        let base = dir.state_dir().parent().expect("state dir has a parent");
        let mut daemon = Hoistd {
            child: None,
            state: base.join("hoistd-state"),
            address: address.to_string(),
            extra,
            log: base.join("hoistd.log"),
            client_flags,
        };
        daemon.spawn();
        daemon
    }

    /// Starts the process (again, after a kill) and waits until it answers.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open hoistd log");
        let child = Command::new(hoistd_bin())
            .arg("--addr")
            .arg(&self.address)
            .arg("--state-dir")
            .arg(&self.state)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting hoistd: {e}"));
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if self.try_info().is_some() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "hoistd exited with {status} while starting:\n{}",
                    self.log_text()
                );
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "hoistd did not answer within {START_TIMEOUT:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's info (`hoistd info`), or None if it does not answer.
    fn try_info(&self) -> Option<serde_json::Value> {
        let out = Command::new(hoistd_bin())
            .arg("info")
            .arg("--addr")
            .arg(&self.address)
            .args(&self.client_flags)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// The daemon's info; panics if it does not answer.
    fn info(&self) -> serde_json::Value {
        self.try_info()
            .unwrap_or_else(|| panic!("hoistd does not answer:\n{}", self.log_text()))
    }

    /// (files, bytes) received by sessions so far.
    fn received(&self) -> (u64, u64) {
        let info = self.info();
        let t = &info["transfer"];
        (
            t["files_received"].as_u64().expect("files_received"),
            t["bytes_received"].as_u64().expect("bytes_received"),
        )
    }

    /// Stops the daemon with SIGTERM and waits for it to exit (as `Drop` does).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let status = child.wait().expect("wait for hoistd");
            assert!(
                status.success(),
                "hoistd exited with {status} on SIGTERM:\n{}",
                self.log_text()
            );
        }
    }

    /// Kills the daemon with SIGKILL and reaps it.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `hoist build` flags that send a build to this daemon.
    fn client_args(&self) -> Vec<String> {
        let mut args = vec!["--addr".to_string(), self.address.clone()];
        args.extend(self.client_flags.iter().cloned());
        args
    }

    /// Runs `build` on this daemon, asserting success (the failure message carries the steps
    /// and the daemon's log); returns its stderr.
    fn build_ok(&self, mut build: TestCommand) -> String {
        let out = build.args(self.client_args()).output();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "daemon build failed:\n{}\nhoistd log:\n{}",
            Steps::parse(&stderr).readable(&stderr),
            self.log_text()
        );
        stderr
    }

    /// [`Hoistd::build_ok`] with `-o type=local` into `out/<name>`; returns the directory.
    fn build_to_dir(&self, dir: &Dir, mut build: TestCommand, name: &str) -> PathBuf {
        let dest = out_path(dir, name);
        build.arg("-o").arg(format!("type=local,dest={}", dest.display()));
        self.build_ok(build);
        dest
    }
}

impl Drop for Hoistd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM first so the socket is removed; SIGKILL if it lingers.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `hoist build .` of the `Dockerfile` already in `dir` (unlike `build_cmd`, which rewrites it and
/// so changes its modification time), with rawjson progress and the busybox context.
fn build_existing(dir: &Dir) -> TestCommand {
    let mut cmd = dir.command();
    cmd.args([
        "build",
        ".",
        "-f",
        "Dockerfile",
        "--progress=rawjson",
        "--build-context",
    ])
    .arg(format!("busybox={}", busybox_image().oci_layout_ref()));
    cmd
}

/// A context exercising what a sync must carry exactly: modes, a symlink, a hardlink, nested
/// directories, an empty file, a .dockerignore'd file.
fn write_rich_context(dir: &Dir) {
    dir.write_file("app/a.txt", "A\n");
    dir.write_file_mode("app/bin/run.sh", "#!/bin/sh\necho run\n", 0o755);
    dir.write_file_mode("app/secret-ish/private.txt", "p\n", 0o600);
    dir.write_file("app/empty", "");
    dir.symlink("a.txt", "app/link-to-a");
    std::fs::hard_link(dir.join("app/a.txt"), dir.join("app/hard-a")).expect("hardlink");
    dir.write_file("app/debug.log", "ignored\n");
    dir.write_file(".dockerignore", "**/*.log\n");
}

const RICH_DOCKERFILE: &str = "FROM busybox\nCOPY app /app\nENV GREETING=hello\nLABEL org.example.test=daemon\nCMD [\"/app/bin/run.sh\"]\n";

#[test]
fn embedded_and_daemon_builds_give_the_same_image_digest() {
    let dir = Dir::new("embedded_and_daemon_builds_give_the_same_image_digest");
    write_rich_context(&dir);
    let embedded = out_path(&dir, "embedded.tar");
    build_cmd(&dir, RICH_DOCKERFILE)
        .arg("-o")
        .arg(format!("type=oci,dest={}", embedded.display()))
        .stdout();

    let daemon = Hoistd::start(&dir);
    let remote = out_path(&dir, "daemon.tar");
    let mut build = build_cmd(&dir, RICH_DOCKERFILE);
    build.arg("-o").arg(format!("type=oci,dest={}", remote.display()));
    let stderr = daemon.build_ok(build);
    let steps = Steps::parse(&stderr);
    assert!(
        !steps.executed_matching("COPY app").is_empty(),
        "the daemon's progress reached the client: {steps:#?}"
    );
    assert_eq!(
        archive_digest(&embedded),
        archive_digest(&remote),
        "same input, same image"
    );

    // The ignored file never reached the daemon.
    let (files, _) = daemon.received();
    assert!(files > 0, "the first daemon build received the context");
    let copies = daemon.state.join("sessions/contexts");
    let leaked = walk_names(&copies)
        .into_iter()
        .filter(|p| p.ends_with("debug.log"))
        .collect::<Vec<_>>();
    assert!(
        leaked.is_empty(),
        ".dockerignore'd files were sent: {leaked:?}"
    );
}

/// Every path under `root`.
fn walk_names(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

#[test]
fn one_changed_file_in_a_5000_file_context_is_the_only_file_sent() {
    let dir = Dir::new("one_changed_file_in_a_5000_file_context");
    for d in 0..50 {
        for f in 0..100 {
            dir.write_file(format!("d{d:02}/f{f:03}.txt"), format!("file {d} {f}\n"));
        }
    }
    dir.write_file("Dockerfile", "FROM busybox AS ctx\nCOPY . /ctx\nFROM scratch\nCOPY --from=ctx /ctx/d07/f042.txt /changed.txt\n");
    let daemon = Hoistd::start(&dir);
    let build = |name: &str| daemon.build_to_dir(&dir, build_existing(&dir), name);
    let before = daemon.received();
    let first = build("first");
    let after_first = daemon.received();
    assert!(
        after_first.0 - before.0 >= 5000,
        "the first build sends the whole context: {before:?} → {after_first:?}"
    );
    assert_eq!(
        std::fs::read_to_string(first.join("changed.txt")).unwrap(),
        "file 7 42\n"
    );

    let new_content = "changed content, longer than before\n";
    dir.write_file("d07/f042.txt", new_content);
    let second = build("second");
    let after_second = daemon.received();
    assert_eq!(
        (
            after_second.0 - after_first.0,
            after_second.1 - after_first.1
        ),
        (1, new_content.len() as u64),
        "only the changed file travels (files, bytes)"
    );
    assert_eq!(
        std::fs::read_to_string(second.join("changed.txt")).unwrap(),
        new_content
    );

    // Nothing changed: nothing travels.
    build("third");
    assert_eq!(daemon.received(), after_second);
}

#[test]
fn two_clients_sharing_a_stage_run_it_once() {
    let dir = Dir::new("two_clients_sharing_a_stage_run_it_once");
    let daemon = Hoistd::start(&dir);
    let shared =
        "FROM busybox AS shared\nRUN head -c 16 /dev/urandom | od -An -tx1 > /stamp && sleep 2\n";
    let clients: Vec<(Dir, std::process::Child, PathBuf)> = ["a", "b"]
        .iter()
        .map(|name| {
            let client = Dir::new(&format!("two_clients_{name}"));
            client.write_file(format!("{name}.txt"), *name);
            let dockerfile = format!("{shared}FROM shared\nCOPY {name}.txt /{name}.txt\n");
            let dest = out_path(&client, "out");
            let mut cmd = build_cmd(&client, &dockerfile);
            cmd.args(daemon.client_args())
                .arg("-o")
                .arg(format!("type=local,dest={}", dest.display()));
            let child = cmd
                .cmd()
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn hoist");
            (client, child, dest)
        })
        .collect();
    let mut stamps = Vec::new();
    for (_client, child, dest) in clients {
        let out = child.wait_with_output().expect("wait hoist");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "client failed:\n{}\nhoistd log:\n{}",
            Steps::parse(&stderr).readable(&stderr),
            daemon.log_text()
        );
        stamps.push(std::fs::read_to_string(dest.join("stamp")).expect("stamp"));
    }
    assert!(!stamps[0].trim().is_empty());
    assert_eq!(
        stamps[0], stamps[1],
        "the shared stage ran twice: two different random stamps"
    );
}

#[test]
fn daemon_killed_mid_build_restarts_and_reuses_completed_steps() {
    let dir = Dir::new("daemon_killed_mid_build");
    let dockerfile =
        "FROM busybox\nRUN echo one > /one\nARG DELAY=0\nRUN sleep $DELAY\nRUN echo done > /done\n";
    let mut daemon = Hoistd::start(&dir);
    let mut cmd = build_cmd(&dir, dockerfile);
    cmd.args(daemon.client_args())
        .args(["--build-arg", "DELAY=20"]);
    let mut client = cmd
        .cmd()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hoist");
    let stderr = client.stderr.take().expect("stderr");
    let mut seen = String::new();
    // The reader stays open to the end: the client must be able to say why it failed.
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.expect("read progress");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("vertex-started") && line.contains("sleep") {
            break;
        }
    }
    assert!(
        seen.contains("sleep"),
        "the sleep step never started:\n{seen}\nhoistd log:\n{}",
        daemon.log_text()
    );
    let steps = Steps::parse(&seen);
    assert_eq!(steps.executed_matching("echo one").len(), 1, "{steps:#?}");
    daemon.kill9();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = client.wait().expect("wait hoist");
    let last = rest.last().cloned().unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(1),
        "the client of a killed daemon fails with exit code 1; its stderr ended with:\n{last}"
    );
    assert!(
        last.contains("hoistd"),
        "the client names the daemon it lost: {last}"
    );

    daemon.spawn();
    let stderr = daemon.build_ok(build_cmd(&dir, dockerfile));
    let steps = Steps::parse(&stderr);
    assert_eq!(
        steps.cached_matching("echo one").len(),
        1,
        "the completed step is reused: {steps:#?}"
    );
    assert!(steps.executed_matching("echo one").is_empty(), "{steps:#?}");
    assert_eq!(steps.executed_matching("echo done").len(), 1, "{steps:#?}");
}

/// Test certificates made with openssl: a CA, the daemon's certificate for 127.0.0.1, a client
/// certificate from the same CA, and one from another CA.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn make(root: &Path) -> Certs {
        let dir = root.join("certs");
        std::fs::create_dir_all(&dir).expect("mkdir certs");
        let ssl = |args: &[&str]| {
            run_ok(Command::new("openssl").current_dir(&dir).args(args));
        };
        std::fs::write(
            dir.join("ca.ext"),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
        )
        .unwrap();
        std::fs::write(dir.join("server.ext"), "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        std::fs::write(dir.join("client.ext"), "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n").unwrap();
        for ca in ["ca", "rogue-ca"] {
            ssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca}"),
                "-extensions",
                "v3_ca",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        }
        for (name, ca, ext) in [
            ("server", "ca", "server.ext"),
            ("client", "ca", "client.ext"),
            ("rogue", "rogue-ca", "client.ext"),
        ] {
            ssl(&[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ]);
            ssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                ext,
            ]);
        }
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

#[test]
fn tls_with_client_certificates_over_tcp() {
    let dir = Dir::new("tls_with_client_certificates_over_tcp");
    let certs = Certs::make(dir.state_dir().parent().expect("parent"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let address = format!("tcp://127.0.0.1:{port}");
    let server_flags = vec![
        "--tlscert".to_string(),
        certs.path("server.pem"),
        "--tlskey".into(),
        certs.path("server.key"),
        "--tlscacert".into(),
        certs.path("ca.pem"),
    ];
    let client_flags = vec![
        "--tlscacert".to_string(),
        certs.path("ca.pem"),
        "--tlscert".into(),
        certs.path("client.pem"),
        "--tlskey".into(),
        certs.path("client.key"),
    ];
    let daemon = Hoistd::start_at(&dir, &address, server_flags, client_flags);

    // A client with the right certificate builds.
    dir.write_file("hello.txt", "over TLS\n");
    let build = build_cmd(&dir, "FROM busybox\nCOPY hello.txt /hello.txt\n");
    let dest = daemon.build_to_dir(&dir, build, "out");
    assert_eq!(
        std::fs::read_to_string(dest.join("hello.txt")).unwrap(),
        "over TLS\n"
    );

    // Without a client certificate, or with one from another CA: refused, exit code 1.
    for (what, flags) in [
        (
            "no client certificate",
            vec!["--tlscacert".to_string(), certs.path("ca.pem")],
        ),
        (
            "a certificate from another CA",
            vec![
                "--tlscacert".to_string(),
                certs.path("ca.pem"),
                "--tlscert".into(),
                certs.path("rogue.pem"),
                "--tlskey".into(),
                certs.path("rogue.key"),
            ],
        ),
    ] {
        let out = build_cmd(&dir, "FROM busybox\nCOPY hello.txt /hello.txt\n")
            .arg("--addr")
            .arg(&address)
            .args(&flags)
            .output();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what}: expected refusal, got {}:\n{stderr}\nstdout: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains("hoistd") || stderr.contains("daemon"),
            "{what}: {stderr}"
        );
        assert!(
            !stderr.contains("\"kind\""),
            "{what}: no build progress may appear: {stderr}"
        );
    }
    // Plain TCP to a TLS port is refused too.
    let out = build_cmd(&dir, "FROM busybox\n")
        .arg("--addr")
        .arg(&address)
        .output();
    assert_eq!(
        out.status.code(),
        Some(1),
        "plain TCP: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn daemon_refuses_plain_tcp_and_bad_addresses_clearly() {
    let dir = Dir::new("daemon_refuses_plain_tcp");
    let out = Command::new(hoistd_bin())
        .args(["--addr", "tcp://127.0.0.1:1", "--state-dir"])
        .arg(dir.state_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run hoistd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("without TLS"),
        "{stderr}"
    );
    let out = Command::new(hoistd_bin())
        .args(["--addr", "udp://x:1"])
        .stdin(Stdio::null())
        .output()
        .expect("run hoistd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unix:///PATH or tcp://HOST:PORT"),
        "{stderr}"
    );
}

#[test]
fn secrets_reach_the_build_but_not_the_daemons_disk_or_log() {
    let dir = Dir::new("secrets_through_the_session");
    let daemon = Hoistd::start(&dir);
    let value = format!("s3cr3t-{}-value", std::process::id());
    // Outside the context: the secret travels only as a secret.
    let token = out_path(&dir, "token.txt");
    std::fs::write(&token, &value).expect("write token");
    let dockerfile =
        "FROM busybox\nRUN --mount=type=secret,id=token cat /run/secrets/token | wc -c > /len\n";
    let mut build = build_cmd(&dir, dockerfile);
    build.args(["--secret", &format!("id=token,src={}", token.display())]);
    let dest = daemon.build_to_dir(&dir, build, "out");
    assert_eq!(
        std::fs::read_to_string(dest.join("len")).unwrap().trim(),
        value.len().to_string()
    );
    let needle = value.as_bytes();
    for path in walk_names(&daemon.state) {
        if path.is_file() && !path.starts_with(daemon.state.join("sessions/contexts")) {
            let bytes = std::fs::read(&path).unwrap_or_default();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "the secret landed in {}",
                path.display()
            );
        }
    }
    assert!(
        !daemon.log_text().contains(&value),
        "the secret is in hoistd's log"
    );
}

/// `hoist du --format json` through `daemon`.
fn daemon_du(dir: &Dir, daemon: &Hoistd) -> serde_json::Value {
    let out = dir
        .command()
        .args(["du", "--format", "json"])
        .args(daemon.client_args())
        .stdout();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("du printed no JSON ({e}):\n{out}"))
}

/// How many items of `kind` a `du` document (`items`) or prune report (`removed`) lists.
fn count_kind(doc: &serde_json::Value, list: &str, kind: &str) -> usize {
    entries_of_kind(doc, list, kind).len()
}

/// A du document with its items in a fixed order, to compare two listings of one cache.
fn sorted_du(mut doc: serde_json::Value) -> serde_json::Value {
    if let Some(items) = doc["items"].as_array_mut() {
        items.sort_by_key(|i| (i["kind"].to_string(), i["id"].to_string()));
    }
    doc
}

#[test]
fn du_and_prune_through_the_daemon_list_and_remove_its_cache() {
    let dir = Dir::new("du_and_prune_through_the_daemon");
    let mut daemon = Hoistd::start(&dir);
    dir.write_file("a.txt", "A\n");
    let dockerfile = "FROM busybox\nRUN --mount=type=cache,target=/c echo x > /c/x && head -c 65536 /dev/urandom > /r\nCOPY a.txt /\n";
    let mut build = build_cmd(&dir, dockerfile);
    build.arg("-o").arg(format!("type=oci,dest={}", out_path(&dir, "img.tar").display()));
    daemon.build_ok(build);

    // The daemon's cache is listed, not the client's (empty) state directory.
    let doc = daemon_du(&dir, &daemon);
    assert!(count_kind(&doc, "items", "cache-record") >= 2, "{doc:#}");
    assert!(count_kind(&doc, "items", "snapshot") >= 2, "{doc:#}");
    assert_eq!(count_kind(&doc, "items", "cache-mount"), 1, "{doc:#}");
    let sum = du_sized_sum(&doc);
    assert!(sum > 65_536, "{doc:#}");
    assert_eq!(doc["total"].as_u64(), Some(sum), "{doc:#}");
    let local = dir.command().args(["du", "--format", "json"]).stdout();
    let local: serde_json::Value = serde_json::from_str(&local).expect("local du JSON");
    assert_eq!(count_kind(&local, "items", "cache-record"), 0, "{local:#}");
    let table = dir
        .command()
        .args(["du", "--verbose"])
        .args(daemon.client_args())
        .stdout();
    for needle in [
        "KIND",
        "cache-record",
        "cache-mount",
        "Reclaimable:",
        "Total:",
    ] {
        assert!(table.contains(needle), "{needle:?} missing from:\n{table}");
    }

    // The same listing as the embedded engine gives on the daemon's state directory.
    daemon.stop();
    let embedded = dir
        .command()
        .args(["du", "--format", "json", "--state-dir"])
        .arg(&daemon.state)
        .stdout();
    let embedded: serde_json::Value = serde_json::from_str(&embedded).expect("embedded du JSON");
    assert_eq!(sorted_du(embedded), sorted_du(doc.clone()));
    daemon.spawn();

    // prune --all through the daemon removes them; a following du shows them gone.
    let out = dir
        .command()
        .args(["prune", "--all", "-f", "--json"])
        .args(daemon.client_args())
        .stdout();
    let report: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("prune printed no JSON ({e}):\n{out}"));
    for kind in ["cache-record", "snapshot", "cache-mount"] {
        assert_eq!(
            count_kind(&report, "removed", kind),
            count_kind(&doc, "items", kind),
            "every {kind} is removed: {report:#}"
        );
    }
    assert!(report["reclaimed"].as_u64().unwrap() > 65_536, "{report:#}");
    let after = daemon_du(&dir, &daemon);
    for kind in ["cache-record", "snapshot", "cache-mount"] {
        assert_eq!(
            count_kind(&after, "items", kind),
            0,
            "{kind} left: {after:#}"
        );
    }
    let text = dir
        .command()
        .args(["prune", "-f"])
        .args(daemon.client_args())
        .stdout();
    assert!(text.contains("0B reclaimed (0 items removed)"), "{text}");
}

#[test]
fn daemon_frontend_policy_refuses_unlisted_frontends_without_contacting_them() {
    let dir = Dir::new("daemon_frontend_policy");
    let daemon = Hoistd::start_with(&dir, &["--allow-frontend", "registry.example/*"]);
    dir.write_file("a.txt", "A\n");
    let refused = |dockerfile: &str, extra: &[&str]| -> String {
        let out = build_cmd(&dir, dockerfile)
            .args(daemon.client_args())
            .args(extra)
            .output();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "expected a refused build:\n{stderr}\nhoistd log:\n{}",
            daemon.log_text()
        );
        stderr
    };

    let stderr = refused(
        "# syntax=127.0.0.1:1/x/y:1\nFROM busybox\nCOPY a.txt /\n",
        &[],
    );
    assert!(
        stderr.contains("127.0.0.1:1/x/y:1")
            && stderr.contains("refused by the frontend policy")
            && stderr.contains("registry registry.example")
            && stderr.contains("hoistd --allow-frontend"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("onnect") && !stderr.contains("refused (os error"),
        "the registry was contacted: {stderr}"
    );
    // A registry that is listening sees no connection at all.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let stderr = refused(
        &format!("# syntax=127.0.0.1:{port}/x/y:1\nFROM busybox\nCOPY a.txt /\n"),
        &[],
    );
    assert!(
        stderr.contains("refused by the frontend policy"),
        "{stderr}"
    );
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the refused frontend's registry was contacted: {other:?}"),
    }

    // A client's policy narrows the daemon's: both must allow the frontend.
    let stderr = refused(
        "# syntax=registry.example/team/fe:1\nFROM busybox\nCOPY a.txt /\n",
        &["--allow-frontend", "other.example"],
    );
    assert!(
        stderr.contains("refused by the frontend policy")
            && stderr.contains("registry other.example")
            && stderr.contains("set with --allow-frontend or HOIST_ALLOW_FRONTENDS"),
        "{stderr}"
    );
    // And the client's offline mode reaches the daemon: a tag never resolved is an error.
    let stderr = refused(
        "# syntax=registry.example/team/fe:1\nFROM busybox\nCOPY a.txt /\n",
        &["--frontend-offline"],
    );
    assert!(
        stderr.contains("offline, and this tag was never resolved"),
        "{stderr}"
    );

    // Without a syntax line the built-in frontend runs: no policy applies to it.
    let dest = daemon.build_to_dir(&dir, build_cmd(&dir, "FROM busybox\nCOPY a.txt /\n"), "out");
    assert_eq!(std::fs::read_to_string(dest.join("a.txt")).unwrap(), "A\n");
}

#[test]
fn a_failed_daemon_build_ends_like_an_embedded_one() {
    let dir = Dir::new("daemon_failure_report");
    let daemon = Hoistd::start(&dir);
    let meta = out_path(&dir, "meta.json");
    let log = out_path(&dir, "build.log");
    let out = build_cmd(&dir, "FROM busybox\nRUN echo about-to-fail && exit 3\n")
        .args(daemon.client_args())
        .arg("--metadata-file")
        .arg(&meta)
        .arg("--log-file")
        .arg(&log)
        .output();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.last().is_some_and(|l| l.starts_with("ERROR: ")),
        "the report is last:\n{stderr}"
    );
    let json_report = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["kind"] == "failure-report")
        .unwrap_or_else(|| panic!("no failure-report line in rawjson:\n{stderr}"));
    assert!(
        json_report["step"].as_str().is_some_and(|s| s.contains("exit 3")),
        "{json_report}"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta).expect("metadata file")).unwrap();
    assert!(meta["hoist.failure"]["message"].is_string(), "{meta:#}");
    assert!(meta["hoist.explain"].is_object() || meta["hoist.explain"].is_array(), "{meta:#}");
    let log_text = std::fs::read_to_string(&log).expect("log file");
    assert!(log_text.contains("about-to-fail"), "{log_text}");
    assert!(log_text.contains("ERROR: "), "{log_text}");
}
