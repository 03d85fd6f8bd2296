//! What the `loom` tests share: logging in from a script, reading the login `loom` saved,
//! making it expire, and the one line `loom` says on failure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::{Outcome, Project, TestHost, run};

/// `loom login --server SERVER --username USERNAME --password-stdin` in `project`.
pub fn login_with(project: &Project, server: &str, username: &str, password: &str) -> Outcome {
    run(project.loom(&["login", "--server", server, "--username", username, "--password-stdin"]), Some(password))
}

/// The one non-empty line of `text` (what `loom` says on failure).
pub fn one_line(text: &str) -> &str {
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got {text:?}");
    lines[0]
}

/// The login `loom` saved in `project`'s settings file (its `"auth"` entry).
pub fn saved_login(project: &Project) -> Value {
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(project.settings()).unwrap()).unwrap();
    settings["auth"].clone()
}

/// Makes the saved access token one that expired an hour ago, as `loom` would find it then:
/// the expiry it saved from its own clock has passed, and so has the token's `exp` (its
/// signature is no matter: `loom` refreshes before sending it).
pub fn expire_saved_login(project: &Project) {
    let text = std::fs::read_to_string(project.settings()).unwrap();
    let mut settings: Value = serde_json::from_str(&text).unwrap();
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let exp = hour_ago.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"1","exp":{exp}}}"#));
    settings["auth"]["access_token"] = Value::String(format!("eyJhbGciOiJFZERTQSJ9.{claims}.c2ln"));
    settings["auth"]["expires_at"] = Value::String(humantime::format_rfc3339_seconds(hour_ago).to_string());
    std::fs::write(project.settings(), settings.to_string()).unwrap();
}

/// How many refreshes `host` has answered (its `session.refreshed` audit events).
pub fn refreshes(host: &TestHost) -> usize {
    host.logs().matches("session.refreshed").count()
}
