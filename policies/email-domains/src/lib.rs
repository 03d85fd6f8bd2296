//! A Loom Auth policy: registration and login only for the email domains allowed, and none for
//! the domains denied (a denied domain wins over an allowed one).
//!
//! Settings (`--policy-config`): `{"allow_domains": ["acme.com", "*.acme.com"], "deny_domains":
//! ["contractors.acme.com"]}`. A domain matches itself only; `*.acme.com` matches every domain
//! under acme.com. Without `allow_domains` every domain not denied may register and log in.

use serde::Deserialize;

/// The operator's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub allow_domains: Option<Vec<String>>,
    #[serde(default)]
    pub deny_domains: Vec<String>,
}

impl Settings {
    /// The settings in `config`, or why they cannot be used.
    pub fn parse(config: &str) -> Result<Self, String> {
        serde_json::from_str(config).map_err(|error| format!("email-domains settings: {error}"))
    }

    /// `None` when `email` may register and log in; else the reason it may not.
    pub fn refusal(&self, email: &str) -> Option<String> {
        let domain = email.rsplit_once('@').map_or("", |(_, domain)| domain).to_ascii_lowercase();
        if self.deny_domains.iter().any(|pattern| matches(pattern, &domain)) {
            return Some(format!("accounts at {domain} are not accepted here"));
        }
        match &self.allow_domains {
            Some(allowed) if !allowed.iter().any(|pattern| matches(pattern, &domain)) => {
                Some(format!("only accounts at {} can use this service", allowed.join(", ")))
            }
            _ => None,
        }
    }
}

/// Whether `domain` is `pattern`, or under it when `pattern` is `*.parent`.
fn matches(pattern: &str, domain: &str) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(parent) => domain.strip_suffix(parent).is_some_and(|head| head.ends_with('.') && head.len() > 1),
        None => domain == pattern,
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../wit/policy", world: "policy" });

    use exports::loom::policy::decisions::{Decision, Guest, LoginRequest, RegistrationRequest, TokenRequest};

    struct Policy;

    fn decide(config: &str, email: &str) -> Result<Decision, String> {
        let refusal = super::Settings::parse(config)?.refusal(email);
        Ok(refusal.map_or(Decision::Allow, Decision::Deny))
    }

    impl Guest for Policy {
        fn registration(config: String, request: RegistrationRequest) -> Result<Decision, String> {
            decide(&config, &request.email)
        }

        fn login(config: String, request: LoginRequest) -> Result<Decision, String> {
            decide(&config, &request.account.email)
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
    fn allowed_domains_only_and_denied_ones_never() {
        let settings =
            Settings::parse(r#"{"allow_domains": ["acme.com", "*.lab.acme.com"], "deny_domains": ["x.lab.acme.com"]}"#)
                .unwrap();
        assert_eq!(settings.refusal("ada@acme.com"), None);
        assert_eq!(settings.refusal("ada@ACME.com"), None);
        assert_eq!(settings.refusal("ada@y.lab.acme.com"), None);
        assert!(settings.refusal("ada@lab.acme.com").unwrap().contains("only accounts at"));
        assert!(settings.refusal("ada@evilacme.com").is_some());
        assert!(settings.refusal("ada@acme.com.evil.example").is_some());
        assert!(settings.refusal("ada@x.lab.acme.com").unwrap().contains("not accepted"));
    }

    #[test]
    fn without_an_allow_list_only_denied_domains_are_refused() {
        let settings = Settings::parse(r#"{"deny_domains": ["mailinator.com"]}"#).unwrap();
        assert_eq!(settings.refusal("ada@example.com"), None);
        assert!(settings.refusal("eve@mailinator.com").is_some());
        assert_eq!(Settings::parse("{}").unwrap().refusal("ada@example.com"), None);
    }

    #[test]
    fn settings_with_a_typo_are_an_error() {
        assert!(Settings::parse(r#"{"allow_domain": ["acme.com"]}"#).unwrap_err().contains("unknown field"));
        assert!(Settings::parse(r#"{"allow_domains": "acme.com"}"#).is_err());
    }
}
