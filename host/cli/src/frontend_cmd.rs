//! `hoist frontend push|pull|inspect`: frontends as Wasm OCI artifacts in registries.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use hoist_frontend_oci::{FrontendRegistry, RegistryOptions, Resolved};

use crate::flags::{FrontendCommand, FrontendFlags};

/// Runs one `hoist frontend` subcommand.
pub fn run(flags: FrontendFlags) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let registry = FrontendRegistry::new(RegistryOptions::default());
    runtime.block_on(async {
        match flags.command {
            FrontendCommand::Push { file, reference } => push(&registry, &file, &reference).await,
            FrontendCommand::Pull { reference, output } => {
                pull(&registry, &reference, output).await
            }
            FrontendCommand::Inspect { reference, json } => {
                inspect(&registry, &reference, json).await
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn push(registry: &FrontendRegistry, file: &Path, reference: &str) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let title = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "frontend.wasm".into());
    let pushed = registry
        .push(reference, &bytes, &title)
        .await
        .with_context(|| format!("pushing {} to {reference}", file.display()))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "pushed {} (hoist:frontend@{}, {} bytes)",
        pushed.reference, pushed.world_version, pushed.size
    )?;
    writeln!(out, "digest: {}", pushed.manifest_digest)?;
    writeln!(out, "component: {}", pushed.component_digest)?;
    Ok(())
}

async fn pull(
    registry: &FrontendRegistry,
    reference: &str,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    let resolved = registry.resolve(reference).await?;
    let scratch = tempfile::tempdir().context("making a scratch directory")?;
    let content = hoist_store::ContentStore::open(scratch.path())
        .context("opening a scratch content store")?;
    let digest = registry.fetch(&resolved, &content).await?;
    let bytes = content
        .read(&digest)
        .context("reading the downloaded component")?;
    // The bytes must be the component the config described (tools may omit that part).
    let info = hoist_frontend_oci::describe(&bytes)?;
    let world = hoist_frontend_host::check_world_names(info.imports, info.exports)
        .with_context(|| format!("{reference}"))?;
    match output.as_deref() {
        Some(p) if p == Path::new("-") => std::io::stdout().lock().write_all(&bytes)?,
        _ => {
            let path = output.unwrap_or_else(|| PathBuf::from(default_file_name(&resolved)));
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "pulled {} (hoist:frontend@{}, {} bytes) to {}",
                resolved.pinned,
                world.version,
                bytes.len(),
                path.display()
            );
        }
    }
    Ok(())
}

/// The file name a pulled component gets: its title, else the repository's last part.
fn default_file_name(resolved: &Resolved) -> String {
    let title = resolved
        .layer
        .title
        .as_deref()
        .and_then(|t| Path::new(t).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    title
        .filter(|t| !t.is_empty() && t != "." && t != "..")
        .unwrap_or_else(|| {
            let repo = resolved
                .reference
                .split(['@', ':'])
                .next()
                .unwrap_or("frontend");
            format!("{}.wasm", repo.rsplit('/').next().unwrap_or("frontend"))
        })
}

async fn inspect(registry: &FrontendRegistry, reference: &str, json: bool) -> anyhow::Result<()> {
    let r = registry.resolve(reference).await?;
    let component = r.config.component.clone().unwrap_or_default();
    let version = r.world.as_ref().map(|w| w.version.clone());
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "reference": r.pinned,
            "digest": r.manifest_digest,
            "component": { "digest": r.layer.digest, "size": r.layer.size, "title": r.layer.title },
            "worldVersion": version,
            "created": r.config.created,
            "imports": component.imports,
            "exports": component.exports,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    writeln!(out, "Reference:  {}", r.pinned)?;
    writeln!(out, "Digest:     {}", r.manifest_digest)?;
    writeln!(
        out,
        "Component:  {} ({} bytes{})",
        r.layer.digest,
        r.layer.size,
        r.layer
            .title
            .as_deref()
            .map(|t| format!(", {t}"))
            .unwrap_or_default()
    )?;
    match &version {
        Some(v) => writeln!(out, "World:      hoist:frontend@{v}")?,
        None => writeln!(
            out,
            "World:      not listed in the config (checked when the component loads)"
        )?,
    }
    if !r.config.created.is_empty() {
        writeln!(out, "Created:    {}", r.config.created)?;
    }
    writeln!(out, "Exports:")?;
    for e in &component.exports {
        writeln!(out, "  {e}")?;
    }
    writeln!(out, "Imports:")?;
    for i in &component.imports {
        writeln!(out, "  {i}")?;
    }
    Ok(())
}
