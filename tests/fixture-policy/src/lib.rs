//! A policy component that misbehaves as its settings say, so one build serves every fault the
//! policy tests need.
//!
//! Settings: `{"registration": B, "login": B, "access-claims": B, "only_for": EMAIL}`, where B
//! is one of `allow` (the default; `{}` for claims), `deny`, `err` (cannot decide), `trap`,
//! `loop`, `sleep` (ten seconds), `alloc` (memory until refused), and for claims also
//! `claims` (`{"team": "blue"}`), `sub`, `exp`, `Sub`, `huge` (1 MiB), `array`, `not-json`.
//! With `only_for`, it misbehaves only for that address (so it passes the self-test, whose
//! sample is another), and allows everyone else.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../wit/policy", world: "policy" });

    use exports::loom::policy::decisions::{Decision, Guest, LoginRequest, RegistrationRequest, TokenRequest};

    struct Fixture;

    /// How `hook` behaves for `email`, per the settings.
    fn behaviour(config: &str, hook: &str, email: &str) -> String {
        let settings: serde_json::Value = serde_json::from_str(config).expect("the fixture's settings are JSON");
        if let Some(only) = settings.get("only_for").and_then(|v| v.as_str())
            && !only.eq_ignore_ascii_case(email)
        {
            return "allow".into();
        }
        settings.get(hook).and_then(|v| v.as_str()).unwrap_or("allow").to_owned()
    }

    /// The faults every hook can have; `None` for the answers.
    fn misbehave(how: &str) {
        match how {
            "trap" => panic!("the fixture policy traps, as its settings asked"),
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(10)),
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            _ => {}
        }
    }

    fn decision(how: &str) -> Result<Decision, String> {
        misbehave(how);
        match how {
            "deny" => Ok(Decision::Deny("the fixture policy says no".into())),
            "err" => Err("the fixture policy cannot decide".into()),
            _ => Ok(Decision::Allow),
        }
    }

    impl Guest for Fixture {
        fn registration(config: String, request: RegistrationRequest) -> Result<Decision, String> {
            decision(&behaviour(&config, "registration", &request.email))
        }

        fn login(config: String, request: LoginRequest) -> Result<Decision, String> {
            decision(&behaviour(&config, "login", &request.account.email))
        }

        fn access_claims(config: String, request: TokenRequest) -> Result<String, String> {
            let how = behaviour(&config, "access-claims", &request.account.email);
            misbehave(&how);
            Ok(match how.as_str() {
                "err" => return Err("the fixture policy cannot make claims".into()),
                "claims" => r#"{"team": "blue"}"#.into(),
                "sub" => r#"{"sub": "1"}"#.into(),
                "exp" => r#"{"team": "blue", "exp": 4102444800}"#.into(),
                "Sub" => r#"{"Sub": "1"}"#.into(),
                "huge" => format!(r#"{{"pad": "{}"}}"#, "x".repeat(1 << 20)),
                "array" => r#"["team"]"#.into(),
                "not-json" => "team=blue".into(),
                _ => "{}".into(),
            })
        }
    }

    export!(Fixture);
}
