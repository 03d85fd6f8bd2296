//! The cost of the WebAssembly boundary: the same guest logic called natively
//! and through the component (as the host calls it: a fresh instance per call),
//! and, for comparison, through one reused instance. `just bench` runs it and
//! folds the figures into its table.

use std::path::PathBuf;
use std::time::Duration;

use auth_guest::keys::Algorithm as NativeAlgorithm;
use criterion::{Criterion, criterion_group, criterion_main};
use host_server::runtime::{
    Algorithm, KeyedSettings, Runtime, RuntimeOptions, SigningKey, TokenSettings, Trust, VerificationKey,
};

const NOW: i64 = 1_800_000_000;
/// The HS256 secret, and the Ed25519 seed.
const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn components() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().join("components")
}

/// The key material verification gets: the HS256 secret, or the Ed25519 key's public half.
fn verification_material(alg: NativeAlgorithm) -> Vec<u8> {
    match alg {
        NativeAlgorithm::Hs256 => KEY.to_vec(),
        NativeAlgorithm::EdDsa => auth_guest::keys::public_key(alg, KEY).unwrap(),
    }
}

fn host_algorithm(alg: NativeAlgorithm) -> Algorithm {
    match alg {
        NativeAlgorithm::Hs256 => Algorithm::Hs256,
        NativeAlgorithm::EdDsa => Algorithm::Eddsa,
    }
}

fn token_settings() -> TokenSettings {
    TokenSettings {
        issuer: "loom-auth".into(),
        audience: "loom".into(),
        now: NOW,
        ttl_seconds: 1800,
        leeway_seconds: 5,
    }
}

fn settings(alg: NativeAlgorithm) -> KeyedSettings {
    let kid = Some(alg.name().to_owned());
    KeyedSettings {
        settings: token_settings(),
        signing: Some(SigningKey { kid: kid.clone(), alg: host_algorithm(alg), private: KEY.to_vec() }),
        verifying: vec![VerificationKey { kid, alg: host_algorithm(alg), material: verification_material(alg) }],
    }
}

fn native_settings() -> auth_guest::tokens::TokenSettings<'static> {
    auth_guest::tokens::TokenSettings {
        issuer: "loom-auth",
        audience: "loom",
        now: NOW,
        ttl_seconds: 1800,
        leeway_seconds: 5,
    }
}

fn native_signing(alg: NativeAlgorithm) -> auth_guest::tokens::SigningKey<'static> {
    auth_guest::tokens::SigningKey { kid: Some(alg.name()), alg, private: KEY }
}

/// Default options, without signature checks (measured on their own in `signature`).
fn unsigned() -> RuntimeOptions {
    RuntimeOptions { limits: Default::default(), cache: None, trust: Trust::AllowUnsigned, max_hash_queue: 64 }
}

/// The tokio runtime the component's async calls run on (as in the host).
fn tokio() -> &'static tokio::runtime::Runtime {
    static TOKIO: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
    });
    &TOKIO
}

fn start(name: &str) -> std::sync::Arc<Runtime> {
    let path = components().join(name);
    tokio()
        .block_on(Runtime::start(&path, unsigned(), &settings(NativeAlgorithm::Hs256)))
        .unwrap_or_else(|e| panic!("{}: {e} (run `just bench`, which builds it)", path.display()))
}

/// One instance kept for every call: what instance reuse would cost.
mod reused {
    use wasmtime::component::{Component, Linker, ResourceTable};
    use wasmtime::{Engine, Store};
    use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

    wasmtime::component::bindgen!({ path: "../wit", world: "authenticator" });

    pub use exports::loom::auth::tokens::{TokenSettings, VerificationKey};

    pub struct State(WasiCtx, ResourceTable);
    impl WasiView for State {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView { ctx: &mut self.0, table: &mut self.1 }
        }
    }

    pub fn instance(path: &std::path::Path) -> (Store<State>, Authenticator) {
        // As the host's engine: the shipped build uses wide arithmetic.
        let engine = Engine::new(wasmtime::Config::new().wasm_wide_arithmetic(true)).unwrap();
        let component = Component::from_file(&engine, path).unwrap();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        let mut store = Store::new(&engine, State(WasiCtx::builder().build(), ResourceTable::new()));
        let auth = Authenticator::instantiate(&mut store, &component, &linker).unwrap();
        (store, auth)
    }
}

