//! Shell-style word expansion for Dockerfile instruction arguments: quote removal, escapes and
//! `$VAR` / `${VAR...}` parameter expansion, with optional field splitting.
//!
//! This module owns the lexical rules BuildKit's `frontend/dockerfile/shell` package applies to
//! the arguments of `ENV`, `ARG`, `COPY`, `WORKDIR`, `USER` and friends. It is pure: no I/O and no
//! process environment; variables come only from the caller's [`Env`]. It must not know about
//! instructions, the parser or LLB: they call into it, never the other way round.
//!
//! # Example
//!
//! ```
//! use hoist_dockerfile::shell::Lexer;
//!
//! let env = [("NAME", "world"), ("FILE", "/src/app.tar.gz")];
//! let lexer = Lexer::new('\\');
//! assert_eq!(lexer.process_word("hello ${NAME:-you}", &env).unwrap(), "hello world");
//! assert_eq!(lexer.process_word("${FILE##*/}", &env).unwrap(), "app.tar.gz");
//! assert_eq!(lexer.process_words("a \"b c\" $NAME", &env).unwrap(), ["a", "b c", "world"]);
//! ```
//!
//! # Syntax
//!
//! * `'...'` keeps everything literally; `"..."` keeps everything except `$` expansions, and the
//!   escape character there only escapes `"`, `$` and itself. Outside quotes the escape character
//!   (`\` by default, `` ` `` with `# escape=`` ` ``) makes the next character literal; at the end
//!   of the word it is dropped.
//! * `$name`, `${name}`, `${name:-word}`, `${name-word}`, `${name:+word}`, `${name+word}`,
//!   `${name:?message}`, `${name?message}`: the POSIX meanings (with `:`, an empty value counts as
//!   unset). `${name?...}` failing is an [`ErrorKind::Required`] error.
//! * `${name#pat}`, `${name##pat}`, `${name%pat}`, `${name%%pat}`, `${name/pat/repl}`,
//!   `${name//pat/repl}`: prefix/suffix removal (shortest or longest) and first/all replacement,
//!   where `pat` is a glob with `*` and `?` (no brackets) and `\*`, `\?`, `\\` escape them.
//! * A name is letters, digits and `_`; a name starting with a digit is all the following digits
//!   (`$12` is parameter `12`). The special parameters `@ * # ? - $ ! 0` and the positional ones
//!   are never set, so they expand to nothing, as in a Dockerfile they should.
//! * Names are case-sensitive (Unix semantics).
//!
//! # Key decision
//!
//! BuildKit turns `#`/`%`/`/` patterns into Go regular expressions and takes their leftmost-first
//! match. This module instead compiles them to a tiny token list and computes the same
//! leftmost-first match with a linear dynamic program (greedy or lazy stars, `*`/`?` not matching a
//! newline, as `.` in Go), which keeps the frontend free of a regex engine on wasm32 and makes
//! the running time linear in pattern × value. Replacement text is inserted literally (Go's
//! `ReplaceAllString` would also expand `$1` templates in it, which no Dockerfile means).
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

/// The result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a word could not be expanded, with the word concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {kind}")]
pub struct Error {
    /// The word that was being expanded.
    word: String,
    /// What went wrong.
    kind: ErrorKind,
}

impl Error {
    /// The word that was being expanded.
    pub fn word(&self) -> &str {
        &self.word
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether this is a `${name?message}` / `${name:?message}` failure.
    pub fn is_required(&self) -> bool {
        matches!(self.kind, ErrorKind::Required { .. })
    }
}

/// The kinds of expansion failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The word ended inside `${...}` before the expected delimiter.
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(char),
    /// A `'` was never closed.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// A `"` was never closed.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// `${` without its closing `}`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${name/pattern` without the `/` that ends the pattern.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${:...}` or `${{...}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// An operator after the name that is not supported (`${a=b}`, `${a:#b}`, `${a.}`).
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${name?message}` with `name` unset, or `${name:?message}` with it unset or empty.
    #[error("{name}: {message}")]
    Required {
        /// The variable that must be set.
        name: String,
        /// The user's message, or the default one.
        message: String,
    },
    /// A `#`, `%` or `/` pattern with a bad escape (only `\*`, `\?`, `\\` are allowed).
    #[error("invalid pattern ({pattern}) in substitution: invalid escape '\\{}'", escaped_display(*.escaped))]
    InvalidPattern {
        /// The pattern as written (after expansion).
        pattern: String,
        /// The character after the `\`, or `None` for a `\` ending the pattern.
        escaped: Option<char>,
    },
}

