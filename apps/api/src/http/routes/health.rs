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
    /// The remote providers' circuit breakers (informational: an open
    /// circuit degrades calls but does not make the instance unready, since
    /// every instance shares the provider).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderCircuit>,
}

/// A provider's circuit breaker.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderCircuit {
    /// Provider name (`telnyx`, `groq`, …).
    pub name: &'static str,
    /// `closed`, `half_open` or `open`.
    pub circuit: &'static str,
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
        providers: Vec::new(),
    })
}

/// How long a readiness check waits for a dependency.
const READINESS_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The process can serve traffic: its dependencies answer.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "ready", body = Health),
        (status = 503, description = "a dependency is down", body = Health),
    ))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    // A dependency that hangs (a partition, a stuck server) answers "down"
    // within the probe's own timeout (3 s in deploy/k8s), not never.
    let database = tokio::time::timeout(READINESS_CHECK_TIMEOUT, state.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let draining = state.draining.load(std::sync::atomic::Ordering::SeqCst);
    let mut checks = vec![Check {
        name: "database",
        ok: database,
    }];
    if draining {
        checks.push(Check {
            name: "draining",
            ok: false,
        });
    }
    let mut ready = database && !draining;
    if let Some(redis) = &state.redis {
        let ok = tokio::time::timeout(READINESS_CHECK_TIMEOUT, redis.ping())
            .await
            .is_ok_and(|r| r.is_ok());
        ready &= ok;
        checks.push(Check { name: "redis", ok });
    }
    let providers = state
        .providers
        .breakers
        .iter()
        .map(|b| ProviderCircuit {
            name: b.provider(),
            circuit: b.state().as_str(),
        })
        .collect();
    let (status, word) = if ready {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        Json(Health {
            status: word,
            checks,
            providers,
        }),
    )
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}
