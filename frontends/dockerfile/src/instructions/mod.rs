//! Typed Dockerfile instructions, built from the parser's AST.
//!
//! This module owns checking each instruction's arguments and `--flags`
//! (unknown instructions, unknown or malformed flags, wrong argument counts)
//! and grouping commands into build stages ([`parse_stages`]). Every command
//! keeps its source line range and text. Words stay raw: build-arg and
//! environment expansion belongs to the Dockerfile → LLB converter, which uses
//! `crate::shell` (and [`parse_mount`] for `RUN --mount` values).

mod duration;
mod flags;
mod mount;

use std::time::Duration;

pub use duration::parse_go_duration;
pub use mount::{parse_mount, CacheSharing, Mount, MountExpander, MountType};

use crate::parser::{chomp_heredoc_content, parse_heredoc, Error, ErrorKind, Location, Node};
use flags::{FlagKind, Flags};

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The typed instruction.
    pub instruction: Instruction,
    /// The source lines it spans (heredoc bodies included).
    pub location: Location,
    /// The instruction text as written, trimmed (continuations joined).
    pub code: String,
    /// The comment lines directly above it.
    pub comment: Vec<String>,
}

/// A typed Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM [--platform=p] image [AS name]`.
    From(FromCommand),
    /// `RUN`.
    Run(RunCommand),
    /// `COPY`.
    Copy(CopyCommand),
    /// `ADD`.
    Add(AddCommand),
    /// `ARG name[=value] ...`.
    Arg(ArgCommand),
    /// `ENV key=value ...`.
    Env(EnvCommand),
    /// `LABEL key=value ...`.
    Label(LabelCommand),
    /// `WORKDIR path`.
    Workdir(WorkdirCommand),
    /// `USER user[:group]`.
    User(UserCommand),
    /// `EXPOSE port[/proto] ...`.
    Expose(ExposeCommand),
    /// `VOLUME path ...`.
    Volume(VolumeCommand),
    /// `ENTRYPOINT`.
    Entrypoint(EntrypointCommand),
    /// `CMD`.
    Cmd(CmdCommand),
    /// `SHELL ["exe", "arg"]`.
    Shell(ShellCommand),
    /// `STOPSIGNAL signal`.
    StopSignal(StopSignalCommand),
    /// `HEALTHCHECK`.
    Healthcheck(HealthcheckCommand),
    /// `ONBUILD instruction`.
    Onbuild(OnbuildCommand),
    /// `MAINTAINER name` (deprecated).
    Maintainer(MaintainerCommand),
}

impl Instruction {
    /// The instruction keyword, lower-cased (`run`, `copy`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::From(_) => "from",
            Instruction::Run(_) => "run",
            Instruction::Copy(_) => "copy",
            Instruction::Add(_) => "add",
            Instruction::Arg(_) => "arg",
            Instruction::Env(_) => "env",
            Instruction::Label(_) => "label",
            Instruction::Workdir(_) => "workdir",
            Instruction::User(_) => "user",
            Instruction::Expose(_) => "expose",
            Instruction::Volume(_) => "volume",
            Instruction::Entrypoint(_) => "entrypoint",
            Instruction::Cmd(_) => "cmd",
            Instruction::Shell(_) => "shell",
            Instruction::StopSignal(_) => "stopsignal",
            Instruction::Healthcheck(_) => "healthcheck",
            Instruction::Onbuild(_) => "onbuild",
            Instruction::Maintainer(_) => "maintainer",
        }
    }
}

/// `FROM`: the base of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromCommand {
    /// The image or stage reference, unexpanded.
    pub base_name: String,
    /// The stage name from `AS name`, lower-cased.
    pub name: Option<String>,
    /// The `--platform` value, unexpanded.
    pub platform: Option<String>,
}

/// A command line that is either exec form or run through the shell.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShellDependentCmdLine {
    /// Exec-form arguments, or the single shell-form string.
    pub cmd_line: Vec<String>,
    /// Heredoc bodies to provide as files (RUN), not chomped.
    pub files: Vec<ShellInlineFile>,
    /// Whether the command is in shell form (run via the SHELL).
    pub prepend_shell: bool,
}

