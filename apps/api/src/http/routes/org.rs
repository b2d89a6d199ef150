//! The caller's organisation: `GET /v1/org` (its plan follows billing) and
//! its telephony settings, `GET`/`PUT /v1/org/telephony`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use iace_app::{AppError, FieldError};
use iace_domain::{PhoneNumber, TelephonySettings};
use serde::{Deserialize, Serialize};
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

/// How the organisation's calls are placed and answered.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TelephonyBody {
    /// The numbers it answers on (E.164); an inbound call to one of them is
    /// its call. Each belongs to one organisation at most (at most 100).
    #[serde(default)]
    pub numbers: Vec<String>,
    /// Its Telnyx Call Control application id, when not the deployment's.
    #[serde(default)]
    pub connection_id: Option<String>,
    /// Where the provider streams call audio (`wss://…`), when not the
    /// deployment's.
    #[serde(default)]
    pub media_base_url: Option<String>,
    /// Said when a machine answers an outbound call; absent falls back to the
    /// deployment's default (`[calls] voicemail_message`, else hang up).
    #[serde(default)]
    pub voicemail_message: Option<String>,
}

impl From<TelephonySettings> for TelephonyBody {
    fn from(s: TelephonySettings) -> Self {
        Self {
            numbers: s.numbers.iter().map(|n| n.as_str().to_owned()).collect(),
            connection_id: s.connection_id,
            media_base_url: s.media_base_url,
            voicemail_message: s.voicemail_message,
        }
    }
}

/// The organisation's telephony settings.
#[utoipa::path(get, path = "/v1/org/telephony", tag = "org", security(("bearer" = [])),
    responses(
        (status = 200, description = "the settings", body = TelephonyBody),
        (status = 401, description = "not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_telephony(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<TelephonyBody>> {
    Ok(Json(state.orgs.telephony(&principal).await?.into()))
}

/// Replaces the organisation's telephony settings (admin).
#[utoipa::path(put, path = "/v1/org/telephony", tag = "org", security(("bearer" = [])),
    request_body = TelephonyBody,
    responses(
        (status = 200, description = "the settings now", body = TelephonyBody),
        (status = 401, description = "not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "admins only", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`number_taken`: a number belongs to another organisation", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_telephony(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(body): Json<TelephonyBody>,
) -> ApiResult<Json<TelephonyBody>> {
    principal.require(iace_domain::Role::Admin)?;
    let mut numbers = Vec::with_capacity(body.numbers.len());
    let mut errors = Vec::new();
    for (i, raw) in body.numbers.iter().enumerate() {
        match PhoneNumber::parse(raw) {
            Ok(number) => numbers.push(number),
            Err(err) => errors.push(FieldError::new(
                format!("numbers[{i}]"),
                "invalid_phone",
                err.to_string(),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation { errors }.into());
    }
    let settings = TelephonySettings {
        numbers,
        connection_id: body.connection_id,
        media_base_url: body.media_base_url,
        voicemail_message: body.voicemail_message,
    };
    Ok(Json(
        state.orgs.set_telephony(&principal, settings).await?.into(),
    ))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_org))
        .routes(routes!(get_telephony, put_telephony))
}
