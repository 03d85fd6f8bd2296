//! Only signed components run: a component needs a minisign signature beside it
//! (`<file>.minisig`) made by a key in `--trusted-signers`, at start and at
//! every swap; `--allow-unsigned` is the loud development opt-out.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loom_e2e::{
    HostOptions, Outcome, TestHost, binary, built_component, dev_signers, health, install, run, sha256, signature,
};
use serde_json::Value;

/// A new key pair made with `loom-sign keygen` in `dir`: (secret key, public key).
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (secret, public) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
    let mut command = std::process::Command::new(binary("loom-sign"));
    command.arg("keygen").arg("--secret-key").arg(&secret).arg("--public-key").arg(&public);
    let outcome = run(command, None);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    (secret, public)
}

fn sign(secret: &Path, file: &Path) {
    let mut command = std::process::Command::new(binary("loom-sign"));
    command.arg("sign").arg("--secret-key").arg(secret).arg(file);
    let outcome = run(command, None);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
}

/// A copy of the default component in `dir`, with no signature.
fn unsigned_copy(dir: &Path) -> PathBuf {
    let path = dir.join("auth.wasm");
    std::fs::copy(loom_e2e::component(), &path).unwrap();
    path
}

fn start(dir: &Path, component: &Path, extra: &[&str]) -> Outcome {
    let mut command = std::process::Command::new(binary("host-server"));
    command.args(["--bind", "127.0.0.1:0", "--data-dir"]).arg(dir.join("data"));
    command.arg("--component").arg(component).args(extra);
    command.env_remove("LOOM_AUTH_TRUSTED_SIGNERS").env_remove("LOOM_AUTH_ALLOW_UNSIGNED");
    run(command, None)
}

fn assert_refused_at_signature(outcome: &Outcome, why: &str) {
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert!(outcome.stderr.contains("refused at the signature step"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains(why), "expected {why:?} in {}", outcome.stderr);
}

#[test]
fn a_host_refuses_to_start_on_a_component_it_cannot_trust() {
    let dir = tempfile::tempdir().unwrap();
    let signers = dev_signers();
    let signers = signers.to_str().unwrap();
    let component = unsigned_copy(dir.path());
    assert_refused_at_signature(&start(dir.path(), &component, &["--trusted-signers", signers]), "it is not signed");

    let (stranger, _) = keygen(dir.path(), "stranger");
    sign(&stranger, &component);
    assert_refused_at_signature(
        &start(dir.path(), &component, &["--trusted-signers", signers]),
        "signed by a key that is not in the trusted signers",
    );

    // A trusted signature, of other bytes.
    std::fs::copy(signature(&built_component("auth-guest-hardened.wasm")), signature(&component)).unwrap();
    assert_refused_at_signature(
        &start(dir.path(), &component, &["--trusted-signers", signers]),
        "its signature does not match its bytes",
    );

    // Neither trust nor an explicit opt-out: a usage error that names both.
    let neither = start(dir.path(), &component, &[]);
    assert_eq!(neither.code, Some(2), "{neither:?}");
    assert!(neither.stderr.contains("--trusted-signers") && neither.stderr.contains("--allow-unsigned"), "{neither:?}");

    let bad_file = dir.path().join("signers.txt");
    std::fs::write(&bad_file, "# ops team\nnot a key\n").unwrap();
    let bad = start(dir.path(), &component, &["--trusted-signers", bad_file.to_str().unwrap()]);
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert!(bad.stderr.contains("line 2: not a minisign public key"), "{}", bad.stderr);
}

#[tokio::test]
async fn allow_unsigned_runs_an_unsigned_component_and_says_so_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let component = unsigned_copy(dir.path());
    let options =
        HostOptions { component: Some(component), args: vec!["--allow-unsigned".into()], ..Default::default() };
    let host = TestHost::spawn_with(options);
    loom_e2e::register(&host, "ada@example.com", "correct horse battery staple").await;
    let logs = host.logs();
    let warning = logs.lines().find(|l| l.contains("--allow-unsigned is on")).unwrap_or_else(|| panic!("{logs}"));
    assert!(warning.contains("WARN") && warning.contains("development only"), "{warning}");
}

