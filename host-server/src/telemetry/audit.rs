//! Security events: each is one log line with target `audit`, a stable `event` name, the user
//! id where known and the client address, and a count in the metrics.
//!
//! No variant has a field that could hold a password, token, hash or key, so none can be logged.

pub use super::event::Event;

/// Logs `event` and counts it.
pub fn record(event: Event<'_>) {
    let name = event.name();
    match event {
        Event::UserCreated { user_id, client } => {
            tracing::info!(target: "audit", event = name, user_id, %client, "registered a new account")
        }
        Event::SignupThrottled { client } => {
            tracing::warn!(target: "audit", event = name, %client, "throttled a registration")
        }
        Event::LoginSucceeded { user_id, client } => {
            tracing::info!(target: "audit", event = name, user_id, %client, "issued an access token")
        }
        Event::LoginFailed { user_id: Some(user_id), client } => {
            tracing::info!(target: "audit", event = name, user_id, %client, "refused a login")
        }
        Event::LoginFailed { user_id: None, client } => {
            tracing::info!(target: "audit", event = name, %client, "refused a login for no account")
        }
        Event::LoginThrottled { client } => {
            tracing::warn!(target: "audit", event = name, %client, "throttled a login attempt")
        }
        Event::TokenRevoked { user_id, client, global } => {
            tracing::info!(target: "audit", event = name, user_id, %client, global, "revoked tokens at logout")
        }
        Event::SessionCreated { user_id, client } => {
            tracing::info!(target: "audit", event = name, user_id, %client, "started a session")
        }
        Event::SessionRefreshed { user_id, client, retried } => {
            tracing::info!(target: "audit", event = name, user_id, %client, retried, "refreshed a session")
        }
        Event::SessionRevoked { user_id, client: Some(client), how, count } => {
            tracing::info!(target: "audit", event = name, user_id, %client, how, count, "ended sessions")
        }
        Event::SessionRevoked { user_id, client: None, how, count } => {
            tracing::info!(target: "audit", event = name, user_id, how, count, "ended sessions")
        }
        Event::RefreshReused { user_id, client } => tracing::warn!(
            target: "audit",
            event = name,
            user_id,
            %client,
            "a spent refresh token came back after the grace: ended its session"
        ),
        Event::PasswordChanged { user_id, client } => {
            tracing::info!(target: "audit", event = name, user_id, %client, "changed a password")
        }
        Event::PatCreated { user_id, client, token_id } => {
            tracing::info!(target: "audit", event = name, user_id, %client, token_id, "made a personal access token")
        }
        Event::PatRevoked { user_id, client: Some(client), how, count } => {
            tracing::info!(target: "audit", event = name, user_id, %client, how, count, "ended personal access tokens")
        }
        Event::PatRevoked { user_id, client: None, how, count } => {
            tracing::info!(target: "audit", event = name, user_id, how, count, "ended personal access tokens")
        }
        Event::PatExchanged { user_id, client, token_id } => tracing::info!(
            target: "audit",
            event = name,
            user_id,
            %client,
            token_id,
            "traded a personal access token for an access token"
        ),
        Event::MfaEnabled { user_id, client } => {
            tracing::info!(target: "audit", event = name, user_id, %client, "turned on two-factor login")
        }
        Event::MfaDisabled { user_id, client: Some(client), how } => {
            tracing::info!(target: "audit", event = name, user_id, %client, how, "turned off two-factor login")
        }
        Event::MfaDisabled { user_id, client: None, how } => {
            tracing::info!(target: "audit", event = name, user_id, how, "turned off two-factor login")
        }
        Event::MfaFailed { user_id, client } => tracing::warn!(
            target: "audit",
            event = name,
            user_id,
            %client,
            "a right password came with a wrong, stale or used second factor"
        ),
        Event::MfaRecoveryUsed { user_id, client } => {
            tracing::info!(target: "audit", event = name, user_id, %client, "a recovery code was spent on a login")
        }
        Event::ComponentPublished { sha256, wit_version, trigger } => {
            tracing::info!(target: "audit", event = name, sha256, wit_version, trigger, "serving an auth component")
        }
        Event::ComponentRejected { candidate, step, reason, trigger } => tracing::warn!(
            target: "audit",
            event = name,
            candidate,
            step,
            trigger,
            "refused the candidate auth component at the {step} step: {reason}"
        ),
        Event::PolicyPublished { sha256, config, trigger } => {
            tracing::info!(target: "audit", event = name, sha256, config, trigger, "deciding with a policy")
        }
        Event::PolicyRejected { candidate, step, reason, trigger } => tracing::warn!(
            target: "audit",
            event = name,
            candidate,
            step,
            trigger,
            "refused the candidate policy at the {step} step: {reason}"
        ),
        Event::PolicyDenied { hook, user_id, client } => {
            tracing::info!(target: "audit", event = name, hook, user_id, %client, "the policy refused")
        }
        Event::PolicyFaulted { hook, user_id, client, reason } => tracing::error!(
            target: "audit",
            event = name,
            hook,
            user_id,
            %client,
            "the policy could not decide, so the request failed: {reason}"
        ),
        Event::KeysChanged { signing, verifying, trigger } => {
            tracing::info!(target: "audit", event = name, signing, verifying, trigger, "the signing keys changed")
        }
    }
    super::measure::count(&event);
}
