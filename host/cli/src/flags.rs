//! hoist's command line, defined once: every flag, its help, its parsing, its test.
//!
//! Two steps, as in ripgrep: [`parse`] turns argv into [`Cli`] — what the user typed, checked
//! without any I/O (a bad `--output` or `--build-arg` is a usage error, exit code 2) — then
//! [`BuildFlags::resolve`] reads the environment, stdin and the file system and produces
//! [`BuildArgs`], the complete build request the engine runs. Help and shell completions are
//! generated from the same definitions.
//!
//! Flags follow `docker buildx build` wherever hoist does the same thing, so habits carry over.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

mod frontend;
mod gc;
#[cfg(test)]
mod tests;

pub use frontend::{FrontendCommand, FrontendFlags};
pub use gc::{DuFlags, DuFormat, PruneFlags};

/// Parses argv; on a usage error the returned clap error exits with code 2 (0 for --help).
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args)
}

/// The clap command, for help, completions and man pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// What the user typed: the top-level command line of `hoist`.
#[derive(Debug, Parser)]
#[command(
    name = "hoist",
    version,
    about = "Build container images; build languages are WebAssembly frontends",
    long_about = None,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Options that apply to every subcommand.
    #[command(flatten)]
    pub global: GlobalFlags,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by all subcommands.
#[derive(Debug, Args)]
pub struct GlobalFlags {
    /// Directory holding hoist's cache, content store and snapshots.
    ///
    /// Defaults to /var/lib/hoist for root, else $XDG_DATA_HOME/hoist (~/.local/share/hoist).
    #[arg(long, global = true, env = "HOIST_STATE_DIR", value_name = "DIR", help_heading = "Global options")]
    pub state_dir: Option<PathBuf>,

    /// Address of a hoistd daemon to build on instead of the embedded engine.
    #[arg(long, global = true, env = "HOIST_HOST", value_name = "ADDR", help_heading = "Global options")]
    pub addr: Option<String>,

    /// CA certificate (PEM) to verify a tcp:// daemon with; enables TLS.
    #[arg(long, global = true, env = "HOIST_TLS_CACERT", value_name = "FILE", help_heading = "Global options")]
    pub tlscacert: Option<PathBuf>,

    /// Client certificate (PEM) for a daemon that requires one.
    #[arg(long, global = true, env = "HOIST_TLS_CERT", value_name = "FILE", help_heading = "Global options")]
    pub tlscert: Option<PathBuf>,

    /// The client certificate's private key (PEM).
    #[arg(long, global = true, env = "HOIST_TLS_KEY", value_name = "FILE", help_heading = "Global options")]
    pub tlskey: Option<PathBuf>,

    /// Name to verify the daemon's certificate against (default: the host of --addr).
    #[arg(long, global = true, env = "HOIST_TLS_SERVER_NAME", value_name = "NAME", help_heading = "Global options")]
    pub tlsservername: Option<String>,
}

