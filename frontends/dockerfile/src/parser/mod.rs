//! The Dockerfile parser: source text → AST of [`Node`]s, BuildKit-compatible.
//!
//! This module owns the line-level grammar: parser directives at the top
//! (`syntax`, `escape`, `check`; a BOM and a `#!` line are skipped), comments,
//! line continuations (with comment and empty lines inside them dropped, the
//! latter with a warning), heredoc bodies for RUN/COPY/ADD, and the per-line
//! argument shapes in [`line_parsers`]. It performs no I/O, no validation of
//! instruction keywords and no variable expansion; `crate::instructions` turns
//! the AST into typed commands.
//!
//! [`Node::dump`] prints BuildKit's AST dump format, which the conformance
//! tests compare byte-for-byte.

mod directives;
mod error;
mod heredoc;
mod line_parsers;
mod quote;

pub use directives::{
    detect_syntax, parse_directive, strip_bom, Directive, DirectiveParser, FoundDirective,
};
pub use error::{Error, ErrorKind, Location};
pub use heredoc::{chomp_heredoc_content, heredocs_from_line, parse_heredoc, Heredoc};
pub use line_parsers::{parse_json_array, parse_name_val, parse_words};
pub use quote::{go_quote, go_quote_list};

/// The default escape (and line-continuation) character.
pub const DEFAULT_ESCAPE: char = '\\';

/// The longest physical line accepted, in bytes (BuildKit's scanner limit).
pub const MAX_LINE_LEN: usize = 65535;

/// Instructions whose arguments may open heredocs.
const HEREDOC_INSTRUCTIONS: [&str; 3] = ["add", "copy", "run"];

/// One AST node: an instruction (child of the root), or one of its arguments.
///
/// The root node has no value; its `children` are the instructions. An
/// instruction's arguments are its `next` nodes, in order (BuildKit's `Next`
/// chain, flattened). An argument node with `children` is a nested instruction
/// (ONBUILD's trigger).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The instruction keyword as written, or the argument text.
    pub value: String,
    /// The argument nodes, in order.
    pub next: Vec<Node>,
    /// Instructions (for the root) or the nested instruction (for ONBUILD's argument).
    pub children: Vec<Node>,
    /// Heredocs opened on this instruction's line, with their bodies.
    pub heredocs: Vec<Heredoc>,
    /// Whether the arguments were written in JSON (exec) form.
    pub json: bool,
    /// The logical line as written (continuations joined).
    pub original: String,
    /// The leading `--flag` words, quotes removed.
    pub flags: Vec<String>,
    /// First source line (1-based).
    pub start_line: usize,
    /// Last source line (1-based, includes heredoc bodies).
    pub end_line: usize,
    /// The comment lines directly above the instruction.
    pub prev_comment: Vec<String>,
}

impl Node {
    /// An argument node holding `value`.
    pub fn leaf(value: String) -> Node {
        Node {
            value,
            ..Node::default()
        }
    }

    /// The instruction keyword, lower-cased.
    pub fn keyword(&self) -> String {
        self.value.to_lowercase()
    }

    /// The source lines this node spans.
    pub fn location(&self) -> Location {
        Location::new(self.start_line, self.end_line)
    }

    /// Whether this instruction (or ONBUILD's trigger) may carry heredocs.
    pub fn can_contain_heredoc(&self) -> bool {
        let mut node = self;
        if node.keyword() == "onbuild" {
            if let Some(trigger) = node.next.first().and_then(|n| n.children.first()) {
                node = trigger;
            }
        }
        HEREDOC_INSTRUCTIONS.contains(&node.keyword().as_str()) && !node.json
    }

    /// Renders the node in BuildKit's AST dump format (one line per instruction for the root).
    pub fn dump(&self) -> String {
        let mut out = self.value.to_lowercase();
        if !self.flags.is_empty() {
            out.push(' ');
            out.push_str(&go_quote_list(&self.flags));
        }
        for child in &self.children {
            out.push('(');
            out.push_str(&child.dump());
            out.push_str(")\n");
        }
        for arg in &self.next {
            out.push(' ');
            if arg.children.is_empty() {
                out.push_str(&go_quote(&arg.value));
            } else {
                out.push_str(&arg.dump());
            }
        }
        out.trim().to_string()
    }
}

