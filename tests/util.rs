//! The harness of hoist's end-to-end tests: temp dirs, the `hoist` binary, a real registry,
//! a locally made busybox base image, and wrappers over skopeo and umoci that check our
//! images from the outside.
//!
//! Everything here is test code: it panics with a readable message instead of returning errors,
//! because a failed step is a failed test.

// Not every test module uses every helper.
#![allow(dead_code, reason = "helpers are shared by test modules that each use a subset")]

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// Directory for everything the tests write; Cargo makes it for integration tests.
fn tmp_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hoist-tests");
    fs::create_dir_all(&root).unwrap_or_else(|e| panic!("mkdir {}: {e}", root.display()));
    root
}

/// Root of the hoist workspace (the parent of this package).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Runs a command to completion, panicking with its full output unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!("{}", describe_failure(cmd, &out, "command failed"));
    }
    out
}

/// Formats a command with its status and both output streams, for panic messages.
fn describe_failure(cmd: &Command, out: &Output, what: &str) -> String {
    format!(
        "\n{what}: {cmd:?}\nstatus: {}\n\nstdout:\n{}\n\nstderr:\n{}\n",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    )
}

// ---------------------------------------------------------------------------------------------
// Dir

/// A fresh directory per test: `path()` is the working directory (the build context, usually),
/// `state_dir()` a private hoist state directory beside it. Removed on drop unless
/// `HOIST_TEST_KEEP` is set.
pub struct Dir {
    /// The temp directory holding `work/` and `state/`.
    tmp: Option<tempfile::TempDir>,
    /// The working directory.
    work: PathBuf,
    /// The hoist state directory for commands run from here.
    state: PathBuf,
}

