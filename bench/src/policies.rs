//! The policy component's cost: one call of each hook through the sandbox (from the criterion
//! run), and logins and refreshes per second with the `org-claims` policy against none.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use crate::{Bound, Host, REFRESH_CLIENTS, Row, account, load, refresh_token, token_request, us};

/// Turns each host is measured in, and how long each turn lasts.
const ROUNDS: u32 = 4;
const TURN: Duration = Duration::from_secs(2);

/// The issue's goal for one hook call of a Rust policy.
const HOOK_GOAL: Duration = Duration::from_micros(50);

pub async fn rows(component: &Path, criterion: &Path) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let estimate = |id: &str| crate::criterion_median(&criterion.join("policy_call").join(id));
    for (what, id) in [
        ("policy hook call: email-domains registration", "email-domains_registration"),
        ("policy hook call: email-domains login", "email-domains_login"),
        ("policy hook call: invite-only registration", "invite-only_registration"),
        ("policy hook call: org-claims access-claims", "org-claims_access-claims"),
    ] {
        let took = estimate(id)?;
        rows.push(Row::plain(what, us(took), Some(("≤ 50 µs", took <= HOOK_GOAL))));
    }
    for (what, id) in [
        ("policy hook call: plans (Python) registration", "plans_registration"),
        ("policy hook call: plans (Python) access-claims", "plans_access-claims"),
    ] {
        // Reported, with no goal: a fresh CPython instance per call.
        if let Ok(took) = estimate(id) {
            rows.push(Row::plain(what, us(took), None));
        }
    }

    eprintln!("measuring logins and refreshes with a policy…");
    let dir = tempfile::tempdir()?;
    let settings = dir.path().join("orgs.json");
    std::fs::write(&settings, r#"{"orgs": {"example.com": "example"}}"#)?;
    let policy = crate::components()?.join("policies/org-claims.wasm");
    // Both hosts run side by side and are measured in turns, so the machine's drift (it is
    // shared and noisy) falls on both alike.
    let (without, with) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let policy_args = [OsStr::new("--policy"), policy.as_os_str(), OsStr::new("--policy-config"), settings.as_os_str()];
    let hosts = [
        Host::start_with(without.path(), component, None, &[]).await?,
        Host::start_with(with.path(), component, None, &policy_args).await?,
    ];
    let mut sums = [(0.0, 0.0); 2];
    for host in &hosts {
        account(host).await?;
    }
    for round in 0..ROUNDS {
        // Each goes first in turn: the one measured second is not always the same.
        let mut order: Vec<_> = hosts.iter().zip(sums.iter_mut()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for (host, sum) in order {
            sum.0 += load::run(token_request(host)?, 8, TURN).await?.per_second() / ROUNDS as f64;
            let mut chains = Vec::new();
            for _ in 0..REFRESH_CLIENTS {
                chains.push(refresh_token(host).await?);
            }
            sum.1 += load::run_refresh_chains(&host.base_url, chains, TURN).await?.per_second() / ROUNDS as f64;
        }
    }
    let [(logins_without, refreshes_without), (logins_with, refreshes_with)] = sums;
    rows.push(Row {
        what: "POST /token password grant, 8 clients: org-claims policy vs none",
        measured: format!("{logins_with:.1} logins/s vs {logins_without:.1} logins/s"),
        ratio: Some(logins_with / logins_without),
        bound: Some(Bound::AtLeast(0.9)),
        absolute: None,
    });
    rows.push(Row {
        what: "POST /token refresh grant, 8 chains: org-claims policy vs none",
        measured: format!("{refreshes_with:.0} refreshes/s vs {refreshes_without:.0} refreshes/s"),
        ratio: Some(refreshes_with / refreshes_without),
        bound: Some(Bound::AtLeast(0.9)),
        absolute: None,
    });
    Ok(rows)
}