fn escaped_display(c: Option<char>) -> String {
    c.map_or_else(|| "<end of pattern>".to_string(), |c| c.to_string())
}

/// Variables visible to an expansion: a name maps to a value, or is unset.
pub trait Env {
    /// The value of `name`, or `None` if it is unset (an empty value is set).
    fn lookup(&self, name: &str) -> Option<&str>;
}

/// A list of `(name, value)` pairs; a later pair overrides an earlier one with the same name.
impl<K: AsRef<str>, V: AsRef<str>> Env for [(K, V)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// A fixed array of `(name, value)` pairs, as the slice impl.
impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Env for [(K, V); N] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// A vector of `(name, value)` pairs, as the slice impl.
impl<K: AsRef<str>, V: AsRef<str>> Env for Vec<(K, V)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

impl Env for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl<S: BuildHasher> Env for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl<E: Env + ?Sized> Env for &E {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}

/// Expands words the way BuildKit's Dockerfile frontend does; see the module docs.
///
/// A `Lexer` holds only settings, so it is cheap to clone and can be shared between threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character (`\` or `` ` ``).
    escape: char,
    /// Keep quote characters in the output.
    raw_quotes: bool,
    /// Keep escape characters in the output.
    raw_escapes: bool,
    /// Treat quotes as ordinary characters.
    skip_process_quotes: bool,
    /// Leave references to unset variables as written instead of expanding them to nothing.
    skip_unset_env: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer with the given escape character and all options off.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keep quote characters in the output (they still group and protect text).
    pub fn with_raw_quotes(mut self, on: bool) -> Self {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output (they still protect the next character).
    pub fn with_raw_escapes(mut self, on: bool) -> Self {
        self.raw_escapes = on;
        self
    }

    /// Treat `'` and `"` as ordinary characters (used for heredoc bodies).
    pub fn with_skip_process_quotes(mut self, on: bool) -> Self {
        self.skip_process_quotes = on;
        self
    }

    /// Leave references to unset variables as written (`$X`, `${X:-y}`) instead of expanding them.
    pub fn with_skip_unset_env(mut self, on: bool) -> Self {
        self.skip_unset_env = on;
        self
    }

    /// Expands `word` into a single string (spaces are kept).
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String> {
        self.run(word, env).map(|e| e.result)
    }

    /// Expands `word` and splits the result into fields on whitespace; quoted or escaped
    /// whitespace does not split.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>> {
        self.run(word, env).map(|e| e.words)
    }

    /// Expands `word` and also reports which variable names it referenced that were set
    /// (`matched`) and unset (`unmatched`), for the `UndefinedVar` lint and build-arg tracking.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> Result<(String, BTreeSet<String>, BTreeSet<String>)> {
        self.run(word, env)
            .map(|e| (e.result, e.matched, e.unmatched))
    }

    fn run(&self, word: &str, env: &dyn Env) -> Result<Expanded> {
        let mut expander = Expander {
            lexer: self,
            env,
            chars: word.chars().collect(),
            pos: 0,
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        match expander.process_stop_on(None, self.raw_escapes) {
            Ok((result, words)) => Ok(Expanded {
                result,
                words,
                matched: expander.matched,
                unmatched: expander.unmatched,
            }),
            Err(kind) => Err(Error {
                word: word.to_string(),
                kind,
            }),
        }
    }
}

