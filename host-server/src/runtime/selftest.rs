//! The gate a component passes before it serves: it must hash and check
//! passwords and issue and check tokens correctly with the live settings, and
//! accept what the component it replaces has made, so no login and no session
//! is lost to a swap.
//!
//! The token checks always run (they take microseconds and depend on the live
//! key). The password checks cost several argon2 runs, and depend only on the
//! component's bytes: once a component has passed them (alone, or against the
//! component it replaced), a marker in the compiled-code cache records it, and
//! the same bytes skip them next time: on a restart, or a swap back.

use secrecy::SecretString;

use super::{Algorithm, Core, KeyedSettings, Loaded, RuntimeError, SigningKey, VerificationKey};

const SAMPLE_PASSWORD: &str = "loom self-test: correct horse battery staple";
const WRONG_PASSWORD: &str = "a different password";

fn sample() -> SecretString {
    SecretString::from(SAMPLE_PASSWORD)
}
const SAMPLE_SUBJECT: &str = "self-test";
const SAMPLE_CLIENT: &str = "loom-self-test";
/// The session claim every access token carries: the host decides by it how a token is
/// revoked, so a component must keep it exactly.
const SAMPLE_SID: (&str, &str) = ("sid", "\"self-test-session\"");

fn sample_extra() -> Vec<(String, String)> {
    vec![(SAMPLE_SID.0.to_owned(), SAMPLE_SID.1.to_owned())]
}

/// Runs every check on `candidate`; `current` is the component it would replace.
/// Returns which check failed and how.
pub async fn run(
    core: &Core,
    candidate: &Loaded,
    current: Option<&Loaded>,
    settings: &KeyedSettings,
) -> Result<(), String> {
    tokens(core, candidate, current, settings).await?;
    fresh_keys(core, candidate, settings).await?;
    let own = candidate.info.sha256.clone();
    if !core.passed(&own) {
        own_passwords(core, candidate).await?;
        core.record_pass(&own);
    }
    if let Some(current) = current {
        let pair = format!("{own}-accepts-{}", current.info.sha256);
        if !core.passed(&pair) {
            cross_passwords(core, candidate, current).await?;
            core.record_pass(&pair);
        }
    }
    Ok(())
}

fn failed(what: &str, error: RuntimeError) -> String {
    format!("{what}: {error}")
}

/// Hash a password, match it, refuse a wrong one; check the hash formats an import brings.
async fn own_passwords(core: &Core, candidate: &Loaded) -> Result<(), String> {
    let phc = core.hash_with(candidate, &sample()).await.map_err(|e| failed("hashing a password", e))?;
    let check = core.verify_with(candidate, &sample(), &phc).await.map_err(|e| failed("checking its own hash", e))?;
    if !check.matches {
        return Err("a password does not match its own fresh hash".into());
    }
    let wrong = core
        .verify_with(candidate, &SecretString::from(WRONG_PASSWORD), &phc)
        .await
        .map_err(|e| failed("checking a wrong password", e))?;
    if wrong.matches {
        return Err("a wrong password matches".into());
    }
    // The hashes imported accounts bring: each must verify, and ask to be replaced.
    for (format, password, hash) in FOREIGN_SAMPLES {
        let check = core
            .verify_with(candidate, &SecretString::from(*password), hash)
            .await
            .map_err(|e| failed(&format!("checking a {format} hash"), e))?;
        if !check.matches || !check.needs_rehash {
            return Err(format!("a {format} hash does not verify, or is not to be replaced by argon2id"));
        }
    }
    Ok(())
}

