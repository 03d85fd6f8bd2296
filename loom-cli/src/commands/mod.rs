//! The commands, and what they share: finding the server, the settings file and the token.

mod auth;
mod context;
mod git;
mod login;
mod logout;
mod passwd;
mod register;
mod sessions;
mod token;
mod tokens;
mod two_factor;
mod whoami;

use std::io::Write;

use loom_cli::credentials::{self, CredentialError};
use loom_cli::known::KnownServers;
use loom_cli::settings::SettingsFile;
use secrecy::SecretString;

use auth::Context;
pub use context::token_from_env;
use context::{Server, TokenSource, not_logged_in};

use crate::cli::{Cli, Command};
use crate::failure::Failure;
use crate::prompt;

/// Where a server URL is taken from when nothing is said.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8000";
/// The environment variable that overrides the saved token.
pub const TOKEN_ENV: &str = "LOOM_TOKEN";

pub async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Completions(args) = &cli.command {
        // Needs no settings, server or token: works anywhere.
        use clap::CommandFactory;
        clap_complete::generate(args.shell, &mut Cli::command(), "loom", &mut std::io::stdout());
        return Ok(());
    }
    // Load first: a settings file loom cannot read stops every command before
    // any prompt, and is never written.
    let settings = SettingsFile::load(&cli.config)?;
    let kept_in = credentials::kept_in(&settings);
    // A keyring that cannot be read (or holds something unreadable) stops only what needs the
    // saved login: not `LOOM_TOKEN`, another server, a new login or a registration.
    let (stored, unread) = match credentials::read(&settings) {
        Ok(kept) => (kept.map(|kept| kept.login), None),
        Err(error @ (CredentialError::Keyring { .. } | CredentialError::Garbled { .. })) => (None, Some(error)),
        Err(error) => return Err(error.into()),
    };
    // A login the keyring no longer holds still names its server.
    let saved_server =
        stored.as_ref().map(|login| login.server.clone()).or(credentials::marker(&settings).map(|m| m.server));
    let server = Server::resolve(cli.server.as_deref(), saved_server.as_deref(), &settings)?;
    let known = KnownServers::load()?;
    let mut context = Context { settings, stored, unread, kept_in, server, known, insecure: cli.insecure };
    match cli.command {
        Command::Login(args) => login::run(&mut context, args).await,
        Command::Logout(args) => logout::run(&mut context, args).await,
        Command::Whoami(args) => whoami::run(&mut context, args).await,
        Command::Token => token::run(&mut context).await,
        Command::Sessions(args) => sessions::run(&mut context, args).await,
        Command::Tokens(args) => tokens::run(&mut context, args).await,
        Command::Passwd(args) => passwd::run(&mut context, args).await,
        Command::TwoFactor(args) => two_factor::run(&mut context, args).await,
        Command::Register(args) => register::run(&context, args).await,
        Command::Completions(_) => unreachable!("answered above"),
    }
}

/// The account name to use: `given` (from `flag`) without surrounding whitespace, else asked
/// for on the terminal (where the answer is trimmed alike).
fn email_or_ask(given: Option<String>, flag: &str, password_from_stdin: bool) -> Result<String, Failure> {
    let answer = match given {
        Some(given) => given.trim().to_owned(),
        None => match prompt::line("Email: ").map_err(|e| Failure::failed(format!("cannot read the email: {e}")))? {
            Some(answer) => answer,
            None if password_from_stdin => {
                return Err(Failure::Usage(format!(
                    "--password-stdin needs {flag} when there is no terminal to ask for the email"
                )));
            }
            None => {
                return Err(Failure::Usage(format!(
                    "there is no terminal to ask for the email; use {flag} and --password-stdin"
                )));
            }
        },
    };
    if answer.is_empty() {
        return Err(Failure::Usage(format!("no email given ({flag} is empty)")));
    }
    Ok(answer)
}

/// The password from standard input (`from_stdin`), else asked for on the terminal without
/// echoing it; in its one Unicode spelling ([`loom_cli::password::normalize`]).
fn read_password(from_stdin: bool, question: &str) -> Result<SecretString, Failure> {
    let password = if from_stdin {
        prompt::password_from_stdin().map_err(Failure::failed)?
    } else {
        prompt::password(question).map_err(|e| Failure::failed(format!("cannot read the password: {e}")))?.ok_or_else(
            || Failure::Usage("there is no terminal to ask for the password; use --password-stdin".into()),
        )?
    };
    Ok(loom_cli::password::normalize(&password))
}

/// Prints a result line; a closed stdout (`loom whoami | head -0`) is not an error.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Prints a warning on stderr.
fn warn(line: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {line}");
}
