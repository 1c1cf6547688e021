//! A parse test per flag, then resolve tests against a faked environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

/// Parses `hoist build ARGS...` and returns the build flags, panicking on a usage error.
fn build(args: &[&str]) -> BuildFlags {
    let cli = parse(["hoist", "build"].iter().chain(args)).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    match cli.command {
        Command::Build(b) => *b,
        other => panic!("not a build: {other:?}"),
    }
}

/// Parses `hoist build ARGS...`, asserts a usage error (exit code 2), returns its message.
fn build_err(args: &[&str]) -> String {
    match parse(["hoist", "build"].iter().chain(args)) {
        Ok(cli) => panic!("{args:?} parsed: {cli:?}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            e.to_string()
        }
    }
}

/// A faked environment rooted at `cwd`, with `vars` and `stdin`.
fn fake_env(cwd: &Path, vars: &[(&str, &str)], stdin: &str) -> Environment {
    Environment {
        cwd: cwd.to_path_buf(),
        vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        stdin: Box::new(std::io::Cursor::new(stdin.as_bytes().to_vec())),
        stdout_is_tty: false,
        stderr_is_tty: false,
        is_root: true,
    }
}

/// A temp directory holding a context with a Dockerfile.
fn context_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").expect("write Dockerfile");
    dir
}

/// Parses and resolves `hoist build ARGS...` in a fresh context with a Dockerfile.
fn resolve(args: &[&str], vars: &[(&str, &str)]) -> (BuildArgs, tempfile::TempDir) {
    let dir = context_dir();
    let cli = parse(["hoist", "build"].iter().chain(args)).unwrap_or_else(|e| panic!("{e}"));
    let Command::Build(b) = cli.command else { panic!("not a build") };
    let mut env = fake_env(dir.path(), vars, "");
    let resolved = b.resolve(&cli.global, &mut env).unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
    (resolved, dir)
}

/// Parses and resolves, expecting an error; returns it.
fn resolve_err(args: &[&str]) -> anyhow::Error {
    let dir = context_dir();
    let cli = parse(["hoist", "build"].iter().chain(args)).unwrap_or_else(|e| panic!("{e}"));
    let Command::Build(b) = cli.command else { panic!("not a build") };
    let mut env = fake_env(dir.path(), &[], "");
    match b.resolve(&cli.global, &mut env) {
        Ok(r) => panic!("{args:?} resolved: {r:?}"),
        Err(e) => e,
    }
}

/// The value of frontend option `key`, if set.
fn opt<'a>(args: &'a BuildArgs, key: &str) -> Option<&'a str> {
    args.frontend_options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn clap_definitions_are_consistent() {
    command().debug_assert();
}

#[test]
fn context_defaults_to_dot() {
    assert_eq!(build(&[]).context, ContextArg::Dir(PathBuf::from(".")));
    assert_eq!(build(&["sub/dir"]).context, ContextArg::Dir(PathBuf::from("sub/dir")));
    assert_eq!(build(&["-"]).context, ContextArg::Stdin);
    assert_eq!(build(&["https://example.invalid/r.git"]).context, ContextArg::Url("https://example.invalid/r.git".into()));
    build_err(&[""]);
}

#[test]
fn file_flag() {
    assert_eq!(build(&["-f", "x/Dockerfile.dev"]).file, Some(PathBuf::from("x/Dockerfile.dev")));
    assert_eq!(build(&["--file=-"]).file, Some(PathBuf::from("-")));
    assert_eq!(build(&[]).file, None);
}

#[test]
fn tag_flag_repeats_and_validates() {
    let b = build(&["-t", "app", "--tag", "127.0.0.1:5000/team/app:v1.2", "-t", "localhost/a@sha256:abcd"]);
    assert_eq!(b.tags, ["app", "127.0.0.1:5000/team/app:v1.2", "localhost/a@sha256:abcd"]);
    assert!(build_err(&["-t", "App"]).contains("lowercase"));
    build_err(&["-t", "app:"]);
    build_err(&["-t", "app:-x"]);
    build_err(&["-t", "a b"]);
    build_err(&["-t", "app@sha256:xyz"]);
    build_err(&["-t", ""]);
}

