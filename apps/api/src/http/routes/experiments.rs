//! Experiments: A/B tests over personas — set-up, life cycle, results.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use iace_app::experiments::{ExperimentInput, VariantInput};
use iace_app::{AppError, FieldError};
use iace_domain::experiment::{AnalysisConfig, Decision, ExperimentReport, VariantReport};
use iace_domain::{
    Experiment, ExperimentId, ExperimentMetric, ExperimentStatus, PersonaId, Variant,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{PageParams, Paged};
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiPath, ApiQuery, Auth, Json};
use crate::http::state::AppState;

/// What counts as a conversion.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The call ended with a successful outcome (sale, booking, resolution).
    Conversion,
    /// The call was resolved without a transfer to a human.
    ResolvedWithoutEscalation,
    /// The caller's final sentiment was positive.
    PositiveSentiment,
}

impl From<Metric> for ExperimentMetric {
    fn from(m: Metric) -> Self {
        match m {
            Metric::Conversion => Self::Conversion,
            Metric::ResolvedWithoutEscalation => Self::ResolvedWithoutEscalation,
            Metric::PositiveSentiment => Self::PositiveSentiment,
        }
    }
}

impl From<ExperimentMetric> for Metric {
    fn from(m: ExperimentMetric) -> Self {
        match m {
            ExperimentMetric::Conversion => Self::Conversion,
            ExperimentMetric::ResolvedWithoutEscalation => Self::ResolvedWithoutEscalation,
            ExperimentMetric::PositiveSentiment => Self::PositiveSentiment,
        }
    }
}

/// Where an experiment is in its life.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being set up; assigns nobody; the only state in which it can be edited.
    Draft,
    /// Assigning callers and counting outcomes.
    Running,
    /// Temporarily assigning nobody; counts kept.
    Paused,
    /// Finished; assigns nobody.
    Completed,
}

impl From<ExperimentStatus> for Status {
    fn from(s: ExperimentStatus) -> Self {
        match s {
            ExperimentStatus::Draft => Self::Draft,
            ExperimentStatus::Running => Self::Running,
            ExperimentStatus::Paused => Self::Paused,
            ExperimentStatus::Completed => Self::Completed,
        }
    }
}

/// One arm as sent by clients.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantRequest {
    /// Label, 1-100 characters, unique in the experiment (ignoring case).
    #[schema(example = "friendly")]
    pub name: String,
    /// The persona callers in this arm get (must exist in the organisation).
    pub persona_id: String,
    /// Relative share of callers, at least 1.
    #[schema(example = 50, minimum = 1)]
    pub weight: u32,
    /// Whether this arm is the baseline; exactly one arm is. Default `false`.
    #[serde(default)]
    pub is_control: bool,
}

/// An experiment as sent by clients (create and full replace of a draft).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentRequest {
    /// Display name, 1-200 characters.
    #[schema(example = "Friendly greeting")]
    pub name: String,
    /// Bucketing salt (1-200 characters). Generated when creating without one;
    /// kept when replacing without one.
    pub salt: Option<String>,
    /// What counts as a conversion.
    pub metric: Metric,
    /// The arms: at least two, exactly one of them the control.
    pub variants: Vec<VariantRequest>,
}

impl ExperimentRequest {
    /// Parses the ids, reporting every malformed one at once; the use case
    /// checks the rest.
    fn parse(self) -> Result<ExperimentInput, AppError> {
        let mut errors = Vec::new();
        let variants: Vec<VariantInput> = self
            .variants
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| match uuid::Uuid::try_parse(&v.persona_id) {
                Ok(id) => Some(VariantInput {
                    name: v.name,
                    persona_id: PersonaId::from_uuid(id),
                    weight: v.weight,
                    is_control: v.is_control,
                }),
                Err(_) => {
                    errors.push(FieldError::new(
                        format!("variants[{i}].persona_id"),
                        "invalid_id",
                        "not a UUID",
                    ));
                    None
                }
            })
            .collect();
        if !errors.is_empty() {
            return Err(AppError::Validation { errors });
        }
        Ok(ExperimentInput {
            name: self.name,
            salt: self.salt,
            metric: self.metric.into(),
            variants,
        })
    }
}

/// One arm.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// Label.
    pub name: String,
    /// The persona callers in this arm get.
    pub persona_id: uuid::Uuid,
    /// Relative share of callers.
    pub weight: u32,
    /// Whether this arm is the baseline.
    pub is_control: bool,
}

impl From<Variant> for VariantResponse {
    fn from(v: Variant) -> Self {
        Self {
            id: v.id.into_uuid(),
            name: v.name,
            persona_id: v.persona_id.into_uuid(),
            weight: v.weight,
            is_control: v.is_control,
        }
    }
}

