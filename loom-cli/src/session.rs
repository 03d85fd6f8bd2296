//! What `loom` can tell about a token without asking the server: when it expires.
//!
//! The token is read, not verified: only the server can say whether it is valid. This is
//! for messages ("expires in 23 minutes") and for `loom token` to refuse a token that is
//! certainly dead, never for a decision about access.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The `exp` claim of a JWT, read without checking the signature; `None` when `token` is not
/// a JWT with a numeric `exp`. RFC 7519 §2 lets `exp` have a fraction (`1700000000.5`), and
/// other issuers write one: it counts to the instant it names.
pub fn expiry(token: &str) -> Option<SystemTime> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 8192 {
        return None;
    }
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    instant(claims.get("exp")?.as_number()?)
}

/// The `amr` claim of a JWT (RFC 8176: how the login was made, `["pwd", "otp"]`), read without
/// checking the signature; empty when there is none.
pub fn methods(token: &str) -> Vec<String> {
    let payload = token.split('.').nth(1).filter(|p| p.len() <= 8192);
    let claims: Option<serde_json::Value> =
        payload.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok()).and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let listed = claims.as_ref().and_then(|c| c.get("amr")).and_then(|amr| amr.as_array()).cloned().unwrap_or_default();
    listed.iter().filter_map(|m| m.as_str().map(str::to_owned)).collect()
}

/// A NumericDate (seconds since the epoch, maybe with a fraction) as an instant: the epoch
/// itself for one at or before it (long past, so expired); `None` beyond what the clock can hold.
fn instant(seconds: &serde_json::Number) -> Option<SystemTime> {
    let since_epoch = match seconds.as_u64() {
        Some(whole) => Duration::from_secs(whole),
        None => match seconds.as_f64()? {
            negative if negative <= 0.0 => Duration::ZERO,
            positive => Duration::try_from_secs_f64(positive).ok()?,
        },
    };
    UNIX_EPOCH.checked_add(since_epoch)
}

/// How far `at` is from `now`, in words: "in 23 minutes", "2 hours ago".
pub fn relative(at: SystemTime, now: SystemTime) -> String {
    match at.duration_since(now) {
        Ok(ahead) => format!("in {}", span(ahead)),
        Err(behind) => format!("{} ago", span(behind.duration())),
    }
}

/// A duration rounded to its largest sensible unit.
fn span(duration: Duration) -> String {
    let seconds = duration.as_secs();
    // To the nearest unit: a 30-day session checked a second after it began ends "in 30 days".
    let (count, unit) = match seconds {
        0..120 => (seconds, "second"),
        120..7_200 => ((seconds + 30) / 60, "minute"),
        7_200..172_800 => ((seconds + 1_800) / 3_600, "hour"),
        _ => ((seconds + 43_200) / 86_400, "day"),
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!("eyJhbGciOiJIUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn expiry_reads_exp_and_nothing_else() {
        assert_eq!(
            expiry(&jwt(r#"{"sub":"1","exp":1700000000}"#)),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(
            expiry(&jwt(r#"{"sub":"1","exp":1700000000.5}"#)),
            Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_500))
        );
        assert_eq!(expiry(&jwt(r#"{"exp":1.7e9}"#)), Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
        // Before the epoch is long past: expired, never "no expiry".
        for past in [r#"{"exp":-5}"#, r#"{"exp":-0.5}"#, r#"{"exp":0}"#] {
            assert_eq!(expiry(&jwt(past)), Some(UNIX_EPOCH), "{past}");
        }
        for token in [
            jwt(r#"{"sub":"1"}"#),
            jwt(r#"{"exp":"soon"}"#),
            jwt(r#"{"exp":1e300}"#),
            jwt("not json"),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            "garbage".to_owned(),
            format!("{}.x", jwt(r#"{"exp":1}"#)),
        ] {
            assert_eq!(expiry(&token), None, "{token}");
        }
    }

    #[test]
    fn methods_are_read_from_amr() {
        assert_eq!(methods(&jwt(r#"{"amr":["pwd","otp"]}"#)), ["pwd", "otp"]);
        assert!(methods(&jwt(r#"{"sub":"1"}"#)).is_empty());
        assert!(methods("garbage").is_empty());
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |seconds: i64| UNIX_EPOCH + Duration::from_secs((1_000_000 + seconds) as u64);
        assert_eq!(relative(at(1), now), "in 1 second");
        assert_eq!(relative(at(119), now), "in 119 seconds");
        assert_eq!(relative(at(23 * 60 + 5), now), "in 23 minutes");
        assert_eq!(relative(at(3 * 3600), now), "in 3 hours");
        assert_eq!(relative(at(5 * 86_400), now), "in 5 days");
        assert_eq!(relative(at(30 * 86_400 - 2), now), "in 30 days");
        assert_eq!(relative(at(23 * 60 + 40), now), "in 24 minutes");
        assert_eq!(relative(at(-180), now), "3 minutes ago");
        assert_eq!(relative(now, now), "in 0 seconds");
    }
}
