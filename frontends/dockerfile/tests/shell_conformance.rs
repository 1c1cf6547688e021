//! BuildKit shell-lexer conformance: runs the imported vectors in `shell-lexer/` (see the
//! conformance README for their formats) against `hoist_dockerfile::shell`, unchanged.
//!
//! The vectors live in `HOIST_CONFORMANCE_DIR`, or else in `/work/shared/conformance` reached
//! relative to this crate. A missing directory fails the tests: they never skip silently.

use std::collections::BTreeSet;
use std::path::PathBuf;

use hoist_dockerfile::shell::Lexer;

fn conformance_dir() -> PathBuf {
    let dir = match std::env::var_os("HOIST_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    assert!(
        dir.is_dir(),
        "conformance vectors not found at {} (set HOIST_CONFORMANCE_DIR)",
        dir.display()
    );
    dir
}

fn read(rel: &str) -> String {
    let path = conformance_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Prints the per-file tally and fails with every mismatch listed.
fn report(name: &str, passed: usize, failures: &[String], skipped: Option<usize>) {
    let skipped = skipped.map_or(String::new(), |n| format!(" ({n} windows-only skipped)"));
    println!(
        "{name}: {passed} passed, {} failed{skipped}",
        failures.len()
    );
    assert!(passed > 0, "{name}: no cases ran");
    assert!(
        failures.is_empty(),
        "{name} failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn env_var_test() {
    let env = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ];
    let lexer = Lexer::new('\\');
    let (mut passed, mut skipped, mut failures) = (0, 0, Vec::new());
    for (n, raw) in read("shell-lexer/envVarTest").lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            3,
            "envVarTest line {}: malformed {raw:?}",
            n + 1
        );
        let (platform, source, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        match platform {
            "W" => {
                skipped += 1;
                continue;
            }
            "A" | "U" => {}
            other => panic!("envVarTest line {}: unknown platform {other:?}", n + 1),
        }
        let got = lexer.process_word(source, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(word), expected) => expected != "error" && word == expected,
            (Err(_), _) => false,
        };
        if ok {
            passed += 1;
        } else {
            failures.push(format!(
                "line {}: {source:?}: got {got:?}, want {expected:?}",
                n + 1
            ));
        }
    }
    report("shell-lexer/envVarTest", passed, &failures, Some(skipped));
}

#[test]
fn words_test() {
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let (mut passed, mut failures) = (0, Vec::new());
    for (n, line) in read("shell-lexer/wordsTest").lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(kv) = line.strip_prefix("ENV ") {
            let kv = kv.trim_start_matches(' ');
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            2,
            "wordsTest line {}: malformed {line:?}",
            n + 1
        );
        let input = fields[0].trim();
        let expected: Vec<&str> = fields[1].trim_start_matches(' ').split(',').collect();
        let got = lexer.process_words(input, &env);
        let ok = match &got {
            Err(_) => expected == ["error"],
            Ok(words) => expected != ["error"] && *words == expected,
        };
        if ok {
            passed += 1;
        } else {
            failures.push(format!(
                "line {}: {input:?}: got {got:?}, want {expected:?}",
                n + 1
            ));
        }
    }
    report("shell-lexer/wordsTest", passed, &failures, None);
}

fn string_set(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .expect("matched/unmatched must be arrays")
        .iter()
        .map(|s| s.as_str().expect("names must be strings").to_string())
        .collect()
}

#[test]
fn process_with_matches() {
    let doc: serde_json::Value =
        serde_json::from_str(&read("shell-lexer/process-with-matches.json")).expect("valid JSON");
    let cases = doc["cases"].as_array().expect("cases array");
    let lexer = Lexer::new('\\');
    let (mut passed, mut failures) = (0, Vec::new());
    for (i, case) in cases.iter().enumerate() {
        let input = case["input"].as_str().expect("input string");
        let env: Vec<(String, String)> = case["env"]
            .as_object()
            .expect("env object")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("env value string").to_string()))
            .collect();
        let got = lexer.process_word_with_matches(input, &env);
        let mut problems = Vec::new();
        if case["error"].as_bool() == Some(true) {
            match &got {
                Ok(ok) => problems.push(format!("expected an error, got {ok:?}")),
                Err(e) => {
                    if let Some(want) = case["error_contains"].as_str() {
                        if !e.to_string().contains(want) {
                            problems.push(format!("error {e:?} lacks {want:?}"));
                        }
                    }
                }
            }
        } else {
            match &got {
                Err(e) => problems.push(format!("unexpected error: {e}")),
                Ok((word, matched, unmatched)) => {
                    let expected = case["expected"].as_str().expect("expected string");
                    if word != expected {
                        problems.push(format!("got {word:?}, want {expected:?}"));
                    }
                    if !case["matched"].is_null() && *matched != string_set(&case["matched"]) {
                        problems.push(format!("matched {matched:?}, want {}", case["matched"]));
                    }
                    if !case["unmatched"].is_null() && *unmatched != string_set(&case["unmatched"])
                    {
                        problems.push(format!(
                            "unmatched {unmatched:?}, want {}",
                            case["unmatched"]
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            passed += 1;
        } else {
            failures.push(format!("case {i} {input:?}: {}", problems.join("; ")));
        }
    }
    report(
        "shell-lexer/process-with-matches.json",
        passed,
        &failures,
        None,
    );
}
