//! Settings: each from its flag, else its environment variable, else a default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Where `just build-guest` puts the auth component, relative to the repository root.
pub const DEFAULT_COMPONENT: &str = "target/wasm32-wasip2/release/auth_guest.wasm";

/// Loom Auth: user accounts and JWT login for Loom, with the password and token
/// logic in a swappable WebAssembly component.
///
/// Every setting can be given as a flag or as the environment variable shown;
/// a flag wins over the environment, which wins over the default.
#[derive(Debug, Clone, Parser)]
#[command(name = "host-server", version, max_term_width = 100)]
#[command(after_help = "Example:\n  host-server --bind 0.0.0.0:8000 --data-dir /var/lib/loom-auth")]
pub struct Config {
    /// Address and port to listen on (port 0 picks a free port; the log says which).
    #[arg(long, env = "LOOM_AUTH_BIND", default_value = "127.0.0.1:8000", value_name = "ADDR")]
    pub bind: SocketAddr,

    /// Directory for the database and the generated signing secret; created on first start.
    #[arg(long, env = "LOOM_AUTH_DATA_DIR", default_value = "./data", value_name = "DIR")]
    pub data_dir: PathBuf,

    /// SQLite database URL [default: sqlite://<DATA_DIR>/loom-auth.db]
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// The auth component (.wasm) to load.
    #[arg(long, env = "LOOM_AUTH_COMPONENT", default_value = DEFAULT_COMPONENT, value_name = "PATH")]
    pub component: PathBuf,

    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, env = "LOOM_AUTH_TOKEN_TTL", default_value_t = 1800, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(1..=31_536_000))]
    pub token_ttl: u32,

    /// File holding the token signing secret (at least 32 bytes); generated with
    /// 32 random bytes and mode 0600 when missing [default: <DATA_DIR>/jwt-secret]
    #[arg(long, env = "LOOM_AUTH_SECRET_FILE", value_name = "PATH")]
    pub secret_file: Option<PathBuf>,

    /// The `iss` claim written into tokens and required from them.
    #[arg(long, env = "LOOM_AUTH_ISSUER", default_value = "loom-auth", value_name = "NAME")]
    pub issuer: String,

    /// Clock skew tolerated when checking a token's times, in seconds (at most 60).
    #[arg(long, env = "LOOM_AUTH_LEEWAY", default_value_t = 5, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(0..=60))]
    pub leeway: u32,
}

impl Config {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("loom-auth.db").display()))
    }

    pub fn secret_file(&self) -> PathBuf {
        self.secret_file.clone().unwrap_or_else(|| self.data_dir.join("jwt-secret"))
    }
}
