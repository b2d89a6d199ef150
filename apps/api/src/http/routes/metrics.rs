//! `GET /metrics`: Prometheus' text exposition format. Gauges of the
//! instance's state (live calls, provider circuits, database connections,
//! the post-call backlog) are read at scrape time; everything else is
//! recorded where it happens.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::state::AppState;

/// The instance's metrics, for Prometheus to scrape.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text format (version 0.0.4)", body = String, content_type = "text/plain"),
        (status = 503, description = "no metrics recorder in this process (`metrics_unavailable`)", body = crate::http::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.metrics else {
        return crate::http::error::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "Service unavailable",
            "no metrics recorder in this process",
        )
        .into_response();
    };
    #[allow(clippy::cast_precision_loss, reason = "gauges of small counts")]
    {
        metrics::gauge!("iace_live_calls").set(state.voice.live_calls() as f64);
        // Tasks alive on the runtime: a count that only grows is a leak.
        metrics::gauge!("iace_runtime_alive_tasks").set(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks() as f64,
        );
        let (open, idle) = state.store.pool_connections();
        metrics::gauge!("iace_db_pool_connections", "state" => "idle").set(idle as f64);
        metrics::gauge!("iace_db_pool_connections", "state" => "in_use")
            .set(f64::from(open).max(idle as f64) - idle as f64);
    }
    // Post-call work still waiting (a slow worker shows here first).
    // Bounded: a scrape must not wait on a struggling database; an unknown
    // backlog reads NaN rather than a stale number.
    let backlog = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        iace_domain::ports::WebhookInbox::backlog(
            &state.store,
            iace_app::postcall::INTERNAL_PROVIDER,
        ),
    )
    .await;
    #[allow(clippy::cast_precision_loss, reason = "a gauge of a count")]
    let waiting = match backlog {
        Ok(Ok(waiting)) => waiting as f64,
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "post-call backlog not read");
            f64::NAN
        }
        Err(_) => f64::NAN,
    };
    metrics::gauge!("iace_postcall_backlog").set(waiting);
    for breaker in &state.providers.breakers {
        let value = match breaker.state() {
            iace_http::BreakerState::Closed => 0.0,
            iace_http::BreakerState::HalfOpen => 1.0,
            iace_http::BreakerState::Open => 2.0,
        };
        metrics::gauge!("iace_provider_circuit_state", "provider" => breaker.provider()).set(value);
    }
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}
