//! Caps on what a frontend may ask for, and the path check every read goes through.
//!
//! A frontend chooses sizes (how much to read, how big a directory to list) and paths; each is
//! checked here before it reaches the engine, so a hostile frontend gets a clear error instead of
//! exhausting host memory or reading outside its result.

/// Most bytes one `read-file` returns (16 MiB): files the size of a Dockerfile or a lockfile fit
/// many times over; bigger reads must use ranges, so one call never allocates more than this.
pub const MAX_READ_BYTES: u64 = 16 * 1024 * 1024;

/// Most entries one `read-dir` returns: a frontend listing a context needs names, not a mirror
/// of `node_modules`; each entry costs ~100 bytes of host memory.
pub const MAX_DIR_ENTRIES: usize = 65_536;

/// Longest path a frontend may pass (bytes), as Linux's `PATH_MAX`.
pub const MAX_PATH_BYTES: usize = 4096;

/// Longest log line forwarded (bytes); longer lines are cut, not refused.
pub const MAX_LOG_LINE_BYTES: usize = 64 * 1024;

/// Most log bytes (stdout, stderr and `log`) forwarded per build; the rest is dropped with one
/// notice, so a chatty frontend cannot flood the user's terminal or the progress stream.
pub const MAX_LOG_BYTES_PER_BUILD: usize = 8 * 1024 * 1024;

/// Why a path from a frontend was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path leaves the result's root through `..`.
    #[error("path {path:?} escapes the result's root")]
    Escapes {
        /// The path as given.
        path: String,
    },
    /// The path contains a NUL byte.
    #[error("path {path:?} contains a NUL byte")]
    Nul {
        /// The path as given.
        path: String,
    },
    /// The path is longer than [`MAX_PATH_BYTES`].
    #[error("path of {len} bytes is longer than the limit of {MAX_PATH_BYTES} (MAX_PATH_BYTES)")]
    TooLong {
        /// Its length.
        len: usize,
    },
}

/// Normalises `path` lexically, relative to the result's root: `/a/./b/../c` → `a/c`, `/` → ``.
///
/// An absolute path means "from the result's root"; `..` may not climb above it.
pub fn normalize(path: &str) -> Result<String, PathError> {
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong { len: path.len() });
    }
    if path.contains('\0') {
        return Err(PathError::Nul {
            path: path.to_string(),
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::Escapes {
                        path: path.to_string(),
                    });
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_keeps_paths_inside() {
        assert_eq!(normalize("/etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(normalize("a/./b/../c/").unwrap(), "a/c");
        assert_eq!(normalize("/").unwrap(), "");
        assert_eq!(normalize("a/..").unwrap(), "");
    }

    #[test]
    fn normalize_refuses_escapes() {
        assert!(matches!(
            normalize("../../etc/passwd"),
            Err(PathError::Escapes { .. })
        ));
        assert!(matches!(
            normalize("/../etc/passwd"),
            Err(PathError::Escapes { .. })
        ));
        assert!(matches!(
            normalize("a/../../b"),
            Err(PathError::Escapes { .. })
        ));
        assert!(matches!(normalize("a\0b"), Err(PathError::Nul { .. })));
    }

    #[test]
    fn normalize_caps_length() {
        let ok = "a".repeat(MAX_PATH_BYTES);
        assert!(normalize(&ok).is_ok());
        let long = "a".repeat(MAX_PATH_BYTES + 1);
        assert_eq!(
            normalize(&long),
            Err(PathError::TooLong {
                len: MAX_PATH_BYTES + 1
            })
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let mut s = "héllo".to_string();
        truncate_utf8(&mut s, 2);
        assert_eq!(s, "h");
    }
}
