//! Request ids: accept a client's `X-Request-Id` (if sane) or make one, echo it
//! on the response, record it on the request's tracing span, and write it into
//! problem bodies. A caller's W3C `traceparent` (if valid) makes the
//! request's span part of the caller's trace. The id and the trace become the
//! outbound context, so every provider request made while handling the
//! request carries them (`iace_http::context`).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;

use super::error::Problem;

/// The header carrying the id.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Middleware: see the module doc.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), ToOwned::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
        org_id = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    let inbound = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    if let Some(traceparent) = inbound {
        iace_telemetry::trace::set_parent(&span, traceparent);
    }
    // With traces exported, outbound requests are children of this
    // request's span (same trace); without, they carry the caller's trace.
    let trace = iace_telemetry::trace::traceparent(&span)
        .as_deref()
        .and_then(iace_http::TraceParent::parse)
        .or_else(|| inbound.and_then(iace_http::TraceParent::parse));
    let outbound = iace_http::OutboundContext {
        request_id: Some(id.clone()),
        trace,
    };
    let trace_id = outbound.trace.map(|t| t.trace_id());
    let mut response = iace_telemetry::errors::request_scope(
        &id,
        trace_id.as_deref(),
        iace_http::context::scope(outbound, next.run(request).instrument(span.clone())),
    )
    .await;
    span.record("status", response.status().as_u16());
    if let Some(problem) = response.extensions_mut().remove::<Problem>() {
        let mut problem = problem;
        problem.request_id = Some(id.clone());
        let (mut parts, _) = response.into_parts();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        // The new body is plain JSON, whatever encoded the old one.
        parts.headers.remove(axum::http::header::CONTENT_ENCODING);
        response = Response::from_parts(parts, Body::from(body)).into_response();
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}
