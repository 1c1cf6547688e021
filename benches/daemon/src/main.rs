//! `hoist-bench-daemon`: the no-op rebuild time of a 10-stage Dockerfile, embedded and through
//! hoistd, and the peak RSS of `hoist` and `hoistd` for that build. See README.md.
//!
//! Usage: `hoist-bench-daemon [--runs N] [--save]`; binaries from `HOIST_BIN` / `HOISTD_BIN`, else
//! `target/release/{hoist,hoistd}` under `CARGO_TARGET_DIR` (or `./target`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// Stages in the Dockerfile.
const STAGES: usize = 10;

/// Target for the embedded no-op rebuild.
const TARGET_MS: f64 = 50.0;

/// Target for peak RSS.
const TARGET_RSS_MB: f64 = 40.0;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = match args.iter().position(|a| a == "--runs") {
        Some(i) => args.get(i + 1).context("--runs needs a number")?.parse()?,
        None => 5,
    };
    let save = args.iter().any(|a| a == "--save");
    let (hoist, hoistd) = (
        binary("HOIST_BIN", "hoist")?,
        binary("HOISTD_BIN", "hoistd")?,
    );

    let work = tempfile::Builder::new()
        .prefix("hoist-bench-daemon")
        .tempdir()?;
    let layout = work.path().join("busybox");
    make_busybox_layout(&layout)?;
    let context = work.path().join("context");
    std::fs::create_dir_all(&context)?;
    std::fs::write(context.join("Dockerfile"), dockerfile())?;
    for i in 0..STAGES {
        std::fs::write(context.join(format!("f{i}.txt")), format!("stage {i}\n"))?;
    }
    let build_args = |extra: &[String]| {
        let mut a = vec![
            "build".to_string(),
            context.display().to_string(),
            "--progress=plain".into(),
            "--build-context".into(),
            format!("busybox=oci-layout://{}:latest", layout.display()),
        ];
        a.extend(extra.iter().cloned());
        a
    };

    // Embedded.
    let state = work.path().join("state");
    let embedded_flags = vec!["--state-dir".to_string(), state.display().to_string()];
    run_hoist(&hoist, &build_args(&embedded_flags)).context("warm-up build (embedded)")?;
    let embedded: Vec<Run> = (0..runs)
        .map(|_| run_hoist(&hoist, &build_args(&embedded_flags)))
        .collect::<Result<_, _>>()?;

    // Through hoistd.
    let socket = std::env::temp_dir().join(format!("hoist-bench-{}.sock", std::process::id()));
    let address = format!("unix://{}", socket.display());
    let start_daemon = || {
        Command::new(&hoistd)
            .args(["--addr", &address, "--state-dir"])
            .arg(work.path().join("hoistd-state"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting hoistd")
    };
    let stop_daemon = |mut daemon: std::process::Child| {
        let _ = Command::new("kill").arg(daemon.id().to_string()).status();
        let _ = daemon.wait();
    };
    let daemon_flags = vec!["--addr".to_string(), address.clone()];
    // The warm-up build runs every step and compiles the frontend component (wasmtime's
    // compiler is most of that daemon's peak); the measured daemon is a fresh one serving only
    // the no-op rebuilds, as a long-running hoistd does after its first build.
    let daemon = start_daemon()?;
    let warm = (|| {
        wait_for_socket(&socket)?;
        run_hoist(&hoist, &build_args(&daemon_flags)).context("warm-up build (hoistd)")?;
        peak_rss_of(daemon.id())
    })();
    stop_daemon(daemon);
    let warm_rss = warm?;
    let _ = std::fs::remove_file(&socket);
    let daemon = start_daemon()?;
    let result = (|| {
        wait_for_socket(&socket)?;
        let remote: Vec<Run> = (0..runs)
            .map(|_| run_hoist(&hoist, &build_args(&daemon_flags)))
            .collect::<Result<_, _>>()?;
        let hoistd_rss = peak_rss_of(daemon.id())?;
        let resident = resident_by_mapping(daemon.id())?;
        Ok::<_, anyhow::Error>((remote, hoistd_rss, resident))
    })();
    stop_daemon(daemon);
    let (remote, hoistd_rss, resident) = result?;

    let report = |name: &str, runs: &[Run]| {
        let mut ms: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let rss = runs.iter().map(|r| r.max_rss_kb).max().unwrap_or(0) as f64 / 1024.0;
        println!(
            "{name:<9} median {:>7.1} ms  (min {:.1}, max {:.1})   hoist peak RSS {rss:>6.1} MB",
            ms[ms.len() / 2],
            ms[0],
            ms[ms.len() - 1]
        );
        (ms[ms.len() / 2], rss)
    };
    println!("no-op rebuild of a {STAGES}-stage Dockerfile, {runs} runs each (wall time of the hoist process)");
    let (embedded_ms, embedded_rss) = report("embedded", &embedded);
    let (remote_ms, remote_rss) = report("hoistd", &remote);
    let hoistd_mb = hoistd_rss as f64 / 1024.0;
    println!(
        "hoistd peak RSS: {hoistd_mb:.1} MB over the {runs} no-op rebuilds (fresh daemon, compile cache on disk); {:.1} MB over the warm-up build (runs every step, compiles the frontend)",
        warm_rss as f64 / 1024.0
    );
    let shown: Vec<String> = resident
        .iter()
        .take(6)
        .map(|(name, kb)| format!("{name} {:.1} MB", *kb as f64 / 1024.0))
        .collect();
    println!("hoistd resident after the rebuilds, largest mappings: {}", shown.join("; "));
    println!(
        "targets: embedded no-op rebuild < {TARGET_MS} ms: {}; peak RSS < {TARGET_RSS_MB} MB: hoist embedded {}, hoist client {}, hoistd {}",
        verdict(embedded_ms < TARGET_MS),
        verdict(embedded_rss < TARGET_RSS_MB),
        verdict(remote_rss < TARGET_RSS_MB),
        verdict(hoistd_mb < TARGET_RSS_MB),
    );
    if save {
        save_csv(&embedded, &remote, hoistd_rss)?;
    }
    let _ = remote_ms;
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// Ten stages on busybox, each adding a file and a RUN; the last copies from all of them.
fn dockerfile() -> String {
    let mut text = String::new();
    for i in 0..STAGES - 1 {
        text.push_str(&format!(
            "FROM busybox AS s{i}\nCOPY f{i}.txt /f{i}.txt\nRUN cat /f{i}.txt > /out{i}\n\n"
        ));
    }
    text.push_str("FROM busybox\n");
    for i in 0..STAGES - 1 {
        text.push_str(&format!("COPY --from=s{i} /out{i} /out{i}\n"));
    }
    text.push_str(&format!("COPY f{}.txt /\n", STAGES - 1));
    text
}

/// One `hoist` run: wall time and its peak RSS.
struct Run {
    wall: Duration,
    max_rss_kb: i64,
}

/// Runs hoist to completion, measuring wall time and peak RSS (from `wait4`).
fn run_hoist(hoist: &Path, args: &[String]) -> anyhow::Result<Run> {
    let started = Instant::now();
    let child = Command::new(hoist)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = libc::pid_t::try_from(child.id()).context("pid")?;
    let mut stderr = child.stderr.context("stderr")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; `pid` is our own unreaped child.
    #[allow(
        unsafe_code,
        reason = "wait4 is the only way to get one child's peak RSS"
    )]
    let (reaped, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let reaped = libc::wait4(pid, &mut status, 0, &mut usage);
        (reaped, usage)
    };
    let wall = started.elapsed();
    let text = reader.join().unwrap_or_default();
    if reaped != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("hoist {} failed ({status}):\n{text}", args.join(" "));
    }
    Ok(Run {
        wall,
        max_rss_kb: usage.ru_maxrss,
    })
}

