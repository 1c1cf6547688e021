//! Build checks (`docker buildx build --call check`): BuildKit's lint rules, by name, with
//! their messages and documentation links, reported at Dockerfile lines.
//!
//! Rules about the text alone (casing, duplicate stage names, deprecated or risky forms, the
//! parser's own warnings) run on the AST in [`static_checks`]; the variable rules
//! (`UndefinedVar`, `UndefinedArgInFrom`) need the environment the converter builds (a base
//! image's `ENV` counts), so the converter reports them while it expands words. The
//! `# check=skip=Rule1,Rule2;error=true` directive (or the `BUILDKIT_DOCKERFILE_CHECK` build
//! arg, which wins) selects rules and turns warnings into a build error ([`CheckConfig`]).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{ConvertError, ConvertOptions};
use crate::parser::{Location, Node, ParseResult};

/// A lint rule: its name, one-line description and documentation page.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// The rule name users skip it by, e.g. `StageNameCasing`.
    pub name: &'static str,
    /// What the rule asks for.
    pub description: &'static str,
    /// The last part of the rule's documentation URL.
    slug: &'static str,
}

impl Rule {
    /// The rule's documentation URL.
    pub fn url(&self) -> String {
        format!("https://docs.docker.com/go/dockerfile/rule/{}/", self.slug)
    }
}

/// Stage names should be lowercase.
pub static STAGE_NAME_CASING: Rule = Rule {
    name: "StageNameCasing",
    description: "Stage names should be lowercase",
    slug: "stage-name-casing",
};

/// `AS` should be cased like `FROM`.
pub static FROM_AS_CASING: Rule = Rule {
    name: "FromAsCasing",
    description: "The 'as' keyword should match the case of the 'from' keyword",
    slug: "from-as-casing",
};

/// Continuation lines should not be empty.
pub static NO_EMPTY_CONTINUATION: Rule = Rule {
    name: "NoEmptyContinuation",
    description: "Empty continuation lines will become errors in a future release",
    slug: "no-empty-continuation",
};

/// Instruction keywords should be cased alike.
pub static CONSISTENT_INSTRUCTION_CASING: Rule = Rule {
    name: "ConsistentInstructionCasing",
    description:
        "All commands within the Dockerfile should use the same casing (either upper or lower)",
    slug: "consistent-instruction-casing",
};

/// Stage names should be unique.
pub static DUPLICATE_STAGE_NAME: Rule = Rule {
    name: "DuplicateStageName",
    description: "Stage names should be unique",
    slug: "duplicate-stage-name",
};

/// CMD and ENTRYPOINT should use the exec (JSON) form.
pub static JSON_ARGS_RECOMMENDED: Rule = Rule {
    name: "JSONArgsRecommended",
    description: "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
    slug: "json-args-recommended",
};

/// MAINTAINER is deprecated.
pub static MAINTAINER_DEPRECATED: Rule = Rule {
    name: "MaintainerDeprecated",
    description:
        "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
    slug: "maintainer-deprecated",
};

/// FROM should only use declared global ARGs.
pub static UNDEFINED_ARG_IN_FROM: Rule = Rule {
    name: "UndefinedArgInFrom",
    description: "FROM command must use declared ARGs",
    slug: "undefined-arg-in-from",
};

/// Variables should be defined before they are used.
pub static UNDEFINED_VAR: Rule = Rule {
    name: "UndefinedVar",
    description: "Variables should be defined before their use",
    slug: "undefined-var",
};

/// One rule violation at some Dockerfile lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The rule's name.
    pub rule: &'static str,
    /// The rule's description.
    pub description: &'static str,
    /// The rule's documentation URL.
    pub url: String,
    /// What is wrong here.
    pub detail: String,
    /// Where.
    pub location: Location,
}

impl Warning {
    /// A violation of `rule` at `location`.
    pub fn new(rule: &'static Rule, detail: String, location: Location) -> Warning {
        Warning {
            rule: rule.name,
            description: rule.description,
            url: rule.url(),
            detail,
            location,
        }
    }

    /// An undefined variable `name` under `rule`, suggesting the closest of `known`.
    pub(super) fn undefined<'k>(
        rule: &'static Rule,
        name: &str,
        known: impl Iterator<Item = &'k str>,
        location: Location,
    ) -> Warning {
        let suggestion = closest(name, known);
        let detail = if std::ptr::eq(rule, &UNDEFINED_ARG_IN_FROM) {
            let hint = suggestion
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            format!("FROM argument '{name}' is not declared{hint}")
        } else {
            let hint = suggestion
                .map(|s| format!(" (did you mean ${s}?)"))
                .unwrap_or_default();
            format!("Usage of undefined variable '${name}'{hint}")
        };
        Warning::new(rule, detail, location)
    }
}

/// Which rules run and whether a violation fails the build (`# check=…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// Rules not to report.
    pub skip: BTreeSet<String>,
    /// `skip=all`: report nothing.
    pub skip_all: bool,
    /// `error=true`: any reported violation fails the build.
    pub error: bool,
}

