//! `loom` end to end: the real binary against the real host, each test in its own project directory.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use loom_e2e::{HostOptions, Outcome, Project, TestHost, client, login, register, run};
use serde_json::{Map, Value};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";
const USER_SETTINGS: &str = r#"{
  "project_name": "demo",
  "agent_execution_order": ["planner", "coder", "reviewer"],
  "llm_settings": {"provider": "local", "temperature": 0.2}
}
"#;

fn keys(path: &std::path::Path) -> Vec<String> {
    let map: Map<String, Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    map.keys().cloned().collect()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn stored_token(project: &Project) -> String {
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(project.settings()).unwrap()).unwrap();
    settings["auth"]["access_token"].as_str().expect("a saved token").to_owned()
}

fn login_with_stdin(project: &Project, host: &TestHost, email: &str, password: &str) -> Outcome {
    let command = project.loom(&["login", "--server", &host.base_url, "--username", email, "--password-stdin"]);
    run(command, Some(&format!("{password}\n")))
}

fn one_line(text: &str) -> &str {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got {text:?}");
    lines[0]
}

#[tokio::test]
async fn interactive_login_hides_the_password_and_keeps_every_other_setting() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    std::fs::write(project.settings(), USER_SETTINGS).unwrap();
    std::fs::set_permissions(project.settings(), std::fs::Permissions::from_mode(0o644)).unwrap();

    let command = project.loom(&["login", "--server", &host.base_url]);
    let mut session = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
    session.exp_string("Email: ").unwrap();
    session.send_line(EMAIL).unwrap();
    // The password prompt names the server it goes to.
    session.exp_string(&format!("Password for {EMAIL} at {}: ", host.base_url)).unwrap();
    session.send_line(PASSWORD).unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains(&format!("Logged in to {} as {EMAIL}", host.base_url)), "{rest:?}");
    assert!(!rest.contains(PASSWORD), "the password was echoed: {rest:?}");
    assert!(rest.contains("0600"), "tightening the mode is reported: {rest:?}");

    assert_eq!(keys(&project.settings()), ["project_name", "agent_execution_order", "llm_settings", "auth"]);
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(project.settings()).unwrap()).unwrap();
    let before: Value = serde_json::from_str(USER_SETTINGS).unwrap();
    for key in ["project_name", "agent_execution_order", "llm_settings"] {
        assert_eq!(settings[key], before[key], "{key}");
    }
    assert_eq!(settings["auth"]["server"], host.base_url);
    assert_eq!(settings["auth"]["email"], EMAIL);
    assert_eq!(mode(&project.settings()), 0o600);

    // The saved token is a real one.
    let response = client().get(host.url("/users/me/")).bearer_auth(stored_token(&project)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["email"], EMAIL);
}

#[tokio::test]
async fn scripted_login_whoami_and_logout() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    std::fs::write(project.settings(), USER_SETTINGS).unwrap();

    let login = login_with_stdin(&project, &host, EMAIL, PASSWORD);
    assert_eq!(login.code, Some(0), "{login:?}");
    assert_eq!(one_line(&login.stdout), format!("Logged in to {} as {EMAIL}", host.base_url));

    // No --server: the saved login's server is used.
    let whoami = run(project.loom(&["whoami"]), None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    let line = one_line(&whoami.stdout);
    assert!(line.contains(EMAIL) && line.contains(&host.base_url), "{line}");
    assert!(line.contains("dev-automation.config.json"), "says where the token came from: {line}");

    let logout = run(project.loom(&["logout"]), None);
    assert_eq!(logout.code, Some(0), "{logout:?}");
    assert_eq!(one_line(&logout.stdout), format!("Logged out of {}", host.base_url));
    assert_eq!(keys(&project.settings()), ["project_name", "agent_execution_order", "llm_settings"]);

    let again = run(project.loom(&["logout"]), None);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(one_line(&again.stdout), "Not logged in");

    let whoami = run(project.loom(&["whoami", "--server", &host.base_url]), None);
    assert_eq!(whoami.code, Some(4), "{whoami:?}");
    assert_eq!(one_line(&whoami.stderr), "Not logged in. Run 'loom login'.");
}

