//! Asking the person at the terminal, on the terminal itself (`/dev/tty`), so
//! prompts work and stay out of the output even when stdout or stdin is piped.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};

use secrecy::SecretString;

/// The controlling terminal, or `None` when there is none (CI, cron, pipes only).
fn terminal() -> Option<File> {
    OpenOptions::new().read(true).write(true).open("/dev/tty").ok()
}

pub fn has_terminal() -> bool {
    terminal().is_some()
}

/// Asks for a line of text; `None` without a terminal.
pub fn line(prompt: &str) -> std::io::Result<Option<String>> {
    let Some(mut tty) = terminal() else { return Ok(None) };
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    let mut answer = String::new();
    BufReader::new(tty).read_line(&mut answer)?;
    Ok(Some(answer.trim().to_owned()))
}

/// Asks for a password without echoing it; `None` without a terminal.
pub fn password(prompt: &str) -> std::io::Result<Option<SecretString>> {
    if !has_terminal() {
        return Ok(None);
    }
    rpassword::prompt_password(prompt).map(|p| Some(SecretString::from(p)))
}

/// Reads a password from standard input, without its final line break.
pub fn password_from_stdin() -> Result<SecretString, String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let mut text =
        String::from_utf8(bytes).map_err(|_| "the password on standard input is not valid UTF-8".to_owned())?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err("no password on standard input".to_owned());
    }
    Ok(SecretString::from(text))
}
