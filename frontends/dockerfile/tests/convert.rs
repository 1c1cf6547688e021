//! The Dockerfile → LLB converter, natively: each test converts a Dockerfile against a fake
//! registry and checks the definition (ops, args, env, mounts, file actions, descriptions,
//! locations) and the image config it produces, against BuildKit's behaviour.

mod convert_support;

use convert_support::*;
use hoist_dockerfile::convert::ConvertOptions;
use hoist_frontend_sdk::types::{
    CacheSharing, Chown, FileAction, MountKind, NetworkMode, OpKind, OwnerId, Platform,
    SecurityMode,
};
use serde_json::json;

fn pinned(name: &str) -> String {
    format!("docker-image://docker.io/library/{name}@{DIGEST}")
}

#[test]
fn base_image_is_pinned_by_digest_described_and_located() {
    let c = convert_ok("# a comment\nFROM alpine:3.19\nRUN true\n");
    let g = Graph::of(&c);
    let sources = g.sources();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].identifier, pinned("alpine:3.19"));
    let from = g.op("[stage-0 1/2] FROM alpine:3.19");
    assert_eq!(lines(from), (2, 2));
    let run = g.op("[stage-0 2/2] RUN true");
    assert_eq!(lines(run), (3, 3));
}

#[test]
fn run_inherits_the_image_env_workdir_and_user() {
    let c = convert_ok("FROM alpine:3.19\nUSER app:staff\nRUN make all\n");
    let g = Graph::of(&c);
    let exec = g.exec("[stage-0 3/3] RUN make all");
    assert_eq!(exec.args, ["/bin/sh", "-c", "make all"]);
    assert_eq!(env_of(exec, "PATH"), Some(BASE_PATH));
    assert_eq!(exec.cwd, "/home");
    assert_eq!(exec.user, "app:staff");
    assert_eq!(exec.network, NetworkMode::None);
    assert_eq!(exec.security, SecurityMode::Sandbox);
    // The root mount reads the base image and is output 0.
    let root = &exec.mounts[0];
    assert_eq!(root.dest, "/");
    assert_eq!(root.output, Some(0));
    let base = g.input(root.input.expect("root input").op);
    assert!(matches!(&base.kind, OpKind::Source(s) if s.identifier == pinned("alpine:3.19")));
}

#[test]
fn exec_form_and_shell_instruction() {
    let df = "FROM alpine:3.19\nRUN [\"echo\", \"$HOME\"]\nSHELL [\"/bin/bash\", \"-eu\", \"-c\"]\nRUN echo hi\nCMD echo bye\n";
    let c = convert_ok(df);
    let g = Graph::of(&c);
    // Exec form is not expanded and gets no shell.
    assert_eq!(
        g.exec("[stage-0 2/5] RUN [\"echo\", \"$HOME\"]").args,
        ["echo", "$HOME"]
    );
    assert_eq!(
        g.exec("[stage-0 4/5] RUN echo hi").args,
        ["/bin/bash", "-eu", "-c", "echo hi"]
    );
    let config = config_json(&c);
    assert_eq!(
        config["config"]["Cmd"],
        json!(["/bin/bash", "-eu", "-c", "echo bye"])
    );
    assert_eq!(config["config"]["Shell"], json!(["/bin/bash", "-eu", "-c"]));
}

#[test]
fn global_args_expand_in_from_and_build_args_override_them() {
    let df = "ARG IMAGE=alpine\nARG TAG=latest\nFROM ${IMAGE}:${TAG}\nRUN true\n";
    let g = Graph::of(&convert_ok(df));
    assert_eq!(g.sources()[0].identifier, pinned("alpine:latest"));
    assert_eq!(
        g.op("[stage-0 1/2] FROM alpine:latest")
            .description
            .as_deref(),
        Some("[stage-0 1/2] FROM alpine:latest")
    );

    let mut options = opts();
    options.build_args.insert("TAG".into(), "3.19".into());
    let g = Graph::of(&convert_opts(df, &options).unwrap());
    assert_eq!(g.sources()[0].identifier, pinned("alpine:3.19"));
}

#[test]
fn global_args_are_visible_in_a_stage_only_when_redeclared() {
    let df = "ARG VERSION=1.2\nFROM alpine:3.19\nRUN echo a\nARG VERSION\nRUN echo b\n";
    let g = Graph::of(&convert_ok(df));
    assert_eq!(env_of(g.exec("[stage-0 2/4] RUN echo a"), "VERSION"), None);
    assert_eq!(
        env_of(g.exec("[stage-0 4/4] RUN echo b"), "VERSION"),
        Some("1.2")
    );
}

