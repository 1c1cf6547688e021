//! Build checks (`--call check`, requestid `frontend.lint`): every rule fires where BuildKit's
//! does, with its name, message, URL and Dockerfile line; the `# check=` directive skips rules
//! or turns violations into an error; the report renders as JSON and text.

mod convert_support;

use convert_support::*;
use hoist_dockerfile::convert::{self, lint};
use serde_json::json;

/// The build-check report for `dockerfile`.
fn check(dockerfile: &str) -> lint::Report {
    convert::check(dockerfile, &opts(), &mut Registry::default())
        .unwrap_or_else(|e| panic!("check failed: {e:?}"))
}

/// `(rule, detail, start line)` of each warning.
fn found(dockerfile: &str) -> Vec<(String, String, usize)> {
    check(dockerfile)
        .warnings
        .iter()
        .map(|w| (w.rule.to_string(), w.detail.clone(), w.location.start_line))
        .collect()
}

fn one(rule: &str, detail: &str, line: usize) -> Vec<(String, String, usize)> {
    vec![(rule.to_string(), detail.to_string(), line)]
}

#[test]
fn a_clean_dockerfile_has_no_warnings() {
    let df = "ARG TAG=3.19\nFROM alpine:${TAG} AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /\nCMD [\"/app\"]\n";
    assert_eq!(found(df), []);
    assert_eq!(
        check(df).to_text("Dockerfile", df),
        "Check complete, no warnings found.\n"
    );
}

#[test]
fn stage_name_casing() {
    let w = check("FROM alpine:3.19 AS Build\nRUN true\n").warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].rule, "StageNameCasing");
    assert_eq!(w[0].description, "Stage names should be lowercase");
    assert_eq!(w[0].detail, "Stage name 'Build' should be lowercase");
    assert_eq!(
        w[0].url,
        "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/"
    );
    assert_eq!((w[0].location.start_line, w[0].location.end_line), (1, 1));
}

#[test]
fn from_as_casing() {
    assert_eq!(
        found("FROM alpine:3.19 as build\n"),
        one(
            "FromAsCasing",
            "'as' and 'FROM' keywords' casing do not match",
            1
        )
    );
    assert_eq!(
        found("from alpine:3.19 AS build\n"),
        one(
            "FromAsCasing",
            "'AS' and 'from' keywords' casing do not match",
            1
        )
    );
    assert_eq!(found("from alpine:3.19 as build\n"), []);
}

#[test]
fn json_args_recommended() {
    let df = "FROM alpine:3.19\nCMD echo hi\nENTRYPOINT [\"app\"]\nENTRYPOINT app\n";
    let detail = |cmd: &str| {
        format!("JSON arguments recommended for {cmd} to prevent unintended behavior related to OS signals")
    };
    assert_eq!(
        found(df),
        [
            ("JSONArgsRecommended".to_string(), detail("CMD"), 2),
            ("JSONArgsRecommended".to_string(), detail("ENTRYPOINT"), 4),
        ]
    );
    // An explicit SHELL means the shell form is intended.
    assert_eq!(
        found("FROM alpine:3.19\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\n"),
        []
    );
    // ... for that stage only.
    let df = "FROM alpine:3.19\nSHELL [\"/bin/bash\", \"-c\"]\nFROM alpine:3.19\nCMD echo hi\n";
    assert_eq!(found(df), one("JSONArgsRecommended", &detail("CMD"), 4));
}

#[test]
fn undefined_var() {
    assert_eq!(
        found("FROM alpine:3.19\nCOPY $NOPE /x\n"),
        one("UndefinedVar", "Usage of undefined variable '$NOPE'", 2)
    );
    let df = "FROM alpine:3.19\nENV NAME=x\nWORKDIR /srv/$NAEM\n";
    assert_eq!(
        found(df),
        one(
            "UndefinedVar",
            "Usage of undefined variable '$NAEM' (did you mean $NAME?)",
            3
        )
    );
    let w = check("FROM alpine:3.19\nUSER $WHO\n").warnings;
    assert_eq!(
        w[0].url,
        "https://docs.docker.com/go/dockerfile/rule/undefined-var/"
    );
    assert_eq!(
        w[0].description,
        "Variables should be defined before their use"
    );
}

