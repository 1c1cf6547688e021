//! The crate's one error type: what went wrong, and on which Dockerfile lines.
//!
//! Both the parser and the instruction layer report through [`Error`]; its
//! [`ErrorKind`] messages follow BuildKit's wording so users (and conformance
//! tests) see familiar text.

use super::quote::go_quote;

/// A 1-based, inclusive range of Dockerfile lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Location {
    /// First line of the range (1-based).
    pub start_line: usize,
    /// Last line of the range (1-based, inclusive).
    pub end_line: usize,
}

impl Location {
    /// Creates a range covering `start_line..=end_line`.
    pub fn new(start_line: usize, end_line: usize) -> Self {
        Location {
            start_line,
            end_line,
        }
    }
}

/// A Dockerfile error located on the lines it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error on line {}: {kind}", location.start_line)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The lines concerned.
    pub location: Location,
}

impl Error {
    /// Creates an error of `kind` located at `location`.
    pub fn new(kind: ErrorKind, location: Location) -> Self {
        Error { kind, location }
    }

    /// The first line the error concerns (1-based; 0 when unknown).
    pub fn line(&self) -> usize {
        self.location.start_line
    }

    /// Whether the error is an unknown instruction keyword.
    pub fn is_unknown_instruction(&self) -> bool {
        matches!(self.kind, ErrorKind::UnknownInstruction(_))
    }

    /// Whether the error is an unknown `--flag` on an instruction.
    pub fn is_unknown_flag(&self) -> bool {
        matches!(self.kind, ErrorKind::UnknownFlag(_))
    }
}

/// The kinds of error, with BuildKit-compatible messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A physical line exceeds the scanner limit.
    #[error("dockerfile line greater than max allowed size of {max}")]
    LineTooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// The `escape` directive names something other than `\` or `` ` ``.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscapeToken(String),
    /// A parser directive appears twice.
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    /// The file has no instructions at all.
    #[error("file with no instructions")]
    NoInstructions,
    /// A valid JSON array holds a non-string element.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    JsonNotStringArray,
    /// Legacy `ENV key value` / `LABEL key value` form without a value.
    #[error("{0} must have two arguments")]
    MissingValue(String),
    /// `key=value` form where a later word has no `=`.
    #[error("Syntax error - can't find = in {}. Must be of the form: name=value", go_quote(.0))]
    MissingEquals(String),
    /// A heredoc has no terminator line.
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    /// A heredoc word is malformed (e.g. unbalanced quotes).
    #[error("invalid heredoc: {0}")]
    InvalidHeredoc(String),
    /// An instruction keyword that is not known.
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    /// A `--flag` not accepted by the instruction.
    #[error("unknown flag: --{0}")]
    UnknownFlag(String),
    /// A non-repeatable flag given twice.
    #[error("duplicate flag specified: --{0}")]
    DuplicateFlag(String),
    /// A string flag without `=value`.
    #[error("missing a value on flag: --{0}")]
    MissingFlagValue(String),
    /// A boolean flag with a value other than true/false.
    #[error("expecting boolean value for flag --{flag}, not: {value}")]
    InvalidBoolFlag {
        /// The flag name without dashes.
        flag: String,
        /// The offending value.
        value: String,
    },
    /// A flag word that does not start with `--`.
    #[error("arg should start with -- : {0}")]
    BadFlagSyntax(String),
    /// The instruction takes exactly one argument.
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(String),
    /// The instruction takes at least one argument.
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(String),
    /// The instruction takes at least two arguments.
    #[error("{0} requires at least two arguments")]
    AtLeastTwoArguments(String),
    /// ADD/COPY with a single argument.
    #[error(
        "{0} requires at least two arguments, but only one was provided. Destination could not be determined"
    )]
    NoDestination(String),
    /// ENV/LABEL node values that are not key/value/separator triples.
    #[error("Bad input to {0}, too many arguments")]
    TooManyArguments(String),
    /// ENV/LABEL/ARG with an empty key.
    #[error("{0} names can not be blank")]
    BlankName(String),
    /// ADD/COPY whose destination is a heredoc.
    #[error("{0} cannot accept a heredoc as a destination")]
    HeredocDestination(String),
    /// FROM with a wrong number of arguments.
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    /// `FROM image AS name` with an invalid stage name.
    #[error(
        "invalid name for build stage: {}, name can't start with a number or contain symbols",
        go_quote(.0)
    )]
    InvalidStageName(String),
    /// `ONBUILD ONBUILD ...`.
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChaining,
    /// `ONBUILD FROM` or `ONBUILD MAINTAINER`.
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(String),
    /// SHELL in shell form.
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    /// VOLUME with an empty path.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    /// `HEALTHCHECK NONE` followed by arguments.
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArgs,
    /// `HEALTHCHECK <type>` with a type other than CMD or NONE.
    #[error("Unknown type {} in HEALTHCHECK (try CMD)", go_quote(.0))]
    HealthcheckType(String),
    /// `HEALTHCHECK CMD` without a command.
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCmd,
    /// A duration flag that is not a Go-style duration.
    #[error("time: invalid duration {} for --{flag}", go_quote(value))]
    InvalidDuration {
        /// The flag name without dashes.
        flag: String,
        /// The offending value.
        value: String,
    },
    /// A non-zero HEALTHCHECK duration below the 1ms minimum.
    #[error("Interval {} cannot be less than 1ms", go_quote(.0))]
    IntervalTooShort(String),
    /// `--retries` that is not an integer.
    #[error("invalid --retries value {}", go_quote(.0))]
    InvalidRetries(String),
    /// `--retries` below zero.
    #[error("--retries cannot be negative ({0})")]
    NegativeRetries(i64),
    /// A `RUN --mount` specification that cannot be parsed.
    #[error("invalid mount {}: {reason}", go_quote(spec))]
    InvalidMount {
        /// The mount flag value.
        spec: String,
        /// Why it was rejected.
        reason: String,
    },
    /// `RUN --network` with an unsupported mode.
    #[error("unsupported network mode {}", go_quote(.0))]
    UnsupportedNetwork(String),
    /// `RUN --security` with an unsupported mode.
    #[error("unsupported security mode {}", go_quote(.0))]
    UnsupportedSecurity(String),
    /// An instruction other than ARG before the first FROM.
    #[error("no build stage in current context")]
    NoBuildStage,
}
