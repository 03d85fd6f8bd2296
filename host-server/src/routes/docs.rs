//! The API's own description: OpenAPI 3.1 generated from the handlers' annotations, so it
//! cannot drift from the routes (`GET /openapi.json`), and Swagger UI over it (`GET /docs`),
//! served from the binary: nothing is fetched from anywhere at build or run time.

use utoipa::openapi::security::{Flow, OAuth2, Password, Scopes, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// The security scheme the protected routes name.
pub const SCHEME: &str = "OAuth2PasswordBearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Loom Auth",
        description = "User accounts and JWT login for Loom. Register with `POST /users/`, log in with the OAuth2 \
                       password form at `POST /token`, and send the token as `Authorization: Bearer <token>`. \
                       Every error is `{\"detail\": ...}`; `/token`'s errors add RFC 6749's `error` fields."
    ),
    modifiers(&PasswordFlow),
    tags(
        (name = "accounts", description = "Registration, login, the current user, logout"),
        (name = "sessions", description = "Sessions: see them, end them, change the password"),
        (name = "tokens", description = "Personal access tokens for CI and other machines: make, list, revoke"),
        (name = "two-factor", description = "Two-factor login: one-time codes from an authenticator app, recovery codes"),
        (name = "keys", description = "Discovery for services that check Loom tokens: the public keys, the metadata"),
        (name = "operations", description = "Liveness and readiness, for orchestrators and load balancers")
    )
)]
pub struct ApiDoc;

/// The OAuth2 password flow against `/token`, so the docs page's "Authorize" button logs in.
struct PasswordFlow;

impl Modify for PasswordFlow {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let flow = Flow::Password(Password::with_refresh_url("/token", Scopes::new(), "/token"));
        components.add_security_scheme(SCHEME, SecurityScheme::OAuth2(OAuth2::new([flow])));
    }
}

/// Every error: what went wrong, in one sentence.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the JSON `ApiError` writes
pub struct ErrorBody {
    /// What went wrong, in one sentence.
    detail: String,
}

/// An error at `/token`: `detail` as everywhere, plus RFC 6749 §5.2's fields.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the JSON `OAuthError` writes
pub struct OAuthErrorBody {
    #[schema(example = "Incorrect username or password")]
    detail: String,
    /// `invalid_request`, `invalid_grant`, `invalid_client`, `unsupported_grant_type`, `temporarily_unavailable`
    /// or `server_error`.
    #[schema(example = "invalid_grant")]
    error: String,
    #[schema(example = "Incorrect username or password")]
    error_description: String,
}

/// Swagger UI at `/docs` over the document at `/openapi.json`.
pub fn swagger_ui(api: utoipa::openapi::OpenApi) -> SwaggerUi {
    // No validator badge: it would send the document to validator.swagger.io.
    let config = Config::new(["/openapi.json"]).validator_url("none").persist_authorization(false);
    SwaggerUi::new("/docs").url("/openapi.json", api).config(config)
}