#[tokio::test]
async fn logout_revokes_the_token_on_the_server_and_all_revokes_every_session() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let (laptop, desktop) = (Project::new(), Project::new());
    assert_eq!(login_with_stdin(&laptop, &host, EMAIL, PASSWORD).code, Some(0));
    let copied = stored_token(&laptop);
    let logout = run(laptop.loom(&["logout"]), None);
    assert_eq!(logout.code, Some(0), "{logout:?}");
    // A copy of the token is refused by the server now.
    let response = loom_e2e::client().get(host.url("/users/me/")).bearer_auth(&copied).send().await.unwrap();
    assert_eq!(response.status(), 401);

    assert_eq!(login_with_stdin(&laptop, &host, EMAIL, PASSWORD).code, Some(0));
    assert_eq!(login_with_stdin(&desktop, &host, EMAIL, PASSWORD).code, Some(0));
    // Tokens issued before the logout's second are refused: let the clock move on.
    std::thread::sleep(Duration::from_millis(1100));
    let everywhere = run(laptop.loom(&["logout", "--all"]), None);
    assert_eq!(everywhere.code, Some(0), "{everywhere:?}");
    assert_eq!(one_line(&everywhere.stdout), format!("Logged out of {} everywhere", host.base_url));
    let elsewhere = run(desktop.loom(&["whoami"]), None);
    assert_eq!(elsewhere.code, Some(4), "the other machine's session ends too: {elsewhere:?}");
}

#[test]
fn logout_forgets_the_token_even_when_the_server_is_gone() {
    let project = Project::new();
    let server = closed_port();
    let login = format!(
        r#"{{"project_name": "demo", "auth": {{"server": "{server}", "email": "ada@example.com", "access_token": "a.b.c", "token_type": "bearer", "expires_at": "2099-01-01T00:00:00Z"}}}}"#
    );
    std::fs::write(project.settings(), login).unwrap();
    project.know_server(&server);
    let outcome = run(project.loom(&["logout"]), None);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert_eq!(one_line(&outcome.stdout), format!("Logged out of {server} on this machine"));
    assert!(outcome.stderr.contains("the server did not end the session"), "{outcome:?}");
    assert_eq!(keys(&project.settings()), ["project_name"]);
}

#[tokio::test]
async fn loom_token_overrides_the_saved_login() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    register(&host, "ci@example.com", PASSWORD).await;
    let ci_token = login(&host, "ci@example.com", PASSWORD).await;
    let project = Project::new();
    assert_eq!(login_with_stdin(&project, &host, EMAIL, PASSWORD).code, Some(0));

    let mut whoami = project.loom(&["whoami", "--server", &host.base_url]);
    whoami.env("LOOM_TOKEN", &ci_token);
    let outcome = run(whoami, None);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    let line = one_line(&outcome.stdout);
    assert!(line.contains("ci@example.com") && line.contains("LOOM_TOKEN"), "{line}");

    let mut logout = project.loom(&["logout"]);
    logout.env("LOOM_TOKEN", &ci_token);
    let outcome = run(logout, None);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert!(outcome.stderr.contains("LOOM_TOKEN"), "warns that the variable stays in use: {outcome:?}");
    assert!(!keys(&project.settings()).contains(&"auth".to_owned()));
}

/// A server on loopback that answers every connection with `reply`, for a bounded number of connections.
fn fake_server(reply: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(reply);
        }
    });
    url
}

fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[tokio::test]
async fn failed_logins_explain_in_one_line_and_leave_the_settings_untouched() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let html = fake_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 25\r\nconnection: close\r\n\r\n<html>hello, world</html>",
    );
    let broken =
        fake_server(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 5\r\nconnection: close\r\n\r\noops!");
    let garbage = fake_server(b"SSH-2.0-OpenSSH_9.6\r\n");
    let cases = [
        (host.base_url.clone(), EMAIL, "not the password", "Incorrect username or password"),
        (host.base_url.clone(), "nobody@example.com", PASSWORD, "Incorrect username or password"),
        (closed_port(), EMAIL, PASSWORD, "Cannot reach the Loom server at"),
        (html, EMAIL, PASSWORD, "does not understand"),
        (broken, EMAIL, PASSWORD, "500"),
        (garbage, EMAIL, PASSWORD, "Cannot reach the Loom server at"),
    ];
    for (server, email, password, expected) in cases {
        let project = Project::new();
        std::fs::write(project.settings(), USER_SETTINGS).unwrap();
        let command = project.loom(&["login", "--server", &server, "--username", email, "--password-stdin"]);
        let outcome = run(command, Some(password));
        assert_eq!(outcome.code, Some(1), "{server}: {outcome:?}");
        let line = one_line(&outcome.stderr);
        assert!(line.starts_with("error: ") && line.contains(expected), "{server}: {line}");
        assert!(!line.contains(password), "{line}");
        assert!(outcome.stdout.is_empty(), "{outcome:?}");
        assert_eq!(std::fs::read_to_string(project.settings()).unwrap(), USER_SETTINGS, "{server}");
    }
}

