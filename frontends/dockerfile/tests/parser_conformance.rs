//! BuildKit conformance: runs every case of the upstream parser and instruction
//! test data in `shared/conformance` (see its README for the formats).
//!
//! The data directory is `$HOIST_CONFORMANCE_DIR`, else `../../../shared/conformance`
//! from this crate; if it is missing the tests fail rather than skip.

use std::fs;
use std::path::PathBuf;

use hoist_dockerfile::instructions::{parse_instruction, Instruction};
use hoist_dockerfile::parser::{
    chomp_heredoc_content, detect_syntax, heredocs_from_line, parse, parse_directive,
    parse_heredoc, parse_json_array, parse_name_val, parse_words, DirectiveParser, FoundDirective,
    Node,
};
use serde_json::Value;

fn conformance_dir() -> PathBuf {
    let dir = std::env::var_os("HOIST_CONFORMANCE_DIR").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/conformance"
            ))
        },
        PathBuf::from,
    );
    assert!(
        dir.is_dir(),
        "conformance data not found at {}",
        dir.display()
    );
    dir
}

fn read(relative: &str) -> String {
    let path = conformance_dir().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn read_json(relative: &str) -> Value {
    serde_json::from_str(&read(relative)).unwrap_or_else(|e| panic!("parsing {relative}: {e}"))
}

/// Pass/fail counts for one conformance file; panics on any failure when finished.
struct Tally {
    name: &'static str,
    passed: usize,
    failures: Vec<String>,
}

impl Tally {
    fn new(name: &'static str) -> Self {
        Tally {
            name,
            passed: 0,
            failures: Vec::new(),
        }
    }

    fn check(&mut self, case: impl std::fmt::Display, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(why) => self.failures.push(format!("{case}: {why}")),
        }
    }

    fn finish(self) {
        println!(
            "{}: {} passed, {} failed",
            self.name,
            self.passed,
            self.failures.len()
        );
        for failure in &self.failures {
            println!("  FAILED {failure}");
        }
        assert!(self.passed > 0, "{}: no cases found", self.name);
        assert!(
            self.failures.is_empty(),
            "{}: {} failures",
            self.name,
            self.failures.len()
        );
    }
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("\n   got: {got:?}\n  want: {want:?}"))
    }
}

fn str_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

fn case_dirs(relative: &str) -> Vec<(String, PathBuf)> {
    let dir = conformance_dir().join(relative);
    let mut cases: Vec<(String, PathBuf)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            )
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn positive() {
    let mut tally = Tally::new("dockerfile-parser/positive");
    for (name, dir) in case_dirs("dockerfile-parser/positive") {
        let outcome = (|| {
            let source = fs::read_to_string(dir.join("Dockerfile")).map_err(|e| e.to_string())?;
            let expected = fs::read_to_string(dir.join("result")).map_err(|e| e.to_string())?;
            let result = parse(&source).map_err(|e| e.to_string())?;
            expect_eq(result.ast.dump() + "\n", expected)
        })();
        tally.check(name, outcome);
    }
    tally.finish();
}

#[test]
fn negative() {
    let known_messages = [
        ("empty_dockerfile", "file with no instructions"),
        ("only_comments", "file with no instructions"),
        ("env_no_value", "ENV must have two arguments"),
        (
            "shykes-nested-json",
            "when using JSON array syntax, arrays must be comprised of strings only",
        ),
    ];
    let mut tally = Tally::new("dockerfile-parser/negative");
    for (name, dir) in case_dirs("dockerfile-parser/negative") {
        let outcome = (|| {
            let source = fs::read_to_string(dir.join("Dockerfile")).map_err(|e| e.to_string())?;
            let err = match parse(&source) {
                Ok(result) => return Err(format!("parsed: {}", result.ast.dump())),
                Err(err) => err.to_string(),
            };
            match known_messages.iter().find(|(case, _)| *case == name) {
                Some((_, message)) if !err.contains(message) => {
                    Err(format!("error {err:?} lacks {message:?}"))
                }
                _ => Ok(()),
            }
        })();
        tally.check(name, outcome);
    }
    tally.finish();
}

