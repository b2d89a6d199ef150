//! # iace-telemetry — what the service tells its operators
//!
//! - [`init`]: the process's `tracing` subscriber — human-readable lines in
//!   development, one JSON object per line in production ([`json::FlatJson`]:
//!   timestamp, level, target, message and the fields of the spans the event
//!   happened in, such as `request_id`, `org_id` and `call_id`) — writing
//!   through [`mask::MaskingWriter`], so phone numbers and e-mail addresses
//!   are masked in every line whatever formatted them; and the Prometheus
//!   recorder behind `/metrics` ([`metrics::recorder`]).
//! - Code elsewhere records through the `tracing` and `metrics` facades only.
//!
//! Support crate for the binary. **Must not depend on** the domain, the
//! application or any adapter: it knows log lines and metric series, not
//! calls.

pub mod config;
pub mod json;
pub mod mask;
pub mod metrics;

pub use config::{LogConfig, LogFormat};
pub use mask::mask_pii;
pub use metrics_exporter_prometheus::PrometheusHandle;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::mask::MaskingWriter;

/// What [`init`] set up.
#[derive(Debug, Clone)]
pub struct Telemetry {
    /// The metrics recorder, for `/metrics`; `None` when another recorder
    /// was installed first (then nothing is exported, and the log says so).
    pub metrics: Option<PrometheusHandle>,
}

/// Installs the global subscriber (`RUST_LOG` overrides the configured
/// filter) and the metrics recorder. Calling it again keeps what the first
/// call installed (tests build several servers in one process).
#[must_use]
pub fn init(log: &LogConfig) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.filter));
    let writer = MaskingWriter::new(std::io::stderr);
    let result = match log.format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(JsonFields::new())
                    .event_format(json::FlatJson)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => tracing_subscriber::registry()
            .with(filter)
            .with(tracing_subscriber::fmt::layer().with_writer(writer))
            .try_init(),
    };
    // Already installed: keep it.
    drop(result);
    let metrics = match metrics::recorder() {
        Ok(handle) => Some(handle),
        Err(err) => {
            tracing::warn!(error = %err, "metrics recorder not installed; /metrics stays empty");
            None
        }
    };
    Telemetry { metrics }
}
