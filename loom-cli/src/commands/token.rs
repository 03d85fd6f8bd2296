//! `loom token`

use secrecy::ExposeSecret;

use super::{Context, say};
use crate::failure::Failure;

/// Prints a current access token, refreshing the saved login first when it must be (as
/// `gh auth token` does), or `LOOM_TOKEN` while it has not expired.
pub async fn run(context: &mut Context) -> Result<(), Failure> {
    say(context.token_to_print().await?.expose_secret());
    Ok(())
}
