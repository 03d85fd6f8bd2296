//! `loom tokens` and personal access tokens from the command line: made with the password and
//! printed alone, listed, revoked; `LOOM_TOKEN=loom_pat_…` for every command (traded for an
//! access token by `loom token`, never saved); `login --with-token`; the week's warning; and
//! one sentence naming an expired or revoked token (exit 4).

use loom_e2e::loom::{one_line, saved_login};
use loom_e2e::{Outcome, Project, TestHost, run};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// `loom tokens create --name NAME --expires DAYS` with the password on standard input.
fn create(project: &Project, name: &str, expires: &str) -> Outcome {
    run(project.loom(&["tokens", "create", "--name", name, "--expires", expires, "--password-stdin"]), Some(PASSWORD))
}

/// A host with Ada registered, and a project logged in to it with her password.
async fn logged_in() -> (TestHost, Project) {
    loom_e2e::loom::logged_in(EMAIL, PASSWORD).await
}

/// `loom ARGS` in a fresh project (no saved login) with `LOOM_TOKEN` and `LOOM_SERVER` set.
fn with_env_token(host: &TestHost, token: &str, args: &[&str]) -> Outcome {
    let project = Project::new();
    let mut command = project.loom(args);
    command.env("LOOM_TOKEN", token).env("LOOM_SERVER", &host.base_url);
    run(command, None)
}

#[tokio::test]
async fn tokens_are_made_listed_and_revoked_from_the_command_line() {
    let (host, project) = logged_in().await;
    let made = create(&project, "ci", "90d");
    assert_eq!(made.code, Some(0), "{made:?}");
    let token = made.stdout.trim();
    assert_eq!(made.stdout, format!("{token}\n"), "the token alone on stdout");
    assert!(token.starts_with("loom_pat_") && token.len() == 47, "{token}");
    assert!(made.stderr.contains("'ci'") && made.stderr.contains("shown only this once"), "{}", made.stderr);

    let wrong = run(project.loom(&["tokens", "create", "--name", "x", "--password-stdin"]), Some("not it"));
    assert_eq!(wrong.code, Some(1));
    assert_eq!(one_line(&wrong.stderr), "error: The password is incorrect");
    let bad_days = create(&project, "x", "soon");
    assert_eq!(bad_days.code, Some(2));
    assert!(one_line(&bad_days.stderr).contains("--expires takes a number of days"), "{bad_days:?}");
    let too_long = create(&project, "x", "400d");
    assert_eq!(too_long.code, Some(2), "{too_long:?}");
    assert_eq!(one_line(&too_long.stderr), "error: --expires must be from 1 to 366");
    let taken = create(&project, "ci", "30d");
    assert_eq!(taken.code, Some(1));
    assert!(one_line(&taken.stderr).contains("A token named 'ci' already exists"), "{taken:?}");

    let listed = run(project.loom(&["tokens", "list"]), None);
    assert_eq!(listed.code, Some(0), "{listed:?}");
    assert!(listed.stdout.contains("ci") && listed.stdout.contains(&token[..13]), "{}", listed.stdout);
    assert!(!listed.stdout.contains(&token[13..]), "never the secret");
    let json = run(project.loom(&["tokens", "list", "--json"]), None);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(parsed[0]["name"], "ci");

    let revoked = run(project.loom(&["tokens", "revoke", "ci"]), None);
    assert_eq!(revoked.code, Some(0), "{revoked:?}");
    let again = run(project.loom(&["tokens", "revoke", "ci"]), None);
    assert_eq!(again.code, Some(1));
    assert!(one_line(&again.stderr).contains("no live token named"), "{again:?}");
    let used = with_env_token(&host, token, &["whoami"]);
    assert_eq!(used.code, Some(4), "{used:?}");
    assert_eq!(
        one_line(&used.stderr),
        format!(
            "The personal access token 'ci' was revoked (at {}): make a new one with 'loom tokens create' and set \
             LOOM_TOKEN to it.",
            host.base_url
        )
    );
}

