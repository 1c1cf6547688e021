//! One stage's conversion: `FROM` picks the base, then each instruction changes the filesystem
//! state, the image config, or the variables later instructions see.
//!
//! Layers follow BuildKit: `RUN`, `COPY`, `ADD` and a `WORKDIR` other than `/` each add exactly
//! one op on top of the stage's filesystem (and one non-empty history entry); every other
//! instruction only changes the config or the variables and records an empty-layer entry.

use std::collections::BTreeSet;

use hoist_frontend_sdk::llb::{self, MountSpec, State};
use hoist_frontend_sdk::types::{
    CacheSharing as LlbSharing, Chown, NetworkMode as LlbNetwork, Platform,
    SecurityMode as LlbSecurity,
};

use super::image::{Healthcheck, Image};
use super::remote::{self, AddSource};
use super::{lint, ConvertError, Converter, StageResult};
use crate::instructions::{self, Command, Instruction, NetworkMode, SecurityMode, Stage};
use crate::instructions::{CacheSharing, Mount, MountType};
use crate::parser::{self, Location};
use crate::shell::Lexer;

/// The shell a shell-form command runs with when the image sets none.
const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// Where a `RUN <<EOF` script is mounted, as BuildKit does.
const HEREDOC_SCRIPT_DIR: &str = "/dev/pipes/";

/// A stage under construction.
pub(super) struct StageBuilder {
    /// The stage name in progress descriptions (`stage-N` when unnamed).
    name: String,
    /// Steps in the stage: FROM, the base image's ONBUILD triggers, the instructions.
    total: usize,
    /// The step being converted (1 is FROM).
    step: usize,
    state: State,
    image: Image,
    /// ARGs declared in this stage that have a value, with it.
    args: Vec<(String, String)>,
    /// Every ARG name declared in this stage, with a value or not.
    declared: BTreeSet<String>,
    /// Whether CMD was set in this stage (an ENTRYPOINT resets an inherited CMD).
    cmd_set: bool,
    platform: Option<Platform>,
}

impl StageBuilder {
    /// Resolves the stage's base and fires the base's ONBUILD triggers.
    pub(super) fn start(
        cv: &mut Converter<'_>,
        index: usize,
        stage: &Stage,
    ) -> Result<StageBuilder, ConvertError> {
        let location = stage.location;
        let base_name = cv.expand_global(&stage.base_name, location)?;
        if base_name.is_empty() {
            let message = format!("base name ({}) should not be blank", stage.base_name);
            return Err(ConvertError::at(location, message));
        }
        let platform = match &stage.platform {
            Some(p) => Some(parse_platform(&cv.expand_global(p, location)?, location)?),
            None => cv.opts.platform.clone(),
        };
        let base = resolve_base(cv, index, &base_name, platform.as_ref(), location)?;
        let mut image = base.result.image;
        let triggers = onbuild_commands(std::mem::take(&mut image.config.on_build), location)?;
        let mut builder = StageBuilder {
            name: stage
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{index}")),
            total: stage.commands.len() + triggers.len() + 1,
            step: 1,
            state: base.result.state,
            image,
            args: Vec::new(),
            declared: BTreeSet::new(),
            cmd_set: false,
            platform,
        };
        if base.fresh {
            let text = builder.describe(&format!("FROM {base_name}"));
            builder.state = builder.state.description(text);
        }
        if let Some(p) = &builder.platform {
            builder.state = builder.state.platform(p.clone());
        }
        builder.sync_state_defaults();
        for trigger in &triggers {
            builder.dispatch(cv, trigger)?;
        }
        Ok(builder)
    }

    /// The stage's result.
    pub(super) fn finish(self) -> StageResult {
        StageResult {
            state: self.state,
            image: self.image,
        }
    }

