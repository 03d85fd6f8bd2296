//! No password, token or key reaches the log, even at the most verbose level.

use loom_e2e::{HostOptions, TestHost, client, login, register};

use crate::post_token;

#[tokio::test]
async fn a_full_flow_at_trace_level_logs_no_secret() {
    let host = TestHost::spawn_with(HostOptions { log_filter: Some("trace".into()), ..Default::default() });
    let password = "a distinctive password 7Qx!";
    register(&host, "ada@example.com", password).await;
    let token = login(&host, "ada@example.com", password).await;
    let me = client().get(host.url("/users/me/")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    post_token(&host, &[("username", "ada@example.com"), ("password", "another distinctive guess 9Zk")]).await;
    let logout = client().post(host.url("/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(logout.status(), 204);

    let logs = host.logs();
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "the log is verbose");
    let secret = std::fs::read(host.data_dir.join("master-key")).unwrap();
    let secret_hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let signature = token.rsplit('.').next().unwrap();
    for (what, needle) in [
        ("the password", password),
        ("the wrong password", "another distinctive guess 9Zk"),
        ("the token's signature", signature),
        ("the master key", secret_hex.as_str()),
    ] {
        assert!(!logs.contains(needle), "{what} is in the log");
    }
    assert!(!logs.contains(&String::from_utf8_lossy(&secret).into_owned()), "the raw master key is in the log");
}
