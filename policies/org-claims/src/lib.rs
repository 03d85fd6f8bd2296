//! A Loom Auth policy: access tokens carry an `org` claim chosen by the email's domain, so the
//! services behind Loom can tell teams apart without asking. Registrations and logins are not
//! affected.
//!
//! Settings (`--policy-config`): `{"orgs": {"acme.com": "acme", "lab.acme.com": "acme-lab"}}`.
//! An address whose domain is not listed gets no `org` claim.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The operator's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub orgs: BTreeMap<String, String>,
}

impl Settings {
    /// The settings in `config`, or why they cannot be used.
    pub fn parse(config: &str) -> Result<Self, String> {
        serde_json::from_str(config).map_err(|error| format!("org-claims settings: {error}"))
    }

    /// The claims for an account with `email`: `{"org": ...}`, or `{}` for a domain not listed.
    pub fn claims(&self, email: &str) -> String {
        let domain = email.rsplit_once('@').map_or("", |(_, domain)| domain).to_ascii_lowercase();
        let org = self.orgs.iter().find(|(listed, _)| listed.eq_ignore_ascii_case(&domain));
        match org {
            Some((_, org)) => serde_json::json!({ "org": org }).to_string(),
            None => "{}".to_owned(),
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../wit/policy", world: "policy" });

    use exports::loom::policy::decisions::{Decision, Guest, LoginRequest, RegistrationRequest, TokenRequest};

    struct Policy;

    impl Guest for Policy {
        fn registration(config: String, _: RegistrationRequest) -> Result<Decision, String> {
            super::Settings::parse(&config).map(|_| Decision::Allow)
        }

        fn login(config: String, _: LoginRequest) -> Result<Decision, String> {
            super::Settings::parse(&config).map(|_| Decision::Allow)
        }

        fn access_claims(config: String, request: TokenRequest) -> Result<String, String> {
            Ok(super::Settings::parse(&config)?.claims(&request.account.email))
        }
    }

    export!(Policy);
}

#[cfg(test)]
mod tests {
    use super::Settings;

    #[test]
    fn the_org_of_the_domain_or_none() {
        let settings = Settings::parse(r#"{"orgs": {"acme.com": "acme", "lab.acme.com": "acme \"lab\""}}"#).unwrap();
        assert_eq!(settings.claims("ada@acme.com"), r#"{"org":"acme"}"#);
        assert_eq!(settings.claims("ada@ACME.COM"), r#"{"org":"acme"}"#);
        assert_eq!(settings.claims("grace@lab.acme.com"), r#"{"org":"acme \"lab\""}"#);
        assert_eq!(settings.claims("eve@example.com"), "{}");
    }

    #[test]
    fn settings_need_the_map() {
        assert!(Settings::parse(r#"{"org": {}}"#).is_err());
    }
}
