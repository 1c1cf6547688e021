//! What the benchmarks build from, made offline: a busybox base image (Debian's busybox-static,
//! assembled with umoci) served by a private `docker-registry` on 127.0.0.1, and the build
//! contexts of each scenario.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{symlink, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

/// Runs a command to completion; fails with its output unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Makes the busybox base image as an OCI layout at `layout` (tag `latest`) with umoci:
/// `/bin/busybox` from busybox-static, a symlink per applet, passwd/group, `/tmp` 1777.
pub fn make_base_image(layout: &Path, scratch: &Path) -> Result<()> {
    let image = format!("{}:latest", layout.display());
    let bundle = scratch.join("base-bundle");
    let _ = fs::remove_dir_all(layout);
    let _ = fs::remove_dir_all(&bundle);
    run_ok(Command::new("umoci").args(["init", "--layout"]).arg(layout))?;
    run_ok(Command::new("umoci").args(["new", "--image", &image]))?;
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle),
    )?;
    populate_busybox_rootfs(&bundle.join("rootfs"))?;
    run_ok(
        Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle),
    )?;
    run_ok(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--os",
        "linux",
        "--config.env",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--config.cmd",
        "/bin/sh",
    ]))?;
    run_ok(Command::new("umoci").args(["gc", "--layout"]).arg(layout))?;
    fs::remove_dir_all(&bundle).with_context(|| format!("remove {}", bundle.display()))?;
    Ok(())
}

