//! Docker-compatible path pattern matching for `.dockerignore` files, `COPY --exclude` and local
//! context filters, with the semantics of `github.com/moby/patternmatcher`.
//!
//! This crate owns the pattern language and the ignore-file reader. It is pure (no I/O, builds for
//! wasm32) and must not walk directories itself: a walker asks it about each relative path and
//! uses [`PatternMatcher::matches_using_parent_results`] and
//! [`PatternMatcher::exclusions_may_match_under`] to avoid re-matching and to prune.
//!
//! # Example
//!
//! ```
//! use hoist_patternmatcher::{read_ignore_file, PatternMatcher};
//!
//! let patterns = read_ignore_file("# build output\n/target\n*.log\n!keep.log\n");
//! assert_eq!(patterns, ["target", "*.log", "!keep.log"]);
//! let pm = PatternMatcher::new(&patterns).unwrap();
//! assert!(pm.matches("target/debug/app").unwrap()); // a parent directory matches
//! assert!(pm.matches("server.log").unwrap());
//! assert!(!pm.matches("keep.log").unwrap()); // re-included by the `!` pattern
//! assert!(!pm.matches("src/main.rs").unwrap());
//! ```
//!
//! # Syntax
//!
//! Paths and patterns use `/`. Patterns are trimmed, lexically cleaned (`./a/` is `a`, `a/../b`
//! is `b`) and lose one leading `/`; empty ones are dropped.
//!
//! * `*` matches any run of characters except `/`; `?` one character except `/`.
//! * `[abc]`, `[a-z]`, `[^a-z]`: one character (including `/`) in or not in the class; `\`
//!   escapes inside a class, and a class may not start with `]` nor hold a bare `-` item.
//! * `**` matches any number of directories: `**/a` matches `a` and `x/y/a`; `a/**` matches
//!   everything below `a` (but not `a`); a pattern starting with `**` and otherwise literal is a
//!   plain suffix test (`**.go` matches `x/main.go`).
//! * `\x` matches `x` literally (Unix semantics).
//! * A leading `!` makes an exclusion: a path matching it is re-included. The last pattern that
//!   matches decides. A path also matches a pattern when one of its parent directories does.
//!
//! Malformed patterns (`[`, `a\`, `[]a]`, `[x-]`) are rejected by [`PatternMatcher::new`]. A
//! class range written backwards (`[z-a]`) is accepted there but fails every match that reaches
//! it, as upstream does.
//!
//! # Key decision
//!
//! Upstream compiles each pattern to a Go regular expression. This crate compiles it to a short
//! token list matched by a linear-time state-set simulation instead: no regex engine in the wasm
//! frontends, and the same simulation answers the walker's pruning question ("can anything below
//! this directory still match a `!` pattern?"). Where Go's regex syntax would leak through
//! upstream's conversion (`\d` meaning a digit, `*` inside `[...]` expanding), this crate keeps the
//! documented glob meaning: escaped characters are literal, class members are characters.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;

/// Why a pattern set or a match failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A pattern consisting of `!` alone.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// A malformed pattern.
    #[error("syntax error in pattern {pattern:?}: {kind}")]
    BadPattern {
        /// The pattern as cleaned, without its `!`.
        pattern: String,
        /// What is wrong with it.
        kind: BadPatternKind,
    },
    /// A [`MatchInfo`] from a different pattern set was passed in.
    #[error("wrong number of values in parent match info: got {got}, want {want}")]
    MatchInfoLength {
        /// Entries in the given info.
        got: usize,
        /// Patterns in this matcher.
        want: usize,
    },
}

impl Error {
    /// Whether this error is about a malformed pattern.
    pub fn is_bad_pattern(&self) -> bool {
        matches!(self, Error::BadPattern { .. } | Error::IllegalExclusion)
    }
}