/// A non-fatal problem found while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// One-line summary.
    pub short: String,
    /// Longer explanation lines.
    pub detail: Vec<String>,
    /// Documentation link.
    pub url: String,
    /// Where the problem is.
    pub location: Location,
}

/// The outcome of [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseResult {
    /// The root node; its children are the instructions.
    pub ast: Node,
    /// Non-fatal problems, in source order.
    pub warnings: Vec<Warning>,
    /// The escape character in effect (`\` or `` ` ``).
    pub escape_token: char,
    /// The parser directives found at the top of the file.
    pub directives: Vec<Directive>,
}

/// Parses a Dockerfile into its AST.
///
/// # Example
///
/// ```
/// let result = hoist_dockerfile::parser::parse("FROM alpine\nRUN echo hi\n").unwrap();
/// assert_eq!(result.ast.dump(), "(from \"alpine\")\n(run \"echo hi\")");
/// ```
pub fn parse(source: &str) -> Result<ParseResult, Error> {
    Parser::new(source).run()
}

/// Parsing state: the line scanner, the directive block and the escape character.
struct Parser<'a> {
    lines: std::iter::Peekable<std::str::SplitInclusive<'a, char>>,
    line_no: usize,
    directives: DirectiveParser,
    escape: char,
    warnings: Vec<Warning>,
}

impl<'a> Parser<'a> {
    fn new(source: &'a str) -> Self {
        Parser {
            lines: strip_bom(source).split_inclusive('\n').peekable(),
            line_no: 0,
            directives: DirectiveParser::new(),
            escape: DEFAULT_ESCAPE,
            warnings: Vec::new(),
        }
    }

    fn run(mut self) -> Result<ParseResult, Error> {
        let mut root = Node::default();
        let mut comments: Vec<String> = Vec::new();
        while let Some(raw) = self.next_raw_line()? {
            collect_comment(raw, &mut comments);
            let processed = self.process_line(raw, true)?;
            let start_line = self.line_no;
            let (first, mut done) = trim_continuation(processed, self.escape);
            if done && first.is_empty() {
                continue;
            }
            let mut line = first.to_string();
            let mut has_empty_continuation = false;
            while !done {
                let Some(raw) = self.next_raw_line()? else {
                    break;
                };
                let processed = self.process_line(raw, false)?;
                if is_comment(raw) {
                    continue;
                }
                if processed.trim_start().is_empty() {
                    has_empty_continuation = true;
                    continue;
                }
                let (part, end) = trim_continuation(processed, self.escape);
                line.push_str(part);
                done = end;
            }
            if has_empty_continuation {
                self.warn_empty_continuation(&line);
            }
            let mut child =
                line_parsers::node_from_line(&line, self.escape, std::mem::take(&mut comments))
                    .map_err(|kind| Error::new(kind, Location::new(start_line, self.line_no)))?;
            if child.can_contain_heredoc() && line.contains("<<") {
                child.heredocs = self.read_heredocs(&line, start_line)?;
            }
            set_lines(&mut child, start_line, self.line_no);
            root.children.push(child);
        }
        let (Some(first), Some(last)) = (root.children.first(), root.children.last()) else {
            let location = Location::new(self.line_no, self.line_no);
            return Err(Error::new(ErrorKind::NoInstructions, location));
        };
        root.start_line = first.start_line;
        root.end_line = last.end_line;
        Ok(ParseResult {
            ast: root,
            warnings: self.warnings,
            escape_token: self.escape,
            directives: self.directives.directives().to_vec(),
        })
    }

