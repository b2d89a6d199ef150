//! # iace-telemetry — what the service tells its operators
//!
//! - [`init`]: the process's `tracing` subscriber — human-readable lines in
//!   development, one JSON object per line in production ([`json::FlatJson`]:
//!   timestamp, level, target, message and the fields of the spans the event
//!   happened in, such as `request_id`, `org_id` and `call_id`) — writing
//!   through [`mask::MaskingWriter`], so phone numbers and e-mail addresses
//!   are masked in every line whatever formatted them; and the Prometheus
//!   recorder behind `/metrics` ([`metrics::recorder`]).
//! - [`trace`]: OpenTelemetry traces exported over OTLP/HTTP when
//!   `[traces] otlp_endpoint` is set — every `tracing` span becomes a span,
//!   masked like log lines — and the helpers that join a caller's
//!   `traceparent` and name the current span to outbound requests.
//! - [`errors`]: panics and `ERROR` events reported to Sentry when
//!   `[sentry] dsn` is set, each request in a scope tagged with its request
//!   and trace ids, scrubbed of personal data.
//! - Code elsewhere records through the `tracing` and `metrics` facades only.
//!
//! Support crate for the binary. **Must not depend on** the domain, the
//! application or any adapter: it knows log lines and metric series, not
//! calls.

pub mod config;
pub mod errors;
pub mod json;
pub mod mask;
pub mod metrics;
pub mod trace;

pub use config::{LogConfig, LogFormat, OtlpProtocol, TracesConfig};
pub use errors::SentryConfig;
pub use mask::mask_pii;
pub use metrics_exporter_prometheus::PrometheusHandle;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::mask::MaskingWriter;

/// What [`init`] set up.
pub struct Telemetry {
    /// The metrics recorder, for `/metrics`; `None` when another recorder
    /// was installed first (then nothing is exported, and the log says so).
    pub metrics: Option<PrometheusHandle>,
    /// The tracer provider, when traces are exported.
    tracer: Option<SdkTracerProvider>,
    /// The Sentry client, when errors are reported.
    sentry: Option<sentry::ClientInitGuard>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("metrics", &self.metrics.is_some())
            .field("traces", &self.tracer.is_some())
            .field("sentry", &self.sentry.is_some())
            .finish()
    }
}

impl Telemetry {
    /// Sends the spans and error events still buffered and stops exporting
    /// (at shutdown).
    pub fn shutdown(self) {
        if let Some(tracer) = &self.tracer
            && let Err(err) = tracer.shutdown()
        {
            tracing::warn!(error = %err, "traces could not all be exported at shutdown");
        }
        if let Some(sentry) = &self.sentry {
            sentry.flush(Some(std::time::Duration::from_secs(2)));
        }
    }
}

/// Installs the global subscriber (`RUST_LOG` overrides the configured
/// filter), the OpenTelemetry layer when `traces` names an endpoint, Sentry
/// when `sentry` has a DSN, and the metrics recorder. Calling it again keeps
/// what the first call installed (tests build several servers in one
/// process).
#[must_use]
pub fn init(log: &LogConfig, traces: &TracesConfig, sentry: &SentryConfig) -> Telemetry {
    // The exporters' HTTP clients use rustls: the process's one crypto
    // provider (ring), unless the binary installed it already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = || {
        EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(&log.filter))
            .unwrap_or_else(|_| EnvFilter::new("info"))
    };
    let writer = MaskingWriter::new(std::io::stderr);
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![match log.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(json::FlatJson)
            .with_writer(writer)
            .with_filter(filter())
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_filter(filter())
            .boxed(),
    }];
    let (tracer, trace_error) = match trace::provider(traces) {
        Ok(tracer) => (tracer, None),
        Err(err) => (None, Some(err)),
    };
    if let Some(provider) = &tracer {
        let spans = EnvFilter::try_new(&traces.filter).unwrap_or_else(|_| EnvFilter::new("info"));
        layers.push(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("iace"))
                .with_filter(spans)
                .boxed(),
        );
    }
    let (sentry, sentry_error) = match errors::init(sentry) {
        Ok(guard) => (guard, None),
        Err(err) => (None, Some(err)),
    };
    if sentry.is_some() {
        // Errors become events, warnings breadcrumbs; spans stay with the
        // trace exporter.
        layers.push(
            sentry_tracing::ErrorLayer::new()
                .with_filter(tracing_subscriber::filter::LevelFilter::ERROR)
                .boxed(),
        );
        layers.push(
            sentry_tracing::BreadcrumbLayer::new()
                .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                    *meta.level() == tracing::Level::WARN
                }))
                .boxed(),
        );
    }
    let installed = tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .is_ok();
    if let Some(err) = trace_error {
        tracing::warn!(error = %err, "traces are not exported");
    }
    if let Some(err) = sentry_error {
        tracing::warn!(error = %err, "errors are not reported to Sentry");
    }
    let metrics = match metrics::recorder() {
        Ok(handle) => Some(handle),
        Err(err) => {
            tracing::warn!(error = %err, "metrics recorder not installed; /metrics stays empty");
            None
        }
    };
    Telemetry {
        metrics,
        // Spans only reach this provider when its layer was installed.
        tracer: tracer.filter(|_| installed),
        sentry,
    }
}
