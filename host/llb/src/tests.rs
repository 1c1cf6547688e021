use super::*;

fn src(id: &str) -> Op {
    Op::new(OpKind::Source(SourceOp {
        identifier: id.into(),
        include_patterns: vec![],
        exclude_patterns: vec![],
        follow_paths: vec![],
        attrs: vec![],
    }))
}

fn r(op: u32, output: u32) -> OpRef {
    OpRef { op, output }
}

fn bind(dest: &str, input: Option<OpRef>, output: Option<u32>) -> Mount {
    Mount {
        dest: dest.into(),
        input,
        selector: String::new(),
        readonly: false,
        output,
        kind: MountKind::Bind,
    }
}

fn exec(args: &[&str], mounts: Vec<Mount>) -> Op {
    Op::new(OpKind::Exec(ExecOp {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        user: String::new(),
        hostname: String::new(),
        network: NetworkMode::None,
        security: SecurityMode::Sandbox,
        mounts,
    }))
}

fn mkfile(base: Option<OpRef>, data: Vec<u8>) -> Op {
    Op::new(OpKind::File(FileOp {
        base,
        actions: vec![FileAction::Mkfile(MkfileAction {
            path: "/f".into(),
            mode: 0o644,
            data,
            owner: None,
            timestamp: None,
        })],
    }))
}

fn def(ops: Vec<Op>) -> Definition {
    let output = ops.len().checked_sub(1).map(|i| r(i as u32, 0));
    Definition { ops, output }
}

fn chain() -> Definition {
    def(vec![
        src("docker-image://alpine:3.20"),
        exec(
            &["sh", "-c", "make"],
            vec![bind("/", Some(r(0, 0)), Some(0))],
        ),
        mkfile(Some(r(1, 0)), b"hi".to_vec()),
    ])
}

fn reason(e: &Error) -> &Reason {
    e.reason().expect("error has a reason")
}

#[test]
fn valid_chain_validates() {
    chain().validate().unwrap();
}

#[test]
fn digest_is_pinned() {
    // Locks the canonical encoding: changing it must bump ENCODING_VERSION and this value.
    let d = def(vec![src("docker-image://alpine:3.20")])
        .digests()
        .unwrap();
    assert_eq!(d[0].to_string(), PINNED);
}
const PINNED: &str = "sha256:dbe0b5aaf669d9ebb3b05305c392c9abca3850f17d45b89eb30404b04a68f78e";

#[test]
fn digest_independent_of_position() {
    let a = def(vec![src("local://context"), src("docker-image://alpine")])
        .digests()
        .unwrap();
    let b = def(vec![src("docker-image://alpine"), src("local://context")])
        .digests()
        .unwrap();
    assert_eq!(a[0], b[1]);
    assert_eq!(a[1], b[0]);
    // Downstream op referring to the same upstream op at another index: same digest.
    let mut c = def(vec![
        src("docker-image://alpine"),
        mkfile(Some(r(0, 0)), vec![1]),
    ]);
    let d1 = c.digests().unwrap()[1];
    c.ops.insert(0, src("local://other"));
    c.ops[2] = mkfile(Some(r(1, 0)), vec![1]);
    assert_eq!(c.digests().unwrap()[2], d1);
}

#[test]
fn metadata_not_in_digest() {
    let base = chain().digests().unwrap();
    let mut d = chain();
    for op in &mut d.ops {
        op.description = Some("[1/2] RUN make".into());
        op.ignore_cache = true;
        op.location = Some(SourceLocation {
            file: "Dockerfile".into(),
            ranges: vec![LineRange { start: 3, end: 3 }],
        });
    }
    assert_eq!(d.digests().unwrap(), base);
}

#[test]
fn platform_is_in_digest() {
    let base = chain().digests().unwrap();
    let mut d = chain();
    d.ops[1].platform = Some(Platform {
        os: "linux".into(),
        architecture: "arm64".into(),
        variant: None,
    });
    let got = d.digests().unwrap();
    assert_eq!(got[0], base[0]);
    assert_ne!(got[1], base[1]);
}

#[test]
fn upstream_change_changes_downstream() {
    let base = chain().digests().unwrap();
    let mut d = chain();
    d.ops[0] = src("docker-image://alpine:3.21");
    let got = d.digests().unwrap();
    assert!(got.iter().zip(&base).all(|(a, b)| a != b));
}