/// Everything one expansion produces.
struct Expanded {
    result: String,
    words: Vec<String>,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

/// Field splitting state: whitespace that came from literal text or `$` expansions separates
/// fields, text from quotes or escapes never does.
#[derive(Default)]
struct Fields {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Fields {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_str(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

/// One expansion in progress: a cursor over the word plus what it has looked up.
struct Expander<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    chars: Vec<char>,
    pos: usize,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

type Step<T> = std::result::Result<T, ErrorKind>;

impl Expander<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// Processes up to `stop` (consumed) or, with `None`, to the end of the word; returns the
    /// text and its fields.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Step<(String, Vec<String>)> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn process_stop_on_inner(&mut self, stop: Option<char>) -> Step<(String, Vec<String>)> {
        let mut result = String::new();
        let mut fields = Fields::default();
        let quotes = !self.lexer.skip_process_quotes;
        while let Some(c) = self.peek() {
            if stop == Some(c) {
                self.pos += 1;
                return Ok((result, fields.finish()));
            }
            if c == '$' {
                let value = self.process_dollar()?;
                result.push_str(&value);
                fields.add_str(&value);
            } else if quotes && (c == '\'' || c == '"') {
                let value = if c == '\'' {
                    self.process_single_quote()?
                } else {
                    self.process_double_quote()?
                };
                result.push_str(&value);
                fields.add_raw_str(&value);
            } else {
                self.pos += 1;
                if c == self.lexer.escape {
                    if self.raw_escapes {
                        fields.add_raw_char(c);
                        result.push(c);
                    }
                    let Some(escaped) = self.next() else { break };
                    fields.add_raw_char(escaped);
                    result.push(escaped);
                } else {
                    fields.add_char(c);
                    result.push(c);
                }
            }
        }
        match stop {
            Some(stop) => Err(ErrorKind::Unterminated(stop)),
            None => Ok((result, fields.finish())),
        }
    }

    fn process_single_quote(&mut self) -> Step<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Step<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(ErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(c) => {
                    self.pos += 1;
                    let mut out = c;
                    if c == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(c);
                        }
                        match self.peek() {
                            // A trailing escape is dropped; the missing quote is reported next.
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lexer.escape => {
                                self.pos += 1;
                                out = n;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(out);
                }
            }
        }
    }