/// Waits (bounded) until `/healthz` reports a reload of the component with digest `sha`.
async fn reload_of(host: &TestHost, sha: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = health(host).await;
        if health["last_reload"]["sha256"] == sha && health["last_reload"]["result"] != "unchanged" {
            return health;
        }
        assert!(Instant::now() < deadline, "no reload of {sha}; /healthz: {health}\n{}", host.logs());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_swap_publishes_only_a_component_signed_by_a_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let (release_key, release_pub) = keygen(dir.path(), "release");
    // Trust both the development key and a release key: several keys, one file.
    let signers = dir.path().join("signers.pub");
    let both = format!(
        "{}{}",
        std::fs::read_to_string(dev_signers()).unwrap(),
        std::fs::read_to_string(&release_pub).unwrap()
    );
    std::fs::write(&signers, both).unwrap();
    let served = dir.path().join("served.wasm");
    install(&loom_e2e::component(), &served);
    let options = HostOptions {
        component: Some(served.clone()),
        args: vec!["--trusted-signers".into(), signers.display().to_string()],
        ..Default::default()
    };
    let host = TestHost::spawn_with(options);
    let original = sha256(&served);

    // Unsigned: the hardened component without its signature.
    let hardened = built_component("auth-guest-hardened.wasm");
    let staged = dir.path().join("hardened.wasm");
    std::fs::copy(&hardened, &staged).unwrap();
    std::fs::remove_file(signature(&served)).unwrap();
    install(&staged, &served);
    let hardened_sha = sha256(&hardened);
    let refused = reload_of(&host, &hardened_sha).await;
    let outcome = (&refused["last_reload"]["result"], &refused["last_reload"]["step"]);
    assert_eq!(outcome, (&"rejected".into(), &"signature".into()), "{refused}");
    assert_eq!(refused["component"]["sha256"], original.as_str(), "the old component keeps serving");
    host.wait_for_log("refused the candidate auth component at the signature step: it is not signed");

    // Signed with the release key, whose public half is trusted: published. The
    // signature lands after the component, which the host notices too.
    sign(&release_key, &staged);
    std::fs::copy(signature(&staged), signature(&served)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while health(&host).await["component"]["sha256"] != hardened_sha.as_str() {
        assert!(Instant::now() < deadline, "the signed component was not published:\n{}", host.logs());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    loom_e2e::register(&host, "ada@example.com", "correct horse battery staple").await;
}

/// `host-server ARGS` as an administrator runs it from `cwd` (not the repository, where the
/// default component path means nothing) on `host`'s data, with `env` set.
fn admin_from(cwd: &Path, host: &TestHost, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut command = std::process::Command::new(binary("host-server"));
    command.current_dir(cwd).arg("--data-dir").arg(&host.data_dir).arg("--database-url").arg(&host.database_url);
    command.args(args).envs(env.iter().copied());
    for variable in ["LOOM_AUTH_TRUSTED_SIGNERS", "LOOM_AUTH_ALLOW_UNSIGNED", "LOOM_AUTH_COMPONENT", "DATABASE_URL"] {
        if !env.iter().any(|(name, _)| *name == variable) {
            command.env_remove(variable);
        }
    }
    run(command, None)
}

#[test]
fn admin_commands_run_only_components_the_host_would_serve() {
    let host = TestHost::spawn();
    let dir = tempfile::tempdir().unwrap();
    let unsigned = unsigned_copy(dir.path());
    let unsigned = unsigned.to_str().unwrap();
    let signers = dev_signers();
    let signers = signers.to_str().unwrap();
    let keys = || admin_from(dir.path(), &host, &["keys", "list"], &[]).stdout;
    let before = keys();

    // Neither --trusted-signers nor --allow-unsigned: nothing runs, and it says why.
    let outcome = admin_from(dir.path(), &host, &["keys", "rotate", "--component", unsigned], &[]);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert!(outcome.stderr.contains("only signed components run") && outcome.stderr.contains("--trusted-signers"));
    // Trusted signers, an unsigned component: refused at the signature step, as a host would.
    let args = ["keys", "rotate", "--component", unsigned, "--trusted-signers", signers];
    assert_refused_at_signature(&admin_from(dir.path(), &host, &args, &[]), "it is not signed");
    assert_eq!(keys(), before, "no key was made");

    // From another directory the default component path names nothing: say which setting to give.
    let outcome = admin_from(dir.path(), &host, &["keys", "rotate", "--trusted-signers", signers], &[]);
    assert_eq!(outcome.code, Some(1), "{outcome:?}");
    assert!(outcome.stderr.contains("--component") && outcome.stderr.contains("LOOM_AUTH_COMPONENT"), "{outcome:?}");

    // The signed component, named by the environment: the key is rotated.
    let component = loom_e2e::component();
    let env = [("LOOM_AUTH_COMPONENT", component.to_str().unwrap()), ("LOOM_AUTH_TRUSTED_SIGNERS", signers)];
    let outcome = admin_from(dir.path(), &host, &["keys", "rotate"], &env);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert_eq!(keys().lines().count(), before.lines().count() + 1);
}

#[test]
fn switches_from_the_environment_read_as_people_write_them() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-component.wasm");
    let start_with = |value: &str| {
        let mut command = std::process::Command::new(binary("host-server"));
        command.args(["--bind", "127.0.0.1:0", "--data-dir"]).arg(dir.path().join("data"));
        command.arg("--component").arg(&missing);
        command.env_remove("LOOM_AUTH_TRUSTED_SIGNERS").env("LOOM_AUTH_ALLOW_UNSIGNED", value);
        run(command, None)
    };
    // On: the host goes on past the signature policy (and stops at the missing component).
    for on in ["1", "true", "TRUE", "yes", "on"] {
        let outcome = start_with(on);
        assert_eq!(outcome.code, Some(1), "{on}: {outcome:?}");
        assert!(outcome.stderr.contains("there is no auth component"), "{on}: {}", outcome.stderr);
    }
    // Off, or set to nothing: as if unset, so the host asks for a signature policy (a usage error).
    for off in ["0", "false", "no", "off", ""] {
        let outcome = start_with(off);
        assert_eq!(outcome.code, Some(2), "{off}: {outcome:?}");
        assert!(outcome.stderr.contains("only signed components run"), "{off}: {}", outcome.stderr);
    }
    let outcome = start_with("maybe");
    assert_eq!(outcome.code, Some(2), "{outcome:?}");
    assert!(outcome.stderr.contains("LOOM_AUTH_ALLOW_UNSIGNED") || outcome.stderr.contains("maybe"), "{outcome:?}");
}

#[test]
fn loom_sign_keeps_its_secret_key_private_and_never_overwrites_one() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = keygen(dir.path(), "release");
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&secret), 0o600, "the secret key is the owner's alone");
    let (secret_before, public_before) = (std::fs::read(&secret).unwrap(), std::fs::read(&public).unwrap());
    let public_text = String::from_utf8(public_before.clone()).unwrap();
    assert!(public_text.lines().any(|line| line.starts_with("RW")), "a minisign public key: {public_text}");

    // A second keygen onto the same path refuses, in one sentence, and changes nothing.
    let again = || {
        let mut command = std::process::Command::new(binary("loom-sign"));
        command.arg("keygen").arg("--secret-key").arg(&secret).arg("--public-key").arg(&public);
        command
    };
    let refused = run(again(), None);
    assert_ne!(refused.code, Some(0), "{refused:?}");
    assert_eq!(refused.stderr.trim().lines().count(), 1, "{refused:?}");
    assert!(refused.stderr.contains(&secret.display().to_string()), "{refused:?}");
    assert_eq!(std::fs::read(&secret).unwrap(), secret_before);
    assert_eq!(std::fs::read(&public).unwrap(), public_before);
    // --if-missing makes that a success, still changing nothing.
    let mut kept = again();
    kept.arg("--if-missing");
    assert_eq!(run(kept, None).code, Some(0));
    assert_eq!(std::fs::read(&secret).unwrap(), secret_before);
}