/// Token checks and issues for `alg`, in groups `token_verify` and `token_issue` (HS256, as
/// before 0.2) or with a suffix (`token_verify_eddsa`).
fn tokens_with(c: &mut Criterion, runtime: &Runtime, alg: NativeAlgorithm, suffix: &str) {
    let (token, _) = auth_guest::tokens::issue(&native_settings(), &native_signing(alg), "42", "loom", &[]).unwrap();
    let (mut store, auth) = reused::instance(&components().join("auth-guest.wasm"));
    let material = verification_material(alg);
    let native_keys = [auth_guest::tokens::VerificationKey { kid: Some(alg.name()), alg, material: &material }];
    let reused_settings = reused::TokenSettings {
        issuer: "loom-auth".into(),
        audience: "loom".into(),
        now: NOW,
        ttl_seconds: 1800,
        leeway_seconds: 5,
    };
    let reused_alg = match alg {
        NativeAlgorithm::Hs256 => reused::exports::loom::auth::keys::Algorithm::Hs256,
        NativeAlgorithm::EdDsa => reused::exports::loom::auth::keys::Algorithm::Eddsa,
    };
    let reused_keys =
        vec![reused::VerificationKey { kid: Some(alg.name().to_owned()), alg: reused_alg, material: material.clone() }];
    let host = settings(alg);

    let mut group = c.benchmark_group(format!("token_verify{suffix}"));
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("native", |b| {
        b.iter(|| auth_guest::tokens::verify(&native_settings(), &native_keys, token.as_bytes()).unwrap())
    });
    group.bench_function("component", |b| {
        b.iter(|| tokio().block_on(runtime.verify_token_uncached(&host, token.as_bytes())).unwrap())
    });
    group.bench_function("component_cached", |b| {
        b.iter(|| tokio().block_on(runtime.verify_token(&host, token.as_bytes())).unwrap())
    });
    group.bench_function("component_reused_instance", |b| {
        b.iter(|| {
            let tokens = auth.loom_auth_tokens();
            tokens.call_verify(&mut store, &reused_settings, &reused_keys, token.as_bytes()).unwrap().unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group(format!("token_issue{suffix}"));
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("native", |b| {
        b.iter(|| auth_guest::tokens::issue(&native_settings(), &native_signing(alg), "42", "loom", &[]).unwrap())
    });
    group.bench_function("component", |b| {
        b.iter(|| tokio().block_on(runtime.issue_token(&host, "42", "loom", &[])).unwrap())
    });
    group.finish();
}

fn tokens(c: &mut Criterion) {
    let runtime = start("auth-guest.wasm");
    tokens_with(c, &runtime, NativeAlgorithm::Hs256, "");
    tokens_with(c, &runtime, NativeAlgorithm::EdDsa, "_eddsa");
    // The build without SIMD and wide arithmetic: what those levers gained.
    let plain = start("auth-guest-plain.wasm");
    tokens_with(c, &plain, NativeAlgorithm::Hs256, "_plain");
    tokens_with(c, &plain, NativeAlgorithm::EdDsa, "_eddsa_plain");
}

fn hashing(c: &mut Criterion) {
    let shipped = start("auth-guest.wasm");
    let plain = start("auth-guest-plain.wasm");
    let mut group = c.benchmark_group("argon2id_hash");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    group.bench_function("native", |b| b.iter(|| auth_guest::passwords::hash("correct horse battery staple").unwrap()));
    group.bench_function("component", |b| {
        b.iter(|| tokio().block_on(shipped.hash_password("correct horse battery staple".into())).unwrap())
    });
    group.bench_function("component_plain", |b| {
        b.iter(|| tokio().block_on(plain.hash_password("correct horse battery staple".into())).unwrap())
    });
    group.finish();
}

/// The swap gate's first step: reading `<component>.minisig` and checking it
/// against a trusted key, over the whole component.
fn signature(c: &mut Criterion) {
    let path = components().join("auth-guest.wasm");
    let bytes = std::fs::read(&path).unwrap();
    let signers = components().parent().unwrap().join("signing/dev.pub");
    let trust = Trust::from_file(&signers).unwrap_or_else(|e| panic!("{e} (run `just bench`, which builds it)"));
    let mut group = c.benchmark_group("signature_check");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("component", |b| b.iter(|| trust.check(&path, &bytes).unwrap()));
    group.finish();
}

/// One call of each hook through the sandbox (a fresh instance per call, as the host makes
/// them), for the Rust policies and the Python one (when `just build-python-policy` built it).
fn policies(c: &mut Criterion) {
    use host_server::runtime::policy::{Policy, PolicySettings, Samples, samples};
    let dir = tempfile::tempdir().unwrap();
    let start = |name: &str, settings: serde_json::Value| {
        let path = components().join(format!("policies/{name}.wasm"));
        let config = dir.path().join(format!("{name}.json"));
        std::fs::write(&config, settings.to_string()).unwrap();
        let core = host_server::runtime::Core::new(Default::default(), None, Trust::AllowUnsigned).unwrap();
        let settings = PolicySettings { path: path.clone(), config: Some(config), deadline: Duration::from_millis(50) };
        tokio()
            .block_on(Policy::start(std::sync::Arc::new(core), settings))
            .unwrap_or_else(|e| panic!("{}: {e} (run `just bench`, which builds it)", path.display()))
    };
    let Samples { registration, login, token } = samples("ada@acme.com", Some("ada"), NOW);
    let email_domains = start("email-domains", serde_json::json!({"allow_domains": ["acme.com"]}));
    let invite_only = start("invite-only", serde_json::json!({"invited": ["*@acme.com"]}));
    let org_claims = start("org-claims", serde_json::json!({"orgs": {"acme.com": "acme"}}));
    let mut group = c.benchmark_group("policy_call");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("email-domains_registration", |b| {
        b.iter(|| tokio().block_on(email_domains.registration(&registration)).unwrap())
    });
    group.bench_function("email-domains_login", |b| b.iter(|| tokio().block_on(email_domains.login(&login)).unwrap()));
    group.bench_function("invite-only_registration", |b| {
        b.iter(|| tokio().block_on(invite_only.registration(&registration)).unwrap())
    });
    group.bench_function("org-claims_access-claims", |b| {
        b.iter(|| tokio().block_on(org_claims.access_claims(&token)).unwrap())
    });
    if components().join("policies/plans.wasm").exists() {
        let plans = start("plans", serde_json::json!({"plans": {"ada@acme.com": "team"}}));
        group.sample_size(20);
        group.bench_function("plans_registration", |b| {
            b.iter(|| tokio().block_on(plans.registration(&registration)).unwrap())
        });
        group.bench_function("plans_access-claims", |b| {
            b.iter(|| tokio().block_on(plans.access_claims(&token)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(boundary, tokens, hashing, signature, policies);
criterion_main!(boundary);
