//! Throttling policy: how many failed logins an account and a client address
//! get within a window, how many registrations an address gets per hour, and
//! who the client is when requests come through trusted proxies. The counters
//! live in the database ([`crate::store`]), so every host on it shares them.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderValue;
use ipnet::IpNet;

use crate::config::Config;
use crate::store::{Allowance, UserStore};

/// The registration allowance's window.
pub const SIGNUP_WINDOW_SECONDS: i64 = 3600;
/// How often counters that no window looks at any more are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(60);

pub struct ThrottlePolicy {
    pub login_per_account: Allowance,
    pub login_per_address: Allowance,
    pub signups_per_address: Allowance,
    trusted_proxies: Vec<IpNet>,
}

impl ThrottlePolicy {
    pub fn from_config(config: &Config) -> Self {
        let window_seconds = i64::from(config.login_window);
        Self {
            login_per_account: Allowance { max: config.login_max_failures, window_seconds },
            login_per_address: Allowance { max: config.login_max_failures_per_address, window_seconds },
            signups_per_address: Allowance { max: config.signups_per_address, window_seconds: SIGNUP_WINDOW_SECONDS },
            trusted_proxies: config.trusted_proxy.clone(),
        }
    }

    fn trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&address))
    }

    /// The client's address: the socket peer, or, when the peer is a trusted
    /// proxy, the nearest address in `X-Forwarded-For` that is not one (read
    /// from the right, where the trusted proxies appended theirs). A client
    /// cannot pick its own address: it could only prepend entries.
    pub fn client_address<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a HeaderValue>) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusted(client) {
            return client;
        }
        let hops: Vec<&str> = forwarded_for.filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).collect();
        for hop in hops.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(address) => client = address.to_canonical(),
                Err(_) => break,
            }
            if !self.trusted(client) {
                break;
            }
        }
        client
    }
}

/// Deletes expired counters (and revocations of expired tokens) every minute,
/// for as long as the host runs.
pub fn spawn_purge(store: UserStore, login_window_seconds: i64) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        loop {
            every.tick().await;
            let now = crate::tokens::unix_now();
            let purged = match store.purge_throttles(now, login_window_seconds, SIGNUP_WINDOW_SECONDS).await {
                Ok(counters) => store.purge_revocations(now).await.map(|revocations| counters + revocations),
                Err(error) => Err(error),
            };
            match purged {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "purged expired throttle counters and revocations"),
                Err(error) => tracing::warn!(%error, "could not purge throttle counters and revocations"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(trusted: &[&str]) -> ThrottlePolicy {
        let allowance = Allowance { max: 1, window_seconds: 1 };
        ThrottlePolicy {
            login_per_account: allowance,
            login_per_address: allowance,
            signups_per_address: allowance,
            trusted_proxies: trusted.iter().map(|n| n.parse().unwrap()).collect(),
        }
    }

    fn client(policy: &ThrottlePolicy, peer: &str, forwarded: &[&str]) -> String {
        let values: Vec<HeaderValue> = forwarded.iter().map(|v| HeaderValue::from_str(v).unwrap()).collect();
        policy.client_address(peer.parse().unwrap(), values.iter()).to_string()
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let none = policy(&[]);
        assert_eq!(client(&none, "203.0.113.7", &["198.51.100.1"]), "203.0.113.7");
        let proxies = policy(&["10.0.0.0/8", "::1/128"]);
        assert_eq!(client(&proxies, "10.1.2.3", &["198.51.100.1"]), "198.51.100.1");
        // A client's own entries are to the left of what the trusted proxies appended.
        assert_eq!(client(&proxies, "10.1.2.3", &["6.6.6.6, 198.51.100.1, 10.9.9.9"]), "198.51.100.1");
        assert_eq!(client(&proxies, "10.1.2.3", &["6.6.6.6", "198.51.100.1"]), "198.51.100.1");
        assert_eq!(client(&proxies, "10.1.2.3", &["garbage, 198.51.100.1"]), "198.51.100.1");
        assert_eq!(client(&proxies, "10.1.2.3", &[]), "10.1.2.3");
        assert_eq!(client(&proxies, "::ffff:10.1.2.3", &["198.51.100.1"]), "198.51.100.1");
        assert_eq!(client(&proxies, "203.0.113.7", &["198.51.100.1"]), "203.0.113.7");
    }
}
