//! The `[log]` section.

use serde::Deserialize;

/// Logging: `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `pretty` (default) or `json`.
    pub format: LogFormat,
    /// `tracing` filter directives, e.g. `info,iace_api=debug`; `RUST_LOG`
    /// overrides it.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info".to_owned(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Pretty,
    /// One JSON object per line: timestamp, level, target, message, the
    /// event's fields, and the fields of the spans it happened in
    /// (`request_id`, `org_id`, `call_id`, …).
    Json,
}

/// Traces: `[traces]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracesConfig {
    /// The OTLP/HTTP endpoint of a collector (Jaeger, Tempo, the
    /// OpenTelemetry Collector), e.g. `http://otel-collector:4318`;
    /// `/v1/traces` is appended. None (default): no traces are exported.
    pub otlp_endpoint: Option<String>,
    /// `protobuf` (default) or `json`.
    pub otlp_protocol: OtlpProtocol,
    /// The `service.name` resource attribute. Default `iace-api`.
    pub service_name: String,
    /// The share of new traces recorded, 0 to 1 (default 1); a caller's
    /// `traceparent` decides for the traces it starts.
    pub sample_ratio: f64,
    /// Which spans become trace spans (`tracing` directives), apart from the
    /// log filter so quieter logs keep their traces. Default `info`.
    pub filter: String,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            otlp_protocol: OtlpProtocol::Protobuf,
            service_name: "iace-api".to_owned(),
            sample_ratio: 1.0,
            filter: "info".to_owned(),
        }
    }
}

/// How spans are encoded over OTLP/HTTP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// `application/x-protobuf`.
    #[default]
    Protobuf,
    /// `application/json`.
    Json,
}
