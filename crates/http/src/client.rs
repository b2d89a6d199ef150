//! The outbound client: a reqwest client behind reqwest-middleware, with
//! trace propagation and one resilience layer (circuit breaker, per-attempt
//! timeout, retries with full-jitter exponential backoff that honour
//! `Retry-After`, an overall deadline). Every failure leaves this module as
//! the domain's [`ProviderError`], naming the provider.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{Extensions, HeaderValue, Method, StatusCode};
use iace_domain::ports::ProviderError;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next, RequestBuilder};
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::{Jitter, RetryDecision, RetryPolicy, Retryable};
use serde::de::DeserializeOwned;

use crate::breaker::CircuitBreaker;
use crate::config::{BreakerConfig, HttpPolicy};
use crate::context;

/// The user agent of every outbound request.
pub const USER_AGENT: &str = concat!("iace/", env!("CARGO_PKG_VERSION"));

/// Whether a request may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Repeating it is harmless (a GET, or a POST the provider deduplicates,
    /// e.g. by Telnyx `command_id`).
    Safe,
    /// Never repeated (a repeat could act twice).
    Never,
}

/// One outbound operation: its name (for logs and metrics), its policy and
/// whether it may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// A stable name, e.g. `dial` or `chat_stream`.
    pub name: &'static str,
    /// Attempts, timeouts, backoff.
    pub policy: HttpPolicy,
    /// Whether retries are allowed at all.
    pub retry: Retry,
}

impl Operation {
    /// An operation that may be retried under `policy`.
    #[must_use]
    pub const fn safe(name: &'static str, policy: HttpPolicy) -> Self {
        Self {
            name,
            policy,
            retry: Retry::Safe,
        }
    }

    /// An operation sent at most once (the deadline still applies).
    #[must_use]
    pub const fn once(name: &'static str, policy: HttpPolicy) -> Self {
        Self {
            name,
            policy,
            retry: Retry::Never,
        }
    }
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client")]
pub struct BuildError(#[source] reqwest::Error);

/// Why the resilience layer gave up without a response (carried through
/// reqwest-middleware's error, then mapped to [`ProviderError`]).
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("circuit open")]
    CircuitOpen,
    #[error("attempt timed out")]
    TimedOut,
}

