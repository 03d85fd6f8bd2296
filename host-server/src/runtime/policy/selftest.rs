//! The policy's self-test: before a policy serves, each hook is called once with a sample and
//! the operator's settings, and must answer well-formed (allow, deny, or claims the host
//! accepts) within the policy's deadline.

use std::time::{Duration, Instant};

use super::calls::{bounded_reason, call, call_access_claims};
use super::{Account, Decision, Hook, LoadedPolicy, LoginRequest, RegistrationRequest, RequestContext, TokenRequest};
use crate::runtime::calls::Core;

/// The sample account's address: `.invalid` is reserved (RFC 2606), so no real account has it.
pub const SAMPLE_EMAIL: &str = "self-test@loom.invalid";

/// What each hook answered in the self-test, and how long it took.
#[derive(Debug, Clone, Default)]
pub struct SelfTest {
    pub registration: Option<(Decision, Duration)>,
    pub login: Option<(Decision, Duration)>,
    pub access_claims: Option<(Vec<(String, String)>, Duration)>,
}

/// A sample account with `email`, registered a day before `now`.
pub fn sample_account(email: &str, now: i64) -> Account {
    let username = email.split('@').next().filter(|name| !name.is_empty()).map(str::to_owned);
    Account { id: 0, email: email.to_owned(), username, created_at: now - 86_400 }
}

fn sample_context(now: i64) -> RequestContext {
    RequestContext { now, client_address: "192.0.2.1".into() }
}

/// Calls every hook of `candidate` once with the sample; the first failure says which hook and why.
pub(super) async fn run(core: &Core, candidate: &LoadedPolicy) -> Result<SelfTest, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
    let account = sample_account(SAMPLE_EMAIL, now);
    let registration = RegistrationRequest {
        email: account.email.clone(),
        username: account.username.clone(),
        context: sample_context(now),
    };
    let started = Instant::now();
    let config = candidate.config.clone();
    let decided = call(core, candidate, Hook::Registration, |store, world| {
        Box::pin(async move { world.loom_policy_decisions().call_registration(store, &config, &registration).await })
    })
    .await
    .map_err(|fault| fault.to_string())?;
    let registration = Some((bounded_reason(decided), started.elapsed()));

    let login = LoginRequest {
        account: account.clone(),
        client_id: "loom".into(),
        amr: vec!["pwd".into()],
        context: sample_context(now),
    };
    let started = Instant::now();
    let config = candidate.config.clone();
    let decided = call(core, candidate, Hook::Login, |store, world| {
        Box::pin(async move { world.loom_policy_decisions().call_login(store, &config, &login).await })
    })
    .await
    .map_err(|fault| fault.to_string())?;
    let login = Some((bounded_reason(decided), started.elapsed()));

    let token = TokenRequest {
        account,
        client_id: "loom".into(),
        amr: vec!["pwd".into()],
        grant_type: "password".into(),
        context: sample_context(now),
    };
    let started = Instant::now();
    let claims = call_access_claims(core, candidate, &token).await.map_err(|fault| fault.to_string())?;
    let access_claims = Some((claims, started.elapsed()));
    Ok(SelfTest { registration, login, access_claims })
}
