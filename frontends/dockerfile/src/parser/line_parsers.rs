//! Turning one logical instruction line into an AST [`Node`].
//!
//! This module owns splitting a line into keyword, `--flags` and arguments, and
//! the per-instruction argument shapes BuildKit uses: JSON (exec) form or a
//! single shell-form string, whitespace-separated words, quote-aware words
//! (ARG), `key value` / `key=value` triples (ENV, LABEL), HEALTHCHECK's type
//! word, and ONBUILD's nested instruction. Nothing here unquotes or expands
//! variables.

use super::error::ErrorKind;
use super::Node;

/// Builds the node for one logical line (continuations already joined).
pub(crate) fn node_from_line(
    line: &str,
    escape: char,
    comments: Vec<String>,
) -> Result<Node, ErrorKind> {
    let (keyword, flags, args) = split_command(line);
    let shape = parse_arguments(&keyword, &args, escape)?;
    Ok(Node {
        value: keyword,
        next: shape.next,
        json: shape.json,
        original: line.to_string(),
        flags,
        prev_comment: comments,
        ..Node::default()
    })
}

/// The argument nodes of an instruction and whether they came from JSON.
#[derive(Default)]
struct Arguments {
    next: Vec<Node>,
    json: bool,
}

impl Arguments {
    fn words(words: impl IntoIterator<Item = String>) -> Self {
        Arguments {
            next: words.into_iter().map(Node::leaf).collect(),
            json: false,
        }
    }
}

fn parse_arguments(keyword: &str, args: &str, escape: char) -> Result<Arguments, ErrorKind> {
    match keyword.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(args),
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(args),
        "arg" => Ok(Arguments::words(parse_words(args, escape))),
        "env" => parse_env_or_label(args, "ENV", escape),
        "label" => parse_env_or_label(args, "LABEL", escape),
        "expose" | "from" => Ok(Arguments::words(split_whitespace(args))),
        "healthcheck" => parse_healthcheck(args),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok(Arguments::words(non_empty(args))),
        "onbuild" => parse_onbuild(args, escape),
        // Unknown keywords are kept; the instruction layer rejects them.
        _ => Ok(Arguments {
            next: vec![Node::default()],
            json: false,
        }),
    }
}

/// Splits a line into keyword, leading `--flags`, and the trimmed remainder.
fn split_command(line: &str) -> (String, Vec<String>, String) {
    let trimmed = line.trim();
    let Some(split_at) = trimmed.find(is_separator) else {
        return (trimmed.to_string(), Vec::new(), String::new());
    };
    let keyword = trimmed[..split_at].to_string();
    let after = trimmed[split_at..].trim_start_matches(is_separator);
    let (rest, flags) = extract_builder_flags(after);
    (keyword, flags, rest.trim().to_string())
}

/// BuildKit's instruction whitespace: `[\t\v\f\r ]`.
fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

fn split_whitespace(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_separator)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn non_empty(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        Vec::new()
    } else {
        vec![rest.to_string()]
    }
}

/// Word-splitting phases shared by the flag extractor and [`parse_words`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Spaces,
    Word,
    Quote(char),
}

/// Extracts leading `--flag` words (quotes removed); returns the rest of the line and the flags.
///
/// A bare `--` ends the flags and is dropped.
fn extract_builder_flags(line: &str) -> (&str, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut flags = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut i = 0;
    while i < chars.len() {
        let (pos, ch) = chars[i];
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            if ch != '-' || chars.get(i + 1).map(|&(_, c)| c) != Some('-') {
                return (&line[pos..], flags);
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word if ch.is_whitespace() => {
                if word == "--" {
                    return (&line[pos..], flags);
                }
                if blank_ok || !word.is_empty() {
                    flags.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                phase = Phase::Spaces;
            }
            Phase::Word if ch == '\'' || ch == '"' => {
                blank_ok = true;
                phase = Phase::Quote(ch);
            }
            Phase::Quote(quote) if ch == quote => phase = Phase::Word,
            _ if ch == '\\' => {
                if let Some(&(_, escaped)) = chars.get(i + 1) {
                    word.push(escaped);
                    i += 1;
                } else {
                    phase = Phase::Word;
                }
            }
            _ => word.push(ch),
        }
        i += 1;
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        flags.push(word);
    }
    ("", flags)
}

/// Splits instruction arguments into words, keeping quotes and escapes (BuildKit `parseWords`).
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        let at_last = i + 1 == chars.len();
        match phase {
            Phase::Spaces if ch.is_whitespace() => {}
            Phase::Spaces => {
                phase = Phase::Word;
                continue;
            }
            Phase::Word if ch.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                phase = Phase::Spaces;
            }
            Phase::Word => {
                if ch == '\'' || ch == '"' {
                    blank_ok = true;
                    phase = Phase::Quote(ch);
                    word.push(ch);
                } else if ch == escape && at_last {
                    // An escape at the very end is dropped.
                } else if ch == escape {
                    word.push(ch);
                    word.push(chars[i + 1]);
                    i += 1;
                } else {
                    word.push(ch);
                }
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                    word.push(ch);
                } else if ch == escape && quote != '\'' && at_last {
                    phase = Phase::Word;
                } else if ch == escape && quote != '\'' {
                    word.push(ch);
                    word.push(chars[i + 1]);
                    i += 1;
                } else {
                    word.push(ch);
                }
            }
        }
        i += 1;
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Parses `rest` as a JSON array of strings.
///
/// `Ok(None)`: not a JSON array (shell form). `Err`: a valid array holding a non-string.
pub fn parse_json_array(rest: &str) -> Result<Option<Vec<String>>, ErrorKind> {
    let trimmed = rest.trim_start();
    if !trimmed.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(trimmed) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ErrorKind::JsonNotStringArray),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn parse_maybe_json(rest: &str) -> Result<Arguments, ErrorKind> {
    if rest.is_empty() {
        return Ok(Arguments::default());
    }
    match parse_json_array(rest)? {
        Some(items) => Ok(json_arguments(items)),
        None => Ok(Arguments::words([rest.to_string()])),
    }
}

