//! The real built component, loaded by the host's runtime: the guest's round trips
//! across the WIT boundary. Needs `just build-guest` first (`just test` does it).

use std::path::PathBuf;

use std::sync::Arc;

use host_server::runtime::{
    Algorithm, KeyedSettings, PasswordError, ReloadOutcome, Runtime, RuntimeError, RuntimeOptions, SigningKey, Step,
    TokenError, TokenSettings, Trust, VerificationKey,
};

/// A component `just build-guest` or `just build-fixtures` made, under `target/components/`,
/// found from this test binary's own place in `target/`.
fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap();
    let path = target.join("components").join(name);
    assert!(path.exists(), "{} is missing: run `just build-guest build-fixtures`", path.display());
    path
}

fn component_path() -> PathBuf {
    built("auth-guest.wasm")
}

async fn start(path: &std::path::Path) -> Result<Arc<Runtime>, RuntimeError> {
    Runtime::start(path, unsigned(Default::default()), &settings(1_800_000_000)).await
}

/// Options without signature checks (the end-to-end tests check signatures).
fn unsigned(limits: host_server::runtime::Limits) -> RuntimeOptions {
    RuntimeOptions { limits, cache: None, trust: Trust::AllowUnsigned, max_hash_queue: 64 }
}

/// The EdDSA key the tests sign with (a fixed seed), and its public half.
const SEED: [u8; 32] = [7; 32];

fn public_half() -> Vec<u8> {
    auth_guest::keys::public_key(auth_guest::keys::Algorithm::EdDsa, &SEED).unwrap()
}

fn settings(now: i64) -> KeyedSettings {
    KeyedSettings {
        settings: TokenSettings {
            issuer: "loom-auth".into(),
            audience: "loom".into(),
            now,
            ttl_seconds: 60,
            leeway_seconds: 5,
        },
        signing: Some(SigningKey { kid: Some("ed-1".into()), alg: Algorithm::Eddsa, private: SEED.to_vec() }),
        verifying: vec![VerificationKey { kid: Some("ed-1".into()), alg: Algorithm::Eddsa, material: public_half() }],
    }
}

