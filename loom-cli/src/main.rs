//! `loom`, the Loom developer-automation CLI. This crate provides its account
//! commands: `loom register`, `loom login`, `loom whoami` and `loom logout`,
//! which keep the login in the project's `dev-automation.config.json`, and
//! `loom token` and `loom completions` for scripts and shells.

mod cli;
mod commands;
mod failure;
mod prompt;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report();
            ExitCode::from(failure.exit_code())
        }
    }
}
