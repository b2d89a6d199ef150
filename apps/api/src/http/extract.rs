//! Extractors whose rejections are problem+json.

use axum::extract::{FromRequest, FromRequestParts, Path, Query};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use iace_app::AppError;
use iace_app::auth::Principal;

use super::error::ApiError;
use super::state::AppState;

/// A JSON body; malformed or invalid JSON is a problem response.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters; a malformed id is a 400 problem.
#[derive(Debug, FromRequestParts)]
#[from_request(via(Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters; malformed ones are a 400 problem.
#[derive(Debug, FromRequestParts)]
#[from_request(via(Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The authenticated caller (`Authorization: Bearer <JWT or API key>`).
#[derive(Debug, Clone, Copy)]
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AppError::Unauthenticated {
                code: "missing_credentials",
            })?;
        let (scheme, credential) = header.split_once(' ').ok_or(AppError::Unauthenticated {
            code: "invalid_token",
        })?;
        if !scheme.eq_ignore_ascii_case("bearer") || credential.trim().is_empty() {
            return Err(AppError::Unauthenticated {
                code: "invalid_token",
            }
            .into());
        }
        let principal = state.auth.authenticate(credential.trim()).await?;
        let slot = parts.extensions.get::<super::limits::Slot>().cloned();
        state
            .limits
            .check_request(&principal, slot.as_ref())
            .await?;
        tracing::Span::current().record("org_id", tracing::field::display(principal.org_id));
        Ok(Self(principal))
    }
}