#[tokio::test]
async fn reports_digest_and_wit_version() {
    let runtime = start(&component_path()).await.unwrap();
    let info = runtime.info();
    assert_eq!(info.wit_version, host_server::runtime::host_wit_version());
    assert_eq!(info.wit_version, "0.2.1");
    assert_eq!(info.sha256.len(), 64);
    assert!(info.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[tokio::test]
async fn password_round_trip_across_the_boundary() {
    let runtime = start(&component_path()).await.unwrap();
    let phc = runtime.hash_password("correct horse battery staple".into()).await.unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    let good = runtime.verify_password("correct horse battery staple".into(), phc.clone()).await.unwrap();
    assert!(good.matches && !good.needs_rehash);
    let bad = runtime.verify_password("wrong horse battery staple".into(), phc).await.unwrap();
    assert!(!bad.matches);
}

#[tokio::test]
async fn password_errors_cross_the_boundary_as_wit_enums() {
    let runtime = start(&component_path()).await.unwrap();
    let malformed = runtime.verify_password("hunter22".into(), "$argon2id$garbage".into()).await;
    assert!(matches!(malformed, Err(RuntimeError::Password(PasswordError::MalformedHash))), "{malformed:?}");
    let long = runtime.hash_password("x".repeat(1025).into()).await;
    assert!(matches!(long, Err(RuntimeError::Password(PasswordError::PasswordTooLong))), "{long:?}");
}

#[tokio::test]
async fn hashes_made_natively_verify_in_the_component_and_back() {
    let runtime = start(&component_path()).await.unwrap();
    let native = auth_guest::passwords::hash("made natively").unwrap();
    assert!(runtime.verify_password("made natively".into(), native).await.unwrap().matches);
    let wasm = runtime.hash_password("made in wasm".into()).await.unwrap();
    assert!(auth_guest::passwords::verify("made in wasm", &wasm).unwrap().matches);
}

#[tokio::test]
async fn token_round_trip_and_refusals_across_the_boundary() {
    let runtime = start(&component_path()).await.unwrap();
    let now = 1_800_000_000;
    let issued = runtime.issue_token(&settings(now), "7", "loom-cli", &[]).await.unwrap();
    assert_eq!(issued.claims.sub, "7");
    assert_eq!((issued.claims.kid.as_deref(), issued.claims.client_id.as_str()), (Some("ed-1"), "loom-cli"));
    assert_eq!(issued.claims.exp, now + 60);
    let claims = runtime.verify_token(&settings(now), issued.token.as_bytes()).await.unwrap();
    assert_eq!(claims, issued.claims);

    let refused = async |settings: KeyedSettings, token: &[u8]| match runtime.verify_token(&settings, token).await {
        Err(RuntimeError::Token(error)) => error,
        other => panic!("expected a token error, got {other:?}"),
    };
    assert_eq!(refused(settings(now + 66), issued.token.as_bytes()).await, TokenError::Expired);
    assert_eq!(refused(settings(now - 60), issued.token.as_bytes()).await, TokenError::NotYetValid);
    let mut other_key = settings(now);
    other_key.verifying[0].material =
        auth_guest::keys::public_key(auth_guest::keys::Algorithm::EdDsa, &[8; 32]).unwrap();
    assert_eq!(refused(other_key, issued.token.as_bytes()).await, TokenError::BadSignature);
    let mut retired = settings(now);
    retired.verifying.clear();
    assert_eq!(refused(retired, issued.token.as_bytes()).await, TokenError::UnknownKey);
    let mut other_issuer = settings(now);
    other_issuer.settings.issuer = "someone-else".into();
    assert_eq!(refused(other_issuer, issued.token.as_bytes()).await, TokenError::WrongIssuer);
    let mut other_audience = settings(now);
    other_audience.settings.audience = "billing".into();
    assert_eq!(refused(other_audience, issued.token.as_bytes()).await, TokenError::WrongAudience);
    assert_eq!(refused(settings(now), b"\xff\xfe garbage").await, TokenError::Malformed);
    let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiI3In0.";
    assert_eq!(refused(settings(now), none.as_bytes()).await, TokenError::UnknownKey, "no kid, and no legacy key");
    // {"alg":"none","kid":"ed-1"}: the key's algorithm is EdDSA.
    let none_for_the_key = "eyJhbGciOiJub25lIiwia2lkIjoiZWQtMSJ9.eyJzdWIiOiI3In0.";
    assert_eq!(refused(settings(now), none_for_the_key.as_bytes()).await, TokenError::AlgorithmNotAllowed);
}

#[tokio::test]
async fn tokens_issued_natively_and_in_the_component_agree() {
    let runtime = start(&component_path()).await.unwrap();
    let s = settings(1_800_000_000);
    let native_settings = auth_guest::tokens::TokenSettings {
        issuer: &s.issuer,
        audience: &s.audience,
        now: s.now,
        ttl_seconds: s.ttl_seconds,
        leeway_seconds: s.leeway_seconds,
    };
    let ed = auth_guest::keys::Algorithm::EdDsa;
    let signing = auth_guest::tokens::SigningKey { kid: Some("ed-1"), alg: ed, private: &SEED };
    let public = public_half();
    let verifying = [auth_guest::tokens::VerificationKey { kid: Some("ed-1"), alg: ed, material: &public }];
    let (native, _) = auth_guest::tokens::issue(&native_settings, &signing, "9", "loom", &[]).unwrap();
    assert_eq!(runtime.verify_token(&s, native.as_bytes()).await.unwrap().sub, "9");
    let wasm = runtime.issue_token(&s, "10", "loom", &[]).await.unwrap();
    assert_eq!(auth_guest::tokens::verify(&native_settings, &verifying, wasm.token.as_bytes()).unwrap().sub, "10");
}

#[tokio::test]
async fn a_file_that_is_not_a_component_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-component.wasm");
    std::fs::write(&path, b"this is not wasm").unwrap();
    let error = start(&path).await.err().expect("loading garbage must fail");
    assert!(matches!(error, RuntimeError::Rejected { step: Step::Compile, .. }), "{error:?}");
    let missing = start(&dir.path().join("absent.wasm")).await.err().expect("a missing file must fail");
    assert!(matches!(missing, RuntimeError::Read { .. }), "{missing:?}");
}

/// Copies `from` over the file the runtime watches, as `just swap` does.
fn install(from: &std::path::Path, to: &std::path::Path) {
    let staging = to.with_extension("installing");
    std::fs::copy(from, &staging).unwrap();
    std::fs::rename(&staging, to).unwrap();
}

fn rejected_at(outcome: &ReloadOutcome) -> Option<Step> {
    match outcome {
        ReloadOutcome::Rejected { step, .. } => Some(*step),
        _ => None,
    }
}

#[tokio::test]
async fn misbehaving_components_are_refused_at_the_step_that_catches_them() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("auth.wasm");
    install(&component_path(), &served);
    let options = unsigned(host_server::runtime::Limits {
        hash_deadline: std::time::Duration::from_millis(1500),
        ..Default::default()
    });
    let now = 1_800_000_000;
    let runtime = Runtime::start(&served, options, &settings(now)).await.unwrap();
    let original = runtime.info().sha256;
    let issued = runtime.issue_token(&settings(now), "1", "loom", &[]).await.unwrap();
    for (fixture, step) in [
        ("fixtures/not-a-component.wasm", Step::Compile),
        ("fixtures/wit-next.wasm", Step::Version),
        ("fixtures/loop.wasm", Step::SelfTest),
        ("fixtures/trap.wasm", Step::SelfTest),
        ("fixtures/alloc.wasm", Step::SelfTest),
        ("fixtures/wrong.wasm", Step::SelfTest),
    ] {
        install(&built(fixture), &served);
        let report = runtime.reload(&settings(now)).await;
        assert_eq!(rejected_at(&report.outcome), Some(step), "{fixture}: {:?}", report.outcome);
        assert_eq!(runtime.info().sha256, original, "{fixture} must not be published");
        // The original keeps serving.
        assert_eq!(runtime.verify_token(&settings(now), issued.token.as_bytes()).await.unwrap().sub, "1");
    }
    // A good, different component is published; the same file again is a no-op.
    install(&built("auth-guest-hardened.wasm"), &served);
    assert!(matches!(runtime.reload(&settings(now)).await.outcome, ReloadOutcome::Published));
    assert_ne!(runtime.info().sha256, original);
    assert!(matches!(runtime.reload(&settings(now)).await.outcome, ReloadOutcome::Unchanged));
    assert_eq!(runtime.verify_token(&settings(now), issued.token.as_bytes()).await.unwrap().sub, "1");
}