/// A heredoc attached to a RUN command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellInlineFile {
    /// The heredoc terminator word.
    pub name: String,
    /// The body as written.
    pub data: String,
    /// Whether `<<-` asked for leading tabs to be stripped.
    pub chomp: bool,
}

/// `RUN --network` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkMode {
    /// The default network.
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// `RUN --security` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityMode {
    /// The default sandbox.
    Sandbox,
    /// Elevated privileges (needs entitlement).
    Insecure,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCommand {
    /// The command and any heredoc files.
    pub cmd: ShellDependentCmdLine,
    /// The raw `--mount` values, structure-checked; parse with [`parse_mount`] after expansion.
    pub mounts: Vec<String>,
    /// The `--network` mode.
    pub network: Option<NetworkMode>,
    /// The `--security` mode.
    pub security: Option<SecurityMode>,
}

/// A heredoc used as an ADD/COPY source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContent {
    /// The file name (the heredoc terminator).
    pub path: String,
    /// The contents (already chomped for `<<-`).
    pub data: String,
    /// Whether variables in `data` may be expanded.
    pub expand: bool,
}

/// The sources and destination of ADD/COPY.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourcesAndDest {
    /// The destination path, unexpanded.
    pub dest: String,
    /// Source paths or URLs, unexpanded.
    pub source_paths: Vec<String>,
    /// Inline heredoc sources.
    pub source_contents: Vec<SourceContent>,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyCommand {
    /// What to copy where.
    pub sources: SourcesAndDest,
    /// `--from`: stage, image or named context.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCommand {
    /// What to add where.
    pub sources: SourcesAndDest,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// `--checksum` of a remote source.
    pub checksum: Option<String>,
    /// `--keep-git-dir` for git sources.
    pub keep_git_dir: bool,
    /// `--unpack`: force (true) or prevent (false) archive extraction.
    pub unpack: Option<bool>,
}

/// One `ARG` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    /// The argument name.
    pub key: String,
    /// The default value, unexpanded (quotes kept).
    pub value: Option<String>,
}

/// `ARG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgCommand {
    /// The definitions, in order.
    pub args: Vec<ArgDef>,
}

/// A `key value` or `key=value` pair of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValuePair {
    /// The key, unexpanded.
    pub key: String,
    /// The value, unexpanded (quotes kept).
    pub value: String,
    /// Whether the legacy `KEY value` form (no `=`) was used.
    pub no_delim: bool,
}

/// `ENV`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvCommand {
    /// The variables, in order.
    pub env: Vec<KeyValuePair>,
}

/// `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelCommand {
    /// The labels, in order.
    pub labels: Vec<KeyValuePair>,
}

/// `WORKDIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkdirCommand {
    /// The directory, unexpanded.
    pub path: String,
}

/// `USER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCommand {
    /// `user[:group]`, unexpanded.
    pub user: String,
}

/// `EXPOSE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposeCommand {
    /// `port[/proto]` words as written, unexpanded.
    pub ports: Vec<String>,
}

/// `VOLUME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeCommand {
    /// The volume paths, unexpanded.
    pub volumes: Vec<String>,
}

/// `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrypointCommand {
    /// The entrypoint (empty `cmd_line` clears it).
    pub cmd: ShellDependentCmdLine,
}

/// `CMD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdCommand {
    /// The default command.
    pub cmd: ShellDependentCmdLine,
}

/// `SHELL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    /// The shell and its arguments.
    pub shell: Vec<String>,
}

/// `STOPSIGNAL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSignalCommand {
    /// The signal name or number, unexpanded.
    pub signal: String,
}

/// A container health check; zero durations mean "inherit the default".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// `--interval`.
    pub interval: Duration,
    /// `--timeout`.
    pub timeout: Duration,
    /// `--start-period`.
    pub start_period: Duration,
    /// `--start-interval`.
    pub start_interval: Duration,
    /// `--retries`.
    pub retries: u32,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckCommand {
    /// The health check configuration.
    pub health: HealthConfig,
}

/// `ONBUILD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnbuildCommand {
    /// The trigger instruction text (with heredoc bodies), as stored in the image.
    pub expression: String,
}

/// `MAINTAINER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintainerCommand {
    /// The maintainer text.
    pub maintainer: String,
}

