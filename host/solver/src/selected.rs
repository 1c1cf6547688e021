//! Content-based keys for the paths an op selects from an input (BuildKit's content-based cache
//! keys for selectors).
//!
//! A `COPY a.txt /` reads one file of the build context. Keying it on the context's own cache key
//! (a checksum of the whole context) reruns it whenever any file of the context changes. Instead
//! the executor may say, per input position of an op, "this op reads only these paths of that
//! input, and their content checksum is C" ([`SelectedContent`]); the solver then uses
//! [`selected_key`]`(C)` in place of the input's cache key when forming the op's key. What the
//! op selects (paths, patterns, follow flags) is already part of the op's digest, so the checksum
//! alone stands for the input.

use hoist_llb::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::CacheKey;

/// Version tag hashed first into every selected-content key; bump it when the formula changes.
pub const SELECTED_KEY_VERSION: &[u8] = b"hoist.solver.selected/v1\0";

/// What an op reads from one of its inputs, and the content checksum of exactly that.
///
/// Computed by [`OpExecutor::selected_content`](crate::OpExecutor::selected_content) before any
/// cache lookup; the solver keeps one `Option<SelectedContent>` per `Op::inputs()` position of
/// every vertex it keys (see [`SolveResult::selected`](crate::SolveResult::selected)). Two solves
/// whose selected checksums differ for a vertex got different keys for it *because the content of
/// those paths changed*; the paths say which.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SelectedContent {
    /// The paths of the input the op reads, as the op names them (e.g. `/a.txt`, `/src/*.rs`);
    /// for messages only, not part of the key.
    pub paths: Vec<String>,
    /// `sha256:<hex>` tree hash of exactly those paths in the input (contents, modes, symlink
    /// targets, hardlinks); this is what the key is made of.
    pub checksum: String,
}

/// The key standing for an input in its consumer's cache key when the consumer reads only
/// `selected` of it: `sha256(SELECTED_KEY_VERSION ‖ u64 len ‖ checksum)`.
pub fn selected_key(selected: &SelectedContent) -> CacheKey {
    let mut h = Sha256::new();
    h.update(SELECTED_KEY_VERSION);
    h.update(
        u64::try_from(selected.checksum.len())
            .unwrap_or(u64::MAX)
            .to_le_bytes(),
    );
    h.update(selected.checksum.as_bytes());
    CacheKey(Digest::from_bytes(h.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_checksum_not_on_paths() {
        let a = SelectedContent {
            paths: vec!["/a.txt".into()],
            checksum: "sha256:11".into(),
        };
        let renamed = SelectedContent {
            paths: vec!["/b.txt".into()],
            ..a.clone()
        };
        let changed = SelectedContent {
            checksum: "sha256:12".into(),
            ..a.clone()
        };
        assert_eq!(selected_key(&a), selected_key(&renamed));
        assert_ne!(selected_key(&a), selected_key(&changed));
    }
}
