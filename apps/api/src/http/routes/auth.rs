//! Sign-in, token refresh and revocation, and `GET /v1/me`.

use axum::extract::State;
use axum::http::StatusCode;
use iace_app::auth::{Subject, TokenPair};
use iace_domain::Email;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{Auth, Json};
use crate::http::state::AppState;

/// E-mail and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user's e-mail.
    #[schema(example = "owner@example.com")]
    pub email: String,
    /// The password.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

/// A refresh token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The opaque refresh token from sign-in or the last refresh.
    pub refresh_token: String,
}

/// Issued tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque refresh token (rotated on every use).
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

impl From<TokenPair> for TokenResponse {
    fn from(p: TokenPair) -> Self {
        Self {
            access_token: p.access_token,
            token_type: p.token_type.to_owned(),
            expires_in: p.expires_in,
            refresh_token: p.refresh_token,
            refresh_expires_in: p.refresh_expires_in,
        }
    }
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// The organisation.
    pub org_id: uuid::Uuid,
    /// Its name.
    pub org_name: String,
    /// Its plan (`free`, `pro`, `enterprise`).
    pub plan: String,
    /// The caller's role.
    pub role: String,
    /// `user` or `api_key`.
    pub kind: String,
    /// The user's id (users only).
    pub user_id: Option<uuid::Uuid>,
    /// The user's e-mail (users only).
    pub email: Option<String>,
    /// The API key's id (API keys only).
    pub api_key_id: Option<uuid::Uuid>,
}

/// Signs in; returns an access token (15 min) and a refresh token (7 days).
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "signed in", body = TokenResponse),
        (status = 401, description = "wrong e-mail or password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "malformed request", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many sign-in attempts for this account (`too_many_login_attempts`; see `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    // A malformed e-mail cannot belong to anyone: same answer as a wrong one.
    let Ok(email) = Email::parse(&body.email) else {
        return Err(iace_app::AppError::Unauthenticated {
            code: "invalid_credentials",
        }
        .into());
    };
    state.limits.check_login(&email).await?;
    let tokens = state
        .auth
        .login(&email, &SecretString::from(body.password))
        .await?;
    Ok(Json(tokens.into()))
}

/// Exchanges a refresh token for a new pair. The old refresh token stops
/// working; presenting it again revokes the whole session.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "new tokens", body = TokenResponse),
        (status = 401, description = "invalid, expired or reused token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    Ok(Json(state.auth.refresh(&body.refresh_token).await?.into()))
}

/// Revokes a refresh token's session (sign out). Idempotent.
#[utoipa::path(post, path = "/v1/auth/revoke", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "revoked")))]
pub async fn revoke(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    state.auth.revoke(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller: organisation, role, and user or API key.
#[utoipa::path(get, path = "/v1/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller", body = MeResponse),
        (status = 401, description = "not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<MeResponse>> {
    let (org, user) = state.auth.me(&principal).await?;
    let (kind, api_key_id) = match principal.subject {
        Subject::User(_) => ("user", None),
        Subject::ApiKey(id) => ("api_key", Some(id.into_uuid())),
    };
    Ok(Json(MeResponse {
        org_id: org.id.into_uuid(),
        org_name: org.name,
        plan: org.plan.as_str().to_owned(),
        role: principal.role.as_str().to_owned(),
        kind: kind.to_owned(),
        user_id: user.as_ref().map(|u| u.id.into_uuid()),
        email: user.map(|u| u.email.as_str().to_owned()),
        api_key_id,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(revoke))
        .routes(routes!(me))
}
