//! How a command fails: one sentence on stderr and an exit status like `gh`'s.

use loom_cli::api::ApiError;
use loom_cli::credentials::CredentialError;
use loom_cli::settings::SettingsError;

#[derive(Debug)]
pub enum Failure {
    /// The command line cannot work as given (exit 2).
    Usage(String),
    /// The user must log in (again) first (exit 4).
    LoginRequired(String),
    /// Anything else (exit 1).
    Failed(anyhow::Error),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::LoginRequired(_) => 4,
            Self::Failed(_) => 1,
        }
    }

    pub fn report(&self) {
        match self {
            Self::Usage(message) => eprintln!("error: {message}"),
            Self::LoginRequired(message) => eprintln!("{message}"),
            Self::Failed(error) => eprintln!("error: {error:#}"),
        }
    }

    pub fn failed(message: impl std::fmt::Display) -> Self {
        Self::Failed(anyhow::anyhow!("{message}"))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(message) | Self::LoginRequired(message) => f.write_str(message),
            Self::Failed(error) => write!(f, "{error:#}"),
        }
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::PlainHttp { .. } => Self::Usage(error.to_string()),
            error if error.needs_login() => Self::LoginRequired(error.to_string()),
            error => Self::Failed(error.into()),
        }
    }
}

impl From<SettingsError> for Failure {
    fn from(error: SettingsError) -> Self {
        Self::Failed(error.into())
    }
}

impl From<CredentialError> for Failure {
    fn from(error: CredentialError) -> Self {
        match error {
            CredentialError::Settings(error) => error.into(),
            CredentialError::BadSetting { .. } | CredentialError::BadEnv(_) => Self::Usage(error.to_string()),
            CredentialError::Garbled { .. } => Self::LoginRequired(error.to_string()),
            CredentialError::Keyring { .. } => Self::failed(error),
        }
    }
}
