//! `loom` on real machines: proxy variables, tokens and names pasted with whitespace,
//! settings files as editors and dotfile managers leave them, passwords in another Unicode
//! form, and numbers as other issuers write them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use loom_e2e::loom::one_line;
use loom_e2e::{Outcome, Project, TestHost, register, run};
use serde_json::Value;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";
const PROXY_VARIABLES: [&str; 6] = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];

/// A loopback "proxy" that answers every request `502` with an HTML page, as squid does, and
/// reports each request line it gets.
fn fake_proxy() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen, requests) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            let _ = BufReader::new(stream.try_clone().unwrap()).read_line(&mut line);
            let _ = seen.send(line.trim_end().to_owned());
            let page = "<html><body>ERROR: The requested URL could not be retrieved</body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    (url, requests)
}

fn with_proxy(mut command: std::process::Command, proxy: &str) -> std::process::Command {
    for variable in PROXY_VARIABLES {
        command.env(variable, proxy);
    }
    command.env("NO_PROXY", "localhost").env("no_proxy", "localhost");
    command
}

fn login(project: &Project, server: &str, username: &str, password: &str) -> Outcome {
    run(project.loom(&["login", "--server", server, "--username", username, "--password-stdin"]), Some(password))
}

#[tokio::test]
async fn a_server_on_this_machine_is_reached_directly_whatever_the_proxy_variables_say() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let (proxy, requests) = fake_proxy();
    let port = host.base_url.rsplit(':').next().unwrap();
    for server in [host.base_url.clone(), format!("http://localhost:{port}"), format!("http://LocalHost.:{port}")] {
        let project = Project::new();
        let command = project.loom(&["login", "--server", &server, "--username", EMAIL, "--password-stdin"]);
        let outcome = run(with_proxy(command, &proxy), Some(PASSWORD));
        assert_eq!(outcome.code, Some(0), "{server}: {outcome:?}");
        for args in [vec!["whoami"], vec!["logout"]] {
            let outcome = run(with_proxy(project.loom(&args), &proxy), None);
            assert_eq!(outcome.code, Some(0), "{server} {args:?}: {outcome:?}");
        }
    }
    assert_eq!(requests.try_recv().ok(), None, "a password or token went to the proxy");
}

#[test]
fn a_server_elsewhere_goes_through_the_proxy_whose_errors_are_named_as_its_own() {
    let (proxy, requests) = fake_proxy();
    let project = Project::new();
    let mut whoami =
        with_proxy(project.loom(&["--insecure", "--server", "http://loom.invalid:8000", "whoami"]), &proxy);
    whoami.env("LOOM_TOKEN", "a.b.c");
    let outcome = run(whoami, None);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    let line = one_line(&outcome.stderr);
    assert!(
        line.contains(&format!("proxy {proxy} (from http_proxy) answered 502 Bad Gateway"))
            && line.contains("http://loom.invalid:8000"),
        "{line}"
    );
    let request = requests.recv_timeout(Duration::from_secs(5)).expect("the request went through the proxy");
    assert_eq!(request, "GET http://loom.invalid:8000/users/me/ HTTP/1.1");

    // https goes through the proxy's tunnel, and a refused tunnel names the proxy too.
    let mut whoami = with_proxy(project.loom(&["--server", "https://loom.invalid", "whoami"]), &proxy);
    whoami.env("LOOM_TOKEN", "a.b.c");
    let outcome = run(whoami, None);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert!(
        one_line(&outcome.stderr).contains(&format!("through the proxy {proxy} (from https_proxy)")),
        "{outcome:?}"
    );
    assert_eq!(requests.recv_timeout(Duration::from_secs(5)).unwrap(), "CONNECT loom.invalid:443 HTTP/1.1");

    // NO_PROXY names it: loom goes directly (and finds no such host).
    let mut direct =
        with_proxy(project.loom(&["--insecure", "--server", "http://loom.invalid:8000", "whoami"]), &proxy);
    direct.env("LOOM_TOKEN", "a.b.c").env("no_proxy", ".invalid").env("NO_PROXY", ".invalid");
    let outcome = run(direct, None);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert!(one_line(&outcome.stderr).starts_with("error: Cannot reach the Loom server at http://loom.invalid:8000"));
    assert_eq!(requests.try_recv().ok(), None, "the proxy was used despite NO_PROXY");
}

