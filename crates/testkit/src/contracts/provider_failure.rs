//! How a provider's fake misbehaves, shared by the provider contract suites,
//! and what the adapter must make of it.

use iace_domain::ports::ProviderError;

/// A way a provider fails, on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 429 with `Retry-After` in seconds.
    RateLimited {
        /// The header's value.
        retry_after_secs: u64,
    },
    /// 5xx (or the transport's equivalent).
    Unavailable,
    /// Our credentials are refused.
    Unauthorized,
    /// Slower than the adapter's deadline.
    Slow,
    /// A success whose body is not the documented format.
    Malformed,
}

/// Every failure, for suites to iterate.
pub const ALL: [Failure; 5] = [
    Failure::RateLimited {
        retry_after_secs: 30,
    },
    Failure::Unavailable,
    Failure::Unauthorized,
    Failure::Slow,
    Failure::Malformed,
];

/// Asserts that `err` is what `failure` must become, naming `case`.
///
/// # Panics
/// When it is not.
pub fn assert_maps(case: &str, failure: Failure, err: &ProviderError) {
    assert!(
        !err.provider().is_empty(),
        "{case}: the error names its provider"
    );
    let ok = match failure {
        Failure::RateLimited { retry_after_secs } => matches!(
            err,
            ProviderError::RateLimited { retry_after, .. }
                if retry_after.is_none_or(|d| d.as_secs() == retry_after_secs)
        ),
        // A breaker opened by the repeated 5xx is an equally right answer.
        Failure::Unavailable => matches!(
            err,
            ProviderError::Unavailable { .. } | ProviderError::CircuitOpen { .. }
        ),
        Failure::Unauthorized => matches!(err, ProviderError::Unauthorized { .. }),
        Failure::Slow => matches!(err, ProviderError::Timeout { .. }),
        Failure::Malformed => matches!(err, ProviderError::InvalidResponse { .. }),
    };
    assert!(
        ok,
        "{case}: {failure:?} must map to its ProviderError, got {err:?}"
    );
}
