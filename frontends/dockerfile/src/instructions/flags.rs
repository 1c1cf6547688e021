//! Instruction `--flag` parsing (BuildKit's `BFlags` rules).
//!
//! Each instruction declares the flags it accepts and their kind; this module
//! checks the flag words the parser extracted against that declaration:
//! unknown flags, repeated single-value flags, missing values and non-boolean
//! values of boolean flags are errors. Values stay raw (no expansion).

use std::collections::BTreeMap;

use crate::parser::ErrorKind;

/// What values a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--flag`, `--flag=true` or `--flag=false`.
    Bool,
    /// `--flag=value`, at most once.
    String,
    /// `--flag=value`, repeatable.
    Strings,
}

/// The flags given on one instruction, checked against its declaration.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<String, Vec<String>>,
}

impl Flags {
    /// Checks `words` (e.g. `--from=build`) against the accepted `spec`.
    pub(crate) fn parse(words: &[String], spec: &[(&str, FlagKind)]) -> Result<Flags, ErrorKind> {
        let mut flags = Flags::default();
        for word in words {
            let Some(body) = word.strip_prefix("--") else {
                return Err(ErrorKind::BadFlagSyntax(word.clone()));
            };
            if body.is_empty() {
                break;
            }
            let (name, value) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (body, None),
            };
            let Some(&(_, kind)) = spec.iter().find(|(known, _)| *known == name) else {
                return Err(ErrorKind::UnknownFlag(name.to_string()));
            };
            flags.add(name, kind, value)?;
        }
        Ok(flags)
    }

    fn add(&mut self, name: &str, kind: FlagKind, value: Option<&str>) -> Result<(), ErrorKind> {
        if kind != FlagKind::Strings && self.values.contains_key(name) {
            return Err(ErrorKind::DuplicateFlag(name.to_string()));
        }
        let value = match (kind, value) {
            (FlagKind::Bool, None) => "true".to_string(),
            (FlagKind::Bool, Some("")) | (_, None) => {
                return Err(ErrorKind::MissingFlagValue(name.to_string()))
            }
            (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                "true" => "true".to_string(),
                "false" => "false".to_string(),
                _ => {
                    return Err(ErrorKind::InvalidBoolFlag {
                        flag: name.to_string(),
                        value: v.to_string(),
                    })
                }
            },
            (_, Some(v)) => v.to_string(),
        };
        self.values.entry(name.to_string()).or_default().push(value);
        Ok(())
    }

    /// The value of a single-value flag, if given.
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last()).cloned()
    }

    /// All values of a repeatable flag, in order.
    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// The value of a boolean flag, if given.
    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[(&str, FlagKind)] = &[
        ("link", FlagKind::Bool),
        ("from", FlagKind::String),
        ("exclude", FlagKind::Strings),
    ];

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_each_kind() {
        let flags = Flags::parse(
            &words(&["--link", "--from=a", "--exclude=x", "--exclude=y"]),
            SPEC,
        )
        .unwrap();
        assert_eq!(flags.bool("link"), Some(true));
        assert_eq!(flags.string("from").as_deref(), Some("a"));
        assert_eq!(flags.strings("exclude"), ["x", "y"]);
    }

    #[test]
    fn rejects_bad_flags() {
        let err = |list: &[&str]| Flags::parse(&words(list), SPEC).unwrap_err().to_string();
        assert_eq!(err(&["--boo"]), "unknown flag: --boo");
        assert_eq!(
            err(&["--from=a", "--from=b"]),
            "duplicate flag specified: --from"
        );
        assert_eq!(err(&["--from"]), "missing a value on flag: --from");
        assert!(err(&["--link=maybe"]).contains("expecting boolean value"));
    }
}
