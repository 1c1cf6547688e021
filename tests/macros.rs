//! Assertion macros for the end-to-end tests.

/// Asserts two texts are equal; on failure prints both in full and a line diff
/// (`-` only expected, `+` only got), which reads better than `assert_eq!` on long output.
#[macro_export]
macro_rules! eqnice {
    ($expected:expr, $got:expr $(,)?) => {{
        let expected: &str = &*$expected;
        let got: &str = &*$got;
        if expected != got {
            panic!(
                "\ntexts differ!\n\nexpected:\n{}\n\ngot:\n{}\n\ndiff (-expected +got):\n{}",
                expected,
                got,
                $crate::util::line_diff(expected, got),
            );
        }
    }};
}
