//! Learned patterns (read-only): the best ones, search by similarity, one.

use axum::extract::State;
use chrono::{DateTime, Utc};
use iace_domain::learning::{SuccessPrior, smoothed_success_rate};
use iace_domain::ports::ScoredMatch;
use iace_domain::{LearnedPattern, PatternId, PatternKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiPath, ApiQuery, Auth, Json};
use crate::http::state::AppState;

/// Patterns returned by `top` when no `limit` is given.
const DEFAULT_TOP: u32 = 10;
/// Matches returned by `search` when no `k` is given.
const DEFAULT_K: u32 = 5;

/// What a pattern is for.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// How to open a call.
    Opening,
    /// A response to an objection or complaint.
    ObjectionHandling,
    /// A way of resolving a common request.
    Resolution,
    /// How to close or convert.
    Closing,
    /// A phrase that tends to calm an upset caller.
    Deescalation,
}

impl From<Kind> for PatternKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Opening => Self::Opening,
            Kind::ObjectionHandling => Self::ObjectionHandling,
            Kind::Resolution => Self::Resolution,
            Kind::Closing => Self::Closing,
            Kind::Deescalation => Self::Deescalation,
        }
    }
}

impl From<PatternKind> for Kind {
    fn from(k: PatternKind) -> Self {
        match k {
            PatternKind::Opening => Self::Opening,
            PatternKind::ObjectionHandling => Self::ObjectionHandling,
            PatternKind::Resolution => Self::Resolution,
            PatternKind::Closing => Self::Closing,
            PatternKind::Deescalation => Self::Deescalation,
        }
    }
}

/// A learned pattern (its embedding is never shown).
#[derive(Debug, Serialize, ToSchema)]
pub struct PatternResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// What it is for.
    pub kind: Kind,
    /// The situation it applies to.
    pub trigger: String,
    /// What to say or do.
    pub response: String,
    /// Calls that used it.
    pub uses: u32,
    /// Of those, calls whose outcome was a success.
    pub successes: u32,
    /// Success rate smoothed with the prior: `(successes + α) / (uses + α + β)`.
    pub success_rate: f64,
    /// Last call that used it.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl PatternResponse {
    /// The wire form of `p`, its success rate smoothed under `prior`.
    fn new(p: LearnedPattern, prior: &SuccessPrior) -> Self {
        Self {
            id: p.id.into_uuid(),
            kind: p.kind.into(),
            success_rate: smoothed_success_rate(p.successes, p.uses, prior),
            trigger: p.trigger,
            response: p.response,
            uses: p.uses,
            successes: p.successes,
            last_used_at: p.last_used_at,
            created_at: p.created_at,
        }
    }
}

/// The best patterns.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatternList {
    /// Best smoothed success rate first.
    pub items: Vec<PatternResponse>,
}

/// Filters for the best patterns.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TopParams {
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only patterns used at least this often (default 0).
    pub min_uses: Option<u32>,
    /// How many, 1-100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// A similarity search.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// What is happening on the call, 1-2000 characters.
    #[schema(example = "the caller disputes a late fee")]
    pub text: String,
    /// Only this kind.
    pub kind: Option<Kind>,
    /// How many matches, 1-50 (default 5).
    #[schema(minimum = 1, maximum = 50)]
    pub k: Option<u32>,
}

/// A pattern found by similarity.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatternMatch {
    /// Cosine similarity of its trigger to the text, −1..=1.
    pub similarity: f64,
    /// The pattern.
    pub pattern: PatternResponse,
}

/// Search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// Most similar first.
    pub matches: Vec<PatternMatch>,
}

/// The patterns with the best smoothed success rate.
#[utoipa::path(get, path = "/v1/patterns/top", tag = "patterns", params(TopParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "best first", body = PatternList),
        (status = 400, description = "malformed query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn top_patterns(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<TopParams>,
) -> ApiResult<Json<PatternList>> {
    let prior = state.patterns.prior();
    let patterns = state
        .patterns
        .top(
            &who,
            params.kind.map(PatternKind::from),
            params.min_uses.unwrap_or(0),
            params.limit.unwrap_or(DEFAULT_TOP),
        )
        .await?;
    Ok(Json(PatternList {
        items: patterns
            .into_iter()
            .map(|p| PatternResponse::new(p, &prior))
            .collect(),
    }))
}

/// The patterns whose trigger is most similar to a text.
#[utoipa::path(post, path = "/v1/patterns/search", tag = "patterns", request_body = SearchRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "most similar first", body = SearchResponse),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields (`text`, `k`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "the embedder is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn search_patterns(
    State(state): State<AppState>,
    Auth(who): Auth,
    Json(body): Json<SearchRequest>,
) -> ApiResult<Json<SearchResponse>> {
    let prior = state.patterns.prior();
    let found = state
        .patterns
        .similar(
            &who,
            &body.text,
            body.kind.map(PatternKind::from),
            body.k.unwrap_or(DEFAULT_K),
        )
        .await?;
    Ok(Json(SearchResponse {
        matches: found
            .into_iter()
            .map(|ScoredMatch { item, similarity }| PatternMatch {
                similarity,
                pattern: PatternResponse::new(item, &prior),
            })
            .collect(),
    }))
}

/// One pattern.
#[utoipa::path(get, path = "/v1/patterns/{id}", tag = "patterns",
    params(("id" = uuid::Uuid, Path, description = "pattern id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the pattern", body = PatternResponse),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_pattern(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<Json<PatternResponse>> {
    let pattern = state.patterns.get(&who, PatternId::from_uuid(id)).await?;
    Ok(Json(PatternResponse::new(pattern, &state.patterns.prior())))
}

/// The patterns routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(top_patterns))
        .routes(routes!(search_patterns))
        .routes(routes!(get_pattern))
}
