//! `host-server users import`: the FastAPI service's users move in with their ids, usernames
//! and passwords (bcrypt, passlib's pbkdf2-sha256, pwdlib's argon2id, made by those very
//! libraries), into SQLite and PostgreSQL, from SQLite and PostgreSQL; their first login
//! re-hashes to argon2id. Runs on the suite's backend (`LOOM_TEST_BACKEND`).

use std::path::Path;
use std::time::{Duration, Instant};

use loom_e2e::{HostOptions, Outcome, TestHost, client, python_tool, query_one, register, run_within};
use reqwest::StatusCode;
use serde_json::Value;

/// The old service's database (SQLite, at `path`), made by the Python libraries it used: its
/// rows (those of `only` when it names any).
fn fastapi_source(path: &Path, only: &[&str]) -> Option<Vec<Value>> {
    let python = python_tool("python")?;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/fastapi_source.py");
    let mut command = std::process::Command::new(python);
    command.arg(script).arg(path).args(only);
    let outcome = run_within(command, Duration::from_secs(120));
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    Some(serde_json::from_str(&outcome.stdout).expect("the rows as JSON"))
}

/// `host-server users ARGS` on `host`'s database, with its component.
fn users(host: &TestHost, args: &[&str]) -> Outcome {
    users_with(host, &[], args)
}

/// `host-server SETTINGS users ARGS` on `host`'s database, with its component.
fn users_with(host: &TestHost, settings: &[&str], args: &[&str]) -> Outcome {
    let mut command = host.admin_command();
    command.args(settings).arg("users").args(args);
    run_within(command, Duration::from_secs(60))
}

async fn login(host: &TestHost, email: &str, password: &str) -> (StatusCode, Duration, Value) {
    let started = Instant::now();
    let response = client().post(host.url("/token")).form(&[("username", email), ("password", password)]);
    let response = response.send().await.unwrap();
    let took = started.elapsed();
    (response.status(), took, response.json().await.unwrap_or(Value::Null))
}

/// The quickest of `times` failed logins (a wrong password) for `email`: noise only adds time.
async fn fastest_failure(host: &TestHost, email: &str, times: usize) -> Duration {
    let mut fastest = Duration::MAX;
    for _ in 0..times {
        let (status, took, _) = login(host, email, "not the old password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{email}");
        fastest = fastest.min(took);
    }
    fastest
}

fn stored_hash(host: &TestHost, id: i64) -> String {
    query_one(&host.database_url, &format!("SELECT hashed_password FROM users WHERE id = {id}"))
}

