//! Provider webhooks: `POST /webhooks/telnyx` and `POST /webhooks/stripe`.
//!
//! Anyone on the internet can POST here, so the raw body is verified
//! (Ed25519 over `"{timestamp}|{body}"`, ±300 s) before it is parsed; only
//! then is the event recorded (idempotently, by its event id) and applied.
//! The answer is fast: processing that fails is retried by the background
//! worker from the database.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use iace_app::webhooks::ProviderEvent;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::Json;
use crate::http::state::AppState;

/// The largest Telnyx webhook body accepted (its events are a few KiB).
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

/// The largest Stripe webhook body accepted (invoices with many lines are
/// larger than call events).
pub const MAX_STRIPE_BYTES: usize = 512 * 1024;

/// What happened to a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// `processed`, `ignored` (concerns no call we know), `duplicate` (a
    /// redelivery; nothing done) or `deferred` (recorded; processing is
    /// retried in the background).
    pub status: String,
}

/// Counts a delivery: `iace_webhook_events_total` by provider, event type
/// and result (`processed`, `duplicate`, … or `rejected`). Event types are
/// the provider's dotted names; anything else is `other`, so the label
/// stays bounded.
fn counted(provider: &'static str, event_type: &str, result: &str) {
    let known = event_type.len() <= 48
        && event_type
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
    let event_type = if known { event_type } else { "other" };
    metrics::counter!(
        "iace_webhook_events_total",
        "provider" => provider,
        "type" => event_type.to_owned(),
        "result" => result.to_owned(),
    )
    .increment(1);
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Receives a Telnyx call-control webhook.
#[utoipa::path(post, path = "/webhooks/telnyx", tag = "webhooks",
    request_body(content = Object, description = "A Telnyx event, exactly as Telnyx signed it", content_type = "application/json"),
    params(
        ("telnyx-signature-ed25519" = String, Header, description = "Base64 Ed25519 signature of `{timestamp}|{body}`"),
        ("telnyx-timestamp" = String, Header, description = "Unix time of the signature, seconds"),
    ),
    responses(
        (status = 200, description = "recorded (and processed, or deferred, or a duplicate)", body = WebhookReceipt),
        (status = 400, description = "verified, but not a Telnyx event", body = Problem),
        (status = 401, description = "missing, invalid or stale signature", body = Problem),
        (status = 404, description = "Telnyx is not configured", body = Problem),
        (status = 413, description = "body larger than 64 KiB", body = Problem),
        (status = 503, description = "could not be recorded; Telnyx retries", body = Problem),
    ))]
pub async fn telnyx(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<WebhookReceipt>> {
    let Some(verifier) = &state.providers.telnyx_webhooks else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "provider_not_configured",
            "Not found",
            "Telnyx is not configured on this deployment",
        ));
    };
    let body = body.map_err(|r| body_error(&r, MAX_WEBHOOK_BYTES))?;
    let now = chrono::Utc::now().timestamp();
    verifier
        .verify(
            header(&headers, iace_telnyx::webhook::SIGNATURE_HEADER),
            header(&headers, iace_telnyx::webhook::TIMESTAMP_HEADER),
            &body,
            now,
        )
        .map_err(|err| {
            counted("telnyx", "unknown", "rejected");
            tracing::warn!(reason = %err, "telnyx webhook refused");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                err.code(),
                "Unauthorized",
                "the webhook signature is missing, invalid or stale",
            )
        })?;
    let event = iace_telnyx::parse_event(&body).map_err(|err| {
        counted("telnyx", "unknown", "rejected");
        ApiError::new(
            StatusCode::BAD_REQUEST,
            err.code(),
            "Bad request",
            "the signed body is not a Telnyx event",
        )
    })?;
    let receipt = state
        .webhooks
        .receive_telephony("telnyx", &event)
        .await
        .inspect_err(|_| counted("telnyx", &event.event_type, "error"))?;
    let status = receipt.as_str();
    counted("telnyx", &event.event_type, status);
    tracing::info!(event_type = %event.event_type, status, "telnyx webhook");
    Ok(Json(WebhookReceipt {
        status: status.to_owned(),
    }))
}

/// Receives a Stripe billing webhook.
#[utoipa::path(post, path = "/webhooks/stripe", tag = "webhooks",
    request_body(content = Object, description = "A Stripe event, exactly as Stripe signed it", content_type = "application/json"),
    params(
        ("Stripe-Signature" = String, Header, description = "`t=<unix>,v1=<hex HMAC-SHA256>`"),
    ),
    responses(
        (status = 200, description = "recorded (and processed, ignored, deferred, or a duplicate)", body = WebhookReceipt),
        (status = 400, description = "verified, but not a Stripe event", body = Problem),
        (status = 401, description = "missing, invalid or stale signature", body = Problem),
        (status = 404, description = "Stripe is not configured", body = Problem),
        (status = 413, description = "body larger than 512 KiB", body = Problem),
        (status = 503, description = "could not be recorded; Stripe retries", body = Problem),
    ))]
pub async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<WebhookReceipt>> {
    let Some(verifier) = &state.providers.stripe_webhooks else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "provider_not_configured",
            "Not found",
            "Stripe is not configured on this deployment",
        ));
    };
    let body = body.map_err(|r| body_error(&r, MAX_STRIPE_BYTES))?;
    verifier
        .verify(
            header(&headers, "stripe-signature"),
            &body,
            chrono::Utc::now().timestamp(),
        )
        .map_err(|err| {
            counted("stripe", "unknown", "rejected");
            tracing::warn!(reason = %err, "stripe webhook refused");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                err.code(),
                "Unauthorized",
                "the webhook signature is missing, invalid or stale",
            )
        })?;
    let event = iace_stripe::parse_event(&body).map_err(|err| {
        counted("stripe", "unknown", "rejected");
        ApiError::new(
            StatusCode::BAD_REQUEST,
            err.code(),
            "Bad request",
            "the signed body is not a Stripe event",
        )
    })?;
    let receipt = state
        .webhooks
        .receive("stripe", ProviderEvent::Billing(&event))
        .await
        .inspect_err(|_| counted("stripe", &event.event_type, "error"))?;
    counted("stripe", &event.event_type, receipt.as_str());
    tracing::info!(event_type = %event.event_type, status = receipt.as_str(), "stripe webhook");
    Ok(Json(WebhookReceipt {
        status: receipt.as_str().to_owned(),
    }))
}

fn body_error(rejection: &BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
            format!("webhook bodies here are at most {limit} bytes"),
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Bad request",
            "the body could not be read",
        )
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    let telnyx = OpenApiRouter::new()
        .routes(routes!(telnyx))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES));
    let stripe = OpenApiRouter::new()
        .routes(routes!(stripe))
        .layer(DefaultBodyLimit::max(MAX_STRIPE_BYTES));
    telnyx.merge(stripe)
}
