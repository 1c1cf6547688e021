//! COPY and ADD beyond the plain context copy: `--link` layers rebased onto the stage,
//! `--parents`, `--exclude`, and ADD of URLs (served by a small HTTP server on 127.0.0.1 that the
//! test starts) and of git repositories (a local repository served by `git daemon` on
//! 127.0.0.1), checked in the exported image with umoci and skopeo.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::util::{build_cmd, build_oci, out_path, run_ok, sha256_digest, unpack_oci_archive, Dir};

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 file server for ADD <url>

/// One file the server offers.
#[derive(Clone)]
struct Resource {
    body: Vec<u8>,
    etag: String,
    last_modified: Option<String>,
    disposition: Option<String>,
}

/// What the server has seen: request paths and how it answered.
#[derive(Default)]
struct Seen {
    requests: Vec<(String, u16)>,
}

/// An HTTP server on 127.0.0.1 serving [`Resource`]s by path; `ETag`/`If-None-Match` give 304.
struct FileServer {
    port: u16,
    files: Arc<Mutex<HashMap<String, Resource>>>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    fn start() -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let files: Arc<Mutex<HashMap<String, Resource>>> = Arc::default();
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s, st) = (files.clone(), seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let (f, s) = (f.clone(), s.clone());
                    std::thread::spawn(move || serve(stream, &f, &s));
                }
            }
        });
        FileServer {
            port,
            files,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn put(
        &self,
        path: &str,
        body: impl Into<Vec<u8>>,
        last_modified: Option<&str>,
        disposition: Option<&str>,
    ) {
        let body = body.into();
        let etag = format!("\"{}\"", &sha256_digest(&body)[7..23]);
        let resource = Resource {
            body,
            etag,
            last_modified: last_modified.map(str::to_string),
            disposition: disposition.map(str::to_string),
        };
        self.files
            .lock()
            .unwrap()
            .insert(path.to_string(), resource);
    }

    /// Statuses answered for `path`, in order.
    fn statuses(&self, path: &str) -> Vec<u16> {
        let seen = self.seen.lock().unwrap();
        seen.requests
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, s)| *s)
            .collect()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers the requests of one connection.
fn serve(stream: TcpStream, files: &Mutex<HashMap<String, Resource>>, seen: &Mutex<Seen>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let resource = files.lock().unwrap().get(&path).cloned();
        let (status, reason, extra, body) = match resource {
            None => (404, "Not Found", String::new(), b"no such file\n".to_vec()),
            Some(r) if headers.get("if-none-match") == Some(&r.etag) => (
                304,
                "Not Modified",
                format!("ETag: {}\r\n", r.etag),
                Vec::new(),
            ),
            Some(r) => {
                let mut extra = format!("ETag: {}\r\n", r.etag);
                if let Some(lm) = &r.last_modified {
                    extra.push_str(&format!("Last-Modified: {lm}\r\n"));
                }
                if let Some(d) = &r.disposition {
                    extra.push_str(&format!("Content-Disposition: {d}\r\n"));
                }
                (200, "OK", extra, r.body)
            }
        };
        seen.lock().unwrap().requests.push((path, status));
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        );
        if out
            .write_all(head.as_bytes())
            .and_then(|()| out.write_all(&body))
            .is_err()
        {
            return;
        }
    }
}

/// A gzip tar holding `inner.txt`.
fn tar_gz() -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let data = b"inside the archive\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_000_000);
    header.set_cksum();
    builder
        .append_data(&mut header, "inner.txt", &data[..])
        .unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The image config of an OCI archive.
fn config_of(archive: &Path) -> serde_json::Value {
    crate::util::skopeo_inspect(
        &format!("oci-archive:{}", archive.display()),
        &["--config", "--raw"],
    )
}

