//! Per-plan rate limits: every authenticated request is counted against its
//! organisation's plan (GCRA through the `RateLimiter` port: Redis when
//! configured, so every instance shares the count; in-process otherwise).
//! Responses carry the IETF `RateLimit-Policy` / `RateLimit` headers; over the
//! limit is a 429 problem with `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use iace_app::auth::{Principal, Subject};
use iace_domain::ports::{
    CallRepository, LimitScope, OrgRepository, Quota, RateDecision, RateLimitKey, RateLimiter,
    SlotLease,
};
use iace_domain::{CallId, OrgId, Plan};

use super::error::ApiError;
use crate::config::{FailurePolicy, LimitsConfig};

const PLAN_TTL: Duration = Duration::from_secs(60);

/// How long a media stream's claim lasts unless renewed: an instance that
/// dies without releasing it blocks a new stream for the call this long.
pub const STREAM_LEASE: Duration = Duration::from_secs(30);

/// A call's one media stream, claimed across every instance (through the
/// shared limiter: Redis when configured). Renew it while the stream runs;
/// it is released when dropped.
pub struct StreamClaim {
    limiter: Arc<dyn RateLimiter>,
    lease: Option<SlotLease>,
    call: CallId,
}

impl std::fmt::Debug for StreamClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamClaim")
            .field("call", &self.call)
            .field("held", &self.lease.is_some())
            .finish()
    }
}

impl StreamClaim {
    /// Extends the claim by [`STREAM_LEASE`]. A claim that lapsed (the
    /// limiter was away longer than the lease) is taken again if it is free;
    /// if another stream took it meanwhile, this one goes on, and says so.
    pub async fn renew(&mut self) {
        let Some(lease) = &self.lease else {
            return;
        };
        let renewed = match self.limiter.renew(lease, STREAM_LEASE).await {
            Ok(true) => return,
            Ok(false) => {
                let key = RateLimitKey::media_stream(self.call);
                self.limiter.acquire(&key, 1, STREAM_LEASE).await
            }
            Err(err) => Err(err),
        };
        match renewed {
            Ok(Some(again)) => self.lease = Some(again),
            Ok(None) => tracing::warn!(
                call_id = %self.call,
                "this media stream's claim lapsed and another stream holds it"
            ),
            Err(err) => {
                tracing::warn!(call_id = %self.call, error = %err, "media stream claim not renewed");
            }
        }
    }
}

impl Drop for StreamClaim {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        let limiter = self.limiter.clone();
        // Released in the background; should that fail, the lease expires.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = limiter.release(&lease).await {
                    tracing::debug!(error = %err, "media stream claim not released; it will expire");
                }
            });
        }
    }
}

/// The limiter, the plans, and a short-lived cache of each org's plan.
pub struct Limits {
    limiter: Arc<dyn RateLimiter>,
    orgs: Arc<dyn OrgRepository>,
    config: LimitsConfig,
    plans: RwLock<HashMap<OrgId, (Plan, Instant)>>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One counter a request was checked against: its policy name, sustained
/// rate per minute, and the decision.
#[derive(Debug, Clone)]
struct Counted {
    policy: String,
    per_minute: u32,
    decision: RateDecision,
}

/// What the request's limit checks decided, for the response headers.
#[derive(Debug, Clone, Default)]
pub struct Slot(Arc<Mutex<Vec<Counted>>>);

impl Slot {
    fn record(&self, counted: Counted) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(counted);
    }
}

