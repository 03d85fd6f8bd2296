//! What a policy may add to an access token: a JSON object, small, and none of the claims the
//! host sets itself.

/// Largest claims document a policy may return, in bytes of JSON.
pub const MAX_CLAIMS_BYTES: usize = 4096;

/// The claims the host (or the auth component) sets, and those receiving services act on as
/// statements of who the client is, how the user authenticated, or whom the token is bound to or
/// acts for: a policy can neither set nor change them. Compared without regard to case, so no
/// look-alike (`Sub`, `EXP`) reaches a token either.
pub const REGISTERED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "sid",
    "client_id",
    "amr",
    "typ",
    "scope",
    "azp",
    "act",
    "may_act",
    "cnf",
    "acr",
    "auth_time",
    "scp",
];

/// The claims in `document` as names and JSON values, in its order; or why they are refused.
pub fn check(document: &str) -> Result<Vec<(String, String)>, String> {
    if document.len() > MAX_CLAIMS_BYTES {
        return Err(format!("its claims are {} bytes of JSON; at most {MAX_CLAIMS_BYTES} are allowed", document.len()));
    }
    let parsed: serde_json::Value =
        serde_json::from_str(document).map_err(|error| format!("its claims are not JSON: {error}"))?;
    let serde_json::Value::Object(claims) = parsed else {
        return Err("its claims are not a JSON object".into());
    };
    let checked: Vec<(String, String)> = claims
        .into_iter()
        .map(|(name, value)| {
            if name.is_empty() {
                return Err("it returned a claim with an empty name".to_owned());
            }
            if let Some(registered) = REGISTERED_CLAIMS.iter().find(|known| known.eq_ignore_ascii_case(&name)) {
                return Err(format!("it tried to set `{name}`, which only the host sets ({registered})"));
            }
            Ok((name, value.to_string()))
        })
        .collect::<Result<_, _>>()?;
    // JSON written again can be longer than the policy's (`1e15` is `1000000000000000.0`): the
    // bound holds for what is signed.
    let signed: usize = checked.iter().map(|(name, value)| name.len() + value.len() + 4).sum();
    if signed > MAX_CLAIMS_BYTES {
        return Err(format!("its claims are {signed} bytes in the token; at most {MAX_CLAIMS_BYTES} are allowed"));
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_of_new_claims_passes_in_order() {
        let claims = check(r#"{"org": "acme", "plan": {"seats": 3}, "beta": true}"#).unwrap();
        let names: Vec<_> = claims.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["org", "plan", "beta"]);
        assert_eq!(claims[1].1, r#"{"seats":3}"#);
        assert_eq!(check("{}").unwrap(), []);
    }

    #[test]
    fn registered_claims_in_any_case_are_refused() {
        for name in REGISTERED_CLAIMS.iter().map(|n| n.to_string()).chain(["Sub".into(), "EXP".into()]) {
            let error = check(&format!(r#"{{"org": "acme", "{name}": "x"}}"#)).unwrap_err();
            assert!(error.contains("only the host sets"), "{name}: {error}");
        }
    }

    #[test]
    fn anything_but_a_small_object_is_refused() {
        assert!(check("[]").unwrap_err().contains("not a JSON object"));
        assert!(check(r#""org""#).unwrap_err().contains("not a JSON object"));
        assert!(check("{org: 1}").unwrap_err().contains("not JSON"));
        assert!(check(r#"{"": 1}"#).unwrap_err().contains("empty name"));
        let big = format!(r#"{{"pad": "{}"}}"#, "x".repeat(MAX_CLAIMS_BYTES));
        assert!(check(&big).unwrap_err().contains("at most 4096"));
        let just_fits = format!(r#"{{"pad": "{}"}}"#, "x".repeat(MAX_CLAIMS_BYTES - 11));
        assert_eq!(just_fits.len(), MAX_CLAIMS_BYTES);
        assert!(check(&just_fits).is_ok());
    }

    #[test]
    fn the_bound_holds_for_the_claims_as_signed() {
        let numbers = vec!["1e15"; 800].join(",");
        let short = format!(r#"{{"n": [{numbers}]}}"#);
        assert!(short.len() <= MAX_CLAIMS_BYTES);
        assert!(check(&short).unwrap_err().contains("bytes in the token"));
    }
}