#[test]
fn line_numbers() {
    let mut tally = Tally::new("dockerfile-parser/line-numbers");
    let expected = read_json("dockerfile-parser/line-numbers/expected.json");
    let ast = parse(&read("dockerfile-parser/line-numbers/Dockerfile"))
        .expect("line-numbers Dockerfile parses")
        .ast;
    let range = |v: &Value| {
        (
            v[0].as_u64().unwrap_or(0) as usize,
            v[1].as_u64().unwrap_or(0) as usize,
        )
    };
    tally.check(
        "root",
        expect_eq((ast.start_line, ast.end_line), range(&expected["root"])),
    );
    let children = expected["children"].as_array().cloned().unwrap_or_default();
    tally.check("child count", expect_eq(ast.children.len(), children.len()));
    for (i, want) in children.iter().enumerate() {
        let got = ast.children.get(i).map(|c| (c.start_line, c.end_line));
        tally.check(format!("child {i}"), expect_eq(got, Some(range(want))));
    }
    tally.finish();
}

fn heredoc_json(node: &Node) -> Value {
    if node.heredocs.is_empty() {
        return Value::Null;
    }
    Value::Array(
        node.heredocs
            .iter()
            .map(|h| {
                serde_json::json!({
                    "name": h.name,
                    "content": h.content,
                    "expand": h.expand,
                    "chomp": h.chomp,
                    "file_descriptor": h.file_descriptor,
                })
            })
            .collect(),
    )
}

#[test]
fn heredoc_expected() {
    let mut tally = Tally::new("dockerfile-parser/heredoc/expected.json");
    let expected = read_json("dockerfile-parser/heredoc/expected.json");
    let ast = parse(&read("dockerfile-parser/heredoc/Dockerfile"))
        .expect("heredoc Dockerfile parses")
        .ast;
    for case in expected["children"].as_array().cloned().unwrap_or_default() {
        let index = case["child_index"].as_u64().unwrap_or(u64::MAX) as usize;
        let outcome = match ast.children.get(index) {
            Some(node) => expect_eq(heredoc_json(node), case["heredocs"].clone()),
            None => Err("no such child".to_string()),
        };
        tally.check(
            format!("child {index} ({})", str_field(&case, "upstream_comment")),
            outcome,
        );
    }
    tally.finish();
}

#[test]
fn heredoc_helpers() {
    let mut tally = Tally::new("dockerfile-parser/heredoc/helpers.json");
    let helpers = read_json("dockerfile-parser/heredoc/helpers.json");
    let cases = &helpers["parse_heredoc"];
    for word in str_list(&cases["valid_name_EOF"]) {
        let outcome = match parse_heredoc(&word) {
            Ok(Some(h)) => expect_eq(h.name.as_str(), "EOF"),
            other => Err(format!("got {other:?}")),
        };
        tally.check(format!("valid {word:?}"), outcome);
    }
    for word in str_list(&cases["invalid"]) {
        let outcome = match parse_heredoc(&word) {
            Err(_) => Ok(()),
            other => Err(format!("expected an error, got {other:?}")),
        };
        tally.check(format!("invalid {word:?}"), outcome);
    }
    for word in str_list(&cases["not_heredoc"]) {
        tally.check(
            format!("not heredoc {word:?}"),
            expect_eq(parse_heredoc(&word), Ok(None)),
        );
    }
    for case in helpers["heredocs_from_line"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let line = str_field(&case, "line");
        let outcome = heredocs_from_line(line)
            .map_err(|e| e.to_string())
            .and_then(|docs| {
                let names: Vec<String> = docs.into_iter().map(|h| h.name).collect();
                expect_eq(names, str_list(&case["names"]))
            });
        tally.check(format!("from line {line:?}"), outcome);
    }
    for case in helpers["chomp"].as_array().cloned().unwrap_or_default() {
        let input = str_field(&case, "input");
        tally.check(
            format!("chomp {input:?}"),
            expect_eq(
                chomp_heredoc_content(input),
                str_field(&case, "expected").to_string(),
            ),
        );
    }
    for line in str_list(&helpers["json_form_has_no_heredoc"]) {
        let outcome = parse(&format!("{line}\nEOF\n"))
            .map_err(|e| e.to_string())
            .and_then(|result| {
                let node = &result.ast.children[0];
                expect_eq(
                    (node.json, node.heredocs.len(), result.ast.children.len()),
                    (true, 0, 2),
                )
            });
        tally.check(format!("json form {line:?}"), outcome);
    }
    tally.finish();
}

