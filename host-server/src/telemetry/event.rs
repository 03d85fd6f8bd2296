//! The security events the host records: what happened, to whom, from where. The audit log
//! writes them ([`super::audit`]) and the metrics count them ([`super::measure`]); both read
//! them from here, so neither imports the other for them.
//!
//! No variant has a field that could hold a password, token, hash or key, so none can be logged.

use std::net::IpAddr;

/// Something an operator may need to answer "who did what, from where, when".
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// `POST /users/` made an account.
    UserCreated { user_id: i64, client: IpAddr },
    /// A registration refused by the per-address allowance.
    SignupThrottled { client: IpAddr },
    /// `POST /token` issued a token.
    LoginSucceeded { user_id: i64, client: IpAddr },
    /// A login with a wrong password, or for no account (`user_id` is then `None`), or for a
    /// deactivated one.
    LoginFailed { user_id: Option<i64>, client: IpAddr },
    /// A login refused by the throttle before its password was checked.
    LoginThrottled { client: IpAddr },
    /// `POST /logout`: one token revoked, or with `global` every token of the account.
    TokenRevoked { user_id: i64, client: IpAddr, global: bool },
    /// A password login started a session.
    SessionCreated { user_id: i64, client: IpAddr },
    /// A refresh token was traded for the next (`retried`: a spent one within the grace).
    SessionRefreshed { user_id: i64, client: IpAddr, retried: bool },
    /// Sessions ended before their time (`how`: logout, logout-global, revoke, delete,
    /// password-change, deactivation), `count` of them.
    SessionRevoked { user_id: i64, client: Option<IpAddr>, how: &'a str, count: u64 },
    /// A spent refresh token was presented after the grace: its session was ended.
    RefreshReused { user_id: i64, client: IpAddr },
    /// An account's password was changed.
    PasswordChanged { user_id: i64, client: IpAddr },
    /// A personal access token was made (`token_id` names it; never the token).
    PatCreated { user_id: i64, client: IpAddr, token_id: &'a str },
    /// Personal access tokens ended before their time (`how`: delete, deactivation), `count`.
    PatRevoked { user_id: i64, client: Option<IpAddr>, how: &'a str, count: u64 },
    /// A personal access token was traded for an access token (RFC 8693).
    PatExchanged { user_id: i64, client: IpAddr, token_id: &'a str },
    /// Two-factor login was turned on (an enrolment confirmed).
    MfaEnabled { user_id: i64, client: IpAddr },
    /// Two-factor login was turned off (`how`: by the account, or `reset-2fa` by an operator).
    MfaDisabled { user_id: i64, client: Option<IpAddr>, how: &'a str },
    /// A login's right password came with a wrong, stale or used second factor.
    MfaFailed { user_id: i64, client: IpAddr },
    /// A recovery code was spent on a login.
    MfaRecoveryUsed { user_id: i64, client: IpAddr },
    /// A component passed the gate and serves from now on (`trigger`: start, file change, SIGHUP).
    ComponentPublished { sha256: &'a str, wit_version: &'a str, trigger: &'a str },
    /// A candidate component refused at a gate `step`.
    ComponentRejected { candidate: &'a str, step: &'a str, reason: &'a str, trigger: &'a str },
    /// A policy (with its settings, digest `config`) passed its gate and now decides.
    PolicyPublished { sha256: &'a str, config: &'a str, trigger: &'a str },
    /// A candidate policy (or settings) refused at a gate `step`; the one before keeps deciding.
    PolicyRejected { candidate: &'a str, step: &'a str, reason: &'a str, trigger: &'a str },
    /// The policy refused a registration (`user_id` none) or a login (`hook` says which).
    PolicyDenied { hook: &'a str, user_id: Option<i64>, client: IpAddr },
    /// The policy could not decide (trap, deadline, error, forbidden claims): the request failed.
    PolicyFaulted { hook: &'a str, user_id: Option<i64>, client: IpAddr, reason: &'a str },
    /// This host now signs with `signing` and verifies with `verifying` keys (a rotation or a
    /// retirement, seen in the database; `trigger`: `poll` or `SIGHUP`).
    KeysChanged { signing: &'a str, verifying: usize, trigger: &'a str },
}

impl Event<'_> {
    /// The stable name log pipelines match on.
    pub fn name(&self) -> &'static str {
        match self {
            Self::UserCreated { .. } => "user.created",
            Self::SignupThrottled { .. } => "signup.throttled",
            Self::LoginSucceeded { .. } => "login.succeeded",
            Self::LoginFailed { .. } => "login.failed",
            Self::LoginThrottled { .. } => "login.throttled",
            Self::TokenRevoked { .. } => "token.revoked",
            Self::SessionCreated { .. } => "session.created",
            Self::SessionRefreshed { .. } => "session.refreshed",
            Self::SessionRevoked { .. } => "session.revoked",
            Self::RefreshReused { .. } => "refresh.reused",
            Self::PasswordChanged { .. } => "password.changed",
            Self::PatCreated { .. } => "pat.created",
            Self::PatRevoked { .. } => "pat.revoked",
            Self::PatExchanged { .. } => "pat.exchanged",
            Self::MfaEnabled { .. } => "mfa.enabled",
            Self::MfaDisabled { .. } => "mfa.disabled",
            Self::MfaFailed { .. } => "mfa.failed",
            Self::MfaRecoveryUsed { .. } => "mfa.recovery_used",
            Self::ComponentPublished { .. } => "component.published",
            Self::ComponentRejected { .. } => "component.rejected",
            Self::PolicyPublished { .. } => "policy.published",
            Self::PolicyRejected { .. } => "policy.rejected",
            Self::PolicyDenied { .. } => "policy.denied",
            Self::PolicyFaulted { .. } => "policy.fault",
            Self::KeysChanged { .. } => "keys.changed",
        }
    }
}