#[tokio::test]
async fn tokens_and_names_pasted_with_whitespace_work_and_a_broken_token_is_named() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let token = loom_e2e::login(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    for pasted in [format!("{token}\n"), format!("  {token}\r\n"), format!("\t{token} ")] {
        let mut whoami = project.loom(&["--server", &host.base_url, "whoami"]);
        whoami.env("LOOM_TOKEN", &pasted);
        let outcome = run(whoami, None);
        assert_eq!(outcome.code, Some(0), "{pasted:?}: {outcome:?}");
        let mut print = project.loom(&["--server", &host.base_url, "token"]);
        print.env("LOOM_TOKEN", &pasted);
        assert_eq!(run(print, None).stdout, format!("{token}\n"), "{pasted:?}");
    }
    for (broken, what) in [(format!("{token} extra"), "whitespace"), (format!("{token}\u{7}"), "a control character")] {
        let mut whoami = project.loom(&["--server", &host.base_url, "whoami"]);
        whoami.env("LOOM_TOKEN", &broken);
        let outcome = run(whoami, None);
        assert_eq!(outcome.code, Some(4), "{outcome:?}");
        let line = one_line(&outcome.stderr);
        assert!(line.contains("LOOM_TOKEN") && line.contains(what) && !line.contains("reach"), "{line}");
    }
    // A saved login whose token is empty holds no login.
    let empty = Project::new();
    let saved = serde_json::json!({ "auth": { "server": host.base_url, "email": EMAIL, "access_token": "  ",
                                             "token_type": "bearer", "expires_at": "2099-01-01T00:00:00Z" } });
    std::fs::write(empty.settings(), saved.to_string()).unwrap();
    empty.know_server(&host.base_url);
    let outcome = run(empty.loom(&["token"]), None);
    assert_eq!((outcome.code, outcome.stdout.as_str()), (Some(4), ""), "{outcome:?}");
    assert!(one_line(&outcome.stderr).contains("it is empty"), "{outcome:?}");
    // A variable set to nothing is as if unset; a server URL never carries credentials.
    let mut unset = project.loom(&["whoami"]);
    unset.env("LOOM_SERVER", "").env("LOOM_CONFIG", "").env("LOOM_TOKEN", "");
    let outcome = run(unset, None);
    assert_eq!(outcome.code, Some(4), "{outcome:?}");
    assert_eq!(one_line(&outcome.stderr), "Not logged in. Run 'loom login'.");
    let credentials = run(project.loom(&["whoami", "--server", "http://ada:s3cret@127.0.0.1:1"]), None);
    assert_eq!(credentials.code, Some(2), "{credentials:?}");
    assert!(!credentials.stderr.contains("s3cret") && credentials.stderr.contains("user name or password"));
    // A login name pasted with spaces, as the interactive prompt already trims.
    for name in [" ada@example.com", "ada@example.com \n"] {
        let outcome = login(&project, &host.base_url, name, PASSWORD);
        assert_eq!(outcome.code, Some(0), "{name:?}: {outcome:?}");
        assert_eq!(one_line(&outcome.stdout), format!("Logged in to {} as {EMAIL}", host.base_url));
    }
}

#[tokio::test]
async fn settings_files_with_a_byte_order_mark_or_behind_a_dangling_link_work() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    std::fs::write(project.settings(), "\u{feff}{\"project_name\": \"demo\"}\n").unwrap();
    assert_eq!(login(&project, &host.base_url, EMAIL, PASSWORD).code, Some(0));
    let saved = std::fs::read_to_string(project.settings()).unwrap();
    assert!(saved.starts_with('\u{feff}'), "the byte order mark is kept");
    let settings: Value = serde_json::from_str(saved.trim_start_matches('\u{feff}')).unwrap();
    assert_eq!(settings["project_name"], "demo");
    assert_eq!(run(project.loom(&["whoami"]), None).code, Some(0));

    // A dotfiles repository links the settings to a file it has not made yet.
    let dotfiles = Project::new();
    std::fs::create_dir(dotfiles.dir.path().join("dotfiles")).unwrap();
    std::os::unix::fs::symlink("dotfiles/loom.json", dotfiles.settings()).unwrap();
    let outcome = login(&dotfiles, &host.base_url, EMAIL, PASSWORD);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert!(std::fs::symlink_metadata(dotfiles.settings()).unwrap().file_type().is_symlink(), "the link stays");
    let target = std::fs::read_to_string(dotfiles.dir.path().join("dotfiles/loom.json")).unwrap();
    assert!(target.contains("access_token"), "{target}");
}