/// Whole seconds until `decision` would allow a retry (at least 1).
fn retry_seconds(decision: &RateDecision) -> u64 {
    let millis = decision.retry_after.map_or(1000, |d| d.as_millis());
    u64::try_from(millis.div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

impl Limits {
    /// Counts one unit under `key`. `None` when the limiter is down and the
    /// policy is open (the request goes ahead unlimited).
    async fn count(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
    ) -> Result<Option<RateDecision>, ApiError> {
        match self.limiter.check(key, quota, 1).await {
            Ok(decision) => Ok(Some(decision)),
            Err(err) => match self.config.failure_policy {
                FailurePolicy::Open => {
                    tracing::warn!(error = %err, "rate limiter unavailable; allowing (failure_policy = open)");
                    Ok(None)
                }
                FailurePolicy::Closed => Err(limiter_unavailable()),
            },
        }
    }

    /// Builds the limits over `limiter`.
    pub fn new(
        limiter: Arc<dyn RateLimiter>,
        orgs: Arc<dyn OrgRepository>,
        config: LimitsConfig,
    ) -> Self {
        Self {
            limiter,
            orgs,
            config,
            plans: RwLock::new(HashMap::new()),
        }
    }

    async fn plan(&self, org: OrgId) -> Result<Plan, ApiError> {
        let cached = self
            .plans
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&org)
            .filter(|(_, at)| at.elapsed() < PLAN_TTL)
            .map(|(plan, _)| *plan);
        if let Some(plan) = cached {
            return Ok(plan);
        }
        let plan = self
            .orgs
            .get(org)
            .await
            .map_err(iace_app::AppError::from)?
            .plan;
        self.plans
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(org, (plan, Instant::now()));
        Ok(plan)
    }

    /// Counts one request of `who` against its organisation's plan and, for an
    /// API key whose plan sets a per-key rate, against the key's own counter
    /// too; records each decision in `slot`.
    ///
    /// # Errors
    /// 429 `rate_limited` over the plan's rate, `api_key_rate_limited` over the
    /// key's; 503 when the limiter is down and the policy is closed.
    pub async fn check_request(
        &self,
        who: &Principal,
        slot: Option<&Slot>,
    ) -> Result<(), ApiError> {
        let plan = self.plan(who.org_id).await?;
        let limits = self.config.of(plan);
        if let (Subject::ApiKey(key_id), Some(per_minute)) =
            (who.subject, limits.api_key_requests_per_minute)
        {
            let burst = limits.api_key_burst.unwrap_or((per_minute / 10).max(1));
            let quota = Quota::per_minute(per_minute, burst);
            let key = RateLimitKey::api_key(key_id, LimitScope::Requests);
            if let Some(decision) = self.count(&key, &quota).await? {
                if let Some(slot) = slot {
                    slot.record(Counted {
                        policy: "api_key".to_owned(),
                        per_minute,
                        decision,
                    });
                }
                if !decision.allowed {
                    rejected(plan, "api_key_rate_limited");
                    return Err(ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "api_key_rate_limited",
                        "Too many requests",
                        format!(
                            "on the {plan} plan one API key may make {per_minute} requests per minute"
                        ),
                    )
                    .with_retry_after(retry_seconds(&decision)));
                }
            }
        }
        let quota = Quota::per_minute(limits.requests_per_minute, limits.burst);
        let key = RateLimitKey::org(who.org_id, LimitScope::Requests);
        let Some(decision) = self.count(&key, &quota).await? else {
            return Ok(());
        };
        if let Some(slot) = slot {
            slot.record(Counted {
                policy: plan.to_string(),
                per_minute: limits.requests_per_minute,
                decision,
            });
        }
        if decision.allowed {
            Ok(())
        } else {
            rejected(plan, "rate_limited");
            Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
                format!(
                    "the {plan} plan allows {} requests per minute",
                    limits.requests_per_minute
                ),
            )
            .with_retry_after(retry_seconds(&decision)))
        }
    }

    /// Counts one sign-in attempt for `email` (every instance together).
    ///
    /// # Errors
    /// 429 `too_many_login_attempts` over `limits.login_attempts_per_minute`;
    /// 503 when the limiter is down and the policy is closed.
    pub async fn check_login(&self, email: &iace_domain::Email) -> Result<(), ApiError> {
        let per_minute = self.config.login_attempts_per_minute.max(1);
        let quota = Quota::per_minute(per_minute, (per_minute / 2).max(1));
        let digest =
            iace_app::auth::token_hash(&format!("login|{}", email.as_str().to_lowercase()));
        let key = RateLimitKey::login(&digest);
        match self.count(&key, &quota).await? {
            Some(decision) if !decision.allowed => {
                count_rejection("none", "login_attempts");
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_login_attempts",
                    "Too many sign-in attempts",
                    format!("at most {per_minute} sign-in attempts a minute for one account"),
                )
                .with_retry_after(retry_seconds(&decision)))
            }
            _ => Ok(()),
        }
    }

    /// Claims `call`'s one media stream across every instance.
    ///
    /// # Errors
    /// 409 `stream_already_open` when another stream (on any instance) holds
    /// it; 503 when the limiter is down and the policy is closed (open: the
    /// stream goes ahead, guarded by this instance alone).
    pub async fn claim_stream(&self, call: CallId) -> Result<StreamClaim, ApiError> {
        let key = RateLimitKey::media_stream(call);
        let lease = match self.limiter.acquire(&key, 1, STREAM_LEASE).await {
            Ok(Some(lease)) => Some(lease),
            Ok(None) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "stream_already_open",
                    "Conflict",
                    format!("call {call} already has a media stream"),
                ));
            }
            Err(err) => match self.config.failure_policy {
                FailurePolicy::Open => {
                    tracing::warn!(error = %err, "rate limiter unavailable; media stream claimed on this instance only (failure_policy = open)");
                    None
                }
                FailurePolicy::Closed => return Err(limiter_unavailable()),
            },
        };
        Ok(StreamClaim {
            limiter: self.limiter.clone(),
            lease,
            call,
        })
    }

    /// Refuses a new call when the organisation already has as many live calls
    /// as its plan allows (counted in the database, so exact across instances),
    /// or has placed its plan's outbound calls for the minute.
    ///
    /// # Errors
    /// 429 `live_call_limit` or `outbound_call_rate`; 503 when the limiter is
    /// down and the policy is closed.
    pub async fn check_call_start(
        &self,
        who: &Principal,
        calls: &dyn CallRepository,
    ) -> Result<(), ApiError> {
        let plan = self.plan(who.org_id).await?;
        let limits = self.config.of(plan);
        let live = calls
            .count_live(who.org_id)
            .await
            .map_err(iace_app::AppError::from)?;
        if live >= u64::from(limits.live_calls) {
            rejected(plan, "live_call_limit");
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "live_call_limit",
                "Too many live calls",
                format!(
                    "the {plan} plan allows {} live calls at once",
                    limits.live_calls
                ),
            )
            .with_retry_after(5));
        }
        let per_minute = limits.outbound_calls_per_minute;
        let quota = Quota::per_minute(per_minute, (per_minute / 10).max(1));
        let key = RateLimitKey::org(who.org_id, LimitScope::OutboundCalls);
        match self.count(&key, &quota).await? {
            Some(decision) if !decision.allowed => {
                rejected(plan, "outbound_call_rate");
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "outbound_call_rate",
                    "Too many calls placed",
                    format!("the {plan} plan allows {per_minute} outbound calls per minute"),
                )
                .with_retry_after(retry_seconds(&decision)))
            }
            _ => Ok(()),
        }
    }
}