impl Dir {
    /// Makes a new, empty directory named after `name` (usually the test's name).
    pub fn new(name: &str) -> Dir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{name}-{n}-"))
            .tempdir_in(tmp_root())
            .unwrap_or_else(|e| panic!("tempdir for {name}: {e}"));
        let work = tmp.path().join("work");
        let state = tmp.path().join("state");
        fs::create_dir_all(&work).expect("mkdir work");
        fs::create_dir_all(&state).expect("mkdir state");
        Dir { tmp: Some(tmp), work, state }
    }

    /// The working directory.
    pub fn path(&self) -> &Path {
        &self.work
    }

    /// The private hoist state directory (`HOIST_STATE_DIR` of commands made here).
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// A path inside the working directory.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.work.join(rel)
    }

    /// Writes a file (making its parent directories), relative to the working directory.
    pub fn write_file(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Writes a file and sets its permission bits (e.g. `0o755`).
    pub fn write_file_mode(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let path = self.write_file(rel, contents);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        path
    }

    /// Makes a directory and its parents, relative to the working directory.
    pub fn mkdir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let path = self.join(rel);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        path
    }

    /// Makes a symlink at `link` (relative to the working directory) pointing at `target`
    /// (stored verbatim).
    pub fn symlink(&self, target: impl AsRef<Path>, link: impl AsRef<Path>) -> PathBuf {
        let path = self.join(link);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        symlink(target.as_ref(), &path).unwrap_or_else(|e| panic!("symlink {}: {e}", path.display()));
        path
    }

    /// Reads a file relative to the working directory as UTF-8.
    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        let path = self.join(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// A `hoist` command run from the working directory with this Dir's state directory.
    pub fn command(&self) -> TestCommand {
        let mut cmd = Command::new(hoist_bin());
        cmd.current_dir(&self.work)
            .env("HOIST_STATE_DIR", &self.state)
            .env_remove("HOIST_HOST")
            .env("NO_COLOR", "1");
        TestCommand { cmd, stdin: None }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if std::env::var_os("HOIST_TEST_KEEP").is_some() {
            if let Some(tmp) = self.tmp.take() {
                eprintln!("keeping test dir {}", tmp.keep().display());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The hoist binary

/// Path of the `hoist` binary under test.
///
/// `CARGO_BIN_EXE_hoist` only exists for tests in hoist-cli's own package, so the harness asks
/// Cargo for it: once per test process it runs `cargo build --bin hoist` in the workspace root
/// (a no-op when up to date, so the binary is never stale) and takes the path Cargo reports.
/// Building from the root selects the default members, so features unify as they do for a
/// root `cargo test` and no dependency is compiled twice. Set `HOIST_BIN` to test another
/// binary instead.
pub fn hoist_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("HOIST_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root())
            .args(["build", "--bin", "hoist"])
            .args(["--message-format", "json-render-diagnostics"]);
        let out = run_ok(&mut cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "hoist")
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| panic!("cargo build reported no hoist executable:\n{stdout}"))
    })
}

/// A `hoist` invocation with helpers that assert on its outcome.
pub struct TestCommand {
    /// The command to run.
    cmd: Command,
    /// Bytes fed to its standard input, if any.
    stdin: Option<Vec<u8>>,
}

impl TestCommand {
    /// The underlying command, for anything the helpers do not cover.
    pub fn cmd(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, A>(&mut self, args: I) -> &mut TestCommand
    where
        I: IntoIterator<Item = A>,
        A: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.env(key, val);
        self
    }

    /// Feeds these bytes to standard input.
    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut TestCommand {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs the command and returns its output, whatever its status.
    pub fn output(&mut self) -> Output {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.cmd.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not run {:?}: {e}", self.cmd));
        if let Some(bytes) = self.stdin.clone() {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            std::thread::spawn(move || {
                // The command may exit without reading; that is its business.
                let _ = pipe.write_all(&bytes);
            });
        }
        child.wait_with_output().unwrap_or_else(|e| panic!("wait for {:?}: {e}", self.cmd))
    }

    /// Runs the command, asserts it succeeded, and returns its standard output.
    pub fn stdout(&mut self) -> String {
        let out = self.output();
        if !out.status.success() {
            panic!("{}", describe_failure(&self.cmd, &out, "hoist failed"));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the command, asserts it failed, and returns its output.
    pub fn assert_err(&mut self) -> Output {
        let out = self.output();
        if out.status.success() {
            panic!("{}", describe_failure(&self.cmd, &out, "hoist succeeded, expected failure"));
        }
        out
    }

    /// Runs the command, asserts it exited with `code`, and returns its standard error.
    pub fn assert_exit(&mut self, code: i32) -> String {
        let out = self.output();
        if out.status.code() != Some(code) {
            let what = format!("expected exit code {code}");
            panic!("{}", describe_failure(&self.cmd, &out, &what));
        }
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Registry

/// A private OCI registry: Debian's `docker-registry` on 127.0.0.1, with temp storage and
/// config, stopped on drop.
pub struct Registry {
    /// The running registry process.
    child: Child,
    /// "127.0.0.1:PORT".
    host: String,
    /// Holds the config, the storage and the log.
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on a free port and waits until `GET /v2/` answers 200.
    pub fn start() -> Registry {
        let mut last = String::new();
        for _ in 0..5 {
            match Registry::try_start() {
                Ok(reg) => return reg,
                Err(why) => last = why,
            }
        }
        panic!("could not start docker-registry: {last}");
    }

    /// One attempt: a port picked then released may be taken by someone else meanwhile.
    fn try_start() -> Result<Registry, String> {
        let dir = tempfile::Builder::new()
            .prefix("registry-")
            .tempdir_in(tmp_root())
            .map_err(|e| format!("tempdir: {e}"))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("pick a port: {e}"))?
            .port();
        let host = format!("127.0.0.1:{port}");
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage).map_err(|e| format!("mkdir storage: {e}"))?;
        let config = dir.path().join("config.yml");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: warn\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {host}\n",
            storage.display()
        );
        fs::write(&config, yaml).map_err(|e| format!("write config: {e}"))?;
        let log_path = dir.path().join("registry.log");
        let log = fs::File::create(&log_path).map_err(|e| format!("create log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("dup log: {e}"))?;
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("spawn /usr/bin/docker-registry (apt-get install docker-registry): {e}"))?;
        let mut reg = Registry { child, host, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if reg.v2_ok() {
                return Ok(reg);
            }
            if let Ok(Some(status)) = reg.child.try_wait() {
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("registry exited with {status}:\n{log}"));
            }
            if Instant::now() > deadline {
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("registry did not answer on {} in 20s:\n{log}", reg.host));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True if `GET /v2/` answers 200.
    fn v2_ok(&self) -> bool {
        http_get_status(&self.host, "/v2/") == Some(200)
    }

    /// "127.0.0.1:PORT", for image references like `{host}/busybox:latest`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The registry's storage directory.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Every request the registry has answered so far, as `METHOD PATH`, oldest first (from
    /// its access log). The log is written as each response completes, so this waits until it
    /// has not grown for 200 ms.
    pub fn requests(&self) -> Vec<String> {
        let read = || {
            let log = fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
            log.lines()
                .filter_map(|l| l.split_once("] \"").map(|(_, rest)| rest))
                .filter_map(|r| {
                    let mut words = r.split_whitespace();
                    Some(format!("{} {}", words.next()?, words.next()?))
                })
                .collect::<Vec<String>>()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = read();
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let now = read();
            if now.len() == last.len() || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The entries of `kind` in list `list` of a `hoist du --format json` document (`items`) or a
/// `hoist prune --json` report (`removed`).
pub fn entries_of_kind<'a>(
    doc: &'a serde_json::Value,
    list: &str,
    kind: &str,
) -> Vec<&'a serde_json::Value> {
    doc[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list:?} in {doc:#}"))
        .iter()
        .filter(|i| i["kind"] == kind)
        .collect()
}

/// The sizes a `du` document lists, cache records aside (they own no bytes of their own):
/// what its `total` must be.
pub fn du_sized_sum(doc: &serde_json::Value) -> u64 {
    doc["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {doc:#}"))
        .iter()
        .filter(|i| i["kind"] != "cache-record")
        .map(|i| i["size"].as_u64().unwrap_or_else(|| panic!("no size in {i}")))
        .sum()
}

/// Sends `GET path` over plain HTTP/1.0 and returns the status code, if any answer came.
pub fn http_get_status(host: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// The busybox base image

/// An OCI image layout directory holding one image under the tag `latest`.
#[derive(Debug, Clone)]
pub struct OciLayout {
    /// The layout directory.
    pub dir: PathBuf,
    /// Digest of the image manifest ("sha256:...").
    pub manifest_digest: String,
}

impl OciLayout {
    /// The `oci-layout://` reference hoist takes for this image (`--build-context`, `FROM`).
    pub fn oci_layout_ref(&self) -> String {
        format!("oci-layout://{}:latest", self.dir.display())
    }

    /// Pushes the image to `reg` as `busybox:latest` with skopeo; returns the reference.
    pub fn push(&self, reg: &Registry) -> String {
        let dest = format!("{}/busybox:latest", reg.host());
        let src = format!("oci:{}:latest", self.dir.display());
        run_ok(Command::new("skopeo").args(["--insecure-policy", "copy", "--dest-tls-verify=false"]).args([
            src,
            format!("docker://{dest}"),
        ]));
        dest
    }
}

/// The busybox base image, made once per test process from Debian's busybox-static.
///
/// The layout is rebuilt on every run (it is cheap) into a staging directory and moved into
/// place under the test temp dir only if it differs, so concurrent test processes agree.
pub fn busybox_image() -> &'static OciLayout {
    static IMAGE: OnceLock<OciLayout> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let root = tmp_root();
        let final_dir = root.join("busybox-oci");
        let staging = root.join(format!("busybox-oci.tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let manifest_digest = write_busybox_layout(&staging);
        let same = fs::read(final_dir.join("index.json")).ok() == fs::read(staging.join("index.json")).ok();
        if same {
            let _ = fs::remove_dir_all(&staging);
        } else {
            let _ = fs::remove_dir_all(&final_dir);
            if fs::rename(&staging, &final_dir).is_err() {
                // Another process moved an identical layout in first.
                let _ = fs::remove_dir_all(&staging);
            }
        }
        OciLayout { dir: final_dir, manifest_digest }
    })
}

/// Modification time of every entry in the fixture images: reproducible builds.
const FIXTURE_MTIME: u64 = 0;

/// The `app` user of the fixture images.
pub const APP_UID: u32 = 1000;

/// Writes the busybox image as an OCI layout into `dest` (which must not exist yet) and returns
/// its manifest digest. The same busybox binary always gives the same digest.
pub fn write_busybox_layout(dest: &Path) -> String {
    let busybox = fs::read("/bin/busybox").expect("read /bin/busybox (apt-get install busybox-static)");
    let out = run_ok(Command::new("/bin/busybox").arg("--list-full"));
    let applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|p| p.contains('/') && *p != "bin/busybox")
        .map(String::from)
        .collect();

    let mut entries: Vec<FixtureEntry> = Vec::new();
    for dir in ["bin", "dev", "etc", "home", "proc", "sbin", "sys", "usr", "usr/bin", "usr/sbin", "var"] {
        entries.push(FixtureEntry::dir(dir, 0o755));
    }
    entries.push(FixtureEntry::dir("root", 0o700));
    entries.push(FixtureEntry::dir("tmp", 0o1777));
    entries.push(FixtureEntry::dir("var/tmp", 0o1777));
    entries.push(FixtureEntry { uid: APP_UID, gid: APP_UID, ..FixtureEntry::dir("home/app", 0o755) });
    entries.push(FixtureEntry::file("bin/busybox", 0o755, busybox));
    entries.push(FixtureEntry::file(
        "etc/passwd",
        0o644,
        "root:x:0:0:root:/root:/bin/sh\n\
         app:x:1000:1000:app:/home/app:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    ));
    entries.push(FixtureEntry::file("etc/group", 0o644, "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"));
    for applet in &applets {
        entries.push(FixtureEntry::symlink(applet, "/bin/busybox"));
    }
    write_oci_layout(dest, entries, &["sh"])
}

/// One entry of a fixture layer.
#[derive(Debug, Clone)]
pub struct FixtureEntry {
    /// Path inside the image, relative, no leading slash.
    pub path: String,
    /// Permission bits (with setuid/setgid/sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// What the entry is.
    pub kind: FixtureKind,
}

/// What a fixture entry is.
#[derive(Debug, Clone)]
pub enum FixtureKind {
    /// A directory.
    Dir,
    /// A regular file with these contents.
    File(Vec<u8>),
    /// A symlink to this target.
    Symlink(String),
}

impl FixtureEntry {
    /// A root-owned directory.
    pub fn dir(path: &str, mode: u32) -> FixtureEntry {
        FixtureEntry { path: path.into(), mode, uid: 0, gid: 0, kind: FixtureKind::Dir }
    }

    /// A root-owned file.
    pub fn file(path: &str, mode: u32, data: impl Into<Vec<u8>>) -> FixtureEntry {
        FixtureEntry { path: path.into(), mode, uid: 0, gid: 0, kind: FixtureKind::File(data.into()) }
    }

    /// A root-owned symlink.
    pub fn symlink(path: &str, target: &str) -> FixtureEntry {
        FixtureEntry { path: path.into(), mode: 0o777, uid: 0, gid: 0, kind: FixtureKind::Symlink(target.into()) }
    }
}

/// The OCI name of this machine's architecture.
pub fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Writes a one-layer image of `entries` as an OCI layout in `dest` tagged `latest`, with `cmd`
/// as its default command; returns the manifest digest. Entries are sorted by path, times fixed
/// and gzip headers constant, so equal input gives equal digests.
pub fn write_oci_layout(dest: &Path, mut entries: Vec<FixtureEntry>, cmd: &[&str]) -> String {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries.dedup_by(|a, b| a.path == b.path);
    let mut builder = tar::Builder::new(Vec::new());
    for e in &entries {
        let mut header = tar::Header::new_ustar();
        header.set_mode(e.mode);
        header.set_uid(u64::from(e.uid));
        header.set_gid(u64::from(e.gid));
        header.set_mtime(FIXTURE_MTIME);
        let res = match &e.kind {
            FixtureKind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, format!("{}/", e.path), std::io::empty())
            }
            FixtureKind::File(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, &e.path, data.as_slice())
            }
            FixtureKind::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, &e.path, target)
            }
        };
        res.unwrap_or_else(|err| panic!("tar entry {}: {err}", e.path));
    }
    let layer_tar = builder.into_inner().expect("finish layer tar");
    let diff_id = sha256_digest(&layer_tar);
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::default());
    gz.write_all(&layer_tar).expect("gzip layer");
    let layer_gz = gz.finish().expect("finish gzip");

    let created = "1970-01-01T00:00:00Z";
    let config = serde_json::json!({
        "created": created,
        "architecture": oci_arch(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": cmd,
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": created, "created_by": "hoist-tests fixture" }],
    });
    let config = serde_json::to_vec(&config).expect("config json");

    let blobs = dest.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).unwrap_or_else(|e| panic!("mkdir {}: {e}", blobs.display()));
    let put = |bytes: &[u8]| -> String {
        let digest = sha256_digest(bytes);
        let hex = digest.trim_start_matches("sha256:");
        fs::write(blobs.join(hex), bytes).expect("write blob");
        digest
    };
    let config_digest = put(&config);
    let layer_digest = put(&layer_gz);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest,
            "size": layer_gz.len(),
        }],
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest json");
    let manifest_digest = put(&manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": "latest" },
        }],
    });
    fs::write(dest.join("index.json"), serde_json::to_vec(&index).expect("index json")).expect("write index.json");
    fs::write(dest.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    manifest_digest
}

