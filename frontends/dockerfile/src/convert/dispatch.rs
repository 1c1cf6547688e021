//! One stage's conversion: `FROM` picks the base, then each instruction changes the filesystem
//! state, the image config, or the variables later instructions see.

use hoist_frontend_sdk::llb::{self, Exec, State};
use hoist_frontend_sdk::types::{CacheSharing as LlbSharing, Chown, NetworkMode as LlbNetwork, Platform, SecurityMode as LlbSecurity};

use super::image::{Healthcheck, Image};
use super::{ConvertError, Converter, StageResult};
use crate::instructions::{self as mount, MountType};
use crate::instructions::{self, Command, Instruction, NetworkMode, SecurityMode, Stage};
use crate::parser::Location;

/// The shell a shell-form command runs with when the image sets none.
const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// A stage under construction.
pub(super) struct StageBuilder {
    /// `[name n/total]` prefix of progress descriptions.
    name: String,
    total: usize,
    step: usize,
    state: State,
    image: Image,
    /// ARGs declared in this stage with their values.
    args: Vec<(String, String)>,
    /// Whether CMD was set in this stage (an ENTRYPOINT resets an inherited CMD).
    cmd_set: bool,
    platform: Option<Platform>,
}

impl StageBuilder {
    /// Resolves the stage's base and fires the base image's ONBUILD triggers.
    pub(super) fn start(cv: &mut Converter<'_>, index: usize, stage: &Stage) -> Result<StageBuilder, ConvertError> {
        let location = stage.location;
        let globals = cv.global_args.clone();
        let base_name = cv.expand_with(&stage.base_name, &globals, location)?;
        let platform = match &stage.platform {
            Some(p) => {
                let spec = cv.expand_with(p, &globals, location)?;
                Some(
                    hoist_frontend_sdk::parse_platform(&spec)
                        .map_err(|e| ConvertError::at(location, format!("invalid --platform {spec:?}: {}", e.message)))?,
                )
            }
            None => cv.opts.platform.clone(),
        };
        let base = resolve_base(cv, index, &base_name, platform.as_ref(), location)?;
        let name = stage.name.clone().unwrap_or_else(|| format!("stage-{index}"));
        let mut builder = StageBuilder {
            total: stage.commands.len() + 1,
            step: 1,
            state: base.state,
            image: base.image,
            args: Vec::new(),
            cmd_set: false,
            platform,
            name,
        };
        builder.state = builder.state.clone().description(builder.describe(&format!("FROM {base_name}")));
        builder.sync_state_defaults();
        builder.fire_onbuild(cv)?;
        Ok(builder)
    }

    /// The stage's result.
    pub(super) fn finish(self) -> StageResult {
        StageResult { state: self.state, image: self.image }
    }