/// The ways a pattern can be malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadPatternKind {
    /// A `\` with nothing after it.
    #[error("trailing escape character")]
    TrailingEscape,
    /// A `[` without its `]`.
    #[error("unterminated character class")]
    UnterminatedClass,
    /// A class item that is a bare `-` or `]` (`[]a]`, `[-x]`, `[x-]`, `[a-b-c]`).
    #[error("'-' or ']' where a class character was expected")]
    BadClassItem,
    /// A class range whose end comes before its start (`[z-a]`); reported when matching.
    #[error("invalid character class range {lo}-{hi}")]
    ReversedRange {
        /// The start of the range.
        lo: char,
        /// The end of the range.
        hi: char,
    },
}

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Exactly this character.
    Literal(char),
    /// `?`: one character except `/`.
    AnyChar,
    /// `*`: any run of characters except `/`.
    Star,
    /// `**` before more pattern: nothing, or anything (no newline) ending in `/`.
    DirStar,
    /// `**` ending the pattern: anything without a newline.
    AnyTail,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        /// `[^...]`.
        negated: bool,
        /// Inclusive ranges; a single character is a range of one.
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn class_matches(negated: bool, ranges: &[(char, char)], c: char) -> bool {
        ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != negated
    }
}

/// How a pattern is tested, mirroring upstream's fast paths (their results differ for `**x`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum MatchKind {
    /// No wildcard: the path equals the pattern.
    Exact,
    /// Literal text then a final `**`: the path starts with the text.
    Prefix(String),
    /// A leading `**` then literal text: the path ends with the text (or is it, minus a `/`).
    Suffix(String),
    /// Anything else: the token simulation.
    Tokens,
}

/// One cleaned pattern of a [`PatternMatcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    exclusion: bool,
    kind: MatchKind,
    tokens: Vec<Token>,
    /// A defect that only surfaces when the pattern is matched (see [`BadPatternKind::ReversedRange`]).
    deferred: Option<BadPatternKind>,
}

