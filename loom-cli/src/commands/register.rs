//! `loom register`

use loom_cli::api::ApiClient;
use secrecy::ExposeSecret;

use super::{ask_email, ask_password, say};
use crate::cli::RegisterArgs;
use crate::failure::Failure;
use crate::prompt;

pub async fn run(server: &str, insecure: bool, args: RegisterArgs) -> Result<(), Failure> {
    let email = match args.email {
        Some(email) => email,
        None => ask_email("--email", args.password_stdin)?,
    };
    let password = if args.password_stdin {
        prompt::password_from_stdin().map_err(Failure::failed)?
    } else {
        let first = ask_password("Password: ")?;
        let second = ask_password("Repeat the password: ")?;
        if first.expose_secret() != second.expose_secret() {
            return Err(Failure::failed("the two passwords differ; nothing was created"));
        }
        first
    };
    let client = ApiClient::new(server, None, insecure)?;
    let account = client.register(&email, &password).await?;
    say(&format!(
        "Created the account {} on {} (id {}). Run 'loom login' to log in.",
        account.email,
        client.server(),
        account.id
    ));
    Ok(())
}
