//! The real built component, loaded by the host's runtime: the guest's round trips
//! across the WIT boundary. Needs `just build-guest` first (`just test` does it).

use std::path::PathBuf;

use host_server::runtime::{AuthRuntime, PasswordError, RuntimeError, TokenError, TokenSettings};

/// `target/wasm32-wasip2/release/auth_guest.wasm`, found from this test binary's own place in `target/`.
fn component_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap();
    let path = target.join("wasm32-wasip2/release/auth_guest.wasm");
    assert!(path.exists(), "{} is missing: run `just build-guest`", path.display());
    path
}

fn settings(now: i64) -> TokenSettings {
    TokenSettings {
        signing_key: b"0123456789abcdef0123456789abcdef".to_vec(),
        issuer: "loom-auth".into(),
        now,
        ttl_seconds: 60,
        leeway_seconds: 5,
    }
}

#[test]
fn reports_digest_and_wit_version() {
    let runtime = AuthRuntime::load(&component_path()).unwrap();
    let info = runtime.info();
    assert_eq!(info.wit_version, "0.1.0");
    assert_eq!(info.sha256.len(), 64);
    assert!(info.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[tokio::test]
async fn password_round_trip_across_the_boundary() {
    let runtime = AuthRuntime::load(&component_path()).unwrap();
    let phc = runtime.hash_password("correct horse battery staple".into()).await.unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    let good = runtime.verify_password("correct horse battery staple".into(), phc.clone()).await.unwrap();
    assert!(good.matches && !good.needs_rehash);
    let bad = runtime.verify_password("wrong horse battery staple".into(), phc).await.unwrap();
    assert!(!bad.matches);
}

#[tokio::test]
async fn password_errors_cross_the_boundary_as_wit_enums() {
    let runtime = AuthRuntime::load(&component_path()).unwrap();
    let malformed = runtime.verify_password("hunter22".into(), "$argon2id$garbage".into()).await;
    assert!(matches!(malformed, Err(RuntimeError::Password(PasswordError::MalformedHash))), "{malformed:?}");
    let long = runtime.hash_password("x".repeat(1025)).await;
    assert!(matches!(long, Err(RuntimeError::Password(PasswordError::PasswordTooLong))), "{long:?}");
}

#[tokio::test]
async fn hashes_made_natively_verify_in_the_component_and_back() {
    let runtime = AuthRuntime::load(&component_path()).unwrap();
    let native = auth_guest::passwords::hash("made natively").unwrap();
    assert!(runtime.verify_password("made natively".into(), native).await.unwrap().matches);
    let wasm = runtime.hash_password("made in wasm".into()).await.unwrap();
    assert!(auth_guest::passwords::verify("made in wasm", &wasm).unwrap().matches);
}

#[test]
fn token_round_trip_and_refusals_across_the_boundary() {
    let runtime = AuthRuntime::load(&component_path()).unwrap();
    let now = 1_800_000_000;
    let issued = runtime.issue_token(&settings(now), "7").unwrap();
    assert_eq!(issued.claims.sub, "7");
    assert_eq!(issued.claims.exp, now + 60);
    let claims = runtime.verify_token(&settings(now), issued.token.as_bytes()).unwrap();
    assert_eq!(claims, issued.claims);

    let refused = |settings: TokenSettings, token: &[u8]| match runtime.verify_token(&settings, token) {
        Err(RuntimeError::Token(error)) => error,
        other => panic!("expected a token error, got {other:?}"),
    };
    assert_eq!(refused(settings(now + 66), issued.token.as_bytes()), TokenError::Expired);
    assert_eq!(refused(settings(now - 60), issued.token.as_bytes()), TokenError::NotYetValid);
    let other_key = TokenSettings { signing_key: vec![1; 32], ..settings(now) };
    assert_eq!(refused(other_key, issued.token.as_bytes()), TokenError::BadSignature);
    let other_issuer = TokenSettings { issuer: "someone-else".into(), ..settings(now) };
    assert_eq!(refused(other_issuer, issued.token.as_bytes()), TokenError::WrongIssuer);
    assert_eq!(refused(settings(now), b"\xff\xfe garbage"), TokenError::Malformed);
    let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiI3In0.";
    assert_eq!(refused(settings(now), none.as_bytes()), TokenError::AlgorithmNotAllowed);
}

#[test]
fn tokens_issued_natively_and_in_the_component_agree() {
    let runtime = AuthRuntime::load(&component_path()).unwrap();
    let s = settings(1_800_000_000);
    let native_settings = auth_guest::tokens::TokenSettings {
        signing_key: &s.signing_key,
        issuer: &s.issuer,
        now: s.now,
        ttl_seconds: s.ttl_seconds,
        leeway_seconds: s.leeway_seconds,
    };
    let (native, _) = auth_guest::tokens::issue(&native_settings, "9").unwrap();
    assert_eq!(runtime.verify_token(&s, native.as_bytes()).unwrap().sub, "9");
    let wasm = runtime.issue_token(&s, "10").unwrap();
    assert_eq!(auth_guest::tokens::verify(&native_settings, wasm.token.as_bytes()).unwrap().sub, "10");
}

#[test]
fn a_file_that_is_not_a_component_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-component.wasm");
    std::fs::write(&path, b"this is not wasm").unwrap();
    let error = AuthRuntime::load(&path).err().expect("loading garbage must fail");
    assert!(matches!(error, RuntimeError::Compile { .. }), "{error:?}");
    let missing = AuthRuntime::load(&dir.path().join("absent.wasm")).err().expect("a missing file must fail");
    assert!(matches!(missing, RuntimeError::Read { .. }), "{missing:?}");
}
