//! `GET /sessions`: the caller's live sessions; `DELETE /sessions/{id}`: end one of them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::docs::ErrorBody;
use super::{ApiError, ClientAddr, PasswordLogin};
use crate::state::AppState;
use crate::store::SessionRow;
use crate::telemetry::audit::{self, Event};
use crate::tokens::unix_now;

/// A live session, as its owner sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionOut {
    /// The session's id, for `DELETE /sessions/{id}`.
    #[schema(example = "3f9a1c2b5d7e9f0a1b2c3d4e5f607182")]
    id: String,
    /// The client it was started through.
    #[schema(example = "loom")]
    client_id: String,
    /// When it was started (a password login), RFC 3339.
    #[schema(example = "2026-11-29T10:00:00Z")]
    created_at: String,
    /// When it was last started or refreshed, RFC 3339.
    #[schema(example = "2026-11-29T12:30:00Z")]
    last_used_at: String,
    /// The client address it was last used from.
    #[schema(example = "203.0.113.7")]
    address: String,
    /// The `User-Agent` it was last used with.
    #[schema(example = "loom/0.1.0")]
    user_agent: String,
    /// How its login was made (RFC 8176): `["pwd"]`, or `["pwd", "otp"]` with a second factor.
    #[schema(example = json!(["pwd", "otp"]))]
    amr: Vec<String>,
    /// Whether it is the session of the token this request was made with.
    current: bool,
}

/// A Unix time as RFC 3339, UTC, to the second: how the API writes times.
pub(super) fn rfc3339(unix: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

impl SessionOut {
    fn new(row: SessionRow, current: Option<&str>) -> Self {
        Self {
            current: current == Some(row.id.as_str()),
            amr: row.amr.split_whitespace().map(str::to_owned).collect(),
            created_at: rfc3339(row.created_at),
            last_used_at: rfc3339(row.last_used_at),
            id: row.id,
            client_id: row.client_id,
            address: row.last_address,
            user_agent: row.last_user_agent,
        }
    }
}

/// The caller's live sessions, most recently used first.
#[utoipa::path(
    get,
    path = "/sessions",
    operation_id = "list_sessions",
    tag = "sessions",
    security(("OAuth2PasswordBearer" = [])),
    responses(
        (status = 200, description = "The live sessions, most recently used first", body = [SessionOut]),
        (status = 401, description = "No token, or one that is invalid, expired or revoked", body = ErrorBody,
         headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` for a bad token"))),
        (status = 403, description = "Needs a password login: the caller is a personal access token, or was \
                                      exchanged from one", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; try again", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    PasswordLogin(current): PasswordLogin,
) -> Result<Json<Vec<SessionOut>>, ApiError> {
    let rows = state.store.live_sessions(current.user.id, unix_now()).await?;
    Ok(Json(rows.into_iter().map(|row| SessionOut::new(row, current.session())).collect()))
}

/// End one of the caller's sessions (the refresh token and the access tokens it had).
#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    operation_id = "end_session",
    tag = "sessions",
    security(("OAuth2PasswordBearer" = [])),
    params(("id" = String, Path, description = "The session's id, as `GET /sessions` lists it")),
    responses(
        (status = 204, description = "Ended; every host refuses its tokens from its next request on"),
        (status = 401, description = "No token, or one that is invalid, expired or revoked", body = ErrorBody,
         headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` for a bad token"))),
        (status = 403, description = "Needs a password login: the caller is a personal access token, or was \
                                      exchanged from one", body = ErrorBody),
        (status = 404, description = "The caller has no live session with this id", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; try again", body = ErrorBody),
    )
)]
pub async fn end(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    PasswordLogin(current): PasswordLogin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    // Another account's session is as unknown as one that never was: whose it is stays unsaid.
    if !state.store.revoke_session(&id, Some(current.user.id), unix_now()).await? {
        return Err(ApiError::NoSuchSession);
    }
    audit::record(Event::SessionRevoked { user_id: current.user.id, client: Some(client), how: "delete", count: 1 });
    Ok(StatusCode::NO_CONTENT)
}
