//! Misbehaving auth components, for testing that the host contains them.
//!
//! They do the real work through `auth-guest`'s logic, then sabotage it as the
//! enabled feature says. Without features, a component passes the gate and
//! misbehaves on a trigger (`loop-forever`, `trap-now`, `alloc-forever`,
//! `sleep-now`, `print-now`) on every export: as a password (hash, verify), as
//! the token to check (verify), or as the host's issuer setting (issue, for
//! every subject but the self-test's). Hashing `probe-sandbox:PORT` returns what the
//! sandbox lets it see, having tried to connect to 127.0.0.1:PORT; hashing `count-calls`
//! counts the calls its instance has seen; checking the token `leave-residue` fills 8 MiB of
//! its heap with a pattern and leaves it there, and `find-residue` grows its memory as far and
//! says how many pages hold the pattern (`leave-residue-and-find` does both in one call). With
//! `issue-fails`, it issues tokens for the gate's self-test only; with `lax-tokens`, it checks
//! a token's signature and nothing else (expiry, audience, issuer, kid); with `forged-tokens`,
//! it checks nothing and accepts any well-formed token. Two are sound on their own but cannot
//! read what an earlier component made: `forgets-tokens` marks its tokens and refuses tokens
//! without the mark, `forgets-hashes` peppers its argon2 hashes (only its own then match).

#[cfg(target_arch = "wasm32")]
mod component {
    #[cfg(not(any(feature = "wit-next", feature = "wit-previous")))]
    wit_bindgen::generate!({ path: "../../wit", world: "authenticator" });
    #[cfg(feature = "wit-previous")]
    wit_bindgen::generate!({ path: "wit-previous", world: "authenticator" });
    #[cfg(feature = "wit-next")]
    wit_bindgen::generate!({ path: "wit-next", world: "authenticator" });

    use auth_guest::{keys, passwords, tokens};
    use exports::loom::auth::keys::{Algorithm, Guest as Keys, KeyError};
    use exports::loom::auth::passwords::{Guest as Passwords, PasswordCheck, PasswordError};
    use exports::loom::auth::tokens::{
        Claims, Guest as Tokens, IssuedToken, SigningKey, TokenError, TokenSettings, VerificationKey,
    };

    struct Fixture;