#[tokio::test]
async fn settings_that_are_not_json_are_refused_and_left_alone() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    let broken = "{\n  \"project_name\": \"demo\",\n  oops\n}\n";
    std::fs::write(project.settings(), broken).unwrap();
    let commands: [(&[&str], Option<&str>); 3] = [
        (&["login", "--server", &host.base_url, "--username", EMAIL, "--password-stdin"], Some(PASSWORD)),
        (&["logout"], None),
        (&["whoami"], None),
    ];
    for (args, stdin) in commands {
        let outcome = run(project.loom(args), stdin);
        assert_eq!(outcome.code, Some(1), "{args:?}: {outcome:?}");
        let line = one_line(&outcome.stderr);
        assert!(line.ends_with("dev-automation.config.json: invalid JSON at line 3 column 3"), "{line}");
        assert_eq!(std::fs::read_to_string(project.settings()).unwrap(), broken);
    }
}

#[tokio::test]
async fn an_expired_session_asks_for_a_new_login() {
    // Access tokens of a second, renewed by themselves, within a session of three seconds.
    let options = HostOptions {
        token_ttl: Some(1),
        leeway: Some(0),
        args: vec!["--session-max-age".into(), "3".into()],
        ..Default::default()
    };
    let host = TestHost::spawn_with(options);
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    assert_eq!(login_with_stdin(&project, &host, EMAIL, PASSWORD).code, Some(0));
    assert_eq!(run(project.loom(&["whoami"]), None).code, Some(0), "renewed while the session lasts");
    // Wait for the session's three seconds to pass (bounded).
    let deadline = Instant::now() + Duration::from_secs(15);
    let outcome = loop {
        let outcome = run(project.loom(&["whoami"]), None);
        if outcome.code != Some(0) || Instant::now() > deadline {
            break outcome;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(outcome.code, Some(4), "{outcome:?}");
    let line = one_line(&outcome.stderr);
    assert!(line.starts_with(&format!("Your session on {} has ended", host.base_url)), "{line}");
    assert!(line.ends_with("Run 'loom login'."), "{line}");
    assert!(!keys(&project.settings()).contains(&"auth".to_owned()), "the dead tokens are forgotten");

    // A login saved before sessions has no refresh token: once expired, it asks for a login.
    let old = Project::new();
    saved_login(&old, &host.base_url, &token_expiring_at(1_600_000_000));
    old.know_server(&host.base_url);
    let outcome = run(old.loom(&["whoami"]), None);
    assert_eq!(outcome.code, Some(4), "{outcome:?}");
    let line = one_line(&outcome.stderr);
    assert!(line.starts_with(&format!("Your saved login for {} expired ", host.base_url)), "{line}");
}

#[tokio::test]
async fn a_refused_loom_token_is_named_as_the_culprit() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    // A valid saved login must not be blamed for the variable's bad token.
    assert_eq!(login_with_stdin(&project, &host, EMAIL, PASSWORD).code, Some(0));
    let mut whoami = project.loom(&["whoami"]);
    whoami.env("LOOM_TOKEN", "garbage").env("LOOM_SERVER", &host.base_url);
    let outcome = run(whoami, None);
    assert_eq!(outcome.code, Some(4), "{outcome:?}");
    let line = one_line(&outcome.stderr);
    assert!(line.starts_with(&format!("The token in LOOM_TOKEN was refused by {}", host.base_url)), "{line}");
    assert!(line.contains("unset it") && !line.contains("session"), "{line}");
}

#[test]
fn whoami_gives_up_on_a_server_that_never_answers() {
    // Accepts connections (the kernel's backlog does), never reads or answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let project = Project::new();
    let mut whoami = project.loom(&["whoami", "--server", &server]);
    whoami.env("LOOM_TOKEN", "a.b.c");
    let started = Instant::now();
    let outcome = run(whoami, None);
    let took = started.elapsed();
    drop(listener);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert_eq!(
        one_line(&outcome.stderr),
        format!("error: Cannot reach the Loom server at {server}: it did not answer within 10 seconds")
    );
    assert!((Duration::from_secs(9)..Duration::from_secs(20)).contains(&took), "whoami took {took:?}");
}

#[tokio::test]
async fn register_creates_an_account_and_reports_conflicts() {
    let host = TestHost::spawn();
    let project = Project::new();
    let register = |email: &str| {
        run(
            project.loom(&["register", "--server", &host.base_url, "--email", email, "--password-stdin"]),
            Some(PASSWORD),
        )
    };
    let created = register(EMAIL);
    assert_eq!(created.code, Some(0), "{created:?}");
    assert!(one_line(&created.stdout).contains(EMAIL));
    login(&host, EMAIL, PASSWORD).await;

    let again = register(EMAIL);
    assert_eq!(again.code, Some(1));
    assert_eq!(one_line(&again.stderr), "error: Email already registered");
    let invalid = register("not-an-email");
    assert_eq!(invalid.code, Some(1));
    assert!(one_line(&invalid.stderr).contains("not a valid email"), "{invalid:?}");
    assert!(!project.settings().exists(), "registering does not touch the settings");
}

#[tokio::test]
async fn interactive_register_asks_twice_and_refuses_a_mismatch() {
    let host = TestHost::spawn();
    let project = Project::new();
    let mut session =
        rexpect::session::spawn_command(project.loom(&["register", "--server", &host.base_url]), Some(30_000)).unwrap();
    session.exp_string("Email: ").unwrap();
    session.send_line(EMAIL).unwrap();
    session.exp_string("Password: ").unwrap();
    session.send_line(PASSWORD).unwrap();
    session.exp_string("Repeat the password: ").unwrap();
    session.send_line("something else").unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains("the two passwords differ"), "{rest:?}");
    let response =
        client().post(host.url("/token")).form(&[("username", EMAIL), ("password", PASSWORD)]).send().await.unwrap();
    assert_eq!(response.status(), 401, "no account was created");
}

