//! The administration commands: what `host-server` does besides serving.

use std::path::PathBuf;

/// Administration that works on the database the settings point at, without serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Manage accounts: list them, deactivate or activate one, or import them from the FastAPI service.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage the token signing keys: list them, rotate to a new one, retire an old one.
    ///
    /// Running hosts pick up a change within 5 seconds (at once on SIGHUP).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Try a policy component before serving it: its gate, then sample decisions.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum PolicyCommand {
    /// Run a policy through the gate a host runs it through (signature, compile, version,
    /// link, self-test with its settings), then ask it about sample accounts and print what it
    /// decides. Exits 1 if it would be refused.
    ///
    /// Example: host-server --trusted-signers target/signing/dev.pub policy check \
    ///     target/components/policies/email-domains.wasm --config acme.json --email ada@acme.com
    Check {
        /// The policy component (.wasm), with its signature beside it (PATH.minisig).
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The policy's settings, a JSON object (as given to --policy-config) [default: {}]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// An address to ask about (registration, login and claims); repeat for several
        /// [default: ada@example.com]
        #[arg(long = "email", value_name = "ADDRESS")]
        emails: Vec<String>,
        /// A username for the sample registrations.
        #[arg(long, value_name = "NAME")]
        username: Option<String>,
    },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeysCommand {
    /// List every key: id, algorithm, state (active signs; verifying only verifies; retired
    /// neither), when it was made.
    List,
    /// Make a new active key; the one active so far keeps verifying the tokens it signed.
    ///
    /// Example: host-server keys rotate --alg eddsa
    Rotate {
        /// The new key's algorithm: eddsa (public keys in the JWKS, for other services) or
        /// hs256 (a shared secret: only this service can verify).
        #[arg(long, value_enum, default_value = "eddsa")]
        alg: KeyAlgorithm,
    },
    /// Stop a key verifying: the tokens it signed are refused from then on. The active key
    /// cannot be retired (rotate first).
    ///
    /// Example: host-server keys retire 2026-11-26-3f9a1c2b
    Retire {
        /// The key's id, as `keys list` shows it.
        kid: String,
    },
}

/// The algorithms a new key can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyAlgorithm {
    Eddsa,
    Hs256,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum UsersCommand {
    /// List every account: id, email, whether it is active, when it was created.
    List {
        /// Count the accounts by password hash format instead (how many still carry a hash an
        /// import brought, which their next login replaces).
        #[arg(long)]
        hash_formats: bool,
    },
    /// Import the users of the FastAPI service Loom's Python side ran: ids, emails,
    /// usernames, password hashes (bcrypt, pbkdf2-sha256, argon2) and whether they are active.
    ///
    /// Every row is checked as a registration would be; the valid ones are written in one
    /// transaction; each refused row is named by its old id with the reason (never its hash).
    /// Exit status 0 when every row was imported or was here already, 1 when any was refused.
    /// Safe while hosts serve. Imported accounts log in with their old passwords; the first
    /// login re-hashes the password to argon2id.
    ///
    /// Example: host-server --data-dir ./data users import sqlite:///srv/fastapi/sql_app.db --dry-run
    Import {
        /// The old service's database: sqlite:///PATH or postgres://USER@HOST/DATABASE (table `users`).
        source: String,
        /// Check and report every row, and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Stop an account from logging in; its tokens stop working on their next
    /// request, and stay revoked if the account is activated again.
    ///
    /// Example: host-server users deactivate ada@example.com
    Deactivate {
        /// The account's email (any case).
        email: String,
    },
    /// Let a deactivated account log in again.
    ///
    /// Example: host-server users activate ada@example.com
    Activate {
        /// The account's email (any case).
        email: String,
    },
    /// Turn off an account's two-factor login, for a lost phone without its recovery codes
    /// (check who is asking first: the password alone logs in afterwards). Its secret and
    /// recovery codes are deleted; the account turns it on again with `loom 2fa enable`.
    ///
    /// Example: host-server users reset-2fa ada@example.com
    #[command(name = "reset-2fa")]
    ResetTwoFactor {
        /// The account's email (any case).
        email: String,
    },
}
