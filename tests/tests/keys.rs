//! Keys other services can trust: EdDSA tokens checked with the published JWKS alone,
//! rotation and retirement while hosts run, the legacy secret imported at the upgrade,
//! refusals by key, and no private key in clear in the database.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use loom_e2e::{HostOptions, TestHost, client, login, register};
use reqwest::StatusCode;
use serde_json::{Value, json};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";
const LEGACY_SECRET: &[u8] = b"a token secret from before 0.2!!";

async fn jwks(host: &TestHost) -> JwkSet {
    client().get(host.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap()
}

async fn me(host: &TestHost, token: &str) -> StatusCode {
    client().get(host.url("/users/me/")).bearer_auth(token).send().await.unwrap().status()
}

fn header(token: &str) -> Header {
    jsonwebtoken::decode_header(token).unwrap()
}

/// `host-server ARGS…` as an administrator would run it on `host`'s data directory and database.
fn admin(host: &TestHost, args: &[&str]) -> (bool, String) {
    let mut command = host.admin_command();
    command.args(args);
    let outcome = loom_e2e::run_within(command, Duration::from_secs(60));
    (outcome.code == Some(0), format!("{}{}", outcome.stdout, outcome.stderr))
}

/// Polls `done` every 50 ms for at most `limit`: how long it took, or a failure.
async fn within(limit: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await; // polling the hosts' own refresh
    }
    started.elapsed()
}

