//! Personas: CRUD.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use iace_app::personas::PersonaInput;
use iace_app::{AppError, FieldError};
use iace_domain::{Language, Persona, PersonaId, Style, Voice};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{PageParams, Paged};
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiPath, ApiQuery, Auth, Json};
use crate::http::state::AppState;

/// How the persona talks.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PersonaStyle {
    /// Polite and precise (default).
    Professional,
    /// Warm, informal.
    Friendly,
    /// Short answers, no small talk.
    Concise,
    /// Patient, acknowledges feelings first.
    Empathetic,
}

impl From<PersonaStyle> for Style {
    fn from(s: PersonaStyle) -> Self {
        match s {
            PersonaStyle::Professional => Self::Professional,
            PersonaStyle::Friendly => Self::Friendly,
            PersonaStyle::Concise => Self::Concise,
            PersonaStyle::Empathetic => Self::Empathetic,
        }
    }
}

impl From<Style> for PersonaStyle {
    fn from(s: Style) -> Self {
        match s {
            Style::Professional => Self::Professional,
            Style::Friendly => Self::Friendly,
            Style::Concise => Self::Concise,
            Style::Empathetic => Self::Empathetic,
        }
    }
}

/// The voice a persona speaks with, as sent by clients.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoiceRequest {
    /// Text-to-speech provider voice or model id.
    #[schema(example = "aura-2-thalia-en")]
    pub name: String,
    /// Speaking-rate multiplier, 0.5-2.0 (default 1.0).
    #[schema(example = 1.0, minimum = 0.5, maximum = 2.0)]
    pub speed: Option<f32>,
}

/// A persona as sent by clients (create and full replace).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonaRequest {
    /// Display name, 1-100 characters.
    #[schema(example = "Sam from Support")]
    pub name: String,
    /// Voice for text-to-speech.
    pub voice: VoiceRequest,
    /// Instructions for the language model, 1-20000 characters.
    #[schema(example = "You help customers of Acme Telecom with billing questions.")]
    pub system_prompt: String,
    /// First thing said on an answered call, 1-1000 characters.
    #[schema(example = "Hi, this is Sam from Acme. How can I help?")]
    pub greeting: String,
    /// Tone (default `professional`).
    pub style: Option<PersonaStyle>,
    /// Language spoken and transcribed, BCP 47 (default `en-US`).
    #[schema(example = "en-US")]
    pub language: Option<String>,
}

impl PersonaRequest {
    /// Parses every field, reporting all invalid ones at once.
    fn parse(self) -> Result<PersonaInput, AppError> {
        let mut errors = Vec::new();
        let language = match self.language.as_deref() {
            Some(raw) => Language::parse(raw)
                .map_err(|e| {
                    errors.push(FieldError::new(
                        "language",
                        "invalid_language",
                        e.to_string(),
                    ));
                })
                .ok(),
            None => Some(Language::default()),
        };
        // With a bad language the other bounds are still checked (against the
        // default language, which they do not depend on), so that every
        // invalid field is reported at once.
        let input = PersonaInput {
            name: self.name,
            voice: Voice {
                name: self.voice.name,
                speed: self.voice.speed.unwrap_or(1.0),
            },
            system_prompt: self.system_prompt,
            greeting: self.greeting,
            style: self.style.map_or(Style::default(), Style::from),
            language: language.unwrap_or_default(),
        };
        errors.extend(input.field_errors());
        if errors.is_empty() {
            Ok(input)
        } else {
            Err(AppError::Validation { errors })
        }
    }
}

/// The voice a persona speaks with.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoiceResponse {
    /// Text-to-speech provider voice or model id.
    #[schema(example = "aura-2-thalia-en")]
    pub name: String,
    /// Speaking-rate multiplier.
    #[schema(example = 1.0)]
    pub speed: f32,
}

/// A persona.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonaResponse {
    /// Id.
    pub id: uuid::Uuid,
    /// Display name.
    #[schema(example = "Sam from Support")]
    pub name: String,
    /// Voice for text-to-speech.
    pub voice: VoiceResponse,
    /// Instructions for the language model.
    #[schema(example = "You help customers of Acme Telecom with billing questions.")]
    pub system_prompt: String,
    /// First thing said on an answered call.
    #[schema(example = "Hi, this is Sam from Acme. How can I help?")]
    pub greeting: String,
    /// Tone.
    pub style: PersonaStyle,
    /// Language spoken and transcribed.
    #[schema(example = "en-US")]
    pub language: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Persona> for PersonaResponse {
    fn from(p: Persona) -> Self {
        Self {
            id: p.id.into_uuid(),
            name: p.name,
            voice: VoiceResponse {
                name: p.voice.name,
                speed: p.voice.speed,
            },
            system_prompt: p.system_prompt,
            greeting: p.greeting,
            style: p.style.into(),
            language: p.language.as_str().to_owned(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// Creates a persona (member).
#[utoipa::path(post, path = "/v1/personas", tag = "personas", request_body = PersonaRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "created", body = PersonaResponse),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_persona(
    State(state): State<AppState>,
    Auth(who): Auth,
    Json(body): Json<PersonaRequest>,
) -> ApiResult<(StatusCode, Json<PersonaResponse>)> {
    let persona = state.personas.create(&who, body.parse()?).await?;
    Ok((StatusCode::CREATED, Json(persona.into())))
}

/// Lists personas.
#[utoipa::path(get, path = "/v1/personas", tag = "personas", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "a page", body = Paged<PersonaResponse>),
        (status = 400, description = "malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_personas(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Paged<PersonaResponse>>> {
    let page = state.personas.list(&who, params.to_request()?).await?;
    Ok(Json(Paged::from_page(page, PersonaResponse::from)))
}

/// One persona.
#[utoipa::path(get, path = "/v1/personas/{id}", tag = "personas",
    params(("id" = uuid::Uuid, Path, description = "persona id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the persona", body = PersonaResponse),
        (status = 400, description = "malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_persona(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<Json<PersonaResponse>> {
    Ok(Json(
        state
            .personas
            .get(&who, PersonaId::from_uuid(id))
            .await?
            .into(),
    ))
}

/// Replaces a persona's fields (member).
#[utoipa::path(put, path = "/v1/personas/{id}", tag = "personas", request_body = PersonaRequest,
    params(("id" = uuid::Uuid, Path, description = "persona id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "updated", body = PersonaResponse),
        (status = 400, description = "malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_persona(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
    Json(body): Json<PersonaRequest>,
) -> ApiResult<Json<PersonaResponse>> {
    let persona = state
        .personas
        .update(&who, PersonaId::from_uuid(id), body.parse()?)
        .await?;
    Ok(Json(persona.into()))
}

/// Deletes a persona no experiment uses (admin).
#[utoipa::path(delete, path = "/v1/personas/{id}", tag = "personas",
    params(("id" = uuid::Uuid, Path, description = "persona id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "needs the admin role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "an experiment uses the persona (`persona_in_use`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_persona(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    state
        .personas
        .delete(&who, PersonaId::from_uuid(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The persona routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_persona, list_personas))
        .routes(routes!(get_persona, update_persona, delete_persona))
}
