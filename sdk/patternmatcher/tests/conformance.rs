//! moby/patternmatcher conformance: runs `dockerignore/patternmatcher.json` (see the conformance
//! README and the file's `description`) against this crate, vectors unchanged.
//!
//! The vectors live in `HOIST_CONFORMANCE_DIR`, or else in `/work/shared/conformance` reached
//! relative to this crate. A missing directory fails the tests: they never skip silently.

use std::path::PathBuf;

use hoist_patternmatcher::{read_ignore_file, MatchInfo, PatternMatcher};
use serde_json::Value;

fn vectors() -> Value {
    let dir = match std::env::var_os("HOIST_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    assert!(
        dir.is_dir(),
        "conformance vectors not found at {} (set HOIST_CONFORMANCE_DIR)",
        dir.display()
    );
    let path = dir.join("dockerignore/patternmatcher.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

fn section<'a>(doc: &'a Value, name: &str) -> &'a [Value] {
    doc[name]
        .as_array()
        .unwrap_or_else(|| panic!("section {name} missing"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("string array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

fn report(name: &str, passed: usize, failures: &[String]) {
    println!(
        "dockerignore/patternmatcher.json {name}: {passed} passed, {} failed",
        failures.len()
    );
    assert!(passed > 0, "{name}: no cases ran");
    assert!(
        failures.is_empty(),
        "{name} failures:\n{}",
        failures.join("\n")
    );
}

/// Every parent directory of `text` as upstream walks them: the prefixes of `filepath.Dir(text)`.
fn parent_chain(text: &str) -> Vec<String> {
    let parent = match text.rfind('/') {
        Some(i) => hoist_patternmatcher::clean_path(&text[..=i]),
        None => return Vec::new(),
    };
    if parent == "." {
        return Vec::new();
    }
    let parts: Vec<&str> = parent.split('/').collect();
    (1..=parts.len()).map(|i| parts[..i].join("/")).collect()
}

#[test]
fn matches_or_parent_matches() {
    let doc = vectors();
    let (mut passed, mut failures) = (0, Vec::new());
    for case in section(&doc, "matches_or_parent_matches") {
        let patterns = strings(&case["patterns"]);
        let text = case["text"].as_str().expect("text");
        let want = case["pass"].as_bool().expect("pass");
        let pm = match PatternMatcher::new(&patterns) {
            Ok(pm) => pm,
            Err(e) => {
                failures.push(format!("{patterns:?}: New failed: {e}"));
                continue;
            }
        };
        let mut problems = Vec::new();
        match pm.matches_or_parent_matches(text) {
            Ok(got) if got == want => {}
            other => problems.push(format!("MatchesOrParentMatches = {other:?}")),
        }
        // As upstream: walk each parent directory first, handing down the match info.
        let mut info = MatchInfo::default();
        let mut walk_error = None;
        for dir in parent_chain(text) {
            match pm.matches_using_parent_results(&dir, &info) {
                Ok((_, next)) => info = next,
                Err(e) => walk_error = Some(e),
            }
        }
        match (walk_error, pm.matches_using_parent_results(text, &info)) {
            (None, Ok((got, _))) if got == want => {}
            (err, other) => problems.push(format!("walked parents: {err:?} / {other:?}")),
        }
        // And with no parent information at all.
        match pm.matches_using_parent_results(text, &MatchInfo::default()) {
            Ok((got, _)) if got == want => {}
            other => problems.push(format!("empty MatchInfo = {other:?}")),
        }
        if problems.is_empty() {
            passed += 1;
        } else {
            failures.push(format!(
                "{patterns:?} on {text:?} want {want}: {}",
                problems.join("; ")
            ));
        }
    }
    report("matches_or_parent_matches", passed, &failures);
}

#[test]
fn legacy_matches() {
    let doc = vectors();
    let (mut passed, mut failures) = (0, Vec::new());
    for case in section(&doc, "matches") {
        let pattern = case["pattern"].as_str().expect("pattern");
        let text = case["text"].as_str().expect("text");
        let want_match = case["match"].as_bool().expect("match");
        let want_error = case["error"].as_bool().unwrap_or(false);
        let got = PatternMatcher::new([pattern]).and_then(|pm| pm.matches(text));
        let ok = match &got {
            Ok(m) => !want_error && *m == want_match,
            Err(e) => want_error && !want_match && e.is_bad_pattern(),
        };
        if ok {
            passed += 1;
        } else {
            failures.push(format!(
                "Matches({text:?}, [{pattern:?}]) = {got:?}, want match={want_match} error={want_error}"
            ));
        }
    }
    report("matches", passed, &failures);
}

#[test]
fn simple() {
    let doc = vectors();
    let (mut passed, mut failures) = (0, Vec::new());
    for case in section(&doc, "simple") {
        let patterns = strings(&case["patterns"]);
        let want_error = case["error"].as_bool().unwrap_or(false);
        let problem = match case["fn"].as_str().expect("fn") {
            "Matches" => {
                let text = case["text"].as_str().expect("text");
                let got = PatternMatcher::new(&patterns).and_then(|pm| pm.matches(text));
                match (&got, want_error) {
                    (Err(_), true) => None,
                    (Ok(m), false) if Some(*m) == case["match"].as_bool() => None,
                    _ => Some(format!("Matches({text:?}) = {got:?}")),
                }
            }
            "New" => match (PatternMatcher::new(&patterns), want_error) {
                (Err(_), true) => None,
                (Ok(pm), false) => {
                    let mut p = None;
                    if let Some(n) = case["cleaned_count"].as_u64() {
                        if pm.patterns().len() as u64 != n {
                            p = Some(format!("{} patterns, want {n}", pm.patterns().len()));
                        }
                    }
                    if let Some(want) = case["has_exclusions"].as_bool() {
                        if pm.has_exclusions() != want {
                            p = Some(format!("has_exclusions {}", pm.has_exclusions()));
                        }
                    }
                    p
                }
                (got, _) => Some(format!("New = {got:?}")),
            },
            "MatchesOrParentMatches" => {
                let text = case["text"].as_str().expect("text");
                match PatternMatcher::new(&patterns) {
                    Err(e) => Some(format!("New failed: {e}")),
                    Ok(pm) => {
                        // Twice: a failed match must fail again, not succeed from a cache.
                        let first = pm.matches_or_parent_matches(text);
                        let second = pm.matches_or_parent_matches(text);
                        match (&first, &second, want_error) {
                            (Err(a), Err(b), true) if a.is_bad_pattern() && b.is_bad_pattern() => {
                                None
                            }
                            (Ok(a), Ok(b), false)
                                if Some(*a) == case["match"].as_bool() && a == b =>
                            {
                                None
                            }
                            _ => Some(format!("got {first:?} then {second:?}")),
                        }
                    }
                }
            }
            other => panic!("unknown fn {other:?} in simple section"),
        };
        match problem {
            None => passed += 1,
            Some(p) => failures.push(format!("{case}: {p}")),
        }
    }
    report("simple", passed, &failures);
}

#[test]
fn ignorefile_readall() {
    let doc = vectors();
    let (mut passed, mut failures) = (0, Vec::new());
    for case in section(&doc, "ignorefile_readall") {
        let input = match &case["input"] {
            Value::Null => "",
            v => v.as_str().expect("input string"),
        };
        let want = strings(&case["expected"]);
        let got = read_ignore_file(input);
        if got == want {
            passed += 1;
        } else {
            failures.push(format!("ReadAll({input:?}) = {got:?}, want {want:?}"));
        }
        // The note says a UTF-8 byte-order mark on the first line is stripped too.
        if !input.is_empty() {
            let with_bom = format!("\u{feff}{input}");
            let got = read_ignore_file(&with_bom);
            if got == want {
                passed += 1;
            } else {
                failures.push(format!("ReadAll(BOM + {input:?}) = {got:?}, want {want:?}"));
            }
        }
    }
    report("ignorefile_readall", passed, &failures);
}
