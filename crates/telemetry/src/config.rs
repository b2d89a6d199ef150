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