#[tokio::test]
async fn an_eddsa_token_verifies_with_the_published_keys_alone() {
    const PUBLIC: &str = "https://auth.example.com";
    let host =
        TestHost::spawn_with(HostOptions { args: vec!["--public-url".into(), PUBLIC.into()], ..Default::default() });
    register(&host, EMAIL, PASSWORD).await;
    let token = login(&host, EMAIL, PASSWORD).await;

    let response = client().get(host.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "public, max-age=60");
    let raw: Value = response.json().await.unwrap();
    let keys = raw["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{raw}");
    let mut fields: Vec<&str> = keys[0].as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, ["alg", "crv", "kid", "kty", "use", "x"], "public parts only: {raw}");
    assert_eq!((keys[0]["kty"].as_str(), keys[0]["crv"].as_str()), (Some("OKP"), Some("Ed25519")));

    // A service holding nothing but the JWKS checks the token with a plain JWT library.
    let set: JwkSet = serde_json::from_value(raw).unwrap();
    let head = header(&token);
    assert_eq!((head.alg, head.typ.as_deref()), (Algorithm::EdDSA, Some("at+jwt")));
    let jwk = set.find(head.kid.as_deref().unwrap()).expect("the token's kid is published");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["loom"]);
    validation.set_issuer(&[PUBLIC]);
    validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
    let claims = jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the token verifies with the published key")
        .claims;
    assert_eq!(claims["client_id"], "loom");
    assert!(claims["jti"].is_string() && claims["sub"].is_string(), "{claims}");

    // The discovery document names the issuer the token does: the host's URL (RFC 8414 §2), and
    // never a host the request chose.
    let response = client()
        .get(host.url("/.well-known/oauth-authorization-server"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let metadata: Value = response.json().await.unwrap();
    assert_eq!(metadata["issuer"], PUBLIC);
    assert_eq!(metadata["issuer"], claims["iss"]);
    assert!(!metadata.to_string().contains("evil.example"), "{metadata}");
    assert!(metadata.get("token_endpoint_auth_signing_alg_values_supported").is_none(), "{metadata}");
    assert_eq!(metadata["token_endpoint"], format!("{PUBLIC}/token"));
    assert_eq!(metadata["jwks_uri"], format!("{PUBLIC}/.well-known/jwks.json"));
    assert_eq!(
        metadata["grant_types_supported"],
        json!(["password", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"])
    );
    assert_eq!(metadata["revocation_endpoint"], format!("{PUBLIC}/revoke"));
    assert_eq!(metadata["logout_endpoint"], format!("{PUBLIC}/logout"));
}

#[tokio::test]
async fn rotation_keeps_old_tokens_until_their_key_is_retired_without_a_restart() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let old = login(&host, EMAIL, PASSWORD).await;
    let old_kid = header(&old).kid.unwrap();

    let (ok, said) = admin(&host, &["keys", "rotate"]);
    assert!(ok, "{said}");
    assert!(said.contains(&format!("{old_kid} keeps verifying")), "{said}");
    let took =
        within(Duration::from_secs(10), "the new key is published", async || jwks(&host).await.keys.len() == 2).await;
    println!("the running host saw the rotation after {took:?}");
    assert!(took <= Duration::from_secs(6), "took {took:?}");

    let new = login(&host, EMAIL, PASSWORD).await;
    let new_kid = header(&new).kid.unwrap();
    assert_ne!(new_kid, old_kid, "new tokens carry the new key's id");
    assert_eq!(me(&host, &old).await, StatusCode::OK, "tokens of the previous key stay valid");
    assert_eq!(me(&host, &new).await, StatusCode::OK);

    let (refused, said) = admin(&host, &["keys", "retire", &new_kid]);
    assert!(!refused && said.contains("is the active key"), "{said}");
    let (ok, said) = admin(&host, &["keys", "retire", "no-such-key"]);
    assert!(!ok && said.contains("there is no signing key no-such-key"), "{said}");

    let (ok, said) = admin(&host, &["keys", "retire", &old_kid]);
    assert!(ok, "{said}");
    within(Duration::from_secs(10), "the retired key's token is refused", async || {
        me(&host, &old).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(me(&host, &new).await, StatusCode::OK);
    assert_eq!(jwks(&host).await.keys.len(), 1, "a retired key is no longer published");

    let (ok, listed) = admin(&host, &["keys", "list"]);
    assert!(ok, "{listed}");
    let state = |kid: &str| {
        listed.lines().find(|l| l.starts_with(kid)).map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
    };
    assert_eq!(state(&old_kid).as_deref(), Some("retired"), "{listed}");
    assert_eq!(state(&new_kid).as_deref(), Some("active"), "{listed}");
}

/// A token as hosts before 0.2 issued them: HS256, `typ: JWT`, no `kid`, no `aud`.
fn legacy_token(subject: &str, secret: &[u8]) -> String {
    legacy_token_issued(subject, secret, "before-0.2", 0)
}

/// [`legacy_token`] with its `jti`, issued `ago` seconds ago.
fn legacy_token_issued(subject: &str, secret: &[u8], jti: &str, ago: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - ago;
    let claims = json!({ "sub": subject, "iss": "loom-auth", "iat": now, "exp": now + 600, "jti": jti });
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn host_with_legacy_secret(dir: &Path) -> TestHost {
    std::fs::write(dir.join("jwt-secret"), LEGACY_SECRET).unwrap();
    TestHost::spawn_in(dir, HostOptions::default())
}

#[tokio::test]
async fn tokens_from_before_the_upgrade_stay_valid_until_the_legacy_key_is_retired() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_with_legacy_secret(dir.path());
    let id = register(&host, EMAIL, PASSWORD).await["id"].as_i64().unwrap().to_string();
    let old = legacy_token(&id, LEGACY_SECRET);
    assert_eq!(me(&host, &old).await, StatusCode::OK);
    assert_eq!(me(&host, &legacy_token(&id, b"not the secret the host imported")).await, StatusCode::UNAUTHORIZED);
    let new = login(&host, EMAIL, PASSWORD).await;
    assert_eq!(header(&new).alg, Algorithm::EdDSA, "the upgraded host signs with EdDSA");
    assert_eq!(jwks(&host).await.keys.len(), 1, "the legacy secret is never published");

    // The database holds no private key in clear: the one whose bytes the test knows is absent.
    if host.database_url.starts_with("sqlite:") {
        let mut stored = Vec::new();
        for suffix in ["", "-wal"] {
            stored.extend(
                std::fs::read(format!("{}{suffix}", dir.path().join("loom-auth.db").display())).unwrap_or_default(),
            );
        }
        assert!(stored.len() > 4096, "read the database");
        assert!(
            !stored.windows(LEGACY_SECRET.len()).any(|w| w == LEGACY_SECRET),
            "the legacy secret is stored in clear"
        );
    }

    let (ok, said) = admin(&host, &["keys", "retire", "legacy"]);
    assert!(ok, "{said}");
    within(Duration::from_secs(10), "the legacy token is refused", async || {
        me(&host, &old).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(me(&host, &new).await, StatusCode::OK);
}

/// A password change ends every credential that is not the caller's session, whatever the
/// caller holds: called with a token from before sessions, the other such tokens end too (and
/// the caller's, which has no session to keep).
#[tokio::test]
async fn a_password_change_through_a_token_from_before_sessions_ends_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_with_legacy_secret(dir.path());
    let id = register(&host, EMAIL, PASSWORD).await["id"].as_i64().unwrap().to_string();
    let caller = legacy_token_issued(&id, LEGACY_SECRET, "caller", 5);
    let other = legacy_token_issued(&id, LEGACY_SECRET, "other", 5);
    let session = login(&host, EMAIL, PASSWORD).await;
    assert_eq!(me(&host, &other).await, StatusCode::OK);
    let body = json!({"current_password": PASSWORD, "new_password": "a new passphrase, 2026"});
    let response = client().post(host.url("/users/me/password")).bearer_auth(&caller).json(&body).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&host, &other).await, StatusCode::UNAUTHORIZED, "another token from before sessions");
    assert_eq!(me(&host, &session).await, StatusCode::UNAUTHORIZED, "a session");
    assert_eq!(me(&host, &caller).await, StatusCode::UNAUTHORIZED, "the caller's own, which no session keeps");
}

/// What decides whether a key verifies is not a database row's word: a retired key's row
/// written back to `verifying` verifies nothing (retirement destroyed its private half).
#[tokio::test]
async fn a_retired_keys_row_written_back_verifies_nothing() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let old = login(&host, EMAIL, PASSWORD).await;
    let old_kid = header(&old).kid.unwrap();
    assert!(admin(&host, &["keys", "rotate"]).0);
    assert!(admin(&host, &["keys", "retire", &old_kid]).0);
    within(Duration::from_secs(10), "the retired key's token is refused", async || {
        me(&host, &old).await == StatusCode::UNAUTHORIZED
    })
    .await;
    host.sql(&format!("UPDATE signing_keys SET state = 'verifying', retired_at = NULL WHERE kid = '{old_kid}'"));
    let nudged = Command::new("kill").args(["-HUP", &host.pid().to_string()]).status().unwrap();
    assert!(nudged.success());
    host.wait_for_log(&format!("cannot open the signing key {old_kid}"));
    assert_eq!(me(&host, &old).await, StatusCode::UNAUTHORIZED, "the key came back");
    assert_eq!(jwks(&host).await.keys.len(), 1, "nor is it published");
}

/// An attacker's Ed25519 key, PKCS #8 DER in base64 (a test fixture, made for these tests and
/// for nothing else).
const ATTACKER_KEY: &str = "MC4CAQAwBQYDK2VwBCIEINiRNvvwYNGk400uySIvLtQUAuHFI6JKVuF86YYzISRW";
/// Its public half, as a JWK's `x`.
const ATTACKER_X: &str = "Y2IrJdwJsGn_OyRA8sccUZ8Q4z1i5IzKdxA-RrMgN9k";

#[tokio::test]
async fn tokens_are_checked_with_the_hosts_keys_only() {
    let host = TestHost::spawn();
    let id = register(&host, EMAIL, PASSWORD).await["id"].as_i64().unwrap().to_string();
    let token = login(&host, EMAIL, PASSWORD).await;
    let kid = header(&token).kid.unwrap();
    let set = jwks(&host).await;
    let x = match &set.keys[0].algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) => okp.x.clone(),
        other => panic!("{other:?}"),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({ "sub": id, "iss": "loom-auth", "aud": "loom", "iat": now, "exp": now + 600, "jti": "j",
                         "client_id": "loom" });
    let hs256 = |kid: &str, secret: &[u8]| {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
    };
    // Algorithm confusion: the EdDSA key's public half as an HMAC secret.
    use base64::Engine as _;
    let public = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&x).unwrap();
    assert_eq!(me(&host, &hs256(&kid, &public)).await, StatusCode::UNAUTHORIZED, "algorithm confusion");
    assert_eq!(me(&host, &hs256(&kid, x.as_bytes())).await, StatusCode::UNAUTHORIZED, "the JWK's x as a secret");
    assert_eq!(
        me(&host, &hs256("someone-elses-key", b"any secret at all, 32 bytes long")).await,
        StatusCode::UNAUTHORIZED
    );

    // Tokens of the right algorithm, signed by the attacker's own Ed25519 key, that point to it:
    // a key URL in the header (`jku`, `x5u`) for a kid the host does not know is never
    // fetched (a listener there sees no connection), and a key embedded in the header (`jwk`)
    // is never used.
    let attacker = {
        use base64::Engine as _;
        EncodingKey::from_ed_der(&base64::engine::general_purpose::STANDARD.decode(ATTACKER_KEY).unwrap())
    };
    let attacker_jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(
        json!({ "kty": "OKP", "crv": "Ed25519", "x": ATTACKER_X, "kid": "attacker", "alg": "EdDSA", "use": "sig" }),
    )
    .unwrap();
    let lure = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    lure.set_nonblocking(true).unwrap();
    let eddsa = |kid: Option<&str>| {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = kid.map(Into::into);
        header
    };
    let mut by_url = eddsa(Some("attacker"));
    by_url.jku = Some(format!("http://{}/jwks.json", lure.local_addr().unwrap()));
    by_url.x5u = Some(format!("http://{}/cert.pem", lure.local_addr().unwrap()));
    let mut embedded = eddsa(Some("attacker"));
    embedded.jwk = Some(attacker_jwk.clone());
    let mut embedded_with_hosts_kid = eddsa(Some(&kid));
    embedded_with_hosts_kid.jwk = Some(attacker_jwk.clone());
    let mut embedded_without_kid = eddsa(None);
    embedded_without_kid.jwk = Some(attacker_jwk);
    for (what, header) in [
        ("a key URL", by_url),
        ("an embedded key", embedded),
        ("an embedded key under the host's kid", embedded_with_hosts_kid),
        ("an embedded key without a kid", embedded_without_kid),
    ] {
        let forged = jsonwebtoken::encode(&header, &claims, &attacker).unwrap();
        // A good token for the key it points to: only the host's choice of keys refuses it.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["loom"]);
        let embedded_key = DecodingKey::from_ed_components(ATTACKER_X).unwrap();
        assert!(jsonwebtoken::decode::<Value>(&forged, &embedded_key, &validation).is_ok(), "{what}");
        assert_eq!(me(&host, &forged).await, StatusCode::UNAUTHORIZED, "{what}");
    }
    assert!(lure.accept().is_err(), "the host fetched a key from the token's header");
    // The forgeries fail for their keys alone: the same claims under the host's own key pass.
    assert_eq!(me(&host, &token).await, StatusCode::OK);

    // A host with another audience, on the same keys, refuses this one's tokens.
    let elsewhere = TestHost::spawn_in(
        &host.data_dir,
        HostOptions {
            database: Some(host.database()),
            args: vec!["--audience".into(), "billing".into()],
            ..Default::default()
        },
    );
    assert_eq!(me(&elsewhere, &token).await, StatusCode::UNAUTHORIZED, "wrong audience");
    assert_eq!(me(&host, &token).await, StatusCode::OK);
}