#[test]
fn undefined_var_ignores_declared_args_base_env_and_run() {
    // A declared ARG without a value is defined (just empty).
    assert_eq!(found("FROM alpine:3.19\nARG WHO\nUSER $WHO\n"), []);
    // The base image's ENV counts.
    assert_eq!(found("FROM alpine:3.19\nENV PATH=$PATH:/opt/bin\n"), []);
    // Predefined platform args are not reported.
    assert_eq!(found("FROM alpine:3.19\nLABEL arch=$TARGETARCH\n"), []);
    // RUN is the shell's business.
    assert_eq!(found("FROM alpine:3.19\nRUN echo $NOPE\n"), []);
    // A global ARG is not visible in a stage until redeclared.
    let df = "ARG V=1\nFROM alpine:3.19\nLABEL v=$V\nARG V\nLABEL w=$V\n";
    assert_eq!(
        found(df),
        one("UndefinedVar", "Usage of undefined variable '$V'", 3)
    );
}

#[test]
fn undefined_arg_in_from() {
    let w = check("FROM alpine:3.19$TAG\n").warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].rule, "UndefinedArgInFrom");
    assert_eq!(w[0].detail, "FROM argument 'TAG' is not declared");
    assert_eq!(
        w[0].url,
        "https://docs.docker.com/go/dockerfile/rule/undefined-arg-in-from/"
    );
    assert_eq!(
        found("ARG VERSION=3.19\nFROM alpine:3.19$VERSON\n"),
        one(
            "UndefinedArgInFrom",
            "FROM argument 'VERSON' is not declared (did you mean VERSION?)",
            2
        )
    );
    // Declared without a default, or predefined: fine.
    assert_eq!(
        found("ARG TAG\nFROM --platform=$BUILDPLATFORM alpine:3.19${TAG}\n"),
        []
    );
}

#[test]
fn duplicate_stage_name() {
    let df = "FROM alpine:3.19 AS build\nRUN a\nFROM alpine:3.19 AS build\nRUN b\n";
    let w = check(df).warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].rule, "DuplicateStageName");
    assert_eq!(
        w[0].detail,
        "Duplicate stage name \"build\", stage names should be unique"
    );
    assert_eq!(w[0].location.start_line, 3);
}

#[test]
fn maintainer_deprecated() {
    let w = check("FROM alpine:3.19\nMAINTAINER me@example.com\n").warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].rule, "MaintainerDeprecated");
    assert_eq!(
        w[0].detail,
        "Maintainer instruction is deprecated in favor of using label"
    );
    assert_eq!(w[0].location.start_line, 2);
    assert_eq!(
        w[0].url,
        "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/"
    );
}

#[test]
fn consistent_instruction_casing() {
    let df = "FROM alpine:3.19\nrun echo a\nRUN echo b\nCopy a /a\n";
    assert_eq!(
        found(df),
        [
            (
                "ConsistentInstructionCasing".to_string(),
                "Command 'run' should match the case of the command majority (uppercase)"
                    .to_string(),
                2
            ),
            (
                "ConsistentInstructionCasing".to_string(),
                "Command 'Copy' should match the case of the command majority (uppercase)"
                    .to_string(),
                4
            ),
        ]
    );
    let df = "from alpine:3.19\nrun echo a\nRUN echo b\n";
    assert_eq!(
        found(df),
        one(
            "ConsistentInstructionCasing",
            "Command 'RUN' should match the case of the command majority (lowercase)",
            3
        )
    );
    // Global ARGs are not counted.
    assert_eq!(found("arg X=1\nFROM alpine:3.19\nRUN a\n"), []);
}

#[test]
fn no_empty_continuation() {
    let df = "FROM alpine:3.19\nRUN echo a \\\n\n    b\n";
    let w = check(df).warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].rule, "NoEmptyContinuation");
    assert_eq!(w[0].detail, "Empty continuation line");
    assert_eq!(
        w[0].url,
        "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"
    );
    assert_eq!(w[0].location.start_line, 4);
}