impl GlobalFlags {
    /// The engine these options pick: a hoistd daemon with --addr (a bad address is a usage
    /// error), else the embedded engine in the state directory.
    pub fn engine(&self, env: &Environment) -> anyhow::Result<EngineChoice> {
        let Some(addr) = &self.addr else {
            let state_dir = match &self.state_dir {
                Some(d) => env.abs(d),
                None => env.default_state_dir()?,
            };
            return Ok(EngineChoice::Embedded { state_dir });
        };
        let address = hoist_api::Address::parse(addr).map_err(|e| usage(e.to_string()))?;
        let tls = hoist_api::ClientTls {
            ca_cert: self.tlscacert.as_deref().map(|p| env.abs(p)),
            cert: self.tlscert.as_deref().map(|p| env.abs(p)),
            key: self.tlskey.as_deref().map(|p| env.abs(p)),
            server_name: self.tlsservername.clone(),
        };
        if tls.is_enabled() && address.unix_path().is_some() {
            return Err(usage(format!("TLS options apply to tcp:// addresses, not {addr}")));
        }
        Ok(EngineChoice::Remote { address, tls })
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile (or another frontend's input) and a context.
    Build(Box<BuildFlags>),
    /// Publish, fetch and inspect frontends (Wasm OCI artifacts) in registries.
    Frontend(FrontendFlags),
    /// Print hoist's version.
    Version,
    /// Show the build cache's disk usage.
    Du(DuFlags),
    /// Remove build cache.
    Prune(PruneFlags),
    /// Print a shell completion script.
    Completion {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The flags of `hoist build`, as typed (checked, nothing read yet).
#[derive(Debug, Args)]
#[command(about = "Build an image from a Dockerfile and a context")]
pub struct BuildFlags {
    /// Build context: a directory, or "-" to read a Dockerfile from stdin with no context.
    #[arg(value_name = "CONTEXT", default_value = ".", value_parser = ContextArg::parse)]
    pub context: ContextArg,

    /// Dockerfile to build, relative to the current directory ("-" reads it from stdin).
    ///
    /// Defaults to CONTEXT/Dockerfile.
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Name and tag of the image, e.g. "registry.example/app:1" (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]", value_parser = parse_image_name)]
    pub tags: Vec<String>,

    /// Set a build-time variable; "KEY" alone takes its value from the environment.
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]", value_parser = BuildArgFlag::parse)]
    pub build_args: Vec<BuildArgFlag>,

    /// Build this stage of the Dockerfile instead of the last one.
    #[arg(long, value_name = "STAGE", value_parser = parse_nonempty)]
    pub target: Option<String>,

    /// Target platforms, e.g. "linux/amd64,linux/arm64" (repeatable).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_delimiter = ',', value_parser = parse_platform)]
    pub platform: Vec<String>,

    /// Add a named build context: NAME=PATH, NAME=docker-image://REF or NAME=oci-layout://PATH[:TAG].
    #[arg(long = "build-context", value_name = "NAME=VALUE", value_parser = NamedContext::parse)]
    pub build_contexts: Vec<NamedContext>,

    /// Where the result goes: type=oci|docker|image|registry|local|tar with dest=, name=, push=.
    ///
    /// "-o DIR" is short for type=local,dest=DIR and "-o -" for type=tar to stdout (repeatable).
    #[arg(short = 'o', long = "output", value_name = "SPEC", value_parser = ExportSpec::parse)]
    pub outputs: Vec<ExportSpec>,

    /// Push the image to its registry (short for --output type=registry).
    #[arg(long)]
    pub push: bool,

    /// Expose a secret to RUN --mount=type=secret: id=ID,src=PATH or id=ID,env=VAR.
    #[arg(long = "secret", value_name = "SPEC", value_parser = SecretFlag::parse)]
    pub secrets: Vec<SecretFlag>,

    /// Forward an ssh-agent socket to RUN --mount=type=ssh: `default` ($SSH_AUTH_SOCK) or
    /// ID=SOCKET.
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET]")]
    pub ssh: Vec<String>,

    /// Do not use the cache for any step.
    #[arg(long)]
    pub no_cache: bool,

    /// Do not use the cache for these stages (repeatable, comma-separated).
    #[arg(long = "no-cache-filter", value_name = "STAGE", value_delimiter = ',', value_parser = parse_nonempty)]
    pub no_cache_filter: Vec<String>,

    /// Always check the registry for newer versions of base images.
    #[arg(long)]
    pub pull: bool,

    /// Add metadata to the image as a label KEY=VALUE (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,

    /// How to show progress.
    #[arg(long, value_enum, default_value_t = ProgressFlag::Auto, value_name = "MODE")]
    pub progress: ProgressFlag,

    /// What to ask the frontend for: a build, a lint check, an outline of the build args, or
    /// the list of targets.
    #[arg(long, value_enum, default_value_t = CallMode::Build, value_name = "METHOD")]
    pub call: CallMode,

    /// Short for --call=check.
    #[arg(long, conflicts_with = "call")]
    pub check: bool,

    /// Frontend to build with: an image reference of a WebAssembly frontend, or a built-in name.
    ///
    /// Defaults to the Dockerfile's "# syntax=" line, else the built-in Dockerfile frontend.
    /// "file:PATH" runs a component file, e.g. a frontend under development.
    #[arg(long, value_name = "REF", value_parser = parse_nonempty)]
    pub frontend: Option<String>,

    /// Pass an option to the frontend as KEY=VALUE (repeatable).
    #[arg(long = "opt", value_name = "KEY=VALUE", value_parser = parse_opt)]
    pub opts: Vec<(String, String)>,

    /// Allow only frontends matching these rules: a registry HOST[:PORT], a repository
    /// HOST/PATH[/*] or a digest sha256:HEX (repeatable, comma-separated); built-ins always run.
    #[arg(long = "allow-frontend", env = "HOIST_ALLOW_FRONTENDS", value_name = "RULE", value_delimiter = ',')]
    pub allow_frontends: Vec<String>,

    /// Do not ask registries about frontends: a tag keeps the digest its last build resolved.
    #[arg(long, env = "HOIST_FRONTEND_OFFLINE")]
    pub frontend_offline: bool,

    /// Write the build result's metadata (digests, names) as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub metadata_file: Option<PathBuf>,

    /// Explain why each step ran instead of coming from the cache, compared with the last build
    /// of the same target: "text" (on stderr after the progress) or "json" (on stdout).
    #[arg(long, value_enum, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "text")]
    pub explain: Option<ExplainFormat>,

    /// Write the complete log of every step (output with step names and timestamps) to this file.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// Write the image ID (config digest) to this file.
    #[arg(long, value_name = "PATH")]
    pub iidfile: Option<PathBuf>,

    /// Show no progress; print the image digest on success.
    #[arg(short, long)]
    pub quiet: bool,
}

/// The positional build context argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextArg {
    /// A local directory.
    Dir(PathBuf),
    /// "-": the Dockerfile comes from stdin and there are no local files.
    Stdin,
    /// A remote context (git or http URL), not supported yet.
    Url(String),
}

impl ContextArg {
    /// Parses the CONTEXT argument.
    fn parse(s: &str) -> Result<ContextArg, String> {
        if s.is_empty() {
            return Err("the build context must not be empty (use \".\" for the current directory)".into());
        }
        if s == "-" {
            return Ok(ContextArg::Stdin);
        }
        if is_remote_url(s) {
            return Ok(ContextArg::Url(s.to_string()));
        }
        Ok(ContextArg::Dir(PathBuf::from(s)))
    }
}

/// True for git and http(s) URLs, which name remote contexts.
fn is_remote_url(s: &str) -> bool {
    ["http://", "https://", "git://", "git@", "ssh://"].iter().any(|p| s.starts_with(p))
}

/// One `--build-arg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildArgFlag {
    /// The variable's name.
    pub key: String,
    /// Its value; `None` means "take it from the environment".
    pub value: Option<String>,
}

