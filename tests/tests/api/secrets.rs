//! No password, token or key reaches the log, even at the most verbose level.

use loom_e2e::{HostOptions, TestHost, client, login, register};

use crate::post_token;

#[tokio::test]
async fn a_full_flow_at_trace_level_logs_no_secret() {
    let host = TestHost::spawn_with(HostOptions { log_filter: Some("trace".into()), ..Default::default() });
    let password = "a distinctive password 7Qx!";
    register(&host, "ada@example.com", password).await;
    let token = login(&host, "ada@example.com", password).await;
    let me = client().get(host.url("/users/me/")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    post_token(&host, &[("username", "ada@example.com"), ("password", "another distinctive guess 9Zk")]).await;
    let logout = client().post(host.url("/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(logout.status(), 204);

    let logs = host.logs();
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "the log is verbose");
    let secret = std::fs::read(host.data_dir.join("master-key")).unwrap();
    let secret_hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let signature = token.rsplit('.').next().unwrap();
    for (what, needle) in [
        ("the password", password),
        ("the wrong password", "another distinctive guess 9Zk"),
        ("the token's signature", signature),
        ("the master key", secret_hex.as_str()),
    ] {
        assert!(!logs.contains(needle), "{what} is in the log");
    }
    let encodings = encodings(&secret);
    for (name, encoded) in &encodings {
        assert!(!logs.contains(encoded.as_str()), "the master key, in {name}, is in the log");
    }
    // The active signing key's seed, raw or in any of those forms, in the database and its WAL.
    let x = signing_key_x(&host).await;
    for file in ["loom-auth.db", "loom-auth.db-wal"] {
        if let Ok(bytes) = std::fs::read(host.data_dir.join(file)) {
            assert!(!holds_seed_of(&bytes, &x), "the signing key's seed is in {file} in the clear");
        }
    }
}

/// `bytes` in the textual forms a key could be logged or stored in.
fn encodings(bytes: &[u8]) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    vec![
        ("lower-case hex", bytes.iter().map(|b| format!("{b:02x}")).collect()),
        ("upper-case hex", bytes.iter().map(|b| format!("{b:02X}")).collect()),
        ("base64", STANDARD.encode(bytes)),
        ("unpadded base64", STANDARD_NO_PAD.encode(bytes)),
        ("base64url", URL_SAFE.encode(bytes)),
        ("unpadded base64url", URL_SAFE_NO_PAD.encode(bytes)),
        ("a byte list", format!("{bytes:?}")),
    ]
}

/// The active EdDSA key's public half (its JWK's `x`, decoded).
async fn signing_key_x(host: &TestHost) -> Vec<u8> {
    use base64::Engine as _;
    let jwks: serde_json::Value =
        client().get(host.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let x = jwks["keys"][0]["x"].as_str().expect("an EdDSA key in the JWKS");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(x).unwrap()
}

/// Whether `bytes` hold the Ed25519 seed whose public half is `x`: as any 32 raw bytes, or
/// decoded from any run of hex or base64 text in them.
fn holds_seed_of(bytes: &[u8], x: &[u8]) -> bool {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let lenient = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let decoders = [
        GeneralPurpose::new(&base64::alphabet::STANDARD, lenient),
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient),
    ];
    // Deriving a public key takes microseconds, and a database file has millions of windows:
    // only windows that could be random bytes are tried (a random seed has four or more zero
    // bytes, or fewer than eight unprintable ones, with a chance of 1 in 100,000 or less).
    let could_be_random = |window: &[u8]| {
        window.iter().filter(|b| **b == 0).count() < 4
            && window.iter().filter(|b| !(b.is_ascii_graphic() || **b == b' ')).count() >= 8
    };
    let is_seed = |candidate: &[u8]| {
        candidate.windows(32).filter(|window| could_be_random(window)).any(|window| {
            auth_guest::keys::public_key(auth_guest::keys::Algorithm::EdDsa, window).is_ok_and(|public| public == x)
        })
    };
    if is_seed(bytes) {
        return true;
    }
    let runs = |alphabet: fn(u8) -> bool| {
        bytes.split(move |b| !alphabet(*b)).filter(|run| run.len() >= 43).map(<[u8]>::to_vec).collect::<Vec<_>>()
    };
    let hex = runs(|b| b.is_ascii_hexdigit()).into_iter().any(|run| {
        (0..2).any(|offset| {
            let digits: Vec<u8> = run[offset..]
                .chunks_exact(2)
                .filter_map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
                .collect();
            is_seed(&digits)
        })
    });
    let base64 = runs(|b| b.is_ascii_alphanumeric() || b"+/-_".contains(&b)).into_iter().any(|run| {
        (0..4).any(|offset| {
            let mut text = &run[offset..];
            if text.len() % 4 == 1 {
                text = &text[..text.len() - 1];
            }
            decoders.iter().filter_map(|decoder| decoder.decode(text).ok()).any(|decoded| is_seed(&decoded))
        })
    });
    hex || base64
}

#[test]
fn the_seed_search_finds_a_seed_in_every_form() {
    let seed = [7u8; 32];
    let x = auth_guest::keys::public_key(auth_guest::keys::Algorithm::EdDsa, &seed).unwrap();
    for (name, encoded) in encodings(&seed).into_iter().filter(|(name, _)| *name != "a byte list") {
        let text = format!("2026-11-30 INFO something key={encoded} more");
        assert!(holds_seed_of(text.as_bytes(), &x), "{name} not found");
    }
    let mut raw = vec![0u8; 1000];
    raw[333..365].copy_from_slice(&seed);
    assert!(holds_seed_of(&raw, &x));
    assert!(!holds_seed_of(&[0u8; 1000], &x));
}