/// The layer diff ids of an OCI archive's image.
fn diff_ids(archive: &Path) -> Vec<String> {
    let config = config_of(archive);
    config["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// COPY --link, --parents, --exclude

#[test]
fn copy_link_layer_does_not_depend_on_the_stage_below() {
    let dir = Dir::new("copy_link_layer_does_not_depend_on_the_stage_below");
    dir.write_file("a.txt", "linked\n");
    dir.write_file("b.txt", "plain\n");
    let dockerfile = "FROM busybox\nARG V=1\nRUN echo $V > /v\n\
        COPY --link --chmod=640 a.txt /app/\nCOPY b.txt /app/\n";
    let (first, _) = build_oci(&dir, "one", dockerfile, &[]);
    let rootfs = unpack_oci_archive(&first, &out_path(&dir, "one-unpacked"));
    assert_eq!(read(&rootfs.join("app/a.txt")), "linked\n");
    assert_eq!(mode(&rootfs.join("app/a.txt")), 0o640);
    assert_eq!(read(&rootfs.join("app/b.txt")), "plain\n");
    assert_eq!(read(&rootfs.join("v")), "1\n");
    // History: one entry per instruction, a layer for RUN and both COPYs, none for ARG.
    let config = config_of(&first);
    let history: Vec<(String, bool)> = config["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().unwrap_or_default().to_string(),
                h["empty_layer"] == true,
            )
        })
        .collect();
    let expected = [
        ("ARG V=1 # hoist", true),
        ("RUN |1 V=1 /bin/sh -c echo $V > /v # hoist", false),
        ("COPY --link --chmod=640 a.txt /app/ # hoist", false),
        ("COPY b.txt /app/ # hoist", false),
    ];
    let expected: Vec<(String, bool)> = expected.iter().map(|(t, e)| (t.to_string(), *e)).collect();
    assert_eq!(history[history.len() - 4..], expected[..], "{config:#}");
    assert_eq!(
        diff_ids(&first).len(),
        history.iter().filter(|(_, empty)| !empty).count()
    );

    // A different base: the RUN runs again, the linked copy is a cache hit, the plain copy is not.
    // (Only the `[internal] link` merge that stacks the cached layer on the new base runs; it
    // concatenates layers and copies nothing.)
    let (second, steps) = build_oci(&dir, "two", dockerfile, &["--build-arg", "V=2"]);
    assert!(
        !steps.executed_matching("RUN echo $V").is_empty(),
        "{steps:#?}"
    );
    let link_copy = "[stage-0 4/5] COPY --link";
    assert!(
        !steps.cached_matching(link_copy).is_empty(),
        "{steps:#?}"
    );
    assert!(
        steps.executed_matching(link_copy).is_empty(),
        "{steps:#?}"
    );
    assert!(
        !steps.executed_matching("COPY b.txt").is_empty(),
        "{steps:#?}"
    );
    let rootfs = unpack_oci_archive(&second, &out_path(&dir, "two-unpacked"));
    assert_eq!(read(&rootfs.join("v")), "2\n");
    assert_eq!(read(&rootfs.join("app/a.txt")), "linked\n");

    // The linked layer is the very same blob in both images, on top of different RUN layers.
    let (one, two) = (diff_ids(&first), diff_ids(&second));
    assert_eq!(one.len(), two.len());
    let n = one.len();
    assert_ne!(one[n - 3], two[n - 3], "RUN layers differ");
    assert_eq!(
        one[n - 2],
        two[n - 2],
        "the --link layer is rebased, not rebuilt"
    );
}