impl BuildArgFlag {
    /// Parses KEY=VALUE or KEY.
    fn parse(s: &str) -> Result<BuildArgFlag, String> {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (s, None),
        };
        check_key(key, "build argument")?;
        Ok(BuildArgFlag { key: key.to_string(), value })
    }
}

/// Checks that a KEY of a KEY=VALUE flag is non-empty and has no whitespace.
fn check_key(key: &str, what: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err(format!("{what} has an empty name"));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(format!("{what} name {key:?} contains whitespace"));
    }
    Ok(())
}

/// Parses KEY=VALUE (the value may be empty, the "=" may not be missing).
fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    check_key(k, "key")?;
    Ok((k.to_string(), v.to_string()))
}

/// Parses a frontend option: KEY=VALUE, or KEY alone for an empty value.
fn parse_opt(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').unwrap_or((s, ""));
    check_key(k, "frontend option")?;
    Ok((k.to_string(), v.to_string()))
}

/// Accepts any non-empty string.
fn parse_nonempty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s.to_string())
}

/// Checks a platform: "local", or OS/ARCH[/VARIANT] made of [a-z0-9_.-].
fn parse_platform(s: &str) -> Result<String, String> {
    if s == "local" {
        return Ok(s.to_string());
    }
    let parts: Vec<&str> = s.split('/').collect();
    let part_ok = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(part_ok) {
        return Err(format!("{s:?} is not a platform: want OS/ARCH[/VARIANT], e.g. linux/amd64"));
    }
    Ok(s.to_ascii_lowercase())
}

/// Checks an image name: [HOST[:PORT]/]PATH[:TAG][@DIGEST], the path lowercase.
pub fn parse_image_name(s: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("invalid image name {s:?}: {why}"));
    if s.is_empty() {
        return bad("empty");
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains whitespace");
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        let Some((alg, hex)) = d.split_once(':') else { return bad("digest is not ALGORITHM:HEX") };
        if alg.is_empty() || hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return bad("digest is not ALGORITHM:HEX");
        }
    }
    // A ':' after the last '/' starts the tag; one before it is a registry port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let ok_first = tag.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok_first || tag.len() > 128 || !tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            return bad("tag must be [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    // The first component is a registry host if it has a '.' or ':' or is "localhost".
    if components.len() > 1 {
        let first = components[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            components.remove(0);
        }
    }
    for c in components {
        let ok = !c.is_empty()
            && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric());
        if !ok {
            return bad("repository path must be lowercase letters, digits and separators [._-]");
        }
    }
    Ok(s.to_string())
}

/// A `--build-context NAME=VALUE`: an extra input the Dockerfile can name in FROM or COPY --from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedContext {
    /// The name the Dockerfile uses (a stage name or an image reference).
    pub name: String,
    /// Where its contents come from.
    pub source: ContextSource,
}

/// Where a named build context's contents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// A local directory.
    Local(PathBuf),
    /// An image in a registry: docker-image://REF.
    Image(String),
    /// An image in an OCI layout directory: oci-layout://PATH[:TAG][@DIGEST].
    OciLayout {
        /// The layout directory.
        path: PathBuf,
        /// The tag to pick, if given.
        tag: Option<String>,
        /// The manifest digest to pick, if given.
        digest: Option<String>,
    },
    /// A git or http(s) URL (not supported yet).
    Url(String),
}

impl NamedContext {
    /// Parses NAME=VALUE.
    fn parse(s: &str) -> Result<NamedContext, String> {
        let (name, value) = s.split_once('=').ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
        check_key(name, "build context")?;
        if value.is_empty() {
            return Err(format!("build context {name:?} has an empty value"));
        }
        let source = if let Some(reference) = value.strip_prefix("docker-image://") {
            ContextSource::Image(parse_image_name(reference)?)
        } else if let Some(rest) = value.strip_prefix("oci-layout://") {
            parse_oci_layout(rest)?
        } else if is_remote_url(value) {
            ContextSource::Url(value.to_string())
        } else {
            ContextSource::Local(PathBuf::from(value))
        };
        Ok(NamedContext { name: name.to_string(), source })
    }
}

/// Parses PATH[:TAG][@DIGEST] after "oci-layout://".
fn parse_oci_layout(s: &str) -> Result<ContextSource, String> {
    let (rest, digest) = match s.rsplit_once('@') {
        Some((r, d)) if d.contains(':') => (r, Some(d.to_string())),
        _ => (s, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(rest[last_slash + i + 1..].to_string())),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(format!("oci-layout://{s} names no directory"));
    }
    if tag.as_deref() == Some("") {
        return Err(format!("oci-layout://{s} has an empty tag"));
    }
    Ok(ContextSource::OciLayout { path: PathBuf::from(path), tag, digest })
}

/// Splits a CSV flag value on commas outside double quotes, dropping the quotes.
fn split_csv(s: &str) -> Result<Vec<String>, String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("fields is never empty").push(c),
        }
    }
    if quoted {
        return Err(format!("unterminated quote in {s:?}"));
    }
    Ok(fields)
}