#[test]
fn build_arg_flag() {
    let b = build(&["--build-arg", "A=1", "--build-arg", "B", "--build-arg", "C=", "--build-arg=D=x=y"]);
    let want = [
        BuildArgFlag { key: "A".into(), value: Some("1".into()) },
        BuildArgFlag { key: "B".into(), value: None },
        BuildArgFlag { key: "C".into(), value: Some(String::new()) },
        BuildArgFlag { key: "D".into(), value: Some("x=y".into()) },
    ];
    assert_eq!(b.build_args, want);
    build_err(&["--build-arg", "=1"]);
    build_err(&["--build-arg", "A B=1"]);
}

#[test]
fn build_arg_resolves_from_env_or_is_dropped() {
    let (r, _d) = resolve(&["--build-arg", "A=1", "--build-arg", "FROM_ENV", "--build-arg", "UNSET"], &[("FROM_ENV", "e")]);
    assert_eq!(opt(&r, "build-arg:A"), Some("1"));
    assert_eq!(opt(&r, "build-arg:FROM_ENV"), Some("e"));
    assert_eq!(opt(&r, "build-arg:UNSET"), None);
}

#[test]
fn target_flag() {
    assert_eq!(build(&["--target", "builder"]).target.as_deref(), Some("builder"));
    build_err(&["--target", ""]);
    let (r, _d) = resolve(&["--target", "builder"], &[]);
    assert_eq!(opt(&r, "target"), Some("builder"));
}

#[test]
fn platform_flag() {
    let b = build(&["--platform", "linux/amd64,linux/arm64/v8", "--platform", "local"]);
    assert_eq!(b.platform, ["linux/amd64", "linux/arm64/v8", "local"]);
    build_err(&["--platform", "amd64"]);
    build_err(&["--platform", "linux//amd64"]);
    build_err(&["--platform", "linux/amd64/v8/x"]);
    let (r, _d) = resolve(&["--platform", "linux/amd64,linux/arm64"], &[]);
    assert_eq!(opt(&r, "platform"), Some("linux/amd64,linux/arm64"));
}

#[test]
fn build_context_flag() {
    let b = build(&[
        "--build-context",
        "src=../lib",
        "--build-context",
        "base=docker-image://127.0.0.1:5000/busybox:latest",
        "--build-context",
        "bb=oci-layout:///tmp/layout:v1",
        "--build-context",
        "dg=oci-layout://rel/dir@sha256:00ff",
        "--build-context",
        "docker.io/library/alpine:3=oci-layout://l",
    ]);
    let want = [
        NamedContext { name: "src".into(), source: ContextSource::Local("../lib".into()) },
        NamedContext { name: "base".into(), source: ContextSource::Image("127.0.0.1:5000/busybox:latest".into()) },
        NamedContext {
            name: "bb".into(),
            source: ContextSource::OciLayout { path: "/tmp/layout".into(), tag: Some("v1".into()), digest: None },
        },
        NamedContext {
            name: "dg".into(),
            source: ContextSource::OciLayout { path: "rel/dir".into(), tag: None, digest: Some("sha256:00ff".into()) },
        },
        NamedContext {
            name: "docker.io/library/alpine:3".into(),
            source: ContextSource::OciLayout { path: "l".into(), tag: None, digest: None },
        },
    ];
    assert_eq!(b.build_contexts, want);
    build_err(&["--build-context", "noequals"]);
    build_err(&["--build-context", "a="]);
    build_err(&["--build-context", "a=docker-image://Bad"]);
    build_err(&["--build-context", "a=oci-layout://"]);
}