#[tokio::test]
async fn a_component_that_misbehaves_at_call_time_fails_only_that_call() {
    let options = unsigned(host_server::runtime::Limits {
        // Room for an ordinary hash on a loaded machine; runaways still stop well within the bound below.
        hash_deadline: std::time::Duration::from_millis(3000),
        ..Default::default()
    });
    let runtime = Runtime::start(&built("fixtures/evil.wasm"), options, &settings(1_800_000_000)).await.unwrap();
    for trigger in ["loop-forever", "trap-now", "alloc-forever"] {
        let started = std::time::Instant::now();
        let result = runtime.hash_password(trigger.into()).await;
        assert!(matches!(result, Err(RuntimeError::Trap(_))), "{trigger}: {result:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{trigger} was stopped");
        // The next call gets a fresh instance and works.
        let phc = runtime.hash_password("an ordinary password".into()).await.unwrap();
        assert!(runtime.verify_password("an ordinary password".into(), phc).await.unwrap().matches);
    }
}

#[tokio::test]
async fn the_guest_sees_no_files_network_environment_or_arguments() {
    // The fixture answers the password `probe-sandbox:PORT` with what it can see from inside,
    // having tried to connect to a listener of this test's; this test process has an
    // environment, arguments, files and a network.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let runtime = start(&built("fixtures/evil.wasm")).await.unwrap();
    let seen = runtime.hash_password(format!("probe-sandbox:{port}").into()).await.unwrap();
    // Refused by the sandbox (wasi:sockets' access-denied), not unsupported by the guest's std.
    assert_eq!(seen, "env=0 args=0 root=false cwd=false tmp=false net=PermissionDenied", "{seen}");
    assert!(listener.accept().is_err(), "the guest reached the test's listener");
    // The control: the same connection from outside the sandbox arrives.
    let _outside = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while listener.accept().is_err() {
        assert!(std::time::Instant::now() < deadline, "the listener sees no connection at all");
        std::thread::yield_now(); // polling a non-blocking listener
    }
}