/// Splits a CSV flag value into KEY=VALUE pairs, in order.
fn split_attrs(s: &str) -> Result<Vec<(String, String)>, String> {
    split_csv(s)?
        .into_iter()
        .map(|field| {
            let (k, v) = field.split_once('=').ok_or_else(|| format!("{field:?} in {s:?} is not KEY=VALUE"))?;
            let k = k.trim().to_ascii_lowercase();
            check_key(&k, "attribute")?;
            Ok((k, v.to_string()))
        })
        .collect()
}

/// Parses "true"/"false" (and 1/0) in an attribute.
fn parse_bool_attr(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{key}={v:?}: want true or false")),
    }
}

/// Where an exporter writes a single file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputDest {
    /// Standard output ("-").
    Stdout,
    /// A file path.
    Path(PathBuf),
}

impl OutputDest {
    /// "-" is stdout, anything else a path.
    fn parse(s: &str) -> OutputDest {
        if s == "-" {
            OutputDest::Stdout
        } else {
            OutputDest::Path(PathBuf::from(s))
        }
    }
}

/// Which exporter an `--output` selects, with the settings that kind needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportKind {
    /// An OCI image layout as a tarball (type=oci).
    Oci {
        /// Where the tarball goes.
        dest: OutputDest,
    },
    /// A `docker load` tarball (type=docker).
    Docker {
        /// Where the tarball goes.
        dest: OutputDest,
    },
    /// The image in hoist's image store, pushed to its registry if `push` (type=image;
    /// type=registry is type=image,push=true).
    Image {
        /// Push to the registry named by the image name.
        push: bool,
    },
    /// The result's files written into a directory (type=local).
    Local {
        /// The directory.
        dest: PathBuf,
    },
    /// The result's files as a tarball (type=tar).
    Tar {
        /// Where the tarball goes.
        dest: OutputDest,
    },
}

/// One checked `--output`: an exporter kind, the image names and the remaining attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSpec {
    /// The exporter and its destination.
    pub kind: ExportKind,
    /// Image names from name= (empty: use the -t tags).
    pub names: Vec<String>,
    /// Other attributes (compression=, oci-mediatypes=, annotation.*=, ...) for the exporter.
    pub attrs: BTreeMap<String, String>,
}

/// The exporter types `--output type=` accepts.
const EXPORT_TYPES: &str = "oci, docker, image, registry, local, tar";

impl ExportSpec {
    /// Parses an `--output` value: CSV attributes, or the DIR / "-" shorthands.
    fn parse(s: &str) -> Result<ExportSpec, String> {
        if s.is_empty() {
            return Err("empty output spec".into());
        }
        if s == "-" {
            let kind = ExportKind::Tar { dest: OutputDest::Stdout };
            return Ok(ExportSpec { kind, names: vec![], attrs: BTreeMap::new() });
        }
        if !s.contains('=') {
            let kind = ExportKind::Local { dest: PathBuf::from(s) };
            return Ok(ExportSpec { kind, names: vec![], attrs: BTreeMap::new() });
        }
        let mut typ = None;
        let mut dest = None;
        let mut push = None;
        let mut names = Vec::new();
        let mut attrs = BTreeMap::new();
        for (k, v) in split_attrs(s)? {
            match k.as_str() {
                "type" => typ = Some(v),
                "dest" => dest = Some(v),
                "push" => push = Some(parse_bool_attr(&k, &v)?),
                "name" => {
                    for name in v.split(',').filter(|n| !n.is_empty()) {
                        names.push(parse_image_name(name)?);
                    }
                }
                _ => {
                    attrs.insert(k, v);
                }
            }
        }
        let typ = typ.ok_or_else(|| format!("{s:?} has no type= (one of {EXPORT_TYPES})"))?;
        let need_dest = |dest: Option<String>| {
            dest.filter(|d| !d.is_empty()).ok_or_else(|| format!("type={typ} needs dest=PATH (or dest=- for stdout)"))
        };
        let kind = match typ.as_str() {
            "oci" => ExportKind::Oci { dest: OutputDest::parse(&need_dest(dest)?) },
            "docker" => ExportKind::Docker { dest: OutputDest::parse(&need_dest(dest)?) },
            "tar" => ExportKind::Tar { dest: OutputDest::parse(&need_dest(dest)?) },
            "local" => {
                let d = need_dest(dest)?;
                if d == "-" {
                    return Err("type=local writes a directory; use type=tar for stdout".into());
                }
                ExportKind::Local { dest: PathBuf::from(d) }
            }
            "image" | "registry" => {
                if dest.is_some() {
                    return Err(format!("type={typ} takes no dest= (it stores or pushes the image)"));
                }
                ExportKind::Image { push: typ == "registry" || push.unwrap_or(false) }
            }
            other => return Err(format!("unknown output type {other:?}: want one of {EXPORT_TYPES}")),
        };
        if push.is_some() && !matches!(kind, ExportKind::Image { .. }) {
            return Err(format!("push= applies to type=image or type=registry, not type={typ}"));
        }
        if !names.is_empty() && matches!(kind, ExportKind::Local { .. } | ExportKind::Tar { .. }) {
            return Err(format!("name= applies to image outputs, not type={typ}"));
        }
        Ok(ExportSpec { kind, names, attrs })
    }