#[tokio::test]
async fn rows_written_straight_into_the_keys_table_verify_nothing_and_stop_no_retirement() {
    let host = TestHost::spawn();
    let id = register(&host, EMAIL, PASSWORD).await["id"].as_i64().unwrap().to_string();
    let first = login(&host, EMAIL, PASSWORD).await;
    let first_kid = header(&first).kid.unwrap();
    let (ok, said) = admin(&host, &["keys", "rotate"]);
    assert!(ok, "{said}");
    within(Duration::from_secs(10), "the second key signs", async || jwks(&host).await.keys.len() == 2).await;
    let second_kid = header(&login(&host, EMAIL, PASSWORD).await).kid.unwrap();
    let (ok, said) = admin(&host, &["keys", "rotate"]);
    assert!(ok, "{said}");

    // Someone with write access to the database, and not the master key, plants a key of their
    // own, and swaps the public half of a genuine verifying key for theirs.
    let seed = [66u8; 32];
    let jwk = |kid: &str| auth_guest::keys::public_jwk(auth_guest::keys::Algorithm::EdDsa, &seed, kid).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let one_byte = if host.database_url.starts_with("sqlite:") { "X'00'" } else { "'\\x00'::bytea" };
    host.sql(&format!(
        "INSERT INTO signing_keys (kid, algorithm, state, sealed_private, public_jwk, legacy, created_at) \
         VALUES ('planted', 'EdDSA', 'verifying', {one_byte}, '{}', FALSE, {now})",
        jwk("planted")
    ));
    host.sql(&format!("UPDATE signing_keys SET public_jwk = '{}' WHERE kid = '{second_kid}'", jwk(&second_kid)));
    let forge = |kid: &str| {
        let settings = auth_guest::tokens::TokenSettings {
            issuer: "loom-auth",
            audience: "loom",
            now,
            ttl_seconds: 600,
            leeway_seconds: 0,
        };
        let key =
            auth_guest::tokens::SigningKey { kid: Some(kid), alg: auth_guest::keys::Algorithm::EdDsa, private: &seed };
        auth_guest::tokens::issue(&settings, &key, &id, "loom", &[]).unwrap().0
    };
    // ...then the operator retires the first key: that takes effect whatever is wrong elsewhere.
    let (ok, said) = admin(&host, &["keys", "retire", &first_kid]);
    assert!(ok, "{said}");
    within(Duration::from_secs(10), "the retirement takes effect", async || {
        me(&host, &first).await == StatusCode::UNAUTHORIZED
    })
    .await;
    for kid in ["planted", second_kid.as_str()] {
        assert_eq!(me(&host, &forge(kid)).await, StatusCode::UNAUTHORIZED, "a token signed for {kid} by the writer");
    }
    let published = jwks(&host).await;
    assert!(published.find("planted").is_none() && published.find(&second_kid).is_none(), "{published:?}");
    assert_eq!(published.keys.len(), 1, "only the active key is published");
    assert_eq!(me(&host, &login(&host, EMAIL, PASSWORD).await).await, StatusCode::OK, "logins go on");
    host.wait_for_log("signing key planted");
}

