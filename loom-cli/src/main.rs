//! `loom`, the Loom developer-automation CLI. This crate provides its account
//! commands: `loom register`, `loom login`, `loom whoami`, `loom sessions`,
//! `loom passwd` and `loom logout`, which keep the login in the project's
//! `dev-automation.config.json` and renew it by themselves, and `loom token`
//! and `loom completions` for scripts and shells.

mod cli;
mod commands;
mod failure;
mod prompt;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    unset_empty_settings();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `LOOM_SERVER=` or `LOOM_CONFIG=` (set to nothing) counts as unset, as shells and most tools
/// read it, rather than as an invalid value.
fn unset_empty_settings() {
    for name in ["LOOM_SERVER", "LOOM_CONFIG"] {
        if std::env::var_os(name).is_some_and(|value| value.is_empty()) {
            // SAFETY: called first thing in `main`, before any other thread exists.
            unsafe { std::env::remove_var(name) };
        }
    }
}

async fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report();
            ExitCode::from(failure.exit_code())
        }
    }
}