    /// Applies one instruction.
    pub(super) fn dispatch(&mut self, cv: &mut Converter<'_>, command: &Command) -> Result<(), ConvertError> {
        self.step += 1;
        let loc = command.location;
        match &command.instruction {
            Instruction::From(_) => return Err(ConvertError::at(loc, "FROM inside a stage")),
            Instruction::Run(run) => self.run(cv, run, command)?,
            Instruction::Copy(copy) => {
                let from = match &copy.from {
                    Some(f) => Some(self.expand(cv, f, loc)?),
                    None => None,
                };
                let src = self.copy_source(cv, from.as_deref(), loc)?;
                let sources = CopySpec {
                    sources: &copy.sources,
                    chown: copy.chown.as_deref(),
                    chmod: copy.chmod.as_deref(),
                    exclude: &copy.exclude,
                    unpack: false,
                };
                self.copy(cv, &src, sources, command)?;
            }
            Instruction::Add(add) => {
                for path in &add.sources.source_paths {
                    if path.contains("://") || path.starts_with("git@") {
                        return Err(ConvertError::at(loc, format!("ADD from a URL or git ({path}) is not supported yet")));
                    }
                }
                let src = cv.context.clone();
                let sources = CopySpec {
                    sources: &add.sources,
                    chown: add.chown.as_deref(),
                    chmod: add.chmod.as_deref(),
                    exclude: &add.exclude,
                    unpack: add.unpack.unwrap_or(true),
                };
                self.copy(cv, &src, sources, command)?;
            }
            Instruction::Arg(arg) => {
                for def in &arg.args {
                    let value = match (cv.opts.build_args.get(&def.key), &def.value) {
                        (Some(given), _) => Some(given.clone()),
                        (None, Some(default)) => Some(self.expand(cv, default, loc)?),
                        (None, None) => cv.global_args.iter().rev().find(|(k, _)| *k == def.key).map(|(_, v)| v.clone()),
                    };
                    if let Some(value) = value {
                        self.args.retain(|(k, _)| *k != def.key);
                        self.args.push((def.key.clone(), value));
                    }
                }
                self.sync_state_defaults();
                self.history(command, true);
            }
            Instruction::Env(env) => {
                for kv in &env.env {
                    let value = self.expand(cv, &kv.value, loc)?;
                    self.image.set_env(&kv.key, &value);
                }
                self.sync_state_defaults();
                self.history(command, true);
            }
            Instruction::Label(label) => {
                for kv in &label.labels {
                    let key = self.expand(cv, &kv.key, loc)?;
                    let value = self.expand(cv, &kv.value, loc)?;
                    self.image.config.labels.insert(key, value);
                }
                self.history(command, true);
            }
            Instruction::Workdir(w) => {
                let path = self.expand(cv, &w.path, loc)?;
                let dir = join_path(&self.image.config.working_dir, &path);
                self.image.config.working_dir = dir.clone();
                let mut mkdir = llb::mkdir(dir.clone(), 0o755).parents(true);
                if !self.image.config.user.is_empty() {
                    mkdir = mkdir.chown(Chown::parse(&self.image.config.user));
                }
                self.state = self.apply_meta(self.state.file(mkdir), command, cv);
                self.sync_state_defaults();
                self.history(command, false);
            }
            Instruction::User(u) => {
                self.image.config.user = self.expand(cv, &u.user, loc)?;
                self.sync_state_defaults();
                self.history(command, true);
            }
            Instruction::Expose(e) => {
                for word in &e.ports {
                    for port in self.expand_words(cv, word, loc)? {
                        let port = if port.contains('/') { port } else { format!("{port}/tcp") };
                        self.image.config.exposed_ports.insert(port, Default::default());
                    }
                }
                self.history(command, true);
            }
            Instruction::Volume(v) => {
                for word in &v.volumes {
                    let volume = self.expand(cv, word, loc)?;
                    if volume.is_empty() {
                        return Err(ConvertError::at(loc, "VOLUME specified can not be an empty string"));
                    }
                    self.image.config.volumes.insert(volume, Default::default());
                }
                self.history(command, true);
            }
            Instruction::Entrypoint(e) => {
                self.image.config.entrypoint = Some(self.command_line(&e.cmd));
                if !self.cmd_set {
                    self.image.config.cmd = None;
                }
                self.history(command, true);
            }
            Instruction::Cmd(c) => {
                self.image.config.cmd = Some(self.command_line(&c.cmd));
                self.cmd_set = true;
                self.history(command, true);
            }
            Instruction::Shell(s) => {
                self.image.config.shell = s.shell.clone();
                self.history(command, true);
            }
            Instruction::StopSignal(s) => {
                self.image.config.stop_signal = self.expand(cv, &s.signal, loc)?;
                self.history(command, true);
            }
            Instruction::Healthcheck(h) => {
                let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                self.image.config.healthcheck = Some(Healthcheck {
                    test: h.health.test.clone(),
                    interval: nanos(h.health.interval),
                    timeout: nanos(h.health.timeout),
                    start_period: nanos(h.health.start_period),
                    start_interval: nanos(h.health.start_interval),
                    retries: h.health.retries,
                });
                self.history(command, true);
            }
            Instruction::Onbuild(o) => {
                self.image.config.on_build.push(o.expression.clone());
                self.history(command, true);
            }
            Instruction::Maintainer(m) => {
                self.image.author = m.maintainer.clone();
                self.history(command, true);
            }
        }
        Ok(())
    }

