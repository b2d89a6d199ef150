//! The use cases' error: what went wrong, in terms the API maps to HTTP once.

use iace_domain::Role;
use iace_domain::ports::{BoxError, InfraError, ProviderError, StoreError};
use serde::Serialize;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, as the client named it (`phone`, `variants[1].weight`).
    pub field: String,
    /// A stable snake_case code (`invalid_phone`, `required`, `too_long`).
    pub code: &'static str,
    /// A human explanation.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The resource does not exist in the caller's organisation.
    #[error("{entity} not found")]
    NotFound {
        /// What was looked for.
        entity: &'static str,
    },
    /// The request conflicts with the current state (a duplicate, a concurrent
    /// change, a persona still in use).
    #[error("{message}")]
    Conflict {
        /// Stable snake_case code.
        code: &'static str,
        /// Explanation for humans.
        message: String,
    },
    /// The request is malformed; one entry per invalid field.
    #[error("the request is invalid")]
    Validation {
        /// What is wrong.
        errors: Vec<FieldError>,
    },
    /// No valid credentials.
    #[error("authentication failed")]
    Unauthenticated {
        /// Stable snake_case code (`missing_credentials`, `invalid_token`,
        /// `token_expired`, `token_reused`, `invalid_credentials`).
        code: &'static str,
    },
    /// Authenticated, but the role does not allow it.
    #[error("this action needs the {required} role")]
    Forbidden {
        /// The least role that may do it.
        required: Role,
    },
    /// An outside provider refused or failed a command the request depended on
    /// (a dial, a transfer); `message` says what, without provider internals.
    #[error("{message}")]
    Provider {
        /// Stable snake_case code (`dial_failed`, `transfer_failed`).
        code: &'static str,
        /// Explanation for humans (ids of what was affected, never secrets).
        message: String,
        /// Whether the same request may succeed later.
        retryable: bool,
        /// The provider's error.
        #[source]
        source: BoxError,
    },
    /// A dependency (database, cache, provider) is unavailable; retry later.
    #[error("a dependency is unavailable")]
    Unavailable {
        /// The dependency's error.
        #[source]
        source: BoxError,
    },
    /// A bug or corrupt data; details are logged, never shown.
    #[error("internal error")]
    Internal {
        /// What happened.
        #[source]
        source: BoxError,
    },
}

impl AppError {
    /// A validation error on one field.
    pub fn invalid(
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::Validation {
            errors: vec![FieldError::new(field, code, message)],
        }
    }

    /// A stable snake_case code for the error kind (the problem's `code`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Conflict { code, .. }
            | Self::Provider { code, .. }
            | Self::Unauthenticated { code } => code,
            Self::Validation { .. } => "validation_failed",
            Self::Forbidden { .. } => "forbidden",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal { .. } => "internal_error",
        }
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { entity } => Self::NotFound { entity },
            StoreError::AlreadyExists { entity, field } => Self::Conflict {
                code: "already_exists",
                message: format!("a {entity} with this {field} already exists"),
            },
            StoreError::Conflict { entity, .. } => Self::Conflict {
                code: "concurrent_modification",
                message: format!("the {entity} was changed by another request; retry"),
            },
            StoreError::Invalid { entity, reason } => Self::Validation {
                errors: vec![FieldError::new(entity, "invalid", reason)],
            },
            err @ StoreError::Unavailable { .. } => Self::Unavailable {
                source: Box::new(err),
            },
            err @ StoreError::Corrupt { .. } => Self::Internal {
                source: Box::new(err),
            },
        }
    }
}

impl From<ProviderError> for AppError {
    fn from(err: ProviderError) -> Self {
        Self::Unavailable {
            source: Box::new(err),
        }
    }
}

impl From<InfraError> for AppError {
    fn from(err: InfraError) -> Self {
        Self::Unavailable {
            source: Box::new(err),
        }
    }
}
