//! Which client is asking at the OAuth endpoints (`/token`, `/revoke`): a `client_id` in the
//! form, or HTTP Basic client authentication with an empty secret (RFC 6749 §2.3.1), which
//! OAuth libraries send by default (authlib, requests-oauthlib). Loom's clients are public
//! (RFC 6749 §2.1): there are no client secrets, so a secret is refused, never ignored.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::ApiError;

/// The `client_id` a token names when the request gives none.
pub const DEFAULT_CLIENT: &str = "loom";
/// Refuses a `client_secret` sent in a form: there are no client secrets, and one sent is
/// refused, never ignored (as in an HTTP Basic header).
pub fn no_form_secret(secret: Option<&secrecy::SecretString>) -> Result<(), ApiError> {
    match secret {
        Some(_) => {
            Err(ApiError::InvalidClient("this server issues no client secrets: send the client_id alone".into()))
        }
        None => Ok(()),
    }
}

/// Longest `client_id` accepted, in (printable ASCII) characters.
pub const MAX_CLIENT_ID: usize = 128;

/// The client named by an `Authorization: Basic` header, if the request has one; its secret
/// must be empty.
pub fn basic_client(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = super::extract::one_authorization(headers)? else { return Ok(None) };
    let value = value.as_bytes();
    let Some(encoded) = value.strip_prefix(b"Basic ").or_else(|| value.strip_prefix(b"basic ")) else {
        return Ok(None);
    };
    let decoded = STANDARD.decode(encoded.trim_ascii()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    // Both halves are form-encoded before base64 (RFC 6749 §2.3.1).
    let (id, secret) = (form_decode(id), form_decode(secret));
    match (id.is_empty(), secret.is_empty()) {
        // `Basic Og==` (":"), as Swagger UI sends when no client is set: no client at all.
        (true, true) => Ok(None),
        (false, true) => Ok(Some(id)),
        (_, false) => {
            Err(ApiError::InvalidClient("this server issues no client secrets: send the client_id alone".into()))
        }
    }
}

/// The client a request names: in the form or the Basic header (the same when both), else
/// [`DEFAULT_CLIENT`]; at most [`MAX_CLIENT_ID`] printable ASCII characters.
pub fn client_id(form: Option<&str>, basic: Option<&str>) -> Result<String, ApiError> {
    let id = match (form, basic) {
        (Some(form), Some(basic)) if form != basic => {
            return Err(ApiError::Validation(
                "client_id in the form differs from the client in the Authorization header".into(),
            ));
        }
        (given, basic) => basic.or(given).unwrap_or(DEFAULT_CLIENT),
    };
    if id.len() > MAX_CLIENT_ID || !id.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(ApiError::Validation(format!(
            "client_id must be at most {MAX_CLIENT_ID} printable ASCII characters"
        )));
    }
    Ok(id.to_owned())
}

fn malformed() -> ApiError {
    ApiError::InvalidClient("the Authorization header is not HTTP Basic client_id:secret".into())
}

fn form_decode(text: &str) -> String {
    form_urlencoded::parse(format!("x={text}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> Result<Option<String>, ApiError> {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(credentials));
        headers.insert(axum::http::header::AUTHORIZATION, value.parse().unwrap());
        basic_client(&headers)
    }

    #[test]
    fn basic_with_an_empty_secret_names_the_client() {
        assert_eq!(basic("my-app:").unwrap().as_deref(), Some("my-app"));
        assert_eq!(basic("my%20app%3A1:").unwrap().as_deref(), Some("my app:1"));
        assert!(matches!(basic("my-app:s3cret"), Err(ApiError::InvalidClient(_))));
        assert_eq!(basic(":").unwrap(), None, "Swagger UI's empty client");
        assert!(matches!(basic(":s3cret"), Err(ApiError::InvalidClient(_))));
        assert!(matches!(basic("no-colon"), Err(ApiError::InvalidClient(_))));
        assert_eq!(basic_client(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn the_form_and_the_header_must_agree() {
        assert_eq!(client_id(None, None).unwrap(), DEFAULT_CLIENT);
        assert_eq!(client_id(Some("cli"), None).unwrap(), "cli");
        assert_eq!(client_id(None, Some("app")).unwrap(), "app");
        assert_eq!(client_id(Some("app"), Some("app")).unwrap(), "app");
        assert!(client_id(Some("cli"), Some("app")).is_err());
        assert!(client_id(Some(&"x".repeat(129)), None).is_err());
        assert!(client_id(Some("tab\there"), None).is_err());
    }
}