    /// `RUN`: an exec on the stage's filesystem with its mounts.
    fn run(&mut self, cv: &mut Converter<'_>, run: &instructions::RunCommand, command: &Command) -> Result<(), ConvertError> {
        let loc = command.location;
        let args = self.run_args(&run.cmd);
        let mut exec = self.state.run(args);
        for spec in &run.mounts {
            exec = self.add_mount(cv, exec, spec, loc)?;
        }
        if let Some(network) = run.network {
            exec = exec.network(match network {
                NetworkMode::Host => LlbNetwork::Host,
                _ => LlbNetwork::None,
            });
        }
        if run.security == Some(SecurityMode::Insecure) {
            exec = exec.security(LlbSecurity::Insecure);
        }
        exec = exec.description(self.describe(&command.code)).location(cv.opts.filename.clone(), &[lines(loc)]);
        if cv.opts.no_cache {
            exec = exec.ignore_cache();
        }
        self.state = exec.root();
        self.history(command, false);
        Ok(())
    }

    /// The argv of a RUN: exec form as is; shell form (and heredoc scripts) through the shell.
    fn run_args(&self, cmd: &instructions::ShellDependentCmdLine) -> Vec<String> {
        if !cmd.prepend_shell {
            return cmd.cmd_line.clone();
        }
        let mut args = self.shell();
        let mut script = cmd.cmd_line.join(" ");
        if let [file] = cmd.files.as_slice() {
            // `RUN <<EOF` alone: the heredoc body is the script.
            if script.trim_start().starts_with("<<") && !script.contains('\n') {
                script = heredoc_body(file);
            } else {
                script = format!("{script}\n{}{}", heredoc_body(file), file.name);
            }
        } else {
            for file in &cmd.files {
                script = format!("{script}\n{}{}", heredoc_body(file), file.name);
            }
        }
        args.push(script);
        args
    }

    /// Adds one `--mount` to a RUN.
    fn add_mount(&mut self, cv: &mut Converter<'_>, exec: Exec, spec: &str, loc: Location) -> Result<Exec, ConvertError> {
        let env = self.expansion_env(cv);
        let lexer = cv.lexer.clone();
        let mut expand = |value: &str| lexer.process_word(value, &env).map_err(|e| e.to_string());
        let m = mount::parse_mount(spec, &mut expand).map_err(|e| ConvertError::at(loc, e.to_string()))?;
        let target = m.target.clone().unwrap_or_default();
        let target = if target.is_empty() && m.kind != MountType::Secret && m.kind != MountType::Ssh {
            return Err(ConvertError::at(loc, format!("mount {spec:?} needs a target")));
        } else {
            join_path(&self.image.config.working_dir, &target)
        };
        let spec_mount = match m.kind {
            MountType::Bind => {
                let from = self.copy_source(cv, m.from.as_deref(), loc)?;
                // A writable bind is scratch space: its changes are discarded after the step.
                let b = llb::bind(target, &from).selector(m.source.clone().unwrap_or_else(|| "/".into()));
                if m.read_only {
                    b.readonly()
                } else {
                    b
                }
            }
            MountType::Cache => {
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let sharing = match m.sharing {
                    Some(mount::CacheSharing::Private) => LlbSharing::Private,
                    Some(mount::CacheSharing::Locked) => LlbSharing::Locked,
                    _ => LlbSharing::Shared,
                };
                llb::cache(target).id(id).sharing(sharing)
            }
            MountType::Tmpfs => llb::tmpfs(target).size(m.size_limit.unwrap_or(0)),
            MountType::Secret => {
                let id = m.id.clone().or_else(|| m.target.as_deref().and_then(basename)).unwrap_or_default();
                if id.is_empty() {
                    return Err(ConvertError::at(loc, format!("secret mount {spec:?} needs an id or a target")));
                }
                let dest = match &m.target {
                    Some(t) if !t.is_empty() => join_path(&self.image.config.working_dir, t),
                    _ => format!("/run/secrets/{id}"),
                };
                llb::secret(dest, id).secret_file(m.mode.unwrap_or(0o400), m.uid.unwrap_or(0), m.gid.unwrap_or(0), !m.required)
            }
            MountType::Ssh => {
                let id = m.id.clone().unwrap_or_else(|| "default".into());
                let dest = if target.is_empty() { "/run/buildkit/ssh_agent.0".to_string() } else { target };
                llb::ssh(dest, id)
            }
        };
        Ok(exec.with_mount(spec_mount))
    }