#[test]
fn build_context_resolves_paths_and_options() {
    let dir = context_dir();
    std::fs::create_dir(dir.path().join("lib")).expect("mkdir");
    std::fs::create_dir(dir.path().join("layout")).expect("mkdir");
    std::fs::write(dir.path().join("layout/index.json"), "{}").expect("write");
    let cli = parse([
        "hoist",
        "build",
        "--build-context",
        "src=lib",
        "--build-context",
        "bb=oci-layout://layout:latest",
        "--build-context",
        "img=docker-image://busybox",
    ])
    .expect("parse");
    let Command::Build(b) = cli.command else { panic!() };
    let r = b.resolve(&cli.global, &mut fake_env(dir.path(), &[], "")).expect("resolve");
    assert_eq!(r.named_contexts[0].source, ContextSource::Local(dir.path().join("lib")));
    assert_eq!(opt(&r, "context:src"), Some("local:src"));
    let layout = format!("oci-layout://{}:latest", dir.path().join("layout").display());
    assert_eq!(opt(&r, "context:bb"), Some(layout.as_str()));
    assert_eq!(opt(&r, "context:img"), Some("docker-image://busybox"));
    let err = resolve_err(&["--build-context", "x=missing"]);
    assert!(err.to_string().contains("not a directory"), "{err}");
    let err = resolve_err(&["--build-context", "x=oci-layout://missing"]);
    assert!(err.to_string().contains("not an OCI layout"), "{err}");
}

#[test]
fn output_flag_types() {
    let outs = build(&[
        "-o",
        "type=oci,dest=out.tar",
        "-o",
        "type=docker,dest=-",
        "-o",
        "type=image,name=a:1,push=true",
        "-o",
        "type=registry,\"name=r/a:1,r/b:2\"",
        "-o",
        "type=local,dest=outdir",
        "-o",
        "type=tar,dest=fs.tar",
        "-o",
        "type=oci,dest=x.tar,compression=zstd,oci-mediatypes=true",
    ])
    .outputs;
    let none = BTreeMap::new;
    let want = [
        ExportSpec { kind: ExportKind::Oci { dest: OutputDest::Path("out.tar".into()) }, names: vec![], attrs: none() },
        ExportSpec { kind: ExportKind::Docker { dest: OutputDest::Stdout }, names: vec![], attrs: none() },
        ExportSpec { kind: ExportKind::Image { push: true }, names: vec!["a:1".into()], attrs: none() },
        ExportSpec { kind: ExportKind::Image { push: true }, names: vec!["r/a:1".into(), "r/b:2".into()], attrs: none() },
        ExportSpec { kind: ExportKind::Local { dest: "outdir".into() }, names: vec![], attrs: none() },
        ExportSpec { kind: ExportKind::Tar { dest: OutputDest::Path("fs.tar".into()) }, names: vec![], attrs: none() },
        ExportSpec {
            kind: ExportKind::Oci { dest: OutputDest::Path("x.tar".into()) },
            names: vec![],
            attrs: [("compression".to_string(), "zstd".to_string()), ("oci-mediatypes".into(), "true".into())]
                .into_iter()
                .collect(),
        },
    ];
    assert_eq!(outs, want);
}

#[test]
fn output_flag_shorthands() {
    let outs = build(&["-o", "outdir", "-o", "-"]).outputs;
    assert_eq!(outs[0].kind, ExportKind::Local { dest: "outdir".into() });
    assert_eq!(outs[1].kind, ExportKind::Tar { dest: OutputDest::Stdout });
}

#[test]
fn output_flag_errors() {
    assert!(build_err(&["-o", "type=floppy,dest=x"]).contains("floppy"));
    assert!(build_err(&["-o", "type=oci"]).contains("dest="));
    assert!(build_err(&["-o", "dest=x"]).contains("type="));
    assert!(build_err(&["-o", "type=local,dest=-"]).contains("type=tar"));
    assert!(build_err(&["-o", "type=oci,dest=x,push=true"]).contains("push="));
    assert!(build_err(&["-o", "type=image,push=maybe"]).contains("true or false"));
    assert!(build_err(&["-o", "type=image,dest=x"]).contains("no dest"));
    assert!(build_err(&["-o", "type=local,dest=d,name=a"]).contains("name="));
    assert!(build_err(&["-o", "type=oci,dest=x,name=UPPER"]).contains("lowercase"));
    assert!(build_err(&["-o", "type=oci,\"dest=x"]).contains("quote"));
    build_err(&["-o", ""]);
}

