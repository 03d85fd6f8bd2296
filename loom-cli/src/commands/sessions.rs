//! `loom sessions` and `loom sessions revoke ID`

use std::time::SystemTime;

use loom_cli::session;

use super::{Context, say};
use crate::cli::{SessionsAction, SessionsArgs};
use crate::failure::Failure;

pub async fn run(context: &mut Context, args: SessionsArgs) -> Result<(), Failure> {
    context.require_password_login("Listing or ending sessions")?;
    match args.action {
        Some(SessionsAction::Revoke { id }) => {
            let id = id.trim().to_owned();
            context.with_login(async |client| client.end_session(&id).await).await.map_err(
                |failure| match failure {
                    Failure::Failed(error) if error.to_string() == "No such session" => Failure::failed(format!(
                        "you have no live session {id} on {} ('loom sessions' lists them)",
                        context.server.url
                    )),
                    other => other,
                },
            )?;
            say(&format!("Ended the session {id}; its tokens are refused from now on"));
        }
        None => {
            let (sessions, _) = context.with_login(async |client| client.sessions().await).await?;
            if args.json {
                say(&serde_json::to_string_pretty(&sessions).expect("sessions serialise"));
                return Ok(());
            }
            let now = SystemTime::now();
            let ago =
                |at: &str| humantime::parse_rfc3339(at).map_or_else(|_| at.to_owned(), |at| session::relative(at, now));
            let width = sessions.iter().map(|s| s.id.len()).max().unwrap_or(2).max(2);
            say(&format!(
                "{:width$}  {:12}  {:16}  {:16}  {:15}  USER AGENT",
                "ID", "CLIENT", "STARTED", "LAST USED", "ADDRESS"
            ));
            for s in &sessions {
                let marker = if s.current { "  (this one)" } else { "" };
                say(&format!(
                    "{:width$}  {:12}  {:16}  {:16}  {:15}  {}{marker}",
                    s.id,
                    s.client_id,
                    ago(&s.created_at),
                    ago(&s.last_used_at),
                    s.address,
                    s.user_agent
                ));
            }
        }
    }
    Ok(())
}
