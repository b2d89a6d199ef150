//! Calls: place (idempotently), list, read with transcript and history, hang
//! up, transfer to a human agent.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use iace_app::calls::{CallDetails, IdempotencyKey, PlaceCall};
use iace_app::{AppError, FieldError};
use iace_domain::call::{
    Call, CallDirection, CallEventRecord, CallOutcome, CallStatus, EventSource,
};
use iace_domain::ports::CallFilter;
use iace_domain::{AgentId, CallId, CustomerId, PersonaId, PhoneNumber, TranscriptEntry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{Order, PageParams, Paged};
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiPath, ApiQuery, Auth, Json};
use crate::http::state::AppState;

/// The request header that makes `POST /v1/calls` safe to retry.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The snake_case wire name of a unit enum (its serde form).
fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created; not yet reported by the provider.
    Pending,
    /// Ringing the other party.
    Ringing,
    /// Connected; the AI agent is talking.
    InProgress,
    /// A transfer to a human agent is under way.
    Escalating,
    /// Ended after a conversation.
    Completed,
    /// Ended abnormally (dial refused, dropped call).
    Failed,
    /// Nobody answered.
    NoAnswer,
    /// Busy or declined.
    Busy,
    /// Given up before being answered.
    Canceled,
    /// Handed over to a human agent.
    Transferred,
}

impl From<CallStatus> for Status {
    fn from(s: CallStatus) -> Self {
        match s {
            CallStatus::Pending => Self::Pending,
            CallStatus::Ringing => Self::Ringing,
            CallStatus::InProgress => Self::InProgress,
            CallStatus::Escalating => Self::Escalating,
            CallStatus::Completed => Self::Completed,
            CallStatus::Failed => Self::Failed,
            CallStatus::NoAnswer => Self::NoAnswer,
            CallStatus::Busy => Self::Busy,
            CallStatus::Canceled => Self::Canceled,
            CallStatus::Transferred => Self::Transferred,
        }
    }
}

/// Who placed the call.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A customer called in.
    Inbound,
    /// IACE called the customer.
    Outbound,
}

impl From<CallDirection> for Direction {
    fn from(d: CallDirection) -> Self {
        match d {
            CallDirection::Inbound => Self::Inbound,
            CallDirection::Outbound => Self::Outbound,
        }
    }
}

/// An outbound call to place.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceCallRequest {
    /// Whom to call; E.164 or an international form.
    #[schema(example = "+442079460958")]
    pub to: String,
    /// Caller id: one of the organisation's numbers.
    #[schema(example = "+14155550100")]
    pub from: String,
    /// The persona the AI agent speaks as.
    pub persona_id: Option<uuid::Uuid>,
}

impl PlaceCallRequest {
    /// Parses the body and the `Idempotency-Key` header, reporting every
    /// invalid field at once.
    fn parse(self, headers: &HeaderMap) -> Result<PlaceCall, AppError> {
        let mut errors = Vec::new();
        let mut number = |field: &str, raw: &str| {
            PhoneNumber::parse(raw)
                .map_err(|e| errors.push(FieldError::new(field, "invalid_phone", e.to_string())))
                .ok()
        };
        let to = number("to", &self.to);
        let from = number("from", &self.from);
        let idempotency_key = match headers.get(IDEMPOTENCY_KEY) {
            None => None,
            Some(value) => {
                let raw = value.to_str().unwrap_or_default();
                IdempotencyKey::parse(IDEMPOTENCY_KEY, raw)
                    .map_err(|e| errors.push(e))
                    .ok()
            }
        };
        match (to, from) {
            (Some(to), Some(from)) if errors.is_empty() => Ok(PlaceCall {
                to,
                from,
                persona_id: self.persona_id.map(PersonaId::from_uuid),
                idempotency_key,
            }),
            _ => Err(AppError::Validation { errors }),
        }
    }
}

