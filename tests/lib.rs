//! End-to-end tests of hoist live in the `tests` integration-test binary (`tests/tests.rs`).
//!
//! This library is empty on purpose: Cargo needs one target besides the test to anchor the
//! package. The harness itself is `tests/util.rs`; see `docs/testing.md`.