    /// `COPY`/`ADD` of sources from `src` into the stage.
    fn copy(&mut self, cv: &mut Converter<'_>, src: &State, spec: CopySpec<'_>, command: &Command) -> Result<(), ConvertError> {
        let loc = command.location;
        let dest = self.expand(cv, &spec.sources.dest, loc)?;
        let dest = if dest.starts_with('/') { dest } else { join_path_keep_slash(&self.image.config.working_dir, &dest) };
        let chown = match spec.chown {
            Some(c) => Some(Chown::parse(&self.expand(cv, c, loc)?)),
            None => None,
        };
        let many = spec.sources.source_paths.len() + spec.sources.source_contents.len() > 1;
        if many && !dest.ends_with('/') {
            return Err(ConvertError::at(loc, "When using COPY with more than one source file, the destination must be a directory and end with a /"));
        }
        let mut actions = Vec::new();
        for path in &spec.sources.source_paths {
            let path = self.expand(cv, path, loc)?;
            let mut action = llb::copy(src, path, dest.clone())
                .follow_symlinks(true)
                .dir_contents_only(true)
                .create_dest_path(true)
                .allow_wildcard(true)
                .allow_empty_wildcard(true)
                .attempt_unpack(spec.unpack)
                .exclude(spec.exclude.iter().cloned());
            if let Some(mode) = spec.chmod {
                action = action.chmod(mode);
            }
            if let Some(owner) = &chown {
                action = action.chown(owner.clone());
            }
            actions.push(action);
        }
        for content in &spec.sources.source_contents {
            let data = if content.expand { self.expand(cv, &content.data, loc)? } else { content.data.clone() };
            let path = if dest.ends_with('/') { format!("{dest}{}", content.path) } else { dest.clone() };
            let mode = spec.chmod.and_then(|m| u32::from_str_radix(m, 8).ok()).unwrap_or(0o644);
            let mut action = llb::mkfile(path, mode, data.into_bytes());
            if let Some(owner) = &chown {
                action = action.chown(owner.clone());
            }
            actions.push(action);
        }
        let file = self.state.file(actions.into_iter().collect::<llb::FileActions>());
        self.state = self.apply_meta(file, command, cv);
        self.history(command, false);
        Ok(())
    }

    /// The state a `--from` (or the build context, when `None`) names.
    fn copy_source(&mut self, cv: &mut Converter<'_>, from: Option<&str>, loc: Location) -> Result<State, ConvertError> {
        let Some(from) = from else { return Ok(cv.context.clone()) };
        if let Some(index) = cv.stage_by_name(from) {
            return Ok(cv.convert_stage(index)?.state);
        }
        if let Some(context) = cv.opts.named_contexts.get(from).cloned() {
            return named_context(cv, from, &context, self.platform.as_ref(), loc).map(|r| r.state);
        }
        Ok(cv.resolve_image(from, self.platform.as_ref(), loc)?.state)
    }

