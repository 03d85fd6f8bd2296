//! Operating the host: readiness, and a graceful shutdown that loses no request.

use std::time::Duration;

use loom_e2e::{HostOptions, TestHost, client, register};
use reqwest::StatusCode;

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn sigterm_lets_accepted_requests_finish_then_exits_zero() {
    let options = HostOptions {
        // tower-http logs each request's start and end at debug: how the test knows what is in flight.
        log_filter: Some("info,tower_http=debug".into()),
        args: vec!["--login-max-failures".into(), "1000".into(), "--shutdown-grace".into(), "30".into()],
        ..Default::default()
    };
    let mut host = TestHost::spawn_with(options);
    register(&host, "ada@example.com", PASSWORD).await;
    let started = |logs: &str| logs.lines().filter(|l| l.contains("started processing request")).count();
    let finished = |logs: &str| logs.lines().filter(|l| l.contains("finished processing request")).count();
    let before = started(&host.logs());

    // Eight logins: their hashes run one per core, so most are still in flight at the signal.
    const LOGINS: usize = 8;
    let logins: Vec<_> = (0..LOGINS)
        .map(|_| {
            let request = client()
                .post(host.url("/token"))
                .form(&[("username", "ada@example.com"), ("password", PASSWORD)])
                .send();
            tokio::spawn(request)
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while started(&host.logs()) < before + LOGINS {
        assert!(tokio::time::Instant::now() < deadline, "the logins never reached the host:\n{}", host.logs());
        tokio::time::sleep(Duration::from_millis(5)).await; // polling the log for the host's own report
    }
    let done_at_signal = finished(&host.logs());
    let (host, code) = tokio::task::spawn_blocking(move || {
        let code = host.terminate();
        (host, code)
    })
    .await
    .unwrap();

    for login in logins {
        let response = login.await.unwrap().expect("an accepted request is answered");
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(code, Some(0), "{}", host.logs());
    assert!(done_at_signal < before + LOGINS, "every login had finished before the signal: the test proved nothing");
    let logs = host.logs();
    assert!(logs.contains("shutting down") && logs.contains("stopped"), "{logs}");
    assert!(client().get(host.url("/healthz")).send().await.is_err(), "the host still accepts connections");
}
