//! `loom` with its login in the system keyring (`--credential-store keyring`), against a real
//! Secret Service: a throwaway D-Bus session with `gnome-keyring-daemon` on it. The settings
//! file then names the server and account only; every command reads, renews and removes the
//! login through the keyring; a file login moves in and out; a keyring that is missing or never
//! answers is one sentence, and nothing is written in plain text.

use std::time::{Duration, Instant, SystemTime};

use loom_e2e::keyring::{TestKeyring, Unlocked};
use loom_e2e::loom::{one_line, refreshes, saved_login};
use loom_e2e::{Outcome, Project, TestHost, client, register, run};
use serde_json::Value;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// `loom ARGS` in `project`, on `keyring`'s session bus.
fn loom(project: &Project, keyring: &TestKeyring, args: &[&str], stdin: Option<&str>) -> Outcome {
    let mut command = project.loom(args);
    keyring.apply(&mut command);
    run(command, stdin)
}

/// `loom login` with the password on standard input, and `extra` arguments.
fn login(project: &Project, keyring: &TestKeyring, host: &TestHost, extra: &[&str]) -> Outcome {
    let mut args = vec!["login", "--server", &host.base_url, "--username", EMAIL, "--password-stdin"];
    args.extend_from_slice(extra);
    loom(project, keyring, &args, Some(PASSWORD))
}