/// A build stage: a FROM and the commands after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The stage name (`AS name`), lower-cased.
    pub name: Option<String>,
    /// The base image or stage, unexpanded.
    pub base_name: String,
    /// The `--platform` value, unexpanded.
    pub platform: Option<String>,
    /// The stage's commands, in order.
    pub commands: Vec<Command>,
    /// The FROM line's location.
    pub location: Location,
    /// The FROM line's text.
    pub code: String,
    /// The comment lines above the FROM.
    pub comment: Vec<String>,
}

/// An `ARG` before the first `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaArg {
    /// The definitions.
    pub arg: ArgCommand,
    /// Where it is.
    pub location: Location,
    /// Its text.
    pub code: String,
}

/// Splits the AST into global ARGs and build stages, typing every instruction.
pub fn parse_stages(ast: &Node) -> Result<(Vec<MetaArg>, Vec<Stage>), Error> {
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &ast.children {
        let command = parse_instruction(node)?;
        match (command.instruction, stages.last_mut()) {
            (Instruction::From(from), _) => stages.push(Stage {
                name: from.name,
                base_name: from.base_name,
                platform: from.platform,
                commands: Vec::new(),
                location: command.location,
                code: command.code,
                comment: command.comment,
            }),
            (Instruction::Arg(arg), None) => meta_args.push(MetaArg {
                arg,
                location: command.location,
                code: command.code,
            }),
            (instruction, Some(stage)) => stage.commands.push(Command {
                instruction,
                ..command
            }),
            (_, None) => return Err(Error::new(ErrorKind::NoBuildStage, command.location)),
        }
    }
    Ok((meta_args, stages))
}

/// Types one instruction node (a child of the AST root).
pub fn parse_instruction(node: &Node) -> Result<Command, Error> {
    let location = node.location();
    let request = Request::from_node(node);
    let instruction = request.parse().map_err(|kind| Error::new(kind, location))?;
    Ok(Command {
        instruction,
        location,
        code: node.original.trim().to_string(),
        comment: node.prev_comment.clone(),
    })
}

/// The parts of a node an instruction parser needs.
struct Request<'a> {
    node: &'a Node,
    args: Vec<String>,
}

impl<'a> Request<'a> {
    fn from_node(node: &'a Node) -> Self {
        Request {
            node,
            args: node_args(node),
        }
    }

    fn parse(&self) -> Result<Instruction, ErrorKind> {
        Ok(match self.node.keyword().as_str() {
            "from" => Instruction::From(self.parse_from()?),
            "run" => Instruction::Run(self.parse_run()?),
            "copy" => Instruction::Copy(self.parse_copy()?),
            "add" => Instruction::Add(self.parse_add()?),
            "arg" => Instruction::Arg(self.parse_arg()?),
            "env" => Instruction::Env(EnvCommand {
                env: self.key_value_pairs("ENV")?,
            }),
            "label" => Instruction::Label(LabelCommand {
                labels: self.key_value_pairs("LABEL")?,
            }),
            "workdir" => Instruction::Workdir(WorkdirCommand {
                path: self.exactly_one("WORKDIR")?,
            }),
            "user" => Instruction::User(UserCommand {
                user: self.exactly_one("USER")?,
            }),
            "stopsignal" => Instruction::StopSignal(StopSignalCommand {
                signal: self.exactly_one("STOPSIGNAL")?,
            }),
            "maintainer" => Instruction::Maintainer(MaintainerCommand {
                maintainer: self.exactly_one("MAINTAINER")?,
            }),
            "expose" => Instruction::Expose(ExposeCommand {
                ports: self.at_least_one("EXPOSE")?,
            }),
            "volume" => Instruction::Volume(self.parse_volume()?),
            "entrypoint" => Instruction::Entrypoint(EntrypointCommand {
                cmd: self.flagless_command()?,
            }),
            "cmd" => Instruction::Cmd(CmdCommand {
                cmd: self.flagless_command()?,
            }),
            "shell" => Instruction::Shell(self.parse_shell()?),
            "healthcheck" => Instruction::Healthcheck(self.parse_healthcheck()?),
            "onbuild" => Instruction::Onbuild(self.parse_onbuild()?),
            _ => return Err(ErrorKind::UnknownInstruction(self.node.value.clone())),
        })
    }