/// The log lines of `keys.changed` audit events so far.
fn key_changes(host: &TestHost) -> Vec<String> {
    host.logs().lines().filter(|line| line.contains("keys.changed")).map(str::to_owned).collect()
}

#[tokio::test]
async fn an_hs256_key_signs_unpublished_and_sighup_makes_a_running_host_take_it_at_once() {
    let host = TestHost::spawn();
    register(&host, EMAIL, PASSWORD).await;
    let eddsa = login(&host, EMAIL, PASSWORD).await;
    // The host also re-reads its keys every 5 seconds: should that beat the signal (a window of
    // milliseconds between the command's end and the signal), rotate again.
    let mut hs256_kid = None;
    for _ in 0..3 {
        let seen = key_changes(&host).len();
        let (ok, said) = admin(&host, &["keys", "rotate", "--alg", "hs256"]);
        assert!(ok, "{said}");
        let kill = loom_e2e::run(
            {
                let mut command = Command::new("kill");
                command.args(["-HUP", &host.pid().to_string()]);
                command
            },
            None,
        );
        assert_eq!(kill.code, Some(0), "{kill:?}");
        let took =
            within(Duration::from_secs(10), "the rotation is seen", async || key_changes(&host).len() > seen).await;
        let change = key_changes(&host).remove(seen);
        if change.contains(r#"trigger="SIGHUP""#) {
            println!("SIGHUP to the new key in use: {took:?}");
            hs256_kid = Some(change);
            break;
        }
        assert!(change.contains(r#"trigger="poll""#), "{change}");
    }
    assert!(hs256_kid.is_some(), "the keys were re-read on SIGHUP:\n{}", host.logs());

    let token = login(&host, EMAIL, PASSWORD).await;
    let head = header(&token);
    assert_eq!(head.alg, Algorithm::HS256, "the active key is the shared secret");
    let kid = head.kid.expect("a kid");
    assert!(hs256_kid.unwrap().contains(&kid), "the change names the key that signs now");
    assert_eq!(me(&host, &token).await, StatusCode::OK);
    assert_eq!(me(&host, &eddsa).await, StatusCode::OK, "the previous EdDSA key keeps verifying");
    let published = jwks(&host).await;
    assert!(published.find(&kid).is_none(), "a shared secret is never published: {published:?}");
    assert_eq!(published.keys.len(), 1, "the EdDSA key that still verifies: {published:?}");
    let (ok, listed) = admin(&host, &["keys", "list"]);
    assert!(ok, "{listed}");
    let row = listed.lines().find(|line| line.starts_with(&kid)).unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(row.split_whitespace().take(3).collect::<Vec<_>>(), [kid.as_str(), "HS256", "active"], "{listed}");
}

#[tokio::test]
async fn tokens_issued_before_a_public_url_was_set_stay_valid_after() {
    // Without --public-url the issuer is the legacy name; setting one later must not log anyone out.
    let data = tempfile::tempdir().unwrap();
    let before = TestHost::spawn_in(data.path(), HostOptions::default());
    register(&before, EMAIL, PASSWORD).await;
    let old = login(&before, EMAIL, PASSWORD).await;
    let database = before.database();
    drop(before);
    const PUBLIC: &str = "https://auth.example.com";
    let after = TestHost::spawn_in(
        data.path(),
        HostOptions {
            args: vec!["--public-url".into(), PUBLIC.into()],
            database: Some(database),
            ..Default::default()
        },
    );
    assert_eq!(me(&after, &old).await, StatusCode::OK, "a token naming the legacy issuer");
    let new = login(&after, EMAIL, PASSWORD).await;
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, new.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], PUBLIC, "new tokens name the public URL");
}