    /// Runs the base image's ONBUILD triggers as if they were the first instructions.
    fn fire_onbuild(&mut self, cv: &mut Converter<'_>) -> Result<(), ConvertError> {
        let triggers = std::mem::take(&mut self.image.config.on_build);
        for trigger in triggers {
            let parsed = crate::parser::parse(&trigger)?;
            for node in &parsed.ast.children {
                let command = instructions::parse_instruction(node)?;
                if matches!(command.instruction, Instruction::Onbuild(_) | Instruction::From(_) | Instruction::Maintainer(_)) {
                    return Err(ConvertError::at(command.location, format!("{} isn't allowed as an ONBUILD trigger", command.instruction.name())));
                }
                self.total += 1;
                self.dispatch(cv, &command)?;
            }
        }
        Ok(())
    }

    /// Describes, locates and (with --no-cache) uncaches the op that made `state`.
    fn apply_meta(&self, state: State, command: &Command, cv: &Converter<'_>) -> State {
        let state = state.description(self.describe(&command.code)).location(cv.opts.filename.clone(), &[lines(command.location)]);
        if cv.opts.no_cache {
            state.ignore_cache()
        } else {
            state
        }
    }

    /// Keeps the state's exec defaults (env, cwd, user) in step with the image config.
    fn sync_state_defaults(&mut self) {
        let mut state = self.state.clone().dir(if self.image.config.working_dir.is_empty() { "/" } else { &self.image.config.working_dir });
        state = state.user(self.image.config.user.clone());
        for (key, value) in self.run_env() {
            state = state.add_env(key, value);
        }
        self.state = state;
    }

    /// The environment a RUN sees: the image env plus the stage's args not shadowed by it.
    fn run_env(&self) -> Vec<(String, String)> {
        let mut env = self.image.env_pairs();
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.insert(0, ("PATH".into(), super::image::DEFAULT_PATH.into()));
        }
        for (key, value) in &self.args {
            if !env.iter().any(|(k, _)| k == key) {
                env.push((key.clone(), value.clone()));
            }
        }
        env
    }

    /// Variables for expansion: args first, then env (env wins).
    fn expansion_env(&self, _cv: &Converter<'_>) -> Vec<(String, String)> {
        let mut vars = self.args.clone();
        vars.extend(self.image.env_pairs());
        vars
    }

    fn expand(&self, cv: &Converter<'_>, word: &str, loc: Location) -> Result<String, ConvertError> {
        cv.expand_with(word, &self.expansion_env(cv), loc)
    }

    fn expand_words(&self, cv: &Converter<'_>, word: &str, loc: Location) -> Result<Vec<String>, ConvertError> {
        cv.lexer
            .process_words(word, &self.expansion_env(cv))
            .map_err(|e| ConvertError::at(loc, format!("failed to expand {word:?}: {e}")))
    }

    /// The SHELL in effect.
    fn shell(&self) -> Vec<String> {
        if self.image.config.shell.is_empty() {
            DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
        } else {
            self.image.config.shell.clone()
        }
    }

    /// CMD/ENTRYPOINT argv: exec form as is, shell form through the SHELL.
    fn command_line(&self, cmd: &instructions::ShellDependentCmdLine) -> Vec<String> {
        if cmd.prepend_shell {
            let mut args = self.shell();
            args.push(cmd.cmd_line.join(" "));
            args
        } else {
            cmd.cmd_line.clone()
        }
    }

    /// `[name step/total] TEXT`, as BuildKit shows steps.
    fn describe(&self, text: &str) -> String {
        format!("[{} {}/{}] {}", self.name, self.step, self.total, text)
    }

    /// Records the instruction in the image history.
    fn history(&mut self, command: &Command, empty_layer: bool) {
        let created_by = match &command.instruction {
            Instruction::Run(run) => format!("RUN {} # hoist", self.run_args(&run.cmd).join(" ")),
            _ => format!("{} # hoist", command.code.trim()),
        };
        self.image.add_history(created_by, empty_layer);
    }
}

