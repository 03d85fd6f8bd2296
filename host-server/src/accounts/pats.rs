//! Personal access tokens: credentials for machines (CI, remote runs) that outlive sessions.
//!
//! A token is `loom_pat_` + 32 base62 characters of randomness (190 bits) + 6 base62
//! characters of the CRC32 of those 32, so a secret scanner, and this host before any
//! database read, can tell a real-looking token from a typo ([`PATTERN`]). It is shown once;
//! the store keeps only its SHA-256 digest (190 random bits need no slow hash) and the first
//! characters, for people to recognise it by.
//!
//! A PAT and every access token exchanged from one are refused what only a password login may
//! do (make or list tokens, change the password, list or end sessions): see
//! [`Credential::may_manage_credentials`].

use secrecy::{ExposeSecret, SecretString};

/// What every personal access token starts with.
pub const PREFIX: &str = "loom_pat_";
/// Characters of randomness after the prefix.
const RANDOM_CHARS: usize = 32;
/// Characters of the checksum after those.
const CHECKSUM_CHARS: usize = 6;
/// The whole token's length.
pub const TOKEN_CHARS: usize = PREFIX.len() + RANDOM_CHARS + CHECKSUM_CHARS;
/// The regular expression a secret scanner matches a token with.
pub const PATTERN: &str = r"\bloom_pat_[0-9A-Za-z]{38}\b";
/// Characters of a token kept and listed, for recognition: the prefix and 4 more (24 bits).
const SHOWN_CHARS: usize = PREFIX.len() + 4;
/// A token id: this and 32 hex characters (an access token exchanged from the token names it
/// as its `sid`, where a session id has none).
pub const ID_PREFIX: &str = "pat_";
/// Longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// How long an expired or revoked token's row stays, so its use is answered with why.
pub const KEPT_AFTER_END_SECONDS: i64 = 30 * 86_400;
/// `last_used_at` is written at most this often per token.
pub const TOUCH_EVERY_SECONDS: i64 = 60;

/// RFC 8693's grant type, at the token endpoint: a token traded for an access token.
/// How a personal access token proves who is calling, as the policy is told (RFC 8176 has no
/// value for it; `amr` values are open).
pub const PAT_METHOD: &str = "pat";

pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693's name for an access token, the type of the token traded (a PAT) and of the one issued.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The limits an operator sets on tokens.
#[derive(Debug, Clone, Copy)]
pub struct PatPolicy {
    /// The longest life a token may be given, in days (`--pat-max-days`).
    pub max_days: u32,
    /// Live tokens an account may hold at once (`--pat-max-per-user`).
    pub max_per_user: u32,
}

impl Default for PatPolicy {
    fn default() -> Self {
        Self { max_days: 366, max_per_user: 50 }
    }
}

/// The days a token asked to last `days` (30 when not said) may have, or why not.
impl PatPolicy {
    pub fn lifetime_days(&self, days: Option<i64>) -> Result<i64, PatRefusal> {
        let days = days.unwrap_or(30);
        if (1..=i64::from(self.max_days)).contains(&days) {
            Ok(days)
        } else {
            Err(PatRefusal::Lifetime { max_days: self.max_days })
        }
    }
}

/// Why a token cannot be made as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatRefusal {
    #[error("expires_in_days must be a whole number of days from 1 to {max_days}")]
    Lifetime { max_days: u32 },
    #[error("name must be 1 to {MAX_NAME_CHARS} printable characters")]
    Name,
}

/// The name a token is given, trimmed, if it is one: 1 to [`MAX_NAME_CHARS`] characters, all of
/// them printable (no control or format character, such as a zero-width space or a direction
/// override, no line or paragraph separator, nothing private-use or unassigned), so that two
/// names that look alike are alike.
pub fn name(given: &str) -> Result<&str, PatRefusal> {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    let name = given.trim();
    let count = name.chars().count();
    let unprintable = |c: char| {
        matches!(
            c.general_category(),
            G::Control
                | G::Format
                | G::LineSeparator
                | G::ParagraphSeparator
                | G::PrivateUse
                | G::Surrogate
                | G::Unassigned
        )
    };
    if count == 0 || count > MAX_NAME_CHARS || name.chars().any(unprintable) {
        return Err(PatRefusal::Name);
    }
    Ok(name)
}

/// A new token, its id and what is kept of it.
pub struct Minted {
    pub id: String,
    pub token: SecretString,
    pub digest: String,
    pub shown: String,
}