#[test]
fn output_resolves_tags_and_paths() {
    let (r, d) = resolve(&["-t", "app:1", "-o", "type=oci,dest=out.tar", "-o", "type=local,dest=fs"], &[]);
    assert_eq!(r.exports[0].names, ["app:1"]);
    assert_eq!(r.exports[0].kind, ExportKind::Oci { dest: OutputDest::Path(d.path().join("out.tar")) });
    assert_eq!(r.exports[1].names, Vec::<String>::new());
    assert_eq!(r.exports[1].kind, ExportKind::Local { dest: d.path().join("fs") });
    // name= wins over -t.
    let (r, _d) = resolve(&["-t", "app:1", "-o", "type=oci,dest=o.tar,name=other"], &[]);
    assert_eq!(r.exports[0].names, ["other"]);
}

#[test]
fn output_defaults() {
    // No output and no tag: build only (cache).
    let (r, _d) = resolve(&[], &[]);
    assert!(r.exports.is_empty());
    // A tag with no output: store the image.
    let (r, _d) = resolve(&["-t", "app"], &[]);
    assert_eq!(r.exports.len(), 1);
    assert_eq!(r.exports[0].kind, ExportKind::Image { push: false });
    assert_eq!(r.exports[0].names, ["app"]);
}

#[test]
fn output_to_stdout_rules() {
    let err = resolve_err(&["-o", "-", "-o", "type=oci,dest=-"]);
    assert!(err.downcast_ref::<UsageError>().is_some(), "{err}");
    let dir = context_dir();
    let cli = parse(["hoist", "build", "-o", "type=oci,dest=-"]).expect("parse");
    let Command::Build(b) = cli.command else { panic!() };
    let mut env = fake_env(dir.path(), &[], "");
    env.stdout_is_tty = true;
    let err = b.resolve(&cli.global, &mut env).expect_err("tty");
    assert!(err.to_string().contains("terminal"), "{err}");
}

#[test]
fn push_flag() {
    assert!(build(&["--push"]).push);
    let (r, _d) = resolve(&["--push", "-t", "127.0.0.1:5000/app"], &[]);
    assert_eq!(r.exports.len(), 1);
    assert_eq!(r.exports[0].kind, ExportKind::Image { push: true });
    assert_eq!(r.exports[0].names, ["127.0.0.1:5000/app"]);
    let err = resolve_err(&["--push"]);
    assert!(err.downcast_ref::<UsageError>().is_some(), "{err}");
}

#[test]
fn secret_flag() {
    let b = build(&[
        "--secret",
        "id=a,src=/run/a",
        "--secret",
        "id=b,env=B_VAR",
        "--secret",
        "id=TOKEN",
        "--secret",
        "type=file,id=c,source=c.txt",
        "--secret",
        "type=env,id=d",
    ]);
    let want = [
        SecretFlag { id: "a".into(), source: SecretSource::File("/run/a".into()) },
        SecretFlag { id: "b".into(), source: SecretSource::Env("B_VAR".into()) },
        SecretFlag { id: "TOKEN".into(), source: SecretSource::Env("TOKEN".into()) },
        SecretFlag { id: "c".into(), source: SecretSource::File("c.txt".into()) },
        SecretFlag { id: "d".into(), source: SecretSource::Env("d".into()) },
    ];
    assert_eq!(b.secrets, want);
    build_err(&["--secret", "src=x"]);
    build_err(&["--secret", "id=a,src=x,env=Y"]);
    build_err(&["--secret", "id=a,type=file"]);
    build_err(&["--secret", "id=a,type=ssh"]);
    build_err(&["--secret", "id=a,colour=red"]);
}

#[test]
fn secret_resolves_values_without_printing_them() {
    let dir = context_dir();
    std::fs::write(dir.path().join("s.txt"), "file-secret").expect("write");
    let cli = parse(["hoist", "build", "--secret", "id=f,src=s.txt", "--secret", "id=E"]).expect("parse");
    let Command::Build(b) = cli.command else { panic!() };
    let r = b.resolve(&cli.global, &mut fake_env(dir.path(), &[("E", "env-secret")], "")).expect("resolve");
    assert_eq!(r.secrets[0].value.0, b"file-secret");
    assert_eq!(r.secrets[1].value.0, b"env-secret");
    let printed = format!("{r:?}");
    assert!(!printed.contains("file-secret") && !printed.contains("env-secret"), "{printed}");
    assert!(resolve_err(&["--secret", "id=NOPE_UNSET"]).to_string().contains("not set"));
    assert!(resolve_err(&["--secret", "id=x,src=missing"]).to_string().contains("cannot read secret"));
    assert!(resolve_err(&["--secret", "id=x,env=A", "--secret", "id=x,env=B"]).downcast_ref::<UsageError>().is_some());
}