    /// True for exporters that name an image (and so take the -t tags).
    pub fn is_image(&self) -> bool {
        matches!(self.kind, ExportKind::Oci { .. } | ExportKind::Docker { .. } | ExportKind::Image { .. })
    }

    /// The destination if this exporter writes to stdout or a file.
    pub fn file_dest(&self) -> Option<&OutputDest> {
        match &self.kind {
            ExportKind::Oci { dest } | ExportKind::Docker { dest } | ExportKind::Tar { dest } => Some(dest),
            ExportKind::Image { .. } | ExportKind::Local { .. } => None,
        }
    }
}

/// One `--ssh ID[=SOCKET]`: the id and the agent socket (SOCKET, else $SSH_AUTH_SOCK), which
/// must exist and be a socket; key files are not read (load them into an agent with ssh-add).
fn ssh_socket(spec: &str, env: &Environment) -> anyhow::Result<(String, PathBuf)> {
    let (id, path) = match spec.split_once('=') {
        Some((id, path)) => (id, env.abs(Path::new(path))),
        None => match env.vars.get("SSH_AUTH_SOCK") {
            Some(sock) => (spec, env.abs(Path::new(sock))),
            None => return Err(usage(format!("--ssh {spec}: SSH_AUTH_SOCK is not set; start ssh-agent or give {spec}=SOCKET"))),
        },
    };
    if id.is_empty() || path.as_os_str().is_empty() || path.to_string_lossy().contains(',') {
        return Err(usage(format!("--ssh {spec:?}: want default, ID or ID=SOCKET (one agent socket)")));
    }
    let meta = std::fs::metadata(&path).with_context(|| format!("--ssh {id}: cannot read {}", path.display()))?;
    if !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
        return Err(usage(format!(
            "--ssh {id}: {} is not a socket; hoist forwards ssh-agent sockets (load keys with ssh-add)",
            path.display()
        )));
    }
    Ok((id.to_string(), path))
}

/// One `--secret` as typed: its id and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFlag {
    /// The id RUN --mount=type=secret,id=ID refers to.
    pub id: String,
    /// Where the value comes from.
    pub source: SecretSource,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file's contents.
    File(PathBuf),
    /// An environment variable's value.
    Env(String),
}

impl SecretFlag {
    /// Parses id=ID[,src=PATH|,env=VAR][,type=file|env]; with neither src nor env, the value
    /// is the environment variable named ID.
    fn parse(s: &str) -> Result<SecretFlag, String> {
        let (mut id, mut src, mut env, mut typ) = (None, None, None, None);
        for (k, v) in split_attrs(s)? {
            match k.as_str() {
                "id" => id = Some(v),
                "src" | "source" => src = Some(v),
                "env" => env = Some(v),
                "type" => typ = Some(v),
                other => return Err(format!("unknown secret attribute {other:?}: want id, src, env, type")),
            }
        }
        let id = id.filter(|i| !i.is_empty()).ok_or_else(|| format!("secret {s:?} has no id="))?;
        let source = match (typ.as_deref(), src, env) {
            (_, Some(_), Some(_)) => return Err(format!("secret {id:?}: give src= or env=, not both")),
            (Some("env"), Some(_), None) => return Err(format!("secret {id:?}: type=env takes env=, not src=")),
            (Some("file"), None, Some(_)) => return Err(format!("secret {id:?}: type=file takes src=, not env=")),
            (Some("file"), None, None) => return Err(format!("secret {id:?}: type=file needs src=PATH")),
            (Some(t), _, _) if t != "file" && t != "env" => {
                return Err(format!("secret {id:?}: unknown type {t:?}: want file or env"))
            }
            (_, Some(src), None) => SecretSource::File(PathBuf::from(src)),
            (_, None, Some(env)) => SecretSource::Env(env),
            (_, None, None) => SecretSource::Env(id.clone()),
        };
        Ok(SecretFlag { id, source })
    }
}

/// How `--explain` prints the explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    /// Text on stderr, after the progress output.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// How progress is shown (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressFlag {
    /// tty when stderr is a terminal, plain otherwise.
    Auto,
    /// An updating display of running steps.
    Tty,
    /// Plain lines, one per event, for logs and CI.
    Plain,
    /// One JSON object per event, for programs.
    Rawjson,
    /// No progress at all.
    Quiet,
}

/// The progress display a build uses, once "auto" is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// An updating display on a terminal.
    Tty,
    /// Plain lines.
    Plain,
    /// JSON lines.
    RawJson,
    /// Nothing.
    Quiet,
}

/// What `--call` asks the frontend for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CallMode {
    /// Build the image.
    Build,
    /// Run the frontend's lint checks only.
    Check,
    /// List the build args and secrets the build uses.
    Outline,
    /// List the targets (stages) that can be built.
    Targets,
    /// Print the build plan (JSON) of the buildpacks frontend without building.
    Plan,
}

impl CallMode {
    /// The BuildKit `requestid` frontend option of a subrequest, or None for a build.
    pub fn request_id(self) -> Option<&'static str> {
        match self {
            CallMode::Build => None,
            CallMode::Check => Some("frontend.lint"),
            CallMode::Outline => Some("frontend.outline"),
            CallMode::Targets => Some("frontend.targets"),
            CallMode::Plan => Some("frontend.plan"),
        }
    }
}