/// The outbound HTTP client of one provider.
#[derive(Clone)]
pub struct OutboundClient {
    provider: &'static str,
    http: ClientWithMiddleware,
    breaker: Arc<CircuitBreaker>,
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundClient")
            .field("provider", &self.provider)
            .field("breaker", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

impl OutboundClient {
    /// A client for `provider` with its own circuit breaker.
    ///
    /// Installs ring as the process's rustls provider if none is installed
    /// yet (the project's one TLS stack).
    ///
    /// # Errors
    /// [`BuildError`] when the TLS stack cannot be set up.
    pub fn new(provider: &'static str, breaker: &BreakerConfig) -> Result<Self, BuildError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            // Never follow redirects: a provider's key header (x-goog-api-key,
            // …) would be forwarded to whatever host the redirect names.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(BuildError)?;
        let breaker = Arc::new(CircuitBreaker::new(provider, breaker));
        let http = ClientBuilder::new(client)
            .with(Propagate)
            .with(Resilience {
                provider,
                breaker: breaker.clone(),
            })
            .build();
        Ok(Self {
            provider,
            http,
            breaker,
        })
    }

    /// The provider's name.
    #[must_use]
    pub const fn provider(&self) -> &'static str {
        self.provider
    }

    /// The provider's circuit breaker (its state feeds metrics and readiness).
    #[must_use]
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// Starts a request; send it with [`send`](Self::send).
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends `request` as `operation`. A 2xx response is returned; anything
    /// else becomes a [`ProviderError`].
    ///
    /// # Errors
    /// [`ProviderError::Timeout`] past the deadline or an attempt's timeout;
    /// [`ProviderError::CircuitOpen`]; [`ProviderError::RateLimited`] (429);
    /// [`ProviderError::Unauthorized`] (401/403); [`ProviderError::Rejected`]
    /// (other 4xx, with the provider's explanation);
    /// [`ProviderError::Unavailable`] (5xx, connection errors).
    pub async fn send(
        &self,
        operation: Operation,
        request: RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let deadline = Deadline(Instant::now() + operation.policy.deadline());
        let mut response = request
            .with_extension(operation)
            .send()
            .await
            .map_err(|err| self.transport_error(operation, err))?;
        if response.status().is_success() {
            response.extensions_mut().insert(deadline);
            return Ok(response);
        }
        Err(self.status_error(operation, response, deadline).await)
    }

    /// [`send`](Self::send), then decodes the JSON body (read within the
    /// operation's attempt timeout).
    ///
    /// # Errors
    /// As [`send`](Self::send); [`ProviderError::InvalidResponse`] when the
    /// body is not the expected JSON; [`ProviderError::Timeout`] when it does
    /// not arrive in time.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        operation: Operation,
        request: RequestBuilder,
    ) -> Result<T, ProviderError> {
        let response = self.send(operation, request).await?;
        let body = self.read_body(operation, response).await?;
        serde_json::from_slice(&body).map_err(|err| ProviderError::InvalidResponse {
            provider: self.provider,
            source: Box::new(err),
        })
    }

    /// Reads a whole body within the operation's attempt timeout and what is
    /// left of its deadline (for a response from [`send`](Self::send)). A
    /// body that does not arrive counts against the breaker.
    ///
    /// # Errors
    /// [`ProviderError::Timeout`]; [`ProviderError::Unavailable`] when the
    /// connection drops mid-body.
    pub async fn read_body(
        &self,
        operation: Operation,
        response: reqwest::Response,
    ) -> Result<bytes::Bytes, ProviderError> {
        let limit = response
            .extensions()
            .get::<Deadline>()
            .map_or(operation.policy.attempt_timeout(), |d| {
                d.remaining().min(operation.policy.attempt_timeout())
            });
        match tokio::time::timeout(limit, response.bytes()).await {
            Err(_) => {
                self.breaker.on_failure();
                Err(ProviderError::Timeout {
                    provider: self.provider,
                })
            }
            Ok(Err(err)) => {
                self.breaker.on_failure();
                Err(ProviderError::Unavailable {
                    provider: self.provider,
                    source: Box::new(err.without_url()),
                })
            }
            Ok(Ok(body)) => Ok(body),
        }
    }

    /// What is left of the deadline of the operation that produced
    /// `response` (for adapters that stream its body); `None` when it did not
    /// come from [`send`](Self::send).
    #[must_use]
    pub fn remaining(response: &reqwest::Response) -> Option<Duration> {
        response
            .extensions()
            .get::<Deadline>()
            .map(Deadline::remaining)
    }

    fn transport_error(
        &self,
        operation: Operation,
        err: reqwest_middleware::Error,
    ) -> ProviderError {
        let provider = self.provider;
        let mapped = match err {
            reqwest_middleware::Error::Middleware(err) => match err.downcast_ref::<Refusal>() {
                Some(Refusal::CircuitOpen) => ProviderError::CircuitOpen { provider },
                Some(Refusal::TimedOut) => ProviderError::Timeout { provider },
                None => ProviderError::Unavailable {
                    provider,
                    source: err.into(),
                },
            },
            reqwest_middleware::Error::Reqwest(err) if err.is_timeout() => {
                ProviderError::Timeout { provider }
            }
            reqwest_middleware::Error::Reqwest(err) => ProviderError::Unavailable {
                provider,
                source: Box::new(err.without_url()),
            },
        };
        tracing::warn!(
            provider,
            operation = operation.name,
            error = %mapped,
            "outbound request failed"
        );
        mapped
    }

    async fn status_error(
        &self,
        operation: Operation,
        response: reqwest::Response,
        deadline: Deadline,
    ) -> ProviderError {
        let provider = self.provider;
        let status = response.status();
        let retry_after = retry_after(&response);
        let limit = deadline.remaining().min(Duration::from_secs(2));
        let detail = match tokio::time::timeout(limit, response.bytes()).await {
            Ok(Ok(body)) => error_detail(&body),
            _ => String::new(),
        };
        tracing::warn!(
            provider,
            operation = operation.name,
            status = status.as_u16(),
            "outbound request refused"
        );
        match status {
            StatusCode::TOO_MANY_REQUESTS => ProviderError::RateLimited {
                provider,
                retry_after,
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                ProviderError::Unauthorized { provider }
            }
            s if s.is_client_error() => ProviderError::Rejected {
                provider,
                status: Some(s.as_u16()),
                detail,
            },
            s => ProviderError::Unavailable {
                provider,
                source: format!("HTTP {}: {detail}", s.as_u16()).into(),
            },
        }
    }
}

/// The provider's explanation from an error body: `[code] message` from
/// common error shapes (the code first, so no cut loses it), else the text;
/// phone-number-like digit runs masked (providers echo the numbers they
/// refuse, and details are logged); at most 300 characters.
fn error_detail(body: &[u8]) -> String {
    mask_numbers(&raw_detail(body)).chars().take(300).collect()
}

/// Replaces every run of 7 or more digits (and a `+` before it) with `[number]`.
fn mask_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        let run = digits.trim_start_matches('+').len();
        if run >= 7 {
            out.push_str("[number]");
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (c == '+' && digits.is_empty()) {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

fn raw_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let found = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| {
            let candidates = [
                json.pointer("/error/message"),
                json.pointer("/errors/0/detail"),
                json.pointer("/errors/0/title"),
                json.pointer("/message"),
                json.pointer("/err_msg"),
            ];
            let first = candidates.into_iter().flatten().find_map(|v| v.as_str());
            let code = json
                .pointer("/errors/0/code")
                .or_else(|| json.pointer("/error/code"))
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or_else(|| Some(v.to_string()))
                })
                .filter(|c| c != "null");
            match (code, first) {
                (Some(code), Some(m)) => Some(format!("[{code}] {m}")),
                (Some(code), None) => Some(format!("[{code}]")),
                (None, Some(m)) => Some(m.to_owned()),
                (None, None) => None,
            }
        });
    found.unwrap_or_else(|| text.trim().to_owned())
}