#[test]
fn copy_parents_keeps_source_directories_and_pivots_at_dot() {
    let dir = Dir::new("copy_parents_keeps_source_directories_and_pivots_at_dot");
    dir.write_file("x/a.txt", "a\n");
    dir.write_file("x/sub/b.txt", "b\n");
    dir.write_file("y/c.txt", "c\n");
    dir.write_file("z.txt", "z\n");
    let dockerfile = "FROM busybox\n\
        COPY --parents x/a.txt y/ /out/\n\
        COPY --parents ./x/./sub/b.txt /pivot/\n\
        COPY --parents */*.txt /glob/\n\
        COPY x/a.txt y/ /flat/\n";
    let (archive, _) = build_oci(&dir, "img", dockerfile, &[]);
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "unpacked"));
    assert_eq!(read(&rootfs.join("out/x/a.txt")), "a\n");
    assert_eq!(read(&rootfs.join("out/y/c.txt")), "c\n");
    assert!(
        !rootfs.join("out/x/sub").exists(),
        "only the named file of x/"
    );
    assert_eq!(read(&rootfs.join("pivot/sub/b.txt")), "b\n");
    assert!(!rootfs.join("pivot/x").exists());
    assert_eq!(read(&rootfs.join("glob/x/a.txt")), "a\n");
    assert_eq!(read(&rootfs.join("glob/y/c.txt")), "c\n");
    assert!(!rootfs.join("glob/z.txt").exists());
    assert!(!rootfs.join("glob/x/sub").exists());
    // Without --parents the same sources land flat.
    assert_eq!(read(&rootfs.join("flat/a.txt")), "a\n");
    assert_eq!(read(&rootfs.join("flat/c.txt")), "c\n");
}

#[test]
fn copy_and_add_exclude_patterns() {
    let dir = Dir::new("copy_and_add_exclude_patterns");
    dir.write_file("src/keep.txt", "keep\n");
    dir.write_file("src/notes.md", "drop\n");
    dir.write_file("src/deep/more.md", "drop\n");
    dir.write_file("src/deep/keep.rs", "keep\n");
    dir.write_file("src/skip/x", "drop\n");
    let dockerfile = "FROM busybox\n\
        COPY --exclude=**/*.md --exclude=skip src/ /copy/\n\
        ADD --exclude=*.md src /add/\n";
    let (archive, _) = build_oci(&dir, "img", dockerfile, &[]);
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "unpacked"));
    assert_eq!(read(&rootfs.join("copy/keep.txt")), "keep\n");
    assert_eq!(read(&rootfs.join("copy/deep/keep.rs")), "keep\n");
    assert!(!rootfs.join("copy/notes.md").exists());
    assert!(!rootfs.join("copy/deep/more.md").exists());
    assert!(!rootfs.join("copy/skip").exists());
    // `*.md` matches at the top only.
    assert!(!rootfs.join("add/notes.md").exists());
    assert_eq!(read(&rootfs.join("add/deep/more.md")), "drop\n");
    assert_eq!(read(&rootfs.join("add/skip/x")), "drop\n");
}

// ---------------------------------------------------------------------------------------------
// ADD <url>

/// `Last-Modified` of the served files, and the same instant in seconds.
const LAST_MODIFIED: &str = "Sun, 09 Sep 2001 01:46:40 GMT";
const LAST_MODIFIED_SECS: i64 = 1_000_000_000;