#[test]
fn check_covers_stages_a_build_would_skip() {
    let df = "FROM alpine:3.19 AS unused\nUSER $NOPE\nFROM alpine:3.19\nRUN true\n";
    assert_eq!(
        found(df),
        one("UndefinedVar", "Usage of undefined variable '$NOPE'", 2)
    );
    // A build reports the static rules for the whole file but variables only where it goes.
    let c = convert_ok(df);
    assert_eq!(c.warnings, []);
}

#[test]
fn builds_carry_their_warnings() {
    let c = convert_ok("FROM alpine:3.19 as Build\nCMD run\n");
    let rules: Vec<&str> = c.warnings.iter().map(|w| w.rule).collect();
    assert_eq!(
        rules,
        ["StageNameCasing", "FromAsCasing", "JSONArgsRecommended"]
    );
    assert_eq!(c.checks.error_for(&c.warnings), None);
}

#[test]
fn check_directive_skips_rules() {
    let df =
        "# check=skip=StageNameCasing,JSONArgsRecommended\nFROM alpine:3.19 as Build\nCMD run\n";
    assert_eq!(
        found(df),
        one(
            "FromAsCasing",
            "'as' and 'FROM' keywords' casing do not match",
            2
        )
    );
    let df = "# check=skip=all\nFROM alpine:3.19 as Build\nCMD run\n";
    assert_eq!(found(df), []);
}

#[test]
fn check_directive_error_true_fails_the_build() {
    let df = "# check=error=true\nFROM alpine:3.19 AS Build\nMAINTAINER me\n";
    let report = check(df);
    let err = report.error().expect("an error");
    assert_eq!(
        err.message,
        "lint violation found for rules: MaintainerDeprecated, StageNameCasing"
    );
    assert_eq!(err.location.map(|l| l.start_line), Some(2));
    let c = convert_ok(df);
    assert!(c.checks.error);
    assert_eq!(
        c.checks.error_for(&c.warnings).map(|e| e.message),
        Some(err.message)
    );
    // No violations, no error.
    let clean = check("# check=error=true\nFROM alpine:3.19\n");
    assert_eq!(clean.error(), None);
    // The build arg wins over the directive.
    let mut options = opts();
    options
        .build_args
        .insert("BUILDKIT_DOCKERFILE_CHECK".into(), "skip=all".into());
    let report = convert::check(df, &options, &mut Registry::default()).unwrap();
    assert_eq!(report.warnings, []);
    assert_eq!(report.error(), None);
}

#[test]
fn a_bad_check_directive_is_a_located_error() {
    let err = convert::check(
        "# check=error=perhaps\nFROM alpine:3.19\n",
        &opts(),
        &mut Registry::default(),
    )
    .unwrap_err();
    assert_eq!(err.location.map(|l| l.start_line), Some(1));
}

#[test]
fn report_json_and_text() {
    let df = "# check=error=true\nFROM alpine:3.19 AS Build\nRUN true\n";
    let report = check(df);
    assert_eq!(
        report.to_json("Dockerfile"),
        json!({
            "warnings": [{
                "rule": "StageNameCasing",
                "description": "Stage names should be lowercase",
                "url": "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/",
                "detail": "Stage name 'Build' should be lowercase",
                "location": {"file": "Dockerfile", "start": 2, "end": 2},
            }],
            "error": "lint violation found for rules: StageNameCasing",
        })
    );
    assert_eq!(
        report.to_text("Dockerfile", df),
        "WARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/\n\
         Stage name 'Build' should be lowercase\n\
         Dockerfile:2\n\
         --------------------\n   \
         2 | >>> FROM alpine:3.19 AS Build\n\
         --------------------\n\
         \n\
         Check complete, 1 warning has been found!\n\
         ERROR: lint violation found for rules: StageNameCasing\n"
    );
}

#[test]
fn status_code_is_one_only_with_violations() {
    let clean = "FROM alpine:3.19 AS build\nCMD [\"/app\"]\n";
    assert_eq!(check(clean).status_code(), 0);
    let warned = "FROM alpine:3.19 AS Build\n";
    assert_eq!(check(warned).status_code(), 1);
    // Skipped rules do not count.
    let skipped = "# check=skip=StageNameCasing\nFROM alpine:3.19 AS Build\n";
    assert_eq!(check(skipped).status_code(), 0);
}
