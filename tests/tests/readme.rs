//! The README shows what the host really answers: its curl walkthrough, run against a fresh
//! host, answers the JSON its comments show, and every WIT version it names is the contract's.

use loom_e2e::{TestHost, client};
use serde_json::Value;

fn readme() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(path).expect("the README")
}

/// The JSON answers shown as `# {…}` comments in the "Try it with curl" section, in order,
/// with `...` (a value that varies) read as `null`.
fn shown_answers(readme: &str) -> Vec<Value> {
    let section = readme.split("## Try it with curl").nth(1).expect("the curl section");
    let block = section.split("```sh").nth(1).and_then(|b| b.split("```").next()).expect("its sh block");
    block
        .lines()
        .filter_map(|line| line.trim().strip_prefix("# {").map(|json| format!("{{{json}")))
        .map(|json| serde_json::from_str(&json.replace(":...", ":null")).unwrap_or_else(|e| panic!("{json}: {e}")))
        .collect()
}

/// `real` has exactly `shown`'s keys, and every value shown (other than `null` or `"..."`) is
/// the real one.
fn assert_shows(shown: &Value, real: &Value, at: &str) {
    match (shown, real) {
        (Value::Object(shown), Value::Object(real)) => {
            let (mut shown_keys, mut real_keys) = (shown.keys().collect::<Vec<_>>(), real.keys().collect::<Vec<_>>());
            shown_keys.sort();
            real_keys.sort();
            assert_eq!(shown_keys, real_keys, "the keys at {at}");
            for (key, value) in shown {
                assert_shows(value, &real[key], &format!("{at}.{key}"));
            }
        }
        (Value::Null, _) => {}
        (Value::String(dots), _) if dots == "..." => {}
        _ => assert_eq!(shown, real, "the value at {at}"),
    }
}

#[tokio::test]
async fn the_curl_walkthrough_answers_what_the_readme_shows() {
    let answers = shown_answers(&readme());
    assert_eq!(answers.len(), 3, "register, whoami and healthz: {answers:?}");
    let host = TestHost::spawn();
    let (email, password) = ("ada@example.com", "correct horse battery staple");
    let registered: Value = client()
        .post(host.url("/users/"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_shows(&answers[0], &registered, "register");
    let token = loom_e2e::login(&host, email, password).await;
    let me: Value =
        client().get(host.url("/users/me/")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_shows(&answers[1], &me, "/users/me/");
    let health: Value = client().get(host.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_shows(&answers[2], &health, "/healthz");
}

#[test]
fn every_wit_version_the_readme_names_is_the_contracts() {
    let wit = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/auth.wit"))
        .expect("the WIT package");
    let version = wit
        .lines()
        .find_map(|line| line.trim().strip_prefix("package loom:auth@")?.strip_suffix(';'))
        .expect("the package line");
    let (major, minor) = {
        let mut parts = version.split('.');
        (parts.next().unwrap(), parts.next().unwrap())
    };
    let readme = readme();
    let named: Vec<&str> = readme
        .match_indices("loom:auth@")
        .map(|(at, _)| {
            let rest = &readme[at + "loom:auth@".len()..];
            &rest[..rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.')).unwrap_or(rest.len())]
        })
        .collect();
    assert!(!named.is_empty());
    for name in named {
        let mut parts = name.split('.');
        assert_eq!((parts.next(), parts.next()), (Some(major), Some(minor)), "the README names loom:auth@{name}");
    }
}

/// The first fenced block of `language` in `section` (the text after a heading).
fn block<'a>(section: &'a str, language: &str) -> &'a str {
    let fence = format!("```{language}\n");
    let start = section.find(&fence).unwrap_or_else(|| panic!("no {language} block")) + fence.len();
    &section[start..start + section[start..].find("```").expect("the block ends")]
}

/// "Writing a policy" as written: its Cargo.toml and lib.rs, built for wasm32-wasip2 with
/// cargo, signed with the development key, checked with `policy check` (which prints what the
/// README shows), then served: it refuses a `+tag` and adds its claim to tokens.
#[tokio::test]
async fn the_writing_a_policy_walkthrough_works_as_written() {
    use loom_e2e::{HostOptions, binary, dev_signers, policy, run, run_within};
    let readme = readme();
    let section = readme.split("### Writing a policy").nth(1).expect("the section");
    let section = section.split("\n## ").next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("my-policy");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(krate.join("Cargo.toml"), block(section, "toml")).unwrap();
    std::fs::write(krate.join("src/lib.rs"), block(section, "rust")).unwrap();
    let contract = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/policy");
    std::fs::create_dir_all(krate.join("wit")).unwrap();
    for file in std::fs::read_dir(&contract).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, krate.join("wit").join(file.file_name().unwrap())).unwrap();
    }
    // Built as the README says; its dependencies kept between runs in target/policy-walkthrough.
    let target = loom_e2e::bin_dir().parent().unwrap().join("policy-walkthrough");
    let mut build = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"]).current_dir(&krate);
    build.env("CARGO_TARGET_DIR", &target).env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS");
    let built = run_within(build, std::time::Duration::from_secs(900));
    assert_eq!(built.code, Some(0), "the example builds: {}", built.stderr);
    let wasm = dir.path().join("my_policy.wasm");
    std::fs::copy(target.join("wasm32-wasip2/release/my_policy.wasm"), &wasm).unwrap();

    let mut sign = std::process::Command::new(binary("loom-sign"));
    sign.arg("sign").arg("--secret-key").arg(dev_signers().with_extension("key")).arg(&wasm);
    assert_eq!(run(sign, None).code, Some(0));
    let sh = section.split("```sh\n").skip(1).map(|b| b.split("```").next().unwrap());
    let sh = sh.into_iter().find(|b| b.contains("policy check")).expect("the policy check commands");
    let emails = ["ada@example.com", "ada+spam@example.com"];
    for email in emails {
        assert!(sh.contains(&format!("--email {email}")), "the README checks {email}");
    }
    let mut check = std::process::Command::new(binary("host-server"));
    // As written, but with the test hosts' deadline: the suites share a busy machine.
    check.args(["--policy-deadline-ms", policy::TEST_DEADLINE_MS]);
    check.arg("--trusted-signers").arg(dev_signers()).args(["policy", "check"]).arg(&wasm);
    check.args(emails.iter().flat_map(|email| ["--email", email]));
    let checked = run(check, None);
    assert_eq!(checked.code, Some(0), "{checked:?}");
    let samples = checked.stdout.split("Samples\n").nth(1).expect("the samples");
    assert_eq!(format!("Samples\n{samples}"), block(section, "text"), "what policy check prints");

    let served = tempfile::tempdir().unwrap();
    let (host, _) = policy::host_with_policy(served.path(), &wasm, &serde_json::json!({}), HostOptions::default());
    let password = "correct horse battery staple";
    let refused = client()
        .post(host.url("/users/"))
        .json(&serde_json::json!({ "email": "ada+spam@example.com", "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["detail"], "please register with your address without its +tag");
    loom_e2e::register(&host, "ada@example.com", password).await;
    let token = loom_e2e::login(&host, "ada@example.com", password).await;
    assert_eq!(policy::verified_claims(&host, &token).await["account_age_days"], 0);
}
