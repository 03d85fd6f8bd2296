//! The commands, and what they share: finding the server, the settings file and the token.

mod login;
mod logout;
mod register;
mod token;
mod whoami;

use std::io::Write;

use std::path::PathBuf;

use loom_cli::api::{ApiError, normalize_server};
use loom_cli::settings::{SettingsFile, StoredLogin};
use secrecy::{ExposeSecret, SecretString};
use std::time::SystemTime;

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
    let mut settings = SettingsFile::load(&cli.config)?;
    let stored = settings.login()?;
    let server = resolve_server(cli.server.as_deref(), stored.as_ref())?;
    match cli.command {
        Command::Login(args) => login::run(&mut settings, &server, cli.insecure, args).await,
        Command::Logout(args) => logout::run(&mut settings, stored.as_ref(), cli.insecure, args).await,
        Command::Whoami(args) => whoami::run(&settings, &server, cli.insecure, stored.as_ref(), args).await,
        Command::Token => token::run(&settings, &server, stored.as_ref()),
        Command::Register(args) => register::run(&server, cli.insecure, args).await,
        Command::Completions(_) => unreachable!("answered above"),
    }
}

/// `--server` (or `LOOM_SERVER`), else the saved login's server, else the default.
fn resolve_server(given: Option<&str>, stored: Option<&StoredLogin>) -> Result<String, Failure> {
    let server = given.or(stored.map(|s| s.server.as_str())).unwrap_or(DEFAULT_SERVER);
    normalize_server(server).map_err(|e| Failure::Usage(format!("{e}")))
}

/// `LOOM_TOKEN`, when set to something, without the whitespace around it (secret stores and
/// `$(cat file)` add line breaks; a token never contains whitespace, RFC 7519 §7.1).
fn token_from_env() -> Option<String> {
    std::env::var(TOKEN_ENV).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// What is wrong with `token` as a bearer credential (RFC 6750 §2.1's `b64token`: letters,
/// digits, `-._~+/`, then `=`s), if anything.
fn token_problem(token: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/');
    let body = token.trim_end_matches('=');
    let (at, bad) = body.char_indices().find(|(_, c)| !allowed(*c))?;
    let what = match bad {
        c if c.is_whitespace() => "whitespace".to_owned(),
        c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
        c => format!("{c:?}"),
    };
    Some(format!("it contains {what} at character {}, which no token has", body[..at].chars().count() + 1))
}

/// Where the token a command sends comes from, which decides what the user
/// should do when the server refuses it.
enum TokenSource {
    Env,
    Saved(PathBuf),
}

impl TokenSource {
    /// `LOOM_TOKEN`, else the saved login for `server`; exit 4 when there is neither.
    fn pick(
        settings: &SettingsFile,
        server: &str,
        stored: Option<&StoredLogin>,
    ) -> Result<(SecretString, Self), Failure> {
        let (token, source) = match (token_from_env(), stored) {
            (Some(token), _) => (token, Self::Env),
            (None, Some(login)) if login.server == server => {
                (login.access_token.trim().to_owned(), Self::Saved(settings.path().to_owned()))
            }
            (None, _) => return Err(Failure::LoginRequired("Not logged in. Run 'loom login'.".into())),
        };
        if let Some(problem) = token_problem(&token) {
            return Err(Failure::LoginRequired(match source {
                Self::Env => format!("{TOKEN_ENV} does not hold a usable token: {problem}. Set it to the token alone."),
                Self::Saved(ref path) => {
                    format!("The login saved in {} holds no usable token: {problem}. Run 'loom login'.", path.display())
                }
            }));
        }
        Ok((SecretString::from(token), source))
    }

    /// The token's expiry, when it has certainly passed: the user must log in again (exit 4).
    fn refuse_expired(&self, token: &SecretString, server: &str) -> Result<Option<SystemTime>, Failure> {
        let expires = loom_cli::session::expiry(token.expose_secret());
        let now = SystemTime::now();
        match expires {
            Some(at) if at <= now => {
                let ago = loom_cli::session::relative(at, now);
                Err(Failure::LoginRequired(match self {
                    Self::Env => {
                        format!("The token in {TOKEN_ENV} expired {ago}. Set it to a current token, or unset it.")
                    }
                    Self::Saved(_) => format!("Your saved login for {server} expired {ago}. Run 'loom login'."),
                }))
            }
            _ => Ok(expires),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Env => TOKEN_ENV.to_owned(),
            Self::Saved(path) => path.display().to_string(),
        }
    }

    /// `error`, told in terms of this source when the server refused the token.
    fn explain(&self, error: ApiError) -> Failure {
        let ApiError::TokenRefused { server } = &error else {
            return error.into();
        };
        Failure::LoginRequired(match self {
            Self::Env => format!(
                "The token in {TOKEN_ENV} was refused by {server}: it has expired, was revoked, or was not issued \
                 there. Set {TOKEN_ENV} to a current token, or unset it to use the login saved by 'loom login'."
            ),
            Self::Saved(_) => format!("Your saved login for {server} has expired or was revoked. Run 'loom login'."),
        })
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
