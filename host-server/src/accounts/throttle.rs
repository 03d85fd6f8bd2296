//! Throttling policy: how many failed logins an account and a client address
//! get within a window, how many registrations an address gets per hour, and
//! who the client is when requests come through trusted proxies. The counters
//! live in the database ([`crate::store`]), so every host on it shares them.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderValue;
use ipnet::{IpNet, Ipv6Net};

use crate::store::{Admission, Allowance, Crowd, LoginAttempt, StoreError, UserStore};

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
    /// `failures_per_account` and `failures_per_address` failed logins within `login_window`
    /// seconds; `signups_per_address` registrations per hour; `X-Forwarded-For` read only from
    /// `trusted_proxies`.
    pub fn new(
        failures_per_account: u32,
        failures_per_address: u32,
        login_window: u32,
        signups_per_address: u32,
        trusted_proxies: Vec<IpNet>,
    ) -> Self {
        let window_seconds = i64::from(login_window);
        Self {
            login_per_account: Allowance { max: failures_per_account, window_seconds },
            login_per_address: Allowance { max: failures_per_address, window_seconds },
            signups_per_address: Allowance { max: signups_per_address, window_seconds: SIGNUP_WINDOW_SECONDS },
            trusted_proxies,
        }
    }

    /// Admits a login attempt on `account` (the key of the name given) from `client`, or says why not.
    pub async fn admit_login(&self, store: &UserStore, account: String, client: IpAddr) -> Result<Gate, StoreError> {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| StoreError::Corrupt(format!("no randomness for an attempt id: {e}")))?;
        let attempt = LoginAttempt { id: i64::from_ne_bytes(id), account, address: address_key(client) };
        let now = crate::tokens::unix_now();
        Ok(match store.admit_login(&attempt, now, self.login_per_account, self.login_per_address).await? {
            Admission::Admitted => Gate::Open(AdmittedLogin { store: store.clone(), attempt: Some(attempt) }),
            Admission::Throttled { retry_after } => Gate::Throttled { retry_after },
            Admission::Crowded { on } => Gate::Crowded { on },
        })
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

/// What the throttle says to a login attempt.
pub enum Gate {
    /// Go ahead, and settle the attempt when it is decided.
    Open(AdmittedLogin),
    /// Too many failed logins: the allowance frees up in this many seconds.
    Throttled { retry_after: u64 },
    /// Too many logins running at once; they end within seconds.
    Crowded { on: Crowd },
}

/// A login attempt the throttle admitted, counted as in flight until it is settled: a
/// failure then counts for the window, a success clears the account's failures. Dropped
/// unsettled (the client went away, or the request timed out), it counts as a failure, so
/// cancelling a guess does not make it free.
pub struct AdmittedLogin {
    store: UserStore,
    attempt: Option<LoginAttempt>,
}

impl AdmittedLogin {
    /// The password was wrong (or the account cannot log in).
    pub async fn failed(mut self) -> Result<(), StoreError> {
        let attempt = self.attempt.take().expect("settled once");
        self.store.settle_login_attempt(attempt.id).await
    }

    /// The attempt is taken back: it counts neither as a failure nor as a success.
    pub async fn withdrawn(mut self) -> Result<(), StoreError> {
        let attempt = self.attempt.take().expect("settled once");
        self.store.withdraw_login_attempt(attempt.id).await
    }

    /// The login succeeded: the failures under every name of the account (`names`) are forgotten.
    pub async fn succeeded(mut self, names: &[String; 2]) -> Result<(), StoreError> {
        self.attempt.take().expect("settled once");
        self.store.clear_login_failures(names).await
    }

    /// Whether the account named by `names` (its email and username keys) has had its
    /// allowance of attempts within the window under all its names together, this one apart.
    /// Each name answers `429` by its own count alone (so that the answer for a name never
    /// tells which account it belongs to); this caps what guesses through several names check.
    pub async fn account_spent(&self, policy: &ThrottlePolicy, names: &[String; 2]) -> Result<bool, StoreError> {
        let attempt = self.attempt.as_ref().expect("not settled yet");
        let allowance = policy.login_per_account;
        let attempts = self.store.attempts_on(names, attempt.id, crate::tokens::unix_now(), allowance).await?;
        Ok(attempts >= i64::from(allowance.max))
    }
}

