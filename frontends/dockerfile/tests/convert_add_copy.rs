//! COPY/ADD conversion beyond the context copy: `--link` (a copy on scratch merged onto the
//! stage), `--parents` (include patterns under a pivot), `--exclude`, and ADD of URLs and git
//! (source ops with BuildKit's attributes), `--checksum`, `--unpack`, `--keep-git-dir`.

mod convert_support;

use convert_support::*;
use hoist_frontend_sdk::types::{CopyAction, FileAction, OpKind, SourceOp};

/// The copy actions of the file op described `text`.
fn copies<'a>(g: &'a Graph, text: &str) -> Vec<&'a CopyAction> {
    g.file(text)
        .actions
        .iter()
        .map(|a| match a {
            FileAction::Copy(c) => c,
            other => panic!("not a copy: {other:?}"),
        })
        .collect()
}

/// The source op a copy reads from.
fn source_of<'a>(g: &'a Graph, copy: &CopyAction) -> &'a SourceOp {
    match &g.input(copy.src.op).kind {
        OpKind::Source(s) => s,
        other => panic!("copy source is not a source op: {other:?}"),
    }
}

fn attr<'a>(source: &'a SourceOp, key: &str) -> Option<&'a str> {
    source
        .attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn copy_link_copies_onto_scratch_and_merges_onto_the_stage() {
    let df = "FROM alpine:3.19\nRUN make\nCOPY --link --chown=10:20 app/ /srv/\nRUN ls /srv\n";
    let c = convert_ok(df);
    let g = Graph::of(&c);
    let copy_op = g.op("[stage-0 3/4] COPY --link --chown=10:20 app/ /srv/");
    let OpKind::File(file) = &copy_op.kind else {
        panic!("not a file op")
    };
    assert_eq!(file.base, None, "the linked copy is made on scratch");
    assert_eq!(lines(copy_op), (3, 3));
    let merge = g.op("[internal] link COPY --link --chown=10:20 app/ /srv/");
    let OpKind::Merge(m) = &merge.kind else {
        panic!("not a merge: {merge:?}")
    };
    assert_eq!(m.inputs.len(), 2);
    assert!(
        matches!(&g.input(m.inputs[0].op).kind, OpKind::Exec(e) if e.args.last().unwrap() == "make")
    );
    assert!(matches!(&g.input(m.inputs[1].op).kind, OpKind::File(f) if f.base.is_none()));
    // The next RUN runs on the merge and still sees the stage's env and workdir.
    let run = g.exec("[stage-0 4/4] RUN ls /srv");
    let root = run.mounts[0].input.expect("root input");
    assert!(matches!(g.input(root.op).kind, OpKind::Merge(_)));
    assert_eq!(env_of(run, "PATH"), Some(BASE_PATH));
    // One history entry with a layer for the COPY, as without --link.
    let config = config_json(&c);
    let history = config["history"].as_array().unwrap();
    let last_copy = history.iter().rev().nth(1).unwrap();
    assert_eq!(
        last_copy["created_by"],
        "COPY --link --chown=10:20 app/ /srv/ # hoist"
    );
    assert!(last_copy.get("empty_layer").is_none());
}

#[test]
fn copy_link_on_scratch_is_the_copy_itself() {
    let g = Graph::of(&convert_ok("FROM scratch\nCOPY --link a /a\n"));
    let out = g.output();
    assert!(matches!(&out.kind, OpKind::File(f) if f.base.is_none()));
    assert_eq!(
        out.description.as_deref(),
        Some("[stage-0 2/2] COPY --link a /a")
    );
}

#[test]
fn the_link_copy_does_not_depend_on_the_base() {
    // The same COPY --link on two different bases is the same op reading the same context.
    let a = Graph::of(&convert_ok("FROM alpine:3.19\nCOPY --link f /f\n"));
    let b = Graph::of(&convert_ok("FROM alpine:3.19\nRUN x\nCOPY --link f /f\n"));
    let normalized = |g: &Graph, text: &str| {
        let mut op = g.op(text).clone();
        op.description = None;
        op.location = None;
        let OpKind::File(file) = &mut op.kind else {
            panic!("not a file op")
        };
        let FileAction::Copy(copy) = &mut file.actions[0] else {
            panic!("not a copy")
        };
        let source = source_of(g, copy).clone();
        copy.src.op = 0;
        (op, source)
    };
    assert_eq!(
        normalized(&a, "[stage-0 2/2] COPY --link f /f"),
        normalized(&b, "[stage-0 3/3] COPY --link f /f")
    );
}

