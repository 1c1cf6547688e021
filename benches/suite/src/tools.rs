//! The builders under comparison and how each is invoked, with its state in a directory of its
//! own so that "cold" means cold.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::fixtures::{remove_tree, run_ok, write};
use crate::measure::{run_measured, Measurement};

/// Which builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// hoist, release build, embedded engine.
    Hoist,
    /// Debian's buildah: `bud --layers --runtime runc`.
    Buildah,
}

/// One builder configuration with a private state directory.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Which builder.
    pub kind: Kind,
    /// Name in tables: "hoist", "buildah", "buildah --jobs=4".
    pub label: String,
    /// Extra build flags of this configuration.
    pub extra: Vec<String>,
    /// The builder's whole state (hoist state dir; buildah root and runroot).
    pub state: PathBuf,
    /// The program run.
    pub program: PathBuf,
    /// Where build logs go.
    pub logs: PathBuf,
}

impl Tool {
    /// Deletes all of the tool's state (images, cache, layers) and makes the directory anew.
    pub fn wipe(&self) -> Result<()> {
        if self.kind == Kind::Buildah && self.state.exists() {
            // Let buildah release what it holds before its directories go.
            let _ = Command::new("buildah")
                .args(self.global_args())
                .args(["rm", "--all"])
                .output();
        }
        remove_tree(&self.state)?;
        fs::create_dir_all(&self.state).with_context(|| format!("mkdir {}", self.state.display()))
    }

    /// Puts the base image into the tool's store without caching anything else, so that the
    /// next build is "cold with the base present". hoist has no `pull` command: it builds
    /// `FROM base` + `RUN true`, which fetches and unpacks the base and caches only that RUN.
    pub fn prime(&self, base: &str, scratch: &Path) -> Result<()> {
        match self.kind {
            Kind::Buildah => {
                run_ok(Command::new("buildah").args(self.global_args()).args([
                    "pull",
                    "-q",
                    "--tls-verify=false",
                    base,
                ]))?;
            }
            Kind::Hoist => {
                let ctx = scratch.join(format!("prime-{}", self.label.replace(' ', "_")));
                write(&ctx, "Dockerfile", format!("FROM {base}\nRUN true\n"))?;
                let log = self.logs.join("prime.log");
                run_measured(&self.hoist_build(&ctx, None), &log)?;
            }
        }
        Ok(())
    }

    /// Builds the context `ctx` (its `Dockerfile`) to an image tagged `bench/TAG` in the tool's
    /// own store, measuring it; the log goes to `logs/LOG_NAME.log`.
    pub fn build(&self, ctx: &Path, tag: &str, log_name: &str) -> Result<Measurement> {
        let log = self.logs.join(format!("{log_name}.log"));
        let cmd = match self.kind {
            Kind::Hoist => self.hoist_build(ctx, Some(tag)),
            Kind::Buildah => {
                let mut cmd = Command::new(&self.program);
                cmd.args(self.global_args())
                    .args(["bud", "--layers", "--runtime", "runc", "--tls-verify=false"])
                    .args(&self.extra)
                    .arg("-t")
                    .arg(format!("bench/{tag}"))
                    .arg("-f")
                    .arg(ctx.join("Dockerfile"))
                    .arg(ctx);
                cmd
            }
        };
        run_measured(&cmd, &log)
            .with_context(|| format!("{} build of {}", self.label, ctx.display()))
    }

    /// `hoist build CTX` with this tool's state dir; with a tag the image is kept in hoist's store.
    fn hoist_build(&self, ctx: &Path, tag: Option<&str>) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("build")
            .arg(ctx)
            .arg("-f")
            .arg(ctx.join("Dockerfile"))
            .arg("--progress=plain")
            .arg("--state-dir")
            .arg(&self.state)
            .args(&self.extra)
            .env_remove("HOIST_HOST")
            .env("NO_COLOR", "1");
        if let Some(tag) = tag {
            cmd.arg("-t").arg(format!("bench/{tag}"));
        }
        cmd
    }

    /// buildah's global flags: private storage under the state directory.
    fn global_args(&self) -> Vec<String> {
        let root = self.state.join("root");
        let runroot = self.state.join("runroot");
        vec![
            "--root".into(),
            root.display().to_string(),
            "--runroot".into(),
            runroot.display().to_string(),
            "--storage-driver".into(),
            "overlay".into(),
        ]
    }

    /// The tool's version line.
    pub fn version(&self) -> String {
        let out = Command::new(&self.program).arg("--version").output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|e| format!("unknown ({e})"))
    }
}
