//! `with-postgres COMMAND…`: runs COMMAND with `LOOM_TEST_POSTGRES_URL` naming a
//! PostgreSQL server the PostgreSQL tests may create databases on.
//!
//! When the variable is set already, that server is used. Otherwise a throwaway
//! one is made from the installed binaries ([`loom_e2e::pg::PgServer`]), and
//! stopped and removed when COMMAND ends, whose exit code this returns.
//!
//! Without PostgreSQL binaries, COMMAND runs without the variable (`just test` then
//! leaves its PostgreSQL pass out) and the PostgreSQL tests are listed as not run; under
//! `CI=true` that is an error.
//!
//! After COMMAND, every test that did not run on this machine is listed, with why
//! ([`loom_e2e::skips`]), outside the test harness's captured output.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use loom_e2e::POSTGRES_URL_VAR as URL_VAR;
use loom_e2e::pg::{self, PgServer};

fn main() -> ExitCode {
    let command: Vec<String> = std::env::args().skip(1).collect();
    let Some((program, args)) = command.split_first() else {
        eprintln!("usage: with-postgres COMMAND [ARGS…]");
        return ExitCode::from(2);
    };
    let mut run = Command::new(program);
    run.args(args);
    let binaries = std::env::current_exe().ok().and_then(|exe| exe.parent().map(PathBuf::from));
    if let Some(dir) = &binaries {
        loom_e2e::skips::clear(dir);
    }
    let code = with_server(run);
    if let Some(dir) = &binaries {
        report(&loom_e2e::skips::read(dir));
    }
    code
}

/// Runs `run` with a PostgreSQL server named in its environment when there can be one.
fn with_server(mut run: Command) -> ExitCode {
    if std::env::var_os(URL_VAR).is_some_and(|url| !url.is_empty()) {
        return status(run);
    }
    let Some(bin) = pg::binaries() else {
        if loom_e2e::in_ci() {
            eprintln!("error: PostgreSQL is not installed (no initdb found), and CI must run the PostgreSQL tests");
            return ExitCode::FAILURE;
        }
        eprintln!("\n!!! PostgreSQL is not installed: the PostgreSQL tests will NOT run (install `postgresql`). !!!\n");
        return status(run);
    };
    let server = match PgServer::start(&bin) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: cannot start a throwaway PostgreSQL server: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("with-postgres: a throwaway PostgreSQL server listens on {}", server.url);
    run.env(URL_VAR, &server.url);
    let code = status(run);
    drop(server);
    code
}

/// Prints the tests that did not run, by reason, where the person running the suites sees it.
fn report(skipped: &[(String, Vec<String>)]) {
    if skipped.is_empty() {
        return;
    }
    let count: usize = skipped.iter().map(|(_, tests)| tests.len()).sum();
    let tests = if count == 1 { "test did" } else { "tests did" };
    eprintln!("\n!!! {count} {tests} NOT run on this machine (they passed without checking anything):");
    for (reason, tests) in skipped {
        eprintln!("!!!   {} because {reason}: {}", tests.len(), tests.join(", "));
    }
    eprintln!("!!! CI installs what they need (.ci/run); see the README.\n");
}

fn status(mut command: Command) -> ExitCode {
    match command.status() {
        Ok(status) => ExitCode::from(status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1))),
        Err(error) => {
            eprintln!("error: cannot run {:?}: {error}", command.get_program());
            ExitCode::FAILURE
        }
    }
}