impl Pattern {
    /// The cleaned pattern text, without the leading `!` of an exclusion.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is an exclusion (`!`) pattern.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    fn compile(text: String, exclusion: bool) -> Result<Pattern, Error> {
        let bad = |kind| Error::BadPattern {
            pattern: text.clone(),
            kind,
        };
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut kind = MatchKind::Exact;
        let mut deferred = None;
        let mut i = 0;
        let mut first = true;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i == chars.len() {
                        kind = if kind == MatchKind::Exact {
                            // Every token so far is a literal: they are the prefix.
                            let prefix = tokens.iter().filter_map(|t| match t {
                                Token::Literal(c) => Some(*c),
                                _ => None,
                            });
                            MatchKind::Prefix(prefix.collect())
                        } else {
                            MatchKind::Tokens
                        };
                        tokens.push(Token::AnyTail);
                    } else {
                        tokens.push(Token::DirStar);
                        kind = MatchKind::Tokens;
                    }
                    if first {
                        kind = MatchKind::Suffix(chars[2..].iter().collect());
                    }
                }
                '*' => {
                    tokens.push(Token::Star);
                    kind = MatchKind::Tokens;
                }
                '?' => {
                    tokens.push(Token::AnyChar);
                    kind = MatchKind::Tokens;
                }
                '\\' => {
                    let Some(&escaped) = chars.get(i) else {
                        return Err(bad(BadPatternKind::TrailingEscape));
                    };
                    i += 1;
                    tokens.push(Token::Literal(escaped));
                    kind = MatchKind::Tokens;
                }
                '[' => {
                    let (token, next, reversed) = parse_class(&chars, i).map_err(bad)?;
                    if deferred.is_none() {
                        deferred = reversed;
                    }
                    tokens.push(token);
                    i = next;
                    kind = MatchKind::Tokens;
                }
                ']' => {
                    tokens.push(Token::Literal(']'));
                    kind = MatchKind::Tokens;
                }
                other => tokens.push(Token::Literal(other)),
            }
            first = false;
        }
        Ok(Pattern {
            text,
            exclusion,
            kind,
            tokens,
            deferred,
        })
    }

    /// Whether `path` (not its parents) matches this pattern.
    fn matches_path(&self, path: &str) -> Result<bool, Error> {
        if let Some(kind) = self.deferred {
            return Err(Error::BadPattern {
                pattern: self.text.clone(),
                kind,
            });
        }
        Ok(match &self.kind {
            MatchKind::Exact => path == self.text,
            MatchKind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            MatchKind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            MatchKind::Tokens => {
                let states = self.run(path);
                states.outer[self.tokens.len()]
            }
        })
    }

    /// Whether this pattern matches `path` or one of its parent directories.
    fn matches_or_parent(&self, path: &str) -> Result<bool, Error> {
        if self.matches_path(path)? {
            return Ok(true);
        }
        let parent = parent_dir(path);
        if parent == "." {
            return Ok(false);
        }
        for (k, c) in parent.char_indices() {
            if c == '/' && self.matches_path(&parent[..k])? {
                return Ok(true);
            }
        }
        self.matches_path(&parent)
    }

    /// Whether some path strictly below directory `dir` could match this pattern (may answer
    /// `true` when none can; never `false` when one can).
    fn may_match_below(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        if self.deferred.is_some() {
            return true;
        }
        match &self.kind {
            MatchKind::Exact => self.text.starts_with(&prefix),
            MatchKind::Prefix(p) => prefix.starts_with(p.as_str()) || p.starts_with(&prefix),
            MatchKind::Suffix(_) => true,
            MatchKind::Tokens => self.run(&prefix).any(),
        }
    }

    /// Runs the token automaton over `text` and returns the states it ends in.
    fn run(&self, text: &str) -> States {
        let n = self.tokens.len();
        let mut states = States {
            outer: vec![false; n + 1],
            inner: vec![false; n + 1],
        };
        states.outer[0] = true;
        self.close(&mut states);
        for c in text.chars() {
            let mut next = States {
                outer: vec![false; n + 1],
                inner: vec![false; n + 1],
            };
            for (i, token) in self.tokens.iter().enumerate() {
                if states.outer[i] {
                    match token {
                        Token::Literal(l) if *l == c => next.outer[i + 1] = true,
                        Token::AnyChar if c != '/' => next.outer[i + 1] = true,
                        Token::Star if c != '/' => next.outer[i] = true,
                        Token::AnyTail if c != '\n' => next.outer[i] = true,
                        Token::Class { negated, ranges }
                            if Token::class_matches(*negated, ranges, c) =>
                        {
                            next.outer[i + 1] = true
                        }
                        _ => {}
                    }
                }
                if (states.outer[i] || states.inner[i]) && *token == Token::DirStar && c != '\n' {
                    next.inner[i] = true;
                    if c == '/' {
                        next.outer[i + 1] = true;
                    }
                }
            }
            self.close(&mut next);
            if !next.any() {
                return next;
            }
            states = next;
        }
        states
    }

    /// Follows the empty-match moves of `*`, `**` forward.
    fn close(&self, states: &mut States) {
        for (i, token) in self.tokens.iter().enumerate() {
            if states.outer[i] && matches!(token, Token::Star | Token::AnyTail | Token::DirStar) {
                states.outer[i + 1] = true;
            }
        }
    }
}

impl fmt::Display for Pattern {
    /// The cleaned pattern, with `!` in front of an exclusion.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exclusion {
            f.write_str("!")?;
        }
        f.write_str(&self.text)
    }
}

/// The automaton's states: `outer[i]` = before token `i`; `inner[i]` = inside the `.*/` of a
/// `**` at `i`.
struct States {
    outer: Vec<bool>,
    inner: Vec<bool>,
}

impl States {
    fn any(&self) -> bool {
        self.outer.iter().chain(&self.inner).any(|&b| b)
    }
}

