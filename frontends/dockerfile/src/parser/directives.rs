//! Parser directives: the `# key=value` comments allowed at the very top of a
//! Dockerfile (`syntax`, `escape`, `check`).
//!
//! This module owns recognising the directive block (which ends at the first
//! line that is not a known directive, a `#!` shebang on line 1 excepted) and
//! the helpers that find the `syntax` directive before a full parse, including
//! the `//syntax=` and JSON forms BuildKit accepts there.

use super::error::{Error, ErrorKind, Location};

/// The directive names BuildKit recognises; any other key ends the block.
const KNOWN_DIRECTIVES: [&str; 3] = ["syntax", "escape", "check"];

/// One parser directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The directive name, lower-cased (`syntax`, `escape`, `check`).
    pub name: String,
    /// The raw value after `=`, trimmed of surrounding blanks.
    pub value: String,
    /// The line the directive is on.
    pub location: Location,
}

/// Recognises directives line by line, stopping at the first non-directive.
#[derive(Debug, Clone)]
pub struct DirectiveParser {
    prefix: &'static str,
    line: usize,
    done: bool,
    parsed: Vec<Directive>,
}

impl Default for DirectiveParser {
    fn default() -> Self {
        Self::new()
    }
}

impl DirectiveParser {
    /// A parser for the standard `#` comment form.
    pub fn new() -> Self {
        Self::with_prefix("#", 0)
    }

    fn with_prefix(prefix: &'static str, lines_before: usize) -> Self {
        DirectiveParser {
            prefix,
            line: lines_before,
            done: false,
            parsed: Vec::new(),
        }
    }

    /// Whether the directive block has ended.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The directives recognised so far, in order.
    pub fn directives(&self) -> &[Directive] {
        &self.parsed
    }

    /// Feeds the next physical line (without its line ending).
    ///
    /// Returns the directive on this line, if any; a repeated directive is an error.
    pub fn parse_line(&mut self, line: &str) -> Result<Option<Directive>, Error> {
        self.line += 1;
        if self.done {
            return Ok(None);
        }
        if self.line == 1 && line.starts_with("#!") {
            return Ok(None);
        }
        let Some((key, value)) = match_directive(line, self.prefix) else {
            self.done = true;
            return Ok(None);
        };
        let name = key.to_ascii_lowercase();
        if !KNOWN_DIRECTIVES.contains(&name.as_str()) {
            self.done = true;
            return Ok(None);
        }
        let location = Location::new(self.line, self.line);
        if self.parsed.iter().any(|d| d.name == name) {
            return Err(Error::new(ErrorKind::DuplicateDirective(name), location));
        }
        let directive = Directive {
            name,
            value: value.to_string(),
            location,
        };
        self.parsed.push(directive.clone());
        Ok(Some(directive))
    }

    /// Parses the directive block at the top of `input`.
    pub fn parse_all(mut self, input: &str) -> Result<Vec<Directive>, Error> {
        for line in split_lines(input) {
            if self.done {
                break;
            }
            self.parse_line(line)?;
        }
        Ok(self.parsed)
    }
}

/// A directive found by [`detect_syntax`] or [`parse_directive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDirective {
    /// The first space-separated word of the value (e.g. the frontend image).
    pub reference: String,
    /// The whole value (e.g. `image // options`).
    pub cmdline: String,
    /// The line the directive is on (0 for the JSON form without a shebang).
    pub location: Location,
}

/// Finds the `syntax` directive: JSON object form, `//syntax=` form, then `# syntax=`.
pub fn detect_syntax(input: &str) -> Option<FoundDirective> {
    let (body, lines_before) = strip_preamble(input);
    if let Some(found) = json_directive("syntax", body, lines_before) {
        return Some(found);
    }
    find_with_prefix("syntax", body, "//", lines_before)
        .or_else(|| find_with_prefix("syntax", body, "#", lines_before))
}

/// Finds directive `key` in its `# key=value` form only.
pub fn parse_directive(key: &str, input: &str) -> Option<FoundDirective> {
    let (body, lines_before) = strip_preamble(input);
    find_with_prefix(key, body, "#", lines_before)
}

/// Removes a UTF-8 BOM and a `#!` first line; returns the rest and how many lines were removed.
fn strip_preamble(input: &str) -> (&str, usize) {
    let body = strip_bom(input);
    if !body.starts_with("#!") {
        return (body, 0);
    }
    match body.find('\n') {
        Some(end) => (&body[end + 1..], 1),
        None => ("", 1),
    }
}

/// Removes a leading UTF-8 byte-order mark.
pub fn strip_bom(input: &str) -> &str {
    input.strip_prefix('\u{feff}').unwrap_or(input)
}

fn json_directive(key: &str, body: &str, line: usize) -> Option<FoundDirective> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(body).ok()?;
    let value = object.get(key)?.as_str()?;
    Some(FoundDirective {
        reference: value.to_string(),
        cmdline: value.to_string(),
        location: Location::new(line, line),
    })
}

fn find_with_prefix(
    key: &str,
    body: &str,
    prefix: &'static str,
    lines_before: usize,
) -> Option<FoundDirective> {
    let parser = DirectiveParser::with_prefix(prefix, lines_before);
    let directives = parser.parse_all(body).unwrap_or_default();
    let directive = directives.into_iter().find(|d| d.name == key)?;
    let reference = directive
        .value
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    Some(FoundDirective {
        reference,
        cmdline: directive.value,
        location: directive.location,
    })
}

/// Matches `<prefix>[ \t]*KEY[ \t]*=[ \t]*VALUE[ \t]*` with KEY = `[a-zA-Z][a-zA-Z0-9]*`.
fn match_directive<'a>(line: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = line.strip_prefix(prefix)?.trim_start_matches(is_blank);
    let key_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let rest = rest.trim_start_matches(is_blank).strip_prefix('=')?;
    Some((key, directive_value(rest)?))
}

/// The value part of a directive: at least one character, blanks trimmed around it.
fn directive_value(rest: &str) -> Option<&str> {
    if rest.is_empty() {
        return None;
    }
    let trimmed = rest.trim_start_matches(is_blank);
    if trimmed.is_empty() {
        // The regexp needs one character, so it keeps the last blank.
        return Some(&rest[rest.len() - 1..]);
    }
    Some(trimmed.trim_end_matches(is_blank))
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits text into lines the way Go's `bufio.ScanLines` does (dropping `\n` and one `\r`).
fn split_lines(input: &str) -> impl Iterator<Item = &str> {
    let body = input.strip_suffix('\n').unwrap_or(input);
    let empty = input.is_empty();
    body.split('\n')
        .filter(move |_| !empty)
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_directive_lines() {
        assert_eq!(match_directive("# escape = `", "#"), Some(("escape", "`")));
        assert_eq!(
            match_directive("#syntax=a b ", "#"),
            Some(("syntax", "a b"))
        );
        assert_eq!(match_directive("# smth", "#"), None);
        assert_eq!(match_directive("# 1a=b", "#"), None);
        assert_eq!(match_directive("//syntax=x", "//"), Some(("syntax", "x")));
    }

    #[test]
    fn duplicate_directive_is_an_error() {
        let err = DirectiveParser::new()
            .parse_all("# escape=`\n# escape=\\\n")
            .unwrap_err();
        assert_eq!(err.line(), 2);
    }
}
