//! The HTTP surface: routes, middleware, OpenAPI.

pub mod docs;
pub mod error;
pub mod extract;
pub mod limits;
pub mod observe;
pub mod openapi;
pub mod request_id;
pub mod routes;
pub mod state;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::config::ServerConfig;
use error::ApiError;
use state::AppState;

/// The OpenAPI document's fixed parts; paths come from the route modules.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "IACE API",
        description = "Operate AI phone agents: customers, personas, human agents, experiments, calls, learned patterns. \
Authenticate with `Authorization: Bearer <access token or API key>`. Errors are RFC 9457 problem+json with a stable `code`.",
    ),
    modifiers(&Security),
    components(schemas(error::Problem, error::ProblemField, routes::pagination::Order)),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Sign-in and tokens"),
        (name = "api-keys", description = "Keys for service-to-service use"),
        (name = "customers", description = "The people who call or are called"),
        (name = "agents", description = "Human agents escalated calls are transferred to"),
        (name = "personas", description = "Who the AI agent is on a call: voice, instructions, greeting, style, language"),
        (name = "experiments", description = "A/B tests over personas: set-up, life cycle, results"),
        (name = "patterns", description = "What worked on earlier calls (read-only)"),
        (name = "calls", description = "Place, follow, hang up and transfer phone calls"),
        (name = "media", description = "The telephony provider's media streams (WebSocket)"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token (JWT) from /v1/auth/login, or an API key (iace_...).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The router and its OpenAPI document.
pub fn router(state: AppState, server: &ServerConfig) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::health::router())
        .merge(routes::metrics::router())
        .merge(routes::auth::router())
        .merge(routes::api_keys::router())
        .merge(routes::customers::router())
        .merge(routes::agents::router())
        .merge(routes::personas::router())
        .merge(routes::experiments::router())
        .merge(routes::patterns::router())
        .merge(routes::calls::router())
        .merge(routes::webhooks::router())
        .merge(routes::org::router())
        .merge(routes::media::router())
        .split_for_parts();
    let mut openapi = openapi;
    openapi::document_common_responses(&mut openapi);
    let spec = std::sync::Arc::new(openapi);
    let router = api
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let spec = spec.clone();
                async move { axum::Json(spec.as_ref().clone()) }
            }),
        )
        .merge(docs::router())
        .fallback(|| async { ApiError::route_not_found() })
        .with_state(state);
    layered(router, server)
}

fn layered(router: Router, server: &ServerConfig) -> Router {
    let mut router = router
        .layer(RequestBodyLimitLayer::new(server.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            server.request_timeout(),
        ))
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                // Reported by the panic hook (and to Sentry) already.
                tracing::warn!("handler panicked");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Internal server error",
                    "something went wrong on our side",
                )
                .into_response()
            },
        ))
        // Inside the request-id layer, which stamps every problem.
        .layer(axum::middleware::map_response(problem_for_bare_errors));
    if let Some(cors) = cors(&server.cors_allowed_origins) {
        router = router.layer(cors);
    }
    router
        .layer(axum::middleware::from_fn(observe::observe))
        .layer(axum::middleware::from_fn(limits::headers))
        .layer(axum::middleware::from_fn(request_id::request_id))
        // Outermost: the request-id middleware rewrites problem bodies, and
        // a body must be final before it is compressed.
        .layer(CompressionLayer::new())
}

/// Errors the layers and the router answer without a body of ours — a body
/// over the limit (413, plain text), a request past its timeout (503, empty),
/// a method a route does not have (405, empty) — become problems like every
/// other error, with a stable code.
async fn problem_for_bare_errors(response: axum::response::Response) -> axum::response::Response {
    let status = response.status();
    let ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/problem+json") || ct.starts_with("application/json")
        });
    if !(status.is_client_error() || status.is_server_error()) || ours {
        return response;
    }
    let (code, title, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "Payload too large",
            "the request body is over the size limit",
        ),
        // The timeout layer's answer is empty.
        StatusCode::SERVICE_UNAVAILABLE
            if axum::body::HttpBody::size_hint(response.body()).exact() == Some(0) =>
        {
            (
                "request_timeout",
                "Service unavailable",
                "the request took longer than the server allows; retry later",
            )
        }
        StatusCode::SERVICE_UNAVAILABLE => (
            "service_unavailable",
            "Service unavailable",
            "the service cannot answer now; retry later",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "Method not allowed",
            "this path does not take this method",
        ),
        _ => (
            "http_error",
            "Request failed",
            "the request could not be served",
        ),
    };
    let mut problem = ApiError::new(status, code, title, detail);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        problem = problem.with_retry_after(1);
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut replaced = problem.into_response();
    if let Some(allow) = allow {
        replaced.headers_mut().insert(header::ALLOW, allow);
    }
    replaced
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("x-request-id"),
                header::HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([header::HeaderName::from_static("x-request-id")])
            .max_age(Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::response::Response;

    use super::*;

    async fn rewritten(
        status: StatusCode,
        content_type: Option<&str>,
        body: &'static str,
    ) -> (StatusCode, String, String) {
        let mut response = Response::builder().status(status);
        if let Some(ct) = content_type {
            response = response.header(header::CONTENT_TYPE, ct);
        }
        let response =
            problem_for_bare_errors(response.body(Body::from(body)).expect("response")).await;
        let status = response.status();
        let ct = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        (status, ct, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn bare_errors_become_problems_and_everything_else_is_left_alone() {
        let (status, ct, body) = rewritten(StatusCode::SERVICE_UNAVAILABLE, None, "").await;
        assert_eq!(
            (status, ct.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "application/problem+json")
        );
        assert!(body.contains(r#""code":"request_timeout""#), "{body}");
        let (_, _, body) =
            rewritten(StatusCode::SERVICE_UNAVAILABLE, Some("text/plain"), "busy").await;
        assert!(body.contains(r#""code":"service_unavailable""#), "{body}");
        let (_, _, body) = rewritten(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("text/plain"),
            "length limit exceeded",
        )
        .await;
        assert!(body.contains(r#""code":"body_too_large""#), "{body}");
        // Ours, or not an error: untouched.
        let problem = r#"{"code":"not_found"}"#;
        assert_eq!(
            rewritten(
                StatusCode::NOT_FOUND,
                Some("application/problem+json"),
                problem
            )
            .await
            .2,
            problem
        );
        assert_eq!(
            rewritten(StatusCode::OK, Some("text/plain"), "fine")
                .await
                .2,
            "fine"
        );
    }
}
