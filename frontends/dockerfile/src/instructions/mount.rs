//! `RUN --mount=...` specifications: bind, cache, tmpfs, secret and ssh mounts.
//!
//! A mount flag value is a CSV list of `key=value` fields (and a few bare
//! keys like `ro`). Values may contain build-arg references, so the
//! instruction layer only checks the structure (known keys, valid type) and
//! keeps the raw text; the converter calls [`parse_mount`] with its variable
//! expander to get a typed [`Mount`].

use crate::parser::ErrorKind;

/// The kind of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MountType {
    /// A read-only (by default) view of a stage, image or context.
    Bind,
    /// A persistent cache directory.
    Cache,
    /// An in-memory filesystem.
    Tmpfs,
    /// A build secret as a file or environment variable.
    Secret,
    /// An SSH agent socket.
    Ssh,
}

impl MountType {
    fn parse(value: &str) -> Option<MountType> {
        Some(match value.to_ascii_lowercase().as_str() {
            "bind" => MountType::Bind,
            "cache" => MountType::Cache,
            "tmpfs" => MountType::Tmpfs,
            "secret" => MountType::Secret,
            "ssh" => MountType::Ssh,
            _ => return None,
        })
    }

    /// The type's name as written in a mount flag.
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheSharing {
    /// Concurrent writers share the directory.
    Shared,
    /// Each writer gets its own copy.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// A typed RUN mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount kind.
    pub kind: MountType,
    /// The stage, image or named context to mount from (`from=`).
    pub from: Option<String>,
    /// The path inside `from`, or the secret/ssh id alias (`source=`/`src=`).
    pub source: Option<String>,
    /// Where to mount inside the container (`target=`/`dst=`/`destination=`).
    pub target: Option<String>,
    /// Whether the mount is read-only (type-dependent default).
    pub read_only: bool,
    /// Cache, secret or ssh id (`id=`).
    pub id: Option<String>,
    /// Cache sharing mode (`sharing=`).
    pub sharing: Option<CacheSharing>,
    /// Whether a missing secret/ssh agent fails the build (`required`).
    pub required: bool,
    /// tmpfs size limit in bytes (`size=`).
    pub size_limit: Option<u64>,
    /// File mode for cache/secret/ssh (`mode=`, octal).
    pub mode: Option<u32>,
    /// Owner uid for cache/secret/ssh (`uid=`).
    pub uid: Option<u32>,
    /// Owner gid for cache/secret/ssh (`gid=`).
    pub gid: Option<u32>,
    /// Environment variable to expose a secret as (`env=`).
    pub env: Option<String>,
}

/// Expands build-arg references in one mount value.
pub type MountExpander<'a> = dyn FnMut(&str) -> Result<String, String> + 'a;

/// Parses a mount flag value, expanding each field value with `expand`.
pub fn parse_mount(spec: &str, expand: &mut MountExpander<'_>) -> Result<Mount, ErrorKind> {
    parse_mount_fields(spec, Some(expand))
}

/// Checks a mount flag value's structure without evaluating its values.
pub(crate) fn check_mount_syntax(spec: &str) -> Result<(), ErrorKind> {
    parse_mount_fields(spec, None).map(|_| ())
}

fn parse_mount_fields(
    spec: &str,
    mut expand: Option<&mut MountExpander<'_>>,
) -> Result<Mount, ErrorKind> {
    let invalid = |reason: String| ErrorKind::InvalidMount {
        spec: spec.to_string(),
        reason,
    };
    let fields = split_csv(spec).map_err(invalid)?;
    let check_only = expand.is_none();
    let mut mount = empty_mount(mount_type(&fields).map_err(invalid)?);
    let mut read_only_set = false;
    for field in &fields {
        let Some((key, value)) = field.split_once('=') else {
            read_only_set |= apply_bare_key(&mut mount, field).map_err(invalid)?;
            continue;
        };
        let key = key.to_ascii_lowercase();
        if key == "type" {
            continue;
        }
        let Some(expand) = expand.as_deref_mut() else {
            check_known_key(&key, field).map_err(invalid)?;
            continue;
        };
        let value = expand(value).map_err(invalid)?;
        read_only_set |= apply_field(&mut mount, &key, value, field).map_err(invalid)?;
    }
    if !read_only_set {
        mount.read_only = !matches!(mount.kind, MountType::Cache | MountType::Tmpfs);
    }
    if !check_only {
        validate(&mount).map_err(invalid)?;
    }
    Ok(mount)
}

fn empty_mount(kind: MountType) -> Mount {
    Mount {
        kind,
        from: None,
        source: None,
        target: None,
        read_only: false,
        id: None,
        sharing: None,
        required: false,
        size_limit: None,
        mode: None,
        uid: None,
        gid: None,
        env: None,
    }
}

/// The `type=` field (default bind).
fn mount_type(fields: &[String]) -> Result<MountType, String> {
    let mut kind = MountType::Bind;
    for field in fields {
        if let Some((key, value)) = field.split_once('=') {
            if key.eq_ignore_ascii_case("type") {
                kind = MountType::parse(value)
                    .ok_or_else(|| format!("unsupported mount type {value:?}"))?;
            }
        }
    }
    Ok(kind)
}

/// Applies a key without `=value`; returns whether it set read-only-ness.
fn apply_bare_key(mount: &mut Mount, field: &str) -> Result<bool, String> {
    match field.to_ascii_lowercase().as_str() {
        "readonly" | "ro" => mount.read_only = true,
        "readwrite" | "rw" => mount.read_only = false,
        "required" if matches!(mount.kind, MountType::Secret | MountType::Ssh) => {
            mount.required = true;
            return Ok(false);
        }
        "required" => {
            return Err(format!(
                "unexpected key 'required' for mount type '{}'",
                mount.kind.as_str()
            ))
        }
        _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
    }
    Ok(true)
}

const KNOWN_KEYS: [&str; 17] = [
    "from",
    "source",
    "src",
    "target",
    "dst",
    "destination",
    "dest",
    "readonly",
    "ro",
    "readwrite",
    "rw",
    "required",
    "id",
    "sharing",
    "size",
    "mode",
    "uid",
];

fn check_known_key(key: &str, field: &str) -> Result<(), String> {
    if KNOWN_KEYS.contains(&key) || key == "gid" || key == "env" {
        Ok(())
    } else {
        Err(format!("unexpected key '{key}' in '{field}'"))
    }
}

/// Applies one `key=value` field; returns whether it set read-only-ness.
fn apply_field(mount: &mut Mount, key: &str, value: String, field: &str) -> Result<bool, String> {
    match key {
        "from" => mount.from = Some(value),
        "source" | "src" => mount.source = Some(value),
        "target" | "dst" | "destination" | "dest" => mount.target = Some(value),
        "readonly" | "ro" => {
            mount.read_only = parse_bool(key, &value)?;
            return Ok(true);
        }
        "readwrite" | "rw" => {
            mount.read_only = !parse_bool(key, &value)?;
            return Ok(true);
        }
        "required" => mount.required = parse_bool(key, &value)?,
        "id" => mount.id = Some(value),
        "sharing" => mount.sharing = Some(parse_sharing(&value)?),
        "size" if mount.kind == MountType::Tmpfs => mount.size_limit = Some(parse_size(&value)?),
        "size" => return Err("size parameter is only supported for tmpfs".into()),
        "mode" => mount.mode = Some(parse_u32(key, &value, 8)?),
        "uid" => mount.uid = Some(parse_u32(key, &value, 10)?),
        "gid" => mount.gid = Some(parse_u32(key, &value, 10)?),
        "env" => mount.env = Some(value),
        _ => return Err(format!("unexpected key '{key}' in '{field}'")),
    }
    Ok(false)
}

fn validate(mount: &Mount) -> Result<(), String> {
    let file_info_allowed = matches!(
        mount.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info_allowed && (mount.mode.is_some() || mount.uid.is_some() || mount.gid.is_some()) {
        return Err(format!(
            "mode/uid/gid not allowed for {:?} type mounts",
            mount.kind.as_str()
        ));
    }
    if mount.sharing.is_some() && mount.kind != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            mount.kind.as_str()
        ));
    }
    if mount.env.is_some() && mount.kind != MountType::Secret {
        return Err("env is only supported for secret mounts".into());
    }
    if mount.kind == MountType::Tmpfs && mount.from.is_some() {
        return Err("'from' is not supported on tmpfs".into());
    }
    if mount.kind == MountType::Secret {
        validate_secret(mount)?;
    }
    Ok(())
}

