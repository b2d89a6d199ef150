//! The one place errors become HTTP: RFC 9457 `application/problem+json`
//! bodies with a stable snake_case `code`, the request id, and field details
//! for validation errors. 5xx bodies say nothing internal; the error chain is
//! logged instead.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use iace_app::{AppError, FieldError};
use serde::Serialize;
use utoipa::ToSchema;

/// An error response, as documented in the OpenAPI schema `Problem`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:iace:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened, for humans.
    pub detail: String,
    /// Stable snake_case code for programs.
    pub code: String,
    /// The request's id (`X-Request-Id`), for support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Invalid fields (validation errors only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

/// One invalid field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemField {
    /// The field, as named in the request.
    pub field: String,
    /// Stable snake_case code.
    pub code: String,
    /// Explanation.
    pub message: String,
}

impl From<FieldError> for ProblemField {
    fn from(e: FieldError) -> Self {
        Self {
            field: e.field,
            code: e.code.to_owned(),
            message: e.message,
        }
    }
}

/// Everything a handler can fail with.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    title: &'static str,
    detail: String,
    errors: Vec<ProblemField>,
    www_authenticate: bool,
    retry_after: Option<u64>,
}

impl ApiError {
    /// A problem with the given parts.
    pub fn new(
        status: StatusCode,
        code: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.to_owned(),
            title,
            detail: detail.into(),
            errors: Vec::new(),
            www_authenticate: false,
            retry_after: None,
        }
    }

    /// 400 with one invalid field.
    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Validation failed",
            "the request is invalid",
        );
        err.errors.push(ProblemField {
            field: field.to_owned(),
            code: code.to_owned(),
            message: message.into(),
        });
        err
    }

    /// 404 for an unknown route.
    pub fn route_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "Not found",
            "no such route",
        )
    }

    /// Adds a `Retry-After` header (seconds).
    #[must_use]
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        let code = err.code();
        match err {
            AppError::NotFound { entity } => Self::new(
                StatusCode::NOT_FOUND,
                code,
                "Not found",
                format!("{entity} not found"),
            ),
            AppError::Conflict { message, .. } => {
                Self::new(StatusCode::CONFLICT, code, "Conflict", message)
            }
            AppError::Validation { errors } => {
                let mut e = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    code,
                    "Validation failed",
                    "the request is invalid",
                );
                e.errors = errors.into_iter().map(ProblemField::from).collect();
                e
            }
            AppError::Unauthenticated { code } => {
                let mut e = Self::new(
                    StatusCode::UNAUTHORIZED,
                    code,
                    "Unauthorized",
                    match code {
                        "missing_credentials" => "send Authorization: Bearer <token or API key>",
                        "token_expired" => "the token has expired",
                        "token_reused" => {
                            "this refresh token was already used; the session is revoked"
                        }
                        "invalid_credentials" => "wrong e-mail or password",
                        "revoked_key" => "the API key is revoked or expired",
                        _ => "the credentials are not valid",
                    },
                );
                e.www_authenticate = true;
                e
            }
            AppError::Forbidden { required } => Self::new(
                StatusCode::FORBIDDEN,
                code,
                "Forbidden",
                format!("this action needs the {required} role"),
            ),
            AppError::Provider {
                message,
                retryable,
                source,
                ..
            } => {
                tracing::warn!(error = %source, chain = ?source, "provider command failed");
                let (status, title) = if retryable {
                    (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable")
                } else {
                    (StatusCode::BAD_GATEWAY, "Bad gateway")
                };
                let mut e = Self::new(status, code, title, message);
                e.retry_after = retryable.then_some(1);
                e
            }
            AppError::Unavailable { source } => {
                tracing::warn!(error = %source, chain = ?source, "dependency unavailable");
                let mut e = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code,
                    "Service unavailable",
                    "a dependency is unavailable; retry later",
                );
                e.retry_after = Some(1);
                e
            }
            AppError::Internal { source } => {
                tracing::error!(error = %source, chain = ?source, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code,
                    "Internal server error",
                    "something went wrong on our side",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (status, code) = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            JsonRejection::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            JsonRejection::BytesRejection(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            _ => (StatusCode::BAD_REQUEST, "malformed_json"),
        };
        Self::new(status, code, "Bad request body", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "Bad path",
            rejection.body_text(),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "Bad query",
            rejection.body_text(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: format!("urn:iace:problem:{}", self.code),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code,
            request_id: None,
            errors: self.errors,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // The request-id middleware adds the id to the body on the way out.
        response.extensions_mut().insert(problem);
        response
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
