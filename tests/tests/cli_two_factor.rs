//! `loom 2fa` and `loom login` with two-factor login, under a pseudo-terminal where a person
//! would type: the QR code drawn, the first code asked for (a wrong one asked again), the
//! recovery codes shown once; `loom login` asking for the code after the password, `--otp`
//! for scripts, and one sentence (exit 4) without a terminal. Codes are computed as an
//! authenticator app does ([`loom_e2e::totp`]).

use loom_e2e::loom::{login_with, one_line};
use loom_e2e::totp::{code_at, now};
use loom_e2e::{Outcome, Project, TestHost, run};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// `loom 2fa enable` under a pty, a wrong first code then the right one: (the key shown, the
/// recovery codes shown, all it printed). The right code is the current step's.
fn enable(project: &Project) -> (String, Vec<String>, String) {
    let mut session = rexpect::session::spawn_command(project.loom(&["2fa", "enable"]), Some(30_000)).unwrap();
    session.exp_string("Password for ").unwrap();
    session.send_line(PASSWORD).unwrap();
    let before = session.exp_string("Authentication code (from your app, or a recovery code): ").unwrap();
    let key = extract_key(&before);
    session.send_line("000000").unwrap();
    session.exp_string("That code is wrong").unwrap();
    session.exp_string("Authentication code").unwrap();
    session.send_line(&code_at(&key, now())).unwrap();
    let rest = session.exp_eof().unwrap();
    let codes: Vec<String> = rest
        .split_whitespace()
        .filter(|word| word.len() == 11 && word.as_bytes()[5] == b'-')
        .map(str::to_owned)
        .collect();
    (key, codes, format!("{before}{rest}"))
}

fn extract_key(text: &str) -> String {
    let at = text.rfind("Or enter this key by hand: ").expect("the key is shown") + "Or enter this key by hand: ".len();
    text[at..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect()
}

async fn logged_in() -> (TestHost, Project) {
    loom_e2e::loom::logged_in(EMAIL, PASSWORD).await
}

#[tokio::test]
async fn enable_draws_the_qr_code_checks_a_first_code_and_shows_the_recovery_codes_once() {
    let (host, project) = logged_in().await;
    let (key, codes, printed) = enable(&project);
    assert_eq!(key.len(), 32);
    // A QR code (half blocks: at least 15 lines of it between the two sentences), the URI beside it.
    let drawn = printed.split("authenticator app").nth(1).and_then(|rest| rest.split("Or enter this key").next());
    assert!(drawn.is_some_and(|qr| qr.lines().filter(|l| l.len() > 40).count() >= 15), "{printed}");
    assert!(printed.contains("otpauth://totp/Loom%20Auth:ada%40example.com?secret="), "{printed}");
    assert_eq!(codes.len(), 10, "{printed}");
    assert!(printed.contains("shown only this once"), "{printed}");
    // Two-factor login is on: whoami (this session stays) says it was a password login then.
    let whoami = run(project.loom(&["whoami", "--json"]), None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    let report: serde_json::Value = serde_json::from_str(&whoami.stdout).unwrap();
    assert_eq!(report["two_factor"], false);
    drop(host);
}

#[tokio::test]
async fn login_asks_for_the_code_takes_otp_and_says_what_to_do_without_a_terminal() {
    let (host, project) = logged_in().await;
    let (key, codes, _) = enable(&project);

    // Without a terminal or --otp: one sentence naming the flag, exit 4.
    let scripted = login_with(&Project::new(), &host.base_url, EMAIL, PASSWORD);
    assert_eq!(scripted.code, Some(4), "{scripted:?}");
    assert_eq!(
        one_line(&scripted.stderr),
        "ada@example.com has two-factor login: add --otp CODE (the code from your authenticator app, or a \
         recovery code)."
    );
    // --otp with a recovery code, for scripts.
    let with_otp = Project::new();
    let args = ["login", "--server", &host.base_url, "--username", EMAIL, "--password-stdin", "--otp", &codes[0]];
    let outcome: Outcome = run(with_otp.loom(&args), Some(PASSWORD));
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    let whoami = run(with_otp.loom(&["whoami"]), None);
    assert!(one_line(&whoami.stdout).ends_with("; logged in with two factors"), "{whoami:?}");
    let again = run(Project::new().loom(&args), Some(PASSWORD));
    assert_eq!(again.code, Some(1), "a recovery code works once: {again:?}");
    assert_eq!(one_line(&again.stderr), "error: The authentication code is wrong, expired or already used");

    // At a terminal, the code is asked for after the password.
    let person = Project::new();
    let mut command = person.loom(&["login", "--server", &host.base_url, "--username", EMAIL]);
    command.env("LOOM_SERVER", &host.base_url);
    let mut session = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
    session.exp_string("Password for").unwrap();
    session.send_line(PASSWORD).unwrap();
    session.exp_string("Authentication code (from your app, or a recovery code): ").unwrap();
    session.send_line(&code_at(&key, now() + 30)).unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains(&format!("Logged in to {} as {EMAIL}", host.base_url)), "{rest:?}");
}