    /// Reads a parameter name: a run of digits, one special-parameter character, or letters,
    /// digits and `_`. Returns an empty name when none is there.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_numeric() {
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return c.to_string();
            }
            if !c.is_alphabetic() && !c.is_numeric() && c != '_' {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    /// Expands the `$...` at the cursor.
    fn process_dollar(&mut self) -> Step<String> {
        self.pos += 1; // '$'
        let skip_unset = self.lexer.skip_unset_env;
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1; // '{'
        match self.peek() {
            None => return Err(ErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(op) = self.next() else {
            return Err(ErrorKind::MissingBrace);
        };
        match op {
            '}' => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => self.process_modifier(name, op),
            '/' => self.process_replace(name),
            other => Err(ErrorKind::UnsupportedModifier(other.to_string())),
        }
    }

    /// `${name<op>word}` for the `-`, `+`, `?`, `#`, `%` operators, optionally after `:`.
    fn process_modifier(&mut self, name: String, first: char) -> Step<String> {
        let mut modifier = first.to_string();
        let null_is_unset = first == ':';
        let op = if null_is_unset {
            let Some(op) = self.next() else {
                return Err(ErrorKind::MissingBrace);
            };
            modifier.push(op);
            op
        } else {
            first
        };
        let is_pattern = op == '#' || op == '%';
        if null_is_unset && is_pattern {
            return Err(ErrorKind::UnsupportedModifier(modifier));
        }
        let word = self.process_braced_word(is_pattern)?;
        let value = self.get_env(&name);
        if self.lexer.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let empty_or_unset = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match op {
            '-' => Ok(if empty_or_unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty_or_unset { String::new() } else { word }),
            '?' => {
                if !empty_or_unset {
                    return Ok(value.unwrap_or_default());
                }
                let message = if !word.is_empty() {
                    word
                } else if value.is_none() {
                    "is not allowed to be unset".to_string()
                } else {
                    "is not allowed to be empty".to_string()
                };
                Err(ErrorKind::Required { name, message })
            }
            '#' | '%' => {
                let value = value.unwrap_or_default();
                let (greedy, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, word),
                };
                if op == '#' {
                    trim_prefix(&pattern, &value, greedy)
                } else {
                    trim_suffix(&pattern, &value, greedy)
                }
            }
            _ => Err(ErrorKind::UnsupportedModifier(modifier)),
        }
    }

    /// The word after an operator up to the closing `}`.
    fn process_braced_word(&mut self, raw_escapes: bool) -> Step<String> {
        match self.process_stop_on(Some('}'), raw_escapes) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => Err(ErrorKind::MissingBrace),
            Err(e) => Err(e),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn process_replace(&mut self, name: String) -> Step<String> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((p, _)) => p,
            Err(_) if self.peek().is_none() => return Err(ErrorKind::MissingSlash),
            Err(e) => return Err(e),
        };
        let replacement = self.process_braced_word(true)?;
        let Some(value) = self.get_env(&name) else {
            if self.lexer.skip_unset_env {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let glob = Glob::compile(&pattern, true)?;
        let text: Vec<char> = value.chars().collect();
        let ends = glob.match_ends(&text);
        // first[s]: the leftmost match starting at or after s, as (start, end).
        let mut first = vec![None; text.len() + 2];
        for s in (0..=text.len()).rev() {
            first[s] = ends[s].map(|e| (s, e)).or(first[s + 1]);
        }
        let mut out = String::new();
        if all {
            // Go's ReplaceAll: successive non-overlapping leftmost matches; an empty match right
            // after a previous match is not replaced; always advance at least one character.
            let mut search = 0;
            let mut last_end = 0;
            while search <= text.len() {
                let Some((start, end)) = first[search] else {
                    break;
                };
                out.extend(&text[last_end..start]);
                if end > last_end || start == 0 {
                    out.push_str(&replacement);
                }
                last_end = end;
                search = if search + 1 > end { search + 1 } else { end };
            }
            out.extend(&text[last_end..]);
        } else if let Some((start, end)) = first[0] {
            out.extend(&text[..start]);
            out.push_str(&replacement);
            out.extend(&text[end..]);
        } else {
            out = value;
        }
        Ok(out)
    }
}

/// `${v#pat}` / `${v##pat}`: removes the shortest (longest) matching prefix.
fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Step<String> {
    let glob = Glob::compile(pattern, greedy)?;
    let text: Vec<char> = value.chars().collect();
    Ok(match glob.match_ends(&text)[0] {
        Some(end) => text[end..].iter().collect(),
        None => value.to_string(),
    })
}

/// `${v%pat}` / `${v%%pat}`: reverses pattern and value so the suffix becomes a prefix.
fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Step<String> {
    let reversed_value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed_value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern but keeps each `\x` escape pair in order (`a\*c` becomes `c\*a`).
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut pieces: Vec<&[char]> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let len = if chars[i] == '\\' && i + 1 < chars.len() {
            2
        } else {
            1
        };
        pieces.push(&chars[i..i + len]);
        i += len;
    }
    pieces.iter().rev().flat_map(|p| p.iter()).collect()
}

/// One element of a compiled `#`/`%`/`/` pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GlobToken {
    /// Exactly this character.
    Literal(char),
    /// Any one character except a newline.
    One,
    /// Any run of characters without a newline.
    Star,
}

/// A compiled shell pattern with leftmost-first match semantics.
struct Glob {
    tokens: Vec<GlobToken>,
    greedy: bool,
}

impl Glob {
    /// Compiles `pattern`; stars prefer the longest match when `greedy`, else the shortest.
    fn compile(pattern: &str, greedy: bool) -> Step<Glob> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => tokens.push(GlobToken::Star),
                '?' => tokens.push(GlobToken::One),
                '\\' => {
                    // `\}` and `\/` only protect the delimiter of `${...}`; the next iteration
                    // takes the character itself literally.
                    if matches!(chars.peek(), Some('}' | '/')) {
                        continue;
                    }
                    match chars.next() {
                        Some(e @ ('*' | '?' | '\\')) => tokens.push(GlobToken::Literal(e)),
                        escaped => {
                            return Err(ErrorKind::InvalidPattern {
                                pattern: pattern.to_string(),
                                escaped,
                            })
                        }
                    }
                }
                other => tokens.push(GlobToken::Literal(other)),
            }
        }
        Ok(Glob { tokens, greedy })
    }

    /// For each start position in `text`, the end of the preferred match starting there.
    ///
    /// Computed backwards over the tokens with one row per token, so time is
    /// O(tokens × chars) and memory O(chars).
    fn match_ends(&self, text: &[char]) -> Vec<Option<usize>> {
        let n = text.len();
        // After all tokens, the match ends wherever we are.
        let mut next: Vec<Option<usize>> = (0..=n).map(Some).collect();
        let mut row = vec![None; n + 1];
        for token in self.tokens.iter().rev() {
            match *token {
                GlobToken::Literal(c) => {
                    for j in 0..=n {
                        row[j] = if j < n && text[j] == c {
                            next[j + 1]
                        } else {
                            None
                        };
                    }
                }
                GlobToken::One => {
                    for j in 0..=n {
                        row[j] = if j < n && text[j] != '\n' {
                            next[j + 1]
                        } else {
                            None
                        };
                    }
                }
                GlobToken::Star => {
                    // row[j]: try star lengths from longest (greedy) or shortest (lazy).
                    row[n] = next[n];
                    for j in (0..n).rev() {
                        let can_extend = text[j] != '\n';
                        row[j] = if !can_extend {
                            next[j]
                        } else if self.greedy {
                            row[j + 1].or(next[j])
                        } else {
                            next[j].or(row[j + 1])
                        };
                    }
                }
            }
            std::mem::swap(&mut row, &mut next);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(input: &str, env: &[(&str, &str)]) -> Result<String> {
        Lexer::new('\\').process_word(input, &env)
    }

    #[test]
    fn backtick_escape() {
        let lexer = Lexer::new('`');
        let env = [("A", "x")];
        assert_eq!(lexer.process_word(r"c:\dir`$A", &env).unwrap(), r"c:\dir$A");
        assert_eq!(lexer.process_word("\"a`\"b\"", &env).unwrap(), "a\"b");
    }

    #[test]
    fn skip_unset_env_keeps_references() {
        let lexer = Lexer::new('\\').with_skip_unset_env(true);
        let env = [("SET", "v")];
        assert_eq!(
            lexer.process_word("$SET $X ${Y} ${Z:-d}", &env).unwrap(),
            "v $X ${Y} ${Z:-d}"
        );
    }

    #[test]
    fn raw_quotes_and_escapes() {
        let lexer = Lexer::new('\\')
            .with_raw_quotes(true)
            .with_raw_escapes(true);
        let env: [(&str, &str); 0] = [];
        assert_eq!(
            lexer.process_word(r#"'a' "b" \c"#, &env).unwrap(),
            r#"'a' "b" \c"#
        );
    }

    #[test]
    fn skip_process_quotes() {
        let lexer = Lexer::new('\\').with_skip_process_quotes(true);
        assert_eq!(lexer.process_word("'$A'", &[("A", "1")]).unwrap(), "'1'");
    }

    #[test]
    fn required_messages() {
        let err = word("${X?}", &[]).unwrap_err();
        assert!(err.is_required());
        assert!(
            err.to_string().contains("X: is not allowed to be unset"),
            "{err}"
        );
        let err = word("${X:?}", &[("X", "")]).unwrap_err();
        assert!(
            err.to_string().contains("X: is not allowed to be empty"),
            "{err}"
        );
    }

    #[test]
    fn pattern_errors_and_suffixes() {
        let err = word(r"${V#\a}", &[("V", "a")]).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidPattern { .. }),
            "{err}"
        );
        assert_eq!(word("${V%.*}", &[("V", "a.tar.gz")]).unwrap(), "a.tar");
        assert_eq!(word("${V%%.*}", &[("V", "a.tar.gz")]).unwrap(), "a");
        assert_eq!(word("${V/a/b}", &[("V", "banana")]).unwrap(), "bbnana");
        assert_eq!(word("${V//a/b}", &[("V", "banana")]).unwrap(), "bbnbnb");
        assert_eq!(word("${V//x*/-}", &[("V", "axbxc")]).unwrap(), "a-");
    }

    #[test]
    fn later_pairs_override_earlier() {
        assert_eq!(word("$A", &[("A", "1"), ("A", "2")]).unwrap(), "2");
    }
}