/// An experiment.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// Display name.
    pub name: String,
    /// Bucketing salt (fixed once it runs).
    pub salt: String,
    /// Life-cycle state.
    pub status: Status,
    /// What is measured.
    pub metric: Metric,
    /// The arms.
    pub variants: Vec<VariantResponse>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it first started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed.
    pub ended_at: Option<DateTime<Utc>>,
}

impl From<Experiment> for ExperimentResponse {
    fn from(e: Experiment) -> Self {
        Self {
            id: e.id.into_uuid(),
            name: e.name,
            salt: e.salt,
            status: e.status.into(),
            metric: e.metric.into(),
            variants: e.variants.into_iter().map(VariantResponse::from).collect(),
            created_at: e.created_at,
            started_at: e.started_at,
            ended_at: e.ended_at,
        }
    }
}

/// Analysis settings.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResultsParams {
    /// Confidence level of the intervals, strictly between 0 and 1 (default 0.95).
    #[param(exclusive_minimum = 0, exclusive_maximum = 1)]
    pub confidence: Option<f64>,
    /// Significance level of the tests, strictly between 0 and 1 (default 0.05).
    #[param(exclusive_minimum = 0, exclusive_maximum = 1)]
    pub alpha: Option<f64>,
    /// Fewest trials every arm needs before a winner is declared (default 100).
    pub min_trials: Option<u64>,
}

impl ResultsParams {
    fn to_config(&self) -> AnalysisConfig {
        let defaults = AnalysisConfig::default();
        AnalysisConfig {
            confidence: self.confidence.unwrap_or(defaults.confidence),
            alpha: self.alpha.unwrap_or(defaults.alpha),
            min_trials_per_variant: self.min_trials.unwrap_or(defaults.min_trials_per_variant),
        }
    }
}

/// The verdict.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// Some arm has fewer than `min_trials` trials.
    InsufficientData,
    /// Enough data, but no arm is significantly better than all it is compared with.
    NoSignificantDifference,
    /// `winner_variant_id` won.
    Winner,
}

/// A confidence interval.
#[derive(Debug, Serialize, ToSchema)]
pub struct Interval {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

/// One arm's results.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantResult {
    /// The arm.
    pub variant_id: uuid::Uuid,
    /// The arm's name.
    pub name: String,
    /// Whether it is the control.
    pub is_control: bool,
    /// Callers exposed.
    pub trials: u64,
    /// Callers who converted.
    pub conversions: u64,
    /// `conversions / trials`; null with no trials.
    pub rate: Option<f64>,
    /// Wilson score interval of the rate at the requested confidence; null with
    /// no trials.
    pub interval: Option<Interval>,
    /// `rate − control rate`; null for the control or an undefined rate.
    pub absolute_lift: Option<f64>,
    /// `(rate − control rate) / control rate`; null for the control, an
    /// undefined rate or a control rate of 0.
    pub relative_lift: Option<f64>,
    /// Two-sided p-value of the z-test against the control; null for the control
    /// or when the test is undefined.
    pub p_value: Option<f64>,
    /// Whether it differs from the control at `alpha` (either direction).
    pub significant: bool,
}

impl From<VariantReport> for VariantResult {
    fn from(v: VariantReport) -> Self {
        Self {
            variant_id: v.variant_id.into_uuid(),
            name: v.name,
            is_control: v.is_control,
            trials: v.trials,
            conversions: v.conversions,
            rate: v.rate,
            interval: v.interval.map(|(lower, upper)| Interval { lower, upper }),
            absolute_lift: v.absolute_lift,
            relative_lift: v.relative_lift,
            p_value: v.p_value,
            significant: v.significant,
        }
    }
}

/// An experiment's results so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultsResponse {
    /// The experiment.
    pub experiment_id: uuid::Uuid,
    /// What was counted as a conversion.
    pub metric: Metric,
    /// Confidence level used for the intervals.
    pub confidence: f64,
    /// Significance level used for the tests.
    pub alpha: f64,
    /// Trials every arm needed for a winner.
    pub min_trials: u64,
    /// One line per arm, in the experiment's order.
    pub variants: Vec<VariantResult>,
    /// The verdict.
    pub decision: DecisionKind,
    /// The winning arm, when `decision` is `winner`.
    pub winner_variant_id: Option<uuid::Uuid>,
}

impl From<ExperimentReport> for ResultsResponse {
    fn from(r: ExperimentReport) -> Self {
        let (decision, winner) = match r.decision {
            Decision::InsufficientData => (DecisionKind::InsufficientData, None),
            Decision::NoSignificantDifference => (DecisionKind::NoSignificantDifference, None),
            Decision::Winner(id) => (DecisionKind::Winner, Some(id.into_uuid())),
        };
        Self {
            experiment_id: r.experiment_id.into_uuid(),
            metric: r.metric.into(),
            confidence: r.config.confidence,
            alpha: r.config.alpha,
            min_trials: r.config.min_trials_per_variant,
            variants: r.variants.into_iter().map(VariantResult::from).collect(),
            decision,
            winner_variant_id: winner,
        }
    }
}