impl Drop for AdmittedLogin {
    fn drop(&mut self) {
        if let Some(attempt) = self.attempt.take() {
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(error) = store.settle_login_attempt(attempt.id).await {
                    tracing::warn!(%error, "could not settle a cancelled login attempt");
                }
            });
        }
    }
}

/// The key a client address is counted under: an IPv4 address itself, an IPv6 address its
/// /64 (one subscriber's usual allocation, RFC 6177: counting addresses apart would give
/// anyone with a /64 an allowance per address).
pub fn address_key(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => Ipv6Net::new(v6, 64).map_or_else(|_| v6.to_string(), |net| net.trunc().to_string()),
    }
}

/// Deletes expired counters, revocations of expired tokens and ended sessions every minute,
/// for as long as the host runs.
pub fn spawn_purge(store: UserStore, login_window_seconds: i64) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        loop {
            every.tick().await;
            let now = crate::tokens::unix_now();
            let purged = async {
                let counters = store.purge_throttles(now, login_window_seconds, SIGNUP_WINDOW_SECONDS).await?;
                let revocations = store.purge_revocations(now).await?;
                let sessions = store.purge_sessions(now).await?;
                let tokens = store.purge_pats(now).await?;
                Ok::<_, StoreError>(counters + revocations + sessions + tokens)
            }
            .await;
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

    /// One failure per account allowed within an hour; a store of its own.
    async fn one_failure_allowed() -> (tempfile::TempDir, UserStore, ThrottlePolicy) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("throttle.db").display());
        let store = UserStore::open(&url, 4).await.unwrap();
        let policy = ThrottlePolicy {
            login_per_account: Allowance { max: 1, window_seconds: 3600 },
            login_per_address: Allowance { max: 100, window_seconds: 3600 },
            signups_per_address: Allowance { max: 100, window_seconds: 3600 },
            trusted_proxies: Vec::new(),
        };
        (dir, store, policy)
    }

    async fn admit(policy: &ThrottlePolicy, store: &UserStore) -> Gate {
        policy.admit_login(store, "ada@example.com".into(), "203.0.113.7".parse().unwrap()).await.unwrap()
    }

    fn open(gate: Gate) -> AdmittedLogin {
        match gate {
            Gate::Open(login) => login,
            _ => panic!("the attempt was not admitted"),
        }
    }

    #[tokio::test]
    async fn a_failure_spends_the_allowance_and_a_success_gives_it_back() {
        let (_dir, store, policy) = one_failure_allowed().await;
        let first = open(admit(&policy, &store).await);
        assert!(matches!(admit(&policy, &store).await, Gate::Crowded { on: Crowd::Account }), "in flight");
        first.succeeded(&["ada@example.com".into(), "username:ada".into()]).await.unwrap();
        open(admit(&policy, &store).await).failed().await.unwrap();
        assert!(matches!(admit(&policy, &store).await, Gate::Throttled { retry_after } if retry_after > 3000));
    }

    #[tokio::test]
    async fn an_attempt_dropped_unsettled_counts_as_a_failure() {
        let (_dir, store, policy) = one_failure_allowed().await;
        drop(open(admit(&policy, &store).await));
        // Settled by a task of its own: wait for it (bounded).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !matches!(admit(&policy, &store).await, Gate::Throttled { .. }) {
            assert!(std::time::Instant::now() < deadline, "the dropped attempt never counted as a failure");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
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

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let key = |ip: &str| address_key(ip.parse().unwrap());
        assert_eq!(key("198.51.100.7"), "198.51.100.7");
        assert_eq!(key("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), key("2001:db8:1:2::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::1"), "::/64");
    }
}
