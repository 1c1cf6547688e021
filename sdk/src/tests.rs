//! Native unit tests of the builder, options and results (no host needed).

use crate::types::{FileAction, MountKind, OpKind, OpRef, OwnerId};
use crate::*;

fn kinds(def: &Definition) -> Vec<&'static str> {
    def.ops
        .iter()
        .map(|op| match op.kind {
            OpKind::Source(_) => "source",
            OpKind::Exec(_) => "exec",
            OpKind::File(_) => "file",
            OpKind::Merge(_) => "merge",
            OpKind::Diff(_) => "diff",
        })
        .collect()
}

/// Every reference points at an earlier op.
fn assert_ordered(def: &Definition) {
    for (i, op) in def.ops.iter().enumerate() {
        let mut refs: Vec<OpRef> = Vec::new();
        match &op.kind {
            OpKind::Source(_) => {}
            OpKind::Exec(e) => refs.extend(e.mounts.iter().filter_map(|m| m.input)),
            OpKind::File(f) => {
                refs.extend(f.base);
                for a in &f.actions {
                    if let FileAction::Copy(c) = a {
                        refs.push(c.src);
                    }
                }
            }
            OpKind::Merge(m) => refs.extend(m.inputs.iter().copied()),
            OpKind::Diff(d) => {
                refs.extend(d.lower);
                refs.push(d.upper);
            }
        }
        for r in refs {
            assert!((r.op as usize) < i, "op {i} refers to op {}", r.op);
        }
    }
}

#[test]
fn scratch_has_no_ops_and_no_output() {
    let def = scratch().definition();
    assert!(def.ops.is_empty());
    assert_eq!(def.output, None);
}

#[test]
fn shared_and_identical_ops_are_emitted_once() {
    let base = image("busybox:latest").state();
    let a = base.run(["touch", "/a"]).root();
    let b = base.run(["touch", "/b"]).root();
    let again = image("busybox:latest").state().run(["touch", "/a"]).root();
    let def = merge(&[&a, &b, &again]).definition();
    assert_eq!(kinds(&def), ["source", "exec", "exec", "merge"]);
    assert_ordered(&def);
    let OpKind::Merge(m) = &def.ops[3].kind else {
        panic!()
    };
    assert_eq!(
        m.inputs,
        [
            OpRef { op: 1, output: 0 },
            OpRef { op: 2, output: 0 },
            OpRef { op: 1, output: 0 }
        ]
    );
}

#[test]
fn relative_paths_follow_the_working_directory() {
    let st = image("alpine").state().dir("/app").dir("src");
    assert_eq!(st.get_dir(), "/app/src");
    let def = st
        .file(mkdir("out", 0o755).then(mkfile("/abs", 0o600, "x")))
        .definition();
    let OpKind::File(f) = &def.ops[1].kind else {
        panic!()
    };
    let FileAction::Mkdir(m) = &f.actions[0] else {
        panic!()
    };
    assert_eq!(m.path, "/app/src/out");
    let FileAction::Mkfile(m) = &f.actions[1] else {
        panic!()
    };
    assert_eq!(m.path, "/abs");
    let OpKind::Exec(e) = &st.run(["ls"]).root().definition().ops[1].kind else {
        panic!()
    };
    assert_eq!(e.cwd, "/app/src");
}

#[test]
fn copy_refers_to_its_source_and_keeps_options() {
    let ctx = local("context").exclude(["target", ".git"]);
    let st = image("rust:1").state().dir("/src").file(
        copy(&ctx, "Cargo.toml", ".")
            .chown(Chown::parse("1000:staff"))
            .chmod("644")
            .create_dest_path(true)
            .allow_wildcard(true),
    );
    let def = st.definition();
    assert_eq!(kinds(&def), ["source", "source", "file"]);
    assert_ordered(&def);
    let OpKind::Source(s) = &def.ops[1].kind else {
        panic!()
    };
    assert_eq!(s.identifier, "local://context");
    assert_eq!(s.exclude_patterns, ["target", ".git"]);
    let OpKind::File(f) = &def.ops[2].kind else {
        panic!()
    };
    assert_eq!(f.base, Some(OpRef { op: 0, output: 0 }));
    let FileAction::Copy(c) = &f.actions[0] else {
        panic!()
    };
    assert_eq!(c.src, OpRef { op: 1, output: 0 });
    assert_eq!(
        (c.src_path.as_str(), c.dest.as_str()),
        ("/Cargo.toml", "/src/.")
    );
    assert_eq!(c.mode.as_deref(), Some("644"));
    assert!(c.create_dest_path && c.allow_wildcard);
    let owner = c.owner.clone().unwrap();
    assert_eq!(owner.user, Some(OwnerId::Id(1000)));
    assert_eq!(owner.group, Some(OwnerId::Name("staff".into())));
}

