//! The account domain: what an account is and what may be done with it, between the HTTP
//! routes above and the store and runtime below (nothing here knows HTTP).
//!
//! - [`email`]: one spelling and one unique key per email address; [`username`]: what a username is.
//! - [`password`]: the one spelling of a password, and what a new one must be.
//! - [`credentials`]: password checks whose time tells nothing about the account.
//! - [`throttle`]: the throttling policy (counters live in the store).
//! - [`sessions`]: how long logins last, and rotating refresh tokens.
//! - [`pats`]: personal access tokens, credentials for machines.
//! - [`second_factor`]: two-factor login (one-time codes, recovery codes).
//! - [`policy`]: the operator's policy component, asked before registrations, logins and tokens.

pub mod credentials;
pub mod email;
pub mod password;
pub mod pats;
pub mod policy;
pub mod second_factor;
pub mod sessions;
pub mod throttle;
pub mod username;
