//! Calling a policy's hooks in a fresh sandboxed instance, and turning what went wrong into
//! one line.

use std::sync::Arc;
use std::time::Duration;

use super::bindings::Policy as PolicyWorld;
use super::{Decision, Hook, LoadedPolicy, MAX_REASON_CHARS, PolicyFault, TokenRequest, claims};
use crate::runtime::RuntimeError;
use crate::runtime::calls::{Core, GuestFuture};
use crate::runtime::sandbox::GuestState;

/// Calls a hook of `loaded` in a fresh sandboxed instance within the policy's deadline; an
/// `err` from the policy is a fault like a trap.
pub(super) async fn call<R>(
    core: &Core,
    loaded: &LoadedPolicy,
    hook: Hook,
    f: impl for<'a> FnOnce(&'a mut wasmtime::Store<GuestState>, PolicyWorld) -> GuestFuture<'a, Result<R, String>>,
) -> Result<R, PolicyFault> {
    let ran = core
        .sandboxed(&loaded.info.sha256, loaded.info.deadline, hook.export(), async |store| {
            let world = loaded.pre.instantiate_async(&mut *store).await?;
            f(store, world).await
        })
        .await;
    match ran {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(reason)) => Err(PolicyFault { hook, reason: format!("it could not decide: {}", cut(&reason)) }),
        Err(RuntimeError::Trap(text)) => {
            tracing::debug!(%hook, sha256 = %loaded.info.sha256, trap = %text, "the policy trapped");
            Err(PolicyFault { hook, reason: trap_reason(hook, &text, loaded.info.deadline) })
        }
        Err(error) => Err(PolicyFault { hook, reason: error.to_string() }),
    }
}

/// A trap in one line: a deadline passed, or the trap's cause without the guest's backtrace
/// (which goes to the log at `debug`).
fn trap_reason(hook: Hook, text: &str, deadline: Duration) -> String {
    if text.contains("wasm trap: interrupt") || text.contains("still running after") {
        return format!("it ran past its {} ms deadline", deadline.as_millis());
    }
    let last = text.lines().rev().map(str::trim).find(|line| !line.is_empty()).unwrap_or_default();
    let cause = last.split_once(&format!("#{}: ", hook.name())).map_or(last, |(_, cause)| cause);
    format!("it trapped: {}", cut(cause.strip_prefix("wasm trap: ").unwrap_or(cause)))
}

pub(super) async fn call_access_claims(
    core: &Core,
    loaded: &LoadedPolicy,
    request: &TokenRequest,
) -> Result<Vec<(String, String)>, PolicyFault> {
    let request = request.clone();
    let config = Arc::clone(&loaded.config);
    let document = call(core, loaded, Hook::AccessClaims, |store, world| {
        Box::pin(async move { world.loom_policy_decisions().call_access_claims(store, &config, &request).await })
    })
    .await?;
    claims::check(&document).map_err(|reason| PolicyFault { hook: Hook::AccessClaims, reason })
}

/// A refusal's reason as a user may be shown it: control characters dropped, cut to
/// [`MAX_REASON_CHARS`], and never empty.
pub(super) fn bounded_reason(decision: Decision) -> Decision {
    match decision {
        Decision::Allow => Decision::Allow,
        Decision::Deny(reason) => {
            let reason = cut(reason.trim());
            Decision::Deny(if reason.is_empty() { "refused by this service's policy".into() } else { reason })
        }
    }
}

fn cut(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    match clean.char_indices().nth(MAX_REASON_CHARS) {
        Some((at, _)) => format!("{}…", &clean[..at]),
        None => clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::policy::Decision;

    #[test]
    fn a_trap_is_told_in_one_line() {
        let trap = "policy.login: error while executing at wasm backtrace:\n    0:   0x5e30 - p.wasm!abort\n    \
                    1:   0x5e4d - p.wasm!loom:policy/decisions@0.1.0#login: wasm trap: wasm `unreachable` instruction \
                    executed";
        let deadline = Duration::from_millis(50);
        assert_eq!(trap_reason(Hook::Login, trap, deadline), "it trapped: wasm `unreachable` instruction executed");
        let grown = "x\n  9:   0x5e30 - p.wasm!loom:policy/decisions@0.1.0#login: forcing trap when growing memory";
        assert_eq!(trap_reason(Hook::Login, grown, deadline), "it trapped: forcing trap when growing memory");
        let late = "policy.login: error while executing at wasm backtrace:\n 4: x#login: wasm trap: interrupt";
        assert_eq!(trap_reason(Hook::Login, late, deadline), "it ran past its 50 ms deadline");
        let slept = "policy.login: still running after its 50ms deadline";
        assert_eq!(trap_reason(Hook::Login, slept, deadline), "it ran past its 50 ms deadline");
    }

    #[test]
    fn reasons_are_bounded_and_never_empty() {
        assert_eq!(
            bounded_reason(Decision::Deny("  \n".into())),
            Decision::Deny("refused by this service's policy".into())
        );
        assert_eq!(bounded_reason(Decision::Deny("no\u{7}pe".into())), Decision::Deny("nope".into()));
        let Decision::Deny(long) = bounded_reason(Decision::Deny("é".repeat(1000))) else { panic!() };
        assert_eq!(long.chars().count(), MAX_REASON_CHARS + 1);
        assert!(long.ends_with('…'));
    }
}
