//! The caller's organisation: `GET /v1/org` (its plan follows billing).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{Auth, Json};
use crate::http::state::AppState;

/// An organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// `free`, `pro` or `enterprise`: set by billing, it selects the limits.
    pub plan: String,
    /// Whether a billing customer is linked (after a completed checkout).
    pub billing_linked: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// The caller's organisation.
#[utoipa::path(get, path = "/v1/org", tag = "org", security(("bearer" = [])),
    responses(
        (status = 200, description = "the organisation", body = OrgResponse),
        (status = 401, description = "not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_org(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<OrgResponse>> {
    let org = state.billing.organisation(&principal).await?;
    Ok(Json(OrgResponse {
        id: org.id.into_uuid(),
        name: org.name,
        plan: org.plan.as_str().to_owned(),
        billing_linked: org.billing_customer_ref.is_some(),
        created_at: org.created_at,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_org))
}