#[test]
fn without_a_terminal_loom_says_which_flags_to_use() {
    let project = Project::new();
    // `setsid` detaches loom from any controlling terminal, as in CI or cron.
    let mut command = Command::new("setsid");
    command.arg("--wait").arg(loom_e2e::binary("loom")).current_dir(project.dir.path()).args(["login"]);
    command.env_remove("LOOM_SERVER").env_remove("LOOM_TOKEN").env_remove("LOOM_CONFIG");
    let outcome = run(command, None);
    assert_eq!(outcome.code, Some(2), "{outcome:?}");
    assert!(one_line(&outcome.stderr).contains("--username"), "{outcome:?}");

    let mut command = Command::new("setsid");
    command.arg("--wait").arg(loom_e2e::binary("loom")).current_dir(project.dir.path());
    command.args(["login", "--username", EMAIL]);
    let outcome = run(command, None);
    assert_eq!(outcome.code, Some(2), "{outcome:?}");
    assert!(one_line(&outcome.stderr).contains("--password-stdin"), "{outcome:?}");
    assert!(!project.settings().exists());
}

#[test]
fn help_teaches_and_usage_errors_exit_2() {
    let project = Project::new();
    for command in ["login", "logout", "whoami", "register", "token", "completions"] {
        let outcome = run(project.loom(&[command, "--help"]), None);
        assert_eq!(outcome.code, Some(0));
        let example = outcome.stdout.split("Example: ").nth(1).unwrap_or_default();
        assert!(example.contains(&format!("loom {command}")), "{command}: {}", outcome.stdout);
    }
    let version = run(project.loom(&["--version"]), None);
    assert_eq!(version.stdout.trim(), format!("loom {}", env!("CARGO_PKG_VERSION")));
    let unknown = run(project.loom(&["frobnicate"]), None);
    assert_eq!(unknown.code, Some(2));
    let bad_url = run(project.loom(&["whoami", "--server", "localhost:8000"]), None);
    assert_eq!(bad_url.code, Some(2));
    assert!(one_line(&bad_url.stderr).contains("not a valid server URL"), "{bad_url:?}");
}