/// Makes a token from the system's randomness.
pub fn mint() -> Result<Minted, getrandom::Error> {
    let mut random = String::with_capacity(RANDOM_CHARS);
    let mut bytes = [0u8; 64];
    while random.len() < RANDOM_CHARS {
        getrandom::fill(&mut bytes)?;
        // 248 = 4 × 62: bytes from there up would make the first characters likelier.
        random.extend(bytes.iter().filter(|b| **b < 248).map(|b| char::from(BASE62[usize::from(*b % 62)])));
    }
    random.truncate(RANDOM_CHARS);
    let token = format!("{PREFIX}{random}{}", checksum(&random));
    let mut id_bytes = [0u8; 16];
    getrandom::fill(&mut id_bytes)?;
    let id = format!("{ID_PREFIX}{}", id_bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let minted =
        Minted { id, digest: digest(&token), shown: token[..SHOWN_CHARS].to_owned(), token: SecretString::from(token) };
    Ok(minted)
}

/// The CRC32 of `random`, in 6 base62 characters (62⁶ > 2³²), zero-padded.
fn checksum(random: &str) -> String {
    let mut value = u64::from(crc32fast::hash(random.as_bytes()));
    let mut digits = [b'0'; CHECKSUM_CHARS];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 is ASCII")
}

/// Whether `token` looks like a personal access token at all (its prefix): then it is judged
/// as one, never as a JWT.
pub fn is_pat(token: &[u8]) -> bool {
    token.starts_with(PREFIX.as_bytes())
}

/// Whether `token` is a well-formed token: prefix, length, alphabet and checksum. A typo fails
/// here, before any database read.
pub fn well_formed(token: &[u8]) -> bool {
    let Some(rest) = token.strip_prefix(PREFIX.as_bytes()) else { return false };
    if rest.len() != RANDOM_CHARS + CHECKSUM_CHARS || !rest.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let (random, sum) = rest.split_at(RANDOM_CHARS);
    let random = std::str::from_utf8(random).expect("checked ASCII");
    // Not a secret: the checksum is printed in the token itself.
    checksum(random).as_bytes() == sum
}

/// The digest a token is stored and looked up by.
pub fn digest(token: &str) -> String {
    crate::accounts::sessions::digest(token)
}

/// How a request's caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An access token of a password login's session (`None`: one from before sessions).
    Session(Option<String>),
    /// A personal access token, as the bearer or exchanged for the access token presented.
    Pat { id: String },
}

impl Credential {
    /// The credential an access token's `sid` claim names: a token id, or a session.
    pub fn of_sid(sid: Option<String>) -> Self {
        match sid {
            Some(id) if id.starts_with(ID_PREFIX) => Self::Pat { id },
            session => Self::Session(session),
        }
    }

    /// Whether this caller may make or list tokens, change the password, or list or end
    /// sessions: only a password login may (least privilege for machines).
    pub fn may_manage_credentials(&self) -> bool {
        matches!(self, Self::Session(_))
    }

    /// The session, for a password login's token.
    pub fn session(&self) -> Option<&str> {
        match self {
            Self::Session(session) => session.as_deref(),
            Self::Pat { .. } => None,
        }
    }
}

/// A stored token as a bearer finds it, with its account.
#[derive(Debug, Clone)]
pub struct PatStanding {
    pub user: crate::store::User,
    pub id: String,
    pub name: String,
    pub expires_at: i64,
    pub revoked: bool,
    pub last_used_at: Option<i64>,
}

/// Why a well-formed token that was found is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatEnded {
    #[error("The personal access token '{name}' expired on {on}")]
    Expired { name: String, on: String },
    #[error("The personal access token '{name}' was revoked")]
    Revoked { name: String },
    #[error("The personal access token '{name}' belongs to a deactivated account")]
    Inactive { name: String },
}

impl PatStanding {
    /// Whether the token may be used at `now`, or why not.
    /// A deactivated account's tokens say so (until it is active again: deactivation revoked
    /// them); a revoked one says it was revoked, also after the date it would have expired.
    pub fn judge(&self, now: i64) -> Result<(), PatEnded> {
        let name = self.name.clone();
        if !self.user.is_active {
            Err(PatEnded::Inactive { name })
        } else if self.revoked {
            Err(PatEnded::Revoked { name })
        } else if self.expires_at <= now {
            Err(PatEnded::Expired { name, on: day_of(self.expires_at) })
        } else {
            Ok(())
        }
    }

    /// Whether this use should be written down as its `last_used_at`.
    pub fn touch_due(&self, now: i64) -> bool {
        self.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY_SECONDS)
    }
}

/// Why a presented personal access token is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Not a well-formed token (a typo, a truncated paste): refused before any lookup.
    #[error("Not a valid personal access token (check it was copied whole)")]
    Malformed,
    /// Well-formed, but no token has this digest.
    #[error("Unknown personal access token")]
    Unknown,
    #[error(transparent)]
    Ended(#[from] PatEnded),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Refused {
    /// The outcome label for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Ended(PatEnded::Expired { .. }) => "expired",
            Self::Ended(PatEnded::Revoked { .. }) => "revoked",
            Self::Ended(PatEnded::Inactive { .. }) => "inactive",
            Self::Store(_) => "error",
        }
    }
}