fn check_found(found: Option<FoundDirective>, case: &Value) -> Result<(), String> {
    let want_ok = case["ok"].as_bool().unwrap_or(false);
    expect_eq(found.is_some(), want_ok)?;
    let (reference, cmdline, line) = found
        .map(|f| (f.reference, f.cmdline, f.location.start_line))
        .unwrap_or_default();
    if let Some(want) = case["ref"].as_str() {
        expect_eq(reference.as_str(), want)?;
    }
    if let Some(want) = case["cmdline"].as_str() {
        expect_eq(cmdline.as_str(), want)?;
    }
    if let Some(want) = case["line"].as_u64() {
        expect_eq(line as u64, want)?;
    }
    Ok(())
}

#[test]
fn directives() {
    let mut tally = Tally::new("dockerfile-parser/directives.json");
    let data = read_json("dockerfile-parser/directives.json");
    for (i, case) in data["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let input = str_field(case, "input");
        let kind = str_field(case, "kind");
        let outcome = match kind {
            "parse_all" => DirectiveParser::new()
                .parse_all(input)
                .map_err(|e| e.to_string())
                .and_then(|found| {
                    let got: Vec<(String, String)> =
                        found.into_iter().map(|d| (d.name, d.value)).collect();
                    let want: Vec<(String, String)> = case["expected"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|d| (str_field(d, "name").into(), str_field(d, "value").into()))
                        .collect();
                    expect_eq(got, want)
                }),
            "detect_syntax" => check_found(detect_syntax(input), case),
            "parse_directive" => check_found(parse_directive(str_field(case, "key"), input), case),
            other => Err(format!("unknown case kind {other:?}")),
        };
        tally.check(format!("#{i} {kind} {input:?}"), outcome);
    }
    tally.finish();
}

#[test]
fn parser_units() {
    let mut tally = Tally::new("dockerfile-parser/parser-units.json");
    let data = read_json("dockerfile-parser/parser-units.json");
    for case in data["parse_words"].as_array().cloned().unwrap_or_default() {
        let input = str_field(&case, "input");
        tally.check(
            format!("parse_words {input:?}"),
            expect_eq(parse_words(input, '\\'), str_list(&case["expected"])),
        );
    }
    let arrays = &data["json_string_arrays"];
    for case in arrays["valid"].as_array().cloned().unwrap_or_default() {
        let input = str_field(&case, "input");
        tally.check(
            format!("json valid {input:?}"),
            expect_eq(
                parse_json_array(input),
                Ok(Some(str_list(&case["expected"]))),
            ),
        );
    }
    for input in str_list(&arrays["invalid"]) {
        let outcome = match parse_json_array(&input) {
            Err(e) if e.to_string().contains("strings only") => Ok(()),
            other => Err(format!(
                "expected a not-a-string-array error, got {other:?}"
            )),
        };
        tally.check(format!("json invalid {input:?}"), outcome);
    }
    for case in data["name_val"].as_array().cloned().unwrap_or_default() {
        let input = str_field(&case, "input");
        let got = parse_name_val(input, str_field(&case, "instruction"), '\\');
        let outcome = if case["error"].as_bool().unwrap_or(false) {
            match got {
                Err(_) => Ok(()),
                Ok(values) => Err(format!("expected an error, got {values:?}")),
            }
        } else {
            expect_eq(
                got.map_err(|e| e.to_string()),
                Ok(str_list(&case["expected"])),
            )
        };
        tally.check(format!("name_val {input:?}"), outcome);
    }
    tally.finish();
}

#[test]
fn warnings() {
    let mut tally = Tally::new("dockerfile-parser/warnings.json");
    let data = read_json("dockerfile-parser/warnings.json");
    let result = parse(str_field(&data, "input")).expect("warnings input parses");
    let expected = data["warnings"].as_array().cloned().unwrap_or_default();
    tally.check(
        "warning count",
        expect_eq(result.warnings.len(), expected.len()),
    );
    for (i, want) in expected.iter().enumerate() {
        let outcome = match result.warnings.get(i) {
            None => Err("missing".to_string()),
            Some(warning) => str_list(&want["short_contains"])
                .iter()
                .find(|part| !warning.short.contains(part.as_str()))
                .map_or(Ok(()), |part| {
                    Err(format!("{:?} lacks {part:?}", warning.short))
                }),
        };
        tally.check(format!("warning {i}"), outcome);
    }
    let detail = result
        .warnings
        .first()
        .map(|w| w.detail.join("\n"))
        .unwrap_or_default();
    tally.check(
        "first warning detail",
        expect_eq(
            detail.contains("will become errors in a future release"),
            true,
        ),
    );
    for case in data["other"].as_array().cloned().unwrap_or_default() {
        let source = format!("LABEL test={}\n", "a".repeat(65536));
        let want = str_field(&case, "error");
        let outcome = match parse(&source) {
            Err(e) if e.to_string().contains(want) => Ok(()),
            other => Err(format!("expected error {want:?}, got {other:?}")),
        };
        tally.check(str_field(&case, "case"), outcome);
    }
    tally.finish();
}

