//! The operator's policy (`--policy`), asked at the moments it decides: a registration before
//! the account is made, a login before its session starts (or a personal access token before
//! it is exchanged), and every access token before it is signed. Without a policy every
//! answer is "go ahead" and no claim is added.
//!
//! A refusal is the policy's [`Refusal::Denied`] with its reason for the user; a policy that
//! cannot decide is [`Refusal::Fault`], and the request fails: nothing passes unchecked.

use std::net::IpAddr;

use crate::runtime::policy::{
    Account, Decision, Hook, LoginRequest, Policy, PolicyFault, RegistrationRequest, RequestContext, TokenRequest,
};
use crate::store::User;
use crate::telemetry::audit::{self, Event};

/// Why the policy stopped a request.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Denied(String),
    #[error(transparent)]
    Fault(PolicyFault),
}

/// Who is asking, as the policy sees them.
#[derive(Clone, Copy)]
pub struct Asker {
    pub address: IpAddr,
    pub now: i64,
}

impl Asker {
    fn context(self) -> RequestContext {
        RequestContext { now: self.now, client_address: self.address.to_string() }
    }
}

/// An account as the policy sees it.
pub fn account(user: &User) -> Account {
    Account { id: user.id, email: user.email.clone(), username: user.username.clone(), created_at: user.created_at }
}

/// Whether a registration of `email` (normalised) and `username` may go ahead.
pub async fn registration(
    policy: Option<&Policy>,
    email: &str,
    username: Option<&str>,
    asker: Asker,
) -> Result<(), Refusal> {
    let Some(policy) = policy else { return Ok(()) };
    let request = RegistrationRequest {
        email: email.to_owned(),
        username: username.map(str::to_owned),
        context: asker.context(),
    };
    decided(Hook::Registration, None, asker, policy.registration(&request).await)
}

/// Whether a login of `user` by `client_id`, proved by `amr`, may go ahead.
pub async fn login(
    policy: Option<&Policy>,
    user: &User,
    client_id: &str,
    amr: &[&str],
    asker: Asker,
) -> Result<(), Refusal> {
    let Some(policy) = policy else { return Ok(()) };
    let request = LoginRequest {
        account: account(user),
        client_id: client_id.to_owned(),
        amr: amr.iter().map(|method| (*method).to_owned()).collect(),
        context: asker.context(),
    };
    decided(Hook::Login, Some(user.id), asker, policy.login(&request).await)
}

/// What an access token for `user` and `client_id`, from `grant_type`, carries besides the
/// host's claims: names and JSON values, none of them a claim the host sets.
pub async fn access_claims(
    policy: Option<&Policy>,
    user: &User,
    client_id: &str,
    amr: &[&str],
    grant_type: &str,
    asker: Asker,
) -> Result<Vec<(String, String)>, Refusal> {
    let Some(policy) = policy else { return Ok(Vec::new()) };
    let request = TokenRequest {
        account: account(user),
        client_id: client_id.to_owned(),
        amr: amr.iter().map(|method| (*method).to_owned()).collect(),
        grant_type: grant_type.to_owned(),
        context: asker.context(),
    };
    policy.access_claims(&request).await.map_err(|fault| faulted(Some(user.id), asker, fault))
}

fn decided(
    hook: Hook,
    user_id: Option<i64>,
    asker: Asker,
    answer: Result<Decision, PolicyFault>,
) -> Result<(), Refusal> {
    match answer {
        Ok(Decision::Allow) => Ok(()),
        Ok(Decision::Deny(reason)) => {
            audit::record(Event::PolicyDenied { hook: hook.name(), user_id, client: asker.address });
            Err(Refusal::Denied(reason))
        }
        Err(fault) => Err(faulted(user_id, asker, fault)),
    }
}

fn faulted(user_id: Option<i64>, asker: Asker, fault: PolicyFault) -> Refusal {
    audit::record(Event::PolicyFaulted {
        hook: fault.hook.name(),
        user_id,
        client: asker.address,
        reason: &fault.reason,
    });
    Refusal::Fault(fault)
}
