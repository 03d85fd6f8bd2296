//! Why a password could not be hashed or checked, and the bound on its length: shared by the
//! argon2 module and the foreign formats it calls on, so imports flow one way
//! (`passwords` → `foreign` → this).

/// Longest password accepted, in bytes; longer input is refused before hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password could not be hashed or checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the stored hash is not a valid argon2 PHC string")]
    MalformedHash,
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
    #[error("hashing failed inside the component")]
    Internal,
}
