//! A Loom Auth policy: only the addresses invited may register. Logins are not affected.
//!
//! Settings (`--policy-config`): `{"invited": ["ada@acme.com", "*@lab.acme.com"]}`. A `*`
//! matches any run of characters; letters match whatever their case.

use serde::Deserialize;

/// The operator's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub invited: Vec<String>,
}

impl Settings {
    /// The settings in `config`, or why they cannot be used.
    pub fn parse(config: &str) -> Result<Self, String> {
        serde_json::from_str(config).map_err(|error| format!("invite-only settings: {error}"))
    }

    /// Whether `email` is on the invitation list.
    pub fn invites(&self, email: &str) -> bool {
        let email = email.to_lowercase();
        self.invited.iter().any(|pattern| glob(pattern.trim().to_lowercase().as_bytes(), email.as_bytes()))
    }
}

/// Whether `text` matches `pattern`, where `*` is any run of bytes (iterative, linear in both).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../wit/policy", world: "policy" });

    use exports::loom::policy::decisions::{Decision, Guest, LoginRequest, RegistrationRequest, TokenRequest};

    struct Policy;

    impl Guest for Policy {
        fn registration(config: String, request: RegistrationRequest) -> Result<Decision, String> {
            let settings = super::Settings::parse(&config)?;
            Ok(if settings.invites(&request.email) {
                Decision::Allow
            } else {
                Decision::Deny("registration is by invitation only: ask an administrator to invite you".into())
            })
        }

        fn login(config: String, _: LoginRequest) -> Result<Decision, String> {
            super::Settings::parse(&config).map(|_| Decision::Allow)
        }

        fn access_claims(config: String, _: TokenRequest) -> Result<String, String> {
            super::Settings::parse(&config).map(|_| "{}".to_owned())
        }
    }

    export!(Policy);
}

#[cfg(test)]
mod tests {
    use super::Settings;

    #[test]
    fn listed_addresses_and_patterns_only() {
        let settings = Settings::parse(r#"{"invited": ["ada@acme.com", "*@lab.acme.com"]}"#).unwrap();
        assert!(settings.invites("ada@acme.com"));
        assert!(settings.invites("Ada@ACME.com"));
        assert!(settings.invites("grace@lab.acme.com"));
        assert!(!settings.invites("grace@acme.com"));
        assert!(!settings.invites("eve@evil.lab.acme.com.example"));
        assert!(!settings.invites("ada@acme.com.evil.example"));
    }

    #[test]
    fn stars_match_any_run_and_nothing_else_is_special() {
        let settings = Settings::parse(r#"{"invited": ["a*b*c@x.org", "?@y.org"]}"#).unwrap();
        assert!(settings.invites("abc@x.org"));
        assert!(settings.invites("a--b--c@x.org"));
        assert!(!settings.invites("ab@x.org"));
        assert!(!settings.invites("q@y.org"));
        assert!(settings.invites("?@y.org"));
    }

    #[test]
    fn settings_need_the_list() {
        assert!(Settings::parse("{}").unwrap_err().contains("missing field `invited`"));
    }
}