#[test]
fn attrs_order_irrelevant() {
    let with = |attrs: Vec<(&str, &str)>| {
        let mut op = src("docker-image://alpine");
        if let OpKind::Source(s) = &mut op.kind {
            s.attrs = attrs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
        }
        def(vec![op]).digests().unwrap()[0]
    };
    assert_eq!(
        with(vec![("a", "1"), ("b", "2")]),
        with(vec![("b", "2"), ("a", "1")])
    );
    assert_ne!(with(vec![("a", "1")]), with(vec![("a", "2")]));
}

#[test]
fn length_prefix_prevents_ambiguity() {
    let a = def(vec![exec(&["ab", "c"], vec![bind("/", None, Some(0))])])
        .digests()
        .unwrap();
    let b = def(vec![exec(&["a", "bc"], vec![bind("/", None, Some(0))])])
        .digests()
        .unwrap();
    assert_ne!(a, b);
}

#[test]
fn digests_rejects_forward_ref() {
    let d = def(vec![mkfile(Some(r(1, 0)), vec![]), src("local://x")]);
    let e = d.digests().unwrap_err();
    assert_eq!(e.op_index(), Some(0));
    assert!(matches!(reason(&e), Reason::ForwardRef { .. }));
    // Self reference.
    let d = def(vec![mkfile(Some(r(0, 0)), vec![])]);
    assert!(d.digests().is_err());
    assert!(d.validate().is_err());
}

#[test]
fn validate_refs() {
    let d = def(vec![mkfile(Some(r(1, 0)), vec![]), src("local://x")]);
    assert!(matches!(
        reason(&d.validate().unwrap_err()),
        Reason::ForwardRef { .. }
    ));
    let d = def(vec![src("local://x"), mkfile(Some(r(7, 0)), vec![])]);
    assert!(matches!(
        reason(&d.validate().unwrap_err()),
        Reason::MissingOp { len: 2, .. }
    ));
    let d = def(vec![src("local://x"), mkfile(Some(r(0, 1)), vec![])]);
    let e = d.validate().unwrap_err();
    assert_eq!(e.op_index(), Some(1));
    assert!(matches!(reason(&e), Reason::MissingOutput { .. }));
    let mut d = def(vec![src("local://x")]);
    d.output = Some(r(0, 3));
    assert!(matches!(
        d.validate().unwrap_err(),
        Error::Output {
            reason: Reason::MissingOutput { .. }
        }
    ));
    d.output = Some(r(1, 0));
    assert!(matches!(
        d.validate().unwrap_err(),
        Error::Output {
            reason: Reason::MissingOp { .. }
        }
    ));
    d.output = None;
    d.validate().unwrap();
    Definition::default().validate().unwrap();
}

#[test]
fn exec_outputs() {
    let e = exec(
        &["true"],
        vec![
            bind("/", Some(r(0, 0)), Some(0)),
            bind("/out", None, Some(1)),
            bind("/ro", Some(r(0, 0)), None),
        ],
    );
    let mut d = def(vec![
        src("local://x"),
        e.clone(),
        mkfile(Some(r(1, 1)), vec![]),
    ]);
    d.validate().unwrap();
    assert_eq!(d.ops[1].inputs(), vec![r(0, 0), r(0, 0)]);
    d.ops[2] = mkfile(Some(r(1, 2)), vec![]);
    assert!(matches!(
        reason(&d.validate().unwrap_err()),
        Reason::MissingOutput { .. }
    ));
    let dup = exec(
        &["true"],
        vec![bind("/", None, Some(0)), bind("/out", None, Some(0))],
    );
    assert!(matches!(
        reason(&def(vec![dup]).validate().unwrap_err()),
        Reason::DuplicateOutput { output: 0 }
    ));
}