/// The provider's error code from a [`ProviderError::Rejected`] detail made
/// here (`[90018] Call has already ended` → `90018`).
#[must_use]
pub fn error_code(detail: &str) -> Option<&str> {
    let rest = detail.strip_prefix('[')?;
    let end = rest.find(']')?;
    Some(&rest[..end])
}

/// When the operation that produced a response must be over.
#[derive(Debug, Clone, Copy)]
struct Deadline(Instant);

impl Deadline {
    fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_millis((s * 1000.0).min(3_600_000.0) as u64))
}

/// An attempt shorter than this (or than the attempt timeout, if smaller) is
/// not started just to use up the deadline.
const MIN_USEFUL_ATTEMPT: Duration = Duration::from_millis(100);

/// A failed attempt, for logs: the status, or the error's kind — never its
/// URL (a query may carry a key).
fn outcome(result: &reqwest_middleware::Result<reqwest::Response>) -> String {
    match result {
        Ok(response) => response.status().as_str().to_owned(),
        Err(reqwest_middleware::Error::Middleware(err)) => err.to_string(),
        Err(reqwest_middleware::Error::Reqwest(err)) => {
            let kind = if err.is_timeout() {
                "timeout"
            } else if err.is_connect() {
                "connect error"
            } else if err.is_body() {
                "body error"
            } else {
                "request error"
            };
            kind.to_owned()
        }
    }
}

/// Adds `x-request-id` and `traceparent` from the task's outbound context.
struct Propagate;

#[async_trait::async_trait]
impl Middleware for Propagate {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let (request_id, trace) = context::outbound();
        let headers = request.headers_mut();
        if let Some(id) = request_id.as_deref()
            && let Ok(value) = HeaderValue::from_str(id)
        {
            headers.insert("x-request-id", value);
        }
        if let Ok(value) = HeaderValue::from_str(&trace.to_string()) {
            headers.insert("traceparent", value);
        }
        next.run(request, extensions).await
    }
}

/// Breaker, per-attempt timeout, retries and the deadline, as one layer so a
/// timed-out attempt is counted by the breaker like any other failure.
struct Resilience {
    provider: &'static str,
    breaker: Arc<CircuitBreaker>,
}

enum Attempt {
    Done(reqwest_middleware::Result<reqwest::Response>),
    Failed(
        reqwest_middleware::Result<reqwest::Response>,
        Option<Duration>,
    ),
}

