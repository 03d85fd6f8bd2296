//! The host's token settings: the keys (from the shared key ring) and what goes with them,
//! handed to the component on each call together with the current time.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::keyring::Keys;
use crate::runtime::{
    Algorithm, Claims, KeyedSettings, Runtime, RuntimeError, SigningKey, TokenError, TokenSettings, VerificationKey,
};

/// The most clock skew a host may tolerate (`--leeway`), in seconds.
pub const MAX_LEEWAY_SECONDS: u32 = 60;

/// How long a revocation of a token that expires at `exp` must be kept: as long as any host
/// could still accept the token (`exp` plus the largest leeway any host may have), whatever
/// this host's own leeway and however often revocations are purged (RFC 7009 §2.2).
pub fn revocation_expiry(exp: i64) -> i64 {
    exp.saturating_add(i64::from(MAX_LEEWAY_SECONDS))
}

/// The issuer tokens named before issuers were URLs (and still do with `--issuer loom-auth`).
/// Tokens that name it are accepted too, when they verify with this host's keys, so an upgrade
/// that changes the issuer logs no one out.
pub const LEGACY_ISSUER: &str = "loom-auth";

/// Why `url` cannot be an issuer identifier (RFC 8414 §2: https, no query or fragment; http
/// only for this machine, whose traffic never crosses a network), if it cannot.
pub fn issuer_url_problem(url: &url::Url) -> Option<&'static str> {
    if !url.username().is_empty() || url.password().is_some() {
        return Some("must not hold a user name or password");
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Some("has no host"),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Some("must be https:// (http:// only for this machine: 127.0.0.1, [::1], localhost)"),
        _ => return Some("must be an https:// URL, e.g. https://auth.example.com"),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Some("must have no query or fragment");
    }
    None
}

pub struct TokenConfig {
    pub keys: Arc<Keys>,
    pub issuer: String,
    /// The `aud` written into tokens and required from them.
    pub audience: String,
    pub ttl_seconds: u32,
    pub leeway_seconds: u32,
}

impl TokenConfig {
    /// Verifies `token` as received, with the keys and settings of now. A token that names the
    /// [`LEGACY_ISSUER`] instead of this host's issuer is accepted when it verifies with this
    /// host's keys otherwise.
    pub async fn verify(&self, runtime: &Runtime, token: &[u8]) -> Result<Claims, RuntimeError> {
        let settings = self.settings();
        let verdict = match runtime.verify_token(&settings, token).await {
            Err(RuntimeError::Token(TokenError::WrongIssuer)) if settings.issuer != LEGACY_ISSUER => {
                let mut legacy = settings;
                legacy.settings.issuer = LEGACY_ISSUER.into();
                runtime.verify_token(&legacy, token).await
            }
            verdict => verdict,
        };
        // The clock's refusals, for an operator puzzled by a client whose tokens fail at once
        // (its issuer's clock ahead of this host's) or early (behind). Never the token itself.
        if let Err(RuntimeError::Token(why @ (TokenError::NotYetValid | TokenError::Expired))) = &verdict {
            tracing::debug!(
                reason = ?why,
                leeway_seconds = self.leeway_seconds,
                now = unix_now(),
                "refused a token for its time: it is dated ahead of this host's clock (not yet valid) or past its \
                 expiry, beyond the leeway; compare the issuing host's clock with this one's"
            );
        }
        verdict
    }

    /// The settings and keys for a token operation now.
    pub fn settings(&self) -> KeyedSettings {
        let ring = self.keys.ring();
        KeyedSettings {
            settings: token_settings(&self.issuer, &self.audience, self.ttl_seconds, self.leeway_seconds),
            signing: ring.signing.clone(),
            verifying: ring.verifying.clone(),
        }
    }
}

fn token_settings(issuer: &str, audience: &str, ttl_seconds: u32, leeway_seconds: u32) -> TokenSettings {
    TokenSettings { issuer: issuer.into(), audience: audience.into(), now: unix_now(), ttl_seconds, leeway_seconds }
}

/// Settings with a throwaway HS256 key, for the self-test of the component a host starts
/// with (the key ring needs a component to make its first key).
pub fn bootstrap_settings(issuer: &str, audience: &str) -> Result<KeyedSettings, getrandom::Error> {
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret)?;
    let kid = Some("bootstrap".to_owned());
    Ok(KeyedSettings {
        settings: token_settings(issuer, audience, 60, 0),
        signing: Some(SigningKey { kid: kid.clone(), alg: Algorithm::Hs256, private: secret.clone() }),
        verifying: vec![VerificationKey { kid, alg: Algorithm::Hs256, material: secret }],
    })
}

/// Seconds since the Unix epoch, by the host's clock.
pub fn unix_now() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(now).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_outlives_every_host_that_could_still_accept_the_token() {
        let exp = 1_700_000_000;
        // A host accepts a token until exp + its leeway, which is at most MAX_LEEWAY_SECONDS.
        for leeway in [0, 5, MAX_LEEWAY_SECONDS] {
            assert!(revocation_expiry(exp) >= exp + i64::from(leeway));
        }
        assert_eq!(revocation_expiry(i64::MAX), i64::MAX);
    }

    #[test]
    fn now_is_the_system_clock_in_unix_seconds() {
        let reference = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        assert!((unix_now() - reference).abs() <= 1, "{} vs {reference}", unix_now());
    }

    #[test]
    fn an_issuer_is_an_https_url_or_this_machine() {
        let problem = |text: &str| issuer_url_problem(&url::Url::parse(text).unwrap());
        for good in [
            "https://auth.example.com",
            "https://auth.example.com/loom",
            "http://127.0.0.1:8000",
            "http://[::1]:1",
            "http://localhost:8000",
        ] {
            assert_eq!(problem(good), None, "{good}");
        }
        for bad in [
            "http://auth.example.com",
            "https://auth.example.com/?x=1",
            "https://auth.example.com/#f",
            "ftp://auth.example.com",
            "https://user:pw@auth.example.com",
            "https://user@auth.example.com",
        ] {
            assert!(problem(bad).is_some(), "{bad}");
        }
        // Plain http elsewhere is told what would do.
        assert!(problem("http://auth.example.com").is_some_and(|why| why.contains("http:// only for this machine")));
    }
}
