//! Standard OAuth 2.0 clients (requests-oauthlib's `OAuth2Session(auto_refresh_url=…)`,
//! authlib's `OAuth2Session`) log in and refresh by themselves against a live host.

use std::process::Command;
use std::time::Duration;

use loom_e2e::{TestHost, python_tool, register, run_within};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn oauth_libraries_log_in_and_refresh_by_themselves() {
    let Some(python) = python_tool("python") else { return };
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/oauth_clients.py");
    let mut command = Command::new(python);
    command.arg(script).args([&host.base_url, EMAIL, PASSWORD]);
    let outcome = run_within(command, Duration::from_secs(60));
    assert_eq!(outcome.code, Some(0), "{outcome:?}\n{}", host.logs());
    assert!(outcome.stdout.contains("requests-oauthlib: logged in, refreshed"), "{outcome:?}");
    assert!(outcome.stdout.contains("authlib: logged in, refreshed"), "{outcome:?}");
    let logs = host.logs();
    assert_eq!(logs.matches("session.refreshed").count(), 2, "one refresh each:\n{logs}");
}
