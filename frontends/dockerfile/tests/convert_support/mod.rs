//! Shared helpers of the converter tests: a fake registry serving image configs, and ways to
//! look into the `Definition` and image config a conversion produces.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::BTreeMap;

use hoist_dockerfile::convert::{
    self, ConvertError, ConvertOptions, Converted, ImageResolver, ResolvedImage,
};
use hoist_frontend_sdk::types::{
    Definition, ExecOp, FileAction, FileOp, Op, OpKind, Platform, SourceOp,
};
use serde_json::{json, Value};

/// The digest every fake image is served with.
pub const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// The PATH the fake images set.
pub const BASE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A registry serving image configs by reference, recording what was asked.
pub struct Registry {
    images: BTreeMap<String, Value>,
    /// The references resolved, in order.
    pub calls: Vec<String>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut images = BTreeMap::new();
        images.insert("alpine:3.19".into(), base_config(json!({})));
        images.insert("alpine:latest".into(), base_config(json!({})));
        images.insert(
            "golang:1.22".into(),
            base_config(
                json!({"WorkingDir": "/go", "Env": ["PATH=/go/bin:/usr/bin:/bin", "GOPATH=/go"]}),
            ),
        );
        images.insert(
            "node:20".into(),
            base_config(json!({"Cmd": ["node"], "Entrypoint": ["docker-entrypoint.sh"]})),
        );
        images.insert(
            "example/onbuild:1".into(),
            base_config(json!({"OnBuild": ["RUN echo fired", "ENV FIRED=yes"]})),
        );
        Registry {
            images,
            calls: Vec::new(),
        }
    }
}

/// A base image config: PATH, a working directory, a CMD and one history entry, with
/// `overrides` merged into `config`.
pub fn base_config(overrides: Value) -> Value {
    let mut config = json!({
        "Env": [format!("PATH={BASE_PATH}")],
        "WorkingDir": "/home",
        "Cmd": ["/bin/sh"],
    });
    if let (Value::Object(c), Value::Object(o)) = (&mut config, overrides) {
        c.extend(o);
    }
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:aaaa"]},
        "history": [{"created_by": "/bin/sh -c #(nop) ADD file:rootfs in / "}],
    })
}

impl Registry {
    /// Serves `config` for `reference`.
    pub fn with(mut self, reference: &str, config: Value) -> Registry {
        self.images.insert(reference.to_string(), config);
        self
    }
}

impl ImageResolver for Registry {
    fn resolve(
        &mut self,
        reference: &str,
        _platform: Option<&Platform>,
    ) -> Result<ResolvedImage, String> {
        self.calls.push(reference.to_string());
        let tagged = if reference.contains(':') {
            reference.to_string()
        } else {
            format!("{reference}:latest")
        };
        let config = self
            .images
            .get(&tagged)
            .ok_or_else(|| format!("{tagged}: not found"))?;
        let canonical = if tagged.contains('/') {
            format!("docker.io/{tagged}")
        } else {
            format!("docker.io/library/{tagged}")
        };
        Ok(ResolvedImage {
            canonical_ref: canonical,
            digest: DIGEST.into(),
            config: config.to_string(),
        })
    }
}

/// Options naming the file `Dockerfile`.
pub fn opts() -> ConvertOptions {
    ConvertOptions {
        filename: "Dockerfile".into(),
        ..ConvertOptions::default()
    }
}

/// Converts with default options; panics with the error if it fails.
pub fn convert_ok(dockerfile: &str) -> Converted {
    convert_opts(dockerfile, &opts()).unwrap_or_else(|e| panic!("conversion failed: {e:?}"))
}

/// Converts with `options`.
pub fn convert_opts(dockerfile: &str, options: &ConvertOptions) -> Result<Converted, ConvertError> {
    convert::convert(dockerfile, options, &mut Registry::default())
}

/// Converts and returns the error; panics if it succeeds.
pub fn convert_err(dockerfile: &str) -> ConvertError {
    match convert_opts(dockerfile, &opts()) {
        Ok(_) => panic!("conversion unexpectedly succeeded:\n{dockerfile}"),
        Err(e) => e,
    }
}

/// The image config JSON as a value.
pub fn config_json(converted: &Converted) -> Value {
    serde_json::from_str(&converted.image.to_json()).expect("image config is JSON")
}

/// A converted build: its definition, with lookups.
pub struct Graph {
    /// The definition.
    pub def: Definition,
}

impl Graph {
    /// The definition of `converted`'s state.
    pub fn of(converted: &Converted) -> Graph {
        Graph {
            def: converted.state.definition(),
        }
    }

    /// The op producing the output.
    pub fn output(&self) -> &Op {
        let out = self.def.output.expect("definition has an output");
        &self.def.ops[out.op as usize]
    }

    /// Every op's description.
    pub fn descriptions(&self) -> Vec<String> {
        self.def
            .ops
            .iter()
            .filter_map(|o| o.description.clone())
            .collect()
    }

    /// The op whose description is exactly `text`.
    pub fn op(&self, text: &str) -> &Op {
        self.def
            .ops
            .iter()
            .find(|o| o.description.as_deref() == Some(text))
            .unwrap_or_else(|| panic!("no op described {text:?}; have {:#?}", self.descriptions()))
    }

    /// The exec op described `text`.
    pub fn exec(&self, text: &str) -> &ExecOp {
        match &self.op(text).kind {
            OpKind::Exec(e) => e,
            other => panic!("{text:?} is not an exec: {other:?}"),
        }
    }

    /// The file op described `text`.
    pub fn file(&self, text: &str) -> &FileOp {
        match &self.op(text).kind {
            OpKind::File(f) => f,
            other => panic!("{text:?} is not a file op: {other:?}"),
        }
    }

    /// Every source op.
    pub fn sources(&self) -> Vec<&SourceOp> {
        self.def
            .ops
            .iter()
            .filter_map(|o| match &o.kind {
                OpKind::Source(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// The op an input reference points at.
    pub fn input(&self, op: u32) -> &Op {
        &self.def.ops[op as usize]
    }

    /// The ops from the output down to the first source (or scratch) along the root
    /// filesystem: the stage's layers on top of its base, last first.
    pub fn layers(&self) -> Vec<&Op> {
        let mut layers = Vec::new();
        let mut next = self.def.output.map(|r| r.op);
        while let Some(index) = next {
            let op = &self.def.ops[index as usize];
            next = match &op.kind {
                OpKind::Exec(e) => e.mounts.first().and_then(|m| m.input).map(|r| r.op),
                OpKind::File(f) => f.base.map(|r| r.op),
                _ => break,
            };
            layers.push(op);
        }
        layers
    }
}

/// The line range of an op's location.
pub fn lines(op: &Op) -> (u32, u32) {
    let loc = op.location.as_ref().expect("op has a location");
    assert_eq!(loc.file, "Dockerfile");
    let range = loc.ranges.first().expect("location has a range");
    (range.start, range.end)
}

/// The actions of a file op.
pub fn actions(op: &FileOp) -> &[FileAction] {
    &op.actions
}

/// `KEY=VALUE` from an exec's env, by key.
pub fn env_of<'a>(exec: &'a ExecOp, key: &str) -> Option<&'a str> {
    exec.env
        .iter()
        .find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
}
