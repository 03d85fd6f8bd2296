//! The API describes itself: an OpenAPI 3.1 document a validator accepts and the live host
//! honours (schemathesis, from the document), and a `/docs` page that works in a real
//! headless Chromium, down to logging in and calling `/users/me/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use loom_e2e::{HostOptions, TestHost, bin_dir, chromium, client, login, python_tool, register};
use serde_json::Value;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// A host whose allowances do not get in a fuzzer's way, with its discovery document on.
fn generous_host() -> TestHost {
    TestHost::spawn_with(HostOptions {
        args: [
            "--public-url",
            "http://127.0.0.1",
            "--signups-per-address",
            "1000000",
            "--login-max-failures",
            "1000000",
            "--login-max-failures-per-address",
            "1000000",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    })
}

/// Runs `command`; its output when it fails.
fn run(mut command: Command) -> Result<String, String> {
    let output = command.output().expect("the tool starts");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if output.status.success() { Ok(text) } else { Err(text) }
}

async fn document(host: &TestHost) -> Value {
    let response = client().get(host.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The status codes an operation documents.
fn statuses(document: &Value, path: &str, method: &str) -> Vec<String> {
    let responses = document["paths"][path][method]["responses"].as_object();
    let responses = responses.unwrap_or_else(|| panic!("{method} {path} is not documented"));
    responses.keys().cloned().collect()
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_and_describes_the_api() {
    let host = TestHost::spawn();
    let document = document(&host).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(statuses(&document, "/users/", "post"), ["201", "400", "403", "413", "422", "429", "503"]);
    assert_eq!(statuses(&document, "/token", "post"), ["200", "400", "401", "403", "413", "422", "429", "503"]);
    assert_eq!(statuses(&document, "/users/me/", "get"), ["200", "401", "503"]);
    assert_eq!(statuses(&document, "/logout", "post"), ["204", "401", "403", "422", "503"]);
    assert_eq!(statuses(&document, "/revoke", "post"), ["200", "401", "413", "422", "503"]);
    assert_eq!(statuses(&document, "/sessions", "get"), ["200", "401", "403", "503"]);
    assert_eq!(statuses(&document, "/sessions/{id}", "delete"), ["204", "401", "403", "404", "503"]);
    assert_eq!(
        statuses(&document, "/users/me/password", "post"),
        ["204", "400", "401", "403", "413", "422", "429", "503"]
    );
    assert_eq!(
        statuses(&document, "/users/me/tokens", "post"),
        ["201", "400", "401", "403", "409", "422", "429", "503"]
    );
    assert_eq!(statuses(&document, "/users/me/tokens", "get"), ["200", "401", "403", "503"]);
    assert_eq!(statuses(&document, "/users/me/tokens/{id}", "delete"), ["204", "401", "403", "404", "503"]);
    assert_eq!(statuses(&document, "/users/me/tokens/current", "get"), ["200", "401", "404", "503"]);
    let form = &document["paths"]["/token"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"];
    assert!(form["schema"].is_object(), "/token takes a form: {form}");
    let scheme = &document["components"]["securitySchemes"]["OAuth2PasswordBearer"];
    assert_eq!(scheme["flows"]["password"]["tokenUrl"], "/token", "{scheme}");
    assert_eq!(scheme["flows"]["password"]["refreshUrl"], "/token", "{scheme}");
    assert_eq!(document["paths"]["/users/me/"]["get"]["security"][0]["OAuth2PasswordBearer"], Value::Array(vec![]));
    let error = &document["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["detail"]), "{error}");

    let file = tempfile::NamedTempFile::with_suffix(".json").unwrap();
    std::fs::write(file.path(), document.to_string()).unwrap();
    let Some(validator) = python_tool("openapi-spec-validator") else { return };
    let mut validator = Command::new(validator);
    validator.arg(file.path());
    run(validator).unwrap_or_else(|report| panic!("the document is not valid OpenAPI:\n{report}"));
}

/// `schemathesis run` against `host`'s document with a fixed seed and a bounded budget.
fn schemathesis(program: &Path, host: &TestHost, token: &str, operations: &[&str]) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(bin_dir())
        .arg("run")
        .arg(host.url("/openapi.json"))
        // Every check but one: registration refuses some schema-valid data by design (a taken
        // email is 400, the FastAPI contract; a common password is 422, which no schema can say).
        .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance"])
        .args(["--seed", "20261126", "--max-examples", "60", "--generation-database", "none"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_COLOR", "1");
    for operation in operations {
        command.args(["--include-operation-id", operation]);
    }
    command
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let Some(program) = python_tool("schemathesis") else { return };
    let host = generous_host();
    register(&host, EMAIL, PASSWORD).await;
    let token = login(&host, EMAIL, PASSWORD).await;
    // Every operation the document lists (so one added later is fuzzed too), what ends sessions
    // last and on its own: it may end the one the other operations are called with.
    let ending = ["revoke_token", "end_session", "change_password", "logout"];
    let listed: Vec<String> = document(&host).await["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|operations| operations.as_object().unwrap().values())
        .map(|operation| operation["operationId"].as_str().expect("every operation has an id").to_owned())
        .collect();
    assert!(ending.iter().all(|id| listed.iter().any(|listed| listed == id)), "{listed:?}");
    for discovery in ["jwks", "authorization_server_metadata"] {
        assert!(listed.iter().any(|id| id == discovery), "{discovery} is documented: {listed:?}");
    }
    let metadata = client().get(host.url("/.well-known/oauth-authorization-server")).send().await.unwrap();
    assert_eq!(metadata.status(), 200, "the discovery document is on, for the fuzzer to reach");
    let everything_else: Vec<&str> = listed.iter().map(String::as_str).filter(|id| !ending.contains(id)).collect();
    for operations in [&everything_else[..], &ending[..]] {
        let report = run(schemathesis(&program, &host, &token, operations))
            .unwrap_or_else(|report| panic!("schemathesis failed on {operations:?}:\n{report}"));
        assert!(report.contains("passed"), "{report}");
    }
    let health = client().get(host.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the host came through");
}

/// Where the docs page's screenshot is kept: `target/artifacts/docs-page.png`.
fn screenshot() -> PathBuf {
    let dir = bin_dir().parent().expect("target/<profile> has a parent").join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("docs-page.png")
}

#[tokio::test]
async fn the_docs_page_logs_in_and_calls_the_api_in_a_real_browser() {
    let (Some(python), Some((chromium, driver))) = (python_tool("python"), chromium()) else { return };
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/docs_page.py");
    let shot = screenshot();
    let mut browser = Command::new(python);
    browser.arg(script).args([&host.base_url, EMAIL, PASSWORD]).arg(&shot).arg(chromium).arg(driver);
    browser.env("SE_AVOID_STATS", "true").env("SE_OFFLINE", "true");
    run(browser).unwrap_or_else(|report| panic!("the docs page failed in Chromium:\n{report}\n{}", host.logs()));
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000), "no screenshot at {}", shot.display());
}
