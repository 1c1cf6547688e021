//! `hoist`: build container images from the command line.
//!
//! A thin main: parse the flags ([`flags`]), resolve them into a build request, run it. A usage
//! error exits with 2, any other failure with 1, and a closed stdout (`hoist … | head`) is not an
//! error.

use std::io::Write as _;
use std::process::ExitCode;

mod build_cmd;
mod explain_out;
mod flags;
mod frontend_cmd;
mod gc_cmd;
mod progress;
mod remote;

fn main() -> ExitCode {
    let cli = match flags::parse(std::env::args_os()) {
        Ok(cli) => cli,
        // Prints the message (or help/version) and exits 2 for usage errors, 0 otherwise.
        Err(err) => err.exit(),
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) && stdout_reader_gone() {
                return ExitCode::SUCCESS;
            }
            eprintln!("hoist: {err:#}");
            if err.downcast_ref::<flags::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// True if the error comes from writing to a closed pipe.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// True if standard output is a pipe whose reader has gone (`hoist ... | head`): only then is
/// a broken pipe the reader's choice rather than a failure. A broken pipe anywhere else (the
/// connection to hoistd, say) is an error like any other.
fn stdout_reader_gone() -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)),
        Err(_) => false,
    }
}

/// Runs one parsed command line.
fn run(cli: flags::Cli) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        flags::Command::Version => {
            writeln!(stdout, "hoist {}", env!("CARGO_PKG_VERSION"))?;
        }
        flags::Command::Completion { shell } => {
            // Generated into memory: clap_complete panics on a write error such as a closed pipe.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut flags::command(), "hoist", &mut script);
            stdout.write_all(&script)?;
        }
        flags::Command::Du(du) => {
            let env = flags::Environment::from_process()?;
            let engine = cli.global.engine(&env)?;
            drop(stdout);
            return gc_cmd::du(engine, &du);
        }
        flags::Command::Prune(prune) => {
            let env = flags::Environment::from_process()?;
            let engine = cli.global.engine(&env)?;
            drop(stdout);
            return gc_cmd::prune(engine, &prune);
        }
        flags::Command::Frontend(frontend) => {
            drop(stdout);
            return frontend_cmd::run(frontend);
        }
        flags::Command::Build(build) => {
            let mut env = flags::Environment::from_process()?;
            let args = build.resolve(&cli.global, &mut env)?;
            drop(stdout);
            return build_cmd::run(args);
        }
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
