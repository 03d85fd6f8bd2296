//! `loom` and sessions: the refresh token saved with the login, refreshes by itself (once,
//! under the settings file's lock, however many `loom`s start at once), the end of a session
//! said plainly, `loom sessions`, `loom logout` and `loom passwd`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use loom_e2e::loom::{expire_saved_login, login_with, one_line, refreshes, saved_login};
use loom_e2e::{HostOptions, Outcome, Project, TestHost, client, register, run};
use serde_json::Value;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

fn login(project: &Project, host: &TestHost) -> Outcome {
    login_with(project, &host.base_url, EMAIL, PASSWORD)
}

#[tokio::test]
async fn login_saves_the_refresh_token_and_loom_renews_an_expired_login_by_itself() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    assert_eq!(login(&project, &host).code, Some(0));
    let auth = saved_login(&project);
    assert!(auth["refresh_token"].as_str().unwrap().starts_with("loomrt_"), "{auth}");
    assert!(auth["session_expires_at"].is_string(), "{auth}");

    // whoami tells when the session ends, not when the 30-minute access token does.
    let whoami = run(project.loom(&["whoami"]), None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    assert!(one_line(&whoami.stdout).ends_with("the session ends in 30 days"), "{whoami:?}");

    expire_saved_login(&project);
    let before = saved_login(&project);
    let whoami = run(project.loom(&["whoami"]), None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    let after = saved_login(&project);
    assert_ne!(after["access_token"], before["access_token"]);
    assert_ne!(after["refresh_token"], before["refresh_token"], "the new pair is saved");
    assert_eq!(refreshes(&host), 1);

    // `loom token` prints a current token, refreshing first when it must.
    expire_saved_login(&project);
    let token = run(project.loom(&["token"]), None);
    assert_eq!(token.code, Some(0), "{token:?}");
    let printed = token.stdout.trim_end();
    assert_eq!(printed, saved_login(&project)["access_token"].as_str().unwrap());
    let me = client().get(host.url("/users/me/")).bearer_auth(printed).send().await.unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(refreshes(&host), 2);
}

#[tokio::test]
async fn six_looms_started_at_once_after_expiry_refresh_once_and_all_succeed() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    assert_eq!(login(&project, &host).code, Some(0));
    expire_saved_login(&project);
    loom_e2e::loom::all_succeed_at_once((0..6).map(|_| project.loom(&["whoami"])));
    assert_eq!(refreshes(&host), 1, "one rotation for six processes:\n{}", host.logs());
    // The session is still live well past any grace: the saved refresh token works.
    let refresh_token = saved_login(&project)["refresh_token"].as_str().unwrap().to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
    assert_eq!(client().post(host.url("/token")).form(&form).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_session_ended_elsewhere_is_said_plainly_and_its_tokens_forgotten() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let (laptop, desktop) = (Project::new(), Project::new());
    assert_eq!(login(&laptop, &host).code, Some(0));
    assert_eq!(login(&desktop, &host).code, Some(0));
    // Log out everywhere from the desktop.
    let everywhere = run(desktop.loom(&["logout", "--all"]), None);
    assert_eq!(everywhere.code, Some(0), "{everywhere:?}");
    // The laptop's access token is refused now; its refresh token too: the session has ended.
    let whoami = run(laptop.loom(&["whoami"]), None);
    assert_eq!(whoami.code, Some(4), "{whoami:?}");
    let line = one_line(&whoami.stderr);
    assert!(line.contains("session") && line.contains("has ended") && line.contains("loom login"), "{line}");
    assert!(saved_login(&laptop).is_null(), "the dead tokens are forgotten");
    // LOOM_TOKEN is an access token only: an expired one is said so, and nothing is refreshed.
    let mut with_env = laptop.loom(&["whoami", "--server", &host.base_url]);
    let expired = format!("eyJhbGciOiJFZERTQSJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(r#"{"sub":"1","exp":1700000000}"#));
    with_env.env("LOOM_TOKEN", expired);
    let outcome = run(with_env, None);
    assert_eq!(outcome.code, Some(4), "{outcome:?}");
    assert!(one_line(&outcome.stderr).contains("cannot be renewed"), "{outcome:?}");
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_and_logout_ends_the_refresh_token() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let (laptop, desktop) = (Project::new(), Project::new());
    assert_eq!(login(&laptop, &host).code, Some(0));
    assert_eq!(login(&desktop, &host).code, Some(0));

    let listed = run(laptop.loom(&["sessions", "--json"]), None);
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let sessions: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(sessions.len(), 2);
    let table = run(laptop.loom(&["sessions"]), None);
    assert_eq!(table.stdout.lines().count(), 3, "a header and two sessions: {table:?}");
    assert!(table.stdout.contains("(this one)"), "{table:?}");

    // Revoke the desktop's session from the laptop.
    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    let revoked = run(laptop.loom(&["sessions", "revoke", &other]), None);
    assert_eq!(revoked.code, Some(0), "{revoked:?}");
    assert_eq!(run(desktop.loom(&["whoami"]), None).code, Some(4));
    let unknown = run(laptop.loom(&["sessions", "revoke", "no-such-session"]), None);
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(one_line(&unknown.stderr).contains("no live session no-such-session"), "{unknown:?}");

    // Logout ends the session on the server: its refresh token is dead too.
    let refresh_token = saved_login(&laptop)["refresh_token"].as_str().unwrap().to_owned();
    let logout = run(laptop.loom(&["logout"]), None);
    assert_eq!(logout.code, Some(0), "{logout:?}");
    assert_eq!(one_line(&logout.stdout), format!("Logged out of {}", host.base_url));
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
    assert_eq!(client().post(host.url("/token")).form(&form).send().await.unwrap().status(), 400);
}

#[tokio::test]
async fn passwd_changes_the_password_and_ends_the_other_sessions() {
    let host = TestHost::spawn_with(HostOptions::default());
    register(&host, EMAIL, PASSWORD).await;
    let (laptop, desktop) = (Project::new(), Project::new());
    assert_eq!(login(&laptop, &host).code, Some(0));
    assert_eq!(login(&desktop, &host).code, Some(0));
    let new = "a fresh passphrase for ada 9";
    let wrong = run(laptop.loom(&["passwd", "--password-stdin"]), Some(&format!("not it\n{new}\n")));
    assert_eq!(wrong.code, Some(1), "{wrong:?}");
    assert!(one_line(&wrong.stderr).contains("The current password is incorrect"), "{wrong:?}");
    let one_line_only = run(laptop.loom(&["passwd", "--password-stdin"]), Some(PASSWORD));
    assert_eq!(one_line_only.code, Some(2), "{one_line_only:?}");
    let changed = run(laptop.loom(&["passwd", "--password-stdin"]), Some(&format!("{PASSWORD}\n{new}\n")));
    assert_eq!(changed.code, Some(0), "{changed:?}");
    assert!(one_line(&changed.stdout).contains("every other session of the account has ended"), "{changed:?}");
    assert_eq!(run(laptop.loom(&["whoami"]), None).code, Some(0), "this session goes on");
    assert_eq!(run(desktop.loom(&["whoami"]), None).code, Some(4), "the other one ended");
    let old = client().post(host.url("/token")).form(&[("username", EMAIL), ("password", PASSWORD)]).send();
    assert_eq!(old.await.unwrap().status(), 401);
    let again = desktop.loom(&["login", "--server", &host.base_url, "--username", EMAIL, "--password-stdin"]);
    let again = run(again, Some(new));
    assert_eq!(again.code, Some(0), "{again:?}");
}