/// Creates a draft experiment (member).
#[utoipa::path(post, path = "/v1/experiments", tag = "experiments", request_body = ExperimentRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "created, as a draft", body = ExperimentResponse),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields (name, salt, variants, unknown personas)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_experiment(
    State(state): State<AppState>,
    Auth(who): Auth,
    Json(body): Json<ExperimentRequest>,
) -> ApiResult<(StatusCode, Json<ExperimentResponse>)> {
    let experiment = state.experiments.create(&who, body.parse()?).await?;
    Ok((StatusCode::CREATED, Json(experiment.into())))
}

/// Lists experiments.
#[utoipa::path(get, path = "/v1/experiments", tag = "experiments", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "a page", body = Paged<ExperimentResponse>),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid paging parameters", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_experiments(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Paged<ExperimentResponse>>> {
    let page = state.experiments.list(&who, params.to_request()?).await?;
    Ok(Json(Paged::from_page(page, ExperimentResponse::from)))
}

/// One experiment.
#[utoipa::path(get, path = "/v1/experiments/{id}", tag = "experiments",
    params(("id" = uuid::Uuid, Path, description = "experiment id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the experiment", body = ExperimentResponse),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_experiment(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<Json<ExperimentResponse>> {
    Ok(Json(
        state
            .experiments
            .get(&who, ExperimentId::from_uuid(id))
            .await?
            .into(),
    ))
}

/// Replaces a draft's name, metric, arms and (when given) salt (member).
#[utoipa::path(put, path = "/v1/experiments/{id}", tag = "experiments", request_body = ExperimentRequest,
    params(("id" = uuid::Uuid, Path, description = "experiment id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "replaced", body = ExperimentResponse),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`experiment_not_draft`: it has started", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn replace_experiment(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
    Json(body): Json<ExperimentRequest>,
) -> ApiResult<Json<ExperimentResponse>> {
    let experiment = state
        .experiments
        .replace(&who, ExperimentId::from_uuid(id), body.parse()?)
        .await?;
    Ok(Json(experiment.into()))
}

/// Starts a draft or resumes a paused experiment (member).
#[utoipa::path(post, path = "/v1/experiments/{id}/start", tag = "experiments",
    params(("id" = uuid::Uuid, Path, description = "experiment id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "running", body = ExperimentResponse),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_experiment_state`: already running or completed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start_experiment(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<Json<ExperimentResponse>> {
    let experiment = state
        .experiments
        .start(&who, ExperimentId::from_uuid(id))
        .await?;
    Ok(Json(experiment.into()))
}

/// Pauses a running experiment (member).
#[utoipa::path(post, path = "/v1/experiments/{id}/pause", tag = "experiments",
    params(("id" = uuid::Uuid, Path, description = "experiment id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "paused", body = ExperimentResponse),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_experiment_state`: not running", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn pause_experiment(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<Json<ExperimentResponse>> {
    let experiment = state
        .experiments
        .pause(&who, ExperimentId::from_uuid(id))
        .await?;
    Ok(Json(experiment.into()))
}

/// Completes a running or paused experiment (member).
#[utoipa::path(post, path = "/v1/experiments/{id}/stop", tag = "experiments",
    params(("id" = uuid::Uuid, Path, description = "experiment id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "completed", body = ExperimentResponse),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_experiment_state`: a draft or already completed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn stop_experiment(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<Json<ExperimentResponse>> {
    let experiment = state
        .experiments
        .stop(&who, ExperimentId::from_uuid(id))
        .await?;
    Ok(Json(experiment.into()))
}

/// Results so far: per-arm rates, Wilson intervals, lifts, p-values against the
/// control, and the decision.
#[utoipa::path(get, path = "/v1/experiments/{id}/results", tag = "experiments",
    params(("id" = uuid::Uuid, Path, description = "experiment id"), ResultsParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the analysis", body = ResultsResponse),
        (status = 400, description = "malformed query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`confidence` or `alpha` outside 0..1", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn experiment_results(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
    ApiQuery(params): ApiQuery<ResultsParams>,
) -> ApiResult<Json<ResultsResponse>> {
    let report = state
        .experiments
        .results(&who, ExperimentId::from_uuid(id), &params.to_config())
        .await?;
    Ok(Json(report.into()))
}

/// The experiments routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_experiment, list_experiments))
        .routes(routes!(get_experiment, replace_experiment))
        .routes(routes!(start_experiment))
        .routes(routes!(pause_experiment))
        .routes(routes!(stop_experiment))
        .routes(routes!(experiment_results))
}