#[test]
fn exec_shape() {
    let e = def(vec![exec(&[], vec![bind("/", None, Some(0))])])
        .validate()
        .unwrap_err();
    assert_eq!(reason(&e), &Reason::EmptyArgs);
    let e = def(vec![exec(&["true"], vec![bind("/a", None, Some(0))])])
        .validate()
        .unwrap_err();
    assert_eq!(reason(&e), &Reason::RootMount { count: 0 });
    let e = def(vec![exec(
        &["true"],
        vec![bind("/", None, Some(0)), bind("/", None, None)],
    )])
    .validate()
    .unwrap_err();
    assert_eq!(reason(&e), &Reason::RootMount { count: 2 });
    let e = def(vec![exec(
        &["true"],
        vec![bind("/", None, Some(0)), bind("rel", None, None)],
    )])
    .validate()
    .unwrap_err();
    assert!(matches!(reason(&e), Reason::RelativeMount { .. }));
    let cache = Mount {
        kind: MountKind::Cache(CacheMount {
            id: "go".into(),
            sharing: CacheSharing::Locked,
        }),
        ..bind("/cache", None, Some(1))
    };
    let e = def(vec![exec(&["true"], vec![bind("/", None, Some(0)), cache])])
        .validate()
        .unwrap_err();
    assert!(matches!(reason(&e), Reason::OutputOnNonBind { .. }));
}

#[test]
fn error_names_op_description_and_location() {
    let mut op = exec(&[], vec![bind("/", None, Some(0))]);
    op.description = Some("[2/3] RUN".into());
    op.location = Some(SourceLocation {
        file: "Dockerfile".into(),
        ranges: vec![LineRange { start: 4, end: 5 }],
    });
    let e = def(vec![src("local://x"), op]).validate().unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("op 1"), "{msg}");
    assert!(
        msg.contains("[2/3] RUN") && msg.contains("Dockerfile:4-5"),
        "{msg}"
    );
    assert_eq!(e.location().map(|l| l.file.as_str()), Some("Dockerfile"));
}

#[test]
fn source_schemes() {
    let p = |id: &str| src(id).kind.clone();
    let parse = |id: &str| match p(id) {
        OpKind::Source(s) => s.parse(),
        _ => unreachable!(),
    };
    assert_eq!(
        parse("docker-image://alpine:3").unwrap(),
        Source::Image {
            reference: "alpine:3".into()
        }
    );
    assert_eq!(
        parse("local://context").unwrap(),
        Source::Local {
            name: "context".into()
        }
    );
    let dg = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(
        parse(&format!("oci-layout://store/x@{dg}")).unwrap(),
        Source::OciLayout {
            path: "store/x".into(),
            digest: dg.parse().unwrap()
        }
    );
    assert!(parse("oci-layout://x@sha256:zz").is_err());
    assert!(parse("oci-layout://x").is_err());
    assert_eq!(
        parse("git://github.com/a/b#main").unwrap(),
        Source::Git {
            remote: "github.com/a/b".into(),
            reference: Some("main".into())
        }
    );
    assert_eq!(
        parse("https://x.io/f").unwrap(),
        Source::Http {
            url: "https://x.io/f".into()
        }
    );
    assert!(parse("alpine").is_err());
    assert!(parse("local://").is_err());
    let e = parse("ftp://x").unwrap_err();
    assert!(matches!(reason(&e), Reason::UnknownScheme { scheme, .. } if scheme == "ftp"));
    let e = def(vec![src("s3://bucket")]).validate().unwrap_err();
    assert_eq!(e.op_index(), Some(0));
    assert!(matches!(reason(&e), Reason::UnknownScheme { .. }));
    if let OpKind::Source(s) = p("docker-image://a") {
        assert_eq!(s.scheme(), Some("docker-image"));
    }
}

#[test]
fn inputs_order() {
    let f = Op::new(OpKind::File(FileOp {
        base: Some(r(0, 0)),
        actions: vec![FileAction::Copy(CopyAction {
            src: r(1, 0),
            src_path: "/a".into(),
            dest: "/b".into(),
            owner: None,
            mode: None,
            follow_symlinks: false,
            dir_contents_only: false,
            create_dest_path: true,
            allow_wildcard: false,
            allow_empty_wildcard: false,
            include_patterns: vec![],
            exclude_patterns: vec![],
            attempt_unpack: false,
            timestamp: None,
        })],
    }));
    assert_eq!(f.inputs(), vec![r(0, 0), r(1, 0)]);
    let d = Op::new(OpKind::Diff(DiffOp {
        lower: Some(r(0, 0)),
        upper: r(1, 0),
    }));
    assert_eq!(d.inputs(), vec![r(0, 0), r(1, 0)]);
    let m = Op::new(OpKind::Merge(MergeOp {
        inputs: vec![r(1, 0), r(0, 0)],
    }));
    assert_eq!(m.inputs(), vec![r(1, 0), r(0, 0)]);
    assert!(src("local://x").inputs().is_empty());
}

