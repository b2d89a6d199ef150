//! The crate's own error (building the client) and the Groq-specific part of
//! mapping failures to the domain's [`ProviderError`]; the outbound stack maps
//! HTTP statuses and transport errors already.

use iace_domain::ports::ProviderError;

use crate::wire::ApiError;

/// The provider name every error carries.
pub(crate) const PROVIDER: &str = "groq";

/// How much of a provider's explanation an error keeps.
const DETAIL_CHARS: usize = 300;

/// The client could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `base_url` is not an absolute `http://` or `https://` URL.
    #[error("`base_url` must be an absolute http(s) URL")]
    InvalidBaseUrl,
    /// The outbound HTTP client could not be set up.
    #[error("could not build the HTTP client")]
    Http(#[from] iace_http::BuildError),
}

/// Groq-specific meaning of a failure the outbound stack already mapped.
///
/// 498 is Groq's `capacity_exceeded` (flex tier): the service is busy, not our
/// request wrong, so it is [`ProviderError::Unavailable`] (retryable) rather
/// than the [`ProviderError::Rejected`] a 4xx becomes.
pub(crate) fn refine(err: ProviderError) -> ProviderError {
    match err {
        ProviderError::Rejected {
            provider,
            status: Some(498),
            detail,
        } => ProviderError::Unavailable {
            provider,
            source: format!("capacity exceeded (HTTP 498): {detail}").into(),
        },
        other => other,
    }
}

/// An answer we could not understand.
pub(crate) fn invalid(source: impl Into<iace_domain::ports::BoxError>) -> ProviderError {
    ProviderError::InvalidResponse {
        provider: PROVIDER,
        source: source.into(),
    }
}

/// An error object the server sent inside a stream (or in place of a chunk).
///
/// Classified by its `code` or `type`: rate limits, credentials and invalid
/// requests keep their meaning; anything else (`server_error`,
/// `capacity_exceeded`, a bare message) means the service failed mid-reply,
/// which is [`ProviderError::Unavailable`].
pub(crate) fn from_stream_error(error: &ApiError) -> ProviderError {
    let (message, kind) = match error {
        ApiError::Text(message) => (message.clone(), String::new()),
        ApiError::Object {
            message,
            kind,
            code,
        } => {
            let code = match code {
                Some(serde_json::Value::String(code)) => code.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (
                message.clone().unwrap_or_default(),
                format!("{} {code}", kind.as_deref().unwrap_or_default()),
            )
        }
        ApiError::Other(value) => (value.to_string(), String::new()),
    };
    let detail: String = message.trim().chars().take(DETAIL_CHARS).collect();
    let kind = kind.to_ascii_lowercase();
    if kind.contains("rate_limit") {
        ProviderError::RateLimited {
            provider: PROVIDER,
            retry_after: None,
        }
    } else if kind.contains("authentication") || kind.contains("invalid_api_key") {
        ProviderError::Unauthorized { provider: PROVIDER }
    } else if kind.contains("invalid_request") {
        ProviderError::Rejected {
            provider: PROVIDER,
            status: None,
            detail,
        }
    } else {
        ProviderError::Unavailable {
            provider: PROVIDER,
            source: if detail.is_empty() {
                "the stream reported an error".into()
            } else {
                format!("the stream reported an error: {detail}").into()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn api_error(value: serde_json::Value) -> ApiError {
        serde_json::from_value(value).expect("an error object")
    }

    #[test]
    fn capacity_exceeded_is_unavailable_and_other_statuses_are_kept() {
        let err = refine(ProviderError::Rejected {
            provider: PROVIDER,
            status: Some(498),
            detail: "flex capacity exceeded".into(),
        });
        assert!(matches!(err, ProviderError::Unavailable { .. }), "{err:?}");
        assert!(err.is_retryable());
        let err = refine(ProviderError::Rejected {
            provider: PROVIDER,
            status: Some(400),
            detail: "bad".into(),
        });
        assert!(matches!(
            err,
            ProviderError::Rejected {
                status: Some(400),
                ..
            }
        ));
    }

    #[test]
    fn stream_errors_are_classified_by_code_and_type() {
        let cases = [
            (
                json!({"message": "slow down", "type": "tokens", "code": "rate_limit_exceeded"}),
                "rate_limited",
            ),
            (
                json!({"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}),
                "unauthorized",
            ),
            (
                json!({"message": "too long", "type": "invalid_request_error", "code": null}),
                "rejected",
            ),
            (
                json!({"message": "oops", "type": "server_error"}),
                "unavailable",
            ),
            (json!("overloaded"), "unavailable"),
            (json!(42), "unavailable"),
        ];
        for (error, kind) in cases {
            let err = from_stream_error(&api_error(error.clone()));
            assert_eq!(err.kind(), kind, "{error}");
            assert_eq!(err.provider(), PROVIDER);
        }
    }
}