/// "sha256:<hex>" of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

// ---------------------------------------------------------------------------------------------
// skopeo and umoci: checking images from the outside

/// Runs `skopeo inspect` (plus `extra` flags such as `--raw` or `--config`) on a reference with
/// its transport (`docker://`, `oci:`, `oci-archive:`, `docker-archive:`) and parses the JSON.
/// TLS is off for `docker://` references: test registries are plain HTTP on 127.0.0.1.
pub fn skopeo_inspect(reference: &str, extra: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new("skopeo");
    cmd.args(["--insecure-policy", "inspect"]).args(extra);
    if reference.starts_with("docker://") {
        cmd.arg("--tls-verify=false");
    }
    cmd.arg(reference);
    let out = run_ok(&mut cmd);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("skopeo inspect {reference}: bad JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
}

/// Unpacks image `tag` of an OCI layout with `umoci unpack` into `bundle`; returns its rootfs.
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    run_ok(Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:{tag}", layout.display())).arg(bundle));
    bundle.join("rootfs")
}

/// Unpacks the (only or first) image of an OCI archive tarball, as `--output type=oci` writes
/// it, into `<dest>/bundle/rootfs` with umoci; returns the rootfs path.
///
/// The archive is extracted to `<dest>/layout` first; if its index names no tag, the copy is
/// tagged `hoist-test` so umoci can address it.
pub fn unpack_oci_archive(archive: &Path, dest: &Path) -> PathBuf {
    let layout = dest.join("layout");
    fs::create_dir_all(&layout).unwrap_or_else(|e| panic!("mkdir {}: {e}", layout.display()));
    let file = fs::File::open(archive).unwrap_or_else(|e| panic!("open {}: {e}", archive.display()));
    tar::Archive::new(file)
        .unpack(&layout)
        .unwrap_or_else(|e| panic!("extract {}: {e}", archive.display()));
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(
        &fs::read(&index_path).unwrap_or_else(|e| panic!("{} has no index.json: {e}", archive.display())),
    )
    .expect("index.json is JSON");
    let ref_key = "org.opencontainers.image.ref.name";
    let first = &mut index["manifests"][0];
    assert!(first.is_object(), "{} index.json lists no manifest", archive.display());
    let tag = match first["annotations"][ref_key].as_str() {
        // umoci wants a bare tag; a full reference keeps its part after the last ':'.
        Some(name) if !name.contains('/') && !name.contains(':') => name.to_string(),
        _ => {
            first["annotations"][ref_key] = serde_json::Value::from("hoist-test");
            fs::write(&index_path, serde_json::to_vec(&index).expect("json")).expect("rewrite index.json");
            "hoist-test".to_string()
        }
    };
    umoci_unpack(&layout, &tag, &dest.join("bundle"))
}

/// Runs a shell command inside a rootfs with `chroot` (root only) and returns its stdout.
pub fn chroot_sh(rootfs: &Path, script: &str) -> String {
    let out = run_ok(Command::new("chroot").arg(rootfs).args(["/bin/sh", "-c", script]).env("PATH", "/bin:/usr/bin:/sbin:/usr/sbin"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A line-by-line diff of two texts, marking lines only in `expected` with `-` and only in
/// `got` with `+`; used by `eqnice!`.
pub fn line_diff(expected: &str, got: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    // Longest common subsequence table; test outputs are small.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "  {}", a[i]);
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Builds: Dockerfiles on the busybox base, exported and checked from the outside

/// A `hoist build .` in `dir` of `dockerfile` (written to `Dockerfile` in the working directory),
/// with the named context `busybox` bound to the fixture image, this Dir's state directory and
/// `--progress=rawjson`; callers add outputs and flags.
pub fn build_cmd(dir: &Dir, dockerfile: &str) -> TestCommand {
    build_cmd_progress(dir, dockerfile, "rawjson")
}

/// [`build_cmd`] with another `--progress` mode (`plain`, `quiet`, ...).
pub fn build_cmd_progress(dir: &Dir, dockerfile: &str, progress: &str) -> TestCommand {
    dir.write_file("Dockerfile", dockerfile);
    let mut cmd = dir.command();
    cmd.args(["build", ".", "-f", "Dockerfile", &format!("--progress={progress}"), "--state-dir"])
        .arg(dir.state_dir())
        .arg("--build-context")
        .arg(format!("busybox={}", busybox_image().oci_layout_ref()));
    cmd
}

/// Builds `dockerfile` in `dir` (plus `extra` flags) to an OCI archive at `<dir>/<name>.tar`,
/// panicking on failure; returns the archive path and the build's steps.
pub fn build_oci(dir: &Dir, name: &str, dockerfile: &str, extra: &[&str]) -> (PathBuf, Steps) {
    let archive = out_path(dir, format!("{name}.tar"));
    let out = build_cmd(dir, dockerfile)
        .args(extra)
        .arg("-o")
        .arg(format!("type=oci,dest={}", archive.display()))
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "hoist build failed ({}):\n{dockerfile}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        Steps::parse(&stderr).readable(&stderr),
    );
    assert!(archive.is_file(), "build succeeded but wrote no {}", archive.display());
    (archive, Steps::parse(&stderr))
}

/// Builds like [`build_oci`] and unpacks the image with umoci; returns the rootfs and the archive.
pub fn build_rootfs(dir: &Dir, name: &str, dockerfile: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let (archive, _) = build_oci(dir, name, dockerfile, extra);
    let rootfs = unpack_oci_archive(&archive, &out_path(dir, format!("{name}-unpacked")));
    (rootfs, archive)
}

/// The manifest digest `skopeo inspect` reports for an OCI archive.
pub fn archive_digest(archive: &Path) -> String {
    let info = skopeo_inspect(&format!("oci-archive:{}", archive.display()), &[]);
    info["Digest"].as_str().unwrap_or_else(|| panic!("no Digest in {info:#}")).to_string()
}

/// What a `--progress=rawjson` stream says about a build's steps, in order of events.
#[derive(Debug, Default, Clone)]
pub struct Steps {
    /// Names of vertices that started executing.
    pub executed: Vec<String>,
    /// Names of vertices answered from the cache.
    pub cached: Vec<String>,
    /// Names of vertices that failed, with their errors.
    pub failed: Vec<(String, String)>,
    /// Log output of all vertices, decoded, by vertex name.
    pub logs: Vec<(String, String)>,
    /// The reason kinds of each `vertex-explained` event (`first-build`, `files`, ...), by name.
    pub explained: Vec<(String, Vec<String>)>,
}

impl Steps {
    /// Parses the solver events of a rawjson stream; other lines are ignored.
    pub fn parse(stderr: &str) -> Steps {
        let mut steps = Steps::default();
        let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for line in stderr.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            if v["kind"] != "solver" {
                continue;
            }
            let ev = &v["event"];
            let vertex = ev["vertex"].as_str().unwrap_or_default().to_string();
            let name = ev["name"].as_str().unwrap_or_default().to_string();
            if !name.is_empty() {
                names.insert(vertex.clone(), name.clone());
            }
            match ev["type"].as_str() {
                Some("vertex-started") => steps.executed.push(name),
                Some("vertex-cached") => steps.cached.push(name),
                Some("vertex-failed") => steps.failed.push((name, ev["error"].as_str().unwrap_or_default().to_string())),
                Some("log") => {
                    let data = base64_decode(ev["data"].as_str().unwrap_or_default());
                    let who = names.get(&vertex).cloned().unwrap_or(vertex);
                    steps.logs.push((who, String::from_utf8_lossy(&data).into_owned()));
                }
                Some("vertex-explained") => {
                    let reasons = ev["explanation"]["reasons"].as_array().cloned().unwrap_or_default();
                    let kinds = reasons.iter().filter_map(|r| r["kind"].as_str().map(str::to_string));
                    steps.explained.push((name, kinds.collect()));
                }
                _ => {}
            }
        }
        steps
    }

    /// The explanation reason kinds of the steps whose names contain `needle`.
    pub fn reasons_matching(&self, needle: &str) -> Vec<&str> {
        let matching = self.explained.iter().filter(|(n, _)| n.contains(needle));
        matching.flat_map(|(_, kinds)| kinds.iter().map(String::as_str)).collect()
    }

    /// Names of executed steps containing `needle`.
    pub fn executed_matching(&self, needle: &str) -> Vec<&str> {
        self.executed.iter().filter(|n| n.contains(needle)).map(String::as_str).collect()
    }

    /// Names of cached steps containing `needle`.
    pub fn cached_matching(&self, needle: &str) -> Vec<&str> {
        self.cached.iter().filter(|n| n.contains(needle)).map(String::as_str).collect()
    }

    /// All log output, concatenated.
    pub fn all_logs(&self) -> String {
        self.logs.iter().map(|(_, text)| text.as_str()).collect()
    }

    /// A summary for panic messages: steps executed and cached, then the non-JSON stderr lines.
    pub fn readable(&self, stderr: &str) -> String {
        let plain: Vec<&str> = stderr.lines().filter(|l| !l.starts_with('{')).collect();
        format!(
            "executed: {:#?}\ncached: {:#?}\nfailed: {:#?}\nlogs:\n{}\nother stderr:\n{}",
            self.executed,
            self.cached,
            self.failed,
            self.all_logs(),
            plain.join("\n")
        )
    }
}

/// Decodes standard base64 (with or without padding); the tests' only use is rawjson log data.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter_map(value) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// `stat` of a path inside an unpacked rootfs without following a final symlink:
/// (mode with file type bits, uid, gid, inode, link count).
pub fn lstat(path: &Path) -> (u32, u32, u32, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
    (m.mode(), m.uid(), m.gid(), m.ino(), m.nlink())
}

/// A path beside the build context (under `<tmp>/out/`, next to `work/` and `state/`) for
/// outputs and unpacked images, so no build's output becomes part of a later build's context.
pub fn out_path(dir: &Dir, rel: impl AsRef<Path>) -> PathBuf {
    let out = dir.state_dir().parent().expect("the state dir has a parent").join("out");
    fs::create_dir_all(&out).unwrap_or_else(|e| panic!("mkdir {}: {e}", out.display()));
    out.join(rel)
}