/// Known hashes of the formats an import brings: (format, password, hash). The bcrypt one is
/// from the OpenBSD test vectors, the PBKDF2 one from passlib's documentation.
const FOREIGN_SAMPLES: &[(&str, &str, &str)] = &[
    ("bcrypt", "U*U", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
    (
        "pbkdf2-sha256",
        "toomanysecrets",
        "$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk",
    ),
];

/// Issue a token and accept it; refuse a forged one, an expired one, one for another
/// audience or from another issuer, and one whose `kid` names no key; accept one the current
/// component issued.
async fn tokens(
    core: &Core,
    candidate: &Loaded,
    current: Option<&Loaded>,
    settings: &KeyedSettings,
) -> Result<(), String> {
    // With no usable signing key (the host then issues nothing), check with a fresh one.
    let live = match &settings.signing {
        Some(_) => settings.clone(),
        None => trial(core, candidate, settings).await?,
    };
    let issue = |with: KeyedSettings| async move {
        core.issue_with(candidate, &with, SAMPLE_SUBJECT, SAMPLE_CLIENT, &sample_extra())
            .await
            .map_err(|e| failed("issuing a token", e))
    };
    let issued = issue(live.clone()).await?;
    let claims = core
        .verify_token_with(candidate, &live, issued.token.as_bytes())
        .await
        .map_err(|e| failed("checking its own token", e))?;
    if claims.sub != SAMPLE_SUBJECT || claims.iss != live.issuer {
        return Err("its own token comes back with other claims".into());
    }
    if !claims.extra.iter().any(|(name, value)| (name.as_str(), value.as_str()) == SAMPLE_SID) {
        return Err("its own token comes back without its session claim (sid)".into());
    }
    if !issued.claims.extra.iter().any(|(name, value)| (name.as_str(), value.as_str()) == SAMPLE_SID) {
        return Err("a token it issues does not say it carries its session claim (sid)".into());
    }
    // Change the signature's first character (never only padding bits).
    let mut forged = issued.token.clone().into_bytes();
    if let Some(at) = issued.token.rfind('.').map(|dot| dot + 1).filter(|&at| at < forged.len()) {
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    }
    let mut refused = vec![("a token with a forged signature", forged)];
    let mut expired = live.clone();
    expired.settings.now -= i64::from(live.ttl_seconds) + i64::from(live.leeway_seconds) + 60;
    let mut other_audience = live.clone();
    other_audience.settings.audience = "loom-self-test-another-audience".into();
    let mut other_issuer = live.clone();
    other_issuer.settings.issuer = "https://loom-self-test.invalid/another-issuer".into();
    let mut unknown_kid = live.clone();
    if let Some(key) = &mut unknown_kid.signing {
        key.kid = Some("loom-self-test-unknown-kid".into());
    }
    for (what, with) in [
        ("an expired token", expired),
        ("a token for another audience", other_audience),
        ("a token from another issuer", other_issuer),
        ("a token whose kid names no key", unknown_kid),
    ] {
        refused.push((what, issue(with).await?.token.into_bytes()));
    }
    for (what, token) in refused {
        if core.verify_token_with(candidate, &live, &token).await.is_ok() {
            return Err(format!("{what} is accepted"));
        }
    }

    if let Some(current) = current {
        // Tokens the current component signs with every live key the host can sign with: the
        // active key, and HS256 keys (their secret is what verifies). An EdDSA key that only
        // verifies is checked through the active one: the same code path, another key.
        let mut signers: Vec<KeyedSettings> = settings.signing.iter().map(|_| settings.clone()).collect();
        for key in settings.verifying.iter().filter(|key| key.alg == Algorithm::Hs256) {
            let mut signer = settings.clone();
            signer.signing = Some(SigningKey { kid: key.kid.clone(), alg: key.alg, private: key.material.clone() });
            signers.push(signer);
        }
        for signer in &signers {
            let old_token = core
                .issue_with(current, signer, SAMPLE_SUBJECT, SAMPLE_CLIENT, &sample_extra())
                .await
                .map_err(|e| failed("(current) issuing", e))?;
            let claims = core
                .verify_token_with(candidate, settings, old_token.token.as_bytes())
                .await
                .map_err(|e| failed("checking a token the current component issued", e))?;
            let keeps_sid = claims.extra.iter().any(|(name, value)| (name.as_str(), value.as_str()) == SAMPLE_SID);
            if claims.sub != SAMPLE_SUBJECT || !keeps_sid {
                return Err("a token the current component issued comes back with another subject or session".into());
            }
        }
    }
    Ok(())
}

/// Settings with a fresh EdDSA key the candidate makes, signing and (its public half alone)
/// verifying.
async fn trial(core: &Core, candidate: &Loaded, settings: &KeyedSettings) -> Result<KeyedSettings, String> {
    let private = core.generate_key_with(candidate, Algorithm::Eddsa).await.map_err(|e| failed("making a key", e))?;
    let public = core
        .public_key_with(candidate, Algorithm::Eddsa, &private)
        .await
        .map_err(|e| failed("deriving a public key", e))?;
    if public.is_empty() || public[..] == private[..] {
        return Err("a key's public half is empty or its private half".into());
    }
    let kid = Some("self-test".to_owned());
    Ok(KeyedSettings {
        settings: settings.settings.clone(),
        signing: Some(SigningKey { kid: kid.clone(), alg: Algorithm::Eddsa, private: private.to_vec() }),
        verifying: vec![VerificationKey { kid, alg: Algorithm::Eddsa, material: public }],
    })
}

/// Make an EdDSA key, sign with it, and verify with its public half alone.
async fn fresh_keys(core: &Core, candidate: &Loaded, settings: &KeyedSettings) -> Result<(), String> {
    let trial = trial(core, candidate, settings).await?;
    let issued = core
        .issue_with(candidate, &trial, SAMPLE_SUBJECT, SAMPLE_CLIENT, &[])
        .await
        .map_err(|e| failed("signing with a fresh key", e))?;
    let claims = core
        .verify_token_with(candidate, &trial, issued.token.as_bytes())
        .await
        .map_err(|e| failed("checking a token with a public key", e))?;
    if claims.sub != SAMPLE_SUBJECT || claims.client_id != SAMPLE_CLIENT {
        return Err("a token signed with a fresh key comes back with other claims".into());
    }
    Ok(())
}

/// Accept a password hash the current component made.
async fn cross_passwords(core: &Core, candidate: &Loaded, current: &Loaded) -> Result<(), String> {
    let old_phc = core.hash_with(current, &sample()).await.map_err(|e| failed("(current) hashing", e))?;
    let check = core
        .verify_with(candidate, &sample(), &old_phc)
        .await
        .map_err(|e| failed("checking a hash the current component made", e))?;
    if !check.matches {
        return Err("a hash the current component made does not match its password".into());
    }
    Ok(())
}