/// Parses a class whose `[` precedes `chars[start]`, with Go `filepath.Match` rules. Returns
/// the token, the index after `]`, and the first backwards range if any.
fn parse_class(
    chars: &[char],
    start: usize,
) -> Result<(Token, usize, Option<BadPatternKind>), BadPatternKind> {
    let mut i = start;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut reversed = None;
    // One class character: not `-` or `]`, `\` escapes, and the class must continue after it.
    let item = |i: &mut usize| -> Result<char, BadPatternKind> {
        let mut c = match chars.get(*i) {
            None => return Err(BadPatternKind::UnterminatedClass),
            Some('-' | ']') => return Err(BadPatternKind::BadClassItem),
            Some(&c) => c,
        };
        if c == '\\' {
            *i += 1;
            c = *chars.get(*i).ok_or(BadPatternKind::UnterminatedClass)?;
        }
        *i += 1;
        if *i >= chars.len() {
            return Err(BadPatternKind::UnterminatedClass);
        }
        Ok(c)
    };
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            i += 1;
            break;
        }
        let lo = item(&mut i)?;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            i += 1;
            hi = item(&mut i)?;
        }
        if lo > hi && reversed.is_none() {
            reversed = Some(BadPatternKind::ReversedRange { lo, hi });
        }
        ranges.push((lo, hi));
    }
    Ok((Token::Class { negated, ranges }, i, reversed))
}

/// Which patterns matched a directory, so its entries need not re-check them; obtained from
/// [`PatternMatcher::matches_using_parent_results`]. The default value means "no information".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// An ordered set of patterns; a path is excluded when the last pattern matching it (or one of
/// its parent directories) is not an exclusion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Compiles `patterns`: each is trimmed, cleaned and stripped of one leading `/`; empty ones
    /// are dropped; a `!` alone or a malformed pattern is an error.
    pub fn new<I, S>(patterns: I) -> Result<PatternMatcher, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        let mut exclusions = false;
        for raw in patterns {
            let trimmed = raw.as_ref().trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = clean_path(trimmed);
            let (exclusion, body) = match cleaned.strip_prefix('!') {
                Some("") => return Err(Error::IllegalExclusion),
                Some(rest) => (true, clean_path(rest)),
                None => (false, cleaned),
            };
            let body = match body.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_string(),
                _ => body,
            };
            exclusions |= exclusion;
            out.push(Pattern::compile(body, exclusion)?);
        }
        Ok(PatternMatcher {
            patterns: out,
            exclusions,
        })
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is an exclusion (`!`).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `path` is excluded: cleans it first (`./a/`, `/a` are `a`); the context root
    /// (`.`, `/`, empty) is never excluded.
    pub fn matches(&self, path: &str) -> Result<bool, Error> {
        let cleaned = clean_path(path);
        let relative = cleaned.trim_start_matches('/');
        if relative.is_empty() || relative == "." {
            return Ok(false);
        }
        self.matches_or_parent_matches(relative)
    }

    /// Upstream's `MatchesOrParentMatches`: whether `path`, taken as given (not cleaned), or one
    /// of its parent directories is excluded.
    pub fn matches_or_parent_matches(&self, path: &str) -> Result<bool, Error> {
        let mut matched = false;
        for pattern in &self.patterns {
            // Only a pattern that could change the verdict needs evaluating.
            if pattern.exclusion != matched {
                continue;
            }
            if pattern.matches_or_parent(path)? {
                matched = !pattern.exclusion;
            }
        }
        Ok(matched)
    }

    /// Like [`matches_or_parent_matches`](Self::matches_or_parent_matches) for a walker that
    /// visits directories before their entries: pass the [`MatchInfo`] returned for `path`'s
    /// parent directory (or the default at the top) and keep the returned one for `path`'s
    /// entries. Parent directories are then not re-matched.
    pub fn matches_using_parent_results(
        &self,
        path: &str,
        parent: &MatchInfo,
    ) -> Result<(bool, MatchInfo), Error> {
        let known = &parent.parent_matched;
        if !known.is_empty() && known.len() != self.patterns.len() {
            return Err(Error::MatchInfoLength {
                got: known.len(),
                want: self.patterns.len(),
            });
        }
        let mut matched = false;
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = known.get(i).copied().unwrap_or(false);
            if !hit {
                if pattern.exclusion != matched {
                    continue;
                }
                hit = if known.is_empty() {
                    pattern.matches_or_parent(path)?
                } else {
                    pattern.matches_path(path)?
                };
            }
            info.parent_matched[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        Ok((matched, info))
    }

    /// Whether an exclusion (`!`) pattern could re-include some path strictly below directory
    /// `dir` (relative, `/`-separated). When `dir` is excluded and this is `false`, a walker may
    /// skip the whole directory. Conservative: may say `true` when nothing below can match.
    pub fn exclusions_may_match_under(&self, dir: &str) -> bool {
        if !self.exclusions {
            return false;
        }
        let cleaned = clean_path(dir);
        let dir = cleaned.trim_start_matches('/');
        if dir.is_empty() || dir == "." {
            return true;
        }
        self.patterns
            .iter()
            .any(|p| p.exclusion && p.may_match_below(dir))
    }
}

