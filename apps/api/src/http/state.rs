//! The state every handler receives: use-case services and ports, all behind
//! `Arc`s (cheap to clone per request).

use std::sync::Arc;

use iace_app::agents::AgentService;
use iace_app::auth::AuthService;
use iace_app::calls::CallService;
use iace_app::customers::CustomerService;
use iace_app::experiments::ExperimentService;
use iace_app::patterns::PatternService;
use iace_app::personas::PersonaService;
use iace_db::SqlStore;

/// Shared application state.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Sign-in, tokens, API keys, authentication of requests.
    pub auth: Arc<AuthService>,
    /// Customer use cases.
    pub customers: Arc<CustomerService>,
    /// Human-agent use cases.
    pub agents: Arc<AgentService>,
    /// Persona use cases.
    pub personas: Arc<PersonaService>,
    /// Experiment use cases.
    pub experiments: Arc<ExperimentService>,
    /// Learned-pattern use cases.
    pub patterns: Arc<PatternService>,
    /// Call use cases (placing, reading, hanging up, transferring).
    pub calls: Arc<CallService>,
    /// The database, for readiness checks.
    pub store: SqlStore,
    /// Per-plan rate limits.
    pub limits: Arc<super::limits::Limits>,
    /// Redis, when configured (readiness checks).
    pub redis: Option<iace_redis::RedisStore>,
    /// The provider adapters in use (webhook verification, readiness).
    pub providers: crate::providers::Providers,
    /// Webhook intake and processing.
    pub webhooks: Arc<iace_app::webhooks::WebhookService>,
    /// The organisation's plan and billing.
    pub billing: Arc<iace_app::billing::BillingService>,
    /// The organisation's own settings.
    pub orgs: Arc<iace_app::orgs::OrgService>,
    /// Live calls on their media streams.
    pub voice: Arc<iace_app::voice::VoiceService>,
    /// The process's metrics recorder, rendered by `GET /metrics` (`None`
    /// when another recorder was installed first).
    pub metrics: Option<iace_telemetry::PrometheusHandle>,
    /// Set when the instance drains before stopping: readiness fails and
    /// new media streams are refused.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}