/// A call.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallResponse {
    /// Id (also the provider's `client_state`).
    pub id: uuid::Uuid,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Life-cycle state.
    pub status: Status,
    /// The calling party, E.164.
    pub from: String,
    /// The called party, E.164.
    pub to: String,
    /// The customer on the line, when known.
    pub customer_id: Option<uuid::Uuid>,
    /// The persona the AI agent speaks as.
    pub persona_id: Option<uuid::Uuid>,
    /// The experiment the call takes part in.
    pub experiment_id: Option<uuid::Uuid>,
    /// The experiment arm it was assigned.
    pub variant_id: Option<uuid::Uuid>,
    /// The telephony provider's call id, once dialled.
    pub provider_call_id: Option<String>,
    /// Why the call ended (`{"kind": "hangup", "cause": "normal_clearing"}`, ...).
    #[schema(value_type = Option<Object>)]
    pub end_reason: Option<serde_json::Value>,
    /// The business result (`resolved`, `converted`, ...).
    pub outcome: Option<String>,
    /// Why it was escalated to a human (`human_requested`, ...).
    pub escalation_reason: Option<String>,
    /// The human agent it was transferred to.
    pub transferred_to: Option<uuid::Uuid>,
    /// The caller's sentiment over the call.
    #[schema(value_type = Option<Object>)]
    pub sentiment: Option<serde_json::Value>,
    /// The recording, when there is one.
    pub recording_url: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the call was connected.
    pub answered_at: Option<DateTime<Utc>>,
    /// When the call ended.
    pub ended_at: Option<DateTime<Utc>>,
}

impl From<Call> for CallResponse {
    fn from(c: Call) -> Self {
        Self {
            id: c.id.into_uuid(),
            direction: c.direction.into(),
            status: c.status.into(),
            from: c.from.as_str().to_owned(),
            to: c.to.as_str().to_owned(),
            customer_id: c.customer_id.map(CustomerId::into_uuid),
            persona_id: c.persona_id.map(PersonaId::into_uuid),
            experiment_id: c.experiment_id.map(|e| e.into_uuid()),
            variant_id: c.variant_id.map(|v| v.into_uuid()),
            provider_call_id: c.provider_call_id,
            end_reason: c.end_reason.and_then(|r| serde_json::to_value(r).ok()),
            outcome: c.outcome.as_ref().map(wire_name),
            escalation_reason: c.escalation_reason.as_ref().map(wire_name),
            transferred_to: c.transferred_to.map(AgentId::into_uuid),
            sentiment: c.sentiment.and_then(|s| serde_json::to_value(s).ok()),
            recording_url: c.recording_url,
            created_at: c.created_at,
            answered_at: c.answered_at,
            ended_at: c.ended_at,
        }
    }
}

/// One line of a call's transcript.
#[derive(Debug, Serialize, ToSchema)]
pub struct TranscriptLine {
    /// Position in the call, from 0.
    pub sequence: u32,
    /// `caller`, `bot`, `human_agent` or `system`.
    pub speaker: String,
    /// What was said.
    pub text: String,
    /// Start, ms from the answer.
    pub started_ms: u64,
    /// End, ms from the answer.
    pub ended_ms: u64,
    /// Sentiment score of the line, −1..=1.
    pub sentiment: Option<f64>,
    /// The reply was cut off by the caller.
    pub interrupted: bool,
}

impl From<TranscriptEntry> for TranscriptLine {
    fn from(e: TranscriptEntry) -> Self {
        Self {
            sequence: e.sequence,
            speaker: wire_name(&e.speaker),
            text: e.text,
            started_ms: e.started_ms,
            ended_ms: e.ended_ms,
            sentiment: e.sentiment.map(|s| s.score()),
            interrupted: e.interrupted,
        }
    }
}

/// One event that reached a call.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// Id.
    pub id: uuid::Uuid,
    /// What happened (`{"type": "hung_up", "cause": "user_busy"}`, ...).
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
    /// Status before.
    pub from: Status,
    /// Status after.
    pub to: Status,
    /// `applied`, or why it changed nothing (`duplicate`, `stale`, `call_ended`, ...).
    pub result: String,
    /// `webhook`, `api` or `runtime`.
    pub source: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

impl From<CallEventRecord> for HistoryEntry {
    fn from(r: CallEventRecord) -> Self {
        Self {
            id: r.id.into_uuid(),
            event: serde_json::to_value(r.event).unwrap_or_default(),
            from: r.from.into(),
            to: r.to.into(),
            result: r.result.as_str().to_owned(),
            source: match r.source {
                EventSource::Webhook { .. } => "webhook",
                EventSource::Api => "api",
                EventSource::Runtime => "runtime",
            }
            .to_owned(),
            occurred_at: r.occurred_at,
        }
    }
}

/// A call with its transcript and history.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallDetailResponse {
    /// The call.
    #[serde(flatten)]
    pub call: CallResponse,
    /// What was said, in order.
    pub transcript: Vec<TranscriptLine>,
    /// Every event that reached the call, oldest first.
    pub history: Vec<HistoryEntry>,
}

impl From<CallDetails> for CallDetailResponse {
    fn from(d: CallDetails) -> Self {
        Self {
            call: d.call.into(),
            transcript: d.transcript.into_iter().map(TranscriptLine::from).collect(),
            history: d.history.into_iter().map(HistoryEntry::from).collect(),
        }
    }
}

