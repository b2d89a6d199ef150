//! Per request: the `http_server_request_duration_seconds` histogram (the
//! OpenTelemetry semantic-convention name and labels: `http_route` — the
//! route template, never the raw path — `http_request_method`,
//! `http_response_status_code`) and one access-log line (`iace_api::access`,
//! inside the request's span, so it carries `request_id` and `org_id`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// The method as a bounded label: the standard ones, else `_OTHER` (as the
/// OpenTelemetry conventions ask), so a client cannot mint series.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// Middleware: see the module doc.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // A cheap clone (shared bytes): no path is copied unless it is logged.
    let uri = request.uri().clone();
    let response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    metrics::histogram!(
        "http_server_request_duration_seconds",
        "http_route" => route,
        "http_request_method" => method,
        "http_response_status_code" => status.to_string(),
    )
    .record(took.as_secs_f64());
    tracing::info!(
        target: "iace_api::access",
        method,
        path = uri.path(),
        status,
        duration_ms = took.as_secs_f64() * 1e3,
        "request"
    );
    response
}
