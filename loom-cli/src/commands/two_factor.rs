//! `loom 2fa enable | disable | recovery-codes`: two-factor login, from the terminal (as `npm
//! profile enable-2fa` does): a QR code for the authenticator app, its first code, then the
//! recovery codes, shown once.

use loom_cli::api::ApiError;
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use secrecy::ExposeSecret;

use super::{Context, read_password, say};
use crate::cli::{TwoFactorAction, TwoFactorArgs};
use crate::failure::Failure;
use crate::prompt;

/// How many first codes `enable` asks for before it gives up (the enrolment stays pending, and
/// `loom 2fa enable` starts a fresh one).
const FIRST_CODE_TRIES: usize = 3;

pub async fn run(context: &mut Context, args: TwoFactorArgs) -> Result<(), Failure> {
    context.require_password_login("Two-factor settings")?;
    match args.action {
        TwoFactorAction::Enable { password_stdin } => enable(context, password_stdin).await,
        TwoFactorAction::Disable { password_stdin, otp } => {
            let (password, code) = password_and_code(context, password_stdin, otp)?;
            context.with_login(async |client| client.disable_2fa(&password, &code).await).await?;
            say(&format!("Two-factor login is off for {}: logins need the password only", context.server.url));
            Ok(())
        }
        TwoFactorAction::RecoveryCodes { password_stdin, otp } => {
            let (password, code) = password_and_code(context, password_stdin, otp)?;
            let (codes, _) =
                context.with_login(async |client| client.renew_recovery_codes(&password, &code).await).await?;
            show_recovery_codes(&codes, "These are your new recovery codes; the old ones no longer work.");
            Ok(())
        }
    }
}

async fn enable(context: &mut Context, password_stdin: bool) -> Result<(), Failure> {
    if !prompt::has_terminal() {
        return Err(Failure::Usage(
            "turning on two-factor login needs a terminal, to show the QR code and ask for the app's first code".into(),
        ));
    }
    let password = read_password(password_stdin, &format!("Password for {}: ", context.server.url))?;
    let (enrolment, _) = context.with_login(async |client| client.enrol_2fa(&password).await).await?;
    let uri = enrolment.otpauth_uri.expose_secret();
    let qr = QrCode::new(uri.as_bytes()).map_err(|e| Failure::failed(format!("cannot draw the QR code: {e}")))?;
    let drawn =
        qr.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).quiet_zone(true).build();
    say("Scan this QR code with your authenticator app (Google Authenticator, Aegis, 1Password, ...):");
    say("");
    say(&drawn);
    say("");
    say(&format!("Or enter this key by hand: {}", enrolment.secret.expose_secret()));
    say(&format!("(The URI: {uri})"));
    let mut tries = 0;
    loop {
        let code = ask_code("there is no terminal to ask for the code")?;
        match context.with_login(async |client| client.confirm_2fa(&code).await).await {
            Ok(_) => break,
            Err(Failure::Failed(error)) if wrong_code(&error) && tries + 1 < FIRST_CODE_TRIES => {
                tries += 1;
                eprintln!("That code is wrong; enter the one the app shows now (its clock must be right).");
            }
            Err(other) => return Err(other),
        }
    }
    say("");
    say(&format!("Two-factor login is on for {}; your other sessions have ended.", context.server.url));
    show_recovery_codes(
        &enrolment.recovery_codes,
        "If you lose your phone, each of these recovery codes logs you in once.",
    );
    Ok(())
}

/// Whether a failed confirmation was a wrong code (the server's `400`).
fn wrong_code(error: &anyhow::Error) -> bool {
    matches!(error.downcast_ref::<ApiError>(), Some(ApiError::Rejected { status, .. }) if status.as_u16() == 400)
}

fn show_recovery_codes(codes: &[String], first_line: &str) {
    say("");
    say(first_line);
    say("Keep them somewhere safe, like a password manager: they are shown only this once.");
    say("");
    for pair in codes.chunks(2) {
        say(&format!("    {}", pair.join("    ")));
    }
}

/// The password (asked, or from standard input) and a code (`--otp`, or asked).
fn password_and_code(
    context: &Context,
    password_stdin: bool,
    otp: Option<String>,
) -> Result<(secrecy::SecretString, String), Failure> {
    let password = read_password(password_stdin, &format!("Password for {}: ", context.server.url))?;
    let code = match otp {
        Some(code) => code.trim().to_owned(),
        None => ask_code("there is no terminal to ask for the code: add --otp CODE")?,
    };
    Ok((password, code))
}

/// A code asked for on the terminal (a one-time code need not be hidden); without a terminal,
/// `no_terminal` as the failure (exit 4).
pub fn ask_code(no_terminal: &str) -> Result<String, Failure> {
    let asked = prompt::line("Authentication code (from your app, or a recovery code): ")
        .map_err(|e| Failure::failed(format!("cannot read the code: {e}")))?;
    match asked {
        Some(code) if !code.trim().is_empty() => Ok(code.trim().to_owned()),
        Some(_) => Err(Failure::Usage("no code given".into())),
        None => Err(Failure::LoginRequired(format!("{no_terminal}."))),
    }
}
