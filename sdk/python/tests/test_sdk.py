"""Native unit tests of the Python SDK: the LLB builder, options, results, errors.

Run: ``sdk/python/build.sh --bindings && PYTHONPATH=sdk/python/build/bindings:sdk/python/src
python3 -m unittest discover -s sdk/python/tests`` (tests/python_sdk.rs does this).
"""

import json
import unittest

from componentize_py_types import Err
from hoist_wit.imports import types

import hoist_frontend as hf
from hoist_frontend.export import run


def kinds(definition):
    return [type(op.kind).__name__.removeprefix("OpKind_").lower() for op in definition.ops]


class StateTests(unittest.TestCase):
    def test_image_run_root_gives_source_then_exec(self):
        d = hf.image("busybox").run("make").root().definition()
        self.assertEqual(kinds(d), ["source", "exec"])
        self.assertEqual(d.ops[0].kind.value.identifier, "docker-image://busybox")
        exec_op = d.ops[1].kind.value
        self.assertEqual(exec_op.args, ["make"])
        self.assertEqual(exec_op.mounts[0].dest, "/")
        self.assertEqual(exec_op.mounts[0].input, types.OpRef(op=0, output=0))
        self.assertEqual(d.output, types.OpRef(op=1, output=0))

    def test_run_takes_strings_or_one_list(self):
        a = hf.image("x").run("sh", "-c", "true").root().definition()
        b = hf.image("x").run(["sh", "-c", "true"]).root().definition()
        self.assertEqual(a, b)
        with self.assertRaises(TypeError):
            hf.image("x").run("sh", ["-c"])

    def test_scratch_has_no_output(self):
        d = hf.scratch().definition()
        self.assertEqual((d.ops, d.output), ([], None))

    def test_shared_and_identical_ops_are_emitted_once(self):
        base = hf.image("busybox")
        left = base.run("a").root()
        right = hf.image("busybox").run("b").root()  # a second, identical source op
        d = hf.merge([left, right]).definition()
        self.assertEqual(kinds(d), ["source", "exec", "exec", "merge"])
        self.assertEqual(d.ops[3].kind.value.inputs,
                         [types.OpRef(op=1, output=0), types.OpRef(op=2, output=0)])

    def test_every_op_comes_after_its_inputs(self):
        a = hf.image("a").run("x").root()
        b = hf.image("b").file(hf.copy(a, "/out", "/in"))
        d = hf.diff(a, b).definition()
        for i, op in enumerate(d.ops):
            for r in refs(op):
                self.assertLess(r.op, i)

    def test_env_dir_and_user_flow_into_run(self):
        s = hf.image("x").add_env("A", "1").add_env("B", "2").add_env("A", "3").dir("/src").dir("sub").user("1000")
        e = s.run("make").env("C", "4").root().definition().ops[1].kind.value
        self.assertEqual(e.env, ["A=3", "B=2", "C=4"])
        self.assertEqual((e.cwd, e.user), ("/src/sub", "1000"))
        self.assertEqual(s.get_env("A"), "3")

    def test_relative_file_paths_resolve_against_the_working_directory(self):
        ctx = hf.local("context")
        s = hf.image("x").dir("/app").file(
            hf.mkdir("data").parents().then(hf.mkfile("f", 0o600, "x")).then(hf.copy(ctx, "src", "dst")))
        actions = s.definition().ops[-1].kind.value.actions
        self.assertEqual([a.value.path for a in actions[:2]], ["/app/data", "/app/f"])
        self.assertEqual((actions[2].value.src_path, actions[2].value.dest), ("/src", "/app/dst"))
        self.assertTrue(actions[0].value.make_parents)
        self.assertEqual(actions[1].value.data, b"x")

    def test_copy_from_scratch_uses_an_empty_file_op(self):
        d = hf.image("x").file(hf.copy(hf.scratch(), "/a", "/b")).definition()
        self.assertEqual(kinds(d), ["source", "file", "file"])
        self.assertEqual(d.ops[1].kind.value.actions, [])

    def test_mounts_number_read_write_binds_as_outputs(self):
        out = hf.image("x").run("make").mount("/out", hf.scratch()) \
            .with_mount(hf.cache("/root/.cache").sharing(hf.CacheSharing.LOCKED)) \
            .with_mount(hf.bind("/ro", hf.image("y")).readonly()) \
            .with_mount(hf.tmpfs("/tmp").size(1 << 20)) \
            .with_mount(hf.secret("/run/secrets/t", "token")) \
            .with_mount(hf.ssh("/ssh", "default"))
        d = out.mount_state("/out").definition()
        self.assertEqual(d.output.output, 1)
        mounts = d.ops[-1].kind.value.mounts
        self.assertEqual([m.output for m in mounts], [0, 1, None, None, None, None, None])
        self.assertEqual(mounts[2].kind.value, types.CacheMount(id="/root/.cache", sharing=types.CacheSharing.LOCKED))
        self.assertTrue(mounts[3].readonly)
        self.assertEqual(mounts[4].kind.value.size, 1 << 20)
        self.assertEqual(mounts[5].kind.value.mode, 0o400)
        self.assertIsNone(out.mount_state("/nope"))

    def test_platform_reaches_source_and_later_ops(self):
        arm = hf.parse_platform("linux/arm64/v8")
        s = hf.image("x").platform(arm).run("make").root().file(hf.mkdir("/a"))
        for op in s.definition().ops:
            self.assertEqual(op.platform, arm)

    def test_description_location_and_ignore_cache_are_set_on_the_op(self):
        s = hf.image("x").run("make").description("[1/1] RUN make").location("f", [(2, 3)]).ignore_cache().root()
        op = s.definition().ops[-1]
        self.assertEqual(op.description, "[1/1] RUN make")
        self.assertEqual(op.location, hf.location("f", [(2, 3)]))
        self.assertTrue(op.ignore_cache)

    def test_states_are_immutable(self):
        base = hf.image("x")
        base.add_env("A", "1")
        base.include("a")
        self.assertEqual(base.env_list(), [])
        self.assertEqual(base.definition().ops[0].kind.value.include_patterns, [])

    def test_chown_parses_ids_and_names(self):
        self.assertEqual(hf.chown("1000:staff"),
                         types.Chown(user=types.OwnerId_Id(1000), group=types.OwnerId_Name("staff")))
        self.assertEqual(hf.chown("app"), types.Chown(user=types.OwnerId_Name("app"), group=None))