#[test]
fn copy_parents_uses_include_patterns_under_the_pivot() {
    let df = "FROM alpine:3.19\nWORKDIR /app\nCOPY --parents x/a.txt ./y/ ./p/./q/*.rs out/\n";
    let g = Graph::of(&convert_ok(df));
    let c = copies(
        &g,
        "[stage-0 3/3] COPY --parents x/a.txt ./y/ ./p/./q/*.rs out/",
    );
    let got: Vec<(&str, Vec<String>, &str)> = c
        .iter()
        .map(|a| {
            (
                a.src_path.as_str(),
                a.include_patterns.clone(),
                a.dest.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/", vec!["x/a.txt".to_string()], "/app/out/"),
            ("/", vec!["y".to_string()], "/app/out/"),
            ("/p", vec!["q/*.rs".to_string()], "/app/out/"),
        ]
    );
    assert!(c.iter().all(|a| a.dir_contents_only && !a.allow_wildcard));
}

#[test]
fn copy_exclude_patterns_reach_every_action() {
    let df = "FROM alpine:3.19\nCOPY --exclude=*.md --exclude=tmp/ a b /d/\n";
    let g = Graph::of(&convert_ok(df));
    for c in copies(
        &g,
        "[stage-0 2/2] COPY --exclude=*.md --exclude=tmp/ a b /d/",
    ) {
        assert_eq!(c.exclude_patterns, ["*.md", "tmp/"]);
    }
}

#[test]
fn add_url_is_an_http_source_copied_by_wildcard() {
    let sum = format!("sha256:{}", "ab".repeat(32));
    let df = format!(
        "FROM alpine:3.19\nADD https://example.com/pkg/tool.tar.gz /opt/\n\
         ADD --checksum={sum} --unpack=true --chmod=700 https://example.com/x.tgz /x/\n"
    );
    let g = Graph::of(&convert_ok(&df));
    let c = copies(
        &g,
        "[stage-0 2/3] ADD https://example.com/pkg/tool.tar.gz /opt/",
    );
    assert_eq!(
        (c[0].src_path.as_str(), c[0].dest.as_str()),
        ("/*", "/opt/")
    );
    assert!(c[0].allow_wildcard);
    assert!(
        !c[0].attempt_unpack,
        "a download is not unpacked by default"
    );
    let src = source_of(&g, c[0]);
    assert_eq!(src.identifier, "https://example.com/pkg/tool.tar.gz");
    // Download errors point at the ADD line.
    assert_eq!(lines(g.input(c[0].src.op)), (2, 2));
    assert_eq!(attr(src, "http.checksum"), None);
    let text = format!(
        "[stage-0 3/3] ADD --checksum={sum} --unpack=true --chmod=700 https://example.com/x.tgz /x/"
    );
    let c = copies(&g, &text);
    assert!(c[0].attempt_unpack);
    assert_eq!(c[0].mode.as_deref(), Some("700"));
    assert_eq!(
        attr(source_of(&g, c[0]), "http.checksum"),
        Some(sum.as_str())
    );
}

#[test]
fn add_git_is_a_git_source_with_ref_subdir_and_keep_git_dir() {
    let df = "FROM alpine:3.19\n\
        ADD https://example.com/team/repo.git#v1.2:docs /docs/\n\
        ADD --keep-git-dir=true git@example.com:team/repo.git /src/\n\
        ADD --checksum=0123456789abcdef git://example.com/repo.git#main /pinned/\n";
    let g = Graph::of(&convert_ok(df));
    let c = copies(
        &g,
        "[stage-0 2/4] ADD https://example.com/team/repo.git#v1.2:docs /docs/",
    );
    assert_eq!(
        (c[0].src_path.as_str(), c[0].dest.as_str()),
        ("/docs/", "/docs/")
    );
    assert!(!c[0].attempt_unpack);
    let src = source_of(&g, c[0]);
    assert_eq!(src.identifier, "git://example.com/team/repo.git#v1.2");
    assert_eq!(
        attr(src, "git.fullurl"),
        Some("https://example.com/team/repo.git")
    );
    assert_eq!(attr(src, "git.keepgitdir"), None);
    let c = copies(
        &g,
        "[stage-0 3/4] ADD --keep-git-dir=true git@example.com:team/repo.git /src/",
    );
    assert_eq!(c[0].src_path, "/");
    let src = source_of(&g, c[0]);
    assert_eq!(src.identifier, "git://example.com/team/repo.git");
    assert_eq!(
        attr(src, "git.fullurl"),
        Some("git@example.com:team/repo.git")
    );
    assert_eq!(attr(src, "git.keepgitdir"), Some("true"));
    let c = copies(
        &g,
        "[stage-0 4/4] ADD --checksum=0123456789abcdef git://example.com/repo.git#main /pinned/",
    );
    assert_eq!(
        attr(source_of(&g, c[0]), "git.checksum"),
        Some("0123456789abcdef")
    );
}

#[test]
fn add_checksum_errors_are_located() {
    let e = convert_err("FROM alpine:3.19\nADD --checksum=sha256:00 a.txt /a\n");
    assert_eq!(
        e.message,
        "checksum can't be specified for non-HTTP(S) sources"
    );
    assert_eq!(e.location.unwrap().start_line, 2);
    let e = convert_err("FROM alpine:3.19\nRUN x\nADD --checksum=md5:00 https://h/f /f\n");
    assert!(e.message.contains("invalid checksum"), "{}", e.message);
    assert_eq!(e.location.unwrap().start_line, 3);
    let e = convert_err("FROM alpine:3.19\nADD --checksum=sha256:00 https://h/a https://h/b /d/\n");
    assert_eq!(
        e.message,
        "checksum can't be specified for multiple sources"
    );
}