/// Tells the breaker a call it let through was abandoned (its caller dropped
/// the future) unless the call reported back, so a half-open probe whose
/// caller gave up does not leave the circuit waiting for it forever.
struct Reported<'a> {
    breaker: &'a CircuitBreaker,
    done: bool,
}

impl Drop for Reported<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.on_abandoned();
        }
    }
}

impl Resilience {
    /// One attempt. `cut_short` says the timeout is what is left of the
    /// deadline rather than the attempt's own: timing out then is ours, not
    /// the provider's, and does not count against the breaker.
    async fn attempt(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
        timeout: Duration,
        cut_short: bool,
    ) -> Attempt {
        if !self.breaker.try_acquire() {
            return Attempt::Done(Err(reqwest_middleware::Error::middleware(
                Refusal::CircuitOpen,
            )));
        }
        let mut report = Reported {
            breaker: &self.breaker,
            done: false,
        };
        let result = match tokio::time::timeout(timeout, next.run(request, extensions)).await {
            Ok(result) => result,
            Err(_) if cut_short => {
                // `report` is dropped undone: the breaker hears "abandoned".
                return Attempt::Done(Err(reqwest_middleware::Error::middleware(
                    Refusal::TimedOut,
                )));
            }
            Err(_) => Err(reqwest_middleware::Error::middleware(Refusal::TimedOut)),
        };
        report.done = true;
        let timed_out = matches!(&result, Err(reqwest_middleware::Error::Middleware(e)) if e.downcast_ref::<Refusal>().is_some());
        let retryable = if timed_out {
            Some(Retryable::Transient)
        } else {
            match &result {
                Ok(response) => reqwest_retry::default_on_request_success(response),
                Err(err) => reqwest_retry::default_on_request_failure(err),
            }
        };
        let provider_down = match &result {
            Ok(response) => response.status().is_server_error(),
            Err(_) => true,
        };
        if provider_down {
            self.breaker.on_failure();
        } else {
            self.breaker.on_success();
        }
        match retryable {
            Some(Retryable::Transient) => {
                let wait = result.as_ref().ok().and_then(retry_after);
                Attempt::Failed(result, wait)
            }
            _ => Attempt::Done(result),
        }
    }
}

/// How an operation ended, as a bounded metric label.
fn outcome_label(result: &reqwest_middleware::Result<reqwest::Response>) -> &'static str {
    match result {
        Ok(response) if response.status().is_success() => "ok",
        Ok(response) if response.status().as_u16() == 429 => "rate_limited",
        Ok(response) if response.status().is_client_error() => "client_error",
        Ok(_) => "server_error",
        Err(reqwest_middleware::Error::Middleware(err)) => match err.downcast_ref::<Refusal>() {
            Some(Refusal::CircuitOpen) => "circuit_open",
            Some(Refusal::TimedOut) => "timeout",
            None => "error",
        },
        Err(reqwest_middleware::Error::Reqwest(err)) if err.is_timeout() => "timeout",
        Err(_) => "transport_error",
    }
}

/// Records a finished operation: `iace_provider_request_duration_seconds`
/// (every attempt and wait included) and, unless it succeeded,
/// `iace_provider_errors_total`, both by provider, operation and outcome.
fn record(
    provider: &'static str,
    operation: &'static str,
    started: Instant,
    result: &reqwest_middleware::Result<reqwest::Response>,
) {
    record_operation(
        provider,
        operation,
        outcome_label(result),
        started.elapsed(),
    );
}

/// Records one finished provider operation — `iace_provider_request_duration_seconds`
/// and, unless `outcome` is `ok`, `iace_provider_errors_total` — for
/// transports outside this stack (a WebSocket handshake).
pub fn record_operation(
    provider: &'static str,
    operation: &'static str,
    outcome: &'static str,
    took: std::time::Duration,
) {
    metrics::histogram!(
        "iace_provider_request_duration_seconds",
        "provider" => provider,
        "operation" => operation,
        "outcome" => outcome,
    )
    .record(took.as_secs_f64());
    if outcome != "ok" {
        metrics::counter!(
            "iace_provider_errors_total",
            "provider" => provider,
            "operation" => operation,
            "outcome" => outcome,
        )
        .increment(1);
    }
}

