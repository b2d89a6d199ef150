//! Human agents: CRUD and availability.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use iace_app::agents::{self, AgentInput, DEFAULT_CONCURRENT_CALLS};
use iace_app::{AppError, FieldError};
use iace_domain::{AgentId, Availability, Email, HumanAgent, PhoneNumber, Skill};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{PageParams, Paged};
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiPath, ApiQuery, Auth, Json};
use crate::http::state::AppState;

/// Whether an agent takes calls now.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentAvailability {
    /// Signed in and taking calls.
    Available,
    /// Signed in, temporarily not taking calls.
    Away,
    /// Not signed in.
    Offline,
}

impl From<AgentAvailability> for Availability {
    fn from(a: AgentAvailability) -> Self {
        match a {
            AgentAvailability::Available => Self::Available,
            AgentAvailability::Away => Self::Away,
            AgentAvailability::Offline => Self::Offline,
        }
    }
}

impl From<Availability> for AgentAvailability {
    fn from(a: Availability) -> Self {
        match a {
            Availability::Available => Self::Available,
            Availability::Away => Self::Away,
            Availability::Offline => Self::Offline,
        }
    }
}

/// A human agent as sent by clients (create and full replace). At least one of
/// `phone` and `sip_uri` is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRequest {
    /// Display name, 1-100 characters.
    #[schema(example = "Ana Lima")]
    pub name: String,
    /// Contact e-mail.
    #[schema(example = "ana@example.com")]
    pub email: Option<String>,
    /// Phone number transfers are sent to; E.164 or an international form.
    #[schema(example = "+14155550123")]
    pub phone: Option<String>,
    /// SIP URI transfers are sent to (`sip:` or `sips:`, at most 255 characters).
    #[schema(example = "sip:ana@pbx.example.com")]
    pub sip_uri: Option<String>,
    /// Skill names: lower-case letters, digits, `-` and `_`, 1-64 long.
    #[schema(example = json!(["billing", "spanish"]))]
    pub skills: Option<Vec<String>>,
    /// Most calls handled at once, 1-50 (default 1).
    #[schema(example = 2, minimum = 1, maximum = 50)]
    pub max_concurrent_calls: Option<i64>,
}

impl AgentRequest {
    /// Parses every field, reporting all invalid ones at once.
    fn parse(self) -> Result<AgentInput, AppError> {
        let mut errors: Vec<FieldError> = Vec::new();
        errors.extend(agents::check_name(&self.name));
        let email = match self.email.as_deref() {
            Some(raw) => Email::parse(raw)
                .map_err(|e| errors.push(FieldError::new("email", "invalid_email", e.to_string())))
                .ok(),
            None => None,
        };
        let phone = match self.phone.as_deref() {
            Some(raw) => PhoneNumber::parse(raw)
                .map_err(|e| errors.push(FieldError::new("phone", "invalid_phone", e.to_string())))
                .ok(),
            None => None,
        };
        let sip_uri = self.sip_uri.map(|uri| uri.trim().to_owned());
        if let Some(uri) = &sip_uri {
            errors.extend(agents::check_sip_uri(uri));
        }
        if self.phone.is_none() && sip_uri.is_none() {
            errors.extend(agents::unreachable_errors());
        }
        let mut skills = BTreeSet::new();
        for (i, raw) in self.skills.unwrap_or_default().iter().enumerate() {
            match Skill::parse(raw) {
                Ok(skill) => {
                    skills.insert(skill);
                }
                Err(e) => errors.push(FieldError::new(
                    format!("skills[{i}]"),
                    "invalid_skill",
                    e.to_string(),
                )),
            }
        }
        let max = self
            .max_concurrent_calls
            .unwrap_or(i64::from(DEFAULT_CONCURRENT_CALLS));
        errors.extend(agents::check_max_concurrent_calls(max));
        match u32::try_from(max) {
            Ok(max_concurrent_calls) if errors.is_empty() => Ok(AgentInput {
                name: self.name,
                email,
                phone,
                sip_uri,
                skills,
                max_concurrent_calls,
            }),
            _ => Err(AppError::Validation { errors }),
        }
    }
}

/// A change of availability.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRequest {
    /// The new availability.
    #[schema(example = "available")]
    pub availability: AgentAvailability,
}