/// Listing filters and paging; newest first unless `order=asc`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CallListParams {
    /// Items per page, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `desc` (newest first, default) or `asc`.
    pub order: Option<Order>,
    /// Only calls in this status.
    #[param(value_type = Option<Status>)]
    pub status: Option<String>,
    /// Only this direction.
    #[param(value_type = Option<Direction>)]
    pub direction: Option<String>,
    /// Only this customer's calls.
    #[param(value_type = Option<uuid::Uuid>)]
    pub customer_id: Option<String>,
    /// Only calls transferred to this human agent.
    #[param(value_type = Option<uuid::Uuid>)]
    pub agent_id: Option<String>,
    /// Only calls with this persona.
    #[param(value_type = Option<uuid::Uuid>)]
    pub persona_id: Option<String>,
    /// Only calls created at or after this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_after: Option<String>,
    /// Only calls created before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_before: Option<String>,
}

impl CallListParams {
    /// The store filter, reporting every invalid filter at once.
    fn filter(&self) -> Result<CallFilter, AppError> {
        let mut errors = Vec::new();
        let mut field = |name: &str, code: &'static str, message: &str| {
            errors.push(FieldError::new(name, code, message));
        };
        let status = self.status.as_deref().and_then(|raw| {
            raw.parse::<CallStatus>()
                .map_err(|e| field("status", "invalid_status", &e.to_string()))
                .ok()
        });
        let direction = self.direction.as_deref().and_then(|raw| match raw {
            "inbound" => Some(CallDirection::Inbound),
            "outbound" => Some(CallDirection::Outbound),
            _ => {
                field(
                    "direction",
                    "invalid_direction",
                    "direction is inbound or outbound",
                );
                None
            }
        });
        let mut id = |name: &str, raw: Option<&str>| {
            raw.and_then(|raw| {
                uuid::Uuid::try_parse(raw)
                    .map_err(|_| field(name, "invalid_id", "not a UUID"))
                    .ok()
            })
        };
        let customer_id = id("customer_id", self.customer_id.as_deref());
        let agent_id = id("agent_id", self.agent_id.as_deref());
        let persona_id = id("persona_id", self.persona_id.as_deref());
        let mut time = |name: &str, raw: Option<&str>| {
            raw.and_then(|raw| {
                DateTime::parse_from_rfc3339(raw)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        field(
                            name,
                            "invalid_timestamp",
                            "an RFC 3339 time, e.g. 2026-01-31T09:00:00Z",
                        );
                    })
                    .ok()
            })
        };
        let created_after = time("created_after", self.created_after.as_deref());
        let created_before = time("created_before", self.created_before.as_deref());
        if !errors.is_empty() {
            return Err(AppError::Validation { errors });
        }
        Ok(CallFilter {
            status,
            direction,
            customer_id: customer_id.map(CustomerId::from_uuid),
            created_after,
            created_before,
            agent_id: agent_id.map(AgentId::from_uuid),
            persona_id: persona_id.map(PersonaId::from_uuid),
            experiment_id: None,
        })
    }

    /// Paging, newest first unless asked otherwise.
    fn page(&self) -> PageParams {
        PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
            order: Some(self.order.unwrap_or(Order::Desc)),
        }
    }
}

/// Whom to hand the call to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The human agent.
    pub agent_id: uuid::Uuid,
}

/// Places an outbound call (member). Send an `Idempotency-Key` to retry
/// safely: a repeated key answers 200 with the call of the first request and
/// dials nothing.
#[utoipa::path(post, path = "/v1/calls", tag = "calls", request_body = PlaceCallRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header,
            description = "1-255 visible ASCII characters; the same key returns the same call"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "created and dialled (status `pending` until the provider reports ringing)", body = CallResponse),
        (status = 200, description = "a replay: the call created earlier with this key", body = CallResponse),
        (status = 401, description = "no or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the key was used with other parameters (`idempotency_key_reused`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid numbers, key or persona", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "the provider refused the dial (`dial_failed`); the call is failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "the provider could not be reached (`dial_failed`); the call is failed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn place_call(
    State(state): State<AppState>,
    Auth(who): Auth,
    headers: HeaderMap,
    Json(body): Json<PlaceCallRequest>,
) -> ApiResult<(StatusCode, Json<CallResponse>)> {
    let input = body.parse(&headers)?;
    state.limits.check_call_start(&who, &state.store).await?;
    let placed = state.calls.place(&who, input).await?;
    let status = if placed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(placed.call.into())))
}

