//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::Json;
use crate::http::state::AppState;

/// Health of the process or its dependencies.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// Each dependency and whether it answered.
    pub checks: Vec<Check>,
}

/// One dependency check.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// Dependency name (`database`, `redis`).
    pub name: &'static str,
    /// Whether it answered.
    pub ok: bool,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        checks: Vec::new(),
    })
}

/// The process can serve traffic: its dependencies answer.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "ready", body = Health),
        (status = 503, description = "a dependency is down", body = Health),
    ))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.store.ping().await.is_ok();
    let mut checks = vec![Check {
        name: "database",
        ok: database,
    }];
    let mut ready = database;
    if let Some(redis) = &state.redis {
        let ok = redis.ping().await.is_ok();
        ready &= ok;
        checks.push(Check { name: "redis", ok });
    }
    if ready {
        (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                checks,
            }),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                checks,
            }),
        )
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}
