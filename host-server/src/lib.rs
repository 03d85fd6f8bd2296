//! Loom Auth host: an axum HTTP API over SQLite or PostgreSQL whose password and token logic
//! runs in a WebAssembly component under wasmtime.
//!
//! The layers, one way: [`routes`] (HTTP) → [`state`] → [`accounts`] (the account domain) →
//! [`store`] and [`runtime`].
//!
//! - [`routes`]: the handlers: parse, call the domain, answer.
//! - [`state`]: what every handler can reach.
//! - [`accounts`]: what an account is and what may be done with it: emails, usernames,
//!   passwords and their checks, the throttle, sessions.
//! - [`runtime`]: loads, sandboxes, calls and swaps the component (no HTTP, no database).
//! - [`store`]: users in SQLite or PostgreSQL (no HTTP, no WebAssembly).
//! - [`startup`], [`config`], [`secret_files`], [`tokens`], [`reload`]: wiring, settings,
//!   the host's secrets kept in files, token settings, swap triggers.
//! - [`keyring`]: the signing keys hosts share (sealed in the store, refreshed every 5 s).
//! - [`telemetry`]: logs (text or JSON), audit events and Prometheus metrics.
//! - [`admin`]: `host-server users …`, account administration without serving.
//! - [`import`]: moving the FastAPI service's users in (`host-server users import`).
//! - [`durable`]: the one way the host writes files (atomic and synced).
//! - [`platform`]: what differs between operating systems.
//! - [`serve`]: the accept loop, connection and request timeouts, graceful shutdown.

pub mod accounts;
pub mod admin;
pub mod config;
pub mod durable;
pub mod import;
pub mod keyring;
pub mod platform;
pub mod reload;
pub mod routes;
pub mod runtime;
pub mod secret_files;
pub mod serve;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tokens;