#[test]
fn exec_mounts_and_their_outputs_share_one_op() {
    let deps = image("node").state();
    let exec = image("busybox")
        .state()
        .add_env("A", "1")
        .run(["make"])
        .env("B", "2")
        .env("A", "3")
        .mount("/out", &scratch())
        .with_mount(bind("/deps", &deps).readonly())
        .with_mount(cache("/root/.cache").id("c1").sharing(CacheSharing::Locked))
        .with_mount(tmpfs("/tmp").size(1 << 20))
        .with_mount(secret("/run/secrets/token", "token"))
        .network(NetworkMode::Host)
        .description("[build 3/5] RUN make")
        .ignore_cache();
    let out = exec.mount_state("/out").unwrap();
    assert!(
        exec.mount_state("/deps").is_none(),
        "read-only mounts publish nothing"
    );
    let def = merge(&[&exec.root(), &out]).definition();
    assert_eq!(kinds(&def), ["source", "source", "exec", "merge"]);
    let OpKind::Exec(e) = &def.ops[2].kind else {
        panic!()
    };
    assert_eq!(e.env, ["A=3", "B=2"]);
    assert_eq!(e.network, NetworkMode::Host);
    let dests: Vec<_> = e
        .mounts
        .iter()
        .map(|m| (m.dest.as_str(), m.output))
        .collect();
    assert_eq!(
        dests,
        [
            ("/", Some(0)),
            ("/out", Some(1)),
            ("/deps", None),
            ("/root/.cache", None),
            ("/tmp", None),
            ("/run/secrets/token", None)
        ]
    );
    assert!(matches!(&e.mounts[3].kind, MountKind::Cache(c) if c.id == "c1"));
    assert!(def.ops[2].ignore_cache);
    assert_eq!(
        def.ops[2].description.as_deref(),
        Some("[build 3/5] RUN make")
    );
    let OpKind::Merge(m) = &def.ops[3].kind else {
        panic!()
    };
    assert_eq!(
        m.inputs,
        [OpRef { op: 2, output: 0 }, OpRef { op: 2, output: 1 }]
    );
}

#[test]
fn merge_and_diff_of_scratch_simplify() {
    let a = image("a").state();
    assert!(merge(&[&scratch(), &scratch()]).is_scratch());
    assert_eq!(merge(&[&scratch(), &a]).definition(), a.definition());
    assert!(diff(&a, &scratch()).is_scratch());
    let d = diff(&scratch(), &a).definition();
    assert_eq!(kinds(&d), ["source", "diff"]);
}

#[test]
fn state_metadata_rewrites_the_producing_op() {
    let st = image("a").state().file(rm("/x").allow_not_found(true));
    let described = st.description("[1/1] RM").location("Dockerfile", &[(3, 4)]);
    let def = described.definition();
    assert_eq!(def.ops[1].description.as_deref(), Some("[1/1] RM"));
    assert_eq!(
        def.ops[1]
            .location
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("Dockerfile:3-4")
    );
    assert_eq!(
        st.definition().ops[1].description,
        None,
        "the original state is unchanged"
    );
}

#[test]
fn deep_graphs_do_not_overflow_the_stack() {
    let mut st = image("a").state();
    for i in 0..20_000 {
        st = st.file(mkfile(format!("/f{i}"), 0o644, ""));
    }
    let def = st.definition();
    assert_eq!(def.ops.len(), 20_001);
    assert_eq!(
        def.output,
        Some(OpRef {
            op: 20_000,
            output: 0
        })
    );
}

#[test]
fn options_are_parsed() {
    let o = Options::new(vec![
        ("build-arg:A".into(), "1".into()),
        ("build-arg:A".into(), "2".into()),
        ("context:base".into(), "docker-image://alpine".into()),
        ("label:x".into(), "y".into()),
        ("platform".into(), "linux/amd64, linux/arm64/v8".into()),
        ("no-cache".into(), "".into()),
    ]);
    assert_eq!(o.build_arg("A"), Some("2"));
    assert_eq!(o.named_contexts()["base"], "docker-image://alpine");
    assert_eq!(o.labels()["x"], "y");
    assert_eq!(o.filename(), "Dockerfile");
    assert_eq!(o.target(), None);
    assert!(o.no_cache());
    let ps = o.platforms().unwrap();
    assert_eq!(
        ps.iter().map(format_platform).collect::<Vec<_>>(),
        ["linux/amd64", "linux/arm64/v8"]
    );
    assert!(parse_platform("linux").is_err());
    assert!(parse_platform("linux//v7").is_err());
    assert!(parse_platform("a/b/c/d").is_err());
}

#[test]
fn image_config_round_trips_unknown_fields() {
    let base = r#"{"architecture":"arm64","os":"linux","variant":"v8","config":{"Env":["PATH=/bin","A=1"]},"history":[{"created_by":"x"}]}"#;
    let mut c = ImageConfig::parse(base).unwrap();
    c.set_env("A", "2")
        .set_user("app")
        .set_label("k", "v")
        .add_exposed_port("80/tcp");
    assert_eq!(c.env(), ["PATH=/bin", "A=2"]);
    assert_eq!(c.platform(), "linux/arm64/v8");
    let v: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
    assert_eq!(v["history"][0]["created_by"], "x");
    assert_eq!(v["config"]["User"], "app");
    assert_eq!(v["config"]["Labels"]["k"], "v");
    assert!(ImageConfig::parse("[]").is_err());
    assert!(ImageConfig::parse("{").is_err());
}

#[test]
fn errors_display_with_location() {
    let e = Error::new("unknown instruction").at("Dockerfile", 4, 4);
    assert_eq!(e.location.as_ref().unwrap().to_string(), "Dockerfile:4");
    assert!(Ref::empty().is_empty());
    assert!(Ref::empty()
        .read_file("/x")
        .unwrap_err()
        .message
        .contains("empty filesystem"));
}