/// Reads a `.dockerignore` file into patterns: a line starting with `#` is a comment; lines are
/// trimmed and blank ones dropped; each pattern is cleaned and loses one leading `/` (also after
/// a `!`); a UTF-8 byte-order mark before the first line is ignored.
pub fn read_ignore_file(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut lines: Vec<&str> = text.split('\n').collect();
    if text.ends_with('\n') || text.is_empty() {
        lines.pop();
    }
    for line in lines {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean_path(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        out.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    out
}

/// Lexical path cleaning with Go's `path.Clean` rules: collapse `//`, drop `.`, resolve `..`
/// against earlier elements (dropped at the root), no trailing `/`; empty becomes `.`.
pub fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Dir` on Unix: everything before the last `/`, cleaned; `.` when there is none.
fn parent_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean_path(&path[..=i]),
        None => ".".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_follows_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("a/", "a"),
            ("./a/./b/", "a/b"),
            ("a/../../b", "../b"),
            ("/../a", "/a"),
            ("a//b", "a/b"),
            ("..", ".."),
        ] {
            assert_eq!(clean_path(input), want, "clean_path({input:?})");
        }
    }

    #[test]
    fn leading_slash_and_dot_are_cleaned() {
        let pm = PatternMatcher::new(["/a/b", "./c/", "!./a/b/keep"]).unwrap();
        let texts: Vec<String> = pm.patterns().iter().map(|p| p.to_string()).collect();
        assert_eq!(texts, ["a/b", "c", "!a/b/keep"]);
        assert!(pm.matches("/a/b/x").unwrap());
        assert!(pm.matches("./c").unwrap());
        assert!(!pm.matches("a/b/keep").unwrap());
        assert!(!pm.matches(".").unwrap());
    }

    #[test]
    fn pruning_knows_about_reinclusions() {
        let pm = PatternMatcher::new(["**", "!src/*.rs", "!docs/keep", "!b**"]).unwrap();
        assert!(pm.exclusions_may_match_under("src"));
        assert!(!pm.exclusions_may_match_under("src/deep")); // `*` does not cross `/`
        assert!(pm.exclusions_may_match_under("docs"));
        assert!(!pm.exclusions_may_match_under("target"));
        assert!(pm.exclusions_may_match_under("build")); // prefix `b`
        let none = PatternMatcher::new(["target"]).unwrap();
        assert!(!none.exclusions_may_match_under("target"));
        let dirstar = PatternMatcher::new(["*", "!**/important/*.txt"]).unwrap();
        assert!(dirstar.exclusions_may_match_under("any/where"));
    }

    #[test]
    fn match_info_length_is_checked() {
        let pm = PatternMatcher::new(["a", "b"]).unwrap();
        let (_, info) = pm
            .matches_using_parent_results("a", &MatchInfo::default())
            .unwrap();
        let other = PatternMatcher::new(["a"]).unwrap();
        let err = other
            .matches_using_parent_results("a/x", &info)
            .unwrap_err();
        assert!(matches!(err, Error::MatchInfoLength { got: 2, want: 1 }));
    }

    #[test]
    fn reversed_range_fails_only_when_matched() {
        let pm = PatternMatcher::new(["[z-a]"]).unwrap();
        let err = pm.matches("x").unwrap_err();
        assert!(err.is_bad_pattern(), "{err}");
    }

    #[test]
    fn class_contents_are_characters() {
        let pm = PatternMatcher::new(["[*]x"]).unwrap();
        assert!(pm.matches("*x").unwrap());
        assert!(!pm.matches("ax").unwrap());
    }
}
