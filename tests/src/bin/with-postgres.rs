//! `with-postgres COMMAND…`: runs COMMAND with `LOOM_TEST_POSTGRES_URL` naming a
//! PostgreSQL server the PostgreSQL tests may create databases on.
//!
//! When the variable is set already, that server is used. Otherwise a throwaway
//! one is made from the installed binaries ([`loom_e2e::pg::PgServer`]), and
//! stopped and removed when COMMAND ends, whose exit code this returns.
//!
//! Without PostgreSQL binaries, COMMAND runs without the variable and a loud
//! line says the PostgreSQL tests did not run; under `CI=true` that is an error.

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
    if std::env::var_os(URL_VAR).is_some() {
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

fn status(mut command: Command) -> ExitCode {
    match command.status() {
        Ok(status) => ExitCode::from(status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1))),
        Err(error) => {
            eprintln!("error: cannot run {:?}: {error}", command.get_program());
            ExitCode::FAILURE
        }
    }
}