/// The keyring attributes of the login `project`'s marker names.
fn entry_of(project: &Project) -> [(&'static str, String); 2] {
    let marker = saved_login(project);
    let (server, email, id) = (marker["server"].as_str(), marker["email"].as_str(), marker["entry"].as_str());
    let (Some(server), Some(email), Some(id)) = (server, email, id) else { panic!("no keyring marker: {marker}") };
    [("service", format!("loom:{server}")), ("username", format!("{email}#{id}"))]
}

fn attributes<'a>(entry: &'a [(&'static str, String); 2]) -> [(&'static str, &'a str); 2] {
    [(entry[0].0, entry[0].1.as_str()), (entry[1].0, entry[1].1.as_str())]
}

/// The login the keyring holds for `project`'s marker, parsed.
fn kept(keyring: &TestKeyring, project: &Project) -> Option<Value> {
    let secret = keyring.lookup(&attributes(&entry_of(project)))?;
    Some(serde_json::from_str(&secret).expect("the keyring holds a login as JSON"))
}

/// How many of loom's entries for `host` the keyring holds.
fn entries(keyring: &TestKeyring, host: &TestHost) -> usize {
    keyring.count(&[("service", &format!("loom:{}", host.base_url))])
}

/// Makes the login in the keyring one whose access token expired an hour ago (as
/// `expire_saved_login` does for the file).
fn expire_kept_login(keyring: &TestKeyring, project: &Project) {
    let mut login = kept(keyring, project).expect("a login in the keyring");
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    login["access_token"] = Value::String("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIiwiZXhwIjoxfQ.c2ln".into());
    login["expires_at"] = Value::String(humantime::format_rfc3339_seconds(hour_ago).to_string());
    keyring.replace(&attributes(&entry_of(project)), &login.to_string());
}

/// Neither the token nor anything like one (a JWT's `eyJ`, a refresh token's prefix) is in the
/// settings file.
fn assert_no_token_in(project: &Project, token: &str) {
    let text = std::fs::read_to_string(project.settings()).unwrap();
    for needle in [token, "eyJ", "loomrt_", "access_token", "refresh_token"] {
        assert!(!text.contains(needle), "{needle} is in the settings file:\n{text}");
    }
}

async fn host_with_ada() -> TestHost {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    host
}

#[tokio::test]
async fn a_keyring_login_keeps_no_token_in_the_file_and_every_command_goes_through_the_keyring() {
    let Some(keyring) = TestKeyring::start() else { return };
    let host = host_with_ada().await;
    let project = Project::new();
    std::fs::write(project.settings(), r#"{"project_name": "demo"}"#).unwrap();
    let made = login(&project, &keyring, &host, &["--credential-store", "keyring"]);
    assert_eq!(made.code, Some(0), "{made:?}");
    assert!(made.stdout.contains(", kept in the system keyring"), "{made:?}");

    let login = kept(&keyring, &project).expect("the keyring holds the login");
    let token = login["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("eyJ") && login["refresh_token"].as_str().unwrap().starts_with("loomrt_"), "{login}");
    assert_no_token_in(&project, &token);
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(project.settings()).unwrap()).unwrap();
    assert_eq!(settings["project_name"], "demo", "the other settings stay");
    let marker = saved_login(&project);
    let id = marker["entry"].as_str().unwrap().to_owned();
    assert!(id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{marker}");
    assert_eq!(
        marker,
        serde_json::json!({"server": host.base_url, "email": EMAIL, "credential_store": "keyring", "entry": id})
    );
    // The keyring's own files hold it sealed: not in clear.
    let sealed = std::fs::read_dir(keyring.files().join(".local/share/keyrings")).unwrap();
    for file in sealed {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(&token), "the keyring's file holds the token in clear");
    }

    let whoami = loom(&project, &keyring, &["whoami"], None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    assert!(one_line(&whoami.stdout).contains("(token from the system keyring)"), "{whoami:?}");
    let json = loom(&project, &keyring, &["whoami", "--json"], None);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!((report["credential_store"].as_str(), report["email"].as_str()), (Some("keyring"), Some(EMAIL)));
    let printed = loom(&project, &keyring, &["token"], None);
    assert_eq!(printed.stdout.trim(), token, "{printed:?}");

    // Renewed by itself, the new pair kept in the keyring, still none in the file.
    expire_kept_login(&keyring, &project);
    let before = kept(&keyring, &project).unwrap();
    let whoami = loom(&project, &keyring, &["whoami"], None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    assert_eq!(refreshes(&host), 1);
    let after = kept(&keyring, &project).unwrap();
    assert_ne!(after["access_token"], before["access_token"]);
    assert_ne!(after["refresh_token"], before["refresh_token"], "the rotated pair is kept");
    assert_no_token_in(&project, after["access_token"].as_str().unwrap());
    let me = client().get(host.url("/users/me/")).bearer_auth(after["access_token"].as_str().unwrap()).send().await;
    assert_eq!(me.unwrap().status(), 200);

    let out = loom(&project, &keyring, &["logout"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(entries(&keyring, &host), 0, "logout removes the keyring's entry");
    assert!(saved_login(&project).is_null(), "and the marker");
    let form = [("grant_type", "refresh_token"), ("refresh_token", after["refresh_token"].as_str().unwrap())];
    let refused = client().post(host.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(refused.status(), 400, "the session ended on the server too");
}

#[tokio::test]
async fn six_looms_at_once_after_expiry_rotate_the_keyring_login_once() {
    let Some(keyring) = TestKeyring::start() else { return };
    let host = host_with_ada().await;
    // A copied settings file names the same entry (each copy with its own lock): their
    // renewals take turns too, under the user's lock.
    let (project, other) = (Project::new(), Project::new());
    assert_eq!(login(&project, &keyring, &host, &["--credential-store", "keyring"]).code, Some(0));
    std::fs::write(other.settings(), std::fs::read(project.settings()).unwrap()).unwrap();
    other.know_server(&host.base_url);
    expire_kept_login(&keyring, &project);
    loom_e2e::loom::all_succeed_at_once((0..6).map(|i| {
        let mut command = [&project, &other][i % 2].loom(&["whoami"]);
        keyring.apply(&mut command);
        // One user: one configuration directory.
        command.env("XDG_CONFIG_HOME", project.user_config());
        command
    }));
    assert_eq!(refreshes(&host), 1, "one rotation for six processes:\n{}", host.logs());
    let refresh_token = kept(&keyring, &project).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
    assert_eq!(client().post(host.url("/token")).form(&form).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_file_login_moves_into_the_keyring_and_back_without_a_password() {
    let Some(keyring) = TestKeyring::start() else { return };
    let host = host_with_ada().await;
    let project = Project::new();
    assert_eq!(login(&project, &keyring, &host, &[]).code, Some(0), "the file is the default");
    let plain = saved_login(&project);
    assert!(plain["access_token"].as_str().unwrap().starts_with("eyJ"), "{plain}");
    assert_eq!(entries(&keyring, &host), 0);

    // No password on stdin: a move asks nothing and sends nothing.
    let moved = loom(&project, &keyring, &["login", "--credential-store", "keyring"], None);
    assert_eq!(moved.code, Some(0), "{moved:?}");
    assert_eq!(
        one_line(&moved.stdout),
        format!(
            "Moved the login for {EMAIL} at {} from {} to the system keyring",
            host.base_url,
            project.settings().canonicalize().unwrap().display()
        )
    );
    assert_no_token_in(&project, plain["access_token"].as_str().unwrap());
    let inside = kept(&keyring, &project).expect("moved in");
    assert_eq!(inside["refresh_token"], plain["refresh_token"], "the same session, not a new login");
    assert_eq!(loom(&project, &keyring, &["whoami"], None).code, Some(0));

    // A plain `loom login` keeps the login where it is; the variable moves it back.
    let again = login(&project, &keyring, &host, &[]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert!(again.stdout.contains(", kept in the system keyring"), "{again:?}");
    assert_eq!(entries(&keyring, &host), 1, "the login it replaced is removed");
    let mut back = project.loom(&["login"]);
    keyring.apply(&mut back);
    back.env("LOOM_CREDENTIAL_STORE", "file");
    let back = run(back, None);
    assert_eq!(back.code, Some(0), "{back:?}");
    assert!(
        one_line(&back.stdout)
            .ends_with(&format!("from the system keyring to {}", project.settings().canonicalize().unwrap().display())),
        "{back:?}"
    );
    assert_eq!(entries(&keyring, &host), 0, "the keyring's copy is deleted");
    assert!(saved_login(&project)["refresh_token"].as_str().unwrap().starts_with("loomrt_"));

    let bad = loom(&project, &keyring, &["login", "--credential-store", "vault"], None);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(bad.stderr.contains("'vault' is not a credential store: use 'keyring' or 'file'"), "{bad:?}");
}

#[tokio::test]
async fn without_a_session_bus_the_keyring_is_one_sentence_and_nothing_is_kept_in_plain_text() {
    let host = host_with_ada().await;
    let project = Project::new();
    let before = r#"{"project_name": "demo"}"#;
    std::fs::write(project.settings(), before).unwrap();
    // `Project::loom` gives no session bus.
    let args = ["login", "--server", &host.base_url, "--username", EMAIL, "--password-stdin"];
    let mut command = project.loom(&args);
    command.env("LOOM_CREDENTIAL_STORE", "keyring");
    let refused = run(command, Some(PASSWORD));
    assert_eq!(refused.code, Some(1), "{refused:?}");
    let line = one_line(&refused.stderr);
    assert!(line.starts_with("error: the system keyring is not available ("), "{line}");
    assert!(line.contains("nothing was written in plain text") && line.contains("--credential-store file"), "{line}");
    assert_eq!(std::fs::read_to_string(project.settings()).unwrap(), before, "the settings file is untouched");
    assert!(!host.logs().contains("session.created"), "no password was sent:\n{}", host.logs());
}

#[tokio::test]
async fn a_keyring_that_never_answers_is_bounded_by_a_timeout_with_its_message() {
    let Some(keyring) = TestKeyring::start() else { return };
    let host = host_with_ada().await;
    let project = Project::new();
    assert_eq!(login(&project, &keyring, &host, &["--credential-store", "keyring"]).code, Some(0));
    keyring.freeze(true);
    let started = Instant::now();
    let whoami = loom(&project, &keyring, &["whoami"], None);
    assert_eq!(whoami.code, Some(1), "{whoami:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "bounded: {:?}", started.elapsed());
    assert!(
        one_line(&whoami.stderr).starts_with("error: the system keyring did not answer within 5 seconds"),
        "{whoami:?}"
    );
    // A new login to a frozen keyring: found before the password is asked or sent.
    let fresh = Project::new();
    let refused = login(&fresh, &keyring, &host, &["--credential-store", "keyring"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(one_line(&refused.stderr).contains("did not answer within 5 seconds"), "{refused:?}");
    assert!(!fresh.settings().exists(), "nothing written");
    keyring.freeze(false);
    // The daemon, thawed, first works through the calls that queued while it was stopped: the
    // login is intact once it answers again (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let whoami = loom(&project, &keyring, &["whoami"], None);
        if whoami.code == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "the login is intact: {whoami:?}");
    }
}

#[tokio::test]
async fn a_locked_keyring_is_an_error_not_a_fallback() {
    let Some(keyring) = TestKeyring::start_with(Unlocked::No) else { return };
    let host = host_with_ada().await;
    let project = Project::new();
    let refused = login(&project, &keyring, &host, &["--credential-store", "keyring"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    let line = one_line(&refused.stderr);
    assert!(line.starts_with("error: the system keyring is locked, and no desktop prompt could unlock it"), "{line}");
    assert!(line.contains("nothing was written in plain text"), "{line}");
    assert!(!project.settings().exists(), "nothing written");
    assert!(!host.logs().contains("session.created"), "found before the password was sent:\n{}", host.logs());
}

#[tokio::test]
async fn a_personal_access_token_saved_with_login_goes_to_the_keyring() {
    let Some(keyring) = TestKeyring::start() else { return };
    let host = host_with_ada().await;
    let maker = Project::new();
    assert_eq!(login(&maker, &keyring, &host, &["--credential-store", "keyring"]).code, Some(0));
    let made = loom(&maker, &keyring, &["tokens", "create", "--name", "runner", "--password-stdin"], Some(PASSWORD));
    assert_eq!(made.code, Some(0), "{made:?}");
    let pat = made.stdout.trim().to_owned();

    let runner = Project::new();
    let args = ["login", "--server", &host.base_url, "--with-token", "--credential-store", "keyring"];
    let saved = loom(&runner, &keyring, &args, Some(&pat));
    assert_eq!(saved.code, Some(0), "{saved:?}");
    assert!(saved.stdout.contains("'runner', kept in the system keyring (it expires on"), "{saved:?}");
    assert_no_token_in(&runner, &pat);
    assert!(!std::fs::read_to_string(runner.settings()).unwrap().contains("loom_pat_"));
    assert_eq!(kept(&keyring, &runner).unwrap()["access_token"], pat.as_str());
    let whoami = loom(&runner, &keyring, &["whoami"], None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    assert!(whoami.stdout.contains("'runner' (from the system keyring)"), "{whoami:?}");
    // The maker's login and the runner's are apart, as their files would be.
    let maker_whoami = loom(&maker, &keyring, &["tokens", "list"], None);
    assert_eq!(maker_whoami.code, Some(0), "{maker_whoami:?}");
    assert_eq!(loom(&runner, &keyring, &["logout"], None).code, Some(0));
    assert_eq!(entries(&keyring, &host), 1, "the maker's entry stays");
    assert_eq!(loom(&maker, &keyring, &["whoami"], None).code, Some(0));
}

#[tokio::test]
async fn loom_token_and_other_servers_work_when_the_keyring_cannot_be_read() {
    let Some(keyring) = TestKeyring::start() else { return };
    let host = host_with_ada().await;
    let project = Project::new();
    assert_eq!(login(&project, &keyring, &host, &["--credential-store", "keyring"]).code, Some(0));
    let token = kept(&keyring, &project).unwrap()["access_token"].as_str().unwrap().to_owned();
    // No session bus: the saved login cannot be read, and LOOM_TOKEN does not need it.
    let mut command = project.loom(&["whoami", "--server", &host.base_url]);
    command.env("LOOM_TOKEN", &token);
    let whoami = run(command, None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    assert!(whoami.stdout.contains("(token from LOOM_TOKEN)"), "{whoami:?}");
    // What needs the saved login says why it cannot have it.
    let saved = run(project.loom(&["whoami"]), None);
    assert_eq!(saved.code, Some(1), "{saved:?}");
    assert!(one_line(&saved.stderr).starts_with("error: the system keyring is not available"), "{saved:?}");
    let out = run(project.loom(&["logout"]), None);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(saved_login(&project)["entry"].is_string(), "the marker stays for a logout that can finish");
}

#[tokio::test]
async fn an_entry_loom_cannot_read_is_said_and_logout_clears_it() {
    let Some(keyring) = TestKeyring::start() else { return };
    let host = host_with_ada().await;
    let project = Project::new();
    assert_eq!(login(&project, &keyring, &host, &["--credential-store", "keyring"]).code, Some(0));
    keyring.replace(&attributes(&entry_of(&project)), "not json");
    let whoami = loom(&project, &keyring, &["whoami"], None);
    assert_eq!(whoami.code, Some(4), "{whoami:?}");
    assert!(one_line(&whoami.stderr).contains("is not a login loom understands; run 'loom logout'"), "{whoami:?}");
    let out = loom(&project, &keyring, &["logout"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(entries(&keyring, &host), 0);
    assert!(saved_login(&project).is_null());

    // A second item under the same name (another program's) is named, not called "unavailable".
    assert_eq!(login(&project, &keyring, &host, &["--credential-store", "keyring"]).code, Some(0));
    let entry = entry_of(&project);
    let mut twin = attributes(&entry).to_vec();
    twin.push(("app", "other"));
    keyring.add(&twin, "someone else's");
    let whoami = loom(&project, &keyring, &["whoami"], None);
    assert_eq!(whoami.code, Some(1), "{whoami:?}");
    let line = one_line(&whoami.stderr);
    assert!(line.contains(&format!("holds 2 entries named {} for {}", entry[1].1, entry[0].1)), "{line}");
    assert!(line.contains("remove the others"), "{line}");
}
