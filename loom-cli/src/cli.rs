//! The command line: what `loom --help` shows.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use loom_cli::settings::DEFAULT_FILE;

/// Loom's account commands: sign up, log in and out of a Loom server, and see who you are.
///
/// The login is kept under "auth" in the project's settings file
/// (dev-automation.config.json), next to the rest of your Loom settings, which
/// are left as they are.
#[derive(Debug, Parser)]
#[command(name = "loom", version, max_term_width = 100)]
#[command(after_help = "Examples:\n  loom register\n  loom login --server https://loom.example.com\n  loom whoami\n  \
                        curl -H \"Authorization: Bearer $(loom token)\" https://loom.example.com/users/me/\n  \
                        echo \"$PASSWORD\" | loom login --username ada@example.com --password-stdin\n\n\
                        Environment:\n  LOOM_SERVER  server URL (default: the one you logged in to, else http://127.0.0.1:8000)\n  \
                        LOOM_CONFIG  settings file (default: ./dev-automation.config.json)\n  \
                        LOOM_TOKEN   access token to use instead of the saved login (for CI)\n\n\
                        Timeouts: whoami gives up when the server has not answered within 10 seconds; login and \
                        register, for which the server hashes the password, wait up to 30 seconds.\n\n\
                        Exit status: 0 success, 1 failure, 2 usage error, 4 login required.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// The Loom server's URL [default: the saved login's server, else http://127.0.0.1:8000]
    #[arg(long, env = "LOOM_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,

    /// Allow plain http:// to a server that is not on this machine (credentials
    /// then cross the network readable by anyone on the way).
    #[arg(long, global = true)]
    pub insecure: bool,

    /// The settings file that keeps the login.
    #[arg(long, env = "LOOM_CONFIG", global = true, value_name = "PATH", default_value = DEFAULT_FILE)]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in and save the token in the settings file.
    ///
    /// Asks for the email and the password (hidden) on the terminal, even when
    /// output is piped. Example: loom login --server https://loom.example.com
    Login(LoginArgs),
    /// Log out: revoke the saved token on the server, then forget it.
    ///
    /// Removes only the login from the settings file; every other setting stays.
    /// The token is forgotten even when the server cannot be reached (loom says
    /// so). Example: loom logout --all
    Logout(LogoutArgs),
    /// Show which account the current token belongs to, and when the session expires.
    ///
    /// Asks the server, so it also tells whether the session is still valid.
    /// Example: loom whoami --json
    Whoami(WhoamiArgs),
    /// Print the access token alone, for scripts.
    ///
    /// Prints LOOM_TOKEN when it is set, else the saved login's token, without asking the
    /// server; exits 4 when there is none or it has expired.
    /// Example: curl -H "Authorization: Bearer $(loom token)" https://loom.example.com/users/me/
    Token,
    /// Print a shell completion script.
    ///
    /// Example: loom completions bash > ~/.local/share/bash-completion/completions/loom
    ///
    /// (zsh: loom completions zsh > "${fpath[1]}/_loom"; fish: loom completions fish >
    /// ~/.config/fish/completions/loom.fish)
    Completions(CompletionsArgs),
    /// Create an account on the server.
    ///
    /// Asks for the password twice when run on a terminal.
    /// Example: loom register --email ada@example.com
    Register(RegisterArgs),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The account's email (asked for when omitted).
    #[arg(long, short = 'u', value_name = "EMAIL")]
    pub username: Option<String>,

    /// Read the password from standard input (for scripts), instead of asking.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Print a JSON object (server, account, token source, expiry) instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Revoke every token of this account, on every machine, not only this one.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The new account's email (asked for when omitted).
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,

    /// Read the password from standard input (for scripts), instead of asking.
    #[arg(long)]
    pub password_stdin: bool,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