#[test]
fn predefined_platform_args_need_declaring_in_a_stage() {
    let df = "FROM alpine:3.19\nRUN echo $TARGETARCH\nARG TARGETARCH TARGETPLATFORM\nRUN echo $TARGETARCH\n";
    let mut options = opts();
    options.platform = Some(Platform {
        os: "linux".into(),
        architecture: "arm64".into(),
        variant: None,
    });
    let g = Graph::of(&convert_opts(df, &options).unwrap());
    assert_eq!(
        env_of(g.exec("[stage-0 2/4] RUN echo $TARGETARCH"), "TARGETARCH"),
        None
    );
    let after = g.exec("[stage-0 4/4] RUN echo $TARGETARCH");
    assert_eq!(env_of(after, "TARGETARCH"), Some("arm64"));
    assert_eq!(env_of(after, "TARGETPLATFORM"), Some("linux/arm64"));
    // Every op carries the target platform.
    for op in &g.def.ops {
        assert_eq!(
            op.platform.as_ref().map(|p| p.architecture.as_str()),
            Some("arm64"),
            "{op:?}"
        );
    }
}

#[test]
fn args_reach_run_but_not_the_image_config() {
    let df = "FROM alpine:3.19\nARG MODE=debug\nENV LEVEL=$MODE-1\nRUN build\n";
    let c = convert_ok(df);
    let g = Graph::of(&c);
    let exec = g.exec("[stage-0 4/4] RUN build");
    assert_eq!(env_of(exec, "MODE"), Some("debug"));
    assert_eq!(env_of(exec, "LEVEL"), Some("debug-1"));
    let env = config_json(&c)["config"]["Env"].clone();
    assert_eq!(env, json!([format!("PATH={BASE_PATH}"), "LEVEL=debug-1"]));
}

#[test]
fn env_beats_arg_of_the_same_name_either_way_round() {
    let df = "FROM alpine:3.19\nARG A=from-arg\nENV A=from-env\nENV B=from-env\nARG B=from-arg\nRUN env\n";
    let mut options = opts();
    options
        .build_args
        .insert("A".into(), "from-build-arg".into());
    let c = convert_opts(df, &options).unwrap();
    let exec = Graph::of(&c).exec("[stage-0 6/6] RUN env").clone();
    assert_eq!(env_of(&exec, "A"), Some("from-env"));
    assert_eq!(env_of(&exec, "B"), Some("from-env"));
    assert_eq!(exec.env.iter().filter(|e| e.starts_with("A=")).count(), 1);
}

#[test]
fn build_args_override_stage_arg_defaults_and_unused_ones_are_ignored() {
    let df = "FROM alpine:3.19\nARG MODE=debug\nRUN build\n";
    let mut options = opts();
    options.build_args.insert("MODE".into(), "release".into());
    options.build_args.insert("UNUSED".into(), "x".into());
    let c = convert_opts(df, &options).unwrap();
    let exec = Graph::of(&c).exec("[stage-0 3/3] RUN build").clone();
    assert_eq!(env_of(&exec, "MODE"), Some("release"));
    assert_eq!(env_of(&exec, "UNUSED"), None);
    // RUN's history records the args it saw, as BuildKit does.
    let history = c.image.history.last().expect("history");
    assert_eq!(
        history.created_by,
        "RUN |1 MODE=release /bin/sh -c build # hoist"
    );
}

#[test]
fn multi_stage_copy_from_name_and_index() {
    let df = "\
FROM golang:1.22 AS build
RUN go build -o /out/app
FROM alpine:3.19
COPY --from=build /out/app /usr/bin/app
COPY --from=0 --chown=10:20 --chmod=0755 /out /opt/
";
    let c = convert_ok(df);
    let g = Graph::of(&c);
    let build = g.op("[build 2/2] RUN go build -o /out/app");
    assert_eq!(lines(build), (2, 2));
    let by_name = g.file("[stage-1 2/3] COPY --from=build /out/app /usr/bin/app");
    let FileAction::Copy(copy) = &by_name.actions[0] else {
        panic!("not a copy: {by_name:?}")
    };
    assert_eq!(copy.src_path, "/out/app");
    assert_eq!(copy.dest, "/usr/bin/app");
    assert!(copy.follow_symlinks && copy.dir_contents_only && copy.create_dest_path);
    assert!(copy.allow_wildcard && copy.allow_empty_wildcard && !copy.attempt_unpack);
    assert_eq!(g.input(copy.src.op).description, build.description);
    let by_index = g.file("[stage-1 3/3] COPY --from=0 --chown=10:20 --chmod=0755 /out /opt/");
    let FileAction::Copy(copy) = &by_index.actions[0] else {
        panic!("not a copy: {by_index:?}")
    };
    assert_eq!(g.input(copy.src.op).description, build.description);
    assert_eq!(copy.dest, "/opt/");
    assert_eq!(copy.mode.as_deref(), Some("0755"));
    assert_eq!(
        copy.owner,
        Some(Chown {
            user: Some(OwnerId::Id(10)),
            group: Some(OwnerId::Id(20))
        })
    );
    // The build stage's exec is in the graph once.
    let runs = g
        .def
        .ops
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Exec(_)))
        .count();
    assert_eq!(runs, 1);
}

