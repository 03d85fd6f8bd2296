//! `loom register`

use loom_cli::api::ApiClient;
use secrecy::ExposeSecret;

use super::{Context, email_or_ask, read_password, say};
use crate::cli::RegisterArgs;
use crate::failure::Failure;

pub async fn run(context: &Context, args: RegisterArgs) -> Result<(), Failure> {
    let client = ApiClient::new(&context.server.url, None, context.insecure)?;
    // A password goes only where this user said, as for a login.
    context.server.confirm_for_password(&context.known)?;
    let email = email_or_ask(args.email, "--email", args.password_stdin)?;
    let password = read_password(args.password_stdin, "Password: ")?;
    if !args.password_stdin {
        let again = read_password(false, "Repeat the password: ")?;
        if password.expose_secret() != again.expose_secret() {
            return Err(Failure::failed("the two passwords differ; nothing was created"));
        }
    }
    let account = client.register(&email, &password).await?;
    say(&format!(
        "Created the account {} on {} (id {}). Run 'loom login' to log in.",
        account.email,
        client.server(),
        account.id
    ));
    Ok(())
}
