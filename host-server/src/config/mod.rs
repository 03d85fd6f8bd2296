//! Settings: each from its flag, else its environment variable, else a default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

mod commands;
pub use commands::*;

/// Where `just build-guest` puts the auth component, relative to the repository root.
pub const DEFAULT_COMPONENT: &str = "target/components/auth-guest.wasm";

/// Loom Auth: user accounts and JWT login for Loom, with the password and token
/// logic in a swappable WebAssembly component.
///
/// Every setting can be given as a flag or as the environment variable shown;
/// a flag wins over the environment, which wins over the default.
#[derive(Debug, Clone, Parser)]
#[command(name = "host-server", version, max_term_width = 100)]
#[command(after_help = "Examples:\n  host-server --bind 0.0.0.0:8000 --data-dir /var/lib/loom-auth\n  \
                        host-server --data-dir /var/lib/loom-auth users deactivate ada@example.com")]
pub struct Config {
    /// Without a command, the host serves the API.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address and port to listen on (port 0 picks a free port; the log says which).
    #[arg(long, env = "LOOM_AUTH_BIND", default_value = "127.0.0.1:8000", value_name = "ADDR")]
    pub bind: SocketAddr,

    /// Directory for the database and the generated signing secret; created on first start.
    #[arg(long, env = "LOOM_AUTH_DATA_DIR", default_value = "./data", value_name = "DIR", global = true)]
    pub data_dir: PathBuf,

    /// SQLite database URL [default: sqlite://<DATA_DIR>/loom-auth.db]
    #[arg(long, env = "DATABASE_URL", value_name = "URL", global = true)]
    pub database_url: Option<String>,

    /// Connections the host keeps to the database at most.
    #[arg(long, env = "LOOM_AUTH_DATABASE_MAX_CONNECTIONS", default_value_t = 8, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1000), global = true)]
    pub database_max_connections: u32,

    /// The auth component (.wasm) to serve. The host watches it: replace the file
    /// (or send SIGHUP) to swap components without a restart.
    #[arg(long, env = "LOOM_AUTH_COMPONENT", default_value = DEFAULT_COMPONENT, value_name = "PATH", global = true)]
    pub component: PathBuf,

    /// File of minisign public keys (one per line; a `.pub` file from `loom-sign
    /// keygen` works as is). Only a component with a signature beside it
    /// (`<component>.minisig`) made by one of these keys is run.
    #[arg(long, env = "LOOM_AUTH_TRUSTED_SIGNERS", value_name = "FILE", global = true)]
    pub trusted_signers: Option<PathBuf>,

    /// Where compiled components are kept, with the key that authenticates them (`cache-key`,
    /// made when missing). Hosts on one machine may share it: each component is then compiled
    /// once [default: <DATA_DIR>/compiled, key <DATA_DIR>/cache-key]
    #[arg(long, env = "LOOM_AUTH_CACHE_DIR", value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,