def refs(op):
    k = op.kind
    if isinstance(k, types.OpKind_Exec):
        return [m.input for m in k.value.mounts if m.input]
    if isinstance(k, types.OpKind_File):
        return ([k.value.base] if k.value.base else []) + [
            a.value.src for a in k.value.actions if isinstance(a, types.FileAction_Copy)]
    if isinstance(k, types.OpKind_Merge):
        return k.value.inputs
    if isinstance(k, types.OpKind_Diff):
        return [r for r in (k.value.lower, k.value.upper) if r]
    return []


class OptionsTests(unittest.TestCase):
    def test_buildkit_keys(self):
        o = hf.Options([("build-arg:A", "1"), ("build-arg:A", "2"), ("target", "app"),
                        ("context:base", "docker-image://alpine"), ("label:x", "y"),
                        ("platform", "linux/amd64, linux/arm64/v8"), ("no-cache", "")])
        self.assertEqual(o.build_args(), {"A": "2"})
        self.assertEqual(o.build_arg("B", "dflt"), "dflt")
        self.assertEqual(o.target(), "app")
        self.assertEqual(o.named_contexts(), {"base": "docker-image://alpine"})
        self.assertEqual(o.labels(), {"x": "y"})
        self.assertEqual([hf.format_platform(p) for p in o.platforms()], ["linux/amd64", "linux/arm64/v8"])
        self.assertTrue(o.no_cache())
        self.assertEqual(o.filename(), "Dockerfile")

    def test_bad_platform_is_a_frontend_error(self):
        with self.assertRaises(hf.FrontendError) as cm:
            hf.Options([("platform", "linux")]).platforms()
        self.assertIn("invalid platform 'linux'", str(cm.exception))


class ResultTests(unittest.TestCase):
    def test_image_config_json_is_sorted_and_compact(self):
        c = hf.ImageConfig().set_env("A", "1").set_env("A", "2").set_cmd(["sh"]).set_label("k", "v")
        self.assertEqual(c.to_json(), '{"architecture":"amd64","config":{"Cmd":["sh"],"Env":["A=2"],'
                                      '"Labels":{"k":"v"}},"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}')

    def test_image_config_keeps_unknown_fields(self):
        c = hf.ImageConfig.parse('{"os":"linux","history":[{"x":1}],"config":{"Env":["P=1"]}}')
        self.assertEqual(json.loads(c.to_json())["history"], [{"x": 1}])
        self.assertEqual(c.env_pairs(), [("P", "1")])
        with self.assertRaises(hf.FrontendError):
            hf.ImageConfig.parse("[]")


class ExportTests(unittest.TestCase):
    def test_frontend_error_becomes_a_located_wit_error(self):
        def build(options):
            raise hf.FrontendError("bad step").at("hoist.toml", 4, 5)
        with self.assertRaises(Err) as cm:
            run(build, [])
        self.assertEqual(cm.exception.value, types.Error(message="bad step", location=hf.location("hoist.toml", [(4, 5)])))

    def test_unexpected_exception_names_its_origin(self):
        def build(options):
            return {}["missing"]
        with self.assertRaises(Err) as cm:
            run(build, [])
        self.assertRegex(cm.exception.value.message, r"^frontend raised KeyError: 'missing' \(at .*test_sdk.py:\d+ in build\)$")

    def test_result_is_converted(self):
        def build(options):
            return hf.BuildResult.single(hf.Ref.empty(), hf.ImageConfig()).with_metadata("result.txt", "ok")
        out = run(build, [("k", "v")])
        self.assertEqual(len(out.platforms), 1)
        self.assertIsNone(out.platforms[0].reference)
        self.assertEqual(out.metadata, [("result.txt", b"ok")])

    def test_print_becomes_log_lines_while_building(self):
        from hoist_wit.imports import gateway
        lines = []
        saved = gateway.log
        gateway.log = lambda level, message: lines.append((level, message))
        try:
            def build(options):
                print("one\ntwo", end="")
                import sys
                print("careful", file=sys.stderr)
                return hf.BuildResult.single(hf.Ref.empty())
            run(build, [])
        finally:
            gateway.log = saved
        self.assertEqual(lines, [(types.LogLevel.INFO, "one"), (types.LogLevel.WARN, "careful"),
                                 (types.LogLevel.INFO, "two")])

    def test_error_str_shows_location(self):
        self.assertEqual(str(hf.FrontendError("boom").at("f", 3)), "f:3: boom")


if __name__ == "__main__":
    unittest.main()