    fn flags(&self, spec: &[(&str, FlagKind)]) -> Result<Flags, ErrorKind> {
        Flags::parse(&self.node.flags, spec)
    }

    fn exactly_one(&self, name: &str) -> Result<String, ErrorKind> {
        let [arg] = self.args.as_slice() else {
            return Err(ErrorKind::ExactlyOneArgument(name.into()));
        };
        self.flags(&[])?;
        Ok(arg.clone())
    }

    fn at_least_one(&self, name: &str) -> Result<Vec<String>, ErrorKind> {
        if self.args.is_empty() {
            return Err(ErrorKind::AtLeastOneArgument(name.into()));
        }
        self.flags(&[])?;
        Ok(self.args.clone())
    }

    fn parse_from(&self) -> Result<FromCommand, ErrorKind> {
        let name = match self.args.as_slice() {
            [_] => None,
            [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
                Some(valid_stage_name(name)?)
            }
            _ => return Err(ErrorKind::FromArguments),
        };
        let flags = self.flags(&[("platform", FlagKind::String)])?;
        Ok(FromCommand {
            base_name: self.args[0].clone(),
            name,
            platform: flags.string("platform"),
        })
    }

    fn parse_run(&self) -> Result<RunCommand, ErrorKind> {
        let flags = self.flags(&[
            ("mount", FlagKind::Strings),
            ("network", FlagKind::String),
            ("security", FlagKind::String),
        ])?;
        let mounts = flags.strings("mount");
        for spec in &mounts {
            mount::check_mount_syntax(spec)?;
        }
        Ok(RunCommand {
            cmd: self.shell_dependent(),
            mounts,
            network: flags.string("network").map(parse_network).transpose()?,
            security: flags.string("security").map(parse_security).transpose()?,
        })
    }