fn validate_secret(mount: &Mount) -> Result<(), String> {
    if mount.from.is_some() {
        return Err("secret mount should not have a from".into());
    }
    let unnamed = mount.source.is_none() && mount.target.is_none() && mount.id.is_none();
    if unnamed && mount.env.is_none() {
        return Err("invalid secret mount. one of source, target required".into());
    }
    if mount.source.is_some() && mount.id.is_some() {
        return Err("both source and id can't be set".into());
    }
    Ok(())
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("invalid value for {key}: {value}")),
    }
}

fn parse_sharing(value: &str) -> Result<CacheSharing, String> {
    match value.to_ascii_lowercase().as_str() {
        "shared" => Ok(CacheSharing::Shared),
        "private" => Ok(CacheSharing::Private),
        "locked" => Ok(CacheSharing::Locked),
        _ => Err(format!("unsupported sharing value {value:?}")),
    }
}

fn parse_u32(key: &str, value: &str, radix: u32) -> Result<u32, String> {
    u32::from_str_radix(value, radix).map_err(|_| format!("failed to parse {key} {value:?}"))
}

/// Parses a memory size like `64m`, `1.5g`, `512KiB` (binary multiples, as Docker's `RAMInBytes`).
fn parse_size(value: &str) -> Result<u64, String> {
    let bad = || format!("invalid size: {value:?}");
    let number_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(number_end);
    let amount: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(bad()),
    };
    let bytes = amount * 1024f64.powi(power);
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Splits a CSV record (RFC 4180 quoting, `""` for a literal quote).
fn split_csv(record: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = record.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err("extraneous or missing \" in quoted-field".into());
            }
        } else {
            while let Some(&c) = chars.peek().filter(|&&c| c != ',') {
                if c == '"' {
                    return Err("bare \" in non-quoted-field".into());
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Result<Mount, ErrorKind> {
        parse_mount(spec, &mut |v: &str| Ok(v.to_string()))
    }

    #[test]
    fn parses_a_cache_mount() {
        let m =
            parse("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.sharing, Some(CacheSharing::Locked));
        assert_eq!(m.mode, Some(0o755));
        assert!(!m.read_only);
    }

    #[test]
    fn bind_defaults_to_read_only() {
        let m = parse("target=/src,from=build,source=/out").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.read_only);
        assert!(!parse("target=/src,rw").unwrap().read_only);
    }

    #[test]
    fn secrets_and_tmpfs() {
        let m = parse("type=secret,id=tok,env=TOKEN,required").unwrap();
        assert!(m.required);
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        assert!(parse("type=secret").is_err());
        assert_eq!(
            parse("type=tmpfs,target=/t,size=64m").unwrap().size_limit,
            Some(64 << 20)
        );
        assert!(parse("type=bind,target=/t,size=1m").is_err());
    }

    #[test]
    fn rejects_unknown_types_and_keys() {
        assert!(parse("type=nfs,target=/x").is_err());
        assert!(parse("target=/x,color=red").is_err());
        assert!(check_mount_syntax("type=cache,target=$DIR,uid=$UID").is_ok());
        assert!(check_mount_syntax("type=cache,colour=$X").is_err());
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(split_csv("a,\"b,c\",d").unwrap(), ["a", "b,c", "d"]);
        assert!(split_csv("a\"b").is_err());
    }
}
