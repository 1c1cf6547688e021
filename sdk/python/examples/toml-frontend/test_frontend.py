"""Native unit tests of the TOML frontend's conversion (no host: a fake image resolver).

Run from sdk/python: ``PYTHONPATH=build/bindings:src:examples/toml-frontend python3 -m unittest
discover -s examples/toml-frontend``.
"""

import os
import unittest

from hoist_wit.imports import types

import frontend
from hoist_frontend import FrontendError, Options

HERE = os.path.dirname(os.path.abspath(__file__))
BUSYBOX_CONFIG = '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]}}'


BUSYBOX_DIGEST = "sha256:" + "b" * 64


def resolved(ref):
    """What the gateway answers for `ref`: an OCI layout named by its digest, an image by name."""
    canonical = ref.rsplit(":", 1)[0] if ref.startswith("oci-layout://") else ref
    return types.ImageConfig(canonical_ref=canonical, digest=BUSYBOX_DIGEST, config=BUSYBOX_CONFIG)


def resolve(ref, platform):
    return resolved(ref)


def demo():
    with open(os.path.join(HERE, "demo", "hoist.toml")) as f:
        return f.read()


class ConvertTests(unittest.TestCase):
    def convert(self, text, options=()):
        return frontend.convert("hoist.toml", text, Options(list(options)), resolve)

    def test_demo_becomes_two_stages_of_ops(self):
        state, config = self.convert(demo(), [("build-arg:GREETING", "hi")])
        d = state.definition()
        descs = [op.description for op in d.ops]
        self.assertIn("[build 3/3] RUN sh greet.sh 'hi' > /src/greeting.txt", descs)
        self.assertIn("[app 3/4] COPY /src/greeting.txt /app/greeting.txt (from build)", descs)
        run = next(op for op in d.ops if isinstance(op.kind, types.OpKind_Exec)).kind.value
        self.assertEqual(run.args, ["/bin/sh", "-c", "sh greet.sh 'hi' > /src/greeting.txt"])
        self.assertEqual((run.cwd, run.env), ("/src", ["PATH=/bin"]))
        write = d.ops[d.output.op].kind.value.actions[0].value
        self.assertEqual((write.path, write.data, write.mode), ("/app/VERSION", b"1.0 (hi)\n", 0o644))
        self.assertEqual(d.ops[d.output.op].location.ranges[0].start, 23)
        cfg = config.to_json()
        self.assertIn('"Cmd":["cat","/app/greeting.txt"]', cfg)
        self.assertIn('"Env":["PATH=/bin","APP_MODE=demo"]', cfg)
        self.assertIn('"Labels":{"org.example.frontend":"toml"}', cfg)

    def test_named_context_stands_for_the_base_image(self):
        seen = []
        ref = "oci-layout:///layouts/busybox:latest"
        state, _ = frontend.convert("hoist.toml", demo(), Options([("context:busybox", ref)]),
                                    lambda r, p: seen.append(r) or resolved(r))
        sources = [op.kind.value.identifier for op in state.definition().ops
                   if isinstance(op.kind, types.OpKind_Source)]
        layout = f"oci-layout:///layouts/busybox@{BUSYBOX_DIGEST}"
        self.assertEqual(sources, [layout, layout, "local://context"])
        self.assertEqual(seen, [ref, ref])

    def test_target_stops_at_the_stage(self):
        state, _ = self.convert(demo(), [("target", "build")])
        d = state.definition()
        self.assertTrue(all("[app" not in (op.description or "") for op in d.ops))
        with self.assertRaises(FrontendError) as cm:
            self.convert(demo(), [("target", "nope")])
        self.assertIn("target stage 'nope' not found (stages: build, app)", str(cm.exception))

    def test_toml_syntax_error_is_located(self):
        with self.assertRaises(FrontendError) as cm:
            self.convert('[[stage]]\nname = "a"\nfrom = \n')
        self.assertEqual(str(cm.exception).split(": ")[0], "hoist.toml:3")
        self.assertIn("invalid TOML", cm.exception.message)

    def test_copy_from_unknown_stage_is_located_on_its_line(self):
        text = demo().replace('from = "build"', 'from = "biuld"')
        with self.assertRaises(FrontendError) as cm:
            self.convert(text)
        self.assertEqual(cm.exception.location.ranges[0].start, 22)
        self.assertIn("copy from unknown stage 'biuld' (stages before it: build)", cm.exception.message)

    def test_step_needs_one_kind(self):
        with self.assertRaises(FrontendError) as cm:
            self.convert('[[stage]]\nname = "a"\nfrom = "scratch"\nsteps = [{ make = "x" }]\n')
        self.assertIn("step 1: want exactly one of run, copy, mkdir, write, rm", cm.exception.message)
        self.assertEqual((cm.exception.location.ranges[0].start, cm.exception.location.ranges[0].end), (1, 4))


if __name__ == "__main__":
    unittest.main()
