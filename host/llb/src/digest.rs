//! `Digest` and the canonical op encoding the digests are computed over.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::types::*;
use crate::{Error, OpContext, Reason};

/// Version tag that starts every canonical op encoding; bump it when the encoding changes.
pub const ENCODING_VERSION: &[u8] = b"hoist.llb.op/v1\0";

/// A sha256 digest, written `sha256:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The sha256 digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest(Sha256::digest(data).into())
    }

    /// Wraps 32 raw digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// The 32 raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex characters, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Error parsing a `sha256:<hex>` string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {0:?}: expected sha256:<64 lowercase hex>")]
pub struct ParseDigestError(pub String);

impl FromStr for Digest {
    type Err = ParseDigestError;
    fn from_str(s: &str) -> Result<Digest, ParseDigestError> {
        let err = || ParseDigestError(s.chars().take(80).collect());
        let h = s.strip_prefix("sha256:").ok_or_else(err)?;
        if h.len() != 64
            || !h
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(h, &mut out).map_err(|_| err())?;
        Ok(Digest(out))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Definition {
    /// Each op's digest, index for index (see the crate doc for the encoding).
    ///
    /// Fails only when an op refers to itself or a later op (the digest would be undefined);
    /// other problems are [`Definition::validate`]'s business.
    pub fn digests(&self) -> Result<Vec<Digest>, Error> {
        let mut out: Vec<Digest> = Vec::with_capacity(self.ops.len());
        let mut buf = Vec::with_capacity(256);
        for (i, op) in self.ops.iter().enumerate() {
            let mut bad = None;
            op.for_each_input(|r| {
                if bad.is_none() && (r.op as usize) >= i {
                    bad = Some(r);
                }
            });
            if let Some(r) = bad {
                return Err(Error::op(i, op, Reason::ForwardRef { reference: r }));
            }
            buf.clear();
            encode_op(op, &out, &mut buf);
            out.push(Digest::of(&buf));
        }
        Ok(out)
    }
}

impl Op {
    /// The canonical encoding of this op, given the digests of the ops before it.
    ///
    /// Returns `None` when a reference points outside `earlier`.
    pub fn canonical_bytes(&self, earlier: &[Digest]) -> Option<Vec<u8>> {
        let mut ok = true;
        self.for_each_input(|r| ok &= (r.op as usize) < earlier.len());
        if !ok {
            return None;
        }
        let mut buf = Vec::new();
        encode_op(self, earlier, &mut buf);
        Some(buf)
    }
}

/// Low-level writer of the canonical encoding.
struct Enc<'a> {
    buf: &'a mut Vec<u8>,
    digests: &'a [Digest],
}

impl Enc<'_> {
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        // usize -> u64 is lossless on every supported target.
        self.u64(u64::try_from(n).unwrap_or(u64::MAX));
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.buf.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn strs(&mut self, v: &[String]) {
        self.len(v.len());
        for s in v {
            self.str(s);
        }
    }
    fn opt<T>(&mut self, v: &Option<T>, f: impl FnOnce(&mut Self, &T)) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                f(self, x);
            }
        }
    }
    fn opt_str(&mut self, v: &Option<String>) {
        self.opt(v, |e, s| e.str(s));
    }
    fn opt_i64(&mut self, v: &Option<i64>) {
        self.opt(v, |e, x| e.i64(*x));
    }
    fn op_ref(&mut self, r: &OpRef) {
        // Callers checked r.op < digests.len(); fall back to zeros rather than panic.
        let d = self
            .digests
            .get(r.op as usize)
            .map(|d| d.0)
            .unwrap_or([0; 32]);
        self.buf.extend_from_slice(&d);
        self.u32(r.output);
    }
    fn owner_id(&mut self, o: &OwnerId) {
        match o {
            OwnerId::Id(n) => {
                self.u8(0);
                self.u32(*n);
            }
            OwnerId::Name(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }
    fn chown(&mut self, c: &Option<Chown>) {
        self.opt(c, |e, c| {
            e.opt(&c.user, |e, u| e.owner_id(u));
            e.opt(&c.group, |e, g| e.owner_id(g));
        });
    }
}

fn encode_op(op: &Op, digests: &[Digest], buf: &mut Vec<u8>) {
    let mut e = Enc { buf, digests };
    e.buf.extend_from_slice(ENCODING_VERSION);
    match &op.kind {
        OpKind::Source(s) => {
            e.u8(0);
            e.str(&s.identifier);
            e.strs(&s.include_patterns);
            e.strs(&s.exclude_patterns);
            e.strs(&s.follow_paths);
            // Attributes are a map in meaning: encode them sorted so order does not matter.
            let mut attrs: Vec<&(String, String)> = s.attrs.iter().collect();
            attrs.sort();
            e.len(attrs.len());
            for (k, v) in attrs {
                e.str(k);
                e.str(v);
            }
        }
        OpKind::Exec(x) => {
            e.u8(1);
            e.strs(&x.args);
            e.strs(&x.env);
            e.str(&x.cwd);
            e.str(&x.user);
            e.str(&x.hostname);
            e.u8(match x.network {
                NetworkMode::None => 0,
                NetworkMode::Host => 1,
            });
            e.u8(match x.security {
                SecurityMode::Sandbox => 0,
                SecurityMode::Insecure => 1,
            });
            e.len(x.mounts.len());
            for m in &x.mounts {
                e.str(&m.dest);
                e.opt(&m.input, |e, r| e.op_ref(r));
                e.str(&m.selector);
                e.bool(m.readonly);
                e.opt(&m.output, |e, o| e.u32(*o));
                match &m.kind {
                    MountKind::Bind => e.u8(0),
                    MountKind::Cache(c) => {
                        e.u8(1);
                        e.str(&c.id);
                        e.u8(match c.sharing {
                            CacheSharing::Shared => 0,
                            CacheSharing::Private => 1,
                            CacheSharing::Locked => 2,
                        });
                    }
                    MountKind::Tmpfs(t) => {
                        e.u8(2);
                        e.u64(t.size);
                    }
                    MountKind::Secret(s) => {
                        e.u8(3);
                        e.str(&s.id);
                        e.u32(s.mode);
                        e.u32(s.uid);
                        e.u32(s.gid);
                        e.bool(s.optional);
                    }
                    MountKind::Ssh(id) => {
                        e.u8(4);
                        e.str(id);
                    }
                }
            }
        }
        OpKind::File(f) => {
            e.u8(2);
            e.opt(&f.base, |e, r| e.op_ref(r));
            e.len(f.actions.len());
            for a in &f.actions {
                match a {
                    FileAction::Copy(c) => {
                        e.u8(0);
                        e.op_ref(&c.src);
                        e.str(&c.src_path);
                        e.str(&c.dest);
                        e.chown(&c.owner);
                        e.opt_str(&c.mode);
                        e.bool(c.follow_symlinks);
                        e.bool(c.dir_contents_only);
                        e.bool(c.create_dest_path);
                        e.bool(c.allow_wildcard);
                        e.bool(c.allow_empty_wildcard);
                        e.strs(&c.include_patterns);
                        e.strs(&c.exclude_patterns);
                        e.bool(c.attempt_unpack);
                        e.opt_i64(&c.timestamp);
                    }
                    FileAction::Mkdir(m) => {
                        e.u8(1);
                        e.str(&m.path);
                        e.u32(m.mode);
                        e.bool(m.make_parents);
                        e.chown(&m.owner);
                        e.opt_i64(&m.timestamp);
                    }
                    FileAction::Mkfile(m) => {
                        e.u8(2);
                        e.str(&m.path);
                        e.u32(m.mode);
                        e.bytes(&m.data);
                        e.chown(&m.owner);
                        e.opt_i64(&m.timestamp);
                    }
                    FileAction::Rm(r) => {
                        e.u8(3);
                        e.str(&r.path);
                        e.bool(r.allow_not_found);
                        e.bool(r.allow_wildcard);
                    }
                    FileAction::Symlink(s) => {
                        e.u8(4);
                        e.str(&s.target);
                        e.str(&s.path);
                        e.chown(&s.owner);
                        e.opt_i64(&s.timestamp);
                    }
                }
            }
        }
        OpKind::Merge(m) => {
            e.u8(3);
            e.len(m.inputs.len());
            for r in &m.inputs {
                e.op_ref(r);
            }
        }
        OpKind::Diff(d) => {
            e.u8(4);
            e.opt(&d.lower, |e, r| e.op_ref(r));
            e.op_ref(&d.upper);
        }
    }
    e.opt(&op.platform, |e, p| {
        e.str(&p.os);
        e.str(&p.architecture);
        e.opt_str(&p.variant);
    });
}

/// Shown in errors: where an op comes from.
pub(crate) fn context_of(op: &Op) -> OpContext {
    OpContext {
        description: op.description.clone(),
        location: op.location.clone(),
    }
}
