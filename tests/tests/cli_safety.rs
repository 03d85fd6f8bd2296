//! `loom` against hostile or careless surroundings: plain http to another host,
//! redirects, absurd numbers, a settings file edited meanwhile or tracked by git.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use loom_e2e::loom::one_line;
use loom_e2e::{Outcome, Project, TestHost, register, run};
use serde_json::Value;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

fn login(project: &Project, server: &str) -> Outcome {
    run(project.loom(&["login", "--server", server, "--username", EMAIL, "--password-stdin"]), Some(PASSWORD))
}

/// A loopback server for one request: it reports the request head it got (on
/// `got`), waits for `go`, then answers `reply`.
fn one_shot_server(reply: String) -> (String, mpsc::Receiver<String>, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (got_tx, got) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        head.push_str(&String::from_utf8_lossy(&body));
        let _ = got_tx.send(head);
        if go_rx.recv_timeout(Duration::from_secs(30)).is_ok() {
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (url, got, go)
}

fn json_reply(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn plain_http_to_another_host_is_refused_unless_insecure() {
    let project = Project::new();
    for args in [
        vec!["login", "--username", EMAIL, "--password-stdin"],
        vec!["whoami"],
        vec!["register", "--email", EMAIL, "--password-stdin"],
    ] {
        let mut all = args.clone();
        all.extend(["--server", "http://auth.example.com"]);
        let mut command = project.loom(&all);
        command.env("LOOM_TOKEN", "a.b.c");
        let outcome = run(command, Some(PASSWORD));
        assert_eq!(outcome.code, Some(2), "{args:?}: {outcome:?}");
        let line = one_line(&outcome.stderr);
        assert!(line.contains("plain http://") && line.contains("--insecure") && line.contains("https://"), "{line}");
    }
    // With --insecure loom goes ahead: through a proxy on this machine (the way to reach a
    // remote name from a test), which sees the plain request and answers for the server.
    let account = r#"{"id":1,"email":"ada@example.com","username":null,"is_active":true}"#;
    let (proxy, requests) = scripted_server(vec![json_reply("200 OK", account)]);
    let mut whoami = project.loom(&["whoami", "--insecure", "--server", "http://auth.example.com"]);
    whoami.env("LOOM_TOKEN", "a.b.c").env("http_proxy", &proxy).env_remove("NO_PROXY").env_remove("no_proxy");
    let outcome = run(whoami, None);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert!(outcome.stdout.contains("ada@example.com"), "{outcome:?}");
    assert_eq!(all(&requests), ["GET http://auth.example.com/users/me/ HTTP/1.1"]);
    // Without it, the same command sends nothing.
    let (proxy, requests) = scripted_server(vec![json_reply("200 OK", account)]);
    let mut whoami = project.loom(&["whoami", "--server", "http://auth.example.com"]);
    whoami.env("LOOM_TOKEN", "a.b.c").env("http_proxy", &proxy).env_remove("NO_PROXY").env_remove("no_proxy");
    assert_eq!(run(whoami, None).code, Some(2));
    assert!(all(&requests).is_empty(), "a plain request went out without --insecure");
    assert!(!project.settings().exists());
}

#[test]
fn a_redirect_never_carries_the_password_elsewhere() {
    let (elsewhere, got_elsewhere, _go_elsewhere) = one_shot_server(json_reply("200 OK", "{}"));
    let redirect = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}/token\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let (server, got, go) = one_shot_server(redirect);
    go.send(()).unwrap();
    let project = Project::new();
    let outcome = login(&project, &server);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert!(got.recv_timeout(Duration::from_secs(5)).unwrap().starts_with("POST /token"));
    assert!(one_line(&outcome.stderr).contains("redirected the request to"), "{outcome:?}");
    assert!(
        got_elsewhere.recv_timeout(Duration::from_millis(500)).is_err(),
        "the password reached the redirect target"
    );
    assert!(!project.settings().exists());
}

#[test]
fn an_absurd_expires_in_is_an_error_not_a_panic() {
    let body = r#"{"access_token":"a.b.c","token_type":"bearer","expires_in":18446744073709551615}"#;
    let (server, _got, go) = one_shot_server(json_reply("200 OK", body));
    go.send(()).unwrap();
    let project = Project::new();
    let outcome = login(&project, &server);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    let line = one_line(&outcome.stderr);
    assert!(line.contains("a token said to expire in 18446744073709551615 seconds"), "{line}");
    assert!(!outcome.stderr.contains("panicked") && !project.settings().exists());
    // At the edge: ten years (315,360,000 seconds) is accepted, a second more is not.
    for (expires_in, accepted) in [(315_360_000u64, true), (315_360_001, false)] {
        let body = format!(r#"{{"access_token":"a.b.c","token_type":"bearer","expires_in":{expires_in}}}"#);
        let (server, _got, go) = one_shot_server(json_reply("200 OK", &body));
        go.send(()).unwrap();
        let project = Project::new();
        let outcome = login(&project, &server);
        assert_eq!(outcome.code == Some(0), accepted, "{expires_in}: {outcome:?}");
        assert_eq!(project.settings().exists(), accepted, "{expires_in}");
    }
}

#[test]
fn settings_edited_while_login_waits_are_kept() {
    let body = r#"{"access_token":"a.b.c","token_type":"bearer","expires_in":60}"#;
    let (server, got, go) = one_shot_server(json_reply("200 OK", body));
    let project = Project::new();
    std::fs::write(project.settings(), r#"{"project_name": "demo"}"#).unwrap();
    let mut command = project.loom(&["login", "--server", &server, "--username", EMAIL, "--password-stdin"]);
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(PASSWORD.as_bytes()).unwrap();
    // loom is now waiting for the server: edit the file meanwhile.
    got.recv_timeout(Duration::from_secs(10)).expect("loom asks the server");
    std::fs::write(project.settings(), r#"{"project_name": "demo", "edited_meanwhile": [1, 2]}"#).unwrap();
    go.send(()).unwrap();
    let outcome = loom_e2e::finish_within(child, "loom login", loom_e2e::COMMAND_LIMIT);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(project.settings()).unwrap()).unwrap();
    assert_eq!(settings["edited_meanwhile"], serde_json::json!([1, 2]), "{settings}");
    assert_eq!(settings["auth"]["access_token"], "a.b.c");
}

#[tokio::test]
async fn a_settings_file_tracked_by_git_gets_a_warning() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    std::fs::write(project.settings(), r#"{"project_name": "demo"}"#).unwrap();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git").args(args).current_dir(project.dir.path()).output().unwrap();
        assert!(status.status.success(), "git {args:?}: {status:?}");
    };
    let untracked = login(&project, &host.base_url);
    assert!(!untracked.stderr.contains("tracked by git"), "{untracked:?}");
    git(&["init", "--quiet"]);
    git(&["add", "dev-automation.config.json"]);
    let tracked = login(&project, &host.base_url);
    assert_eq!(tracked.code, Some(0), "{tracked:?}");
    let warning = one_line(&tracked.stderr);
    assert!(warning.contains("tracked by git") && warning.contains("--config"), "{warning}");
}

/// A loopback server that answers the requests it gets with `replies`, in order, one per
/// connection, and reports each request's first line.
fn scripted_server(replies: Vec<String>) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen, requests) = mpsc::channel();
    std::thread::spawn(move || {
        for reply in replies {
            let Ok((mut stream, _)) = listener.accept() else { return };
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = seen.send(first.trim_end().to_owned());
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (url, requests)
}

fn redirect_to(location: &str) -> String {
    format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
}

fn all(requests: &mpsc::Receiver<String>) -> Vec<String> {
    std::iter::from_fn(|| requests.recv_timeout(Duration::from_millis(300)).ok()).collect()
}

#[test]
fn a_password_is_never_sent_again_by_a_redirect_whatever_the_path() {
    // A server under a path prefix: a redirect of /api/token to the same origin is not followed either.
    let (server, requests) = scripted_server(vec![redirect_to("/api/token-elsewhere"), json_reply("200 OK", "{}")]);
    let project = Project::new();
    let outcome = login(&project, &format!("{server}/api"));
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert!(one_line(&outcome.stderr).contains("redirected the request to /api/token-elsewhere"), "{outcome:?}");
    assert_eq!(all(&requests), ["POST /api/token HTTP/1.1"], "the password went out once, to /api/token only");
}

#[test]
fn a_get_follows_a_same_origin_redirect_but_never_carries_the_token_elsewhere() {
    let account = r#"{"id":1,"email":"ada@example.com","username":null,"is_active":true}"#;
    let (server, requests) = scripted_server(vec![redirect_to("/users/me/moved"), json_reply("200 OK", account)]);
    let project = Project::new();
    let mut whoami = project.loom(&["whoami", "--server", &server]);
    whoami.env("LOOM_TOKEN", "a.b.c");
    let outcome = run(whoami, None);
    assert_eq!(outcome.code, Some(0), "same origin is followed: {outcome:?}");
    assert_eq!(all(&requests), ["GET /users/me/ HTTP/1.1", "GET /users/me/moved HTTP/1.1"]);

    let (elsewhere, elsewhere_requests) = scripted_server(vec![json_reply("200 OK", account)]);
    let (server, requests) = scripted_server(vec![redirect_to(&format!("{elsewhere}/users/me/"))]);
    let mut whoami = project.loom(&["whoami", "--server", &server]);
    whoami.env("LOOM_TOKEN", "a.b.c");
    let outcome = run(whoami, None);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert!(one_line(&outcome.stderr).contains("redirected the request to"), "{outcome:?}");
    assert_eq!(all(&requests), ["GET /users/me/ HTTP/1.1"]);
    assert!(all(&elsewhere_requests).is_empty(), "the bearer token reached another origin");
}

/// A project's settings file, as a cloned repository or a pull request brings it, naming `server`.
fn project_naming(server: &str) -> Project {
    let project = Project::new();
    let settings = serde_json::json!({ "project_name": "cloned", "auth": {
        "server": server, "email": EMAIL, "access_token": "a.b.c", "token_type": "bearer",
        "expires_at": "2099-01-01T00:00:00Z" } });
    std::fs::write(project.settings(), settings.to_string()).unwrap();
    project
}

#[test]
fn a_server_named_only_by_a_project_file_gets_no_token_and_no_password_unasked() {
    let (server, requests) = scripted_server(vec![json_reply("200 OK", "{}"); 4]);
    let project = project_naming(&server);

    let mut whoami = project.loom(&["whoami"]);
    whoami.env("LOOM_TOKEN", "a.b.c");
    let outcome = run(whoami, None);
    assert_eq!(outcome.code, Some(2), "{outcome:?}");
    assert!(one_line(&outcome.stderr).contains("LOOM_TOKEN is sent only to a server you name"), "{outcome:?}");

    let outcome = run(project.loom(&["whoami"]), None);
    assert_eq!(outcome.code, Some(4), "{outcome:?}");
    assert!(one_line(&outcome.stderr).contains("you have not logged in to from this machine"), "{outcome:?}");

    for sends_a_password in
        [&["login", "--username", EMAIL, "--password-stdin"][..], &["register", "--email", EMAIL, "--password-stdin"]]
    {
        let outcome = run(project.loom(sends_a_password), Some(PASSWORD));
        assert_eq!(outcome.code, Some(2), "{sends_a_password:?}: {outcome:?}");
        assert!(one_line(&outcome.stderr).contains(&format!("add --server {server}")), "{outcome:?}");
    }

    // At a terminal, the question names the server and the file; "no" sends nothing.
    let mut session = rexpect::session::spawn_command(project.loom(&["login"]), Some(30_000)).unwrap();
    session.exp_string(&format!("names the server {server}")).unwrap();
    session.exp_string("[y/N] ").unwrap();
    session.send_line("n").unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains("nothing was sent"), "{rest:?}");

    let outcome = run(project.loom(&["logout"]), None);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert!(outcome.stderr.contains("was not sent to"), "{outcome:?}");
    assert!(all(&requests).is_empty(), "a password or token went to the project's server");
}

#[tokio::test]
async fn a_server_this_user_logged_in_to_is_trusted_from_any_project_file() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    // The user names it once, at login; from then on a project file naming it is fine.
    assert_eq!(login(&project, &host.base_url).code, Some(0));
    let cloned = project_naming(&host.base_url);
    std::fs::create_dir_all(cloned.user_config()).unwrap();
    copy_dir(&project.user_config(), &cloned.user_config());
    let outcome = run(cloned.loom(&["login", "--username", EMAIL, "--password-stdin"]), Some(PASSWORD));
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert_eq!(run(cloned.loom(&["whoami"]), None).code, Some(0));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
