//! Extractors: JSON and form bodies whose rejections speak `{"detail"}`, and the
//! authenticated user, so a handler that takes [`CurrentUser`] cannot forget the check.

use axum::extract::rejection::JsonRejection;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ApiError;
use crate::accounts::pats::{self, Credential};
use crate::runtime::Claims;
use crate::state::AppState;
use crate::store::User;

/// A JSON object body (`Json<T>`, but an array is no substitute for an object),
/// where every rejection is a 422 (or 413) with a `detail`, as FastAPI answers.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let object = match axum::Json::<Map<String, Value>>::from_request(req, state).await {
            Ok(axum::Json(object)) => object,
            Err(rejection) => return Err(body_error(rejection.status(), || json_detail(&rejection))),
        };
        serde_json::from_value(Value::Object(object))
            .map(Self)
            .map_err(|e| ApiError::Validation(format!("Invalid request body: {}", without_values(&e.to_string()))))
    }
}

/// A URL-encoded form body, read as OAuth 2.0 reads its requests (RFC 6749 §3.1–3.2): the
/// media type in any case (RFC 9110 §8.3.1), a parameter sent without a value as if it were
/// omitted, a parameter of the form sent twice refused, one it does not know ignored.
/// Rejections as [`ApiJson`]'s.
pub struct ApiForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_form(req.headers()) {
            return Err(ApiError::Validation(
                "Expected a form body (Content-Type: application/x-www-form-urlencoded)".into(),
            ));
        }
        let body = match axum::body::Bytes::from_request(req, state).await {
            Ok(body) => body,
            Err(rejection) => return Err(body_error(rejection.status(), || rejection.body_text())),
        };
        // Empty values are dropped first; a field of the form sent twice with a value is then
        // refused by its deserializer ("duplicate field"), and an unknown one is ignored.
        let mut given = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form_urlencoded::parse(&body) {
            if !value.is_empty() {
                given.append_pair(&name, &value);
            }
        }
        serde_urlencoded::from_str(&given.finish())
            .map(Self)
            .map_err(|e| ApiError::Validation(format!("Invalid form: {e}")))
    }
}

/// Whether the request says its body is a URL-encoded form, in any case, with any parameters.
fn is_form(headers: &axum::http::HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// serde's message without the value it quotes (`invalid type: integer `12345678`, expected a
/// string` becomes `invalid type: integer, expected a string`): a field may be a password.
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((unexpected, expected)) = rest.split_once(", expected ")
        {
            let kind = unexpected.split(['`', '"']).next().unwrap_or_default().trim();
            return format!("{prefix}{kind}, expected {expected}");
        }
    }
    message.to_owned()
}

fn body_error(status: StatusCode, detail: impl FnOnce() -> String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE { ApiError::PayloadTooLarge } else { ApiError::Validation(detail()) }
}

fn json_detail(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => "Expected a JSON body (Content-Type: application/json)".into(),
        JsonRejection::JsonSyntaxError(_) => "Request body is not valid JSON".into(),
        JsonRejection::JsonDataError(_) => "Request body must be a JSON object".into(),
        other => other.body_text(),
    }
}

/// The client's address: the socket peer, or the address a trusted proxy
/// forwarded (see [`crate::accounts::throttle::ThrottlePolicy::client_address`]).
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the server did not record the peer address")))?;
        let forwarded_for = parts.headers.get_all("x-forwarded-for").iter();
        Ok(Self(state.throttle.client_address(peer.ip(), forwarded_for)))
    }
}

/// The user a valid bearer token names, with how it authenticated. Extracting it is the
/// authentication check, on every request: for an access token, signature, times and issuer
/// (the component), then the account's state and the token's session or personal access token
/// (the store), in one query; for a personal access token (`loom_pat_…`), its checksum, then
/// one lookup by digest.
pub struct CurrentUser {
    pub user: User,
    /// The access token's claims; `None` when the bearer is a personal access token.
    pub claims: Option<Claims>,
    /// A password login's session, or a personal access token.
    pub credential: Credential,
}

