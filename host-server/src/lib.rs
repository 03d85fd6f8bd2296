//! Loom Auth host: an axum HTTP API over SQLite or PostgreSQL whose password and token logic
//! runs in a WebAssembly component under wasmtime.
//!
//! - [`runtime`]: loads, sandboxes, calls and swaps the component (no HTTP, no database).
//! - [`store`]: users in SQLite or PostgreSQL (no HTTP, no WebAssembly).
//! - [`routes`]: the handlers, which orchestrate the two.
//! - [`state`]: what every handler can reach.
//! - [`startup`], [`config`], [`keys`], [`tokens`], [`reload`]: wiring, settings,
//!   the signing secret, token settings, swap triggers.
//! - [`keyring`]: the signing keys hosts share (sealed in the store, refreshed every 5 s).
//! - [`telemetry`]: logs (text or JSON), audit events and Prometheus metrics.
//! - [`admin`]: `host-server users …`, account administration without serving.
//! - [`email`]: one spelling and one unique key per email address; [`username`]: what a username is.
//! - [`import`]: moving the FastAPI service's users in (`host-server users import`).
//! - [`password`]: the one spelling of a password, and what a new one must be.
//! - [`credentials`]: password checks whose time tells nothing about the account.
//! - [`durable`]: the one way the host writes files (atomic and synced).
//! - [`platform`]: what differs between operating systems.
//! - [`serve`]: the accept loop, connection and request timeouts, graceful shutdown.
//! - [`throttle`]: the throttling policy (counters live in the store).
//! - [`sessions`]: how long logins last, and rotating refresh tokens.

pub mod admin;
pub mod config;
pub mod credentials;
pub mod durable;
pub mod email;
pub mod import;
pub mod keyring;
pub mod keys;
pub mod password;
pub mod platform;
pub mod reload;
pub mod routes;
pub mod runtime;
pub mod serve;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod tokens;
pub mod username;