fn first_instruction(source: &str) -> Result<Instruction, String> {
    let ast = parse(source).map_err(|e| format!("parse failed: {e}"))?.ast;
    let node = ast.children.first().ok_or("no instructions")?;
    parse_instruction(node)
        .map(|c| c.instruction)
        .map_err(|e| e.to_string())
}

fn expect_error_containing(got: Result<Instruction, String>, want: &str) -> Result<(), String> {
    match got {
        Err(e) if e.contains(want) => Ok(()),
        Err(e) => Err(format!("error {e:?} lacks {want:?}")),
        Ok(instruction) => Err(format!("expected an error, got {instruction:?}")),
    }
}

#[test]
fn instructions() {
    let mut tally = Tally::new("dockerfile-instructions/instructions.json");
    let data = read_json("dockerfile-instructions/instructions.json");
    for case in data["errors"].as_array().cloned().unwrap_or_default() {
        let source = str_field(&case, "dockerfile");
        tally.check(
            format!("error {source:?}"),
            expect_error_containing(first_instruction(source), str_field(&case, "error")),
        );
    }
    for case in data["node_level_errors"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let values = str_list(&case["node_values"]);
        let node = Node {
            value: values.first().cloned().unwrap_or_default(),
            next: values.iter().skip(1).cloned().map(Node::leaf).collect(),
            ..Node::default()
        };
        let got = parse_instruction(&node)
            .map(|c| c.instruction)
            .map_err(|e| e.to_string());
        tally.check(
            format!("node {values:?}"),
            expect_error_containing(got, str_field(&case, "error")),
        );
    }
    for case in data["copy_heredoc"].as_array().cloned().unwrap_or_default() {
        let source = str_field(&case, "dockerfile");
        let outcome = first_instruction(source).and_then(|instruction| {
            let Instruction::Copy(copy) = instruction else {
                return Err(format!("not a COPY: {instruction:?}"));
            };
            let contents: Vec<Value> = copy
                .sources
                .source_contents
                .iter()
                .map(|c| serde_json::json!({"path": c.path, "data": c.data, "expand": c.expand}))
                .collect();
            expect_eq(
                (copy.sources.dest, copy.sources.source_paths, contents),
                (
                    str_field(&case, "dest").to_string(),
                    str_list(&case["source_paths"]),
                    case["source_contents"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                ),
            )
        });
        tally.check(format!("copy {source:?}"), outcome);
    }
    for case in data["run_heredoc"].as_array().cloned().unwrap_or_default() {
        let source = str_field(&case, "dockerfile");
        let outcome = first_instruction(source).and_then(|instruction| {
            let Instruction::Run(run) = instruction else {
                return Err(format!("not a RUN: {instruction:?}"));
            };
            let files: Vec<Value> = run
                .cmd
                .files
                .iter()
                .map(|f| serde_json::json!({"name": f.name, "data": f.data, "chomp": f.chomp}))
                .collect();
            expect_eq(
                (run.cmd.prepend_shell, run.cmd.cmd_line, files),
                (
                    case["prepend_shell"].as_bool().unwrap_or(false),
                    str_list(&case["cmd_line"]),
                    case["files"].as_array().cloned().unwrap_or_default(),
                ),
            )
        });
        tally.check(format!("run {source:?}"), outcome);
    }
    for case in data["healthcheck_interval"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let value = str_field(&case, "value");
        for flag in ["interval", "timeout", "start-period", "start-interval"] {
            let source = format!("HEALTHCHECK --{flag}={value} CMD true");
            let got = first_instruction(&source);
            let outcome = match case["error_contains"].as_str() {
                Some(want) => expect_error_containing(got, want),
                None => got.map(|_| ()),
            };
            tally.check(format!("healthcheck --{flag}={value}"), outcome);
        }
    }
    tally.finish();
}