impl CheckConfig {
    /// Parses a `check` directive value: `;`-separated `skip=A,B|all` and `error=true|false`.
    pub fn parse(value: &str) -> Result<CheckConfig, String> {
        let mut config = CheckConfig::default();
        for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, val)) = part.split_once('=') else {
                return Err(format!("invalid check option {part:?}: want key=value"));
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "skip" => {
                    for rule in val.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                        if rule.eq_ignore_ascii_case("all") {
                            config.skip_all = true;
                        } else {
                            config.skip.insert(rule.to_string());
                        }
                    }
                }
                "error" => {
                    config.error = match val.trim().to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => return Err(format!("invalid check option error={other:?}")),
                    }
                }
                other => return Err(format!("invalid check option {other:?}")),
            }
        }
        Ok(config)
    }

    /// The configuration of a build: the `BUILDKIT_DOCKERFILE_CHECK` build arg, else the
    /// `# check=` directive, else every rule as a warning.
    pub(super) fn from_parse(
        parsed: &ParseResult,
        opts: &ConvertOptions,
    ) -> Result<CheckConfig, ConvertError> {
        if let Some(value) = opts.build_args.get("BUILDKIT_DOCKERFILE_CHECK") {
            let message = |e: String| ConvertError {
                message: e,
                location: None,
            };
            return CheckConfig::parse(value).map_err(message);
        }
        match parsed.directives.iter().find(|d| d.name == "check") {
            Some(d) => CheckConfig::parse(&d.value).map_err(|e| ConvertError::at(d.location, e)),
            None => Ok(CheckConfig::default()),
        }
    }

    /// The warnings this configuration reports, in line order.
    pub fn filter(&self, mut warnings: Vec<Warning>) -> Vec<Warning> {
        if self.skip_all {
            return Vec::new();
        }
        warnings.retain(|w| !self.skip.contains(w.rule));
        warnings.sort_by_key(|w| w.location.start_line);
        warnings.dedup();
        warnings
    }

    /// With `error=true` and violations, the build error they make (at the first one).
    pub fn error_for(&self, warnings: &[Warning]) -> Option<ConvertError> {
        let first = warnings.first().filter(|_| self.error)?;
        let mut rules: Vec<&str> = warnings.iter().map(|w| w.rule).collect();
        rules.sort_unstable();
        rules.dedup();
        let message = format!("lint violation found for rules: {}", rules.join(", "));
        Some(ConvertError::at(first.location, message))
    }
}

/// The answer to `--call check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The violations reported, in line order.
    pub warnings: Vec<Warning>,
    /// The configuration in effect.
    pub config: CheckConfig,
}

impl Report {
    /// With `error=true` and violations, the build error they make.
    pub fn error(&self) -> Option<ConvertError> {
        self.config.error_for(&self.warnings)
    }

    /// The exit status a client should end with (`result.statuscode`, as BuildKit's lint
    /// subrequest sets it): 1 when there are violations or an error, else 0.
    pub fn status_code(&self) -> u8 {
        u8::from(!self.warnings.is_empty() || self.error().is_some())
    }

    /// `{"warnings":[{rule, description, url, detail, location:{file,start,end}}]}`, plus
    /// `error` when the violations fail the build.
    pub fn to_json(&self, filename: &str) -> Value {
        let warnings: Vec<Value> = self
            .warnings
            .iter()
            .map(|w| {
                json!({
                    "rule": w.rule,
                    "description": w.description,
                    "url": w.url,
                    "detail": w.detail,
                    "location": {
                        "file": filename,
                        "start": w.location.start_line,
                        "end": w.location.end_line,
                    },
                })
            })
            .collect();
        let mut out = json!({ "warnings": warnings });
        if let (Some(error), Value::Object(map)) = (self.error(), &mut out) {
            map.insert("error".into(), json!(error.message));
        }
        out
    }

    /// The human-readable report: each warning with its rule, URL, detail and the lines.
    pub fn to_text(&self, filename: &str, dockerfile: &str) -> String {
        let lines: Vec<&str> = dockerfile.lines().collect();
        let mut out = String::new();
        for w in &self.warnings {
            out.push_str(&format!("WARNING: {} - {}\n{}\n", w.rule, w.url, w.detail));
            out.push_str(&format!(
                "{filename}:{}\n--------------------\n",
                w.location.start_line
            ));
            for n in w.location.start_line..=w.location.end_line {
                if let Some(line) = n.checked_sub(1).and_then(|i| lines.get(i)) {
                    out.push_str(&format!("{n:>4} | >>> {line}\n"));
                }
            }
            out.push_str("--------------------\n\n");
        }
        match self.warnings.len() {
            0 => out.push_str("Check complete, no warnings found.\n"),
            1 => out.push_str("Check complete, 1 warning has been found!\n"),
            n => out.push_str(&format!("Check complete, {n} warnings have been found!\n")),
        }
        if let Some(error) = self.error() {
            out.push_str(&format!("ERROR: {}\n", error.message));
        }
        out
    }
}