#[test]
fn serde_roundtrip() {
    let d = chain();
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(serde_json::from_str::<Definition>(&json).unwrap(), d);
    let dg = d.digests().unwrap()[0];
    let s = serde_json::to_string(&dg).unwrap();
    assert_eq!(serde_json::from_str::<Digest>(&s).unwrap(), dg);
    assert!("sha256:ABC".parse::<Digest>().is_err());
    assert!(format!("sha256:{}", "AB".repeat(32))
        .parse::<Digest>()
        .is_err());
}

// ---- limits: each at limit passes (where cheap) and at limit + 1 fails ----

fn assert_limit(d: Definition, name: &str) {
    match d.validate() {
        Err(e) => {
            assert!(e.is_limit(), "{e}");
            assert!(e.to_string().contains(name), "{e}");
        }
        Ok(()) => panic!("{name}: limit + 1 accepted"),
    }
}

#[test]
fn limit_max_ops() {
    let mut d = Definition {
        ops: vec![src("local://x"); MAX_OPS],
        output: None,
    };
    d.validate().unwrap();
    d.ops.push(src("local://x"));
    assert_limit(d, "MAX_OPS");
}

#[test]
fn limit_max_args_and_env() {
    let args: Vec<String> = vec!["a".into(); MAX_ARGS + 1];
    let mut op = exec(&["a"], vec![bind("/", None, Some(0))]);
    if let OpKind::Exec(x) = &mut op.kind {
        x.args = args[..MAX_ARGS].to_vec();
    }
    def(vec![op.clone()]).validate().unwrap();
    if let OpKind::Exec(x) = &mut op.kind {
        x.args = args.clone();
    }
    assert_limit(def(vec![op.clone()]), "MAX_ARGS");
    if let OpKind::Exec(x) = &mut op.kind {
        x.args = vec!["a".into()];
        x.env = vec!["A=1".into(); MAX_ENV + 1];
    }
    assert_limit(def(vec![op]), "MAX_ENV");
}

#[test]
fn limit_max_mounts() {
    let mut mounts = vec![bind("/", None, Some(0))];
    mounts.extend((0..MAX_MOUNTS).map(|i| bind(&format!("/m{i}"), None, None)));
    assert_eq!(mounts.len(), MAX_MOUNTS + 1);
    assert_limit(def(vec![exec(&["a"], mounts.clone())]), "MAX_MOUNTS");
    mounts.pop();
    def(vec![exec(&["a"], mounts)]).validate().unwrap();
}

#[test]
fn limit_max_file_actions() {
    let mut op = mkfile(None, vec![]);
    if let OpKind::File(f) = &mut op.kind {
        f.actions = vec![f.actions[0].clone(); MAX_FILE_ACTIONS + 1];
    }
    assert_limit(def(vec![op]), "MAX_FILE_ACTIONS");
}

#[test]
fn limit_max_mkfile_bytes() {
    def(vec![mkfile(None, vec![0; MAX_MKFILE_BYTES])])
        .validate()
        .unwrap();
    assert_limit(
        def(vec![mkfile(None, vec![0; MAX_MKFILE_BYTES + 1])]),
        "MAX_MKFILE_BYTES",
    );
}

#[test]
fn limit_max_merge_inputs() {
    let merge = Op::new(OpKind::Merge(MergeOp {
        inputs: vec![r(0, 0); MAX_MERGE_INPUTS + 1],
    }));
    assert_limit(def(vec![src("local://x"), merge]), "MAX_MERGE_INPUTS");
}

#[test]
fn limit_max_patterns() {
    let mut op = src("local://x");
    if let OpKind::Source(s) = &mut op.kind {
        s.exclude_patterns = vec!["*.o".into(); MAX_PATTERNS + 1];
    }
    assert_limit(def(vec![op]), "MAX_PATTERNS");
}

#[test]
fn limit_max_string_bytes() {
    let ok = format!(
        "local://{}",
        "x".repeat(MAX_STRING_BYTES - "local://".len())
    );
    def(vec![src(&ok)]).validate().unwrap();
    assert_limit(def(vec![src(&format!("{ok}x"))]), "MAX_STRING_BYTES");
    let long = "a".repeat(MAX_STRING_BYTES + 1);
    assert_limit(
        def(vec![exec(&[&long], vec![bind("/", None, Some(0))])]),
        "MAX_STRING_BYTES",
    );
}