/// A usage error found while resolving (both -f - and CONTEXT -, ...): exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Returns a usage error as an anyhow error main can recognise.
fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// What resolving may look at: the process environment, made explicit so tests can fake it.
pub struct Environment {
    /// The current directory.
    pub cwd: PathBuf,
    /// Environment variables (for `--build-arg KEY` and env secrets).
    pub vars: BTreeMap<String, String>,
    /// Standard input (for `-f -` and CONTEXT `-`).
    pub stdin: Box<dyn Read>,
    /// Whether standard output is a terminal (tarballs refuse to go there).
    pub stdout_is_tty: bool,
    /// Whether standard error is a terminal (progress "auto" picks tty).
    pub stderr_is_tty: bool,
    /// Whether hoist runs as root (picks the default state directory).
    pub is_root: bool,
}

impl Environment {
    /// The real environment of this process.
    pub fn from_process() -> anyhow::Result<Environment> {
        use std::io::IsTerminal as _;
        Ok(Environment {
            cwd: std::env::current_dir().context("cannot read the current directory")?,
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            stdin: Box::new(std::io::stdin()),
            stdout_is_tty: std::io::stdout().is_terminal(),
            stderr_is_tty: std::io::stderr().is_terminal(),
            is_root: nix::unistd::geteuid().is_root(),
        })
    }

    /// Makes `p` absolute against the current directory.
    fn abs(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.cwd.join(p)
        }
    }

    /// The default state directory: /var/lib/hoist for root, else the XDG data dir.
    fn default_state_dir(&self) -> anyhow::Result<PathBuf> {
        if self.is_root {
            return Ok(PathBuf::from("/var/lib/hoist"));
        }
        if let Some(d) = self.vars.get("XDG_DATA_HOME").filter(|d| Path::new(d).is_absolute()) {
            return Ok(Path::new(d).join("hoist"));
        }
        match self.vars.get("HOME").filter(|h| !h.is_empty()) {
            Some(home) => Ok(Path::new(home).join(".local/share/hoist")),
            None => Err(usage("cannot pick a state directory: HOME is not set; pass --state-dir")),
        }
    }
}

/// Where the Dockerfile (or other frontend definition) comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    /// A file: the frontend reads `filename` from the local context `dir` (BuildKit's
    /// "dockerfile" context).
    File {
        /// The directory holding it.
        dir: PathBuf,
        /// Its name in that directory.
        filename: String,
    },
    /// Bytes read from stdin.
    Inline(Vec<u8>),
    /// No file given and none at CONTEXT/Dockerfile: the frontend decides (a source tree
    /// with no Dockerfile at all).
    Absent,
}

impl fmt::Debug for DockerfileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerfileSource::File { dir, filename } => {
                f.debug_struct("File").field("dir", dir).field("filename", filename).finish()
            }
            DockerfileSource::Inline(bytes) => write!(f, "Inline({:?})", String::from_utf8_lossy(bytes)),
            DockerfileSource::Absent => f.write_str("Absent"),
        }
    }
}

/// A secret's value; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(pub Vec<u8>);

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret, {} bytes>", self.0.len())
    }
}

/// A resolved secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// Its id.
    pub id: String,
    /// Its value.
    pub value: SecretValue,
}

/// Which engine runs the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineChoice {
    /// The engine inside this process, keeping its state here.
    Embedded {
        /// The state directory.
        state_dir: PathBuf,
    },
    /// A hoistd daemon.
    Remote {
        /// Its address.
        address: hoist_api::Address,
        /// TLS settings for a tcp:// address.
        tls: hoist_api::ClientTls,
    },
}

/// A resolved `hoist build`: the whole request, nothing left to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildArgs {
    /// Build, or one of the frontend's query methods.
    pub call: CallMode,
    /// The main local context directory (absolute), None when CONTEXT is "-".
    pub context: Option<PathBuf>,
    /// The Dockerfile.
    pub dockerfile: DockerfileSource,
    /// The frontend asked for with --frontend, if any.
    pub frontend: Option<String>,
    /// Options for the frontend, with BuildKit's keys (filename, target, platform,
    /// build-arg:NAME, label:NAME, no-cache, image-resolve-mode, context:NAME, requestid, and
    /// each --opt), in the order given.
    pub frontend_options: Vec<(String, String)>,
    /// Named build contexts, local paths made absolute.
    pub named_contexts: Vec<NamedContext>,
    /// Secrets, values read.
    pub secrets: Vec<Secret>,
    /// SSH agent sockets by id, paths made absolute and checked to be sockets.
    pub ssh: Vec<(String, PathBuf)>,
    /// Exports, tags merged into image names, paths made absolute.
    pub exports: Vec<ExportSpec>,
    /// The -t tags.
    pub tags: Vec<String>,
    /// --no-cache: no cache for any step.
    pub no_cache: bool,
    /// Stages to build without cache.
    pub no_cache_filter: Vec<String>,
    /// --pull: always resolve base images from the registry.
    pub pull: bool,
    /// The progress display.
    pub progress: ProgressMode,
    /// --quiet: print only the digest.
    pub quiet: bool,
    /// Where to write result metadata JSON.
    pub metadata_file: Option<PathBuf>,
    /// Where to write the image ID.
    pub iidfile: Option<PathBuf>,
    /// --explain: print why steps ran, in this format.
    pub explain: Option<ExplainFormat>,
    /// --log-file: where the complete build log goes.
    pub log_file: Option<PathBuf>,
    /// --allow-frontend: the frontend policy's rules (checked).
    pub allow_frontends: Vec<String>,
    /// --frontend-offline: tags of registry frontends are not re-resolved.
    pub frontend_offline: bool,
    /// The engine that runs the build.
    pub engine: EngineChoice,
}

