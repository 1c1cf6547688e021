//! Here-documents (`<<EOF`, `<<-EOF`, `<<'EOF'`, `3<<EOF`) in RUN, COPY and ADD.
//!
//! This module owns recognising heredoc words on an instruction line and
//! deciding each one's name, file descriptor, chomping and whether its body
//! may be variable-expanded. Reading the bodies from the following lines is the
//! parser's job; the body is stored unmodified and [`chomp_heredoc_content`]
//! strips leading tabs for `<<-` when a consumer needs it.
//!
//! The terminator word is shell-lexed: quotes around any part of it (`<<'EOF'`,
//! `<<E"O"F`) disable expansion, while escaped quotes (`<<eo\'f`) do not.

use super::error::ErrorKind;

/// A here-document attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heredoc {
    /// The terminator word, with quotes removed.
    pub name: String,
    /// The body as written (line endings kept, `<<-` tabs not yet stripped).
    pub content: String,
    /// Whether variables in the body may be expanded (no quotes in the terminator).
    pub expand: bool,
    /// Whether `<<-` was used (leading tabs are stripped from body and terminator).
    pub chomp: bool,
    /// The file descriptor prefix (`3<<EOF`), 0 when absent.
    pub file_descriptor: u32,
}

/// Parses one word as a heredoc opener; `Ok(None)` when it is not one.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, ErrorKind> {
    let digits_end = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    let (digits, rest) = word.split_at(digits_end);
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(after_dash) => (true, after_dash),
        None => (false, rest),
    };
    let terminator = rest.trim_start_matches(['\t', '\n', '\u{c}', '\r', ' ']);
    if terminator.contains('<') {
        return Ok(None);
    }
    let unquoted = lex_terminator(terminator, false)?;
    let [name] = unquoted.as_slice() else {
        return Ok(None);
    };
    let raw = lex_terminator(terminator, true)?;
    let [raw_name] = raw.as_slice() else {
        return Err(ErrorKind::InvalidHeredoc(format!(
            "internal lexing of heredoc produced inconsistent results: {terminator}"
        )));
    };
    Ok(Some(Heredoc {
        name: name.clone(),
        content: String::new(),
        expand: count_quotes(name) == count_quotes(raw_name),
        chomp,
        file_descriptor: digits.parse().unwrap_or(0),
    }))
}

/// Finds the heredocs opened on an instruction line, in order.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ErrorKind> {
    let Some(words) = split_raw_words(line) else {
        return Ok(Vec::new());
    };
    let mut heredocs = Vec::new();
    for word in words {
        if let Some(heredoc) = parse_heredoc(&word)? {
            heredocs.push(heredoc);
        }
    }
    Ok(heredocs)
}

/// Strips leading tabs from every line of a `<<-` heredoc body.
pub fn chomp_heredoc_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

fn count_quotes(s: &str) -> usize {
    s.chars().filter(|&c| c == '\'' || c == '"').count()
}

/// Splits a line into shell words keeping quotes and escapes verbatim.
///
/// `<<` (and `<<-`) swallows the blanks after it, so `<<  EOF` stays one word. Returns
/// `None` on an unterminated quote (the line then opens no heredoc).
fn split_raw_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if is_word_separator(c) {
            if in_word {
                words.push(std::mem::take(&mut word));
                in_word = false;
            }
            continue;
        }
        in_word = true;
        word.push(c);
        match c {
            '\\' => word.extend(chars.next()),
            '\'' => copy_until_quote(&mut chars, &mut word, '\'', false)?,
            '"' => copy_until_quote(&mut chars, &mut word, '"', true)?,
            '<' if chars.peek() == Some(&'<') => {
                word.push('<');
                chars.next();
                if chars.peek() == Some(&'-') {
                    word.push('-');
                    chars.next();
                }
                while let Some(&blank) = chars.peek().filter(|&&b| b == ' ' || b == '\t') {
                    word.push(blank);
                    chars.next();
                }
            }
            _ => {}
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// Copies a quoted section verbatim, including the closing quote.
fn copy_until_quote(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    word: &mut String,
    quote: char,
    escapes: bool,
) -> Option<()> {
    loop {
        let c = chars.next()?;
        word.push(c);
        if c == quote {
            return Some(());
        }
        if escapes && c == '\\' {
            word.extend(chars.next());
        }
    }
}

/// Shell-lexes a heredoc terminator into words, removing quotes unless `raw_quotes`.
///
/// Escapes are always processed; `$` is kept literally (nothing is expanded).
fn lex_terminator(input: &str, raw_quotes: bool) -> Result<Vec<String>, ErrorKind> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        if is_word_separator(c) {
            if in_word {
                words.push(std::mem::take(&mut word));
                in_word = false;
            }
            continue;
        }
        in_word = true;
        match c {
            '\\' => word.extend(chars.next()),
            '\'' => lex_single_quoted(&mut chars, &mut word, raw_quotes)?,
            '"' => lex_double_quoted(&mut chars, &mut word, raw_quotes)?,
            _ => word.push(c),
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn lex_single_quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    word: &mut String,
    raw_quotes: bool,
) -> Result<(), ErrorKind> {
    if raw_quotes {
        word.push('\'');
    }
    loop {
        match chars.next() {
            None => return Err(unterminated_quote("single")),
            Some('\'') => break,
            Some(c) => word.push(c),
        }
    }
    if raw_quotes {
        word.push('\'');
    }
    Ok(())
}

fn lex_double_quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    word: &mut String,
    raw_quotes: bool,
) -> Result<(), ErrorKind> {
    if raw_quotes {
        word.push('"');
    }
    loop {
        match chars.next() {
            None => return Err(unterminated_quote("double")),
            Some('"') => break,
            Some('\\') => match chars.peek() {
                Some(&next @ ('"' | '$' | '\\')) => {
                    word.push(next);
                    chars.next();
                }
                Some(_) => word.push('\\'),
                None => {}
            },
            Some(c) => word.push(c),
        }
    }
    if raw_quotes {
        word.push('"');
    }
    Ok(())
}

fn unterminated_quote(kind: &str) -> ErrorKind {
    ErrorKind::InvalidHeredoc(format!(
        "unexpected end of statement while looking for matching {kind}-quote"
    ))
}

fn is_word_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_terminators_disable_expansion() {
        let parse = |w: &str| parse_heredoc(w).unwrap().unwrap();
        assert!(parse("<<EOF").expand);
        assert!(!parse("<<'EOF'").expand);
        assert!(parse("<<eo\\'f").expand);
        assert_eq!(parse("<<eo\\'f").name, "eo'f");
        assert_eq!(parse("3<<-X").file_descriptor, 3);
        assert!(parse("3<<-X").chomp);
    }

    #[test]
    fn blanks_after_double_angle_stay_in_the_word() {
        let names: Vec<String> = heredocs_from_line("RUN <<  EOF  > foo")
            .unwrap()
            .into_iter()
            .map(|h| h.name)
            .collect();
        assert_eq!(names, ["EOF"]);
    }
}