/// The rules that need only the Dockerfile's text, plus the parser's warnings.
pub fn static_checks(parsed: &ParseResult) -> Vec<Warning> {
    let mut out: Vec<Warning> = parsed
        .warnings
        .iter()
        .map(|w| {
            Warning::new(
                &NO_EMPTY_CONTINUATION,
                "Empty continuation line".into(),
                w.location,
            )
        })
        .collect();
    let mut stage_names = BTreeSet::new();
    let mut keywords: Vec<(String, Location)> = Vec::new();
    let mut in_stage = false;
    let mut shell_set = false;
    for node in &parsed.ast.children {
        // The node keeps the keyword as written; `keyword()` lower-cases it.
        let keyword = node.value.clone();
        let location = node.location();
        match node.keyword().as_str() {
            "from" => {
                in_stage = true;
                shell_set = false;
                check_stage_name(node, &keyword, &mut stage_names, &mut out);
            }
            "maintainer" => {
                let detail = "Maintainer instruction is deprecated in favor of using label";
                out.push(Warning::new(
                    &MAINTAINER_DEPRECATED,
                    detail.into(),
                    location,
                ));
            }
            "shell" => shell_set = true,
            "cmd" | "entrypoint" if !node.json && !shell_set => {
                let detail = format!(
                    "JSON arguments recommended for {} to prevent unintended behavior related \
                     to OS signals",
                    keyword.to_ascii_uppercase()
                );
                out.push(Warning::new(&JSON_ARGS_RECOMMENDED, detail, location));
            }
            _ => {}
        }
        // ARGs before the first FROM are not part of a stage and are not counted.
        if in_stage {
            keywords.push((keyword, location));
        }
    }
    check_keyword_casing(&keywords, &mut out);
    out
}

/// `StageNameCasing`, `FromAsCasing` and `DuplicateStageName` for one `FROM`.
fn check_stage_name(node: &Node, from: &str, seen: &mut BTreeSet<String>, out: &mut Vec<Warning>) {
    let words: Vec<&str> = node.next.iter().map(|n| n.value.as_str()).collect();
    let [_, as_word, name] = words.as_slice() else {
        return;
    };
    let location = node.location();
    if *name != name.to_lowercase() {
        let detail = format!("Stage name '{name}' should be lowercase");
        out.push(Warning::new(&STAGE_NAME_CASING, detail, location));
    }
    let from_upper = from == from.to_uppercase();
    let from_lower = from == from.to_lowercase();
    if (from_upper && *as_word != as_word.to_uppercase())
        || (from_lower && *as_word != as_word.to_lowercase())
    {
        let detail = format!("'{as_word}' and '{from}' keywords' casing do not match");
        out.push(Warning::new(&FROM_AS_CASING, detail, location));
    }
    if !seen.insert(name.to_lowercase()) {
        let detail = format!("Duplicate stage name \"{name}\", stage names should be unique");
        out.push(Warning::new(&DUPLICATE_STAGE_NAME, detail, location));
    }
}

/// `ConsistentInstructionCasing`: keywords cased unlike the majority (upper wins a tie), or
/// mixed-case ones.
fn check_keyword_casing(keywords: &[(String, Location)], out: &mut Vec<Warning>) {
    let lower = keywords
        .iter()
        .filter(|(k, _)| *k == k.to_lowercase() && *k != k.to_uppercase());
    let upper = keywords
        .iter()
        .filter(|(k, _)| *k == k.to_uppercase() && *k != k.to_lowercase());
    let majority_lower = lower.count() > upper.count();
    for (keyword, location) in keywords {
        let wrong = if majority_lower {
            (*keyword != keyword.to_lowercase()).then_some("lowercase")
        } else {
            (*keyword != keyword.to_uppercase()).then_some("uppercase")
        };
        if let Some(casing) = wrong {
            let detail = format!(
                "Command '{keyword}' should match the case of the command majority ({casing})"
            );
            out.push(Warning::new(
                &CONSISTENT_INSTRUCTION_CASING,
                detail,
                *location,
            ));
        }
    }
}

/// The name in `known` closest to `name` (case-insensitive edit distance at most 2, or 1 for
/// names shorter than 4 characters), for "did you mean" hints.
fn closest<'k>(name: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    let limit = if name.chars().count() < 4 { 1 } else { 2 };
    let mut best: Option<(usize, &str)> = None;
    for candidate in known {
        let distance = edit_distance(&name.to_lowercase(), &candidate.to_lowercase());
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance between two strings, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_directive_values() {
        let c = CheckConfig::parse("skip=StageNameCasing, FromAsCasing;error=true").unwrap();
        assert!(c.error);
        assert!(c.skip.contains("StageNameCasing") && c.skip.contains("FromAsCasing"));
        assert!(CheckConfig::parse("skip=all").unwrap().skip_all);
        assert!(CheckConfig::parse("error=maybe").is_err());
        assert!(CheckConfig::parse("frobnicate=1").is_err());
    }

    #[test]
    fn suggestions_are_close_names() {
        assert_eq!(closest("NAEM", ["NAME", "PATH"].into_iter()), Some("NAME"));
        assert_eq!(closest("foo", ["PATH"].into_iter()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