impl BuildFlags {
    /// Resolves the typed flags against the environment into a complete build request.
    ///
    /// Reads stdin (for "-"), build-arg values from the environment, secret files and
    /// variables, and checks that the context and an explicit Dockerfile exist.
    pub fn resolve(&self, global: &GlobalFlags, env: &mut Environment) -> anyhow::Result<BuildArgs> {
        let engine = global.engine(env)?;
        let call = if self.check { CallMode::Check } else { self.call };

        // The context and the Dockerfile.
        let stdin_file = self.file.as_deref() == Some(Path::new("-"));
        let context = match &self.context {
            ContextArg::Url(url) => return Err(usage(format!("remote build contexts ({url}) are not supported yet"))),
            ContextArg::Stdin if stdin_file => {
                return Err(usage("cannot read both the context and the Dockerfile (-f -) from stdin"))
            }
            ContextArg::Stdin => None,
            ContextArg::Dir(dir) => {
                let dir = env.abs(dir);
                if !dir.is_dir() {
                    anyhow::bail!("build context {} is not a directory", dir.display());
                }
                Some(dir)
            }
        };
        let dockerfile = if stdin_file || context.is_none() {
            if self.file.is_some() && !stdin_file {
                return Err(usage("with CONTEXT \"-\" the Dockerfile comes from stdin; drop -f"));
            }
            let mut bytes = Vec::new();
            env.stdin.read_to_end(&mut bytes).context("cannot read the Dockerfile from stdin")?;
            DockerfileSource::Inline(bytes)
        } else if let Some(file) = &self.file {
            let path = env.abs(file);
            if !path.is_file() {
                anyhow::bail!("Dockerfile {} does not exist or is not a file", path.display());
            }
            dockerfile_at(&path)?
        } else {
            let path = context.as_deref().unwrap_or(&env.cwd).join("Dockerfile");
            if path.is_file() {
                dockerfile_at(&path)?
            } else {
                DockerfileSource::Absent
            }
        };

        // Frontend options with BuildKit's keys.
        let mut opts: Vec<(String, String)> = Vec::new();
        if let DockerfileSource::File { filename, .. } = &dockerfile {
            opts.push(("filename".into(), filename.clone()));
        }
        if let Some(target) = &self.target {
            opts.push(("target".into(), target.clone()));
        }
        if !self.platform.is_empty() {
            opts.push(("platform".into(), self.platform.join(",")));
        }
        for arg in &self.build_args {
            let value = match &arg.value {
                Some(v) => v.clone(),
                // As in buildx: an unset variable means the arg is not passed at all.
                None => match env.vars.get(&arg.key) {
                    Some(v) => v.clone(),
                    None => continue,
                },
            };
            opts.push((format!("build-arg:{}", arg.key), value));
        }
        for (k, v) in &self.labels {
            opts.push((format!("label:{k}"), v.clone()));
        }
        if self.no_cache {
            opts.push(("no-cache".into(), String::new()));
        } else if !self.no_cache_filter.is_empty() {
            opts.push(("no-cache".into(), self.no_cache_filter.join(",")));
        }
        if self.pull {
            opts.push(("image-resolve-mode".into(), "pull".into()));
        }
        if let Some(id) = call.request_id() {
            opts.push(("requestid".into(), id.into()));
        }

        // Named contexts.
        let mut named_contexts = Vec::new();
        for nc in &self.build_contexts {
            let source = match &nc.source {
                ContextSource::Local(p) => {
                    let p = env.abs(p);
                    if !p.is_dir() {
                        anyhow::bail!("build context {:?}: {} is not a directory", nc.name, p.display());
                    }
                    ContextSource::Local(p)
                }
                ContextSource::OciLayout { path, tag, digest } => {
                    let path = env.abs(path);
                    if !path.join("index.json").is_file() {
                        anyhow::bail!("build context {:?}: {} is not an OCI layout (no index.json)", nc.name, path.display());
                    }
                    ContextSource::OciLayout { path, tag: tag.clone(), digest: digest.clone() }
                }
                ContextSource::Url(url) => {
                    return Err(usage(format!("build context {:?}: remote contexts ({url}) are not supported yet", nc.name)))
                }
                ContextSource::Image(r) => ContextSource::Image(r.clone()),
            };
            let value = match &source {
                ContextSource::Local(_) => format!("local:{}", nc.name),
                ContextSource::Image(r) => format!("docker-image://{r}"),
                ContextSource::OciLayout { path, tag, digest } => {
                    let mut v = format!("oci-layout://{}", path.display());
                    if let Some(t) = tag {
                        v.push(':');
                        v.push_str(t);
                    }
                    if let Some(d) = digest {
                        v.push('@');
                        v.push_str(d);
                    }
                    v
                }
                ContextSource::Url(u) => u.clone(),
            };
            opts.push((format!("context:{}", nc.name), value));
            named_contexts.push(NamedContext { name: nc.name.clone(), source });
        }
        opts.extend(self.opts.iter().cloned());
        if self.frontend.as_deref() == Some("gateway.v0") && !opts.iter().any(|(k, v)| k == "source" && !v.is_empty()) {
            return Err(usage("--frontend gateway.v0 needs the frontend's reference: add --opt source=REF"));
        }
        hoist_engine::FrontendPolicy::parse(&self.allow_frontends).map_err(usage)?;

        // Secrets.
        for (i, s) in self.secrets.iter().enumerate() {
            if self.secrets[..i].iter().any(|x| x.id == s.id) {
                return Err(usage(format!("secret {:?} given twice", s.id)));
            }
        }
        let mut secrets = Vec::new();
        for s in &self.secrets {
            let value = match &s.source {
                SecretSource::File(p) => {
                    let p = env.abs(p);
                    std::fs::read(&p).with_context(|| format!("cannot read secret {:?} from {}", s.id, p.display()))?
                }
                SecretSource::Env(var) => env
                    .vars
                    .get(var)
                    .with_context(|| format!("secret {:?}: environment variable {var} is not set", s.id))?
                    .clone()
                    .into_bytes(),
            };
            secrets.push(Secret { id: s.id.clone(), value: SecretValue(value) });
        }
        let ssh = self.ssh.iter().map(|spec| ssh_socket(spec, env)).collect::<anyhow::Result<Vec<_>>>()?;
        if !ssh.is_empty() && matches!(engine, EngineChoice::Remote { .. }) {
            return Err(usage("--ssh is not forwarded to hoistd yet: build with the embedded engine (no --addr)"));
        }

        // Exports.
        let mut exports = self.outputs.clone();
        if self.push {
            if let Some(image) = exports.iter_mut().find(|e| matches!(e.kind, ExportKind::Image { .. })) {
                image.kind = ExportKind::Image { push: true };
            } else {
                exports.push(ExportSpec { kind: ExportKind::Image { push: true }, names: vec![], attrs: BTreeMap::new() });
            }
        }
        if exports.is_empty() && !self.tags.is_empty() && call == CallMode::Build {
            exports.push(ExportSpec { kind: ExportKind::Image { push: false }, names: vec![], attrs: BTreeMap::new() });
        }
        for e in &mut exports {
            if e.is_image() && e.names.is_empty() {
                e.names = self.tags.clone();
            }
            match &mut e.kind {
                ExportKind::Image { push: true } if e.names.is_empty() => {
                    return Err(usage("pushing needs an image name: add -t NAME or name= to --output"))
                }
                ExportKind::Local { dest } => *dest = env.abs(dest),
                ExportKind::Oci { dest: OutputDest::Path(p) }
                | ExportKind::Docker { dest: OutputDest::Path(p) }
                | ExportKind::Tar { dest: OutputDest::Path(p) } => *p = env.abs(p),
                ExportKind::Oci { .. } | ExportKind::Docker { .. } | ExportKind::Tar { .. } | ExportKind::Image { .. } => {}
            }
        }
        let to_stdout = exports.iter().filter(|e| e.file_dest() == Some(&OutputDest::Stdout)).count();
        if to_stdout > 1 {
            return Err(usage("only one --output can write to stdout"));
        }
        if to_stdout == 1 && env.stdout_is_tty {
            return Err(usage("refusing to write a tarball to a terminal: redirect stdout or give dest=PATH"));
        }
        if self.explain == Some(ExplainFormat::Json) && to_stdout == 1 {
            return Err(usage("--explain=json prints to stdout, which an --output already writes to: use --explain=text or --metadata-file"));
        }

        let progress = if self.quiet {
            ProgressMode::Quiet
        } else {
            match self.progress {
                ProgressFlag::Auto if env.stderr_is_tty => ProgressMode::Tty,
                ProgressFlag::Auto | ProgressFlag::Plain => ProgressMode::Plain,
                ProgressFlag::Tty => ProgressMode::Tty,
                ProgressFlag::Rawjson => ProgressMode::RawJson,
                ProgressFlag::Quiet => ProgressMode::Quiet,
            }
        };

        Ok(BuildArgs {
            call,
            context,
            dockerfile,
            frontend: self.frontend.clone(),
            frontend_options: opts,
            named_contexts,
            secrets,
            ssh,
            exports,
            tags: self.tags.clone(),
            no_cache: self.no_cache,
            no_cache_filter: self.no_cache_filter.clone(),
            pull: self.pull,
            progress,
            quiet: self.quiet,
            metadata_file: self.metadata_file.as_deref().map(|p| env.abs(p)),
            iidfile: self.iidfile.as_deref().map(|p| env.abs(p)),
            explain: self.explain,
            log_file: self.log_file.as_deref().map(|p| env.abs(p)),
            allow_frontends: self.allow_frontends.clone(),
            frontend_offline: self.frontend_offline,
            engine,
        })
    }
}

/// Splits an existing Dockerfile path into the directory the frontend reads and the name.
fn dockerfile_at(path: &Path) -> anyhow::Result<DockerfileSource> {
    let filename = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("Dockerfile name {} is not UTF-8", path.display()))?
        .to_string();
    let dir = path.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    Ok(DockerfileSource::File { dir, filename })
}