#[test]
fn no_cache_flags() {
    assert!(build(&["--no-cache"]).no_cache);
    assert_eq!(build(&["--no-cache-filter", "a,b", "--no-cache-filter", "c"]).no_cache_filter, ["a", "b", "c"]);
    let (r, _d) = resolve(&["--no-cache"], &[]);
    assert_eq!(opt(&r, "no-cache"), Some(""));
    let (r, _d) = resolve(&["--no-cache-filter", "a,b"], &[]);
    assert_eq!(opt(&r, "no-cache"), Some("a,b"));
    let (r, _d) = resolve(&[], &[]);
    assert_eq!(opt(&r, "no-cache"), None);
}

#[test]
fn pull_flag() {
    assert!(build(&["--pull"]).pull);
    let (r, _d) = resolve(&["--pull"], &[]);
    assert_eq!(opt(&r, "image-resolve-mode"), Some("pull"));
}

#[test]
fn label_flag() {
    assert_eq!(build(&["--label", "a=b"]).labels, [("a".to_string(), "b".to_string())]);
    build_err(&["--label", "novalue"]);
    let (r, _d) = resolve(&["--label", "org.opencontainers.image.title=x"], &[]);
    assert_eq!(opt(&r, "label:org.opencontainers.image.title"), Some("x"));
}

#[test]
fn progress_flag() {
    assert_eq!(build(&[]).progress, ProgressFlag::Auto);
    assert_eq!(build(&["--progress", "tty"]).progress, ProgressFlag::Tty);
    assert_eq!(build(&["--progress=plain"]).progress, ProgressFlag::Plain);
    assert_eq!(build(&["--progress=rawjson"]).progress, ProgressFlag::Rawjson);
    build_err(&["--progress=fancy"]);
    // auto: plain when stderr is not a terminal.
    let (r, _d) = resolve(&[], &[]);
    assert_eq!(r.progress, ProgressMode::Plain);
    let (r, _d) = resolve(&["--progress=rawjson"], &[]);
    assert_eq!(r.progress, ProgressMode::RawJson);
}

#[test]
fn call_flag() {
    assert_eq!(build(&[]).call, CallMode::Build);
    assert_eq!(build(&["--call", "outline"]).call, CallMode::Outline);
    assert_eq!(build(&["--call=targets"]).call, CallMode::Targets);
    assert_eq!(build(&["--call=plan"]).call, CallMode::Plan);
    assert_eq!(CallMode::Plan.request_id(), Some("frontend.plan"));
    build_err(&["--call=frobnicate"]);
    build_err(&["--call=build", "--check"]);
    let (r, _d) = resolve(&["--check"], &[]);
    assert_eq!(r.call, CallMode::Check);
    assert_eq!(opt(&r, "requestid"), Some("frontend.lint"));
    let (r, _d) = resolve(&[], &[]);
    assert_eq!(opt(&r, "requestid"), None);
}

#[test]
fn frontend_and_opt_flags() {
    let b = build(&["--frontend", "127.0.0.1:5000/fe:1", "--opt", "k=v", "--opt", "flag"]);
    assert_eq!(b.frontend.as_deref(), Some("127.0.0.1:5000/fe:1"));
    assert_eq!(b.opts, [("k".to_string(), "v".to_string()), ("flag".to_string(), String::new())]);
    build_err(&["--opt", "=v"]);
    let (r, _d) = resolve(&["--opt", "k=v"], &[]);
    assert_eq!(r.frontend_options.last(), Some(&("k".to_string(), "v".to_string())));
}