    /// The next physical line including its `\n`, enforcing the length limit.
    fn next_raw_line(&mut self) -> Result<Option<&'a str>, Error> {
        let Some(raw) = self.lines.next() else {
            return Ok(None);
        };
        if raw.strip_suffix('\n').unwrap_or(raw).len() > MAX_LINE_LEN {
            let line = self.line_no + 1;
            let kind = ErrorKind::LineTooLong { max: MAX_LINE_LEN };
            return Err(Error::new(kind, Location::new(line, line)));
        }
        Ok(Some(raw))
    }

    /// Strips the line ending (and, for a first line, leading blanks), feeds the
    /// directive parser, and blanks out comment lines.
    fn process_line(&mut self, raw: &'a str, strip_leading: bool) -> Result<&'a str, Error> {
        let mut line = trim_newline(raw);
        if strip_leading {
            line = line.trim_start();
        }
        self.line_no += 1;
        let location = Location::new(self.line_no, self.line_no);
        let directive = self
            .directives
            .parse_line(line)
            .map_err(|err| Error::new(err.kind, location))?;
        if let Some(directive) = directive.filter(|d| d.name == "escape") {
            self.escape = escape_token(&directive.value).ok_or_else(|| {
                Error::new(ErrorKind::InvalidEscapeToken(directive.value), location)
            })?;
        }
        Ok(if is_comment(line) { "" } else { line })
    }

    /// Reads the bodies of the heredocs opened on `line`, in order.
    fn read_heredocs(&mut self, line: &str, start_line: usize) -> Result<Vec<Heredoc>, Error> {
        let mut heredocs = heredocs_from_line(line)
            .map_err(|kind| Error::new(kind, Location::new(start_line, self.line_no)))?;
        for heredoc in &mut heredocs {
            let mut terminated = false;
            while let Some(raw) = self.next_raw_line()? {
                self.line_no += 1;
                let mut candidate = trim_newline(raw);
                if heredoc.chomp {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == heredoc.name {
                    terminated = true;
                    break;
                }
                heredoc.content.push_str(raw);
            }
            if !terminated {
                let location = Location::new(start_line, self.line_no);
                return Err(Error::new(ErrorKind::UnterminatedHeredoc, location));
            }
        }
        Ok(heredocs)
    }

    fn warn_empty_continuation(&mut self, line: &str) {
        self.warnings.push(Warning {
            short: format!("Empty continuation line found in: {line}"),
            detail: vec!["Empty continuation lines will become errors in a future release".into()],
            url: "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/".into(),
            location: Location::new(self.line_no, self.line_no),
        });
    }
}

/// Records comment text above an instruction; an empty `#` line resets it.
fn collect_comment(raw: &str, comments: &mut Vec<String>) {
    if !is_comment(raw) {
        return;
    }
    let text = trim_newline(raw).trim_start()[1..].trim();
    if text.is_empty() {
        comments.clear();
    } else {
        comments.push(text.to_string());
    }
}

/// Sets the line range of an instruction and of ONBUILD's nested trigger.
fn set_lines(node: &mut Node, start: usize, end: usize) {
    node.start_line = start;
    node.end_line = end;
    for arg in &mut node.next {
        for child in &mut arg.children {
            set_lines(child, start, end);
        }
    }
}

fn escape_token(value: &str) -> Option<char> {
    match value {
        "\\" => Some('\\'),
        "`" => Some('`'),
        _ => None,
    }
}

fn trim_newline(raw: &str) -> &str {
    raw.trim_end_matches(['\r', '\n'])
}

fn is_comment(raw: &str) -> bool {
    trim_newline(raw).trim_start().starts_with('#')
}

/// Removes a trailing line-continuation escape; returns the text and whether the line is complete.
///
/// The escape continues the line only when it is not itself escaped (a run of
/// exactly one escape character before trailing blanks).
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line, true);
    };
    if before.ends_with(escape) {
        return (line, true);
    }
    (before, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_requires_an_unescaped_escape() {
        assert_eq!(trim_continuation("a \\  ", '\\'), ("a ", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", true));
        assert_eq!(trim_continuation("a `", '`'), ("a ", false));
    }

    #[test]
    fn onbuild_trigger_gets_line_numbers() {
        let result = parse("FROM a\nONBUILD RUN x\n").unwrap();
        let onbuild = &result.ast.children[1];
        assert_eq!(onbuild.next[0].children[0].start_line, 2);
    }

    #[test]
    fn unterminated_heredoc_is_located() {
        let err = parse("FROM a\nRUN <<EOF\nhello\n").unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnterminatedHeredoc);
        assert_eq!(err.location, Location::new(2, 3));
    }
}