/// A settings file holding a saved login for `server` with `token`.
fn saved_login(project: &Project, server: &str, token: &str) {
    let settings = serde_json::json!({
        "project_name": "demo",
        "auth": {
            "server": server,
            "email": EMAIL,
            "access_token": token,
            "token_type": "bearer",
            "expires_at": "2020-01-01T00:00:00Z",
        }
    });
    std::fs::write(project.settings(), settings.to_string()).unwrap();
}

/// A JWT-shaped token (unsigned: `loom` does not verify) whose `exp` is `exp`.
fn token_expiring_at(exp: u64) -> String {
    use base64::Engine;
    let encode = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    format!("{}.{}.c2ln", encode(r#"{"alg":"HS256","typ":"JWT"}"#), encode(&format!(r#"{{"sub":"1","exp":{exp}}}"#)))
}

/// The `exp` claim of a JWT.
fn exp_claim(token: &str) -> u64 {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["exp"].as_u64().expect("a numeric exp")
}

#[tokio::test]
async fn loom_token_prints_the_token_alone_for_scripts() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();

    let none = run(project.loom(&["token", "--server", &host.base_url]), None);
    assert_eq!(none.code, Some(4), "{none:?}");
    assert_eq!((none.stdout.as_str(), one_line(&none.stderr)), ("", "Not logged in. Run 'loom login'."));

    assert_eq!(login_with_stdin(&project, &host, EMAIL, PASSWORD).code, Some(0));
    let token = run(project.loom(&["token"]), None);
    assert_eq!(token.code, Some(0), "{token:?}");
    assert_eq!(token.stdout, format!("{}\n", stored_token(&project)), "the token and a newline, nothing else");
    assert_eq!(token.stderr, "");
    // The `$(loom token)` idiom.
    let me = client().get(host.url("/users/me/")).bearer_auth(token.stdout.trim_end()).send().await.unwrap();
    assert_eq!(me.status(), 200);

    let mut from_env = project.loom(&["token"]);
    from_env.env("LOOM_TOKEN", "from-the-environment");
    assert_eq!(run(from_env, None).stdout, "from-the-environment\n", "LOOM_TOKEN wins, as everywhere");

    let expired = Project::new();
    saved_login(&expired, &host.base_url, &token_expiring_at(1_600_000_000));
    expired.know_server(&host.base_url);
    let outcome = run(expired.loom(&["token"]), None);
    assert_eq!(outcome.code, Some(4), "{outcome:?}");
    assert_eq!(outcome.stdout, "", "an expired token is not printed");
    let line = one_line(&outcome.stderr);
    assert!(line.starts_with(&format!("Your saved login for {} expired ", host.base_url)), "{line}");
    assert!(line.ends_with("ago. Run 'loom login'."), "{line}");
}

#[tokio::test]
async fn whoami_tells_when_the_session_expires_and_speaks_json() {
    let host = TestHost::spawn_with(HostOptions { token_ttl: Some(3600), ..Default::default() });
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    assert_eq!(login_with_stdin(&project, &host, EMAIL, PASSWORD).code, Some(0));

    let whoami = run(project.loom(&["whoami"]), None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    let line = one_line(&whoami.stdout);
    // The session (renewed by its refresh token) lasts 30 days; the access token an hour.
    assert!(line.ends_with("the session ends in 30 days"), "{line}");

    let json = run(project.loom(&["whoami", "--json"]), None);
    assert_eq!(json.code, Some(0), "{json:?}");
    let report: Value = serde_json::from_str(&json.stdout).expect("whoami --json prints JSON");
    assert_eq!(report["server"], host.base_url);
    assert_eq!(report["email"], EMAIL);
    assert_eq!(report["username"], Value::Null);
    assert_eq!(report["is_active"], true);
    assert!(report["id"].is_i64());
    assert!(report["token_source"].as_str().unwrap().ends_with("dev-automation.config.json"));
    let left = report["expires_in_seconds"].as_u64().expect("seconds left");
    assert!((3500..=3600).contains(&left), "{left}");
    let expires_at = humantime::parse_rfc3339(report["expires_at"].as_str().unwrap()).expect("an RFC 3339 time");
    let exp = expires_at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(exp, exp_claim(&stored_token(&project)), "the token's own exp");
    let session_left = report["session_expires_in_seconds"].as_u64().expect("the session's seconds left");
    assert!((30 * 86_400 - 100..=30 * 86_400).contains(&session_left), "{session_left}");

    let logged_out = run(project.loom(&["whoami", "--json", "--server", "http://127.0.0.1:9"]), None);
    assert_eq!(logged_out.code, Some(4), "{logged_out:?}");
    assert_eq!(logged_out.stdout, "", "no half a JSON object on failure");
}

#[test]
fn completions_for_each_shell_name_every_command() {
    let project = Project::new();
    for shell in ["bash", "zsh", "fish"] {
        let outcome = run(project.loom(&["completions", shell]), None);
        assert_eq!(outcome.code, Some(0), "{shell}: {outcome:?}");
        for command in ["login", "logout", "whoami", "register", "token"] {
            assert!(outcome.stdout.contains(command), "{shell} completions lack {command}");
        }
    }
    assert!(!project.settings().exists(), "completions touch no settings");
    let unknown = run(project.loom(&["completions", "cmd.exe"]), None);
    assert_eq!(unknown.code, Some(2), "{unknown:?}");
    assert!(unknown.stderr.contains("possible values"), "{}", unknown.stderr);
}

#[tokio::test]
async fn the_settings_file_and_the_server_come_from_flags_else_the_environment() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    let elsewhere = project.dir.path().join("elsewhere.json");
    let nowhere = project.dir.path().join("missing-dir/loom.json");

    // LOOM_SERVER and LOOM_CONFIG alone: the login goes to that server and into that file.
    let mut login = project.loom(&["login", "--username", EMAIL, "--password-stdin"]);
    login.env("LOOM_SERVER", &host.base_url).env("LOOM_CONFIG", &elsewhere);
    let outcome = run(login, Some(PASSWORD));
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert_eq!(one_line(&outcome.stdout), format!("Logged in to {} as {EMAIL}", host.base_url));
    assert!(keys(&elsewhere).contains(&"auth".to_owned()), "saved in LOOM_CONFIG's file");
    assert!(!project.settings().exists(), "nothing written to the default file");

    // The file named by LOOM_CONFIG, else --config, holds the login; the default file does not.
    let mut whoami = project.loom(&["whoami"]);
    whoami.env("LOOM_CONFIG", &elsewhere);
    let outcome = run(whoami, None);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert!(one_line(&outcome.stdout).contains(EMAIL), "{outcome:?}");
    let outcome = run(project.loom(&["whoami"]), None);
    assert_eq!(outcome.code, Some(4), "the default file has no login: {outcome:?}");
    // --config wins over LOOM_CONFIG, and --server over LOOM_SERVER.
    let mut whoami = project.loom(&["whoami", "--config", elsewhere.to_str().unwrap(), "--server", &host.base_url]);
    whoami.env("LOOM_CONFIG", &nowhere).env("LOOM_SERVER", closed_port());
    let outcome = run(whoami, None);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert!(one_line(&outcome.stdout).contains(EMAIL), "{outcome:?}");
    // LOOM_SERVER wins over the saved login's server, and the login is not sent there.
    let other = closed_port();
    let mut whoami = project.loom(&["whoami"]);
    whoami.env("LOOM_CONFIG", &elsewhere).env("LOOM_SERVER", &other);
    let outcome = run(whoami, None);
    assert_eq!(outcome.code, Some(4), "{outcome:?}");
    assert_eq!(
        one_line(&outcome.stderr),
        format!(
            "Not logged in to {other} (the saved login is for {}). Run 'loom login --server {other}'.",
            host.base_url
        )
    );
    assert!(!nowhere.exists());
}

#[test]
fn login_waits_thirty_seconds_for_a_server_busy_hashing_then_says_so() {
    // Accepts connections (the kernel's backlog does), never reads or answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let project = Project::new();
    let login = project.loom(&["login", "--server", &server, "--username", EMAIL, "--password-stdin"]);
    let started = Instant::now();
    let outcome = run(login, Some(PASSWORD));
    let took = started.elapsed();
    drop(listener);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert_eq!(
        one_line(&outcome.stderr),
        format!("error: Cannot reach the Loom server at {server}: it did not answer within 30 seconds")
    );
    assert!((Duration::from_secs(29)..Duration::from_secs(45)).contains(&took), "login took {took:?}");
    assert!(!project.settings().exists(), "nothing saved");
}
