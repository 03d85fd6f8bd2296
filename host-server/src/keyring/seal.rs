//! Sealing secrets under the master key: XChaCha20-Poly1305 with a random 24-byte nonce, and
//! what the secret belongs to as associated data (a signing key's id and algorithm, a refresh
//! token's session), so a sealed secret moved to another row no longer opens.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretSlice};
use zeroize::Zeroizing;

const NONCE_BYTES: usize = 24;

/// Why sealed key material did not open.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("it does not open with this master key (hosts sharing a database must share the master-key file)")]
    WrongKey,
    #[error("no randomness for a nonce")]
    Random,
}

/// Seals and opens key material under the master key.
pub struct Sealer(XChaCha20Poly1305);

impl Sealer {
    /// A sealer under `master` (its first 32 bytes).
    pub fn new(master: &SecretSlice<u8>) -> Self {
        let cipher = XChaCha20Poly1305::new_from_slice(&master.expose_secret()[..32]);
        Self(cipher.expect("a 32-byte key fits XChaCha20-Poly1305"))
    }

    /// `nonce || ciphertext` of `private`, bound to `kid` and `algorithm`.
    pub fn seal(&self, kid: &str, algorithm: &str, private: &[u8]) -> Result<Vec<u8>, SealError> {
        self.seal_bound(&key_context(kid, algorithm), private)
    }

    /// The private material sealed for `kid` and `algorithm`.
    pub fn open(&self, kid: &str, algorithm: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.open_bound(&key_context(kid, algorithm), sealed)
    }

    /// A session's current refresh token, sealed to that session.
    pub fn seal_refresh(&self, session: &str, token: &[u8]) -> Result<Vec<u8>, SealError> {
        self.seal_bound(&refresh_context(session), token)
    }

    /// The refresh token sealed for `session`.
    pub fn open_refresh(&self, session: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.open_bound(&refresh_context(session), sealed)
    }

    fn seal_bound(&self, aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let sealed = self.0.encrypt(&XNonce::from(nonce), Payload { msg, aad }).map_err(|_| SealError::Random)?;
        Ok([&nonce[..], &sealed].concat())
    }

    fn open_bound(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < NONCE_BYTES {
            return Err(SealError::WrongKey);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::WrongKey)?;
        self.0
            .decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad })
            .map(Zeroizing::new)
            .map_err(|_| SealError::WrongKey)
    }
}

/// What a sealed key is bound to: its row's id and algorithm.
fn key_context(kid: &str, algorithm: &str) -> Vec<u8> {
    format!("loom-auth signing key\0{kid}\0{algorithm}").into_bytes()
}

/// What a sealed refresh token is bound to: its session.
fn refresh_context(session: &str) -> Vec<u8> {
    format!("loom-auth refresh token\0{session}").into_bytes()
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
        // A refresh token opens only for its session, and never as a key.
        let refresh = sealer(1).seal_refresh("s1", b"loomrt_token").unwrap();
        assert_eq!(&sealer(1).open_refresh("s1", &refresh).unwrap()[..], b"loomrt_token");
        assert!(sealer(1).open_refresh("s2", &refresh).is_err());
        assert!(sealer(1).open("s1", "EdDSA", &refresh).is_err());
    }
}
