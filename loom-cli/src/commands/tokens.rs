//! `loom tokens create | list | revoke`: personal access tokens for CI and other machines.
//!
//! Named `tokens` (plural, like `fly tokens` and `npm token list`) beside `loom token`, which
//! prints one access token for scripts: `tokens` manages the long-lived credentials themselves.

use std::time::SystemTime;

use loom_cli::api::PatInfo;
use loom_cli::session;

use super::{Context, read_password, say, warn};
use crate::cli::{TokensAction, TokensArgs};
use crate::failure::Failure;

/// A token that expires within this many days is warned about (CI breaking without warning
/// is the complaint every token system hears).
pub const WARN_WITHIN_DAYS: u64 = 7;

pub async fn run(context: &mut Context, args: TokensArgs) -> Result<(), Failure> {
    context.require_password_login("Managing personal access tokens")?;
    match args.action {
        TokensAction::Create { name, expires, password_stdin } => {
            let days = days(&expires)?;
            let name = name.trim().to_owned();
            if name.is_empty() {
                return Err(Failure::Usage(
                    "--name is empty: name the token after what uses it, e.g. --name ci".into(),
                ));
            }
            let question = format!("Password for {} (to make a token): ", context.server.url);
            let password = read_password(password_stdin, &question)?;
            let (created, _) = context
                .with_login(async |client| client.create_pat(&name, &password, days).await)
                .await
                .map_err(|failure| match failure {
                    // The server's bound, said in the flag's terms.
                    Failure::Failed(error) if error.to_string().starts_with("expires_in_days") => Failure::Usage(
                        error
                            .to_string()
                            .replace("expires_in_days must be a whole number of days", "--expires must be"),
                    ),
                    other => other,
                })?;
            say(secrecy::ExposeSecret::expose_secret(&created.token));
            let day = created.expires_at.get(..10).unwrap_or(&created.expires_at);
            eprintln!(
                "Made the token '{}' on {}; it expires on {day}. It is shown only this once: keep it as a secret \
                 (e.g. LOOM_TOKEN in your CI settings, with LOOM_SERVER={}).",
                created.name, context.server.url, context.server.url
            );
        }
        TokensAction::List { json } => {
            let (tokens, _) = context.with_login(async |client| client.pats().await).await?;
            if json {
                say(&serde_json::to_string_pretty(&tokens).expect("tokens serialise"));
            } else if tokens.is_empty() {
                say("No personal access tokens ('loom tokens create --name ci' makes one)");
            } else {
                table(&tokens);
            }
        }
        TokensAction::Revoke { token } => {
            let wanted = token.trim().to_owned();
            let (tokens, _) = context.with_login(async |client| client.pats().await).await?;
            let Some(found) =
                tokens.iter().find(|t| t.id == wanted).or_else(|| tokens.iter().find(|t| t.name == wanted))
            else {
                return Err(Failure::failed(format!(
                    "you have no live token named or with the id {wanted:?} on {} ('loom tokens list' lists them)",
                    context.server.url
                )));
            };
            let id = found.id.clone();
            context.with_login(async |client| client.revoke_pat(&id).await).await?;
            say(&format!(
                "Revoked the token '{}'; it and the access tokens exchanged from it are refused from now on",
                found.name
            ));
        }
    }
    Ok(())
}

/// `30d` or `30`: whole days, 1 or more (the server sets the maximum).
fn days(given: &str) -> Result<u32, Failure> {
    let number = given.trim().strip_suffix('d').unwrap_or(given.trim());
    number
        .parse::<u32>()
        .ok()
        .filter(|d| *d >= 1)
        .ok_or_else(|| Failure::Usage(format!("--expires takes a number of days, like 30d or 90d, not {given:?}")))
}

fn table(tokens: &[PatInfo]) {
    let now = SystemTime::now();
    let when = |at: &str| humantime::parse_rfc3339(at).map_or_else(|_| at.to_owned(), |at| session::relative(at, now));
    let width = tokens.iter().map(|t| t.name.chars().count()).max().unwrap_or(4).max(4);
    say(&format!("{:width$}  {:36}  {:13}  {:16}  {:16}  LAST USED", "NAME", "ID", "PREFIX", "CREATED", "EXPIRES"));
    for t in tokens {
        let used = match (&t.last_used_at, &t.last_used_from) {
            (Some(at), Some(from)) => format!("{} from {from}", when(at)),
            (Some(at), None) => when(at),
            _ => "never".to_owned(),
        };
        say(&format!(
            "{:width$}  {:36}  {:13}  {:16}  {:16}  {used}",
            t.name,
            t.id,
            t.prefix,
            when(&t.created_at),
            when(&t.expires_at)
        ));
    }
}

/// A warning when `token` (named `name`) expires within [`WARN_WITHIN_DAYS`].
pub fn warn_if_expiring(name: &str, expires_at: &str) {
    let Ok(at) = humantime::parse_rfc3339(expires_at) else { return };
    let now = SystemTime::now();
    let left = at.duration_since(now).map_or(0, |left| left.as_secs());
    if left < WARN_WITHIN_DAYS * 86_400 {
        warn(&format!(
            "the personal access token '{name}' expires {} (on {}): make a new one with 'loom tokens create' before \
             then, or what uses it stops working",
            session::relative(at, now),
            expires_at.get(..10).unwrap_or(expires_at)
        ));
    }
}

/// After a password change or a global logout, which end sessions but not tokens: how many
/// tokens stay valid, and how to end them (nothing when there are none or it is unknown).
pub fn say_tokens_stay(count: Option<usize>) {
    match count {
        Some(0) | None => {}
        Some(1) => warn(
            "1 personal access token stays valid (for CI); 'loom tokens list' shows it, 'loom tokens \
                         revoke NAME' ends it",
        ),
        Some(n) => warn(&format!(
            "{n} personal access tokens stay valid (for CI); 'loom tokens list' shows them, 'loom tokens revoke NAME' \
             ends one"
        )),
    }
}
