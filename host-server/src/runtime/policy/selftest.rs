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

/// What the self-test and `policy check` ask a policy about one sample account.
pub struct Samples {
    pub registration: RegistrationRequest,
    pub login: LoginRequest,
    pub token: TokenRequest,
}

/// A registration, a password login and its token for a sample account with `email` (and
/// `username`, else the address's local part), at `now`, from a documentation address.
pub fn samples(email: &str, username: Option<&str>, now: i64) -> Samples {
    let mut account = sample_account(email, now);
    if let Some(name) = username {
        account.username = Some(name.to_owned());
    }
    let context = RequestContext { now, client_address: "192.0.2.1".into() };
    let (client_id, amr) = ("loom".to_owned(), vec!["pwd".to_owned()]);
    Samples {
        registration: RegistrationRequest {
            email: account.email.clone(),
            username: account.username.clone(),
            context: context.clone(),
        },
        login: LoginRequest {
            account: account.clone(),
            client_id: client_id.clone(),
            amr: amr.clone(),
            context: context.clone(),
        },
        token: TokenRequest { account, client_id, amr, grant_type: "password".into(), context },
    }
}

/// Calls every hook of `candidate` once with the sample; the first failure says which hook and why.
pub(super) async fn run(core: &Core, candidate: &LoadedPolicy) -> Result<SelfTest, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
    let Samples { registration, login, token } = samples(SAMPLE_EMAIL, None, now);
    let started = Instant::now();
    let config = candidate.config.clone();
    let decided = call(core, candidate, Hook::Registration, |store, world| {
        Box::pin(async move { world.loom_policy_decisions().call_registration(store, &config, &registration).await })
    })
    .await
    .map_err(|fault| fault.to_string())?;
    let registration = Some((bounded_reason(decided), started.elapsed()));

    let started = Instant::now();
    let config = candidate.config.clone();
    let decided = call(core, candidate, Hook::Login, |store, world| {
        Box::pin(async move { world.loom_policy_decisions().call_login(store, &config, &login).await })
    })
    .await
    .map_err(|fault| fault.to_string())?;
    let login = Some((bounded_reason(decided), started.elapsed()));

    let started = Instant::now();
    let claims = call_access_claims(core, candidate, &token).await.map_err(|fault| fault.to_string())?;
    let access_claims = Some((claims, started.elapsed()));
    Ok(SelfTest { registration, login, access_claims })
}