#[test]
fn a_stage_based_on_another_reuses_its_ops_and_config() {
    let df = "FROM alpine:3.19 AS base\nENV APP=1\nRUN setup\nFROM base AS test\nRUN check\n";
    let c = convert_ok(df);
    let g = Graph::of(&c);
    assert_eq!(g.def.ops.len(), 3, "{:#?}", g.descriptions());
    let exec = g.exec("[test 2/2] RUN check");
    assert_eq!(env_of(exec, "APP"), Some("1"));
    let parent = g.input(exec.mounts[0].input.expect("root").op);
    assert_eq!(parent.description.as_deref(), Some("[base 3/3] RUN setup"));
}

#[test]
fn a_stage_named_like_its_image_uses_the_image() {
    let c = convert_ok("FROM node:20 AS node\nRUN npm ci\n");
    let g = Graph::of(&c);
    assert_eq!(g.sources()[0].identifier, pinned("node:20"));
}

#[test]
fn target_converts_only_the_stages_it_needs() {
    let df = "\
FROM golang:1.22 AS build
RUN go build
FROM node:20 AS unused
RUN npm run never
FROM alpine:3.19 AS release
COPY --from=build /app /app
FROM release AS test
RUN go test
";
    let mut options = opts();
    options.target = Some("RELEASE".into());
    let mut registry = Registry::default();
    let c = hoist_dockerfile::convert::convert(df, &options, &mut registry).unwrap();
    assert_eq!(c.target, 2);
    let g = Graph::of(&c);
    let descriptions = g.descriptions();
    assert!(
        descriptions
            .iter()
            .all(|d| !d.contains("[unused") && !d.contains("[test")),
        "{descriptions:#?}"
    );
    assert!(descriptions.contains(&"[build 2/2] RUN go build".to_string()));
    registry.calls.sort();
    assert_eq!(registry.calls, ["alpine:3.19", "golang:1.22"]);
}

#[test]
fn an_unknown_target_is_an_error() {
    let mut options = opts();
    options.target = Some("nope".into());
    let err = convert_opts("FROM alpine:3.19 AS build\n", &options).unwrap_err();
    assert_eq!(err.message, "target stage \"nope\" could not be found");
    // Targets are names, never indexes.
    options.target = Some("0".into());
    assert!(convert_opts("FROM alpine:3.19 AS build\n", &options).is_err());
}

#[test]
fn images_are_resolved_once() {
    let df = "FROM alpine:3.19 AS a\nRUN a\nFROM alpine:3.19 AS b\nCOPY --from=a /a /a\n";
    let mut registry = Registry::default();
    hoist_dockerfile::convert::convert(df, &opts(), &mut registry).unwrap();
    assert_eq!(registry.calls, ["alpine:3.19"]);
}

#[test]
fn undefined_variables_expand_to_nothing() {
    let c = convert_ok("FROM alpine:3.19\nCOPY $NOPE/a ${ALSO_NOPE:-/b}\nENV X=${UNSET}y\n");
    let g = Graph::of(&c);
    let copy = g.file("[stage-0 2/3] COPY $NOPE/a ${ALSO_NOPE:-/b}");
    let FileAction::Copy(action) = &copy.actions[0] else {
        panic!("not a copy")
    };
    assert_eq!(action.src_path, "/a");
    assert_eq!(action.dest, "/b");
    assert_eq!(c.image.env_value("X"), Some("y"));
    // RUN is left to the shell.
    let c = convert_ok("FROM alpine:3.19\nRUN echo $NOPE\n");
    assert_eq!(
        Graph::of(&c).exec("[stage-0 2/2] RUN echo $NOPE").args[2],
        "echo $NOPE"
    );
}

#[test]
fn a_required_variable_that_is_unset_is_a_located_error() {
    let err = convert_err("FROM alpine:3.19\n\nWORKDIR ${DIR:?must be set}\n");
    assert_eq!(err.location.map(|l| l.start_line), Some(3));
    assert!(err.message.contains("must be set"), "{}", err.message);
}