impl CurrentUser {
    /// The session the token belongs to: `None` for a token from before sessions, or a
    /// personal access token's.
    pub fn session(&self) -> Option<&str> {
        self.credential.session()
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        let now = crate::tokens::unix_now();
        if pats::is_pat(token) {
            let token = zeroize::Zeroizing::new(token.to_vec());
            let ClientAddr(client) = ClientAddr::from_request_parts(parts, state).await?;
            let address = crate::accounts::throttle::address_key(client);
            let standing = pats::presented(&state.store, &token, now, &address).await.map_err(refused)?;
            // A personal access token is a login each time it is used: the policy decides on it.
            let asker = crate::accounts::policy::Asker { address: client, now };
            let methods = [pats::PAT_METHOD];
            let client_id = super::client_auth::DEFAULT_CLIENT;
            crate::accounts::policy::login(state.policy(), &standing.user, client_id, &methods, asker).await?;
            let credential = Credential::Pat { id: standing.id };
            return Ok(Self { user: standing.user, claims: None, credential });
        }
        let claims = state.tokens.verify(&state.runtime, token).await?;
        let id: i64 = claims.sub.parse().map_err(|_| ApiError::InvalidToken)?;
        let session = crate::accounts::sessions::sid_of(&claims.extra).map_err(|_| ApiError::InvalidToken)?;
        let sid = session.as_deref().unwrap_or_default();
        let standing = state.store.standing(id, &claims.jti, sid, now).await?;
        let stands = |s: &crate::store::Standing| match &session {
            // A session's token stands while its session (or personal access token) does: no
            // clock comparison.
            Some(_) => s.session_live,
            // A token from before sessions: not revoked, not older than a "log out everywhere".
            None => !s.revoked && claims.iat >= s.tokens_valid_after,
        };
        match standing {
            Some(standing) if standing.user.is_active && stands(&standing) => {
                let credential = Credential::of_sid(session);
                Ok(Self { user: standing.user, claims: Some(claims), credential })
            }
            _ => Err(ApiError::InvalidToken),
        }
    }
}

/// A presented personal access token's refusal, as the API answers it.
pub fn refused(refusal: pats::Refused) -> ApiError {
    match refusal {
        pats::Refused::Malformed | pats::Refused::Unknown => ApiError::PatRefused(refusal.to_string()),
        pats::Refused::Ended(ended) => ApiError::PatRefused(ended.to_string()),
        pats::Refused::Store(error) => error.into(),
    }
}

/// The caller, when it logged in with a password: what managing credentials needs (making or
/// listing tokens, changing the password, listing or ending sessions). A personal access
/// token, or an access token exchanged from one, is refused with `403`.
pub struct PasswordLogin(pub CurrentUser);

impl FromRequestParts<AppState> for PasswordLogin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        if !current.credential.may_manage_credentials() {
            return Err(ApiError::NeedsPasswordLogin);
        }
        Ok(Self(current))
    }
}

/// The credentials of an `Authorization: Bearer <token>` header, as raw bytes
/// (the component judges them). `NotAuthenticated` when there is no bearer header at all;
/// `MalformedAuthorization` when it names no token (RFC 6750 §3.1 `invalid_request`).
fn bearer_token(parts: &Parts) -> Result<&[u8], ApiError> {
    let value = one_authorization(&parts.headers)?.ok_or(ApiError::NotAuthenticated)?.as_bytes();
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ').unwrap_or(value.len()));
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(ApiError::NotAuthenticated);
    }
    match rest.trim_ascii() {
        [] => Err(ApiError::MalformedAuthorization("The Authorization header names no bearer token")),
        token => Ok(token),
    }
}

/// The request's `Authorization` header, if it has one; more than one is refused, so no part
/// of the request is read one way here and another way elsewhere.
pub fn one_authorization(headers: &axum::http::HeaderMap) -> Result<Option<&axum::http::HeaderValue>, ApiError> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    match (all.next(), all.next()) {
        (first, None) => Ok(first),
        (Some(_), Some(_)) => Err(ApiError::MalformedAuthorization("Send one Authorization header, not several")),
        (None, Some(_)) => unreachable!("a second header without a first"),
    }
}

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn validation_messages_never_quote_the_value_sent() {
        assert_eq!(
            without_values("invalid type: integer `12345678`, expected a string at line 1 column 30"),
            "invalid type: integer, expected a string at line 1 column 30"
        );
        assert_eq!(
            without_values(r#"invalid type: string "hunter2 secret", expected a boolean"#),
            "invalid type: string, expected a boolean"
        );
        assert_eq!(
            without_values("invalid type: floating point `1.5`, expected a string"),
            "invalid type: floating point, expected a string"
        );
        assert_eq!(without_values("missing field `email`"), "missing field `email`");
    }
}