#[test]
fn add_url_names_modes_times_unpacking_and_revalidation() {
    let dir = Dir::new("add_url_names_modes_times_unpacking_and_revalidation");
    let server = FileServer::start();
    server.put(
        "/files/hello.txt",
        "hello over http\n",
        Some(LAST_MODIFIED),
        None,
    );
    server.put(
        "/download?id=7",
        "report body\n",
        None,
        Some("attachment; filename=\"report.txt\""),
    );
    server.put("/archive.tar.gz", tar_gz(), None, None);
    let hello = server.url("/files/hello.txt");
    let sum = sha256_digest(b"hello over http\n");
    let dockerfile = format!(
        "FROM busybox\n\
         ADD --checksum={sum} {hello} /checked\n\
         ADD {hello} /dl/\n\
         ADD {} /dl/\n\
         ADD --chmod=755 {hello} /dl/renamed\n\
         ADD --unpack=true {archive} /unpacked/\n\
         ADD {archive} /packed/\n",
        server.url("/download?id=7"),
        archive = server.url("/archive.tar.gz"),
    );
    let (archive, _) = build_oci(&dir, "one", &dockerfile, &[]);
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "one-unpacked"));
    let file = rootfs.join("dl/hello.txt");
    assert_eq!(read(&file), "hello over http\n");
    assert_eq!(mode(&file), 0o600, "a download is 0600 as in Docker");
    assert_eq!(
        fs::metadata(&file).unwrap().mtime(),
        LAST_MODIFIED_SECS,
        "mtime from Last-Modified"
    );
    assert_eq!(
        read(&rootfs.join("dl/report.txt")),
        "report body\n",
        "name from Content-Disposition"
    );
    assert_eq!(mode(&rootfs.join("dl/renamed")), 0o755);
    assert_eq!(
        read(&rootfs.join("unpacked/inner.txt")),
        "inside the archive\n"
    );
    assert_eq!(
        fs::read(rootfs.join("packed/archive.tar.gz")).unwrap(),
        tar_gz(),
        "not unpacked by default"
    );
    assert_eq!(read(&rootfs.join("checked")), "hello over http\n");

    // Unchanged on the server: revalidated with the ETag (304), every ADD from the cache.
    let (_, steps) = build_oci(&dir, "two", &dockerfile, &[]);
    assert!(steps.executed_matching("ADD").is_empty(), "{steps:#?}");
    assert_eq!(server.statuses("/files/hello.txt").last(), Some(&304));
    // Changed on the server: downloaded again and the ADDs re-run, except the checksummed one
    // (keyed by its checksum, and first, so on an unchanged base) which stays cached.
    server.put(
        "/files/hello.txt",
        "hello again\n",
        Some(LAST_MODIFIED),
        None,
    );
    let (archive, steps) = build_oci(&dir, "three", &dockerfile, &[]);
    assert!(
        !steps
            .executed_matching(&format!("ADD {hello} /dl/"))
            .is_empty(),
        "{steps:#?}"
    );
    assert!(
        !steps.cached_matching("ADD --checksum").is_empty(),
        "{steps:#?}"
    );
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "three-unpacked"));
    assert_eq!(read(&rootfs.join("dl/hello.txt")), "hello again\n");
    assert_eq!(read(&rootfs.join("checked")), "hello over http\n");
}

