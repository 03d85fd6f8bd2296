//! What the `loom` tests share: logging in from a script, reading the login `loom` saved,
//! making it expire, and the one line `loom` says on failure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::{Outcome, Project, TestHost, register, run};

/// `loom login --server SERVER --username USERNAME --password-stdin` in `project`.
pub fn login_with(project: &Project, server: &str, username: &str, password: &str) -> Outcome {
    run(project.loom(&["login", "--server", server, "--username", username, "--password-stdin"]), Some(password))
}

/// A host with `email` registered, and a project logged in to it with `password`.
pub async fn logged_in(email: &str, password: &str) -> (TestHost, Project) {
    let host = TestHost::spawn();
    register(&host, email, password).await;
    let project = Project::new();
    assert_eq!(login_with(&project, &host.base_url, email, password).code, Some(0));
    (host, project)
}

/// Runs `commands` at once (started together, then each awaited) and asserts every one exits 0.
pub fn all_succeed_at_once(commands: impl IntoIterator<Item = std::process::Command>) {
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut command| {
            command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            command.spawn().expect("loom starts")
        })
        .collect();
    for child in children {
        let outcome = crate::finish_within(child, "loom", crate::COMMAND_LIMIT);
        assert_eq!(outcome.code, Some(0), "{outcome:?}");
    }
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