/// Middleware: gives the request a [`Slot`] and turns what the limit checks
/// put there into `RateLimit-Policy` and `RateLimit` headers (one list item
/// per counter: the plan's, and the API key's when it has its own).
pub async fn headers(mut request: Request, next: Next) -> Response {
    let slot = Slot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let recorded = std::mem::take(&mut *slot.0.lock().unwrap_or_else(PoisonError::into_inner));
    if recorded.is_empty() {
        return response;
    }
    let mut policies = Vec::with_capacity(recorded.len());
    let mut current = Vec::with_capacity(recorded.len());
    for counted in &recorded {
        let reset = counted.decision.reset_after.as_millis().div_ceil(1000);
        policies.push(format!(
            "\"{}\";q={};w=60",
            counted.policy, counted.per_minute
        ));
        current.push(format!(
            "\"{}\";r={};t={reset}",
            counted.policy, counted.decision.remaining
        ));
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policies.join(", ")) {
        headers.insert(HeaderName::from_static("ratelimit-policy"), value);
    }
    if let Ok(value) = HeaderValue::from_str(&current.join(", ")) {
        headers.insert(HeaderName::from_static("ratelimit"), value);
    }
    response
}

/// Counts a refusal: `iace_rate_limit_rejections_total` by plan and limit.
fn rejected(plan: Plan, limit: &'static str) {
    count_rejection(plan.as_str(), limit);
}

/// Counts a refusal; `plan` is `none` where no plan applies (sign-in).
fn count_rejection(plan: &'static str, limit: &'static str) {
    metrics::counter!(
        "iace_rate_limit_rejections_total",
        "plan" => plan,
        "limit" => limit,
    )
    .increment(1);
}

/// 503 for a limiter that cannot be reached under `failure_policy = closed`.
fn limiter_unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "rate_limiter_unavailable",
        "Service unavailable",
        "the rate limiter is unavailable; retry later",
    )
    .with_retry_after(1)
}