#[test]
fn metadata_file_and_iidfile_flags() {
    let b = build(&["--metadata-file", "meta.json", "--iidfile", "iid"]);
    assert_eq!(b.metadata_file, Some(PathBuf::from("meta.json")));
    assert_eq!(b.iidfile, Some(PathBuf::from("iid")));
    let (r, d) = resolve(&["--metadata-file", "meta.json"], &[]);
    assert_eq!(r.metadata_file, Some(d.path().join("meta.json")));
}

#[test]
fn quiet_flag() {
    assert!(build(&["-q"]).quiet);
    assert!(build(&["--quiet"]).quiet);
    let (r, _d) = resolve(&["-q", "--progress=tty"], &[]);
    assert_eq!(r.progress, ProgressMode::Quiet);
}

#[test]
fn state_dir_flag_and_defaults() {
    let cli = parse(["hoist", "--state-dir", "/srv/hoist", "build"]).expect("parse");
    assert_eq!(cli.global.state_dir, Some(PathBuf::from("/srv/hoist")));
    let cli = parse(["hoist", "build", "--state-dir", "/srv/h2"]).expect("parse");
    assert_eq!(cli.global.state_dir, Some(PathBuf::from("/srv/h2")));
    let dir = context_dir();
    let mut env = fake_env(dir.path(), &[("HOME", "/home/u")], "");
    assert_eq!(env.default_state_dir().expect("root"), PathBuf::from("/var/lib/hoist"));
    env.is_root = false;
    assert_eq!(env.default_state_dir().expect("home"), PathBuf::from("/home/u/.local/share/hoist"));
    env.vars.insert("XDG_DATA_HOME".into(), "/xdg".into());
    assert_eq!(env.default_state_dir().expect("xdg"), PathBuf::from("/xdg/hoist"));
    env.vars.clear();
    assert!(env.default_state_dir().is_err());
    let (r, _d) = resolve(&["--state-dir", "/srv/hoist"], &[]);
    assert_eq!(r.engine, EngineChoice::Embedded { state_dir: "/srv/hoist".into() });
}

#[test]
fn addr_flag_picks_the_daemon_with_its_tls_settings() {
    let cli = parse(["hoist", "build", "--addr", "unix:///run/hoistd.sock"]).expect("parse");
    assert_eq!(cli.global.addr.as_deref(), Some("unix:///run/hoistd.sock"));
    let (r, _d) = resolve(&["--addr", "unix:///run/hoistd.sock"], &[]);
    let expected = hoist_api::Address::Unix("/run/hoistd.sock".into());
    assert_eq!(r.engine, EngineChoice::Remote { address: expected, tls: hoist_api::ClientTls::default() });

    let (r, d) = resolve(&["--addr", "tcp://127.0.0.1:7420", "--tlscacert", "ca.pem", "--tlscert", "c.pem", "--tlskey", "k.pem"], &[]);
    let EngineChoice::Remote { address, tls } = r.engine else { panic!("not remote: {:?}", r.engine) };
    assert_eq!(address, hoist_api::Address::Tcp { host: "127.0.0.1".into(), port: 7420 });
    assert_eq!(tls.ca_cert, Some(d.path().join("ca.pem")));
    assert_eq!(tls.key, Some(d.path().join("k.pem")));
}

#[test]
fn bad_addr_and_tls_on_a_socket_are_usage_errors() {
    let err = resolve_err(&["--addr", "http://127.0.0.1:1"]);
    assert!(err.downcast_ref::<UsageError>().is_some() && err.to_string().contains("tcp://HOST:PORT"), "{err}");
    let err = resolve_err(&["--addr", "unix:///run/h.sock", "--tlscacert", "ca.pem"]);
    assert!(err.downcast_ref::<UsageError>().is_some() && err.to_string().contains("tcp://"), "{err}");
}

