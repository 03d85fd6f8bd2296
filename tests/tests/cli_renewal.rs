//! `loom` renewing a login under what goes wrong around it: the settings' lock held by someone
//! else, a refresh answer lost on the way back, a settings file that cannot take the renewal,
//! a file git would carry off, a clock that is not the server's, and a login copied elsewhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use loom_e2e::loom::{expire_saved_login, login_with, one_line, refreshes, saved_login};
use loom_e2e::{HostOptions, Outcome, Project, TestHost, client, register, run, run_within};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

fn login(project: &Project, server: &str) -> Outcome {
    login_with(project, server, EMAIL, PASSWORD)
}

/// A host whose spent refresh tokens get no grace: a renewal spent and lost is a dead session.
fn strict() -> TestHost {
    TestHost::spawn_with(HostOptions { args: vec!["--refresh-reuse-grace".into(), "0".into()], ..Default::default() })
}

#[tokio::test]
async fn a_held_settings_lock_is_waited_for_within_a_bound_and_its_holder_named() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    assert_eq!(login(&project, &host.base_url).code, Some(0));
    expire_saved_login(&project);
    // Another program holds the lock loom takes to renew (flock(1), from util-linux, which
    // becomes the command it runs: no child of its keeps the lock once it is killed).
    let mut holder = Command::new("flock")
        .arg("--no-fork")
        .arg(project.dir.path())
        .args(["sleep", "120"])
        .stdout(Stdio::null())
        .spawn()
        .expect("flock(1) runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string("/proc/locks").unwrap().contains(&format!(" {} ", holder.id())) {
        assert!(Instant::now() < deadline, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(20)); // polling /proc/locks for the holder's lock
    }
    let started = Instant::now();
    let outcome = run_within(project.loom(&["whoami"]), Duration::from_secs(40));
    let took = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    let line = one_line(&outcome.stderr);
    assert!(line.contains(&format!("process {} (sleep)", holder.id())), "the holder is named: {line}");
    assert!(line.contains("more than 10 seconds"), "{line}");
    assert!((Duration::from_secs(10)..Duration::from_secs(30)).contains(&took), "waited {took:?}");
    assert_eq!(refreshes(&host), 0, "nothing was spent");
    // Once it lets go, loom renews as ever.
    let whoami = run(project.loom(&["whoami"]), None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
}

/// A loopback proxy to `upstream` that passes each request on (one per connection), and
/// swallows the answer to the first refresh while `lose_next_refresh` is set: the server did
/// the work, the client never hears of it.
fn losing_proxy(upstream: &str, lose_next_refresh: Arc<AtomicBool>, lost: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_owned();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let (upstream, lose, lost) = (upstream.clone(), Arc::clone(&lose_next_refresh), Arc::clone(&lost));
            std::thread::spawn(move || {
                let _ = pass_on(client, &upstream, &lose, &lost);
            });
        }
    });
    url
}

fn pass_on(client: TcpStream, upstream: &str, lose: &AtomicBool, lost: &AtomicUsize) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(head.as_bytes())?;
    server.write_all(b"connection: close\r\n\r\n")?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    let refresh = String::from_utf8_lossy(&body).contains("grant_type=refresh_token");
    if refresh && lose.swap(false, Ordering::SeqCst) {
        lost.fetch_add(1, Ordering::SeqCst);
        return Ok(()); // the connection closes without an answer
    }
    let mut client = client;
    client.write_all(&answer)
}

#[tokio::test]
async fn a_refresh_whose_answer_is_lost_is_asked_again_within_the_grace() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let (lose, lost) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let proxy = losing_proxy(&host.base_url, Arc::clone(&lose), Arc::clone(&lost));
    let project = Project::new();
    assert_eq!(login(&project, &proxy).code, Some(0));
    expire_saved_login(&project);
    lose.store(true, Ordering::SeqCst);
    let whoami = run(project.loom(&["whoami"]), None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    assert_eq!(lost.load(Ordering::SeqCst), 1, "the first answer was lost");
    // The same token asked again, within the grace.
    host.wait_for_log("retried=true");
    // The successor saved is the session's current token: the chain goes on.
    expire_saved_login(&project);
    let again = run(project.loom(&["whoami"]), None);
    assert_eq!(again.code, Some(0), "{again:?}");
    let token = saved_login(&project)["access_token"].as_str().unwrap().to_owned();
    let me = client().get(host.url("/users/me/")).bearer_auth(token).send().await.unwrap();
    assert_eq!(me.status(), 200);
}