#[tokio::test]
async fn the_fastapi_services_users_move_in_and_log_in_with_their_old_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let source_file = dir.path().join("sql_app.db");
    let Some(rows) = fastapi_source(&source_file, &[]) else { return };
    let source = format!("sqlite://{}", source_file.display());
    let host = TestHost::spawn();
    // An account that was here before: id 1, and an email none of the rows has.
    let zed = register(&host, "zed@example.com", "zed's passphrase 2026").await;

    // A dry run says everything and writes nothing.
    let dry = users(&host, &["import", &source, "--dry-run"]);
    assert_eq!(dry.code, Some(1), "some rows are refused: {dry:?}");
    for expected in [
        "row 104: warning: its username \"do ra\" does not fit the username rules: dropped",
        "row 106: refused: not an email address",
        "row 107: refused: the same email address as row 101",
        "row 108: refused: its password hash is an unknown or plain-text password hash format",
        "row 109: refused: its password hash is a bcrypt hash of cost 17",
        "row 110: refused: its password hash is an argon2 hash dearer than a login may spend",
        "Would import 5 accounts",
    ] {
        assert!(dry.stdout.contains(expected), "{expected:?} in:\n{}", dry.stdout);
    }
    for row in &rows {
        let hash = row["hashed_password"].as_str().unwrap();
        let secret_part = &hash[hash.len().saturating_sub(20)..];
        assert!(!dry.stdout.contains(secret_part) && !dry.stderr.contains(secret_part), "a hash in the report");
    }
    assert_eq!(users(&host, &["list"]).stdout.lines().count(), 2, "the dry run wrote nothing");
    // The component checks one hash of each format first: one it cannot check here, in its
    // memory or in half its deadline, refuses its rows.
    let constrained = users_with(
        &host,
        &["--hash-deadline-ms", "200", "--guest-memory-mib", "40"],
        &["import", &source, "--dry-run"],
    );
    for expected in [
        "row 101: refused: its password hash (bcrypt $2b$ cost 12) takes",
        "--hash-deadline-ms 200",
        "row 102: refused: its password hash (argon2id m=65536,t=3,p=4) cannot be checked by the component here",
    ] {
        assert!(constrained.stdout.contains(expected), "{expected:?} in:\n{}", constrained.stdout);
    }

    let imported = users(&host, &["import", &source]);
    assert_eq!(imported.code, Some(1), "{imported:?}");
    assert!(imported.stdout.contains("Imported 5 accounts"), "{}", imported.stdout);

    // Each imported user logs in with the old password, keeps the id and the username.
    let mut first_logins = Vec::new();
    for row in rows.iter().filter(|row| row["expect"] == "import") {
        let (id, email, password) =
            (row["id"].as_i64().unwrap(), row["email"].as_str().unwrap(), row["password"].as_str().unwrap());
        let format: String = row["hashed_password"].as_str().unwrap().chars().take(16).collect();
        let (wrong, _, _) = login(&host, email, "not the old password").await;
        assert_eq!(wrong, StatusCode::UNAUTHORIZED, "{email}");
        let (status, took, body) = login(&host, email, password).await;
        if row["is_active"] == false {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{email} stays deactivated");
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{email} ({format}): {body}");
        first_logins.push(format!("{format}… {took:?}"));
        let token = body["access_token"].as_str().unwrap();
        let me: Value =
            client().get(host.url("/users/me/")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["id"], id, "{email} keeps its id");
        let username = row["username"].as_str().filter(|name| !name.contains(' '));
        assert_eq!(me["username"].as_str(), username, "{email}");
        // The first login re-hashed it to the serving component's argon2id; it logs in still.
        let rehashed = stored_hash(&host, id);
        assert!(rehashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{email}: {rehashed}");
        assert_eq!(login(&host, email, password).await.0, StatusCode::OK, "{email} after the re-hash");
    }
    println!("first logins by format: {first_logins:?}");
    let formats = users(&host, &["list", "--hash-formats"]);
    assert!(formats.stdout.contains("pbkdf2-sha256 29000 rounds"), "carl never logged in:\n{}", formats.stdout);

    // Again: nothing new, and it says so.
    let again = users(&host, &["import", &source]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stdout.contains("Nothing new to import") && again.stdout.contains("5 here already"), "{again:?}");
    // Registrations go on after the largest id.
    let next = register(&host, "new@example.com", "a brand new account 2026").await;
    assert!(next["id"].as_i64().unwrap() > 105 && zed["id"].as_i64().unwrap() < 101, "{next} {zed}");
}

#[tokio::test]
async fn a_postgresql_source_imports_like_a_sqlite_one() {
    let Some(server) = loom_e2e::postgres_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(rows) = fastapi_source(&dir.path().join("unused.db"), &[]) else { return };
    // The same rows in PostgreSQL, in the table SQLAlchemy makes there (a 32-bit id).
    let source = loom_e2e::PostgresDatabase::create(&server);
    loom_e2e::run_sql(
        &source.url,
        "CREATE TABLE users (id SERIAL PRIMARY KEY, email VARCHAR UNIQUE, hashed_password VARCHAR, is_active BOOLEAN)",
    );
    for row in &rows {
        let text = |name: &str| row[name].as_str().map_or("NULL".into(), |v| format!("'{}'", v.replace('\'', "''")));
        loom_e2e::run_sql(
            &source.url,
            &format!(
                "INSERT INTO users (id, email, hashed_password, is_active) VALUES ({}, {}, {}, {})",
                row["id"],
                text("email"),
                text("hashed_password"),
                row["is_active"]
            ),
        );
    }
    let host = TestHost::spawn();
    let imported = users(&host, &["import", &source.url]);
    assert_eq!(imported.code, Some(1), "{imported:?}");
    assert!(imported.stdout.contains("Imported 5 accounts"), "{}", imported.stdout);
    let ada = rows.iter().find(|row| row["id"] == 101).unwrap();
    let (status, _, _) = login(&host, "ada@example.com", ada["password"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!imported.stdout.contains("postgres://"), "the source URL is not shown: {}", imported.stdout);
}

/// The time of a failed login against an imported bcrypt account, which no argon2 parameter
/// predicts, tells nothing either: a host times each such format in its survey of the stored
/// hashes, at start and within seconds of an import made while it serves.
#[tokio::test]
async fn an_imported_accounts_failed_login_takes_as_long_as_an_unknown_ones() {
    let dir = tempfile::tempdir().unwrap();
    let source_file = dir.path().join("sql_app.db");
    // Ada's bcrypt hash of cost 12 (passlib's default), dearer than the serving argon2id.
    let Some(_) = fastapi_source(&source_file, &["101"]) else { return };
    let unthrottled = || HostOptions {
        args: vec!["--login-max-failures".into(), "1000".into()],
        log_filter: Some("info,host_server::accounts::credentials=debug".into()),
        ..Default::default()
    };
    // On a data directory of the test's own, which outlives the host: it is restarted below.
    let data = tempfile::tempdir().unwrap();
    let host = TestHost::spawn_in(data.path(), unthrottled());
    host.wait_for_log("surveyed the stored password hashes");
    let imported = users(&host, &["import", &format!("sqlite://{}", source_file.display())]);
    assert_eq!(imported.code, Some(0), "{imported:?}");
    // The host serving while the import ran sees it (within a 5-second poll) and times the
    // format before anyone tries Ada's account (the log's wait has a 10-second deadline).
    host.wait_for_log("bcrypt $2b$ cost 12");
    let unknown = fastest_failure(&host, "nobody@example.com", 4).await;
    let known = fastest_failure(&host, "ada@example.com", 4).await;
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    // Unpadded, an unknown account took ~0.25 times as long (a busy machine can slow her checks
    // past the floor's margin: the bound is loose).
    assert!(ratio > 0.7, "unknown/imported login time ratio {ratio:.2} ({unknown:?} / {known:?})");
    // The floor follows the fastest check seen, so the two kinds of login take turns.
    let (mut unknown, mut known) = (Duration::MAX, Duration::MAX);
    for _ in 0..6 {
        known = known.min(fastest_failure(&host, "ada@example.com", 1).await);
        unknown = unknown.min(fastest_failure(&host, "nobody@example.com", 1).await);
    }
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!((0.85..1.18).contains(&ratio), "unknown/imported login time ratio {ratio:.2} ({unknown:?} / {known:?})");

    // A host started on the database knows it before any check of Ada's account (a busy
    // machine can slow her checks past the floor's margin: the bound is loose).
    let options = HostOptions { database: Some(host.database()), ..unthrottled() };
    drop(host);
    let started = TestHost::spawn_in(data.path(), options);
    started.wait_for_log("surveyed the stored password hashes");
    assert!(started.logs().contains("bcrypt $2b$ cost 12"), "the survey timed Ada's format:\n{}", started.logs());
    let unknown = fastest_failure(&started, "nobody@example.com", 4).await;
    let known = fastest_failure(&started, "ada@example.com", 4).await;
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!(ratio > 0.7, "after a start, unknown/imported ratio {ratio:.2} ({unknown:?} / {known:?})");
}

/// An account whose stored hash the host cannot check (here: pwdlib's 64 MiB argon2id on a host
/// whose instances may have 40 MiB) fails like a wrong password, with a log line for the
/// operator, never with an answer of its own that would tell the account exists.
#[tokio::test]
async fn an_account_whose_hash_is_too_dear_here_fails_like_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let source_file = dir.path().join("sql_app.db");
    let Some(rows) = fastapi_source(&source_file, &["102"]) else { return };
    let data = tempfile::tempdir().unwrap();
    let host = TestHost::spawn_in(data.path(), HostOptions::default());
    let imported = users(&host, &["import", &format!("sqlite://{}", source_file.display())]);
    assert_eq!(imported.code, Some(0), "{imported:?}");
    let options = HostOptions {
        database: Some(host.database()),
        args: vec!["--guest-memory-mib".into(), "40".into()],
        ..Default::default()
    };
    drop(host);
    let small = TestHost::spawn_in(data.path(), options);
    let password = rows[0]["password"].as_str().unwrap();
    for (email, password) in [("bob@example.com", password), ("bob@example.com", "not it"), ("nobody@example.com", "x")]
    {
        let (status, _, body) = login(&small, email, password).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{email}: {body}");
        assert_eq!(body["detail"], "Incorrect username or password", "{email}: {body}");
    }
    small.wait_for_log("this account cannot log in until its password is reset");
}

/// bcrypt reads only a password's first 72 bytes, so a login with those alone matches an
/// imported bcrypt hash of a longer password. The host must not re-hash from such a login (the
/// owner's full password would be refused from then on): only a password bcrypt tells apart
/// (shorter than 72 bytes) becomes the new hash.
#[tokio::test]
async fn a_bcrypt_hash_is_never_replaced_from_a_password_it_cannot_tell_apart() {
    let dir = tempfile::tempdir().unwrap();
    let source_file = dir.path().join("sql_app.db");
    let Some(rows) = fastapi_source(&source_file, &["111"]) else { return };
    let host = TestHost::spawn();
    let imported = users(&host, &["import", &format!("sqlite://{}", source_file.display())]);
    assert_eq!(imported.code, Some(0), "{imported:?}");
    let full = rows[0]["password"].as_str().unwrap();
    let prefix = std::str::from_utf8(&full.as_bytes()[..72]).unwrap();
    let imported_hash = stored_hash(&host, 111);
    let (status, _, body) = login(&host, "iris@example.com", prefix).await;
    assert_eq!(status, StatusCode::OK, "bcrypt matches the first 72 bytes: {body}");
    assert_eq!(stored_hash(&host, 111), imported_hash, "re-hashed from a password that may not be hers");
    let (status, _, body) = login(&host, "iris@example.com", full).await;
    assert_eq!(status, StatusCode::OK, "her full password still logs in: {body}");
    assert_eq!(stored_hash(&host, 111), imported_hash, "nor from her full one, which bcrypt cannot tell apart");
    host.wait_for_log("kept a bcrypt hash");
}

/// However many costs of one algorithm the stored hashes have (passlib's `vary_rounds`, years
/// of raised defaults), a failed login for an account of the dearest takes as long as an
/// unknown account's: the floor follows each family's dearest hash, not the first 64 classes.
#[tokio::test]
async fn every_cost_of_an_imported_family_is_padded_however_many_there_are() {
    let dir = tempfile::tempdir().unwrap();
    let source_file = dir.path().join("sql_app.db");
    let Some(rows) = fastapi_source(&source_file, &["--pbkdf2-classes=66"]) else { return };
    assert_eq!(rows.len(), 66);
    let host = TestHost::spawn_with(HostOptions {
        args: vec!["--login-max-failures".into(), "1000".into()],
        log_filter: Some("info,host_server::accounts::credentials=debug".into()),
        ..Default::default()
    });
    host.wait_for_log("surveyed the stored password hashes");
    let imported = users(&host, &["import", &format!("sqlite://{}", source_file.display())]);
    assert_eq!(imported.code, Some(0), "{imported:?}");
    // The survey after the import times the dearest (400,000 rounds), the 66th class.
    host.wait_for_log("pbkdf2-sha256 400000 rounds");
    let unknown = fastest_failure(&host, "nobody@example.com", 4).await;
    let dearest = fastest_failure(&host, "class66@example.com", 4).await;
    let ratio = unknown.as_secs_f64() / dearest.as_secs_f64();
    // Unpadded, an unknown account's failure takes a fraction of the dearest's.
    assert!(ratio > 0.7, "unknown/dearest login time ratio {ratio:.2} ({unknown:?} / {dearest:?})");
}

/// A stored hash dearer than `--hash-deadline-ms` fails like a wrong password, padded alike,
/// never with a quick `503` that tells the account exists.
#[tokio::test]
async fn a_stored_hash_past_the_deadline_fails_like_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let source_file = dir.path().join("sql_app.db");
    let Some(rows) = fastapi_source(&source_file, &["112"]) else { return };
    let data = tempfile::tempdir().unwrap();
    let host = TestHost::spawn_in(data.path(), HostOptions::default());
    let source = format!("sqlite://{}", source_file.display());
    let imported = users_with(&host, &["--hash-deadline-ms", "30000"], &["import", &source]);
    assert_eq!(imported.code, Some(0), "{imported:?}");
    let options = HostOptions {
        database: Some(host.database()),
        args: vec!["--hash-deadline-ms".into(), "1000".into(), "--login-max-failures".into(), "1000".into()],
        ..Default::default()
    };
    drop(host);
    let short = TestHost::spawn_in(data.path(), options);
    let password = rows[0]["password"].as_str().unwrap();
    let (mut unknown, mut jack) = (Duration::MAX, Duration::MAX);
    for (email, password) in [("jack@example.com", password), ("jack@example.com", "not it")].repeat(2) {
        let (status, took, body) = login(&short, email, password).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{email}: {body}");
        assert_eq!(body["detail"], "Incorrect username or password", "{email}: {body}");
        jack = jack.min(took);
        let (status, took, _) = login(&short, "nobody@example.com", "x").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        unknown = unknown.min(took);
    }
    let ratio = jack.as_secs_f64() / unknown.as_secs_f64();
    assert!(ratio > 0.7, "jack/unknown login time ratio {ratio:.2} ({jack:?} / {unknown:?}): a quick answer tells");
    short.wait_for_log("this account cannot log in until its password is reset");
}
