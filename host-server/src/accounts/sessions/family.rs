//! The refresh token's form: `loomrt_<session>.<generation>.<tag>`, the tag an HMAC of the
//! session id and generation under a key derived from the master key ([`Sealer::tag`]). A
//! token says which session's family it is and where in it, and only this host (and those
//! sharing its master key) can make one: read without the database, a token whose tag does
//! not match is refused at once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use super::SESSION_ID_HEX;
use crate::keyring::seal::Sealer;

/// What every refresh token starts with, so secret scanners can tell one.
pub const REFRESH_PREFIX: &str = "loomrt_";
/// What a refresh token's tag is made for (see [`Sealer::tag`]).
const TAG_PURPOSE: &str = "loom-auth refresh token v1";

/// A refresh token as presented, read without the database.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// A family token whose tag matches: its session and generation.
    Family { session: String, generation: i64 },
    /// A token from before families (random): only its digest can find its session.
    Unfamiliar,
    /// Shaped like a family token, but its tag does not match: never issued here.
    Forged,
}

/// The refresh token of `session`'s `generation`.
pub fn family_token(sealer: &Sealer, session: &str, generation: i64) -> SecretString {
    let tag = sealer.tag(TAG_PURPOSE, &[session.as_bytes(), generation.to_string().as_bytes()]);
    SecretString::from(format!("{REFRESH_PREFIX}{session}.{generation}.{}", URL_SAFE_NO_PAD.encode(tag)))
}

/// Reads `token` (see [`Presented`]).
pub fn read_token(sealer: &Sealer, token: &str) -> Presented {
    let Some(body) = token.strip_prefix(REFRESH_PREFIX) else { return Presented::Unfamiliar };
    let mut parts = body.split('.');
    let (Some(session), Some(generation), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return if body.contains('.') { Presented::Forged } else { Presented::Unfamiliar };
    };
    let session_ok = session.len() == SESSION_ID_HEX && session.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    // Written by `family_token` only: digits, no sign, no leading zero, from 1.
    let number = generation.parse::<i64>().ok().filter(|n| *n >= 1 && n.to_string() == generation);
    let tag = URL_SAFE_NO_PAD.decode(tag).ok();
    match (session_ok, number, tag) {
        (true, Some(number), Some(tag))
            if sealer.tag_matches(TAG_PURPOSE, &[session.as_bytes(), generation.as_bytes()], &tag) =>
        {
            Presented::Family { session: session.to_owned(), generation: number }
        }
        _ => Presented::Forged,
    }
}

/// The hex SHA-256 of a refresh token: what the store keeps. A refresh token carries a 256-bit
/// tag under a key the database never holds, so a fast digest is enough (nothing to guess); a
/// database dump gives no token.
pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&secrecy::SecretSlice::from(vec![3u8; 32]))
    }

    #[test]
    fn refresh_tokens_name_their_family_and_carry_its_tag() {
        let id = "0123456789abcdef0123456789abcdef";
        let token = family_token(&sealer(), id, 7);
        let text = token.expose_secret();
        assert!(text.starts_with(&format!("{REFRESH_PREFIX}{id}.7.")), "{text}");
        assert_eq!(text.len(), REFRESH_PREFIX.len() + 32 + 3 + 43);
        assert_eq!(read_token(&sealer(), text), Presented::Family { session: id.into(), generation: 7 });
        assert_ne!(family_token(&sealer(), id, 8).expose_secret(), text);
        assert_eq!(read_token(&sealer(), "loomrt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), Presented::Unfamiliar);
        assert_eq!(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