#[test]
fn add_url_with_a_wrong_checksum_or_a_missing_file_fails_at_its_line() {
    let dir = Dir::new("add_url_with_a_wrong_checksum_or_a_missing_file_fails_at_its_line");
    let server = FileServer::start();
    server.put("/f.txt", "real content\n", None, None);
    let wrong = sha256_digest(b"other content\n");
    let dockerfile = format!(
        "FROM busybox\nRUN true\nADD --checksum={wrong} {} /f.txt\n",
        server.url("/f.txt")
    );
    let out = build_cmd(&dir, &dockerfile).assert_err();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let actual = sha256_digest(b"real content\n");
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert!(
        stderr.contains(&wrong) && stderr.contains(&actual),
        "names both digests: {stderr}"
    );
    assert!(
        stderr.contains("Dockerfile:3"),
        "points at the ADD line: {stderr}"
    );

    let dockerfile = format!("FROM busybox\nADD {} /f.txt\n", server.url("/missing.txt"));
    let out = build_cmd(&dir, &dockerfile).assert_err();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("404"), "{stderr}");
    assert!(stderr.contains("/missing.txt"), "{stderr}");

    let dockerfile = "FROM busybox\nADD --checksum=sha256:abc a.txt /a\n";
    dir.write_file("a.txt", "a");
    let out = build_cmd(&dir, dockerfile).assert_err();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("checksum can't be specified for non-HTTP(S) sources"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// ADD <git>

/// `git daemon` serving the repositories under a directory on 127.0.0.1; killed on drop.
struct GitDaemon {
    child: Child,
    port: u16,
}

impl GitDaemon {
    fn start(base: &Path) -> GitDaemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return GitDaemon { child, port };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("git daemon did not listen on 127.0.0.1:{port}");
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs git in `repo` with a fixed identity; returns stdout.
fn git(repo: &Path, args: &[&str]) -> String {
    let out = run_ok(
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .args([
                "-c",
                "user.name=hoist",
                "-c",
                "user.email=hoist@example.invalid",
            ])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null"),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository at `<base>/repo.git` (non-bare) with tag `v1` and a later commit on `main`.
fn make_repo(base: &Path) -> (PathBuf, String) {
    let repo = base.join("repo.git");
    fs::create_dir_all(repo.join("docs")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    fs::write(repo.join("app.txt"), "version one\n").unwrap();
    fs::write(repo.join("docs/guide.md"), "# guide\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    git(&repo, &["tag", "-a", "v1", "-m", "v1"]);
    let v1 = git(&repo, &["rev-parse", "HEAD"]);
    fs::write(repo.join("app.txt"), "version two\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "two"]);
    (repo, v1)
}

#[test]
fn add_git_refs_subdirs_keep_git_dir_and_commit_keyed_cache() {
    let dir = Dir::new("add_git_refs_subdirs_keep_git_dir_and_commit_keyed_cache");
    let served = dir.mkdir("served");
    let (repo, v1) = make_repo(&served);
    let daemon = GitDaemon::start(&served);
    let remote = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    let dockerfile = format!(
        "FROM busybox\n\
         ADD {remote}#v1 /v1/\n\
         ADD {remote}#main:docs /docs/\n\
         ADD --keep-git-dir=true {remote} /head/\n\
         ADD --checksum={short} {remote}#v1 /pinned/\n",
        short = &v1[..12],
    );
    let (archive, _) = build_oci(&dir, "one", &dockerfile, &[]);
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "one-unpacked"));
    assert_eq!(read(&rootfs.join("v1/app.txt")), "version one\n");
    assert!(
        !rootfs.join("v1/.git").exists(),
        "no .git without --keep-git-dir"
    );
    assert_eq!(read(&rootfs.join("docs/guide.md")), "# guide\n");
    assert!(
        !rootfs.join("docs/app.txt").exists(),
        "only the subdirectory"
    );
    assert_eq!(read(&rootfs.join("head/app.txt")), "version two\n");
    assert!(
        rootfs.join("head/.git/HEAD").is_file(),
        "--keep-git-dir keeps .git"
    );
    assert_eq!(read(&rootfs.join("pinned/app.txt")), "version one\n");

    // main moves: the ADDs of main re-run, the tag's stay cached.
    fs::write(repo.join("app.txt"), "version three\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "three"]);
    let (archive, steps) = build_oci(&dir, "two", &dockerfile, &[]);
    assert!(!steps.cached_matching("#v1 /v1/").is_empty(), "{steps:#?}");
    assert!(
        !steps.executed_matching("--keep-git-dir").is_empty(),
        "{steps:#?}"
    );
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "two-unpacked"));
    assert_eq!(read(&rootfs.join("head/app.txt")), "version three\n");
    assert_eq!(read(&rootfs.join("v1/app.txt")), "version one\n");

    // A checksum that is not the tag's commit fails, naming both.
    let wrong = "0123456789ab";
    let bad = format!("FROM busybox\nADD --checksum={wrong} {remote}#v1 /x/\n");
    let out = build_cmd(&dir, &bad).assert_err();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("checksum mismatch") && stderr.contains(wrong) && stderr.contains(&v1),
        "{stderr}"
    );
    // An unknown ref is named.
    let bad = format!("FROM busybox\nADD {remote}#no-such-tag /x/\n");
    let out = build_cmd(&dir, &bad).assert_err();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-tag"), "{stderr}");
    drop(daemon);
}
