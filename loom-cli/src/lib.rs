//! The library behind `loom`: the [`api::ApiClient`] every command talks to the
//! Loom server through, and the [`settings::SettingsFile`] that keeps the login
//! inside the user's `dev-automation.config.json` without disturbing the rest.

pub mod api;
pub mod credentials;
pub mod durable;
pub mod known;
pub mod lock;
pub mod password;
pub mod route;
pub mod session;
pub mod settings;