/// What a COPY or ADD copies.
struct CopySpec<'a> {
    sources: &'a instructions::SourcesAndDest,
    chown: Option<&'a str>,
    chmod: Option<&'a str>,
    exclude: &'a [String],
    unpack: bool,
}

/// The base of a stage: an earlier stage, scratch, a named context or an image.
fn resolve_base(cv: &mut Converter<'_>, index: usize, base: &str, platform: Option<&Platform>, loc: Location) -> Result<StageResult, ConvertError> {
    if let Some(context) = cv.opts.named_contexts.get(base).cloned() {
        return named_context(cv, base, &context, platform, loc);
    }
    if let Some(other) = cv.stage_by_name(base) {
        if other >= index {
            return Err(ConvertError::at(loc, format!("stage {base:?} must be defined before it is used")));
        }
        return cv.convert_stage(other);
    }
    if base.eq_ignore_ascii_case("scratch") {
        let p = platform.cloned().unwrap_or(Platform { os: "linux".into(), architecture: super::host_arch().into(), variant: None });
        return Ok(StageResult { state: llb::scratch(), image: Image::scratch(&p.os, &p.architecture, p.variant.as_deref()) });
    }
    cv.resolve_image(base, platform, loc)
}

/// A named build context used as a base or copy source.
fn named_context(cv: &mut Converter<'_>, name: &str, value: &str, platform: Option<&Platform>, loc: Location) -> Result<StageResult, ConvertError> {
    if let Some(reference) = value.strip_prefix("docker-image://") {
        return cv.resolve_image(reference, platform, loc);
    }
    if let Some(local) = value.strip_prefix("local:") {
        let image = Image::default();
        return Ok(StageResult { state: llb::local(local).state(), image });
    }
    if value.starts_with("oci-layout://") {
        return cv.resolve_image(value, platform, loc);
    }
    Err(ConvertError::at(loc, format!("named context {name:?} has an unsupported value {value:?}")))
}

/// The heredoc body with `<<-` tab stripping applied.
fn heredoc_body(file: &instructions::ShellInlineFile) -> String {
    if file.chomp {
        file.data.lines().map(|l| l.trim_start_matches('\t')).collect::<Vec<_>>().join("\n") + "\n"
    } else {
        file.data.clone()
    }
}

/// The (start, end) lines of a location.
fn lines(loc: Location) -> (u32, u32) {
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    (clamp(loc.start_line), clamp(loc.end_line))
}

/// The last component of a path.
fn basename(path: &str) -> Option<String> {
    path.trim_end_matches('/').rsplit('/').next().filter(|s| !s.is_empty()).map(str::to_string)
}

/// `path` made absolute against `base` and cleaned (`.` and `..` removed, no trailing slash).
pub(crate) fn join_path(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') { path.to_string() } else { format!("{}/{path}", if base.is_empty() { "" } else { base }) };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Like [`join_path`] but keeps a trailing slash (it means "into this directory" for COPY).
fn join_path_keep_slash(base: &str, path: &str) -> String {
    let joined = join_path(base, path);
    if (path.ends_with('/') || path.ends_with("/.") || path == ".") && joined != "/" {
        format!("{joined}/")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_like_docker() {
        assert_eq!(join_path("/app", "src"), "/app/src");
        assert_eq!(join_path("", "src"), "/src");
        assert_eq!(join_path("/app", "/opt/../etc"), "/etc");
        assert_eq!(join_path_keep_slash("/app", "lib/"), "/app/lib/");
        assert_eq!(join_path_keep_slash("/app", "."), "/app/");
        assert_eq!(join_path_keep_slash("/", "."), "/");
    }
}