#[tokio::test]
async fn a_renewal_the_settings_file_cannot_take_spends_nothing() {
    let host = strict();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    assert_eq!(login(&project, &host.base_url).code, Some(0));
    expire_saved_login(&project);
    let chattr = |flag: &str| {
        let status = Command::new("chattr").arg(flag).arg(project.settings()).status().unwrap();
        assert!(status.success(), "chattr {flag}");
    };
    chattr("+i");
    let refused = run(project.loom(&["whoami"]), None);
    chattr("-i");
    assert_eq!(refused.code, Some(1), "{refused:?}");
    let line = one_line(&refused.stderr);
    assert!(line.contains("nothing was sent") && line.contains("the session is intact"), "{line}");
    assert_eq!(refreshes(&host), 0, "the refresh token was not spent");
    // Writable again: the session renews (on a host with no grace, a spent token would be dead).
    let whoami = run(project.loom(&["whoami"]), None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    assert_eq!(refreshes(&host), 1);
}

#[tokio::test]
async fn a_file_git_would_carry_off_gets_a_warning_at_login_and_at_renewal() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    let git = |args: &[&str]| {
        let output = Command::new("git").args(args).current_dir(project.dir.path()).output().unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
    };
    // Outside a work tree: nothing to say.
    let outside = login(&project, &host.base_url);
    assert_eq!(outside.code, Some(0), "{outside:?}");
    assert!(!outside.stderr.contains("git"), "{outside:?}");
    // In a work tree, untracked and not ignored: `git add -A` would take it.
    git(&["init", "--quiet"]);
    let untracked = login(&project, &host.base_url);
    let warning = one_line(&untracked.stderr);
    assert!(warning.contains("does not ignore it") && warning.contains(".gitignore"), "{warning}");
    assert!(warning.contains("dev-automation.config.json") && warning.contains("--config"), "{warning}");
    // Ignored: nothing to say.
    std::fs::write(project.dir.path().join(".gitignore"), "dev-automation.config.json\nuser-config/\n").unwrap();
    let ignored = login(&project, &host.base_url);
    assert!(!ignored.stderr.contains("git"), "{ignored:?}");
    // Tracked (forced past the ignore): said at renewal too, when loom writes a new token into it.
    git(&["add", "--force", "dev-automation.config.json"]);
    expire_saved_login(&project);
    let renewed = run(project.loom(&["whoami"]), None);
    assert_eq!(renewed.code, Some(0), "{renewed:?}");
    assert_eq!(refreshes(&host), 1);
    let warning = one_line(&renewed.stderr);
    assert!(warning.contains("is tracked by git") && warning.contains("git rm --cached"), "{warning}");
}

/// `loom` under `faketime` (Debian's package), its clock `offset` (libfaketime's relative
/// form, `-10m`) from the server's.
fn loom_at(project: &Project, offset: &str, args: &[&str]) -> Command {
    let inner = project.loom(args);
    let mut command = Command::new("faketime");
    command.args(["-f", offset]).arg(inner.get_program()).args(inner.get_args());
    command.current_dir(project.dir.path()).env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

#[tokio::test]
async fn loom_token_with_a_clock_behind_the_servers_prints_a_token_the_server_takes() {
    // Access tokens of three seconds: the test waits them out.
    let host = TestHost::spawn_with(HostOptions { token_ttl: Some(3), leeway: Some(0), ..Default::default() });
    register(&host, EMAIL, PASSWORD).await;
    let project = Project::new();
    let behind = "-10m";
    let mut command = loom_at(&project, behind, &["login", "--server", &host.base_url, "-u", EMAIL]);
    command.arg("--password-stdin");
    let logged_in = run(command, Some(PASSWORD));
    assert_eq!(logged_in.code, Some(0), "{logged_in:?}");
    let first = saved_login(&project)["access_token"].as_str().unwrap().to_owned();
    let issued = Instant::now();
    // The token expires on the server's clock; on loom's, ten minutes remain.
    loop {
        let status = client().get(host.url("/users/me/")).bearer_auth(&first).send().await.unwrap().status();
        if status == 401 {
            break;
        }
        assert!(issued.elapsed() < Duration::from_secs(30), "the token never expired");
        tokio::time::sleep(Duration::from_millis(200)).await; // waiting out the token's three seconds
    }
    let printed = run(loom_at(&project, behind, &["token"]), None);
    assert_eq!(printed.code, Some(0), "{printed:?}");
    let token = printed.stdout.trim();
    assert_ne!(token, first, "the expired token was printed");
    let me = client().get(host.url("/users/me/")).bearer_auth(token).send().await.unwrap();
    assert_eq!(me.status(), 200, "the printed token is one the server takes");
}

#[tokio::test]
async fn a_copied_login_that_another_copy_renewed_is_told_as_such() {
    let host = strict();
    register(&host, EMAIL, PASSWORD).await;
    let laptop = Project::new();
    assert_eq!(login(&laptop, &host.base_url).code, Some(0));
    // The settings file copied to another project (or machine), login and all.
    let copy = Project::new();
    std::fs::copy(laptop.settings(), copy.settings()).unwrap();
    copy.know_server(&host.base_url);
    expire_saved_login(&laptop);
    assert_eq!(run(laptop.loom(&["whoami"]), None).code, Some(0), "the first copy renews");
    expire_saved_login(&copy);
    let outcome = run(copy.loom(&["whoami"]), None);
    assert_eq!(outcome.code, Some(4), "{outcome:?}");
    let line = one_line(&outcome.stderr);
    assert!(line.contains("another copy of this login") && line.contains("loom login"), "{line}");
    host.wait_for_log("refresh.reused");
}
