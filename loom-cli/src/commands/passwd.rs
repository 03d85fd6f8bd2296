//! `loom passwd`

use loom_cli::password::normalize;
use secrecy::{ExposeSecret, SecretString};

use super::{Context, read_password, say};
use crate::cli::PasswdArgs;
use crate::failure::Failure;
use crate::prompt;

/// Changes the account's password: asks for the current one and the new one twice (hidden), or
/// reads the current and the new password as two lines of standard input.
pub async fn run(context: &mut Context, args: PasswdArgs) -> Result<(), Failure> {
    context.require_password_login("Changing the password")?;
    let (current, new) = if args.password_stdin {
        two_lines_from_stdin()?
    } else {
        let current = read_password(false, "Current password: ")?;
        let new = read_password(false, "New password: ")?;
        let again = read_password(false, "Repeat the new password: ")?;
        if new.expose_secret() != again.expose_secret() {
            return Err(Failure::failed("the two new passwords differ; nothing was changed"));
        }
        (current, new)
    };
    let ((), authorized) = context.with_login(async |client| client.change_password(&current, &new).await).await?;
    say(&format!(
        "Changed the password on {} (token from {}); every other session of the account has ended",
        context.server.url,
        authorized.source.describe()
    ));
    super::tokens::say_tokens_stay(context.live_pats().await);
    Ok(())
}

/// The current password, then the new one, a line each, on standard input.
fn two_lines_from_stdin() -> Result<(SecretString, SecretString), Failure> {
    let both = prompt::password_from_stdin().map_err(Failure::failed)?;
    let mut lines = both.expose_secret().split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line));
    match (lines.next(), lines.next(), lines.next()) {
        (Some(current), Some(new), None) if !current.is_empty() && !new.is_empty() => {
            Ok((normalize(&SecretString::from(current.to_owned())), normalize(&SecretString::from(new.to_owned()))))
        }
        _ => Err(Failure::Usage("--password-stdin takes two lines: the current password, then the new one".into())),
    }
}