    fn parse_copy(&self) -> Result<CopyCommand, ErrorKind> {
        self.require_destination("COPY")?;
        let flags = self.flags(&[
            ("from", FlagKind::String),
            ("chown", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("parents", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
        ])?;
        Ok(CopyCommand {
            sources: self.sources_and_dest("COPY")?,
            from: flags.string("from"),
            chown: flags.string("chown"),
            chmod: flags.string("chmod"),
            link: flags.bool("link").unwrap_or(false),
            parents: flags.bool("parents").unwrap_or(false),
            exclude: flags.strings("exclude"),
        })
    }

    fn parse_add(&self) -> Result<AddCommand, ErrorKind> {
        self.require_destination("ADD")?;
        let flags = self.flags(&[
            ("chown", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
            ("checksum", FlagKind::String),
            ("keep-git-dir", FlagKind::Bool),
            ("unpack", FlagKind::Bool),
        ])?;
        Ok(AddCommand {
            sources: self.sources_and_dest("ADD")?,
            chown: flags.string("chown"),
            chmod: flags.string("chmod"),
            link: flags.bool("link").unwrap_or(false),
            exclude: flags.strings("exclude"),
            checksum: flags.string("checksum"),
            keep_git_dir: flags.bool("keep-git-dir").unwrap_or(false),
            unpack: flags.bool("unpack"),
        })
    }

    fn require_destination(&self, name: &str) -> Result<(), ErrorKind> {
        match self.args.len() {
            0 => Err(ErrorKind::AtLeastTwoArguments(name.into())),
            1 => Err(ErrorKind::NoDestination(name.into())),
            _ => Ok(()),
        }
    }

    /// Splits ADD/COPY arguments into paths, heredoc contents and the destination.
    fn sources_and_dest(&self, name: &str) -> Result<SourcesAndDest, ErrorKind> {
        let Some((dest, sources)) = self.args.split_last() else {
            return Err(ErrorKind::AtLeastTwoArguments(name.into()));
        };
        if is_heredoc_word(dest) {
            return Err(ErrorKind::HeredocDestination(name.into()));
        }
        let mut result = SourcesAndDest {
            dest: dest.clone(),
            ..SourcesAndDest::default()
        };
        for source in sources {
            match parse_heredoc(source).ok().flatten() {
                Some(heredoc) => result.source_contents.push(self.inline_source(heredoc)),
                None => result.source_paths.push(source.clone()),
            }
        }
        Ok(result)
    }

    fn inline_source(&self, word: crate::parser::Heredoc) -> SourceContent {
        let body = self
            .node
            .heredocs
            .iter()
            .find(|h| h.name == word.name)
            .map(|h| h.content.as_str())
            .unwrap_or_default();
        let data = if word.chomp {
            chomp_heredoc_content(body)
        } else {
            body.to_string()
        };
        SourceContent {
            path: word.name,
            data,
            expand: word.expand,
        }
    }

    fn parse_arg(&self) -> Result<ArgCommand, ErrorKind> {
        if self.args.is_empty() {
            return Err(ErrorKind::AtLeastOneArgument("ARG".into()));
        }
        self.flags(&[])?;
        let args = self
            .args
            .iter()
            .map(|arg| match arg.split_once('=') {
                // `ARG =value`, as BuildKit refuses it.
                Some(("", _)) => Err(ErrorKind::BlankName("ARG".into())),
                Some((key, value)) => Ok(ArgDef {
                    key: key.to_string(),
                    value: Some(value.to_string()),
                }),
                None => Ok(ArgDef {
                    key: arg.clone(),
                    value: None,
                }),
            })
            .collect::<Result<_, _>>()?;
        Ok(ArgCommand { args })
    }

    /// ENV/LABEL: the node values are `key, value, separator` triples.
    fn key_value_pairs(&self, name: &str) -> Result<Vec<KeyValuePair>, ErrorKind> {
        if self.args.is_empty() {
            return Err(ErrorKind::AtLeastOneArgument(name.into()));
        }
        self.flags(&[])?;
        if !self.args.len().is_multiple_of(3) {
            return Err(ErrorKind::TooManyArguments(name.into()));
        }
        self.args
            .chunks_exact(3)
            .map(|triple| {
                if triple[0].is_empty() {
                    return Err(ErrorKind::BlankName(name.into()));
                }
                Ok(KeyValuePair {
                    key: triple[0].clone(),
                    value: triple[1].clone(),
                    no_delim: triple[2].is_empty(),
                })
            })
            .collect()
    }

    fn parse_volume(&self) -> Result<VolumeCommand, ErrorKind> {
        let volumes = self.at_least_one("VOLUME")?;
        let volumes: Vec<String> = volumes.iter().map(|v| v.trim().to_string()).collect();
        if volumes.iter().any(String::is_empty) {
            return Err(ErrorKind::EmptyVolume);
        }
        Ok(VolumeCommand { volumes })
    }

    fn parse_shell(&self) -> Result<ShellCommand, ErrorKind> {
        self.flags(&[])?;
        if self.args.is_empty() {
            return Err(ErrorKind::AtLeastOneArgument("SHELL".into()));
        }
        if !self.node.json {
            return Err(ErrorKind::ShellNotJson);
        }
        Ok(ShellCommand {
            shell: self.args.clone(),
        })
    }

    /// CMD/ENTRYPOINT without flags.
    fn flagless_command(&self) -> Result<ShellDependentCmdLine, ErrorKind> {
        self.flags(&[])?;
        Ok(self.shell_dependent())
    }

    /// CMD/ENTRYPOINT/RUN: exec form as-is, shell form as one string, heredocs as files.
    fn shell_dependent(&self) -> ShellDependentCmdLine {
        let files = self
            .node
            .heredocs
            .iter()
            .map(|h| ShellInlineFile {
                name: h.name.clone(),
                data: h.content.clone(),
                chomp: h.chomp,
            })
            .collect();
        ShellDependentCmdLine {
            cmd_line: json_or_shell_args(&self.args, self.node.json),
            files,
            prepend_shell: !self.node.json,
        }
    }

    fn parse_healthcheck(&self) -> Result<HealthcheckCommand, ErrorKind> {
        let Some((kind, rest)) = self.args.split_first() else {
            return Err(ErrorKind::AtLeastOneArgument("HEALTHCHECK".into()));
        };
        let kind = kind.to_uppercase();
        if kind == "NONE" {
            if !rest.is_empty() {
                return Err(ErrorKind::HealthcheckNoneArgs);
            }
            let health = HealthConfig {
                test: vec![kind],
                ..HealthConfig::default()
            };
            return Ok(HealthcheckCommand { health });
        }
        let flags = self.flags(&[
            ("interval", FlagKind::String),
            ("timeout", FlagKind::String),
            ("start-period", FlagKind::String),
            ("start-interval", FlagKind::String),
            ("retries", FlagKind::String),
        ])?;
        if kind != "CMD" {
            return Err(ErrorKind::HealthcheckType(kind));
        }
        let command = json_or_shell_args(rest, self.node.json);
        if command.is_empty() {
            return Err(ErrorKind::HealthcheckMissingCmd);
        }
        let test_kind = if self.node.json { "CMD" } else { "CMD-SHELL" };
        let mut test = vec![test_kind.to_string()];
        test.extend(command);
        Ok(HealthcheckCommand {
            health: HealthConfig {
                test,
                interval: interval_flag(&flags, "interval")?,
                timeout: interval_flag(&flags, "timeout")?,
                start_period: interval_flag(&flags, "start-period")?,
                start_interval: interval_flag(&flags, "start-interval")?,
                retries: retries_flag(&flags)?,
            },
        })
    }

    fn parse_onbuild(&self) -> Result<OnbuildCommand, ErrorKind> {
        let Some(trigger) = self.args.first() else {
            return Err(ErrorKind::AtLeastOneArgument("ONBUILD".into()));
        };
        self.flags(&[])?;
        let trigger = trigger.trim().to_uppercase();
        match trigger.as_str() {
            "ONBUILD" => return Err(ErrorKind::OnbuildChaining),
            "MAINTAINER" | "FROM" => return Err(ErrorKind::OnbuildTrigger(trigger)),
            _ => {}
        }
        let mut expression = strip_onbuild_keyword(&self.node.original).to_string();
        for heredoc in &self.node.heredocs {
            expression.push('\n');
            expression.push_str(&heredoc.content);
            expression.push_str(&heredoc.name);
        }
        Ok(OnbuildCommand { expression })
    }
}

/// The argument values of a node; a nested instruction contributes its keyword and arguments.
fn node_args(node: &Node) -> Vec<String> {
    let mut args = Vec::new();
    for arg in &node.next {
        match arg.children.as_slice() {
            [] => args.push(arg.value.clone()),
            [child] => {
                args.push(child.value.clone());
                args.extend(node_args(child));
            }
            _ => {}
        }
    }
    args
}

fn json_or_shell_args(args: &[String], json: bool) -> Vec<String> {
    if args.is_empty() || json {
        args.to_vec()
    } else {
        vec![args.join(" ")]
    }
}

fn is_heredoc_word(word: &str) -> bool {
    matches!(parse_heredoc(word), Ok(Some(_)))
}

/// Stage names: `[a-z][a-z0-9-_.]*` after lower-casing.
fn valid_stage_name(name: &str) -> Result<String, ErrorKind> {
    let lower = name.to_lowercase();
    let mut chars = lower.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if first_ok && rest_ok {
        Ok(lower)
    } else {
        Err(ErrorKind::InvalidStageName(name.to_string()))
    }
}

fn parse_network(value: String) -> Result<NetworkMode, ErrorKind> {
    match value.as_str() {
        "default" => Ok(NetworkMode::Default),
        "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        _ => Err(ErrorKind::UnsupportedNetwork(value)),
    }
}

fn parse_security(value: String) -> Result<SecurityMode, ErrorKind> {
    match value.as_str() {
        "sandbox" => Ok(SecurityMode::Sandbox),
        "insecure" => Ok(SecurityMode::Insecure),
        _ => Err(ErrorKind::UnsupportedSecurity(value)),
    }
}

/// A HEALTHCHECK duration flag: unset or zero means default; otherwise at least 1ms.
fn interval_flag(flags: &Flags, name: &str) -> Result<Duration, ErrorKind> {
    let Some(value) = flags.string(name).filter(|v| !v.is_empty()) else {
        return Ok(Duration::ZERO);
    };
    let nanos = parse_go_duration(&value).ok_or_else(|| ErrorKind::InvalidDuration {
        flag: name.to_string(),
        value: value.clone(),
    })?;
    if nanos == 0 {
        return Ok(Duration::ZERO);
    }
    if nanos < 1_000_000 {
        return Err(ErrorKind::IntervalTooShort(name.to_string()));
    }
    let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
    Ok(Duration::from_nanos(nanos))
}

fn retries_flag(flags: &Flags) -> Result<u32, ErrorKind> {
    let Some(value) = flags.string("retries").filter(|v| !v.is_empty()) else {
        return Ok(0);
    };
    let retries: i32 = value
        .parse()
        .map_err(|_| ErrorKind::InvalidRetries(value.clone()))?;
    u32::try_from(retries).map_err(|_| ErrorKind::NegativeRetries(i64::from(retries)))
}

/// Removes a leading `ONBUILD` keyword (any case) and the blanks around it.
fn strip_onbuild_keyword(original: &str) -> &str {
    let trimmed = original.trim_start();
    match trimmed.get(..7) {
        Some(keyword) if keyword.eq_ignore_ascii_case("onbuild") => trimmed[7..].trim_start(),
        _ => original,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn first(source: &str) -> Result<Command, Error> {
        let ast = parse(source).unwrap().ast;
        parse_instruction(&ast.children[0])
    }

    #[test]
    fn stages_collect_commands_and_meta_args() {
        let ast = parse("ARG V=1\nFROM --platform=$P alpine:$V AS Build\nRUN echo\nFROM build\n")
            .unwrap()
            .ast;
        let (meta, stages) = parse_stages(&ast).unwrap();
        assert_eq!(meta[0].arg.args[0].value.as_deref(), Some("1"));
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].name.as_deref(), Some("build"));
        assert_eq!(stages[0].platform.as_deref(), Some("$P"));
        assert_eq!(stages[0].commands[0].location, Location::new(3, 3));
    }

    #[test]
    fn instructions_before_from_are_rejected() {
        let ast = parse("RUN x\nFROM a\n").unwrap().ast;
        assert_eq!(
            parse_stages(&ast).unwrap_err().kind,
            ErrorKind::NoBuildStage
        );
    }

    #[test]
    fn run_flags() {
        let cmd = first("RUN --mount=type=cache,target=/c --network=none ls").unwrap();
        let Instruction::Run(run) = cmd.instruction else {
            panic!("not a RUN: {cmd:?}");
        };
        assert_eq!(run.mounts, ["type=cache,target=/c"]);
        assert_eq!(run.network, Some(NetworkMode::None));
        assert!(first("RUN --network=bridge ls").is_err());
        assert!(first("RUN --mount=type=nfs ls").is_err());
    }

    #[test]
    fn copy_flags() {
        let cmd = first("COPY --from=b --link --exclude=*.md --chmod=644 a /d/").unwrap();
        let Instruction::Copy(copy) = cmd.instruction else {
            panic!("not a COPY: {cmd:?}");
        };
        assert_eq!(copy.from.as_deref(), Some("b"));
        assert!(copy.link);
        assert_eq!(copy.exclude, ["*.md"]);
        assert!(first("COPY --checksum=x a b")
            .unwrap_err()
            .is_unknown_flag());
    }

    #[test]
    fn healthcheck_config() {
        let cmd = first("HEALTHCHECK --interval=5s --retries=3 CMD curl -f x").unwrap();
        let Instruction::Healthcheck(hc) = cmd.instruction else {
            panic!("not a HEALTHCHECK: {cmd:?}");
        };
        assert_eq!(hc.health.test, ["CMD-SHELL", "curl -f x"]);
        assert_eq!(hc.health.interval, Duration::from_secs(5));
        assert_eq!(hc.health.retries, 3);
        assert!(first("HEALTHCHECK --retries=-1 CMD x").is_err());
    }

    #[test]
    fn arg_names_can_not_be_blank() {
        let err = first("ARG A=1 =2").unwrap_err();
        assert_eq!(err.kind, ErrorKind::BlankName("ARG".into()));
        assert!(
            err.to_string().contains("ARG names can not be blank"),
            "{err}"
        );
        let cmd = first("ARG A B=").unwrap();
        let Instruction::Arg(arg) = cmd.instruction else {
            panic!("not an ARG: {cmd:?}");
        };
        assert_eq!(arg.args[1].value.as_deref(), Some(""));
    }

    #[test]
    fn from_stage_names() {
        assert!(first("FROM a AS 1x").is_err());
        assert!(first("FROM a b").is_err());
        assert_eq!(first("FROM a AS b").unwrap().location, Location::new(1, 1));
    }
}