/// The live token `token` is, with its account, at `now`; its use is noted (at most once a
/// [`TOUCH_EVERY_SECONDS`], off the caller's path) as from `address`. No component call and
/// no password hash: a checksum, a SHA-256 and one indexed read.
pub async fn presented(
    store: &crate::store::UserStore,
    token: &[u8],
    now: i64,
    address: &str,
) -> Result<PatStanding, Refused> {
    let outcome = check(store, token, now).await;
    crate::telemetry::measure::pat_checked(outcome.as_ref().map_or_else(Refused::outcome, |_| "ok"));
    let standing = outcome?;
    if standing.touch_due(now) {
        let (store, id, address) = (store.clone(), standing.id.clone(), address.to_owned());
        tokio::spawn(async move {
            if let Err(error) = store.touch_pat(&id, now, &address).await {
                tracing::debug!(%error, "could not note a personal access token's use");
            }
        });
    }
    Ok(standing)
}

async fn check(store: &crate::store::UserStore, token: &[u8], now: i64) -> Result<PatStanding, Refused> {
    if !well_formed(token) {
        tracing::debug!("refused a malformed personal access token before any lookup");
        return Err(Refused::Malformed);
    }
    let token = std::str::from_utf8(token).map_err(|_| Refused::Malformed)?;
    let standing = store.pat_by_digest(&digest(token)).await?.ok_or(Refused::Unknown)?;
    standing.judge(now)?;
    Ok(standing)
}

/// The UTC day of a Unix time, `2027-01-02`.
pub fn day_of(unix: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or_default());
    humantime::format_rfc3339_seconds(time).to_string()[..10].to_owned()
}

/// A token to show once: its value, never logged.
pub fn reveal(token: &SecretString) -> String {
    token.expose_secret().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_has_the_documented_shape_and_passes_its_checksum() {
        let pattern = |t: &str| {
            t.len() == TOKEN_CHARS
                && t.starts_with(PREFIX)
                && t[PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric())
        };
        for _ in 0..200 {
            let minted = mint().unwrap();
            let token = minted.token.expose_secret();
            assert!(pattern(token), "{token}");
            assert!(well_formed(token.as_bytes()), "{token}");
            assert_eq!(minted.digest, digest(token));
            assert!(token.starts_with(&minted.shown) && minted.shown.len() == 13);
            assert!(minted.id.starts_with(ID_PREFIX) && minted.id.len() == 36);
        }
    }

    #[test]
    fn every_one_character_typo_is_refused() {
        let minted = mint().unwrap();
        let token = minted.token.expose_secret().as_bytes().to_vec();
        for at in PREFIX.len()..token.len() {
            for replacement in BASE62 {
                if *replacement == token[at] {
                    continue;
                }
                let mut typo = token.clone();
                typo[at] = *replacement;
                assert!(!well_formed(&typo), "{}", String::from_utf8_lossy(&typo));
            }
        }
        assert!(!well_formed(&token[..token.len() - 1]), "one short");
        assert!(!well_formed(format!("{}x", minted.token.expose_secret()).as_bytes()), "one long");
        assert!(!well_formed(b"loom_pat_"), "the prefix alone");
    }

    #[test]
    fn checksums_are_six_base62_characters_zero_padded() {
        assert_eq!(checksum(""), "000000", "CRC32 of nothing is 0");
        assert!(62u64.pow(6) > u64::from(u32::MAX), "six base62 characters hold any CRC32");
        assert!(checksum("loom").bytes().all(|b| b.is_ascii_alphanumeric()) && checksum("loom").len() == 6);
    }

    #[test]
    fn names_and_lifetimes_are_bounded() {
        assert_eq!(name("  ci  "), Ok("ci"));
        assert_eq!(name(&"é".repeat(64)).map(str::len), Ok(128));
        assert_eq!(name(&"x".repeat(65)), Err(PatRefusal::Name));
        assert_eq!(name("   "), Err(PatRefusal::Name));
        assert_eq!(name("a\nb"), Err(PatRefusal::Name));
        for lookalike in ["ci\u{200b}", "ci\u{202e}x", "a\u{2028}b", "\u{ad}", "ci\u{e000}"] {
            assert_eq!(name(lookalike), Err(PatRefusal::Name), "{lookalike:?}");
        }
        assert_eq!(name("déploiement de prod"), Ok("déploiement de prod"));
        let policy = PatPolicy::default();
        assert_eq!(policy.lifetime_days(None), Ok(30));
        assert_eq!(policy.lifetime_days(Some(366)), Ok(366));
        assert!(policy.lifetime_days(Some(0)).is_err() && policy.lifetime_days(Some(367)).is_err());
        assert!(policy.lifetime_days(Some(-1)).is_err());
    }

    #[test]
    fn a_sid_names_a_token_or_a_session() {
        assert_eq!(Credential::of_sid(None), Credential::Session(None));
        assert!(Credential::of_sid(Some("ab".repeat(16))).may_manage_credentials());
        let pat = Credential::of_sid(Some(format!("{ID_PREFIX}{}", "ab".repeat(16))));
        assert!(!pat.may_manage_credentials() && pat.session().is_none());
    }

    #[test]
    fn an_expiry_is_said_as_a_day() {
        assert_eq!(day_of(1_798_848_000), "2027-01-02");
    }
}
