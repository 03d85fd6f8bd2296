//! Extractors: JSON and form bodies whose rejections speak `{"detail"}`, and the
//! authenticated user, so a handler that takes [`CurrentUser`] cannot forget the check.

use axum::extract::rejection::{FormRejection, JsonRejection};
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ApiError;
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
            .map_err(|e| ApiError::Validation(format!("Invalid request body: {e}")))
    }
}

/// `Form<T>` (URL-encoded), with the same rejections as [`ApiJson`].
pub struct ApiForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(rejection) => Err(body_error(rejection.status(), || form_detail(&rejection))),
        }
    }
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

fn form_detail(rejection: &FormRejection) -> String {
    match rejection {
        FormRejection::InvalidFormContentType(_) => {
            "Expected a form body (Content-Type: application/x-www-form-urlencoded)".into()
        }
        FormRejection::FailedToDeserializeForm(e) => format!("Invalid form: {}", e.body_text()),
        FormRejection::FailedToDeserializeFormBody(e) => format!("Invalid form: {}", e.body_text()),
        other => other.body_text(),
    }
}

/// The client's address: the socket peer, or the address a trusted proxy
/// forwarded (see [`crate::throttle::ThrottlePolicy::client_address`]).
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

/// The user a valid bearer token names, with the token's claims. Extracting it
/// is the authentication check: signature, times and issuer (the component),
/// then revocation and the account's state (the store), on every request.
pub struct CurrentUser(pub User, pub Claims);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or(ApiError::NotAuthenticated)?;
        let claims = state.runtime.verify_token(&state.token_settings(), token).await?;
        let id: i64 = claims.sub.parse().map_err(|_| ApiError::InvalidToken)?;
        match state.store.session(id, &claims.jti).await? {
            Some(session) if session.user.is_active && !session.revoked && claims.iat >= session.tokens_valid_after => {
                Ok(Self(session.user, claims))
            }
            _ => Err(ApiError::InvalidToken),
        }
    }
}

/// The credentials of an `Authorization: Bearer <token>` header, as raw bytes
/// (the component judges them). `None` when there is no bearer header at all.
fn bearer_token(parts: &Parts) -> Option<&[u8]> {
    let value = parts.headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ').unwrap_or(value.len()));
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    Some(rest.trim_ascii())
}