#[test]
fn dockerfile_resolution() {
    // Default: CONTEXT/Dockerfile.
    let (r, d) = resolve(&[], &[]);
    assert_eq!(r.context.as_deref(), Some(d.path()));
    assert_eq!(r.dockerfile, DockerfileSource::File { dir: d.path().to_path_buf(), filename: "Dockerfile".into() });
    assert_eq!(opt(&r, "filename"), Some("Dockerfile"));
    // -f relative to the current directory.
    let dir = context_dir();
    std::fs::create_dir(dir.path().join("ctx")).expect("mkdir");
    std::fs::write(dir.path().join("Other.dockerfile"), "FROM scratch\n").expect("write");
    let cli = parse(["hoist", "build", "-f", "Other.dockerfile", "ctx"]).expect("parse");
    let Command::Build(b) = cli.command else { panic!() };
    let r = b.resolve(&cli.global, &mut fake_env(dir.path(), &[], "")).expect("resolve");
    assert_eq!(r.context, Some(dir.path().join("ctx")));
    assert_eq!(r.dockerfile, DockerfileSource::File { dir: dir.path().to_path_buf(), filename: "Other.dockerfile".into() });
    // No Dockerfile in the context: the frontend decides.
    let cli = parse(["hoist", "build", "ctx"]).expect("parse");
    let Command::Build(b) = cli.command else { panic!() };
    let r = b.resolve(&cli.global, &mut fake_env(dir.path(), &[], "")).expect("resolve");
    assert_eq!(r.dockerfile, DockerfileSource::Absent);
    assert_eq!(opt(&r, "filename"), None);
    // Missing explicit file, missing context.
    assert!(resolve_err(&["-f", "nope"]).to_string().contains("does not exist"));
    assert!(resolve_err(&["nodir"]).to_string().contains("not a directory"));
}

#[test]
fn dockerfile_from_stdin() {
    let dir = context_dir();
    for args in [&["-f", "-", "."][..], &["-"][..]] {
        let cli = parse(["hoist", "build"].iter().chain(args)).expect("parse");
        let Command::Build(b) = cli.command else { panic!() };
        let r = b.resolve(&cli.global, &mut fake_env(dir.path(), &[], "FROM busybox\n")).expect("resolve");
        assert_eq!(r.dockerfile, DockerfileSource::Inline(b"FROM busybox\n".to_vec()), "{args:?}");
    }
    let err = resolve_err(&["-f", "-", "-"]);
    assert!(err.downcast_ref::<UsageError>().is_some(), "{err}");
    let err = resolve_err(&["-f", "Dockerfile", "-"]);
    assert!(err.downcast_ref::<UsageError>().is_some(), "{err}");
    let err = resolve_err(&["https://example.invalid/x.git"]);
    assert!(err.downcast_ref::<UsageError>().is_some(), "{err}");
}

#[test]
fn version_and_completion_subcommands() {
    assert!(matches!(parse(["hoist", "version"]).expect("parse").command, Command::Version));
    let cli = parse(["hoist", "completion", "zsh"]).expect("parse");
    assert!(matches!(cli.command, Command::Completion { shell: clap_complete::Shell::Zsh }));
    assert_eq!(parse(["hoist", "completion", "tcsh"]).expect_err("bad shell").exit_code(), 2);
    assert_eq!(parse(["hoist", "--version"]).expect_err("version").exit_code(), 0);
    assert_eq!(parse(["hoist"]).expect_err("no subcommand").exit_code(), 2);
}

#[test]
fn explain_flag() {
    assert_eq!(build(&[]).explain, None);
    assert_eq!(build(&["--explain"]).explain, Some(ExplainFormat::Text));
    assert_eq!(build(&["--explain=json"]).explain, Some(ExplainFormat::Json));
    assert_eq!(build(&["--explain=text", "."]).explain, Some(ExplainFormat::Text));
    // `--explain .` is the flag and the context, not a format.
    assert_eq!(build(&["--explain", "."]).explain, Some(ExplainFormat::Text));
    assert!(build_err(&["--explain=yaml"]).contains("yaml"));
    let err = resolve_err(&["--explain=json", "-o", "type=tar,dest=-"]);
    assert!(err.to_string().contains("--explain=json prints to stdout"), "{err:#}");
}

#[test]
fn log_file_flag() {
    assert_eq!(build(&["--log-file", "build.log"]).log_file, Some(PathBuf::from("build.log")));
    let (r, d) = resolve(&["--log-file", "build.log"], &[]);
    assert_eq!(r.log_file, Some(d.path().join("build.log")));
}
