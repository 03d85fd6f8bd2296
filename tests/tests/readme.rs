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