/// A process's peak RSS so far (VmHWM), in KiB.
fn peak_rss_of(pid: u32) -> anyhow::Result<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?)
}

/// A process's resident memory now, summed by what is mapped (a file's name, or `[anon]`
/// for anonymous memory, heap and stacks), largest first, in KiB.
fn resident_by_mapping(pid: u32) -> anyhow::Result<Vec<(String, i64)>> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut sums: std::collections::BTreeMap<String, i64> = Default::default();
    let mut current = String::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: ADDRESS PERMS OFFSET DEV INODE [PATH].
            let path = words.nth(4).unwrap_or("");
            current = match path {
                "" | "[heap]" | "[stack]" => "[anon]".to_string(),
                p if p.starts_with('[') => p.to_string(),
                p => Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.to_string()),
            };
        } else if first == "Rss:" {
            let kb: i64 = words.next().unwrap_or("0").parse().unwrap_or(0);
            *sums.entry(current.clone()).or_default() += kb;
        }
    }
    let mut sorted: Vec<(String, i64)> = sums.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1));
    Ok(sorted)
}

fn wait_for_socket(socket: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("hoistd did not listen on {} within 60 s", socket.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A binary from `var`, else the release build.
fn binary(var: &str, name: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Ok(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let path = target.join("release").join(name);
    if !path.is_file() {
        bail!(
            "{} not found: cargo build --release --bin {name}, or set {var}",
            path.display()
        );
    }
    Ok(path)
}

/// A busybox image as an OCI layout, made with umoci from Debian's busybox-static.
fn make_busybox_layout(layout: &Path) -> anyhow::Result<()> {
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new("umoci")
            .args(args)
            .output()
            .context("running umoci (apt-get install umoci)")?;
        if !out.status.success() {
            bail!(
                "umoci {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    let l = layout.display().to_string();
    run(&["init", "--layout", &l])?;
    run(&["new", "--image", &format!("{l}:latest")])?;
    let bundle = layout.with_extension("bundle");
    let b = bundle.display().to_string();
    run(&["unpack", "--image", &format!("{l}:latest"), &b])?;
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .context("copying /bin/busybox (apt-get install busybox-static)")?;
    for applet in ["sh", "cat", "echo"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet))?;
    }
    run(&["repack", "--image", &format!("{l}:latest"), &b])?;
    run(&[
        "config",
        "--image",
        &format!("{l}:latest"),
        "--config.cmd",
        "sh",
    ])?;
    Ok(())
}

/// Writes the runs as CSV under `benches/daemon/runs/<date>-<machine>/`.
fn save_csv(embedded: &[Run], remote: &[Run], hoistd_rss_kb: i64) -> anyhow::Result<()> {
    let date = Command::new("date").arg("+%Y-%m-%d").output()?;
    let host =
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "machine".into());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("runs")
        .join(format!(
            "{}-{}",
            String::from_utf8_lossy(&date.stdout).trim(),
            host.trim()
        ));
    std::fs::create_dir_all(&dir)?;
    let mut csv = String::from("mode,run,wall_ms,hoist_max_rss_kb,hoistd_max_rss_kb\n");
    for (mode, runs) in [("embedded", embedded), ("hoistd", remote)] {
        for (i, r) in runs.iter().enumerate() {
            let daemon = if mode == "hoistd" {
                hoistd_rss_kb.to_string()
            } else {
                String::new()
            };
            csv.push_str(&format!(
                "{mode},{i},{:.3},{},{daemon}\n",
                r.wall.as_secs_f64() * 1000.0,
                r.max_rss_kb
            ));
        }
    }
    std::fs::write(dir.join("bench_daemon.csv"), csv)?;
    println!("saved {}", dir.join("bench_daemon.csv").display());
    Ok(())
}
