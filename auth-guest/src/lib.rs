//! Loom Auth's auth component: argon2id password hashing (and checking the bcrypt and PBKDF2
//! hashes imported accounts bring), access tokens (JWTs signed with EdDSA or HS256) and the
//! signing keys behind them.
//!
//! The logic lives in plain Rust modules ([`passwords`], [`tokens`], [`keys`]) that are
//! unit-tested natively; built for `wasm32-wasip2`, a thin export layer maps
//! them onto the `loom:auth` WIT world. The component keeps no state between
//! calls: the host passes in every key, setting and the current time.
//!
//! The `hardened` feature builds the alternate component, with a dearer argon2
//! cost, that the swap walkthrough and tests switch to.

pub mod foreign;
pub mod keys;
pub mod otp;
pub mod password_error;
pub mod passwords;
pub mod tokens;

#[cfg(all(target_arch = "wasm32", feature = "export"))]
mod component;