#[tokio::test]
async fn loom_token_holding_a_personal_access_token_works_for_every_command_and_saves_nothing() {
    let (host, project) = logged_in().await;
    let token = create(&project, "ci", "30d").stdout.trim().to_owned();

    let whoami = with_env_token(&host, &token, &["whoami"]);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    assert!(whoami.stdout.contains(EMAIL) && whoami.stdout.contains("personal access token 'ci'"), "{whoami:?}");
    assert!(whoami.stderr.is_empty(), "no warning a month ahead: {}", whoami.stderr);

    // `loom token` trades it for a short access token (a JWT), which the host takes.
    let printed = with_env_token(&host, &token, &["token"]);
    assert_eq!(printed.code, Some(0), "{printed:?}");
    let access = printed.stdout.trim();
    assert!(access.starts_with("eyJ") && access.split('.').count() == 3, "{access}");
    let me = loom_e2e::client().get(host.url("/users/me/")).bearer_auth(access).send().await.unwrap();
    assert_eq!(me.status(), 200);

    // What only a password login may do is refused before anything is asked or sent.
    for command in [&["tokens", "list"][..], &["tokens", "create", "--name", "x"], &["passwd"], &["sessions"]] {
        let refused = with_env_token(&host, &token, command);
        assert_eq!(refused.code, Some(4), "{refused:?}");
        assert_eq!(
            one_line(&refused.stderr).split_once(" needs a password login").map(|(_, rest)| rest),
            Some(", and LOOM_TOKEN holds a personal access token: unset LOOM_TOKEN and run 'loom login'."),
            "{refused:?}"
        );
    }
    // The server refuses it too, whoever asks.
    let response = loom_e2e::client().get(host.url("/users/me/tokens")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 403);

    // A typo is said as one, with what to do.
    let mut typo = token.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = with_env_token(&host, &String::from_utf8(typo).unwrap(), &["whoami"]);
    assert_eq!(typo.code, Some(4), "{typo:?}");
    assert!(one_line(&typo.stderr).contains("holds no whole token; copy it again"), "{typo:?}");

    // Without a server named, the token is sent nowhere.
    let project_without = Project::new();
    let mut command = project_without.loom(&["whoami"]);
    command.env("LOOM_TOKEN", &token);
    let refused = run(command, None);
    assert_eq!(refused.code, Some(2), "{refused:?}");
    assert!(!project_without.settings().exists(), "nothing saved");
}

#[tokio::test]
async fn login_with_token_keeps_it_and_whoami_warns_a_week_ahead() {
    let (host, project) = logged_in().await;
    let token = create(&project, "deploy", "3d").stdout.trim().to_owned();

    let machine = Project::new();
    let login = run(machine.loom(&["login", "--server", &host.base_url, "--with-token"]), Some(&format!("{token}\n")));
    assert_eq!(login.code, Some(0), "{login:?}");
    assert!(login.stdout.contains("personal access token 'deploy'"), "{login:?}");
    assert!(login.stderr.contains("expires in"), "warned at once: {}", login.stderr);
    let saved = saved_login(&machine);
    assert_eq!(saved["token_name"], "deploy");
    assert_eq!(saved["email"], EMAIL);

    let whoami = run(machine.loom(&["whoami"]), None);
    assert_eq!(whoami.code, Some(0), "{whoami:?}");
    assert!(whoami.stdout.contains("personal access token 'deploy'"), "{whoami:?}");
    let warning = one_line(&whoami.stderr);
    assert!(
        warning.starts_with("warning: the personal access token 'deploy' expires in 2 days")
            || warning.starts_with("warning: the personal access token 'deploy' expires in 3 days"),
        "{warning}"
    );

    let typo = run(machine.loom(&["login", "--server", &host.base_url, "--with-token"]), Some("loom_pat_short\n"));
    assert_eq!(typo.code, Some(2), "{typo:?}");
    assert!(one_line(&typo.stderr).contains("does not hold a personal access token"), "{typo:?}");

    // Expired (a test-only way to an expired row): one sentence naming it, exit 4.
    host.sql("UPDATE personal_tokens SET expires_at = 1798848000 - 86400 * 366 * 2");
    let expired = run(machine.loom(&["whoami"]), None);
    assert_eq!(expired.code, Some(4), "{expired:?}");
    let line = one_line(&expired.stderr);
    assert!(line.contains("The personal access token 'deploy'") && line.contains("expired"), "{line}");
    assert!(line.contains("loom tokens create"), "{line}");

    // A global logout needs a password login: said, nothing forgotten.
    let all = run(machine.loom(&["logout", "--all"]), None);
    assert_eq!(all.code, Some(2), "{all:?}");
    assert!(one_line(&all.stderr).contains("'loom logout' forgets it here"), "{all:?}");
    assert_eq!(saved_login(&machine)["token_name"], "deploy");
    // Logging out forgets it here and says it stays valid.
    let logout = run(machine.loom(&["logout"]), None);
    assert_eq!(logout.code, Some(0), "{logout:?}");
    assert!(logout.stderr.contains("stays valid"), "{logout:?}");
    assert!(saved_login(&machine).is_null());
}

#[tokio::test]
async fn a_password_change_and_a_global_logout_say_how_many_tokens_stay_valid() {
    let (_host, project) = logged_in().await;
    assert_eq!(create(&project, "ci", "30d").code, Some(0));
    assert_eq!(create(&project, "deploy", "30d").code, Some(0));
    let new = "another passphrase, 2027";
    let passwd = run(project.loom(&["passwd", "--password-stdin"]), Some(&format!("{PASSWORD}\n{new}\n")));
    assert_eq!(passwd.code, Some(0), "{passwd:?}");
    assert!(passwd.stderr.contains("2 personal access tokens stay valid"), "{passwd:?}");
    let logout = run(project.loom(&["logout", "--all"]), None);
    assert_eq!(logout.code, Some(0), "{logout:?}");
    assert!(logout.stderr.contains("2 personal access tokens stay valid"), "{logout:?}");
}