#[test]
fn heredoc_run_alone_runs_the_document_as_a_script() {
    let df = "FROM alpine:3.19\nRUN <<EOF\n#!/bin/sh\necho hi\nEOF\n";
    let g = Graph::of(&convert_ok(df));
    let run = g.op("[stage-0 2/2] RUN <<EOF");
    assert_eq!(lines(run), (2, 5));
    let OpKind::Exec(exec) = &run.kind else {
        panic!("not an exec")
    };
    assert_eq!(exec.args, ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    let pipes = exec
        .mounts
        .iter()
        .find(|m| m.dest == "/dev/pipes/")
        .expect("script mount");
    assert!(pipes.readonly);
    let OpKind::File(script) = &g.input(pipes.input.expect("script input").op).kind else {
        panic!("script is not a file op")
    };
    assert_eq!(script.base, None);
    let FileAction::Mkfile(file) = &script.actions[0] else {
        panic!("not a mkfile")
    };
    assert_eq!(file.path, "/EOF");
    assert_eq!(file.mode, 0o755);
    assert_eq!(String::from_utf8_lossy(&file.data), "#!/bin/sh\necho hi\n");
}

#[test]
fn heredoc_run_in_a_command_goes_to_the_shell() {
    let df = "FROM alpine:3.19\nRUN cat <<EOF > /greeting\nhello $NAME\nEOF\n";
    let g = Graph::of(&convert_ok(df));
    let exec = g.exec("[stage-0 2/2] RUN cat <<EOF > /greeting");
    assert_eq!(
        exec.args,
        ["/bin/sh", "-c", "cat <<EOF > /greeting\nhello $NAME\nEOF"]
    );
    assert_eq!(exec.mounts.len(), 1);
}

#[test]
fn chomped_heredoc_script_loses_leading_tabs() {
    let df = "FROM alpine:3.19\nRUN <<-EOF\n\techo hi\n\tEOF\n";
    let g = Graph::of(&convert_ok(df));
    let exec = g.exec("[stage-0 2/2] RUN <<-EOF");
    let pipes = exec
        .mounts
        .iter()
        .find(|m| m.dest == "/dev/pipes/")
        .expect("script mount");
    let OpKind::File(script) = &g.input(pipes.input.expect("input").op).kind else {
        panic!()
    };
    let FileAction::Mkfile(file) = &script.actions[0] else {
        panic!("not a mkfile")
    };
    assert_eq!(String::from_utf8_lossy(&file.data), "echo hi\n");
}

#[test]
fn copy_heredoc_writes_an_inline_file_expanding_unless_quoted() {
    let df = "FROM alpine:3.19\nARG NAME=world\nCOPY --chmod=600 <<EOF /etc/greeting\nhello \"$NAME\"\nEOF\nCOPY <<'RAW' /etc/raw\nhello $NAME\nRAW\n";
    let g = Graph::of(&convert_ok(df));
    let copy = g.file("[stage-0 3/4] COPY --chmod=600 <<EOF /etc/greeting");
    let FileAction::Copy(action) = &copy.actions[0] else {
        panic!("not a copy")
    };
    assert_eq!(action.dest, "/etc/greeting");
    assert_eq!(action.src_path, "/EOF");
    assert_eq!(action.mode.as_deref(), Some("600"));
    let OpKind::File(inline) = &g.input(action.src.op).kind else {
        panic!("not a file op")
    };
    let FileAction::Mkfile(file) = &inline.actions[0] else {
        panic!("not a mkfile")
    };
    assert_eq!(String::from_utf8_lossy(&file.data), "hello \"world\"\n");

    let raw = g.file("[stage-0 4/4] COPY <<'RAW' /etc/raw");
    let FileAction::Copy(action) = &raw.actions[0] else {
        panic!("not a copy")
    };
    let OpKind::File(inline) = &g.input(action.src.op).kind else {
        panic!("not a file op")
    };
    let FileAction::Mkfile(file) = &inline.actions[0] else {
        panic!("not a mkfile")
    };
    assert_eq!(String::from_utf8_lossy(&file.data), "hello $NAME\n");
}

#[test]
fn run_mounts_cache_tmpfs_secret_bind_ssh() {
    let df = "\
FROM golang:1.22 AS src
FROM alpine:3.19
ARG CACHE=gocache
WORKDIR /work
RUN --mount=type=cache,target=/root/.cache,id=$CACHE,sharing=locked \\
    --mount=type=tmpfs,target=tmp,size=64m \\
    --mount=type=secret,id=token,required=true,mode=0440,uid=1 \\
    --mount=type=secret,target=/etc/key.pem \\
    --mount=type=bind,from=src,source=/go/src,target=/src \\
    --mount=type=bind,target=/ctx,rw \\
    --mount=type=ssh \\
    make
";
    let g = Graph::of(&convert_ok(df));
    let run = g
        .def
        .ops
        .iter()
        .find(|o| matches!(o.kind, OpKind::Exec(_)))
        .expect("exec");
    assert_eq!(lines(run), (5, 12));
    let OpKind::Exec(exec) = &run.kind else {
        unreachable!()
    };
    let mounts = &exec.mounts;
    assert_eq!(mounts.len(), 8, "{mounts:#?}");

    let cache = &mounts[1];
    assert_eq!(cache.dest, "/root/.cache");
    assert!(
        matches!(&cache.kind, MountKind::Cache(c) if c.id == "gocache" && c.sharing == CacheSharing::Locked)
    );

    let tmpfs = &mounts[2];
    assert_eq!(tmpfs.dest, "/work/tmp");
    assert!(matches!(&tmpfs.kind, MountKind::Tmpfs(t) if t.size == 64 * 1024 * 1024));

    let token = &mounts[3];
    assert_eq!(token.dest, "/run/secrets/token");
    let MountKind::Secret(s) = &token.kind else {
        panic!("not a secret: {token:?}")
    };
    assert_eq!(
        (s.id.as_str(), s.mode, s.uid, s.gid, s.optional),
        ("token", 0o440, 1, 0, false)
    );

    let key = &mounts[4];
    assert_eq!(key.dest, "/etc/key.pem");
    let MountKind::Secret(s) = &key.kind else {
        panic!("not a secret: {key:?}")
    };
    assert_eq!(
        (s.id.as_str(), s.mode, s.optional),
        ("key.pem", 0o400, true)
    );

    let bind = &mounts[5];
    assert_eq!(bind.dest, "/src");
    assert_eq!(bind.selector, "/go/src");
    assert!(bind.readonly);
    let from = g.input(bind.input.expect("bind input").op);
    assert!(matches!(&from.kind, OpKind::Source(s) if s.identifier == pinned("golang:1.22")));

    let ctx = &mounts[6];
    assert!(!ctx.readonly);
    let from = g.input(ctx.input.expect("context input").op);
    assert!(matches!(&from.kind, OpKind::Source(s) if s.identifier == "local://context"));

    let ssh = &mounts[7];
    assert_eq!(ssh.dest, "/run/buildkit/ssh_agent.0");
    assert!(matches!(&ssh.kind, MountKind::Ssh(id) if id == "default"));
    assert!(
        exec.env.iter().any(|e| e == "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"),
        "{:?}",
        exec.env
    );
}

#[test]
fn ssh_auth_sock_names_the_first_ssh_mount_unless_the_env_sets_it() {
    let df = "FROM alpine:3.19\n\
        RUN echo zero\n\
        RUN --mount=type=ssh,id=a,target=/a.sock --mount=type=ssh echo one\n\
        ENV SSH_AUTH_SOCK=/mine.sock\n\
        RUN --mount=type=ssh echo two\n";
    let g = Graph::of(&convert_ok(df));
    let env_of = |name: &str| {
        let OpKind::Exec(exec) = &g.op(name).kind else {
            unreachable!()
        };
        exec.env.iter().filter(|e| e.starts_with("SSH_AUTH_SOCK=")).cloned().collect::<Vec<_>>()
    };
    assert!(env_of("[stage-0 2/5] RUN echo zero").is_empty());
    assert_eq!(
        env_of("[stage-0 3/5] RUN --mount=type=ssh,id=a,target=/a.sock --mount=type=ssh echo one"),
        ["SSH_AUTH_SOCK=/a.sock"]
    );
    assert_eq!(env_of("[stage-0 5/5] RUN --mount=type=ssh echo two"), ["SSH_AUTH_SOCK=/mine.sock"]);
}

#[test]
fn run_network_and_security_flags() {
    let df = "FROM alpine:3.19\nRUN --network=host --security=insecure a\nRUN --network=none b\n";
    let g = Graph::of(&convert_ok(df));
    let a = g.exec("[stage-0 2/3] RUN --network=host --security=insecure a");
    assert_eq!(
        (a.network, a.security),
        (NetworkMode::Host, SecurityMode::Insecure)
    );
    let b = g.exec("[stage-0 3/3] RUN --network=none b");
    assert_eq!(
        (b.network, b.security),
        (NetworkMode::None, SecurityMode::Sandbox)
    );
}

#[test]
fn bad_mounts_are_located_errors() {
    let err = convert_err("FROM alpine:3.19\nRUN --mount=type=cache make\n");
    assert_eq!(err.location.map(|l| l.start_line), Some(2));
    let err = convert_err("FROM alpine:3.19\nRUN --mount=type=tmpfs,target=/t,from=x make\n");
    assert_eq!(err.location.map(|l| l.start_line), Some(2));
}

#[test]
fn onbuild_triggers_of_the_base_image_fire_first() {
    let c = convert_ok("FROM example/onbuild:1\nRUN after\n");
    let g = Graph::of(&c);
    let from = g.op("[stage-0 1/4] FROM example/onbuild:1");
    assert_eq!(lines(from), (1, 1));
    let fired = g.op("[stage-0 2/4] RUN echo fired");
    assert_eq!(lines(fired), (1, 1));
    let after = g.exec("[stage-0 4/4] RUN after");
    assert_eq!(env_of(after, "FIRED"), Some("yes"));
    let parent = g.input(after.mounts[0].input.expect("root").op);
    assert_eq!(parent.description, fired.description);
    let config = config_json(&c);
    assert_eq!(config["config"]["OnBuild"], json!(null));
    assert_eq!(c.image.env_value("FIRED"), Some("yes"));
}

#[test]
fn onbuild_of_an_earlier_stage_fires_in_the_child_stage_only() {
    let df = "FROM alpine:3.19 AS lib\nONBUILD RUN echo child\nFROM lib\nRUN main\n";
    let mut options = opts();
    options.target = Some("lib".into());
    let lib = convert_opts(df, &options).unwrap();
    assert_eq!(
        config_json(&lib)["config"]["OnBuild"],
        json!(["RUN echo child"])
    );
    assert!(Graph::of(&lib)
        .def
        .ops
        .iter()
        .all(|o| !matches!(o.kind, OpKind::Exec(_))));

    let c = convert_ok(df);
    let g = Graph::of(&c);
    g.exec("[stage-1 2/3] RUN echo child");
    g.exec("[stage-1 3/3] RUN main");
    assert_eq!(config_json(&c)["config"]["OnBuild"], json!(null));
}

#[test]
fn escape_directive_uses_the_backtick() {
    let df = "# escape=`\nFROM alpine:3.19\nENV DIR=C:\\app\nRUN echo one `\n    two\n";
    let c = convert_ok(df);
    assert_eq!(c.image.env_value("DIR"), Some("C:\\app"));
    let g = Graph::of(&c);
    let run = g
        .def
        .ops
        .iter()
        .find(|o| matches!(o.kind, OpKind::Exec(_)))
        .expect("exec");
    assert_eq!(lines(run), (4, 5));
    let OpKind::Exec(exec) = &run.kind else {
        unreachable!()
    };
    assert_eq!(exec.args[2], "echo one     two");
}

#[test]
fn errors_carry_dockerfile_lines() {
    let err = convert_err("FROM alpine:3.19\nRUN ok\nCOPY --nope a b\n");
    assert_eq!(err.message, "unknown flag: --nope");
    assert_eq!(
        err.location.map(|l| (l.start_line, l.end_line)),
        Some((3, 3))
    );

    let err = convert_err("FROM alpine:3.19\n\nFROB x\n");
    assert_eq!(err.message, "unknown instruction: FROB");
    assert_eq!(err.location.map(|l| l.start_line), Some(3));

    let err = convert_err("FROM alpine:3.19\nRUN <<EOF\necho never ends\n");
    assert_eq!(err.message, "unterminated heredoc");
    assert_eq!(err.location.map(|l| l.start_line), Some(2));

    let err = convert_err("FROM alpine:3.19\nWORKDIR /app\nCOPY a b /app/dest\n");
    assert_eq!(
        err.message,
        "When using COPY with more than one source file, the destination must be a directory and end with a /"
    );
    assert_eq!(err.location.map(|l| l.start_line), Some(3));
    let err = convert_err("FROM alpine:3.19\nADD a b dest\n");
    assert!(
        err.message
            .starts_with("When using ADD with more than one source file"),
        "{}",
        err.message
    );
    // `.` is a directory.
    convert_ok("FROM alpine:3.19\nWORKDIR /app\nCOPY a b .\n");

    let err = convert_err("FROM alpine:3.19\nSTOPSIGNAL NOT A SIGNAL\n");
    assert_eq!(err.location.map(|l| l.start_line), Some(2));

    let err = convert_opts("FROM nosuch:1\n", &opts()).unwrap_err();
    assert_eq!(err.location.map(|l| l.start_line), Some(1));
    assert!(err.message.contains("nosuch:1"), "{}", err.message);
}

#[test]
fn stage_cycles_and_bad_indexes_are_errors() {
    let err = convert_err(
        "FROM alpine:3.19 AS a\nCOPY --from=b /x /x\nFROM alpine:3.19 AS b\nCOPY --from=a /y /y\n",
    );
    assert!(
        err.message.contains("circular dependency"),
        "{}",
        err.message
    );
    let err = convert_err("FROM alpine:3.19\nCOPY --from=7 /x /x\n");
    assert_eq!(err.message, "invalid stage index 7");
    assert_eq!(err.location.map(|l| l.start_line), Some(2));
}

#[test]
fn workdir_is_created_once_per_instruction_and_root_adds_no_layer() {
    let df = "FROM alpine:3.19\nUSER 1000\nWORKDIR app\nWORKDIR ../data/.\nWORKDIR /\n";
    let c = convert_ok(df);
    let g = Graph::of(&c);
    let app = g.file("[stage-0 3/5] WORKDIR app");
    let FileAction::Mkdir(mkdir) = &app.actions[0] else {
        panic!("not a mkdir")
    };
    assert_eq!(
        (mkdir.path.as_str(), mkdir.mode, mkdir.make_parents),
        ("/home/app", 0o755, true)
    );
    assert_eq!(
        mkdir.owner,
        Some(Chown {
            user: Some(OwnerId::Id(1000)),
            group: None
        })
    );
    let data = g.file("[stage-0 4/5] WORKDIR ../data/.");
    let FileAction::Mkdir(mkdir) = &data.actions[0] else {
        panic!("not a mkdir")
    };
    assert_eq!(mkdir.path, "/home/data");
    assert_eq!(g.layers().len(), 2);
    assert_eq!(c.image.config.working_dir, "/");
    let history: Vec<bool> = c
        .image
        .history
        .iter()
        .skip(1)
        .map(|h| h.empty_layer)
        .collect();
    assert_eq!(history, [true, false, false, true]);
}

#[test]
fn copy_and_add_resolve_paths_against_the_workdir() {
    let df = "FROM alpine:3.19\nWORKDIR /app\nCOPY ./src/ lib/\nADD --chown=www:www --exclude=*.md site.tar.gz .\n";
    let g = Graph::of(&convert_ok(df));
    let copy = g.file("[stage-0 3/4] COPY ./src/ lib/");
    let FileAction::Copy(a) = &copy.actions[0] else {
        panic!("not a copy")
    };
    assert_eq!(
        (a.src_path.as_str(), a.dest.as_str()),
        ("/src/", "/app/lib/")
    );
    let ctx = g.input(a.src.op);
    assert!(matches!(&ctx.kind, OpKind::Source(s) if s.identifier == "local://context"));
    let add = g.file("[stage-0 4/4] ADD --chown=www:www --exclude=*.md site.tar.gz .");
    let FileAction::Copy(a) = &add.actions[0] else {
        panic!("not a copy")
    };
    assert_eq!(
        (a.src_path.as_str(), a.dest.as_str()),
        ("/site.tar.gz", "/app/")
    );
    assert!(a.attempt_unpack);
    assert_eq!(a.exclude_patterns, ["*.md"]);
    let www = Some(OwnerId::Name("www".into()));
    assert_eq!(
        a.owner,
        Some(Chown {
            user: www.clone(),
            group: www
        })
    );
}

#[test]
fn image_config_follows_docker() {
    let df = "\
FROM node:20
LABEL org.opencontainers.image.title=\"my app\" version=$VERSION
ARG VERSION=1.0
LABEL version=$VERSION
ENV NODE_ENV=production PORT=8080
WORKDIR /srv
USER node
EXPOSE $PORT 9229/udp 7000-7001
VOLUME [\"/data\", \"/cache\"]
VOLUME /logs
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m30s --start-interval=2s --retries=4 CMD curl -f http://localhost/ || exit 1
ONBUILD COPY . /srv
ENTRYPOINT [\"node\", \"server.js\"]
MAINTAINER someone@example.com
";
    let mut options = opts();
    options.labels.insert("extra".into(), "yes".into());
    let c = convert_opts(df, &options).unwrap();
    let config = config_json(&c);
    let cfg = &config["config"];
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["author"], "someone@example.com");
    assert_eq!(config.get("rootfs"), None);
    assert_eq!(
        cfg["Env"],
        json!([
            format!("PATH={BASE_PATH}"),
            "NODE_ENV=production",
            "PORT=8080"
        ])
    );
    assert_eq!(cfg["WorkingDir"], "/srv");
    assert_eq!(cfg["User"], "node");
    assert_eq!(
        cfg["Labels"],
        json!({"org.opencontainers.image.title": "my app", "version": "1.0", "extra": "yes"})
    );
    assert_eq!(
        cfg["ExposedPorts"],
        json!({"8080/tcp": {}, "9229/udp": {}, "7000/tcp": {}, "7001/tcp": {}})
    );
    assert_eq!(
        cfg["Volumes"],
        json!({"/data": {}, "/cache": {}, "/logs": {}})
    );
    assert_eq!(cfg["StopSignal"], "SIGQUIT");
    assert_eq!(
        cfg["Healthcheck"],
        json!({
            "Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
            "Interval": 30_000_000_000u64,
            "Timeout": 5_000_000_000u64,
            "StartPeriod": 90_000_000_000u64,
            "StartInterval": 2_000_000_000u64,
            "Retries": 4,
        })
    );
    assert_eq!(cfg["OnBuild"], json!(["COPY . /srv"]));
    assert_eq!(cfg["Entrypoint"], json!(["node", "server.js"]));
    // ENTRYPOINT resets the CMD inherited from the base image.
    assert_eq!(cfg.get("Cmd"), None);
}

#[test]
fn entrypoint_keeps_a_cmd_set_in_the_same_stage() {
    let c = convert_ok("FROM node:20\nCMD [\"--help\"]\nENTRYPOINT [\"app\"]\n");
    let cfg = &config_json(&c)["config"];
    assert_eq!(cfg["Cmd"], json!(["--help"]));
    assert_eq!(cfg["Entrypoint"], json!(["app"]));
    // Without ENTRYPOINT the base image's CMD and ENTRYPOINT stay.
    let c = convert_ok("FROM node:20\nRUN true\n");
    let cfg = &config_json(&c)["config"];
    assert_eq!(cfg["Cmd"], json!(["node"]));
    assert_eq!(cfg["Entrypoint"], json!(["docker-entrypoint.sh"]));
}

#[test]
fn healthcheck_none_disables_the_inherited_one() {
    let c = convert_ok("FROM alpine:3.19\nHEALTHCHECK NONE\n");
    assert_eq!(
        config_json(&c)["config"]["Healthcheck"],
        json!({"Test": ["NONE"]})
    );
}

#[test]
fn history_has_one_layer_entry_per_filesystem_step() {
    let df = "\
FROM alpine:3.19
ARG V=1
ENV A=b
RUN one
COPY a /a
WORKDIR /w
LABEL x=y
ADD b /b
RUN two
CMD [\"x\"]
";
    let c = convert_ok(df);
    let history = &c.image.history;
    // The base image's history comes first and is kept.
    assert_eq!(
        history[0].created_by,
        "/bin/sh -c #(nop) ADD file:rootfs in / "
    );
    let new = &history[1..];
    assert_eq!(new.len(), 9);
    let flags: Vec<bool> = new.iter().map(|h| h.empty_layer).collect();
    assert_eq!(
        flags,
        [true, true, false, false, false, true, false, false, true]
    );
    assert!(new.iter().all(|h| h.comment == "hoist.dockerfile.v0"));
    assert_eq!(new[1].created_by, "ENV A=b # hoist");
    let layers = new.iter().filter(|h| !h.empty_layer).count();
    assert_eq!(Graph::of(&c).layers().len(), layers);
    let json = config_json(&c);
    assert_eq!(json["history"][1]["empty_layer"], json!(true));
    assert_eq!(json["history"][3].get("empty_layer"), None);
}

#[test]
fn scratch_stages_have_no_base_and_a_default_path() {
    let c = convert_ok("FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n");
    let g = Graph::of(&c);
    let copy = g.file("[stage-0 2/3] COPY app /app");
    assert_eq!(copy.base, None);
    assert_eq!(g.layers().len(), 1);
    let cfg = config_json(&c);
    assert_eq!(
        cfg["config"]["Env"],
        json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    );
    assert_eq!(c.image.history.len(), 2);
    // A scratch stage with no file steps has no filesystem at all.
    assert!(convert_ok("FROM scratch\nLABEL a=b\n").state.is_scratch());
}

#[test]
fn named_contexts_replace_images() {
    let mut options = opts();
    options
        .named_contexts
        .insert("alpine:3.19".into(), "docker-image://golang:1.22".into());
    options
        .named_contexts
        .insert("assets".into(), "local:assets".into());
    let c = convert_opts(
        "FROM alpine:3.19\nCOPY --from=assets /logo.png /srv/\n",
        &options,
    )
    .unwrap();
    let g = Graph::of(&c);
    let ids: Vec<&str> = g.sources().iter().map(|s| s.identifier.as_str()).collect();
    assert!(ids.contains(&pinned("golang:1.22").as_str()), "{ids:?}");
    assert!(ids.contains(&"local://assets"), "{ids:?}");
    // The config is the replacement's.
    assert_eq!(c.image.config.working_dir, "/go");
}

#[test]
fn no_cache_marks_every_step() {
    let mut options = opts();
    options.no_cache = true;
    let c = convert_opts("FROM alpine:3.19\nRUN a\nCOPY b /b\nWORKDIR /w\n", &options).unwrap();
    for op in Graph::of(&c).layers() {
        assert!(op.ignore_cache, "{op:?}");
    }
}

#[test]
fn copy_from_an_image_and_platform_flag() {
    let df = "ARG ARCH=arm64\nFROM --platform=linux/$ARCH alpine:3.19\nCOPY --from=golang:1.22 /usr/local/go /go\n";
    let c = convert_ok(df);
    let g = Graph::of(&c);
    let copy = g.op("[stage-0 2/2] COPY --from=golang:1.22 /usr/local/go /go");
    assert_eq!(
        copy.platform.as_ref().map(|p| p.architecture.as_str()),
        Some("arm64")
    );
    let OpKind::File(file) = &copy.kind else {
        panic!("not a file op")
    };
    let FileAction::Copy(a) = &file.actions[0] else {
        panic!("not a copy")
    };
    assert!(
        matches!(&g.input(a.src.op).kind, OpKind::Source(s) if s.identifier == pinned("golang:1.22"))
    );
    let err = convert_err("FROM --platform=nonsense alpine:3.19\n");
    assert_eq!(err.location.map(|l| l.start_line), Some(1));
}

#[test]
fn options_default_is_usable() {
    // A conversion without a filename still works; locations then name no file.
    let c = hoist_dockerfile::convert::convert(
        "FROM alpine:3.19\nRUN x\n",
        &ConvertOptions::default(),
        &mut Registry::default(),
    )
    .unwrap();
    assert_eq!(c.target, 0);
}