#[test]
fn a_settings_file_that_cannot_be_written_stops_login_before_anything_is_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let project = Project::new();
    // sysfs takes no new file, even from root (whom a read-only directory would not stop).
    let mut command = project.loom(&["--config", "/sys/dev-automation.config.json", "login"]);
    command.args(["--server", &server, "--username", EMAIL, "--password-stdin"]);
    let outcome = run(command, Some(PASSWORD));
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    let line = one_line(&outcome.stderr);
    assert!(line.contains("/sys/dev-automation.config.json") && line.contains("nothing was sent"), "{line}");
    assert_eq!(line.matches("denied").count(), 1, "the reason is said once: {line}");
    // A settings file that is itself immutable (its directory is fine) stops it alike.
    let file = project.settings();
    std::fs::write(&file, "{}").unwrap();
    let chattr = |flag: &str| {
        let status = std::process::Command::new("chattr").arg(flag).arg(&file).status().unwrap();
        assert!(status.success(), "chattr {flag}");
    };
    chattr("+i");
    let mut command = project.loom(&["login", "--server", &server, "--username", EMAIL, "--password-stdin"]);
    command.env("LOOM_CONFIG", &file);
    let outcome = run(command, Some(PASSWORD));
    chattr("-i");
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert!(one_line(&outcome.stderr).contains("nothing was sent"), "{outcome:?}");
    assert!(listener.accept().is_err(), "loom connected to the server");
    // A device is no settings file: refused at once, not read for ever.
    for device in ["/dev/zero", "/dev/full"] {
        let outcome = loom_e2e::run_within(project.loom(&["--config", device, "whoami"]), Duration::from_secs(10));
        assert_eq!(outcome.code, Some(1), "{device}: {outcome:?}");
        assert!(one_line(&outcome.stderr).contains("not a regular file"), "{device}: {outcome:?}");
    }
}

/// A loopback server that captures one request's body and answers a token.
fn capturing_server() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (captured, bodies) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
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
        let _ = captured.send(String::from_utf8_lossy(&body).into_owned());
        let token = r#"{"access_token":"a.b.c","token_type":"bearer","expires_in":60}"#;
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{token}",
            token.len()
        );
    });
    (url, bodies)
}

#[tokio::test]
async fn a_password_typed_decomposed_is_sent_composed_and_logs_in() {
    let (composed, decomposed) = ("Ma\u{f1}ana-Br\u{fc}cke-42", "Man\u{303}ana-Bru\u{308}cke-42");
    let (server, bodies) = capturing_server();
    let project = Project::new();
    assert_eq!(login(&project, &server, EMAIL, decomposed).code, Some(0));
    let body = bodies.recv_timeout(Duration::from_secs(10)).unwrap();
    let sent = form_urlencoded::parse(body.as_bytes()).find(|(name, _)| name == "password").map(|(_, v)| v);
    assert_eq!(sent.as_deref(), Some(composed), "loom sends the normalised spelling");

    let host = TestHost::spawn();
    register(&host, EMAIL, composed).await;
    let outcome = login(&Project::new(), &host.base_url, EMAIL, decomposed);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
}

#[test]
fn an_expired_token_with_a_fractional_exp_is_expired() {
    let jwt = |claims: &str| format!("eyJhbGciOiJIUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims));
    let project = Project::new();
    for (exp, code) in [("1700000000.5", 4), ("1.7e9", 4), ("-1", 4), ("-0.5", 4), ("0", 4), ("4102444800.25", 0)] {
        let mut token = project.loom(&["token"]);
        token.env("LOOM_TOKEN", jwt(&format!(r#"{{"sub":"1","exp":{exp}}}"#)));
        let outcome = run(token, None);
        assert_eq!(outcome.code, Some(code), "exp {exp}: {outcome:?}");
    }
}