/// Lists calls, newest first by default.
#[utoipa::path(get, path = "/v1/calls", tag = "calls", params(CallListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "a page", body = Paged<CallResponse>),
        (status = 401, description = "no or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid filters or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_calls(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<CallListParams>,
) -> ApiResult<Json<Paged<CallResponse>>> {
    let filter = params.filter()?;
    let page = state
        .calls
        .list(&who, &filter, params.page().to_request()?)
        .await?;
    Ok(Json(Paged::from_page(page, CallResponse::from)))
}

/// One call with its transcript and event history.
#[utoipa::path(get, path = "/v1/calls/{id}", tag = "calls",
    params(("id" = uuid::Uuid, Path, description = "call id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the call", body = CallDetailResponse),
        (status = 401, description = "no or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_call(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<Json<CallDetailResponse>> {
    Ok(Json(
        state.calls.get(&who, CallId::from_uuid(id)).await?.into(),
    ))
}

/// Hangs up a live call (member). Accepted: the status changes when the
/// provider reports the hang-up (a pending call never dialled is cancelled at
/// once).
#[utoipa::path(post, path = "/v1/calls/{id}/hangup", tag = "calls",
    params(("id" = uuid::Uuid, Path, description = "call id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "the provider was asked to hang up", body = CallResponse),
        (status = 401, description = "no or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the call has ended (`call_ended`)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "the provider refused (`hangup_failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "the provider could not be reached (`hangup_failed`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn hang_up_call(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<(StatusCode, Json<CallResponse>)> {
    let call = state.calls.hang_up(&who, CallId::from_uuid(id)).await?;
    Ok((StatusCode::ACCEPTED, Json(call.into())))
}

/// Transfers a call in progress to a human agent (member). Accepted: the call
/// is escalating until the provider reports the agent connected.
#[utoipa::path(post, path = "/v1/calls/{id}/transfer", tag = "calls", request_body = TransferRequest,
    params(("id" = uuid::Uuid, Path, description = "call id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "the transfer is under way (status `escalating`)", body = CallResponse),
        (status = 401, description = "no or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such call", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the call is not in progress (`invalid_call_state`, `call_ended`) or the agent cannot take it (`agent_unavailable`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "unknown agent", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "the provider refused (`transfer_failed`); the call is back in progress", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "the provider could not be reached (`transfer_failed`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn transfer_call(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
    Json(body): Json<TransferRequest>,
) -> ApiResult<(StatusCode, Json<CallResponse>)> {
    let call = state
        .calls
        .transfer(
            &who,
            CallId::from_uuid(id),
            AgentId::from_uuid(body.agent_id),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(call.into())))
}

/// How a call turned out.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The caller's request was resolved.
    Resolved,
    /// The call reached its goal (sale, booking, renewal).
    Converted,
    /// The caller asked to be called back.
    CallbackRequested,
    /// The goal was not reached.
    Unresolved,
    /// An answering machine took the call.
    Voicemail,
    /// The call was handed to a human agent.
    Escalated,
    /// The caller left before anything was resolved.
    Abandoned,
}

impl From<Outcome> for CallOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Resolved => Self::Resolved,
            Outcome::Converted => Self::Converted,
            Outcome::CallbackRequested => Self::CallbackRequested,
            Outcome::Unresolved => Self::Unresolved,
            Outcome::Voicemail => Self::Voicemail,
            Outcome::Escalated => Self::Escalated,
            Outcome::Abandoned => Self::Abandoned,
        }
    }
}

/// A call's outcome, as the operator's systems know it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRequest {
    /// The outcome.
    pub outcome: Outcome,
}

/// Sets a call's outcome (member). Set before the call's post-call work
/// runs (a few seconds after it ends), it is what that work counts for the
/// experiment and the learned patterns; later it only changes the call.
#[utoipa::path(put, path = "/v1/calls/{id}/outcome", tag = "calls", request_body = OutcomeRequest,
    params(("id" = uuid::Uuid, Path, description = "call id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the call with its outcome", body = CallResponse),
        (status = 401, description = "no or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such call", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "not an outcome", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_outcome(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
    Json(body): Json<OutcomeRequest>,
) -> ApiResult<Json<CallResponse>> {
    let call = state
        .calls
        .set_outcome(&who, CallId::from_uuid(id), body.outcome.into())
        .await?;
    Ok(Json(call.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place_call, list_calls))
        .routes(routes!(get_call))
        .routes(routes!(hang_up_call))
        .routes(routes!(transfer_call))
        .routes(routes!(set_outcome))
}