/// A human agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// Display name.
    #[schema(example = "Ana Lima")]
    pub name: String,
    /// Contact e-mail.
    #[schema(example = "ana@example.com")]
    pub email: Option<String>,
    /// E.164 phone number transfers are sent to.
    #[schema(example = "+14155550123")]
    pub phone: Option<String>,
    /// SIP URI transfers are sent to.
    #[schema(example = "sip:ana@pbx.example.com")]
    pub sip_uri: Option<String>,
    /// Skill names, sorted.
    #[schema(example = json!(["billing", "spanish"]))]
    pub skills: Vec<String>,
    /// Whether the agent takes calls now.
    pub availability: AgentAvailability,
    /// Most calls handled at once.
    #[schema(example = 2)]
    pub max_concurrent_calls: u32,
    /// Calls the agent handles now (read-only).
    #[schema(example = 0, read_only)]
    pub active_calls: u32,
}

impl From<HumanAgent> for AgentResponse {
    fn from(a: HumanAgent) -> Self {
        Self {
            id: a.id.into_uuid(),
            name: a.name,
            email: a.email.map(|e| e.as_str().to_owned()),
            phone: a.phone.map(|p| p.as_str().to_owned()),
            sip_uri: a.sip_uri,
            skills: a
                .skills
                .into_iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            availability: a.availability.into(),
            max_concurrent_calls: a.max_concurrent_calls,
            active_calls: a.active_calls,
        }
    }
}

/// Creates a human agent, `offline` until set otherwise (member).
#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = AgentRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "created", body = AgentResponse),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_agent(
    State(state): State<AppState>,
    Auth(who): Auth,
    Json(body): Json<AgentRequest>,
) -> ApiResult<(StatusCode, Json<AgentResponse>)> {
    let agent = state.agents.create(&who, body.parse()?).await?;
    Ok((StatusCode::CREATED, Json(agent.into())))
}

/// Lists human agents.
#[utoipa::path(get, path = "/v1/agents", tag = "agents", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "a page", body = Paged<AgentResponse>),
        (status = 400, description = "malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_agents(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Paged<AgentResponse>>> {
    let page = state.agents.list(&who, params.to_request()?).await?;
    Ok(Json(Paged::from_page(page, AgentResponse::from)))
}

/// One human agent.
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = uuid::Uuid, Path, description = "agent id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the agent", body = AgentResponse),
        (status = 400, description = "malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_agent(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<Json<AgentResponse>> {
    Ok(Json(
        state.agents.get(&who, AgentId::from_uuid(id)).await?.into(),
    ))
}

/// Replaces a human agent's fields; availability and active calls are kept
/// (member).
#[utoipa::path(put, path = "/v1/agents/{id}", tag = "agents", request_body = AgentRequest,
    params(("id" = uuid::Uuid, Path, description = "agent id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "updated", body = AgentResponse),
        (status = 400, description = "malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_agent(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
    Json(body): Json<AgentRequest>,
) -> ApiResult<Json<AgentResponse>> {
    let agent = state
        .agents
        .update(&who, AgentId::from_uuid(id), body.parse()?)
        .await?;
    Ok(Json(agent.into()))
}

/// Sets whether a human agent takes calls now (member).
#[utoipa::path(patch, path = "/v1/agents/{id}/availability", tag = "agents",
    request_body = AvailabilityRequest,
    params(("id" = uuid::Uuid, Path, description = "agent id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "updated", body = AgentResponse),
        (status = 400, description = "malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "not an availability", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_agent_availability(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
    Json(body): Json<AvailabilityRequest>,
) -> ApiResult<Json<AgentResponse>> {
    let agent = state
        .agents
        .set_availability(&who, AgentId::from_uuid(id), body.availability.into())
        .await?;
    Ok(Json(agent.into()))
}

/// Deletes a human agent (admin).
#[utoipa::path(delete, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = uuid::Uuid, Path, description = "agent id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the admin role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_agent(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    state.agents.delete(&who, AgentId::from_uuid(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The agent routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_agent, list_agents))
        .routes(routes!(get_agent, update_agent, delete_agent))
        .routes(routes!(set_agent_availability))
}