/// Fills an empty rootfs with busybox, its applet links and the usual top-level directories.
fn populate_busybox_rootfs(root: &Path) -> Result<()> {
    let dirs = [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home", "dev", "proc", "sys",
        "var/tmp", "tmp",
    ];
    for dir in dirs {
        fs::create_dir_all(root.join(dir))?;
    }
    fs::copy("/bin/busybox", root.join("bin/busybox"))
        .context("copy /bin/busybox (apt-get install busybox-static)")?;
    fs::set_permissions(root.join("bin/busybox"), fs::Permissions::from_mode(0o755))?;
    let applets = run_ok(Command::new("/bin/busybox").arg("--list-full"))?;
    for applet in applets
        .lines()
        .map(str::trim)
        .filter(|p| p.contains('/') && *p != "bin/busybox")
    {
        let link = root.join(applet);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        if fs::symlink_metadata(&link).is_err() {
            symlink("/bin/busybox", &link)
                .with_context(|| format!("symlink {}", link.display()))?;
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::set_permissions(root.join("var/tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::set_permissions(root.join("root"), fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// Debian's `docker-registry` on a free port of 127.0.0.1, storage under a given directory;
/// stopped on drop.
pub struct Registry {
    /// The registry process.
    child: Child,
    /// "127.0.0.1:PORT".
    host: String,
}

impl Registry {
    /// Starts the registry with its config and storage in `dir` and waits for `GET /v2/`.
    pub fn start(dir: &Path) -> Result<Registry> {
        fs::create_dir_all(dir.join("storage"))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\nhttp:\n  addr: {host}\n",
                dir.join("storage").display()
            ),
        )?;
        let log = fs::File::create(dir.join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start docker-registry (apt-get install docker-registry)")?;
        let mut registry = Registry { child, host };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !registry.answers() {
            if Instant::now() > deadline || registry.child.try_wait()?.is_some() {
                bail!(
                    "docker-registry did not come up on {}; see {}/registry.log",
                    registry.host,
                    dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }

    /// True if `GET /v2/` answers 200.
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(&self.host) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if write!(stream, "GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.host).is_err() {
            return false;
        }
        let mut head = [0u8; 16];
        matches!(stream.read(&mut head), Ok(n) if n >= 12 && &head[9..12] == b"200")
    }

    /// Copies `tag` of an OCI layout into this registry as `name` with skopeo; returns the reference.
    pub fn push_layout(&self, layout: &Path, name: &str) -> Result<String> {
        let reference = format!("{}/{name}", self.host);
        run_ok(
            Command::new("skopeo")
                .args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:latest", layout.display()))
                .arg(format!("docker://{reference}")),
        )?;
        Ok(reference)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `contents` to `dir/rel`, making parent directories.
pub fn write(dir: &Path, rel: &str, contents: impl AsRef<[u8]>) -> Result<PathBuf> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&path, contents).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// Scenarios 1–3: a small app; its late `COPY src/` uses the file scenario 3 changes.
pub fn simple_context(dir: &Path, base: &str) -> Result<()> {
    let _ = fs::remove_dir_all(dir);
    write(
        dir,
        "Dockerfile",
        format!(
            "FROM {base}\n\
             RUN mkdir -p /app/lib && echo 'hello from RUN' > /app/hello.txt\n\
             COPY config/ /app/config/\n\
             RUN ls -R /app > /app/listing.txt\n\
             COPY src/ /app/src/\n\
             ENV APP_MODE=bench GREETING_FILE=/app/config/greeting.txt\n\
             WORKDIR /app\n\
             CMD [\"sh\", \"/app/src/main.sh\"]\n"
        ),
    )?;
    for i in 0..10 {
        write(
            dir,
            &format!("config/setting-{i}.conf"),
            format!("setting {i} = {}\n", i * 7),
        )?;
    }
    write(dir, "config/greeting.txt", "hello from COPY\n")?;
    for i in 0..40 {
        write(
            dir,
            &format!("src/module-{i}.sh"),
            format!("echo module {i}\n").repeat(20),
        )?;
    }
    write(dir, "src/main.sh", "#!/bin/sh\ncat \"$GREETING_FILE\"\n")?;
    Ok(())
}

/// The file scenario 3 edits, relative to the simple context.
pub const SIMPLE_EDITED_FILE: &str = "src/main.sh";

/// Scenario 4: four independent stages of `RUN sleep 1`, then a final stage copying from all.
pub fn parallel_context(dir: &Path, base: &str) -> Result<()> {
    let _ = fs::remove_dir_all(dir);
    let mut df = String::new();
    for i in 1..=4 {
        df += &format!(
            "FROM {base} AS stage{i}\nRUN sleep 1 && echo 'stage {i} done' > /out{i}.txt\n\n"
        );
    }
    df += &format!("FROM {base}\n");
    for i in 1..=4 {
        df += &format!("COPY --from=stage{i} /out{i}.txt /out/out{i}.txt\n");
    }
    df += "CMD [\"cat\", \"/out/out1.txt\", \"/out/out2.txt\", \"/out/out3.txt\", \"/out/out4.txt\"]\n";
    write(dir, "Dockerfile", df)?;
    Ok(())
}

/// Scenario 5: `COPY data/ /data/` of `files` files totalling about `bytes` bytes (100 per
/// directory, pseudo-random contents that do not compress). The data is reused between runs
/// when a marker says it was made with the same sizes.
pub fn big_context(dir: &Path, base: &str, files: usize, bytes: u64) -> Result<()> {
    write(
        dir,
        "Dockerfile",
        format!("FROM {base}\nCOPY data/ /data/\nCMD [\"ls\", \"/data\"]\n"),
    )?;
    let marker = dir.join(".made");
    let want = format!("{files} {bytes}\n");
    if fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    let _ = fs::remove_dir_all(dir.join("data"));
    let size = usize::try_from(bytes / files.max(1) as u64)?;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut buf = vec![0u8; size];
    for i in 0..files {
        for chunk in buf.chunks_mut(8) {
            // xorshift64*: fast, incompressible enough for layer compression to matter.
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            let v = seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        write(dir, &format!("data/d{:03}/f{i:05}.bin", i / 100), &buf)?;
    }
    fs::write(&marker, want)?;
    // The marker is not part of what the Dockerfile copies.
    Ok(())
}

/// The file scenario 5 touches, relative to the big context.
pub fn big_touched_file(files: usize) -> String {
    let i = files / 2;
    format!("data/d{:03}/f{i:05}.bin", i / 100)
}

/// Scenario 6: a 20-stage Dockerfile of about 500 lines. Each stage sets ENV/ARG/LABEL, runs
/// one multi-line RUN and copies the previous stage's output; the last stage copies from all.
pub fn stages_context(dir: &Path, base: &str) -> Result<usize> {
    let _ = fs::remove_dir_all(dir);
    let stages = 20;
    let mut lines: Vec<String> = vec!["ARG GLOBAL_VERSION=1.0".into()];
    for i in 0..stages {
        lines.push(format!("FROM {base} AS s{i}"));
        lines.push("ARG GLOBAL_VERSION".into());
        lines.push(format!("ARG STAGE_ARG_{i}=value-{i}"));
        lines.push(format!("ENV STAGE={i} \\"));
        for k in 0..5 {
            lines.push(format!("    STAGE_{i}_VAR_{k}=v{k} \\"));
        }
        lines.push(format!("    STAGE_{i}_LAST=done"));
        lines.push(format!("LABEL bench.stage{i}=\"{i}\" \\"));
        lines.push(format!(
            "      bench.stage{i}.version=\"${{GLOBAL_VERSION}}\""
        ));
        lines.push(format!("WORKDIR /work/s{i}"));
        lines.push("RUN set -e; \\".into());
        for k in 0..6 {
            lines.push(format!(
                "    echo \"stage {i} step {k} $STAGE_{i}_VAR_{}\" >> /work/s{i}/log.txt; \\",
                k % 5
            ));
        }
        lines.push(format!("    echo done > /work/s{i}/done.txt"));
        if i > 0 {
            lines.push(format!(
                "COPY --from=s{} /work/s{}/done.txt /work/prev-done.txt",
                i - 1,
                i - 1
            ));
        } else {
            lines.push("COPY Dockerfile /work/Dockerfile".into());
        }
        lines.push(format!("# stage {i} ends here"));
        lines.push(String::new());
    }
    lines.push(format!("FROM {base}"));
    for i in 0..stages {
        lines.push(format!(
            "COPY --from=s{i} /work/s{i}/log.txt /result/s{i}.txt"
        ));
    }
    lines.push("CMD [\"ls\", \"/result\"]".into());
    let count = lines.len();
    write(dir, "Dockerfile", lines.join("\n") + "\n")?;
    Ok(count)
}

/// Unmounts everything mounted under `dir` (deepest first) and removes it.
pub fn remove_tree(dir: &Path) -> Result<()> {
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(prefix.as_str()))
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for point in points {
        let _ = Command::new("umount").arg("-l").arg(point).status();
    }
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}
