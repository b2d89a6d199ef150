//! # iace-http — the outbound HTTP stack
//!
//! The one way provider adapters talk HTTP: reqwest behind reqwest-middleware,
//! with
//! - retries with exponential backoff and full jitter (reqwest-retry's policy),
//!   only for requests marked safe to repeat, honouring `Retry-After`;
//! - a per-attempt timeout and an overall deadline per operation;
//! - a circuit breaker per provider (closed → open → half-open probe), whose
//!   state is exposed for metrics and readiness;
//! - `x-request-id` and W3C `traceparent` on every request, from the task's
//!   [`context`] (or the current span's trace, outside a request);
//! - per provider and operation: request duration, errors and retries as
//!   metrics (`iace_provider_*`, through the `metrics` facade);
//! - one user agent, and no secret in any log line (headers are never logged;
//!   URLs are logged without their query).
//!
//! Failures leave as the domain's `ProviderError`, so adapters only add their
//! provider-specific meaning (e.g. Telnyx's "call already ended").
//!
//! **Must not depend on** any adapter crate, the app crate or axum: it is a
//! support crate for adapters, depending on the domain only for its error type.

pub mod breaker;
pub mod client;
pub mod config;
pub mod context;

pub use breaker::{BreakerState, CircuitBreaker};
pub use client::{
    BuildError, Operation, OutboundClient, Retry, USER_AGENT, error_code, record_operation,
};
pub use config::{BreakerConfig, HttpPolicy};
pub use context::{OutboundContext, TraceParent};