#[async_trait::async_trait]
impl Middleware for Resilience {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let operation = extensions
            .get::<Operation>()
            .copied()
            .unwrap_or_else(|| Operation::once("unnamed", HttpPolicy::default()));
        let started = Instant::now();
        let result = self.run(request, extensions, next, operation).await;
        record(self.provider, operation.name, started, &result);
        result
    }
}

impl Resilience {
    /// The operation: attempts, waits and the deadline.
    async fn run(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
        operation: Operation,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let policy = operation.policy;
        let started = Instant::now();
        let started_at = SystemTime::now();
        let deadline = started + policy.deadline();
        let backoff = ExponentialBackoff::builder()
            .retry_bounds(
                Duration::from_millis(policy.backoff_min_ms.max(1)),
                Duration::from_millis(policy.backoff_max_ms.max(policy.backoff_min_ms.max(1))),
            )
            .jitter(Jitter::Full)
            .build_with_max_retries(policy.attempts.saturating_sub(1));
        let mut past_retries = 0u32;
        let mut request = Some(request);
        let mut last: Option<reqwest_middleware::Result<reqwest::Response>> = None;
        loop {
            let Some(current) = request.take() else {
                return Err(reqwest_middleware::Error::middleware(Refusal::TimedOut));
            };
            // Keep a copy for the next attempt only when one may follow.
            let retryable = operation.retry == Retry::Safe && policy.attempts > past_retries + 1;
            request = if retryable { current.try_clone() } else { None };
            let remaining = deadline.saturating_duration_since(Instant::now());
            // A retry with only a sliver of the deadline left cannot succeed:
            // the last real answer is more useful than a certain timeout.
            let useful = policy.attempt_timeout().min(MIN_USEFUL_ATTEMPT);
            if remaining < useful
                && let Some(last) = last.take()
            {
                return last;
            }
            if remaining.is_zero() {
                return Err(reqwest_middleware::Error::middleware(Refusal::TimedOut));
            }
            let timeout = policy.attempt_timeout().min(remaining);
            let cut_short = timeout < policy.attempt_timeout();
            let (result, asked_wait) = match self
                .attempt(current, extensions, next.clone(), timeout, cut_short)
                .await
            {
                Attempt::Done(result) => return result,
                Attempt::Failed(result, wait) => (result, wait),
            };
            if request.is_none() {
                return result;
            }
            let wait = match (asked_wait, backoff.should_retry(started_at, past_retries)) {
                (Some(asked), RetryDecision::Retry { .. }) => asked,
                (None, RetryDecision::Retry { execute_after }) => execute_after
                    .duration_since(SystemTime::now())
                    .unwrap_or_default(),
                (_, RetryDecision::DoNotRetry) => return result,
            };
            if Instant::now() + wait >= deadline {
                // Waiting as asked would pass the deadline: give up now.
                return result;
            }
            metrics::counter!(
                "iace_provider_retries_total",
                "provider" => self.provider,
                "operation" => operation.name,
            )
            .increment(1);
            tracing::info!(
                provider = self.provider,
                operation = operation.name,
                attempt = past_retries + 1,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                outcome = %outcome(&result),
                "retrying outbound request"
            );
            last = Some(result);
            tokio::time::sleep(wait).await;
            past_retries += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details_come_from_common_error_shapes() {
        let telnyx = error_detail(
            br#"{"errors":[{"code":"90018","title":"Call has already ended","detail":"This call is no longer active"}]}"#,
        );
        assert_eq!(telnyx, "[90018] This call is no longer active");
        assert_eq!(error_code(&telnyx), Some("90018"));
        assert_eq!(
            error_detail(
                br#"{"error":{"message":"model not found","type":"invalid_request_error","code":"model_not_found"}}"#
            ),
            "[model_not_found] model not found"
        );
        assert_eq!(error_detail(b"plain text  "), "plain text");
        assert_eq!(error_code("plain text"), None);
        assert_eq!(error_detail(&[b'x'; 1000]).len(), 300);
    }

    #[test]
    fn phone_numbers_in_error_details_are_masked() {
        assert_eq!(
            error_detail(br#"{"errors":[{"code":"10016","detail":"The number +14155550100 is not dialable (tried 4155550100)"}]}"#),
            "[10016] The number [number] is not dialable (tried [number])"
        );
        assert_eq!(mask_numbers("code 90018, 422, +44"), "code 90018, 422, +44");
    }
}
