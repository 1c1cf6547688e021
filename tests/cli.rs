//! The command line from the outside: version, completions, usage errors.

use crate::util::Dir;

#[test]
fn version_prints_the_package_version() {
    let dir = Dir::new("version_prints_the_package_version");
    let out = dir.command().arg("version").stdout();
    assert!(out.starts_with(&format!("hoist {}", env!("CARGO_PKG_VERSION"))), "{out}");
}

#[test]
fn completion_bash_names_build_flags() {
    let dir = Dir::new("completion_bash_names_build_flags");
    let out = dir.command().args(["completion", "bash"]).stdout();
    assert!(out.contains("--build-arg"), "{out}");
    assert!(out.contains("--build-context"), "{out}");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let dir = Dir::new("unknown_flag_is_a_usage_error");
    let err = dir.command().args(["build", "--no-such-flag", "."]).assert_exit(2);
    assert!(err.contains("--no-such-flag"), "{err}");
}

#[test]
fn bad_output_spec_is_a_usage_error() {
    let dir = Dir::new("bad_output_spec_is_a_usage_error");
    let err = dir.command().args(["build", "--output", "type=floppy,dest=x", "."]).assert_exit(2);
    assert!(err.contains("floppy"), "{err}");
}

#[test]
fn addr_reports_daemon_unavailable() {
    let dir = Dir::new("addr_reports_daemon_unavailable");
    dir.write_file("Dockerfile", "FROM scratch\n");
    let out = dir.command().args(["build", "--addr", "unix:///run/hoistd.sock", "."]).assert_err();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("daemon"), "{err}");
}