#[tokio::test]
async fn every_call_gets_a_fresh_instance() {
    // The fixture counts calls in a static: an instance reused would remember the first.
    let runtime = start(&built("fixtures/evil.wasm")).await.unwrap();
    for _ in 0..2 {
        assert_eq!(runtime.hash_password("count-calls".into()).await.unwrap(), "calls=1");
    }
}

#[tokio::test]
async fn nothing_a_call_writes_to_memory_reaches_the_next() {
    // Pages the first call wrote are reset, whether the host resets the pages written (Linux's
    // PAGEMAP_SCAN) or the start of memory in place and gives the rest back to the kernel.
    // Token calls run on this test's one thread, and the pool gives a thread's next instance
    // the slot it used last: the second call gets the first one's memory, reset.
    let runtime = start(&built("fixtures/evil.wasm")).await.unwrap();
    let settings = settings(1_800_000_000);
    let said = async |trigger: &str| runtime.verify_token_uncached(&settings, trigger.as_bytes()).await.unwrap().sub;
    // The control: a call finds what it left in its own memory (8 MiB, not page-aligned).
    let found = said("leave-residue-and-find").await;
    let pages: usize = found.strip_prefix("found=").and_then(|n| n.parse().ok()).expect("a count");
    assert!(pages >= 2047, "{found}");
    for _ in 0..3 {
        assert_eq!(said("leave-residue").await, "left=2048");
        assert_eq!(said("find-residue").await, "found=0");
    }
}

#[tokio::test]
async fn deeply_nested_token_json_is_refused_not_a_stack_overflow() {
    use std::fmt::Write as _;
    let runtime = start(&component_path()).await.unwrap();
    // Parsed up to serde_json's nesting limit (then the `none` algorithm is refused for the
    // key the kid names); deeper, refused as malformed. Never a trap from the guest's stack.
    for (depth, expected) in [(100, TokenError::AlgorithmNotAllowed), (5_000, TokenError::Malformed)] {
        let header = format!(r#"{{"alg":"none","kid":"ed-1","x":{}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
        let mut token = String::new();
        for part in [header.as_bytes(), br#"{"sub":"1"}"#] {
            for chunk in part.chunks(3) {
                // base64url without padding, by hand to keep this test free of dependencies.
                const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
                for i in 0..=chunk.len() {
                    token.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            token.push('.');
        }
        write!(token, "c2ln").unwrap();
        match runtime.verify_token(&settings(1_800_000_000), token.as_bytes()).await {
            Err(RuntimeError::Token(error)) => assert_eq!(error, expected, "depth {depth}"),
            other => panic!("depth {depth}: expected a token error, got {other:?}"),
        }
    }
}

#[test]
fn the_shipped_build_needs_wide_arithmetic_and_a_host_without_it_refuses_it_at_compile() {
    let bytes = std::fs::read(component_path()).unwrap();
    // A host as before the build used it: the component model and SIMD, no wide arithmetic.
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let older = wasmtime::Engine::new(&config).unwrap();
    let Err(refused) = wasmtime::component::Component::new(&older, &bytes) else {
        panic!("a host without wide arithmetic compiled it");
    };
    assert!(format!("{refused:?}").contains("wide arithmetic support is not enabled"), "{refused:?}");
    config.wasm_wide_arithmetic(true);
    let current = wasmtime::Engine::new(&config).unwrap();
    wasmtime::component::Component::new(&current, &bytes).expect("it compiles with the feature");
}
