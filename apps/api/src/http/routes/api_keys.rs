//! API keys for service-to-service use.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use iace_domain::{ApiKey, ApiKeyId, Role};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{PageParams, Paged};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{ApiPath, ApiQuery, Auth, Json};
use crate::http::state::AppState;

/// A role, as named on the wire.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    /// Read only.
    Viewer,
    /// Places calls, edits customers, personas, agents, experiments.
    Member,
    /// Also manages users and API keys.
    Admin,
    /// Everything.
    Owner,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Viewer => Self::Viewer,
            RoleName::Member => Self::Member,
            RoleName::Admin => Self::Admin,
            RoleName::Owner => Self::Owner,
        }
    }
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::Viewer => Self::Viewer,
            Role::Member => Self::Member,
            Role::Admin => Self::Admin,
            Role::Owner => Self::Owner,
        }
    }
}

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What it is for ("billing integration"), 1-100 characters.
    pub name: String,
    /// The role requests with this key act as (at most the creator's). Default `member`.
    pub role: Option<RoleName>,
    /// Optional expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An API key's metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// Role.
    pub role: RoleName,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last use (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyResponse {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.into_uuid(),
            name: k.name,
            prefix: k.prefix,
            role: k.role.into(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            expires_at: k.expires_at,
        }
    }
}

/// A created key: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key's metadata.
    #[serde(flatten)]
    pub key: ApiKeyResponse,
    /// The full key for `Authorization: Bearer`; store it now, it is never shown again.
    pub secret: String,
}

/// Creates an API key (admin).
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateApiKey,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "created; the secret is in the body", body = CreatedApiKey),
        (status = 403, description = "needs admin, or a role above the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_api_key(
    State(state): State<AppState>,
    Auth(who): Auth,
    Json(body): Json<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    if body.expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(ApiError::invalid(
            "expires_at",
            "in_the_past",
            "expiry must be in the future",
        ));
    }
    let role = body.role.map_or(Role::Member, Role::from);
    let issued = state
        .auth
        .create_api_key(&who, &body.name, role, body.expires_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            secret: issued.secret.expose_secret().to_owned(),
            key: issued.key.into(),
        }),
    ))
}

/// Lists the organisation's API keys (admin).
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "a page of keys", body = Paged<ApiKeyResponse>),
        (status = 403, description = "needs admin", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Paged<ApiKeyResponse>>> {
    let page = state.auth.list_api_keys(&who, params.to_request()?).await?;
    Ok(Json(Paged::from_page(page, ApiKeyResponse::from)))
}

/// Revokes an API key (admin). Requests with it fail from now on.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = uuid::Uuid, Path, description = "API key id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "revoked"),
        (status = 404, description = "no such key in the organisation", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    state
        .auth
        .revoke_api_key(&who, ApiKeyId::from_uuid(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
}