    /// Run components without checking any signature. For development only: whoever
    /// can write the component's directory then controls every account. From the
    /// environment: 1/0, true/false, yes/no or on/off.
    #[arg(long, env = "LOOM_AUTH_ALLOW_UNSIGNED", global = true, action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_unsigned: bool,

    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, env = "LOOM_AUTH_TOKEN_TTL", default_value_t = 1800, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(1..=31_536_000))]
    pub token_ttl: u32,

    /// A token secret from before 0.2 (at least 32 bytes), imported once as the legacy key so
    /// the tokens it signed stay valid until they expire; nothing when the file does not exist
    /// [default: <DATA_DIR>/jwt-secret]
    #[arg(long, env = "LOOM_AUTH_SECRET_FILE", value_name = "PATH", global = true)]
    pub secret_file: Option<PathBuf>,

    /// The key-encryption key that seals the signing keys in the database: 32 random bytes,
    /// made with mode 0600 when missing. Hosts sharing a database share this file
    /// [default: <DATA_DIR>/master-key]
    #[arg(long, env = "LOOM_AUTH_MASTER_KEY_FILE", value_name = "PATH", global = true)]
    pub master_key_file: Option<PathBuf>,

    /// The `iss` claim written into tokens and required from them, and the `issuer` of the
    /// discovery document, which must then be an https:// URL (http:// on this machine)
    /// [default: the public URL, else loom-auth]
    #[arg(long, env = "LOOM_AUTH_ISSUER", value_name = "NAME", value_parser = parse_issuer)]
    pub issuer: Option<String>,

    /// The `aud` claim written into tokens and required from them: the services that accept
    /// Loom tokens check for it.
    #[arg(long, env = "LOOM_AUTH_AUDIENCE", default_value = "loom", value_name = "NAME")]
    pub audience: String,

    /// The URL clients reach this service at (behind a proxy, the proxy's; the same on every
    /// host): https://, or http:// on this machine. It is the tokens' issuer (unless --issuer
    /// says otherwise) and names the endpoints of the discovery document at
    /// /.well-known/oauth-authorization-server, which is off without it.
    #[arg(long, env = "LOOM_AUTH_PUBLIC_URL", value_name = "URL", value_parser = parse_public_url)]
    pub public_url: Option<url::Url>,

    /// Clock skew tolerated when checking a token's times, in seconds (at most 60).
    #[arg(long, env = "LOOM_AUTH_LEEWAY", default_value_t = 5, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(0..=i64::from(crate::tokens::MAX_LEEWAY_SECONDS)))]
    pub leeway: u32,

    /// Longest one password hash or check may run in the component, in milliseconds.
    #[arg(long, env = "LOOM_AUTH_HASH_DEADLINE_MS", default_value_t = 5000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub hash_deadline_ms: u64,

    /// Longest one token issue or check may run in the component, in milliseconds.
    #[arg(long, env = "LOOM_AUTH_TOKEN_DEADLINE_MS", default_value_t = 250, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub token_deadline_ms: u64,

    /// Password hashes (logins, registrations) that may wait for a free hashing
    /// slot; beyond them a request gets `503` with `Retry-After: 1` at once
    /// [default: 32 per core]
    #[arg(long, env = "LOOM_AUTH_MAX_HASH_QUEUE", value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub max_hash_queue: Option<u32>,

    /// Failed logins an account may have within the login window; more get `429`
    /// (even with the right password) until the oldest leaves the window.
    #[arg(long, env = "LOOM_AUTH_LOGIN_MAX_FAILURES", default_value_t = 5, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub login_max_failures: u32,

    /// Failed logins one client address may have within the login window, over all accounts.
    #[arg(long, env = "LOOM_AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 50, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub login_max_failures_per_address: u32,

    /// The window failed logins are counted in, in seconds.
    #[arg(long, env = "LOOM_AUTH_LOGIN_WINDOW", default_value_t = 900, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub login_window: u32,

    /// Registrations one client address may make per hour.
    #[arg(long, env = "LOOM_AUTH_SIGNUPS_PER_ADDRESS", default_value_t = 20, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub signups_per_address: u32,

    /// A proxy (address or CIDR range, e.g. 10.0.0.0/8) whose X-Forwarded-For
    /// header names the client. Repeat for several; none by default, so the
    /// header is ignored.
    #[arg(long = "trusted-proxy", env = "LOOM_AUTH_TRUSTED_PROXIES", value_delimiter = ',', value_name = "CIDR",
          value_parser = parse_network)]
    pub trusted_proxy: Vec<ipnet::IpNet>,

    /// A client that has not sent a complete request head within this many
    /// seconds (also between requests on a kept-alive connection) is disconnected.
    #[arg(long, env = "LOOM_AUTH_HEADER_TIMEOUT", default_value_t = 10, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,

    /// A request still running after this many seconds gets `503`.
    #[arg(long, env = "LOOM_AUTH_REQUEST_TIMEOUT", default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: u64,

    /// On SIGTERM or Ctrl-C the host stops accepting connections and gives
    /// requests in flight this many seconds to finish before it exits.
    #[arg(long, env = "LOOM_AUTH_SHUTDOWN_GRACE", default_value_t = 10, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace: u64,

    /// How log lines are written: text for people, json (one object per line) for log pipelines.
    #[arg(long, env = "LOOM_AUTH_LOG_FORMAT", value_enum, default_value = "text", value_name = "FORMAT")]
    pub log_format: crate::telemetry::LogFormat,

    /// Serve Prometheus metrics at http://ADDR/metrics, on a listener of their own (off by
    /// default; keep it off the public network). Port 0 picks a free port; the log says which.
    #[arg(long, env = "LOOM_AUTH_METRICS_BIND", value_name = "ADDR")]
    pub metrics_bind: Option<SocketAddr>,

    /// A session (a login, renewed with its refresh token) that is not refreshed for this many
    /// seconds ends [default: 30 days]
    #[arg(long, env = "LOOM_AUTH_SESSION_IDLE", default_value_t = 30 * 86_400, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(1..=366 * 86_400))]
    pub session_idle: u32,

    /// A session ends this many seconds after its login, however it is used [default: 90 days]
    #[arg(long, env = "LOOM_AUTH_SESSION_MAX_AGE", default_value_t = 90 * 86_400, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(1..=3 * 366 * 86_400))]
    pub session_max_age: u32,

    /// A refresh token presented again less than this many seconds after it was spent answers
    /// again with its successor (a lost answer retried, processes refreshing at once); after
    /// it, the same token is a replay and ends its session (0: no grace).
    #[arg(long, env = "LOOM_AUTH_REFRESH_REUSE_GRACE", default_value_t = 10, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(0..=300))]
    pub refresh_reuse_grace: u32,

    /// The longest life, in days, a personal access token may be given (`expires_in_days`).
    #[arg(long, env = "LOOM_AUTH_PAT_MAX_DAYS", default_value_t = 366, value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub pat_max_days: u32,

    /// How many live personal access tokens one account may hold.
    #[arg(long, env = "LOOM_AUTH_PAT_MAX_PER_USER", default_value_t = 50, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub pat_max_per_user: u32,

    /// A policy component (.wasm) that decides who may register and log in, and adds claims
    /// to access tokens (see "Writing a policy" in the README). Signed like the component,
    /// and watched the same way: replace it, its signature or its settings (or send SIGHUP) to
    /// swap it without a restart. None by default: everyone may register and log in.
    #[arg(long, env = "LOOM_AUTH_POLICY", value_name = "PATH")]
    pub policy: Option<PathBuf>,

    /// The policy's settings: a JSON object (at most 64 KiB) passed to each of its calls
    /// [default: {}]
    #[arg(long, env = "LOOM_AUTH_POLICY_CONFIG", value_name = "FILE", requires = "policy")]
    pub policy_config: Option<PathBuf>,

    /// Longest one policy call may run, in milliseconds; past it the request fails with 503.
    #[arg(long, env = "LOOM_AUTH_POLICY_DEADLINE_MS", default_value_t = 50, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=5_000))]
    pub policy_deadline_ms: u64,

    /// Memory one component instance may use, in MiB.
    #[arg(long, env = "LOOM_AUTH_GUEST_MEMORY_MIB", default_value_t = 80, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(20..=4096))]
    pub guest_memory_mib: u64,
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

    pub fn master_key_file(&self) -> PathBuf {
        self.master_key_file.clone().unwrap_or_else(|| self.data_dir.join("master-key"))
    }

    pub fn limits(&self) -> crate::runtime::Limits {
        crate::runtime::Limits {
            memory_bytes: usize::try_from(self.guest_memory_mib << 20).unwrap_or(usize::MAX),
            hash_deadline: std::time::Duration::from_millis(self.hash_deadline_ms),
            token_deadline: std::time::Duration::from_millis(self.token_deadline_ms),
        }
    }

    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            header: std::time::Duration::from_secs(self.header_timeout),
            request: std::time::Duration::from_secs(self.request_timeout),
            shutdown_grace: std::time::Duration::from_secs(self.shutdown_grace),
        }
    }

    /// How long sessions last, from `--session-idle`, `--session-max-age` and `--refresh-reuse-grace`.
    pub fn session_policy(&self) -> crate::accounts::sessions::SessionPolicy {
        let seconds = |s: u32| std::time::Duration::from_secs(u64::from(s));
        crate::accounts::sessions::SessionPolicy {
            idle: seconds(self.session_idle),
            max_age: seconds(self.session_max_age),
            reuse_grace: seconds(self.refresh_reuse_grace),
        }
    }

    /// What personal access tokens may be, from `--pat-max-days` and `--pat-max-per-user`.
    pub fn pat_policy(&self) -> crate::accounts::pats::PatPolicy {
        crate::accounts::pats::PatPolicy { max_days: self.pat_max_days, max_per_user: self.pat_max_per_user }
    }

    /// The policy to serve, from `--policy`, `--policy-config` and `--policy-deadline-ms`.
    pub fn policy_settings(&self) -> Option<crate::runtime::policy::PolicySettings> {
        Some(crate::runtime::policy::PolicySettings {
            path: self.policy.clone()?,
            config: self.policy_config.clone(),
            deadline: std::time::Duration::from_millis(self.policy_deadline_ms),
        })
    }

    /// `--max-hash-queue`, or its default for this machine.
    pub fn max_hash_queue(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        self.max_hash_queue.map_or(32 * cores, |n| n as usize)
    }

    /// Exits with a usage error (status 2) when the settings cannot work together.
    pub fn check(&self) {
        if let Err(problem) = self.trust_policy() {
            use clap::CommandFactory;
            Self::command().error(clap::error::ErrorKind::ArgumentConflict, problem).exit();
        }
    }

    /// Which components may run: `--trusted-signers` or `--allow-unsigned`, exactly one. Every
    /// path that runs a component (serving, each admin command) goes through here.
    pub fn trust(&self) -> anyhow::Result<crate::runtime::Trust> {
        self.trust_policy().map_err(anyhow::Error::msg)?;
        match &self.trusted_signers {
            Some(path) => Ok(crate::runtime::Trust::from_file(path)?),
            None => Ok(crate::runtime::Trust::AllowUnsigned),
        }
    }

    fn trust_policy(&self) -> Result<(), &'static str> {
        match (&self.trusted_signers, self.allow_unsigned) {
            (None, false) => Err("only signed components run: give --trusted-signers FILE (minisign public keys; \
                                  `just serve` trusts the development key), or --allow-unsigned for development"),
            (Some(_), true) => Err("--trusted-signers and --allow-unsigned contradict each other: give one"),
            _ => Ok(()),
        }
    }

    /// Where compiled components are cached, and the file of the key that authenticates them.
    pub fn cache_paths(&self) -> (PathBuf, PathBuf) {
        match &self.cache_dir {
            Some(dir) => (dir.clone(), dir.join("cache-key")),
            None => (self.data_dir.join("compiled"), self.data_dir.join("cache-key")),
        }
    }
}

/// Connection settings, for the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A connection that has not sent a complete request head within this is closed.
    pub header: std::time::Duration,
    /// A request still running after this gets `503`.
    pub request: std::time::Duration,
    /// After a shutdown signal, how long requests in flight may take to finish.
    pub shutdown_grace: std::time::Duration,
}

/// An https URL (http only for this machine) with a host and nothing after the path: what
/// RFC 8414 §2 asks of an issuer.
fn parse_public_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    crate::tokens::issuer_url_problem(&url).map_or(Ok(url), |problem| Err(format!("{text:?} {problem}")))
}

/// An issuer: a name of printable characters without spaces (up to 256), and when it is a URL
/// one an issuer URL may be (see [`parse_public_url`]).
fn parse_issuer(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 256 || !text.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!("{text:?} must be 1 to 256 printable characters without spaces"));
    }
    match url::Url::parse(text) {
        Ok(url) if text.contains("://") => {
            crate::tokens::issuer_url_problem(&url).map_or(Ok(text.to_owned()), |problem| Err(format!("it {problem}")))
        }
        _ => Ok(text.to_owned()),
    }
}

/// A CIDR range, or a single address as a range of one.
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not an IP address or CIDR range (e.g. 10.0.0.0/8)"))
}
