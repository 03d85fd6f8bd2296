//! Secrets under the master key. Sealing: XChaCha20-Poly1305 with a random 24-byte nonce, and
//! what the secret belongs to as associated data (a signing key's id and algorithm), so a
//! sealed secret moved to another row no longer opens. Tagging: HMAC-SHA256 under a key
//! derived from the master key, for values the host must later recognise as its own (a
//! refresh token names its session and generation, and carries their tag).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

const NONCE_BYTES: usize = 24;

/// Why sealed key material did not open.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("it does not open with this master key (hosts sharing a database must share the master-key file)")]
    WrongKey,
    #[error("no randomness for a nonce")]
    Random,
}

/// Seals and opens key material, and tags values, under the master key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    /// HMAC-SHA256(master, "loom-auth tag key v1"): tags never use the sealing key itself.
    tag_key: Zeroizing<[u8; 32]>,
}

impl Sealer {
    /// A sealer under `master` (its first 32 bytes).
    pub fn new(master: &SecretSlice<u8>) -> Self {
        let master = &master.expose_secret()[..32];
        let cipher = XChaCha20Poly1305::new_from_slice(master).expect("a 32-byte key fits XChaCha20-Poly1305");
        let mut derive = <HmacSha256 as Mac>::new_from_slice(master).expect("HMAC takes keys of any length");
        derive.update(b"loom-auth tag key v1");
        let tag_key = Zeroizing::new(derive.finalize().into_bytes().into());
        Self { cipher, tag_key }
    }

    /// The tag of `parts` for `purpose`: the same parts give the same tag under the same master key.
    pub fn tag(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        self.tag_mac(purpose, parts).finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `parts` for `purpose` (compared in constant time).
    pub fn tag_matches(&self, purpose: &str, parts: &[&[u8]], tag: &[u8]) -> bool {
        self.tag_mac(purpose, parts).verify_slice(tag).is_ok()
    }

    fn tag_mac(&self, purpose: &str, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.tag_key[..]).expect("HMAC takes keys of any length");
        mac.update(purpose.as_bytes());
        for part in parts {
            // Each part with its length first, so no two lists of parts run together alike.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// `nonce || ciphertext` of `private`, bound to `kid` and `algorithm`.
    pub fn seal(&self, kid: &str, algorithm: &str, private: &[u8]) -> Result<Vec<u8>, SealError> {
        self.seal_bound(&key_context(kid, algorithm), private)
    }

    /// The private material sealed for `kid` and `algorithm`.
    pub fn open(&self, kid: &str, algorithm: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.open_bound(&key_context(kid, algorithm), sealed)
    }

    fn seal_bound(&self, aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let sealed = self.cipher.encrypt(&XNonce::from(nonce), Payload { msg, aad }).map_err(|_| SealError::Random)?;
        Ok([&nonce[..], &sealed].concat())
    }

    fn open_bound(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < NONCE_BYTES {
            return Err(SealError::WrongKey);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::WrongKey)?;
        self.cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad })
            .map(Zeroizing::new)
            .map_err(|_| SealError::WrongKey)
    }
}

/// What a sealed key is bound to: its row's id and algorithm.
fn key_context(kid: &str, algorithm: &str) -> Vec<u8> {
    format!("loom-auth signing key\0{kid}\0{algorithm}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&SecretSlice::from(vec![byte; 32]))
    }

    #[test]
    fn sealed_material_opens_only_with_its_key_kid_and_algorithm() {
        let private = b"an ed25519 seed, thirty-two byte";
        let sealed = sealer(1).seal("k1", "EdDSA", private).unwrap();
        assert!(!sealed.windows(8).any(|w| private.windows(8).any(|p| p == w)), "the plaintext shows");
        assert_eq!(&sealer(1).open("k1", "EdDSA", &sealed).unwrap()[..], private);
        assert!(sealer(2).open("k1", "EdDSA", &sealed).is_err(), "another master key");
        assert!(sealer(1).open("k2", "EdDSA", &sealed).is_err(), "another row");
        assert!(sealer(1).open("k1", "HS256", &sealed).is_err(), "another algorithm");
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(sealer(1).open("k1", "EdDSA", &flipped).is_err(), "tampered");
        assert_ne!(sealer(1).seal("k1", "EdDSA", private).unwrap(), sealed, "fresh nonces");
    }

    #[test]
    fn tags_are_the_master_keys_and_bind_purpose_and_every_part() {
        let tag = sealer(1).tag("refresh", &[b"s1", b"7"]);
        assert!(sealer(1).tag_matches("refresh", &[b"s1", b"7"], &tag));
        assert_eq!(sealer(1).tag("refresh", &[b"s1", b"7"]), tag, "deterministic");
        assert!(!sealer(2).tag_matches("refresh", &[b"s1", b"7"], &tag), "another master key");
        assert!(!sealer(1).tag_matches("other", &[b"s1", b"7"], &tag), "another purpose");
        assert!(!sealer(1).tag_matches("refresh", &[b"s1", b"8"], &tag), "another part");
        assert!(!sealer(1).tag_matches("refresh", &[b"s17", b""], &tag), "parts do not run together");
        assert!(!sealer(1).tag_matches("refresh", &[b"s1", b"7"], &tag[..31]), "a shortened tag");
        // The tag key is not the sealing key: a tag is no HMAC under the master key itself.
        let mut plain = <HmacSha256 as Mac>::new_from_slice(&[1u8; 32]).unwrap();
        plain.update(b"refresh");
        assert_ne!(plain.finalize().into_bytes()[..], sealer(1).tag("refresh", &[])[..]);
    }
}
