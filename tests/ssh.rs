//! `RUN --mount=type=ssh` with `hoist build --ssh`: the client's ssh-agent socket is bound into
//! exactly the steps that mount it, `SSH_AUTH_SOCK` names it, and bad `--ssh` values are usage
//! errors.

use std::fs;
use std::os::unix::net::UnixListener;

use crate::util::{build_cmd, out_path, Dir};

const DOCKERFILE: &str = "FROM busybox\n\
    RUN --mount=type=ssh if test -S \"$SSH_AUTH_SOCK\"; then echo \"socket at $SSH_AUTH_SOCK\"; else echo \"no socket at $SSH_AUTH_SOCK\"; fi > /ssh\n\
    RUN ls /run/buildkit > /later 2>&1; echo \"[$SSH_AUTH_SOCK]\" >> /later\n";

#[test]
fn the_agent_socket_reaches_the_steps_that_mount_it() {
    let dir = Dir::new("ssh_agent_socket");
    // A socket standing for the agent: the step only checks that it is there.
    let socket = dir.join("agent.sock");
    let _agent = UnixListener::bind(&socket).expect("bind the agent socket");

    let dest = out_path(&dir, "with");
    build_cmd(&dir, DOCKERFILE)
        .arg("--ssh")
        .arg(format!("default={}", socket.display()))
        .arg("-o")
        .arg(format!("type=local,dest={}", dest.display()))
        .stdout();
    assert_eq!(
        fs::read_to_string(dest.join("ssh")).unwrap(),
        "socket at /run/buildkit/ssh_agent.0\n"
    );
    let later = fs::read_to_string(dest.join("later")).unwrap();
    assert!(later.ends_with("[]\n"), "a step without the mount has no SSH_AUTH_SOCK: {later}");
    assert!(!later.contains("ssh_agent"), "nor the socket: {later}");

    // Without --ssh the mount is left out (not `required`, as in BuildKit); the step still runs.
    let dest = out_path(&dir, "without");
    build_cmd(&dir, DOCKERFILE)
        .arg("--no-cache")
        .arg("-o")
        .arg(format!("type=local,dest={}", dest.display()))
        .stdout();
    assert_eq!(
        fs::read_to_string(dest.join("ssh")).unwrap(),
        "no socket at /run/buildkit/ssh_agent.0\n"
    );
}

#[test]
fn bad_ssh_values_are_usage_errors() {
    let dir = Dir::new("ssh_usage_errors");
    dir.write_file("key", "not a socket\n");
    let key = dir.join("key");
    let out = build_cmd(&dir, DOCKERFILE)
        .arg("--ssh")
        .arg(format!("default={}", key.display()))
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a socket") && stderr.contains("ssh-add"), "{stderr}");

    let mut cmd = build_cmd(&dir, DOCKERFILE);
    cmd.cmd().env_remove("SSH_AUTH_SOCK");
    let out = cmd.arg("--ssh").arg("default").output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SSH_AUTH_SOCK is not set"), "{stderr}");
}