fn parse_maybe_json_to_list(rest: &str) -> Result<Arguments, ErrorKind> {
    match parse_json_array(rest)? {
        Some(items) => Ok(json_arguments(items)),
        None => Ok(Arguments::words(split_whitespace(rest))),
    }
}

fn json_arguments(items: Vec<String>) -> Arguments {
    Arguments {
        json: true,
        ..Arguments::words(items)
    }
}

fn parse_env_or_label(rest: &str, instruction: &str, escape: char) -> Result<Arguments, ErrorKind> {
    Ok(Arguments::words(parse_name_val(rest, instruction, escape)?))
}

/// Parses ENV/LABEL arguments into flat `key, value, separator` triples.
///
/// The separator is `"="` for `key=value` words and `""` for the legacy `key value` form.
pub fn parse_name_val(
    rest: &str,
    instruction: &str,
    escape: char,
) -> Result<Vec<String>, ErrorKind> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let Some(split_at) = rest.find(is_separator) else {
            return Err(ErrorKind::MissingValue(instruction.to_string()));
        };
        let value = rest[split_at..].trim_start_matches(is_separator);
        return Ok(vec![
            rest[..split_at].to_string(),
            value.to_string(),
            String::new(),
        ]);
    }
    let mut triples = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(ErrorKind::MissingEquals(word));
        };
        triples.extend([key.to_string(), value.to_string(), "=".to_string()]);
    }
    Ok(triples)
}

/// HEALTHCHECK: the type word, then the rest parsed like CMD.
fn parse_healthcheck(rest: &str) -> Result<Arguments, ErrorKind> {
    let type_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if type_end == 0 {
        return Ok(Arguments::default());
    }
    let command = rest[type_end..].trim_start();
    let parsed = parse_maybe_json(command)?;
    let mut next = vec![Node::leaf(rest[..type_end].to_string())];
    next.extend(parsed.next);
    Ok(Arguments {
        next,
        json: parsed.json,
    })
}

/// ONBUILD: the rest of the line is itself an instruction, nested as a child.
fn parse_onbuild(rest: &str, escape: char) -> Result<Arguments, ErrorKind> {
    if rest.is_empty() {
        return Ok(Arguments::default());
    }
    let child = node_from_line(rest, escape, Vec::new())?;
    Ok(Arguments {
        next: vec![Node {
            children: vec![child],
            ..Node::default()
        }],
        json: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_stop_at_first_non_flag_word() {
        let (rest, flags) = extract_builder_flags("--a=1 --b=\"x y\" foo --c");
        assert_eq!(flags, ["--a=1", "--b=x y"]);
        assert_eq!(rest, "foo --c");
    }

    #[test]
    fn double_dash_ends_flags() {
        let (rest, flags) = extract_builder_flags("--doit=true -- [ \"a\" ]");
        assert_eq!(flags, ["--doit=true"]);
        assert_eq!(rest.trim(), "[ \"a\" ]");
    }

    #[test]
    fn legacy_env_keeps_the_rest_of_the_line() {
        let values = parse_name_val("SCUBA 1 DUBA 3", "ENV", '\\').unwrap();
        assert_eq!(values, ["SCUBA", "1 DUBA 3", ""]);
    }
}
