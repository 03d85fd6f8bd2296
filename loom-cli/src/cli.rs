//! The command line: what `loom --help` shows.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use loom_cli::credentials::CredentialStore;
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
                        LOOM_TOKEN   access token, or personal access token (loom_pat_...), to use instead of the \
                        saved login (for CI; sent only to a server named by --server or LOOM_SERVER)\n\n\
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
    /// Log out: end the session on the server (its refresh token too), then forget it.
    ///
    /// Removes only the login from the settings file; every other setting stays.
    /// The login is forgotten even when the server cannot be reached (loom says
    /// so). Example: loom logout --all
    Logout(LogoutArgs),
    /// Show which account the current login belongs to, and when its session ends.
    ///
    /// Asks the server, so it also tells whether the session is still valid.
    /// Example: loom whoami --json
    Whoami(WhoamiArgs),
    /// Print a current access token alone, for scripts.
    ///
    /// Prints LOOM_TOKEN when it is set, else the saved login's token, renewed first when it
    /// has expired or is about to; exits 4 when there is none or the session has ended.
    /// Example: curl -H "Authorization: Bearer $(loom token)" https://loom.example.com/users/me/
    Token,
    /// List your live sessions (one per login), or end one.
    ///
    /// Example: loom sessions; loom sessions revoke 3f9a1c2b5d7e9f0a1b2c3d4e5f607182
    Sessions(SessionsArgs),
    /// Make, list and revoke personal access tokens, for CI and other machines.
    ///
    /// A token is made with your password, shown once, and works as LOOM_TOKEN (loom trades it
    /// for short access tokens) or with 'loom login --with-token'. Password changes and
    /// 'logout --all' end sessions but leave tokens: revoke them here.
    /// Example: LOOM_TOKEN=$(loom tokens create --name ci --expires 90d)
    Tokens(TokensArgs),
    /// Turn two-factor login on or off, or renew its recovery codes.
    ///
    /// With it on, 'loom login' asks for a code from your authenticator app after the password.
    /// Example: loom 2fa enable
    #[command(name = "2fa")]
    TwoFactor(TwoFactorArgs),
    /// Change your password; every other session of the account ends.
    ///
    /// Asks for the current password and the new one (twice, hidden), or reads them as two
    /// lines from standard input with --password-stdin.
    /// Example: printf '%s\n%s\n' "$OLD" "$NEW" | loom passwd --password-stdin
    Passwd(PasswdArgs),
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

    /// Read a personal access token (loom_pat_...) from standard input and keep it as this
    /// machine's login, instead of a password login (for CI runners and servers).
    #[arg(long, conflicts_with_all = ["username", "password_stdin"])]
    pub with_token: bool,

    /// For an account with two-factor login: the code from your authenticator app, or a
    /// recovery code (asked for on the terminal when needed and not given).
    #[arg(long, value_name = "CODE", conflicts_with = "with_token")]
    pub otp: Option<String>,

    /// Where to keep the login's tokens: 'file' (the settings file, readable by you only: the
    /// default) or 'keyring' (the system keyring: the Secret Service on Linux, the Keychain on
    /// macOS; the settings file then names the server and account only). An unavailable keyring
    /// is an error, never a quiet fallback to the file. Given (without --password-stdin) with a
    /// login already kept in the other store, moves it (no password asked) and deletes the
    /// other copy. LOOM_CREDENTIAL_STORE chooses it too.
    #[arg(long, value_name = "STORE", value_parser = parse_store)]
    pub credential_store: Option<CredentialStore>,
}

fn parse_store(text: &str) -> Result<CredentialStore, String> {
    text.parse()
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Print a JSON object (server, account, token source, expiry) instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SessionsArgs {
    #[command(subcommand)]
    pub action: Option<SessionsAction>,

    /// Print the sessions as a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// End one of your sessions: its refresh token and access tokens stop working at once.
    Revoke {
        /// The session's id, as 'loom sessions' lists it.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct TwoFactorArgs {
    #[command(subcommand)]
    pub action: TwoFactorAction,
}

#[derive(Debug, Subcommand)]
pub enum TwoFactorAction {
    /// Turn it on: shows a QR code for your authenticator app, asks for its first code, then
    /// shows ten recovery codes once. Asks for your password (or reads it from standard input
    /// with --password-stdin); needs a terminal for the code.
    Enable {
        /// Read the password from standard input, instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Turn it off (your password and a code, or a recovery code).
    Disable {
        /// Read the password from standard input, instead of asking.
        #[arg(long)]
        password_stdin: bool,
        /// The code from your authenticator app, or a recovery code (asked for when omitted).
        #[arg(long, value_name = "CODE")]
        otp: Option<String>,
    },
    /// Make ten new recovery codes; the old ones stop working (your password and a code).
    RecoveryCodes {
        /// Read the password from standard input, instead of asking.
        #[arg(long)]
        password_stdin: bool,
        /// The code from your authenticator app, or a recovery code (asked for when omitted).
        #[arg(long, value_name = "CODE")]
        otp: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct TokensArgs {
    #[command(subcommand)]
    pub action: TokensAction,
}

#[derive(Debug, Subcommand)]
pub enum TokensAction {
    /// Make a token: prints it alone on standard output (so $(loom tokens create ...) works).
    ///
    /// Asks for your password (a token outlives every session), or reads it from standard
    /// input with --password-stdin.
    Create {
        /// What the token is for, to recognise it by (unique among your live tokens).
        #[arg(long, value_name = "NAME")]
        name: String,
        /// How long it lasts, in days (the server sets the maximum, 366 by default).
        #[arg(long, value_name = "DAYS", default_value = "30d")]
        expires: String,
        /// Read the password from standard input (for scripts), instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List your live tokens (never their values), newest first.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by name or id: it, and the access tokens traded for it, stop working at once.
    Revoke {
        /// The token's name or id, as 'loom tokens list' shows them.
        #[arg(value_name = "NAME|ID")]
        token: String,
    },
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Read the current and the new password from standard input, a line each.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// End every session of this account, on every machine, not only this one.
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