    /// Applies one instruction.
    pub(super) fn dispatch(
        &mut self,
        cv: &mut Converter<'_>,
        command: &Command,
    ) -> Result<(), ConvertError> {
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
                let spec = CopySpec {
                    name: "COPY",
                    sources: &copy.sources,
                    chown: copy.chown.as_deref(),
                    chmod: copy.chmod.as_deref(),
                    exclude: &copy.exclude,
                    link: copy.link,
                    parents: copy.parents,
                    add: None,
                };
                self.copy(cv, &src, spec, command)?;
            }
            Instruction::Add(add) => {
                let src = cv.context.clone();
                let checksum = match &add.checksum {
                    Some(c) => Some(self.expand(cv, c, loc)?),
                    None => None,
                };
                let spec = CopySpec {
                    name: "ADD",
                    sources: &add.sources,
                    chown: add.chown.as_deref(),
                    chmod: add.chmod.as_deref(),
                    exclude: &add.exclude,
                    link: add.link,
                    parents: false,
                    add: Some(AddOptions {
                        unpack: add.unpack,
                        checksum,
                        keep_git_dir: add.keep_git_dir,
                    }),
                };
                self.copy(cv, &src, spec, command)?;
            }
            Instruction::Arg(arg) => {
                for def in &arg.args {
                    let value = match (cv.opts.build_args.get(&def.key), &def.value) {
                        (Some(given), _) => Some(given.clone()),
                        (None, Some(default)) => Some(self.expand(cv, default, loc)?),
                        (None, None) => cv.global_value(&def.key),
                    };
                    self.declared.insert(def.key.clone());
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
                // `WORKDIR /` creates nothing, so it adds no layer.
                let layer = dir != "/";
                if layer {
                    let mut mkdir = llb::mkdir(dir, 0o755).parents(true);
                    if !self.image.config.user.is_empty() {
                        mkdir = mkdir.chown(Chown::parse(&self.image.config.user));
                    }
                    self.state = self.apply_meta(self.state.file(mkdir), command, cv);
                }
                self.sync_state_defaults();
                self.history(command, !layer);
            }
            Instruction::User(u) => {
                self.image.config.user = self.expand(cv, &u.user, loc)?;
                self.sync_state_defaults();
                self.history(command, true);
            }
            Instruction::Expose(e) => {
                for word in &e.ports {
                    for spec in self.expand_words(cv, word, loc)? {
                        for port in expose_ports(&spec).map_err(|m| ConvertError::at(loc, m))? {
                            self.image
                                .config
                                .exposed_ports
                                .insert(port, Default::default());
                        }
                    }
                }
                self.history(command, true);
            }
            Instruction::Volume(v) => {
                for word in &v.volumes {
                    let volume = self.expand(cv, word, loc)?;
                    if volume.is_empty() {
                        let message = "VOLUME specified can not be an empty string";
                        return Err(ConvertError::at(loc, message));
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
                let signal = self.expand(cv, &s.signal, loc)?;
                if !valid_signal(&signal) {
                    return Err(ConvertError::at(loc, format!("Invalid signal: {signal}")));
                }
                self.image.config.stop_signal = signal;
                self.history(command, true);
            }
            Instruction::Healthcheck(h) => {
                let nanos =
                    |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
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
    fn run(
        &mut self,
        cv: &mut Converter<'_>,
        run: &instructions::RunCommand,
        command: &Command,
    ) -> Result<(), ConvertError> {
        let loc = command.location;
        let mut exec = match heredoc_script(&run.cmd) {
            Some((name, script)) => {
                let mut args = self.shell();
                args.push(format!("{HEREDOC_SCRIPT_DIR}{name}"));
                self.state
                    .run(args)
                    .with_mount(llb::bind(HEREDOC_SCRIPT_DIR, &script).readonly())
            }
            None => self.state.run(self.run_args(&run.cmd)),
        };
        let mut ssh_dests = Vec::new();
        for spec in &run.mounts {
            let mount = self.parse_mount(cv, spec, loc)?;
            exec = exec.with_mount(self.mount_spec(cv, &mount, spec, &mut ssh_dests, loc)?);
        }
        // As BuildKit's LLB does: the first ssh socket is the agent unless the env names one.
        if let Some(first) = ssh_dests.first() {
            if self.state.get_env("SSH_AUTH_SOCK").is_none() {
                exec = exec.env("SSH_AUTH_SOCK", first.clone());
            }
        }
        match run.network {
            Some(NetworkMode::Host) => exec = exec.network(LlbNetwork::Host),
            Some(NetworkMode::None) => exec = exec.network(LlbNetwork::None),
            Some(NetworkMode::Default) | None => {}
        }
        if run.security == Some(SecurityMode::Insecure) {
            exec = exec.security(LlbSecurity::Insecure);
        }
        exec = exec
            .description(self.describe(&command.code))
            .location(cv.opts.filename.clone(), &[lines(loc)]);
        if cv.opts.no_cache {
            exec = exec.ignore_cache();
        }
        self.state = exec.root();
        self.history(command, false);
        Ok(())
    }

    /// The argv of a RUN: exec form as is; shell form through the shell, with heredocs appended
    /// to the script so the shell reads them (BuildKit's "fake heredoc").
    fn run_args(&self, cmd: &instructions::ShellDependentCmdLine) -> Vec<String> {
        if !cmd.prepend_shell {
            return cmd.cmd_line.clone();
        }
        let mut script = cmd.cmd_line.join(" ");
        for file in &cmd.files {
            script = format!("{script}\n{}{}", file.data, file.name);
        }
        let mut args = self.shell();
        args.push(script);
        args
    }

    /// Parses one `--mount` value, expanding its fields with the stage's variables.
    fn parse_mount(
        &self,
        cv: &Converter<'_>,
        spec: &str,
        loc: Location,
    ) -> Result<Mount, ConvertError> {
        let env = self.expansion_env();
        let lexer = cv.lexer.clone();
        let mut expand = |value: &str| lexer.process_word(value, &env).map_err(|e| e.to_string());
        instructions::parse_mount(spec, &mut expand)
            .map_err(|e| ConvertError::at(loc, e.to_string()))
    }

    /// The SDK mount for a parsed `--mount`; `ssh_dests` collects the ssh socket paths (their
    /// count numbers the default ones).
    fn mount_spec(
        &mut self,
        cv: &mut Converter<'_>,
        m: &Mount,
        spec: &str,
        ssh_dests: &mut Vec<String>,
        loc: Location,
    ) -> Result<MountSpec, ConvertError> {
        let target = m.target.as_deref().filter(|t| !t.is_empty());
        let target = target.map(|t| join_path(&self.image.config.working_dir, t));
        let needs_target = || ConvertError::at(loc, format!("mount {spec:?} needs a target"));
        Ok(match m.kind {
            MountType::Bind => {
                let target = target.ok_or_else(needs_target)?;
                let from = self.copy_source(cv, m.from.as_deref(), loc)?;
                let source = m.source.clone().unwrap_or_else(|| "/".into());
                let bind = llb::bind(target, &from).selector(join_path("/", &source));
                // A writable bind is scratch space: its changes are discarded after the step.
                if m.read_only {
                    bind.readonly()
                } else {
                    bind
                }
            }
            MountType::Cache => {
                let target = target.ok_or_else(needs_target)?;
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let sharing = match m.sharing {
                    Some(CacheSharing::Private) => LlbSharing::Private,
                    Some(CacheSharing::Locked) => LlbSharing::Locked,
                    _ => LlbSharing::Shared,
                };
                let mut cache = llb::cache(target).id(id).sharing(sharing);
                if m.from.is_some() {
                    let seed = self.copy_source(cv, m.from.as_deref(), loc)?;
                    cache = cache
                        .from_state(&seed)
                        .selector(m.source.clone().unwrap_or_default());
                }
                if m.read_only {
                    cache.readonly()
                } else {
                    cache
                }
            }
            MountType::Tmpfs => {
                llb::tmpfs(target.ok_or_else(needs_target)?).size(m.size_limit.unwrap_or(0))
            }
            MountType::Secret => {
                if m.env.is_some() {
                    let message = format!("secret mount {spec:?}: env= is not supported yet");
                    return Err(ConvertError::at(loc, message));
                }
                let named = m.id.clone().or_else(|| m.source.clone());
                let id = named.or_else(|| m.target.as_deref().and_then(basename));
                let Some(id) = id.filter(|id| !id.is_empty()) else {
                    let message = format!("secret mount {spec:?} needs an id or a target");
                    return Err(ConvertError::at(loc, message));
                };
                let dest = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                let mode = m.mode.unwrap_or(0o400);
                let (uid, gid) = (m.uid.unwrap_or(0), m.gid.unwrap_or(0));
                llb::secret(dest, id).secret_file(mode, uid, gid, !m.required)
            }
            MountType::Ssh => {
                let id = m.id.clone().unwrap_or_else(|| "default".into());
                let dest = target.unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{}", ssh_dests.len()));
                ssh_dests.push(dest.clone());
                llb::ssh(dest, id)
            }
        })
    }

    /// `COPY`/`ADD` of sources from `src` into the stage, as one file op.
    fn copy(
        &mut self,
        cv: &mut Converter<'_>,
        src: &State,
        spec: CopySpec<'_>,
        command: &Command,
    ) -> Result<(), ConvertError> {
        let loc = command.location;
        let written = self.expand(cv, &spec.sources.dest, loc)?;
        let dest = if written.starts_with('/') {
            written
        } else {
            join_path_keep_slash(&self.image.config.working_dir, &written)
        };
        let count = spec.sources.source_paths.len() + spec.sources.source_contents.len();
        if count > 1 && !dest.ends_with('/') {
            let message = format!(
                "When using {} with more than one source file, the destination must be a \
                 directory and end with a /",
                spec.name
            );
            return Err(ConvertError::at(loc, message));
        }
        let chown = match spec.chown {
            Some(c) => Some(Chown::parse(&self.expand(cv, c, loc)?)),
            None => None,
        };
        let chmod = match spec.chmod {
            Some(m) => Some(self.expand(cv, m, loc)?),
            None => None,
        };
        let mut sources = Vec::new();
        for path in &spec.sources.source_paths {
            let path = self.expand(cv, path, loc)?;
            let at = remote::SourceAt {
                file: &cv.opts.filename,
                lines: lines(loc),
            };
            sources.push(self.copy_source_path(src, &path, &spec, count, &at, loc)?);
        }
        for content in &spec.sources.source_contents {
            let data = if content.expand {
                self.expand_heredoc(&content.data, loc)?
            } else {
                content.data.clone()
            };
            let file = format!("/{}", content.path);
            let inline = llb::scratch()
                .file(llb::mkfile(file.clone(), 0o644, data.into_bytes()))
                .description("[internal] preparing inline document");
            sources.push(CopyFrom::plain(inline, file, false));
        }
        let mut actions = Vec::new();
        for from in sources {
            let mut action = llb::copy(&from.state, from.path, dest.clone())
                .follow_symlinks(true)
                .dir_contents_only(true)
                .create_dest_path(true)
                .allow_wildcard(from.wildcard)
                .allow_empty_wildcard(from.wildcard)
                .attempt_unpack(from.unpack)
                .include(from.include)
                .exclude(spec.exclude.iter().cloned());
            if let Some(mode) = &chmod {
                action = action.chmod(mode.clone());
            }
            if let Some(owner) = &chown {
                action = action.chown(owner.clone());
            }
            actions.push(action);
        }
        let actions = actions.into_iter().collect::<llb::FileActions>();
        if spec.link {
            // `--link`: the copied files are a layer of their own, made on scratch (so its cache
            // key does not depend on the stage) and merged onto the stage.
            let layer = self.apply_meta(llb::scratch().file(actions), command, cv);
            self.state = if self.state.is_scratch() {
                layer
            } else {
                let text = format!("[internal] link {}", command.code.trim());
                llb::merge(&[&self.state, &layer]).description(text)
            };
            self.sync_state_defaults();
        } else {
            let file = self.state.file(actions);
            self.state = self.apply_meta(file, command, cv);
        }
        self.history(command, false);
        Ok(())
    }

    /// Where one (expanded) source path of a COPY/ADD copies from: the `--from` state or the
    /// context, a URL download or a git checkout (ADD), with `--parents` kept as include
    /// patterns under the `/./` pivot.
    fn copy_source_path(
        &self,
        src: &State,
        path: &str,
        spec: &CopySpec<'_>,
        count: usize,
        at: &remote::SourceAt<'_>,
        loc: Location,
    ) -> Result<CopyFrom, ConvertError> {
        let kind = match spec.add {
            Some(_) => remote::classify(path),
            None => AddSource::Local,
        };
        let checksum = spec.add.as_ref().and_then(|a| a.checksum.as_deref());
        if checksum.is_some() && count > 1 {
            let message = "checksum can't be specified for multiple sources";
            return Err(ConvertError::at(loc, message));
        }
        let located = |m: String| ConvertError::at(loc, m);
        match kind {
            AddSource::Http(url) => {
                if let Some(c) = checksum {
                    remote::check_http_checksum(c).map_err(located)?;
                }
                let unpack = spec.add.as_ref().and_then(|a| a.unpack).unwrap_or(false);
                let state = remote::http_state(&url, checksum, at);
                Ok(CopyFrom {
                    wildcard: true,
                    ..CopyFrom::plain(state, "/*".into(), unpack)
                })
            }
            AddSource::Git(git) => {
                if let Some(c) = checksum {
                    remote::check_git_checksum(c).map_err(located)?;
                }
                let keep = spec.add.as_ref().is_some_and(|a| a.keep_git_dir);
                let state = remote::git_state(&git, keep, checksum, at);
                let dir = match &git.subdir {
                    Some(sub) => format!("/{sub}/"),
                    None => "/".into(),
                };
                Ok(CopyFrom::plain(state, dir, false))
            }
            AddSource::Local => {
                if checksum.is_some() {
                    let message = "checksum can't be specified for non-HTTP(S) sources";
                    return Err(ConvertError::at(loc, message));
                }
                let unpack = spec.add.as_ref().is_some_and(|a| a.unpack.unwrap_or(true));
                if spec.parents {
                    return Ok(parents_source(src, path, unpack));
                }
                Ok(CopyFrom {
                    wildcard: true,
                    ..CopyFrom::plain(src.clone(), join_path_keep_slash("/", path), unpack)
                })
            }
        }
    }

    /// The state a `--from` (or the build context, when `None`) names: a stage by name or
    /// index, a named context, or an image.
    fn copy_source(
        &mut self,
        cv: &mut Converter<'_>,
        from: Option<&str>,
        loc: Location,
    ) -> Result<State, ConvertError> {
        let Some(from) = from else {
            return Ok(cv.context.clone());
        };
        if let Some(index) = cv.stage_named(from) {
            return Ok(cv.convert_stage(index)?.state);
        }
        if let Ok(index) = from.parse::<usize>() {
            if index >= cv.stages.len() {
                return Err(ConvertError::at(
                    loc,
                    format!("invalid stage index {index}"),
                ));
            }
            return Ok(cv.convert_stage(index)?.state);
        }
        if let Some(context) = cv.opts.named_contexts.get(from).cloned() {
            let base = named_context(cv, from, &context, self.platform.as_ref(), loc)?;
            return Ok(base.state.description(format!("[internal] load {from}")));
        }
        let base = cv.resolve_image(from, self.platform.as_ref(), loc)?;
        Ok(base.state.description(format!("[internal] load {from}")))
    }

    /// Describes, locates and (with --no-cache) uncaches the op that made `state`.
    fn apply_meta(&self, state: State, command: &Command, cv: &Converter<'_>) -> State {
        let state = state
            .description(self.describe(&command.code))
            .location(cv.opts.filename.clone(), &[lines(command.location)]);
        if cv.opts.no_cache {
            state.ignore_cache()
        } else {
            state
        }
    }

    /// Keeps the state's exec defaults (env, cwd, user) in step with the image config.
    fn sync_state_defaults(&mut self) {
        let dir = match self.image.config.working_dir.as_str() {
            "" => "/",
            dir => dir,
        };
        let mut state = self.state.dir(dir).user(self.image.config.user.clone());
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
    fn expansion_env(&self) -> Vec<(String, String)> {
        let mut vars = self.args.clone();
        vars.extend(self.image.env_pairs());
        vars
    }

    /// Expands one word with the stage's variables, reporting undefined ones (`UndefinedVar`).
    fn expand(
        &self,
        cv: &Converter<'_>,
        word: &str,
        loc: Location,
    ) -> Result<String, ConvertError> {
        // A predefined platform arg used undeclared is empty, but not reported (only its
        // declaration is missing, which the user may mean).
        let declared = |name: &str| self.declared.contains(name) || super::is_predefined_arg(name);
        cv.expand_checked(
            word,
            &self.expansion_env(),
            &declared,
            &lint::UNDEFINED_VAR,
            loc,
        )
    }

    /// Expands a heredoc body: variables only, quotes are kept (BuildKit's raw expansion).
    fn expand_heredoc(&self, data: &str, loc: Location) -> Result<String, ConvertError> {
        let lexer = Lexer::new('\\').with_skip_process_quotes(true);
        lexer
            .process_word(data, &self.expansion_env())
            .map_err(|e| ConvertError::at(loc, format!("failed to expand heredoc: {e}")))
    }

    /// Expands one word into fields (EXPOSE).
    fn expand_words(
        &self,
        cv: &Converter<'_>,
        word: &str,
        loc: Location,
    ) -> Result<Vec<String>, ConvertError> {
        cv.lexer
            .process_words(word, &self.expansion_env())
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

    /// Records the instruction in the image history (`RUN` as BuildKit writes it: the args
    /// it saw as `|N K=V …`, then the argv).
    fn history(&mut self, command: &Command, empty_layer: bool) {
        let created_by = match &command.instruction {
            Instruction::Run(run) => {
                let mut words = Vec::new();
                if !self.args.is_empty() {
                    words.push(format!("|{}", self.args.len()));
                    for (key, value) in &self.args {
                        let value = self.image.env_value(key).unwrap_or(value);
                        words.push(format!("{key}={value}"));
                    }
                }
                words.extend(self.run_args(&run.cmd));
                format!("RUN {} # hoist", words.join(" "))
            }
            _ => format!("{} # hoist", command.code.trim()),
        };
        self.image.add_history(created_by, empty_layer);
    }
}

/// What a COPY or ADD copies.
struct CopySpec<'a> {
    /// `COPY` or `ADD`, for messages.
    name: &'static str,
    sources: &'a instructions::SourcesAndDest,
    chown: Option<&'a str>,
    chmod: Option<&'a str>,
    exclude: &'a [String],
    /// `--link`: the copy is its own layer, merged onto the stage.
    link: bool,
    /// `--parents` (COPY): keep the source paths' parent directories.
    parents: bool,
    /// ADD's own options; `None` for COPY.
    add: Option<AddOptions>,
}

/// The options only ADD has.
struct AddOptions {
    /// `--unpack`; unset unpacks local archives and leaves downloads as they are.
    unpack: Option<bool>,
    /// `--checksum`, expanded.
    checksum: Option<String>,
    /// `--keep-git-dir`.
    keep_git_dir: bool,
}

/// One source of a copy action.
struct CopyFrom {
    state: State,
    path: String,
    /// `path` may be a wildcard.
    wildcard: bool,
    /// Only these paths under `path` (`--parents`).
    include: Vec<String>,
    /// Unpack a single archive source.
    unpack: bool,
}

impl CopyFrom {
    /// Copy `path` of `state`, no wildcard, no include patterns.
    fn plain(state: State, path: String, unpack: bool) -> CopyFrom {
        CopyFrom {
            state,
            path,
            wildcard: false,
            include: Vec::new(),
            unpack,
        }
    }
}

/// A `--parents` source: the tree under the pivot (`/./` in the path, else the root) with only
/// the path itself included, so its parent directories are kept under the destination.
fn parents_source(src: &State, path: &str, unpack: bool) -> CopyFrom {
    let (pivot, rest) = match path.split_once("/./") {
        Some((pivot, rest)) => (join_path("/", pivot), rest),
        None => ("/".to_string(), path),
    };
    let pattern = join_path("/", rest);
    let pattern = pattern.trim_start_matches('/');
    let include = if pattern.is_empty() {
        Vec::new()
    } else {
        vec![pattern.to_string()]
    };
    CopyFrom {
        include,
        ..CopyFrom::plain(src.clone(), pivot, unpack)
    }
}

/// A stage's base and whether its state is a source op made for this stage (which the stage
/// may then describe), rather than another stage's result.
struct Base {
    result: StageResult,
    fresh: bool,
}

/// The base of a stage: an earlier stage, scratch, a named context or an image.
///
/// Only stages defined *before* this one count (so `FROM node AS node` is the image), as in
/// BuildKit.
fn resolve_base(
    cv: &mut Converter<'_>,
    index: usize,
    base: &str,
    platform: Option<&Platform>,
    loc: Location,
) -> Result<Base, ConvertError> {
    if let Some(context) = cv.opts.named_contexts.get(base).cloned() {
        let result = named_context(cv, base, &context, platform, loc)?;
        return Ok(Base {
            result,
            fresh: true,
        });
    }
    if let Some(other) = cv.stage_named(base).filter(|other| *other < index) {
        return Ok(Base {
            result: cv.convert_stage(other)?,
            fresh: false,
        });
    }
    if base.eq_ignore_ascii_case("scratch") {
        let host = || Platform {
            os: "linux".into(),
            architecture: super::host_arch().into(),
            variant: None,
        };
        let p = platform.cloned().unwrap_or_else(host);
        let image = Image::scratch(&p.os, &p.architecture, p.variant.as_deref());
        return Ok(Base {
            result: StageResult {
                state: llb::scratch(),
                image,
            },
            fresh: false,
        });
    }
    Ok(Base {
        result: cv.resolve_image(base, platform, loc)?,
        fresh: true,
    })
}

/// A named build context used as a base or copy source.
fn named_context(
    cv: &mut Converter<'_>,
    name: &str,
    value: &str,
    platform: Option<&Platform>,
    loc: Location,
) -> Result<StageResult, ConvertError> {
    if let Some(reference) = value.strip_prefix("docker-image://") {
        return cv.resolve_image(reference, platform, loc);
    }
    if let Some(local) = value.strip_prefix("local:") {
        let image = Image::default();
        return Ok(StageResult {
            state: llb::local(local).state(),
            image,
        });
    }
    if value.starts_with("oci-layout://") {
        return cv.resolve_image(value, platform, loc);
    }
    let message = format!("named context {name:?} has an unsupported value {value:?}");
    Err(ConvertError::at(loc, message))
}

/// The base image's ONBUILD triggers as commands, located at the `FROM` that fires them.
fn onbuild_commands(triggers: Vec<String>, from: Location) -> Result<Vec<Command>, ConvertError> {
    let mut commands = Vec::new();
    for trigger in triggers {
        let located =
            |e: parser::Error| ConvertError::at(from, format!("ONBUILD trigger: {}", e.kind));
        let parsed = parser::parse(&trigger).map_err(located)?;
        for node in &parsed.ast.children {
            let mut command = instructions::parse_instruction(node).map_err(located)?;
            if matches!(
                command.instruction,
                Instruction::Onbuild(_) | Instruction::From(_) | Instruction::Maintainer(_)
            ) {
                let name = command.instruction.name();
                let message = format!("{name} isn't allowed as an ONBUILD trigger");
                return Err(ConvertError::at(from, message));
            }
            command.location = from;
            commands.push(command);
        }
    }
    Ok(commands)
}

/// `RUN <<EOF` alone: the heredoc's name and a state holding it as an executable script.
fn heredoc_script(cmd: &instructions::ShellDependentCmdLine) -> Option<(String, State)> {
    let [file] = cmd.files.as_slice() else {
        return None;
    };
    let [line] = cmd.cmd_line.as_slice() else {
        return None;
    };
    if !cmd.prepend_shell || parser::parse_heredoc(line.trim()).ok().flatten().is_none() {
        return None;
    }
    let data = if file.chomp {
        parser::chomp_heredoc_content(&file.data)
    } else {
        file.data.clone()
    };
    let script = llb::scratch()
        .file(llb::mkfile(
            format!("/{}", file.name),
            0o755,
            data.into_bytes(),
        ))
        .description("[internal] preparing inline document");
    Some((file.name.clone(), script))
}

/// A `--platform` value as a platform.
fn parse_platform(spec: &str, location: Location) -> Result<Platform, ConvertError> {
    hoist_frontend_sdk::parse_platform(spec).map_err(|e| {
        ConvertError::at(
            location,
            format!("invalid --platform {spec:?}: {}", e.message),
        )
    })
}

/// The ports an EXPOSE word declares: `80`, `80/udp`, `8000-8002/tcp` (protocol lower-cased,
/// tcp by default), as Docker's port specs.
fn expose_ports(spec: &str) -> Result<Vec<String>, String> {
    let (range, proto) = match spec.split_once('/') {
        Some((range, proto)) => (range, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    let invalid = || format!("Invalid containerPort: {spec}");
    let port = |s: &str| s.parse::<u16>().map_err(|_| invalid());
    let (first, last) = match range.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(range)?, port(range)?),
    };
    if last < first || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(invalid());
    }
    Ok((first..=last).map(|p| format!("{p}/{proto}")).collect())
}

/// Whether `signal` names a signal: a number, or a name with or without `SIG`.
fn valid_signal(signal: &str) -> bool {
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    !name.is_empty()
        && (name.chars().all(|c| c.is_ascii_digit())
            || name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "+-".contains(c)))
}

/// The (start, end) lines of a location.
pub(super) fn lines(loc: Location) -> (u32, u32) {
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    (clamp(loc.start_line), clamp(loc.end_line))
}

/// The last component of a path.
fn basename(path: &str) -> Option<String> {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `path` made absolute against `base` and cleaned (`.` and `..` removed, no trailing slash).
pub(crate) fn join_path(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{base}/{path}")
    };
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

    #[test]
    fn expose_specs_expand_like_docker() {
        assert_eq!(expose_ports("80").unwrap(), ["80/tcp"]);
        assert_eq!(expose_ports("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(
            expose_ports("8000-8002").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expose_ports("http").is_err());
        assert!(expose_ports("9-1").is_err());
    }

    #[test]
    fn signals() {
        assert!(valid_signal("SIGTERM"));
        assert!(valid_signal("9"));
        assert!(valid_signal("SIGRTMIN+3"));
        assert!(valid_signal("sigkill"));
        assert!(!valid_signal("sig term"));
    }
}
