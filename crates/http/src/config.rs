//! Per-operation policies and per-provider breaker settings, from typed
//! configuration (each adapter's config section embeds them).

use std::time::Duration;

use serde::Deserialize;

/// How one kind of outbound request is made: attempts, timeouts, backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpPolicy {
    /// Attempts in all (1 = no retry). Only requests marked safe to repeat
    /// are ever retried.
    pub attempts: u32,
    /// One attempt may take this long to get the response head (ms).
    pub attempt_timeout_ms: u64,
    /// The whole operation, retries and waits included, ends by then (ms).
    pub deadline_ms: u64,
    /// Smallest backoff before a retry (ms); full jitter draws each wait
    /// uniformly between zero and the exponential bound.
    pub backoff_min_ms: u64,
    /// Largest backoff before a retry (ms); a `Retry-After` the provider sends
    /// is honoured up to the deadline instead.
    pub backoff_max_ms: u64,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            attempts: 2,
            attempt_timeout_ms: 5_000,
            deadline_ms: 10_000,
            backoff_min_ms: 100,
            backoff_max_ms: 2_000,
        }
    }
}

impl HttpPolicy {
    /// Sentiment per caller turn: 2 attempts within 8 s.
    #[must_use]
    pub const fn sentiment() -> Self {
        Self {
            attempts: 2,
            attempt_timeout_ms: 4_000,
            deadline_ms: 8_000,
            backoff_min_ms: 100,
            backoff_max_ms: 1_000,
        }
    }

    /// Embeddings: 2 attempts within 10 s.
    #[must_use]
    pub const fn embeddings() -> Self {
        Self {
            attempts: 2,
            attempt_timeout_ms: 5_000,
            deadline_ms: 10_000,
            backoff_min_ms: 200,
            backoff_max_ms: 2_000,
        }
    }

    /// Telephony commands (idempotent by `command_id`): 3 attempts within 10 s.
    #[must_use]
    pub const fn telephony() -> Self {
        Self {
            attempts: 3,
            attempt_timeout_ms: 3_000,
            deadline_ms: 10_000,
            backoff_min_ms: 100,
            backoff_max_ms: 1_000,
        }
    }

    /// A streamed reply from a language model: the head must come quickly,
    /// the body then streams for as long as it takes. One retry.
    #[must_use]
    pub const fn streaming() -> Self {
        Self {
            attempts: 2,
            attempt_timeout_ms: 5_000,
            deadline_ms: 8_000,
            backoff_min_ms: 100,
            backoff_max_ms: 500,
        }
    }

    /// One attempt's timeout.
    #[must_use]
    pub const fn attempt_timeout(&self) -> Duration {
        Duration::from_millis(self.attempt_timeout_ms)
    }

    /// The operation's deadline.
    #[must_use]
    pub const fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
}

/// When a provider's circuit opens and how it recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Failures (5xx, timeouts, connection errors) within `window_ms` that
    /// open the circuit — when they are also at least half of the calls in
    /// the window.
    pub failure_threshold: u32,
    /// The window failures are counted in (ms).
    pub window_ms: u64,
    /// How long the circuit stays open before one probe is let through (ms).
    pub open_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            window_ms: 30_000,
            open_ms: 15_000,
        }
    }
}