    fn misbehave(trigger: &str) {
        if cfg!(feature = "loop-always") || trigger == "loop-forever" {
            loop {
                std::hint::black_box(trigger);
            }
        }
        if cfg!(feature = "trap-always") || trigger == "trap-now" {
            panic!("a fixture that traps");
        }
        if cfg!(feature = "alloc-always") || trigger == "alloc-forever" {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
            }
        }
        if trigger == "sleep-now" {
            // A host call (WASI's monotonic clock): no epoch deadline interrupts it.
            std::thread::sleep(std::time::Duration::from_secs(600));
        }
        if trigger == "print-now" {
            // Far more than the host keeps; then carry on as usual.
            let line = "a fixture that prints too much\n".repeat(1024);
            for _ in 0..16 {
                print!("{line}");
                eprint!("{line}");
            }
        }
    }

    /// The byte `leave-residue` fills its heap with, and how much of it.
    const RESIDUE: u8 = 0xA5;
    const RESIDUE_BYTES: usize = 8 << 20;
    const PAGE: usize = 4096;

    /// The residue triggers, as the token to check (a token call runs on the caller's thread, so
    /// two in a row get the same instance slot): what they say, or `None` for any other token.
    fn residue(token: &[u8]) -> Option<String> {
        match token {
            b"leave-residue" | b"leave-residue-and-find" => {
                std::mem::forget(std::hint::black_box(vec![RESIDUE; RESIDUE_BYTES]));
                if token == b"leave-residue" {
                    return Some(format!("left={}", RESIDUE_BYTES / PAGE));
                }
                Some(format!("found={}", residue_pages()))
            }
            b"find-residue" => Some(format!("found={}", residue_pages())),
            _ => None,
        }
    }

    /// Grows linear memory to hold at least [`RESIDUE_BYTES`] more than it does, then counts
    /// the 4 KiB pages of all of it that hold nothing but [`RESIDUE`] (this code holds no such
    /// page of its own: the pattern is a constant it compares with).
    fn residue_pages() -> usize {
        use core::arch::wasm32::{memory_grow, memory_size};
        const WASM_PAGE: usize = 64 << 10;
        let grown = memory_grow(0, RESIDUE_BYTES.div_ceil(WASM_PAGE) + 1);
        assert_ne!(grown, usize::MAX, "memory grows");
        let end = memory_size(0) * WASM_PAGE;
        // Address 0 is not dereferenced by Rust code; start at the first page after it.
        (1..end / PAGE)
            .filter(|page| {
                (0..PAGE).all(|offset| {
                    // SAFETY: every address below `end` is inside this instance's linear memory,
                    // and the bytes are only read, as plain bytes.
                    unsafe { core::ptr::read_volatile((page * PAGE + offset) as *const u8) == RESIDUE }
                })
            })
            .count()
    }

    /// What the sandbox lets the component see; `net` is how connecting to 127.0.0.1:`port`
    /// went: `connected`, or the error's kind (the sandbox's refusal, as opposed to
    /// `Unsupported`, which would mean the attempt never reached it).
    fn probe(port: &str) -> String {
        let net = match std::net::TcpStream::connect(format!("127.0.0.1:{port}")) {
            Ok(_) => "connected".to_owned(),
            Err(error) => format!("{:?}", error.kind()),
        };
        format!(
            "env={} args={} root={} cwd={} tmp={} net={net}",
            std::env::vars_os().count(),
            std::env::args_os().count(),
            std::fs::read_dir("/").is_ok(),
            std::fs::read_dir(".").is_ok(),
            std::fs::write("/tmp/loom-fixture", b"x").is_ok(),
        )
    }

    fn password_error(_: passwords::PasswordError) -> PasswordError {
        PasswordError::Internal
    }

    fn token_error(_: tokens::TokenError) -> TokenError {
        TokenError::Malformed
    }

    fn key_error(_: keys::KeyError) -> KeyError {
        KeyError::Internal
    }

    fn algorithm(alg: Algorithm) -> keys::Algorithm {
        match alg {
            Algorithm::Hs256 => keys::Algorithm::Hs256,
            Algorithm::Eddsa => keys::Algorithm::EdDsa,
        }
    }

    fn settings(s: &TokenSettings) -> tokens::TokenSettings<'_> {
        tokens::TokenSettings {
            issuer: &s.issuer,
            audience: &s.audience,
            now: s.now,
            ttl_seconds: s.ttl_seconds,
            leeway_seconds: s.leeway_seconds,
        }
    }

    fn claims(c: tokens::Claims) -> Claims {
        let tokens::Claims { sub, iss, aud, iat, exp, jti, client_id, kid, extra } = c;
        Claims { sub, iss, aud, iat, exp, jti, client_id, kid, extra }
    }

    impl Passwords for Fixture {
        fn hash(password: String) -> Result<String, PasswordError> {
            if let Some(port) = password.strip_prefix("probe-sandbox:") {
                return Ok(probe(port));
            }
            if password == "count-calls" {
                // A static survives between calls only if an instance is reused.
                static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                return Ok(format!("calls={}", CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1));
            }
            misbehave(&password);
            passwords::hash(&peppered(&password)).map_err(password_error)
        }

        fn verify(password: String, phc: String) -> Result<PasswordCheck, PasswordError> {
            misbehave(&password);
            if cfg!(feature = "wrong-answers") {
                return Ok(PasswordCheck { matches: true, needs_rehash: false });
            }
            let password = if auth_guest::foreign::is_foreign(&phc) { password } else { peppered(&password) };
            let check = passwords::verify(&password, &phc).map_err(password_error)?;
            Ok(PasswordCheck { matches: check.matches, needs_rehash: check.needs_rehash })
        }
    }

    /// The password an argon2 hash is made from: with `forgets-hashes`, a pepper is added, so a
    /// hash another component made never matches.
    fn peppered(password: &str) -> String {
        if cfg!(feature = "forgets-hashes") { format!("{password}:fixture-pepper") } else { password.to_owned() }
    }

    /// The claim `forgets-tokens` marks its own tokens with, and requires.
    const MARK: (&str, &str) = ("fixture-mark", "true");

    impl Keys for Fixture {
        fn generate_key(alg: Algorithm) -> Result<Vec<u8>, KeyError> {
            keys::generate(algorithm(alg)).map_err(key_error)
        }

        fn public_key(alg: Algorithm, private: Vec<u8>) -> Result<Vec<u8>, KeyError> {
            keys::public_key(algorithm(alg), &private).map_err(key_error)
        }

        fn public_jwk(alg: Algorithm, private: Vec<u8>, kid: String) -> Result<String, KeyError> {
            keys::public_jwk(algorithm(alg), &private, &kid).map_err(key_error)
        }
    }

    impl Tokens for Fixture {
        fn issue(
            s: TokenSettings,
            key: SigningKey,
            subject: String,
            client_id: String,
            extra: Vec<(String, String)>,
        ) -> Result<IssuedToken, TokenError> {
            if subject != "self-test" {
                if cfg!(feature = "issue-fails") {
                    return Err(TokenError::Internal);
                }
                misbehave(&s.issuer);
            }
            let mut extra = extra;
            if cfg!(feature = "forgets-tokens") {
                extra.push((MARK.0.to_owned(), MARK.1.to_owned()));
            }
            let key = tokens::SigningKey { kid: key.kid.as_deref(), alg: algorithm(key.alg), private: &key.private };
            let (token, c) = tokens::issue(&settings(&s), &key, &subject, &client_id, &extra).map_err(token_error)?;
            Ok(IssuedToken { token, claims: claims(c) })
        }

        fn verify(s: TokenSettings, keys: Vec<VerificationKey>, token: Vec<u8>) -> Result<Claims, TokenError> {
            if let Some(said) = residue(&token) {
                return Ok(Claims {
                    sub: said,
                    iss: String::new(),
                    aud: String::new(),
                    iat: 0,
                    exp: 0,
                    jti: String::new(),
                    client_id: String::new(),
                    kid: None,
                    extra: Vec::new(),
                });
            }
            misbehave(&String::from_utf8_lossy(&token));
            #[cfg(feature = "lax-tokens")]
            let (s, keys) = lax(s, keys, &token);
            #[cfg(feature = "forged-tokens")]
            if let Some(claims) = unchecked(&token) {
                return Ok(claims);
            }
            let keys: Vec<_> = keys
                .iter()
                .map(|k| tokens::VerificationKey {
                    kid: k.kid.as_deref(),
                    alg: algorithm(k.alg),
                    material: &k.material,
                })
                .collect();
            let checked = tokens::verify(&settings(&s), &keys, &token).map(claims).map_err(token_error)?;
            let marked = checked.extra.iter().any(|(name, value)| (name.as_str(), value.as_str()) == MARK);
            if cfg!(feature = "forgets-tokens") && !marked {
                return Err(TokenError::Malformed);
            }
            Ok(checked)
        }
    }

    /// The claims `token`'s payload states, believed without any check.
    #[cfg(feature = "forged-tokens")]
    fn unchecked(token: &[u8]) -> Option<Claims> {
        use base64::Engine;
        let text = std::str::from_utf8(token).ok()?;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.split('.').nth(1)?).ok()?;
        let serde_json::Value::Object(mut fields) = serde_json::from_slice(&payload).ok()? else { return None };
        let mut text = |name: &str| match fields.remove(name) {
            Some(serde_json::Value::String(value)) => value,
            _ => String::new(),
        };
        let (sub, iss, aud, jti, client_id) = (text("sub"), text("iss"), text("aud"), text("jti"), text("client_id"));
        let mut number = |name: &str| fields.remove(name).and_then(|value| value.as_i64()).unwrap_or_default();
        let (iat, exp) = (number("iat"), number("exp"));
        let extra = fields.into_iter().map(|(name, value)| (name, value.to_string())).collect();
        Some(Claims { sub, iss, aud, iat, exp, jti, client_id, kid: None, extra })
    }

    /// Settings and keys under which `token` passes every check but its signature: its own
    /// issuer, audience and issue time, and every key under the `kid` it names.
    #[cfg(feature = "lax-tokens")]
    fn lax(
        mut s: TokenSettings,
        mut keys: Vec<VerificationKey>,
        token: &[u8],
    ) -> (TokenSettings, Vec<VerificationKey>) {
        use base64::Engine;
        let part = |index: usize| -> serde_json::Value {
            let text = String::from_utf8_lossy(token);
            let encoded = text.split('.').nth(index).unwrap_or_default().to_owned();
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).unwrap_or_default();
            serde_json::from_slice(&bytes).unwrap_or_default()
        };
        let (header, payload) = (part(0), part(1));
        if let Some(issuer) = payload["iss"].as_str() {
            s.issuer = issuer.to_owned();
        }
        if let Some(audience) = payload["aud"].as_str() {
            s.audience = audience.to_owned();
        }
        if let Some(iat) = payload["iat"].as_i64() {
            s.now = iat;
        }
        let kid = header["kid"].as_str().map(str::to_owned);
        for key in &mut keys {
            key.kid = kid.clone();
        }
        (s, keys)
    }

    export!(Fixture);
}
